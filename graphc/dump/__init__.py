"""Graph dumps: text, DOT and JSON (HTML comes with the optimizer's dumps).

`dump(what, format)` shows the graph behind tensors before optimization; `dump_graph` and
`dump_kernels` are what `f.dump(stage=...)` calls for a function's graph at each stage.
"""
from ..errors import GraphcError
from ..ir.graph import Graph, Tensor, get_default_graph
from .dot import to_dot
from .json_dump import kernels_json, to_json
from .text import to_text

FORMATS = {"text": to_text, "dot": to_dot, "json": to_json}
# The kernel groups alone: the fusion summary, as text or as JSON lines.
KERNEL_FORMATS = {"text": "\n".join, "json": kernels_json}


def _pick(table, format, what):
    try:
        return table[format]
    except KeyError:
        raise GraphcError(f"unknown {what} format {format!r}; expected one of "
                          f"{', '.join(table)}") from None


def dump_graph(graph, tensors=(), format="text", partition=None):
    """The nodes behind `tensors` (all of `graph` when none) in `format`: text, dot or json.

    `partition`, the optimized stage's kernel groups, adds its summary: which nodes fused into
    which kernel.
    """
    render = _pick(FORMATS, format, "dump")
    kernels = partition.summary().splitlines() if partition is not None else None
    return render(graph, list(tensors), kernels=kernels)


def dump_kernels(partition, format="text"):
    """The kernel groups of a compiled function (the "kernels" stage) as text or json."""
    render = _pick(KERNEL_FORMATS, format, "kernel dump")
    if partition is None:
        raise GraphcError("no kernels to dump: fusion did not run (optimize='O0' or "
                          "excluding=['fusion'])")
    return render(partition.summary().splitlines())


def dump(what=None, format="text"):
    """The graph behind `what` (a tensor, a list/tuple of tensors, or a Graph), unoptimized."""
    if what is None:
        return dump_graph(get_default_graph(), (), format)
    if isinstance(what, Graph):
        return dump_graph(what, (), format)
    tensors = [what] if isinstance(what, Tensor) else list(what)
    if not tensors or not all(isinstance(t, Tensor) for t in tensors):
        raise GraphcError(f"dump expects a tensor, a list or tuple of tensors, or a Graph; got "
                          f"{what!r}")
    return dump_graph(tensors[0].graph, tensors, format)


__all__ = ["FORMATS", "dump", "dump_graph", "dump_kernels"]
