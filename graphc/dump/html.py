"""The HTML dump: one self-contained page (inline CSS and script, nothing fetched).

The page shows the graph as a tree of name scopes (or, when the graph has kernels, of kernel
groups), each a collapsible <details>; a node's row gives its id, name, op and type, is
coloured by its kernel, and shows its type and the user's source line when hovered. Clicking
a row lists its inputs and consumers, each a link that opens the scopes down to that node:
edges are listed per node rather than drawn, which keeps a 10,000-node graph usable. A search
box filters nodes by name or op.

The graph is embedded once, as JSON in a <script type="application/json"> element, and the
script renders a scope's rows only when the scope is first opened, a few hundred at a time.
Graphs of more than a few hundred nodes start with every scope collapsed. The payload:

  {"title": "...", "group_by": "scope" | "kernel",
   "nodes": [{"id": 3, "name": "dense/matmul", "op": "matmul", "type": "float32[x.0, 10]",
              "source": "train.py:12", "kernel": 0 | null, "attrs": "perm=(1, 0)",
              "inputs": [[node id, output index], ...],
              "bodies": [...]}, ...],        only on a loop or cond, see below
   "kernels": null | [the JSON dump's kernel records, each with its "colour"]}

A loop's or cond's bodies show as a collapsible group each (<details class="body">) under
its row, nested bodies inside theirs; on the kernels stage each compiled body's kernels form
one more such group (`kernel_rows`), a row per kernel, under the row of the node holding it. Each body is {"attr": "body", "label": "body:
scan(x0, h0) -> (tanh)", "nodes": [...]}: its nodes as above, with "id" the path to the node
("4/body/2": node %2 of the body attr of node %4), "local" its id in the body, "parent" the
id of the node holding the body and "body" the body's position among that node's bodies.
"""
import html
import json
from importlib import resources

from ..ir.graph import nodes_needed
from ..ir.subgraph import Body
from .json_dump import kernel_records
from .kernels import colour, expression, partition_nodes
from .text import attrs_text, node_type, nodes_for

STYLE = """
body { font: 13px/1.4 system-ui, sans-serif; margin: 0; color: #222; }
header { position: sticky; top: 0; background: #f4f4f4; border-bottom: 1px solid #ccc;
         padding: 8px 12px; z-index: 1; }
h1 { font-size: 16px; margin: 0 0 4px 0; }
#stats { color: #555; margin: 0 0 6px 0; }
#search { width: 28em; padding: 3px 6px; }
main { padding: 8px 12px; }
details { margin-left: 14px; }
summary { cursor: pointer; padding: 1px 4px; white-space: nowrap; overflow: hidden;
          text-overflow: ellipsis; }
summary .scope { font-weight: 600; }
summary .count, .matches { color: #666; }
summary code { margin-left: 8px; }
.rows { margin-left: 14px; }
.node { font-family: ui-monospace, monospace; cursor: pointer; padding: 0 4px;
        border-left: 6px solid transparent; white-space: nowrap; }
.node:hover { outline: 1px solid #888; }
.node .nid { color: #777; }
.node .name { font-weight: 600; }
.node .op { color: #1f4e8c; }
.node .type { color: #555; }
.node .kid { color: #333; font-size: 11px; }
.info { font-family: ui-monospace, monospace; margin: 2px 0 6px 20px; padding: 4px 8px;
        background: #fafafa; border: 1px solid #ddd; white-space: pre-wrap; }
.info .label { color: #777; }
.link { font: inherit; color: #1a55c4; background: none; border: none; padding: 0;
        cursor: pointer; text-decoration: underline; }
.flash { outline: 2px solid #e0a000; }
.more { margin: 2px 0 6px 14px; }
"""

# The page's script is kept as a .js file of its own, read once and inlined into every page.
SCRIPT = (resources.files(__package__) / "graph_viewer.js").read_text(encoding="utf-8")


def _payload_json(payload):
    """JSON safe inside a <script> element: no "<" can close it early."""
    return json.dumps(payload, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")


def node_entry(node, partition, path=None):
    """The node's record; `path` (parent id, attr, position) for a node of a body."""
    kernel = partition.group_of.get(node.id) if partition is not None else None
    ident = (lambda i: i) if path is None else (lambda i: f"{path[0]}/{path[1]}/{i}")
    entry = {"id": ident(node.id), "name": node.name, "op": node.op, "type": node_type(node),
             "source": node.source, "kernel": kernel.id if kernel is not None else None,
             "attrs": attrs_text(node),
             "inputs": [[ident(t.node.id), t.index] for t in node.inputs]}
    if path is not None:
        entry.update(local=node.id, parent=path[0], body=path[2])
    bodies = [(k, v) for k, v in node.attrs.items() if isinstance(v, Body)]
    if bodies:
        entry["bodies"] = [body_entry(entry["id"], k, position, body)
                           for position, (k, body) in enumerate(bodies)]
    return entry


def body_entry(parent, attr, position, body):
    args = ", ".join(t.name for t in body.arguments)
    results = ", ".join(t.name for t in body.results)
    nodes = nodes_needed(list(body.results) + list(body.arguments))
    return {"attr": attr, "label": f"{attr}: {body.name}({args}) -> ({results})",
            "nodes": [node_entry(n, None, (parent, attr, position)) for n in nodes]}


def payload(nodes, partition, title, group_by):
    kernels = None
    if partition is not None:
        kernels = kernel_records(partition, {n.id for n in nodes})
        for record in kernels:
            record["colour"] = colour(record["id"])
    return {"title": title, "group_by": group_by,
            "nodes": [node_entry(n, partition) for n in nodes], "kernels": kernels}


def page(data):
    title = html.escape(data["title"])
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        '<head><meta charset="utf-8">',
        f"<title>{title}</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        "<header>",
        f"<h1>{title}</h1>",
        '<p id="stats"></p>',
        '<input id="search" type="search" placeholder="search by name or op" '
        'autocomplete="off" aria-label="search by name or op">',
        '<label>group by <select id="group-by"><option value="scope">name scope</option>'
        '<option value="kernel">kernel</option></select></label>',
        '<button id="expand" type="button">expand all</button>',
        '<button id="collapse" type="button">collapse all</button>',
        "</header>",
        '<main><div id="tree"></div><div id="results" hidden></div></main>',
        f'<script type="application/json" id="graphc-data">{_payload_json(data)}</script>',
        f"<script>{SCRIPT}</script>",
        "</body>",
        "</html>",
    ])


def to_html(graph, tensors=(), partition=None, title=None):
    """The page for the nodes behind `tensors`, grouped by name scope."""
    nodes = nodes_for(graph, tensors)
    if title is None:
        kernels = f", {len(partition.groups)} kernels" if partition is not None else ""
        title = "graphc graph" + kernels
    return page(payload(nodes, partition, title, "scope"))


def kernels_html(partition, title=None, bodies=()):
    """The kernels stage: the same page, grouped by kernel, with the compiled bodies'
    kernels under the rows of their nodes."""
    graph, outputs = partition_nodes(partition)
    nodes = nodes_for(graph, outputs) if graph is not None else []
    data = payload(nodes, partition, title or "graphc kernels", "kernel")
    by_id = {entry["id"]: entry for entry in data["nodes"]}
    for b in bodies:
        if b.node.id in by_id:
            _add_kernel_rows(by_id[b.node.id], b)
    return page(data)


def _add_kernel_rows(entry, b):
    """Add the kernels of compiled body `b` (kernels.BodyKernels) to the bodies of `entry`,
    the row of its node: a row per kernel (name k<id>, op its kind, type its expression), the
    row of a kernel running a loop or cond holding that node's bodies in turn."""
    found = entry.setdefault("bodies", [])
    position = len(found)
    parent = entry["id"]
    rows = []
    for group in (b.partition.groups if b.partition is not None else ()):
        rows.append({"id": f"{parent}/kernels{position}/{group.id}", "name": f"k{group.id}",
                     "op": group.kind, "type": expression(group).text, "source": "",
                     "kernel": None, "attrs": "", "inputs": [], "local": group.id,
                     "parent": parent, "body": position})
        for inner in b.bodies:
            if b.partition.group_of.get(inner.node.id) is group:
                _add_kernel_rows(rows[-1], inner)
    found.append({"attr": "kernels", "label": b.label, "nodes": rows})
