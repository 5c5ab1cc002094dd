"""Broadcasting helpers that take their target shape from another tensor at run time.

Gradients need "broadcast this to x's shape" and "sum this down to x's shape" where x may have
symbolic dims; these two ops are each other's gradient.
"""
import numpy as np

from ..ir.types import TensorType, broadcast_shapes
from ..kernels import lowering_rules as rules
from .registry import apply, register


def _summed_axes(node):
    """The axes of g that sum_to_like(g, like) sums: those `like` was broadcast along."""
    g, like = node.inputs
    lead = g.rank - like.rank
    return tuple(a for a in range(g.rank)
                 if a < lead or (like.shape[a - lead] == 1 and g.shape[a] != 1))


def _sum_to_shape(g, shape):
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, d in enumerate(shape) if d == 1 and g.shape[lead + i] != 1)
    out = np.sum(g, axis=axes, keepdims=True) if axes else g
    return out.reshape(shape)


register("broadcast_like", lower=rules.broadcast,
         infer=lambda a, like: TensorType(a.dtype, broadcast_shapes(a.shape, like.shape)),
         ref=lambda a, like: np.broadcast_to(a, np.broadcast_shapes(a.shape, like.shape)),
         grad=lambda node, g: [sum_to_like(g, node.inputs[0]), None],
         kind="view", view="broadcast", shape_only={1},
         doc="Broadcast a to the shape it has against `like`.")

register("sum_to_like", lower=rules.sum_to_like,
         infer=lambda g, like: TensorType(g.dtype, like.shape),
         ref=lambda g, like: _sum_to_shape(g, like.shape),
         grad=lambda node, gg: [broadcast_like(gg, node.inputs[0]), None],
         kind="reduction", reduced_axes=_summed_axes, shape_only={1},
         doc="Sum g over the axes along which `like` was broadcast.")


def broadcast_like(a, like):
    return apply("broadcast_like", [a, like])


def sum_to_like(g, like):
    return apply("sum_to_like", [g, like])


def unbroadcast(g, x):
    """The gradient g of a broadcast result, summed back to x's shape."""
    if g is None or g.shape == x.shape:
        return g
    return sum_to_like(g, x)
