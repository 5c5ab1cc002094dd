"""The HTML dump: one self-contained page; its payload, its structure, and (where node.js is
installed) its script, run against a small stand-in for the browser's DOM."""
import json
import re
import shutil
import subprocess
import time
from html.parser import HTMLParser

import numpy as np
import pytest

import graphc as gc
from graphc.dump import dump_graph, dump_kernels
from graphc.dump.kernels import PALETTE
from graphc.passes.fusion import partition
from graphc.ir.graph import nodes_needed as closure
from tests.dump.test_dump import mlp

VOID = {"meta", "input", "br", "img", "link", "hr", "wbr", "source", "col", "area", "base"}


class Page(HTMLParser):
    """Checks that tags nest and close, and collects what the tests look at."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.stack, self.ids, self.tags, self.attrs = [], {}, [], []
        self.text_of = {}  # id -> text inside the element
        self.title = ""
        self.feed(text)
        self.close()
        assert not self.stack, f"unclosed tags: {self.stack}"

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        self.attrs.append((tag, attrs))
        if "id" in attrs:
            assert attrs["id"] not in self.ids, f"duplicate id {attrs['id']}"
            self.ids[attrs["id"]] = (tag, attrs)
        if tag not in VOID:
            self.stack.append((tag, attrs.get("id")))

    def handle_endtag(self, tag):
        assert tag not in VOID, f"</{tag}> closes a void element"
        assert self.stack and self.stack[-1][0] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()

    def handle_data(self, data):
        for _, element_id in self.stack:
            if element_id is not None:
                self.text_of[element_id] = self.text_of.get(element_id, "") + data
        if self.stack and self.stack[-1][0] == "title":
            self.title += data


def parse(text):
    page = Page(text)
    assert page.tags[:2] == ["html", "head"] and text.startswith("<!DOCTYPE html>")
    return page


def payload(page):
    tag, attrs = page.ids["graphc-data"]
    assert (tag, attrs["type"]) == ("script", "application/json")
    return json.loads(page.text_of["graphc-data"])


def scoped_graph():
    """A graph under nested name scopes: (graph, output)."""
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 7), name="x")
        W = gc.Variable(np.random.default_rng().standard_normal((7, 3)).astype("float32"),
                        name="W")
        with gc.name_scope("net"):
            with gc.name_scope("dense"):
                h = gc.tanh(x @ W, name="act")
            out = gc.sum(h * h, axis=1, name="sq")
        loss = gc.mean(out, name="loss")
        gW = gc.grad(loss, W)
    return g, [loss, gW]


def mlp_train_step():
    """A small MLP's train step as a function: (function, graph)."""
    g, f, _ = mlp()
    return f, g


def big_graph(scopes=100, per_scope=100):
    """scopes x per_scope nodes, a chain through nested scopes: (graph, output)."""
    g = gc.Graph()
    with g.as_default():
        y = gc.placeholder(gc.float32, (None, 7), name="x")
        for s in range(scopes):
            with gc.name_scope(f"block{s}"):
                for i in range(per_scope):
                    y = gc.sin(y) if i % 2 else y * 1.0001
    return g, y


# ---- the page as a file ---------------------------------------------------------------------
def test_page_is_well_formed_with_search_and_every_node_in_its_payload():
    g, fetches = scoped_graph()
    text = gc.dump(fetches, format="html")
    page = parse(text)
    assert page.title == "graphc graph"
    tag, attrs = page.ids["search"]
    assert tag == "input" and attrs["type"] == "search" and "name or op" in attrs["placeholder"]
    assert page.ids["group-by"][0] == "select" and page.ids["tree"][0] == "div"
    data = payload(page)
    nodes = closure(fetches)
    assert [n["id"] for n in data["nodes"]] == [n.id for n in nodes]
    for record, node in zip(data["nodes"], nodes):
        assert record["name"] == node.name and record["op"] == node.op
        assert record["type"] == ", ".join(str(t.type) for t in node.outputs)
        assert record["source"] == node.source and "test_html.py:" in record["source"]
        assert record["kernel"] is None
        assert record["inputs"] == [[t.node.id, t.index] for t in node.inputs]
    assert data["kernels"] is None and data["group_by"] == "scope"


def test_page_fetches_nothing():
    f, _ = mlp_train_step()
    for stage in ("input", "optimized", "kernels"):
        text = f.dump(stage=stage, format="html")
        for remote in ("http://", "https://", "src=", "href=", "url(", "@import", "<link",
                       "<iframe", "<img"):
            assert remote not in text, (stage, remote)
        scripts = [attrs for tag, attrs in parse(text).attrs if tag == "script"]
        assert len(scripts) == 2 and all("src" not in attrs for attrs in scripts)


def test_names_and_titles_are_escaped():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (3,), name="</script><b>&amp;")
        y = gc.neg(x, name='say "hi"')
    text = dump_graph(g, [y], "html", title="<i>f</i> & co")
    page = parse(text)
    assert page.title == "<i>f</i> & co"
    assert "<b>" not in text and "</script><b>" not in text
    assert [n["name"] for n in payload(page)["nodes"]] == ["</script><b>&amp;", 'say "hi"']


def test_optimized_page_colours_nodes_by_kernel():
    f, _ = mlp_train_step()
    data = payload(parse(f.dump(stage="optimized", format="html")))
    kernels = {k["id"]: k for k in data["kernels"]}
    assert len(kernels) > 3
    assert [k["colour"] for k in data["kernels"]] == [PALETTE[i % len(PALETTE)]
                                                      for i in sorted(kernels)]
    first = [k["colour"] for k in data["kernels"][:len(PALETTE)]]
    assert len(set(first)) == len(first), "the first kernels all differ in colour"
    for record in data["nodes"]:
        assert record["kernel"] is None or record["kernel"] in kernels
    computed = {n["id"] for n in data["nodes"] if n["kernel"] is not None}
    assert computed == {i for k in data["kernels"] for i in k["nodes"]}
    assert all(k["expression"].startswith(("out", "t0")) for k in data["kernels"])


def test_kernels_stage_page_groups_by_kernel():
    g, fetches = scoped_graph()
    part = partition(g, fetches)
    data = payload(parse(dump_kernels(part, "html", title="kernels of f")))
    assert data["group_by"] == "kernel" and data["title"] == "kernels of f"
    assert [k["id"] for k in data["kernels"]] == [grp.id for grp in part.groups]
    assert {n["id"] for n in data["nodes"]} == {n.id for n in closure(fetches)}


def test_a_10000_node_graph_makes_a_small_page_quickly():
    g, y = big_graph()
    part = partition(g, [y])
    for grouping in (None, part):
        start = time.perf_counter()
        text = dump_graph(g, [y], "html", partition=grouping)
        seconds = time.perf_counter() - start
        assert seconds < 3, seconds
        assert len(text.encode()) < 5 * 2 ** 20, len(text)
        data = payload(parse(text))
        assert len(data["nodes"]) == len(g.nodes) > 10_000
    # the payload is embedded once: no node name appears outside it
    assert text.count("block57/sin_41") == 1


# ---- the page's script, run by node.js against a stand-in DOM --------------------------------
DOM = r"""
"use strict";
const queue = [];
const later = fn => { queue.push(fn); return queue.length; };
const flush = () => { while (queue.length) queue.shift()(); };

class El {
  constructor(tag) {
    Object.assign(this, {tagName: tag, childNodes: [], parentNode: null, listeners: {},
                         style: {}, className: "", title: "", hidden: false, value: "",
                         id: "", _open: false, _text: null, scrolled: false});
    const set = new Set();
    this.classList = {add: c => set.add(c), remove: c => set.delete(c), contains: c => set.has(c)};
  }
  get firstChild() { return this.childNodes[0] || null; }
  appendChild(c) {
    if (c.parentNode) c.remove();
    c.parentNode = this;
    this.childNodes.push(c);
    return c;
  }
  remove() {
    const p = this.parentNode;
    if (p) { p.childNodes.splice(p.childNodes.indexOf(this), 1); this.parentNode = null; }
  }
  replaceChildren() { for (const c of [...this.childNodes]) c.remove(); }
  get textContent() {
    return this._text !== null ? this._text : this.childNodes.map(c => c.textContent).join("");
  }
  set textContent(t) { this.replaceChildren(); this.appendChild(text(t)); }
  get open() { return this._open; }
  set open(v) {   // as in browsers, "toggle" fires later, once the change is made
    if (this._open !== !!v) { this._open = !!v; later(() => this.fire("toggle")); }
  }
  addEventListener(type, fn) { (this.listeners[type] = this.listeners[type] || []).push(fn); }
  fire(type) { for (const fn of this.listeners[type] || []) fn({type, target: this}); }
  scrollIntoView() { this.scrolled = true; }
  all(test) {
    const found = [];
    const walk = n => { for (const c of n.childNodes) { if (test(c)) found.push(c); walk(c); } };
    walk(this);
    return found;
  }
}
function text(t) { const n = new El("#text"); n._text = String(t); return n; }

const byId = {};
const body = new El("body");
function make(tag, id, parent) {
  const e = new El(tag);
  e.id = id;
  byId[id] = e;
  return (parent || body).appendChild(e);
}
make("script", "graphc-data")._text = PAYLOAD;
make("p", "stats"); make("input", "search");
const label = make("label", "label"); make("select", "group-by", label);
make("button", "expand"); make("button", "collapse");
const main = make("main", "main");
make("div", "tree", main);
make("div", "results", main).hidden = true;
globalThis.document = {getElementById: id => byId[id] || null, createElement: tag => new El(tag),
                       createTextNode: text};
globalThis.setTimeout = fn => later(fn);
globalThis.clearTimeout = () => {};

// what a reader sees
const entries = root => root.all(n => n.className === "entry");
const nameOf = entry => entry.firstChild.childNodes.find(c => c.className === "name").textContent;
function visible(n) {   // no hidden ancestor, and every <details> around it open
  for (let p = n.parentNode, child = n; p; child = p, p = p.parentNode) {
    const closed = p.tagName === "details" && !p.open && child.tagName !== "summary";
    if (p.hidden || closed) return false;
  }
  return true;
}
const shownNames = root => entries(root).filter(visible).map(nameOf);
const summaries = root => root.childNodes.filter(c => c.tagName === "details").map(d => ({
  label: d.firstChild.childNodes[0].textContent, count: d.firstChild.childNodes[1].textContent,
  open: d.open, background: d.firstChild.style.background || null}));
function details(label) {
  return byId.tree.all(n => n.tagName === "details" &&
                       n.firstChild.childNodes[0].textContent === label)[0];
}
const directNames = d => entries(d).filter(e => {
  let p = e.parentNode; while (p.tagName !== "details") p = p.parentNode; return p === d;
}).map(nameOf);
const field = (info, label) =>
  info.childNodes.find(c => c.childNodes[0].textContent === label + ": ");

eval(SCRIPT);
flush();
const tree = byId.tree.childNodes.find(c => !c.hidden);
const out = {
  stats: byId.stats.textContent, groupByHidden: label.hidden,
  rendered: entries(byId.tree).length, shown: shownNames(byId.tree), top: summaries(tree),
};
// open a scope: its rows render then, not before
const scope = details(OPEN);
out.beforeOpen = directNames(scope).length;
scope.open = true; flush();
out.afterOpen = directNames(scope);
out.colours = Object.fromEntries(entries(scope).map(
  e => [nameOf(e), e.firstChild.style.background || null]));
out.hover = Object.fromEntries(entries(scope).map(e => [nameOf(e), e.firstChild.title]));
// search, then follow a consumer from a result's details back into the tree
byId.search.value = QUERY; byId.search.fire("input"); flush();
out.search = {summary: byId.results.childNodes[0].textContent, names: shownNames(byId.results),
              treeHidden: byId.tree.hidden,
              more: byId.results.all(n => n.className === "more").map(b => b.textContent)};
const hit = entries(byId.results)[0];
hit.firstChild.fire("click"); flush();
const info = hit.childNodes[1];
out.info = Object.fromEntries(["inputs", "consumers", "source", "type"].map(
  label => [label, field(info, label).textContent]));
const follow = field(info, "consumers").all(n => n.className === "link")[0];
out.followed = follow.textContent;
follow.fire("click"); flush();
const flashed = entries(byId.tree).filter(
  e => e.firstChild.classList.contains("flash") || e.scrolled);
out.reveal = {search: byId.search.value, treeHidden: byId.tree.hidden,
              resultsHidden: byId.results.hidden, names: flashed.map(nameOf),
              visible: flashed.map(visible)};
// group by kernel, when there are kernels
if (!label.hidden) {
  byId["group-by"].value = "kernel"; byId["group-by"].fire("change"); flush();
  const kernelTree = byId.tree.childNodes.find(c => !c.hidden);
  out.kernelTop = summaries(kernelTree);
}
byId.expand.fire("click"); flush();
out.expanded = shownNames(byId.tree.childNodes.find(c => !c.hidden)).length;
byId.collapse.fire("click"); flush();
out.collapsed = summaries(byId.tree.childNodes.find(c => !c.hidden)).filter(s => s.open).length;
console.log(JSON.stringify(out));
"""


def run_page(text, open_scope, query):
    """Run the page's script in node.js with the stand-in DOM; returns what the run saw."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node.js is not on the PATH: the page's script is checked only as text")
    page = parse(text)
    script = re.search(r"<script>(.*)</script>", text, re.S).group(1)
    program = (f"const PAYLOAD = {json.dumps(page.text_of['graphc-data'])};\n"
               f"const SCRIPT = {json.dumps(script)};\n"
               f"const OPEN = {json.dumps(open_scope)};\nconst QUERY = {json.dumps(query)};\n"
               + DOM)
    done = subprocess.run([node, "-"], input=program, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_script_groups_nodes_by_scope_and_follows_edges():
    g, fetches = scoped_graph()
    seen = run_page(gc.dump(fetches, format="html"), "net/dense/", "act")
    nodes = closure(fetches)
    assert seen["stats"].startswith(f"{len(nodes)} nodes.")
    assert seen["groupByHidden"] is True  # no kernels, no grouping by kernel
    # a small graph starts open: every node rendered and shown
    assert seen["rendered"] == len(nodes) and sorted(seen["shown"]) == sorted(
        n.name for n in nodes)
    assert [(s["label"], s["open"]) for s in seen["top"]] == [("net/", True),
                                                               ("gradients/", True)]
    dense = sorted(n.name for n in nodes if n.name.startswith("net/dense/"))
    assert seen["beforeOpen"] == len(dense) and sorted(seen["afterOpen"]) == dense
    act = next(n for n in nodes if n.name == "net/dense/act")
    assert seen["hover"]["net/dense/act"] == f"{act.outputs[0].type}\n{act.source}"
    assert seen["search"]["summary"] == f"1 of {len(nodes)} nodes match \u201cact\u201d"
    assert seen["search"]["names"] == ["net/dense/act"] and seen["search"]["treeHidden"]
    assert seen["info"]["inputs"] == "inputs: net/dense/matmul"
    assert seen["info"]["source"] == f"source: {act.source}"
    consumers = sorted({c.name for c in nodes if any(t.node is act for t in c.inputs)})
    assert sorted(seen["info"]["consumers"].removeprefix("consumers: ").split(", ")) == consumers
    assert seen["reveal"] == {"search": "", "treeHidden": False, "resultsHidden": True,
                              "names": [seen["followed"]], "visible": [True]}
    assert seen["expanded"] == len(nodes) and seen["collapsed"] == 0


def test_script_colours_rows_by_kernel_and_groups_by_kernel():
    f, _ = mlp_train_step()
    text = f.dump(stage="optimized", format="html")
    data = payload(parse(text))
    seen = run_page(text, "layer2/", "layer2/matmul")
    colour = {k["id"]: k["colour"] for k in data["kernels"]}
    want = {n["name"]: colour.get(n["kernel"]) for n in data["nodes"]
            if n["name"].startswith("layer2/")}
    assert seen["colours"] == want
    assert len({c for c in want.values() if c}) >= 1 and None in want.values()  # W, b: none
    assert seen["groupByHidden"] is False
    labels = [s["label"] for s in seen["kernelTop"]]
    assert labels[0] == "buffers (computed by no kernel)"
    assert labels[1:] == [f"k{k['id']} {k['kind']}" for k in data["kernels"]]
    assert [s["background"] for s in seen["kernelTop"][1:]] == [k["colour"]
                                                                for k in data["kernels"]]


def test_script_keeps_a_10000_node_page_small_until_opened():
    g, y = big_graph()
    seen = run_page(dump_graph(g, [y], "html"), "block57/", "block5")
    # scopes start collapsed: only the few unscoped rows are rendered
    assert seen["rendered"] == 1 and seen["shown"] == ["x"]
    assert len(seen["top"]) == 100 and not any(s["open"] for s in seen["top"])
    assert seen["top"][57]["count"] == " 100 nodes"
    assert seen["beforeOpen"] == 0 and len(seen["afterOpen"]) == 100
    # block5 and block50..block59: results come a page at a time
    matches = sum(1 for n in g.nodes if "block5" in n.name)
    assert matches == 1100
    assert seen["search"]["summary"] == \
        f"{matches} of {len(g.nodes)} nodes match \u201cblock5\u201d"
    assert len(seen["search"]["names"]) == 200
    assert seen["search"]["more"] == [f"show 200 more of {matches - 200}"]
    assert seen["reveal"]["names"] == [seen["followed"]] and seen["reveal"]["visible"] == [True]
    assert seen["expanded"] == len(g.nodes)
