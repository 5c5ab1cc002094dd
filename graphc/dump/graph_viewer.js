"use strict";
(function () {
  const data = JSON.parse(document.getElementById("graphc-data").textContent);
  const CHUNK = 200;            // rows rendered at once in one list
  const OPEN_ALL_BELOW = 300;   // graphs this small start with every group open
  const MAX_LINKS = 100;        // inputs or consumers listed for one node
  const byId = new Map();
  const consumers = new Map();
  // every node, those of loop and cond bodies too (a body node's id is its path, a string;
  // n.parent is the id of the node holding its body, n.body that body's position there)
  const allNodes = [];
  (function register(nodes) {
    for (const n of nodes) {
      allNodes.push(n);
      byId.set(n.id, n);
      consumers.set(n.id, []);
      (n.bodies || []).forEach(b => register(b.nodes));
    }
  })(data.nodes);
  for (const n of allNodes) {
    for (const [src] of n.inputs) {
      const list = consumers.get(src);
      if (list && list[list.length - 1] !== n.id) list.push(n.id);
    }
  }
  const inBodies = allNodes.length - data.nodes.length;
  const kernels = new Map((data.kernels || []).map(k => [k.id, k]));

  function el(tag, props, children) {
    const e = document.createElement(tag);
    for (const key in props || {}) e[key] = props[key];
    for (const c of children || []) {
      e.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    }
    return e;
  }

  // ---- trees of groups: name scopes, or kernels ------------------------------------------
  function makeGroup(label, parent, tree) {
    return {label, parent, tree, nodes: [], children: [], size: 0,
            details: null, list: null, more: null, shown: 0, filled: false};
  }

  function scopeTree() {
    const tree = {rows: new Map(), nodeGroup: new Map(), bodies: []};
    tree.root = makeGroup("", null, tree);
    const byPath = new Map([["", tree.root]]);
    function scope(path) {
      let group = byPath.get(path);
      if (!group) {
        const cut = path.lastIndexOf("/");
        const parent = scope(cut < 0 ? "" : path.slice(0, cut));
        group = makeGroup(path + "/", parent, tree);
        parent.children.push(group);
        byPath.set(path, group);
      }
      return group;
    }
    for (const n of data.nodes) {
      const cut = n.name.lastIndexOf("/");
      const group = scope(cut < 0 ? "" : n.name.slice(0, cut));
      group.nodes.push(n);
      tree.nodeGroup.set(n.id, group);
      for (let g = group; g; g = g.parent) g.size++;
    }
    return tree;
  }

  function kernelTree() {
    const tree = {rows: new Map(), nodeGroup: new Map(), bodies: []};
    tree.root = makeGroup("", null, tree);
    const buffers = makeGroup("buffers (computed by no kernel)", tree.root, tree);
    const byKernel = new Map();
    for (const k of data.kernels) {
      const group = makeGroup("k" + k.id + " " + k.kind, tree.root, tree);
      group.kernel = k;
      byKernel.set(k.id, group);
    }
    for (const n of data.nodes) {
      const group = n.kernel === null ? buffers : byKernel.get(n.kernel);
      group.nodes.push(n);
      group.size++;
      tree.root.size++;
      tree.nodeGroup.set(n.id, group);
    }
    if (buffers.size) tree.root.children.push(buffers);
    for (const group of byKernel.values()) tree.root.children.push(group);
    return tree;
  }

  // ---- rendering, lazily -----------------------------------------------------------------
  function fill(group, container, open) {
    if (group.filled) return;
    group.filled = true;
    for (const child of group.children) container.appendChild(groupDetails(child, open));
    group.list = el("div", {className: "rows"});
    container.appendChild(group.list);
    showMore(group);
  }

  function groupDetails(group, open) {
    const summary = el("summary", {}, [
      el("span", {className: "scope", textContent: group.label}),
      el("span", {className: "count", textContent: " " + group.size + " nodes"})]);
    if (group.kernel) {
      summary.style.background = group.kernel.colour;
      summary.appendChild(el("code", {textContent: group.kernel.expression}));
    }
    const details = el("details", {}, [summary]);
    group.details = details;
    details.addEventListener("toggle", () => { if (details.open) fill(group, details, false); });
    if (open) {
      details.open = true;
      fill(group, details, true);
    }
    return details;
  }

  function showMore(group) {
    if (group.more) group.more.remove();
    group.more = null;
    const end = Math.min(group.nodes.length, group.shown + CHUNK);
    for (let i = group.shown; i < end; i++) {
      const entry = nodeEntry(group.nodes[i], group.tree);
      if (group.tree) group.tree.rows.set(group.nodes[i].id, entry);
      group.list.appendChild(entry);
    }
    group.shown = end;
    const rest = group.nodes.length - end;
    if (rest > 0) {
      const label = "show " + Math.min(rest, CHUNK) + " more of " + rest;
      group.more = el("button", {className: "more", textContent: label});
      group.more.addEventListener("click", () => showMore(group));
      group.list.appendChild(group.more);
    }
  }

  function nodeEntry(n, tree) {
    const kernel = n.kernel === null ? null : kernels.get(n.kernel);
    const row = el("div", {className: "node", title: n.type + "\n" + n.source}, [
      el("span", {className: "nid", textContent: "%" + (n.parent === undefined ? n.id : n.local)}), " ",
      el("span", {className: "name", textContent: n.name}), " ",
      el("span", {className: "op", textContent: n.op}), " ",
      el("span", {className: "type", textContent: n.type})]);
    if (kernel) {
      row.style.background = kernel.colour;
      row.style.borderLeftColor = kernel.colour;
      row.appendChild(el("span", {className: "kid", textContent: "  k" + kernel.id}));
    }
    const entry = el("div", {className: "entry"}, [row]);
    entry.info = null;
    row.addEventListener("click", () => toggleInfo(entry, n, kernel));
    // a loop's or cond's bodies: a collapsible group each, under the node's row
    entry.bodies = (n.bodies || []).map(b => bodyDetails(b, tree, entry));
    return entry;
  }

  function bodyDetails(body, tree, entry) {
    const group = {label: body.label, nodes: body.nodes, tree, list: null, more: null,
                   shown: 0, filled: false, details: null};
    const summary = el("summary", {}, [
      el("span", {className: "scope", textContent: body.label}),
      el("span", {className: "count", textContent: " " + body.nodes.length + " nodes"})]);
    const details = el("details", {className: "body"}, [summary]);
    group.details = details;
    group.fill = () => {
      if (group.filled) return;
      group.filled = true;
      group.list = el("div", {className: "rows"});
      details.appendChild(group.list);
      showMore(group);
    };
    details.addEventListener("toggle", () => { if (details.open) group.fill(); });
    if (tree) tree.bodies.push(group);
    entry.appendChild(details);
    if (tree && allNodes.length <= OPEN_ALL_BELOW) {
      details.open = true;
      group.fill();
    }
    return group;
  }

  function field(label, value) {
    return el("div", {}, [el("span", {className: "label", textContent: label + ": "}), value]);
  }

  function links(ids, name) {
    const span = el("span", {});
    if (!ids.length) span.appendChild(document.createTextNode("none"));
    ids.slice(0, MAX_LINKS).forEach(([id, text], i) => {
      if (i) span.appendChild(document.createTextNode(", "));
      const button = el("button", {className: "link", textContent: text});
      button.addEventListener("click", () => reveal(id));
      span.appendChild(button);
    });
    if (ids.length > MAX_LINKS) {
      span.appendChild(document.createTextNode(" and " + (ids.length - MAX_LINKS) + " more"));
    }
    return field(name, span);
  }

  function toggleInfo(entry, n, kernel) {
    if (entry.info) {
      entry.info.remove();
      entry.info = null;
      return;
    }
    const info = el("div", {className: "info"}, [
      field("type", n.type), field("source", n.source)]);
    if (n.attrs) info.appendChild(field("attrs", n.attrs));
    if (kernel) {
      info.appendChild(field("kernel", "k" + kernel.id + " " + kernel.kind + ": " +
                                       kernel.expression));
    }
    info.appendChild(links(n.inputs.map(([id, index]) =>
      [id, byId.get(id).name + (index ? ":" + index : "")]), "inputs"));
    info.appendChild(links(consumers.get(n.id).map(id => [id, byId.get(id).name]),
                           "consumers"));
    entry.info = info;
    entry.appendChild(info);
  }

  // ---- views: a tree per grouping, and search results ------------------------------------
  const main = document.getElementById("tree");
  const results = document.getElementById("results");
  const search = document.getElementById("search");
  const groupBy = document.getElementById("group-by");
  const views = {};
  let current = null;

  function show(kind) {
    if (!views[kind]) {
      const tree = kind === "kernel" ? kernelTree() : scopeTree();
      tree.container = el("div", {});
      main.appendChild(tree.container);
      fill(tree.root, tree.container, data.nodes.length <= OPEN_ALL_BELOW);
      views[kind] = tree;
    }
    for (const k in views) views[k].container.hidden = k !== kind;
    current = views[kind];
  }

  function entryOf(id) {
    // the node's row in the current tree, opening what holds it: its group's chain, or,
    // for a node of a body, the row of the node holding the body and then that body
    const n = byId.get(id);
    let group;
    if (n.parent !== undefined) {
      group = entryOf(n.parent).bodies[n.body];
      group.details.open = true;
      group.fill();
    } else {
      group = current.nodeGroup.get(id);
      const chain = [];
      for (let g = group; g.parent; g = g.parent) chain.unshift(g);
      for (const g of chain) {
        g.details.open = true;
        fill(g, g.details, false);
      }
    }
    const index = group.nodes.indexOf(n);
    while (group.shown <= index) showMore(group);
    return current.rows.get(id);
  }

  function reveal(id) {
    if (search.value) {
      search.value = "";
      runSearch();
    }
    const entry = entryOf(id);
    entry.scrollIntoView({block: "center"});
    entry.firstChild.classList.add("flash");
    setTimeout(() => entry.firstChild.classList.remove("flash"), 1500);
  }

  function runSearch() {
    const query = search.value.trim().toLowerCase();
    results.replaceChildren();
    results.hidden = !query;
    main.hidden = !!query;
    if (!query) return;
    const found = allNodes.filter(n => n.name.toLowerCase().includes(query) ||
                                       n.op.toLowerCase().includes(query));
    results.appendChild(el("p", {className: "matches", textContent:
      found.length + " of " + allNodes.length + " nodes match \u201c" + query + "\u201d"}));
    const list = {nodes: found, list: el("div", {className: "rows"}), more: null, shown: 0,
                  tree: null};
    results.appendChild(list.list);
    showMore(list);
  }

  let pending = 0;
  search.addEventListener("input", () => {
    clearTimeout(pending);
    pending = setTimeout(runSearch, 150);
  });
  function setAll(open) {
    const walk = group => {
      for (const child of group.children) {
        if (open) fill(child, child.details, false);
        if (child.details) child.details.open = open;
        if (child.filled) walk(child);
      }
    };
    walk(current.root);
    // bodies, nested ones too: filling one may add the groups of the bodies inside it
    for (let i = 0; i < current.bodies.length; i++) {
      const body = current.bodies[i];
      if (open) body.fill();
      body.details.open = open;
    }
  }
  document.getElementById("expand").addEventListener("click", () => setAll(true));
  document.getElementById("collapse").addEventListener("click", () => setAll(false));
  groupBy.addEventListener("change", () => show(groupBy.value));
  if (data.kernels === null) groupBy.parentNode.hidden = true;
  groupBy.value = data.group_by;
  document.getElementById("stats").textContent = data.nodes.length + " nodes" +
    (inBodies ? " (and " + inBodies + " in loop and cond bodies)" : "") +
    (data.kernels ? ", " + data.kernels.length + " kernels" : "") +
    ". Hover a node for its type and source line; click it for its inputs and consumers.";
  show(data.group_by);
})();
