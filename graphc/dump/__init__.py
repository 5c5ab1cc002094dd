"""Graph dumps: text, DOT and JSON (HTML comes with the optimizer's dumps).

`dump(what, format)` shows the graph behind tensors before optimization; `dump_graph` is what
`f.dump(stage=...)` calls with a function's graph and fetches.
"""
from ..errors import GraphcError
from ..ir.graph import Graph, Tensor, get_default_graph
from .dot import to_dot
from .json_dump import to_json
from .text import to_text

FORMATS = {"text": to_text, "dot": to_dot, "json": to_json}


def dump_graph(graph, tensors=(), format="text"):
    """The nodes behind `tensors` (all of `graph` when none) in `format`: text, dot or json."""
    try:
        render = FORMATS[format]
    except KeyError:
        raise GraphcError(f"unknown dump format {format!r}; expected one of "
                          f"{', '.join(FORMATS)}") from None
    return render(graph, list(tensors))


def dump(what=None, format="text"):
    """The graph behind `what` (a tensor, a list/tuple of tensors, or a Graph) before optimization."""
    if what is None:
        return dump_graph(get_default_graph(), (), format)
    if isinstance(what, Graph):
        return dump_graph(what, (), format)
    tensors = [what] if isinstance(what, Tensor) else list(what)
    if not tensors or not all(isinstance(t, Tensor) for t in tensors):
        raise GraphcError(f"dump expects a tensor, a list or tuple of tensors, or a Graph; got "
                          f"{what!r}")
    return dump_graph(tensors[0].graph, tensors, format)


__all__ = ["FORMATS", "dump", "dump_graph"]
