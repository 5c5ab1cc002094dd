"""The text dump: one line per node (name, op, type, inputs, source), indented by name scope.

    %0 x = placeholder() : float32[x.0, 784]  # train.py:4
    layer1/
      %3 layer1/matmul = matmul(x, layer1/W) : float32[x.0, 512]  # train.py:9

With a partition (the optimized stage) each fusion group is one line, its nodes written as
one scalar expression (see kernels.py), in the scope of its root node; the nodes no kernel
computes (placeholders, variables, constants) keep their own lines.
"""
from ..ir.graph import nodes_needed
from ..ir.subgraph import Body
from .kernels import boundaries_by_group, expression, kernel_line

INDENT = "  "


def nodes_for(graph, tensors):
    """The nodes the tensors depend on, in topological order (all nodes when none given)."""
    return nodes_needed(tensors) if tensors else list(graph.nodes)


def shown_attrs(node):
    """The attrs a dump shows: not the uid, nor dtype and shape, which the output type says."""
    return {k: v for k, v in node.attrs.items() if k not in ("uid", "dtype", "shape")}


def node_type(node):
    return ", ".join(str(t.type) for t in node.outputs)


def attrs_text(node):
    return " ".join(f"{k}={v!r}" for k, v in shown_attrs(node).items())


def node_line(node):
    """The node's line; a loop's or cond's bodies follow it, indented (see body_lines)."""
    args = ", ".join(t.name for t in node.inputs)
    attrs = attrs_text(node)
    line = (f"%{node.id} {node.name} = {node.op}({args}){' ' + attrs if attrs else ''}"
            f" : {node_type(node)}  # {node.source}")
    return "\n".join([line] + body_lines(node))


def body_lines(node):
    """The bodies among the node's attrs (a loop's body and cond, a cond's branches): a
    header naming the attr, its arguments and results, then its nodes, one level deeper."""
    lines = []
    for key, value in node.attrs.items():
        if isinstance(value, Body):
            args = ", ".join(t.name for t in value.arguments)
            results = ", ".join(t.name for t in value.results)
            lines.append(f"{INDENT}{key}: {value.name}({args}) -> ({results})")
            for inner in nodes_needed(list(value.results) + list(value.arguments)):
                lines += [INDENT * 2 + part for part in node_line(inner).split("\n")]
    return lines


def scope_of(name):
    """"a/b" for "a/b/c"; "" for a name outside every scope."""
    return name.rpartition("/")[0]


class Scope:
    """A name scope: its entries (items and sub-scopes) in order of first appearance."""

    def __init__(self, name):
        self.name = name
        self.entries = []
        self.children = {}

    def child(self, name):
        scope = self.children.get(name)
        if scope is None:
            scope = self.children[name] = Scope(name)
            self.entries.append(scope)
        return scope


def scope_tree(scoped_items):
    """The root Scope of (scope name, item) pairs; "a/b" nests in "a"."""
    root = Scope("")
    for scope_name, item in scoped_items:
        scope, prefix = root, ""
        for part in scope_name.split("/") if scope_name else ():
            prefix = f"{prefix}/{part}" if prefix else part
            scope = scope.child(prefix)
        scope.entries.append(item)
    return root


def _indented(scope, depth, lines):
    for entry in scope.entries:
        if isinstance(entry, Scope):
            lines.append(f"{INDENT * depth}{entry.name}/")
            _indented(entry, depth + 1, lines)
        else:
            lines.extend(INDENT * depth + part for part in entry.split("\n"))


def to_text(graph, tensors=(), partition=None, title=None):
    """The listing; `title` leads as a # comment when given."""
    nodes = nodes_for(graph, tensors)
    if partition is None:
        items = [(n.id, scope_of(n.name), node_line(n)) for n in nodes]
    else:
        ids = {n.id for n in nodes}
        items = [(n.id, scope_of(n.name), node_line(n)) for n in nodes
                 if n.id not in partition.group_of]
        # a kernel is listed where its first node would be, in the scope of its root
        items += [(g.nodes[0].id, scope_of(g.root.name), kernel_line(g))
                  for g in partition.groups if any(n.id in ids for n in g.nodes)]
        items.sort(key=lambda item: item[0])
    lines = [f"# {title}"] if title else []
    _indented(scope_tree((scope, line) for _, scope, line in items), 0, lines)
    return "\n".join(lines)


def kernels_text(partition, title=None, bodies=()):
    """Each kernel: its line, then what it reads, its nodes, and what it writes for whom; then
    each compiled body's kernels, headed by its node and indented (nested bodies deeper)."""
    lines = [f"# {title}"] if title else []
    lines += _kernel_lines(partition)
    lines += _body_kernel_lines(bodies, "")
    return "\n".join(lines)


def _body_kernel_lines(bodies, pad):
    lines = []
    for b in bodies:
        lines.append(f"{pad}# {b.label}")
        if b.partition is not None:
            lines += [f"{pad}{INDENT}{line}" for line in _kernel_lines(b.partition)]
        lines += _body_kernel_lines(b.bodies, pad + INDENT)
    return lines


def _kernel_lines(partition):
    leaving = boundaries_by_group(partition)
    lines = []
    for group in partition.groups:
        expr = expression(group)
        lines.append(kernel_line(group, expr))
        lines += [f"{INDENT}{ref} = {t.name} : {t.type}" for t, ref in expr.named_inputs]
        lines += [INDENT + node_line(n) for n in group.nodes]
        for t, name in expr.outputs:
            readers = ", ".join(f"{b.consumer} ({b.reason})" for b in leaving[group.id]
                                if b.producer == t.node.name)
            lines.append(f"{INDENT}{name} = {t.name} : {t.type}"
                         f"{' -> ' + readers if readers else ''}")
    return lines
