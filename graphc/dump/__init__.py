"""Graph dumps: text, DOT, JSON and HTML, of the graph at every stage of a compilation.

`dump(what, format)` shows the graph behind tensors before optimization; `dump_graph` and
`dump_kernels` are what `f.dump(stage=...)` calls for a function's graph at each stage:
"input" and "optimized" through `dump_graph` (the optimized one with its partition into
fusion groups), "kernels" through `dump_kernels`.
"""
from ..errors import GraphcError
from ..ir.graph import Graph, Tensor, get_default_graph
from .dot import kernels_dot, to_dot
from .html import kernels_html, to_html
from .json_dump import kernels_json, to_json
from .text import kernels_text, to_text

# format: (the graph, optionally with its fusion groups; the fusion groups alone)
FORMATS = {"text": to_text, "dot": to_dot, "json": to_json, "html": to_html}
KERNEL_FORMATS = {"text": kernels_text, "dot": kernels_dot, "json": kernels_json,
                  "html": kernels_html}


def _pick(table, format, what):
    try:
        return table[format]
    except KeyError:
        raise GraphcError(f"unknown {what} format {format!r}; expected one of "
                          f"{', '.join(table)}") from None


def dump_graph(graph, tensors=(), format="text", partition=None, title=None):
    """The nodes behind `tensors` (all of `graph` when none) in `format`.

    `partition`, the optimized stage's fusion groups, shows which nodes fused into which
    kernel; `title` (say, the function and stage) heads the dump.
    """
    render = _pick(FORMATS, format, "dump")
    return render(graph, list(tensors), partition=partition, title=title)


def dump_kernels(partition, format="text", title=None, bodies=()):
    """The fusion groups of a compiled function (the "kernels" stage) in `format`; `bodies`
    (kernels.BodyKernels) are its loops' and conds' compiled bodies, shown nested under their
    node: indented in text, a cluster in DOT, nested records in JSON, a collapsible group in
    HTML."""
    render = _pick(KERNEL_FORMATS, format, "kernel dump")
    if partition is None:
        raise GraphcError("no kernels to dump: fusion did not run (optimize='O0' or "
                          "excluding=['fusion'])")
    return render(partition, title=title, bodies=tuple(bodies))


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


__all__ = ["FORMATS", "KERNEL_FORMATS", "dump", "dump_graph", "dump_kernels"]
