"""Constant folding: nodes whose inputs are all constants become constants (up to a size)."""
from ..ir import dtypes
from ..ir.graph import FrozenArray
from ..ir.source import source_of
from ..ops.registry import apply, call_reference
from .rebuild import holds_only_needed, reachable, rebuild

# Folding a node into a constant larger than this would bloat the graph (and every cache key)
# with data that a kernel computes faster than it loads.
MAX_FOLDED_ELEMENTS = 1 << 16


def _foldable(node):
    return (node.spec.kind not in ("source", "stateful") and node.inputs
            and all(t.node.op == "constant" for t in node.inputs)
            and all(t.type.is_static and t.type.num_elements() <= MAX_FOLDED_ELEMENTS
                    for t in node.outputs))


def fold(node, tensor):
    if not _foldable(tensor.node):
        return tensor
    new = tensor.node
    arrays = [t.node.attrs["value"].array for t in new.inputs]
    out = call_reference(node, arrays)
    out = out[tensor.index] if isinstance(out, tuple) else out
    value = dtypes.to_storage(out, tensor.dtype).reshape(tensor.shape)
    with tensor.graph.as_default(), source_of(node.source):
        return apply("constant", [], name=node.name, value=FrozenArray(value),
                     dtype=tensor.dtype)


def constant_folding(outputs):
    """Replace every node computed from constants alone by its value."""
    if holds_only_needed(outputs) and not any(_foldable(n) for n in reachable(outputs)):
        return outputs[0].graph, outputs
    return rebuild(outputs, fold)
