"""The DOT dump: the graph for Graphviz (`dot -Tsvg`), nodes grouped by name scope.

The graph is built as a networkx MultiDiGraph (two inputs from one tensor are two edges) and
written as DOT text here: networkx writes DOT only through pydot or pygraphviz, which graphc
does not depend on. A node is labelled with its name, op and output type(s); an edge with the
type of the tensor it carries. A node named "a/b/c" sits in cluster "a/b", nested in "a".
"""
import networkx as nx

from .text import nodes_for


def to_networkx(graph, tensors=()):
    """The nodes behind `tensors` as a MultiDiGraph keyed by node id, with labels and scopes."""
    g = nx.MultiDiGraph()
    for node in nodes_for(graph, tensors):
        types = ", ".join(str(t.type) for t in node.outputs)
        g.add_node(node.id, label=f"{node.name}\n{node.op}\n{types}",
                   scope=node.name.rpartition("/")[0])
        for t in node.inputs:
            g.add_edge(t.node.id, node.id, label=str(t.type))
    return g


def quote(text):
    """A DOT string literal; newlines become Graphviz's centred line break \\n."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _scope_tree(g):
    """{"nodes": [ids], "scopes": {full scope name: subtree}}, nested along the '/'s."""
    root = {"nodes": [], "scopes": {}}
    for node_id, scope in g.nodes(data="scope"):
        tree = root
        parts = scope.split("/") if scope else []
        for depth in range(len(parts)):
            prefix = "/".join(parts[:depth + 1])
            tree = tree["scopes"].setdefault(prefix, {"nodes": [], "scopes": {}})
        tree["nodes"].append(node_id)
    return root


def _write_tree(g, tree, indent, lines, clusters):
    pad = "  " * indent
    for node_id in tree["nodes"]:
        lines.append(f"{pad}n{node_id} [label={quote(g.nodes[node_id]['label'])}];")
    for scope, sub in tree["scopes"].items():
        lines.append(f"{pad}subgraph cluster_{len(clusters)} {{")
        clusters.append(scope)
        lines.append(f"{pad}  label={quote(scope)};")
        _write_tree(g, sub, indent + 1, lines, clusters)
        lines.append(f"{pad}}}")


def write_dot(g, name="graphc", comments=()):
    lines = [f"// {line}" for line in comments]
    lines += [f"digraph {quote(name)} {{",
             '  node [shape=box, fontname="monospace", fontsize=10];',
             '  edge [fontname="monospace", fontsize=9];']
    _write_tree(g, _scope_tree(g), 1, lines, [])
    for src, dst, label in g.edges(data="label"):
        lines.append(f"  n{src} -> n{dst} [label={quote(label)}];")
    lines.append("}")
    return "\n".join(lines)


def to_dot(graph, tensors=(), kernels=None):
    """DOT text; `kernels` (the kernel groups' summary lines) lead as // comments."""
    comments = ["kernels:"] + list(kernels) if kernels is not None else ()
    return write_dot(to_networkx(graph, tensors), comments=comments)
