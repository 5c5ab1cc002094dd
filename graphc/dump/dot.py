"""The DOT dump: the graph for Graphviz (`dot -Tsvg`).

The graph is built as a networkx MultiDiGraph (two inputs from one tensor are two edges) and
written as DOT text here: networkx writes DOT only through pydot or pygraphviz, which graphc
does not depend on. A node is labelled with its name, op and output type(s); an edge with the
type of the tensor it carries.

Nodes sit in clusters: by name scope (a node named "a/b/c" in cluster "a/b", nested in "a"),
or, when a partition is given (the optimized stage), one filled cluster per fusion group,
labelled with its id and kind. The kernels stage is the graph of the kernels themselves: one
box per kernel with its expression, the buffers they read, and an edge per tensor passed.

A loop's or cond's bodies are drawn beside it, one dashed cluster per body
("subgraph cluster_n4_body" for the body attr of node %4; nested bodies inside theirs),
labelled with the node, the attr and the body's arguments and results; a body's nodes are keyed
by the path to them (n4_body_n2) and its edges stay inside its cluster.
"""
import itertools
from dataclasses import dataclass, field

import networkx as nx

from ..ir.graph import nodes_needed
from ..ir.subgraph import Body
from .kernels import colour, expression, partition_nodes
from .text import Scope, node_type, nodes_for, scope_of, scope_tree

LONGEST_LABEL_LINE = 120  # characters of a kernel's expression shown in its box


@dataclass
class Cluster:
    """A DOT subgraph: its label, its entries (node keys and clusters), extra attributes."""

    name: str
    label: str
    entries: list
    attrs: dict = field(default_factory=dict)


def quote(text):
    """A DOT string literal; newlines become Graphviz's centred line break \\n."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _filled(fill):
    return {"style": "filled", "fillcolor": fill, "color": fill}


def to_networkx(graph, tensors=(), partition=None):
    """The nodes behind `tensors` as a MultiDiGraph keyed "n<id>", with labels, scopes and
    the id of the kernel computing each (None without a partition, or for a source). The
    nodes of loop and cond bodies are in it too (keyed by their path, attr "body" naming
    their cluster); g.graph["bodies"] maps a node's key to the Clusters of its bodies."""
    g = nx.MultiDiGraph()
    g.graph["bodies"] = {}
    _add_nodes(g, nodes_for(graph, tensors), "", partition)
    return g


def _add_nodes(g, nodes, prefix, partition=None, cluster=None):
    for node in nodes:
        key = f"{prefix}n{node.id}"
        kernel = partition.group_of.get(node.id) if partition is not None else None
        g.add_node(key, label=f"{node.name}\n{node.op}\n{node_type(node)}",
                   scope=scope_of(node.name),
                   kernel=kernel.id if kernel is not None else None, body=cluster)
        for t in node.inputs:
            g.add_edge(f"{prefix}n{t.node.id}", key, label=str(t.type))
        clusters = [_body_cluster(g, node, key, attr, value)
                    for attr, value in node.attrs.items() if isinstance(value, Body)]
        if clusters:
            g.graph["bodies"][key] = clusters


def _body_cluster(g, node, key, attr, body):
    """The dashed Cluster of one body of `node` (keyed `key`), its nodes added to g."""
    name = f"cluster_{key}_{attr}"
    prefix = f"{key}_{attr}_"
    nodes = nodes_needed(list(body.results) + list(body.arguments))
    _add_nodes(g, nodes, prefix, None, name)
    entries = []
    for inner in nodes:
        entries.append(f"{prefix}n{inner.id}")
        entries += g.graph["bodies"].get(f"{prefix}n{inner.id}", [])
    args = ", ".join(t.name for t in body.arguments)
    results = ", ".join(t.name for t in body.results)
    label = f"{node.name} {attr}: {body.name}({args}) -> ({results})"
    return Cluster(name, label, entries, {"style": "dashed", "color": "#555555"})


def _with_bodies(g, entries):
    """Each entry followed by the clusters of its bodies, at every level of clusters."""
    out = []
    for entry in entries:
        if isinstance(entry, Cluster):
            out.append(Cluster(entry.name, entry.label, _with_bodies(g, entry.entries),
                               entry.attrs))
        else:
            out.append(entry)
            out += g.graph["bodies"].get(entry, [])
    return out


def _scope_clusters(scope, counter):
    entries = []
    for entry in scope.entries:
        if isinstance(entry, Scope):
            name = f"cluster_{next(counter)}"
            entries.append(Cluster(name, entry.name, _scope_clusters(entry, counter)))
        else:
            entries.append(entry)
    return entries


def _kernel_clusters(g, partition):
    loose, members = [], {}
    for key, kernel in g.nodes(data="kernel"):
        if g.nodes[key].get("body"):
            continue  # drawn in its body's cluster
        if kernel is None:
            loose.append(key)
        else:
            members.setdefault(kernel, []).append(key)
    return loose + [Cluster(f"cluster_k{group.id}", f"k{group.id} {group.kind}",
                            members[group.id], _filled(colour(group.id)))
                    for group in partition.groups if group.id in members]


def _write_entries(g, entries, depth, lines):
    pad = "  " * depth
    for entry in entries:
        if isinstance(entry, Cluster):
            lines.append(f"{pad}subgraph {entry.name} {{")
            lines.append(f"{pad}  label={quote(entry.label)};")
            lines += [f"{pad}  {k}={quote(v)};" for k, v in entry.attrs.items()]
            _write_entries(g, entry.entries, depth + 1, lines)
            lines.append(f"{pad}}}")
        else:
            extra = "".join(f", {k}={quote(v)}" for k, v in g.nodes[entry].get("dot", {}).items())
            lines.append(f"{pad}{entry} [label={quote(g.nodes[entry]['label'])}{extra}];")


def write_dot(g, entries, name=None):
    """DOT text for `g` whose top level holds `entries` (node keys and Clusters). A node's
    optional "dot" attr holds extra DOT attributes for it."""
    lines = [f"digraph {quote(name or 'graphc')} {{",
             '  node [shape=box, fontname="monospace", fontsize=10];',
             '  edge [fontname="monospace", fontsize=9];']
    _write_entries(g, entries, 1, lines)
    for src, dst, label in g.edges(data="label"):
        lines.append(f"  {src} -> {dst} [label={quote(label)}];")
    lines.append("}")
    return "\n".join(lines)


def to_dot(graph, tensors=(), partition=None, title=None):
    """DOT text: clusters by kernel when a partition is given, by name scope otherwise."""
    g = to_networkx(graph, tensors, partition)
    if partition is not None:
        entries = _kernel_clusters(g, partition)
    else:
        tree = scope_tree((scope, key) for key, scope in g.nodes(data="scope")
                          if not g.nodes[key].get("body"))
        entries = _scope_clusters(tree, itertools.count())
    return write_dot(g, _with_bodies(g, entries), title)


def _short(text):
    return text if len(text) <= LONGEST_LABEL_LINE else text[:LONGEST_LABEL_LINE - 3] + "..."


def kernel_graph(partition):
    """The kernels stage as a MultiDiGraph: "k<id>" per kernel, "n<id>" per buffer node it
    reads that no kernel writes, an edge per tensor read labelled with its name."""
    graph, outputs = partition_nodes(partition)
    g = nx.MultiDiGraph()
    for group in partition.groups:
        g.add_node(f"k{group.id}", label=f"k{group.id} {group.kind}\n"
                   f"{_short(expression(group).text)}", dot=_filled(colour(group.id)))
    for node in nodes_for(graph, outputs) if graph is not None else ():
        if node.id not in partition.group_of:
            g.add_node(f"n{node.id}", label=f"{node.name}\n{node_type(node)}",
                       dot={"shape": "ellipse"})
    for group in partition.groups:
        for t in group.inputs:
            source = partition.group_of.get(t.node.id)
            g.add_edge(f"k{source.id}" if source is not None else f"n{t.node.id}",
                       f"k{group.id}", label=t.name)
    return g


def kernels_dot(partition, title=None, bodies=()):
    g = nx.MultiDiGraph()
    return write_dot(g, _kernel_entries(g, partition, bodies, ""), title)


def _kernel_entries(g, partition, bodies, prefix):
    """The kernel graph of `partition` added to g (its keys prefixed), as entries: a kernel
    that runs loops or conds in a cluster of its own with, inside, a dashed cluster per
    compiled body (its kernels drawn the same way, keys prefixed by the path to the body)."""
    inner = kernel_graph(partition)
    g.add_nodes_from((prefix + key, data) for key, data in inner.nodes(data=True))
    g.add_edges_from((prefix + u, prefix + v, data) for u, v, data in inner.edges(data=True))
    by_kernel = {}
    for i, b in enumerate(bodies):
        group = partition.group_of.get(b.node.id)
        by_kernel.setdefault(f"k{group.id}" if group is not None else None, []).append((i, b))
    entries = []
    for key in list(inner.nodes) + ([None] if None in by_kernel else []):
        clusters = [Cluster(f"cluster_{prefix}b{i}", b.label,
                            _kernel_entries(g, b.partition, b.bodies, f"{prefix}b{i}_")
                            if b.partition is not None else [],
                            {"style": "dashed", "color": "#555555"})
                    for i, b in by_kernel.get(key, ())]
        if key is None:
            entries += clusters
        elif clusters:
            entries.append(Cluster(f"cluster_{prefix}{key}", f"{key} and the bodies it runs",
                                   [prefix + key] + clusters))
        else:
            entries.append(prefix + key)
    return entries
