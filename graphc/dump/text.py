"""The text dump: one line per node with name, op, type, inputs and source location."""
from ..errors import GraphcError
from ..ir.graph import Graph, Tensor


def nodes_for(graph, tensors):
    """The nodes the tensors depend on, in topological order (all nodes when none given)."""
    if not tensors:
        return list(graph.nodes)
    needed = set()
    stack = [t.node for t in tensors]
    while stack:
        node = stack.pop()
        if node.id not in needed:
            needed.add(node.id)
            stack.extend(t.node for t in node.inputs)
    return [graph.nodes[i] for i in sorted(needed)]


def _attr_text(node):
    shown = {k: v for k, v in node.attrs.items() if k not in ("uid", "dtype", "shape")}
    return " ".join(f"{k}={v!r}" for k, v in shown.items())


def to_text(graph, tensors=()):
    lines = []
    for node in nodes_for(graph, tensors):
        types = ", ".join(str(t.type) for t in node.outputs)
        args = ", ".join(t.name for t in node.inputs)
        attrs = _attr_text(node)
        lines.append(f"%{node.id} {node.name} = {node.op}({args}){' ' + attrs if attrs else ''}"
                     f" : {types}  # {node.source}")
    return "\n".join(lines)


FORMATS = {"text": to_text}


def dump_graph(graph, tensors=(), format="text"):
    try:
        render = FORMATS[format]
    except KeyError:
        raise GraphcError(f"unknown dump format {format!r}; expected one of "
                          f"{', '.join(FORMATS)}") from None
    return render(graph, list(tensors))


def dump(what=None, format="text"):
    """The graph behind `what` (a tensor, a list/tuple of tensors, or a Graph) before optimization."""
    from ..ir.graph import get_default_graph
    if what is None:
        return dump_graph(get_default_graph(), (), format)
    if isinstance(what, Graph):
        return dump_graph(what, (), format)
    tensors = [what] if isinstance(what, Tensor) else list(what)
    return dump_graph(tensors[0].graph, tensors, format)
