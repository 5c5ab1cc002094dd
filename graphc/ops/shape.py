"""Shape and movement ops: reshape, transpose, expand_dims, squeeze, stop_gradient, and the
indexing, joining and gathering ops of DESIGN.md section 3."""
import builtins

import numpy as np

from ..errors import ShapeError
from ..ir.types import Dim, TensorType, format_shape, normalize_axis
from .elementwise import _tensor
from .registry import NOT_DIFFERENTIABLE, apply, register


def _prod(dims):
    n = 1
    for d in dims:
        n *= d
    return n


# ---- reshape ------------------------------------------------------------------------------
def _reshape_infer(x, *, shape):
    unknown = [i for i, d in enumerate(shape) if not isinstance(d, int) or d == -1]
    if len(unknown) > 1:
        raise ShapeError(f"reshape to {format_shape(shape)}: at most one dim may be -1 or "
                         "unknown; use gc.reshape_like for more")
    known_in = [d for d in x.shape if isinstance(d, int)]
    syms_in = [d for d in x.shape if not isinstance(d, int)]
    known_out = _prod(d for d in shape if isinstance(d, int) and d != -1)
    if not unknown:
        if not syms_in and _prod(known_in) != known_out:
            raise ShapeError(f"cannot reshape {format_shape(x.shape)} ({_prod(known_in)} "
                             f"elements) to {format_shape(shape)} ({known_out} elements)")
        return TensorType(x.dtype, shape)
    slot = unknown[0]
    if not syms_in:
        total = _prod(known_in)
        if known_out == 0 or total % known_out:
            raise ShapeError(f"cannot reshape {format_shape(x.shape)} ({total} elements) to "
                             f"{format_shape(shape)}")
        fill = total // known_out
    elif len(syms_in) == 1 and _prod(known_in) == known_out:
        fill = syms_in[0]  # (N, 28, 28) -> (-1, 784): the unknown dim is N again
    elif isinstance(shape[slot], Dim):
        fill = shape[slot]
    else:
        fill = Dim()
    return TensorType(x.dtype, shape[:slot] + (fill,) + shape[slot + 1:])


def _reshape_ref(x, *, shape):
    return x.reshape(tuple(d if isinstance(d, int) else -1 for d in shape))


register("reshape", infer=_reshape_infer, ref=_reshape_ref,
         grad=lambda node, g: [reshape_like(g, node.inputs[0])], kind="view",
         doc="same elements, new shape (one dim may be -1)")

register("reshape_like", infer=lambda x, like: TensorType(x.dtype, like.shape),
         ref=lambda x, like: x.reshape(like.shape),
         grad=lambda node, g: [reshape_like(g, node.inputs[0]), None], kind="view",
         doc="x reshaped to the run-time shape of `like`")


def reshape(x, shape, name=None):
    """x with a new shape; one dim may be -1 (inferred)."""
    x = _tensor(x)
    shape = tuple(shape) if isinstance(shape, (list, tuple)) else (shape,)
    shape = tuple(int(d) if isinstance(d, (int, np.integer)) else d for d in shape)
    if shape == x.shape:
        return x
    return apply("reshape", [x], name=name, shape=shape)


def reshape_like(x, like, name=None):
    if x.shape == like.shape:
        return x
    return apply("reshape_like", [x, like], name=name)


# ---- transpose ----------------------------------------------------------------------------
def _transpose_infer(x, *, perm):
    if sorted(perm) != list(range(x.rank)):
        raise ShapeError(f"transpose perm {perm} is not a permutation of the {x.rank} axes")
    return TensorType(x.dtype, tuple(x.shape[p] for p in perm))


register("transpose", infer=_transpose_infer, ref=lambda x, *, perm: np.transpose(x, perm),
         grad=lambda node, g: [transpose(g, tuple(np.argsort(node.attrs["perm"])))],
         kind="view", doc="permute axes")


def transpose(x, perm=None, name=None):
    """Axes permuted by `perm` (default: reversed)."""
    x = _tensor(x)
    perm = tuple(reversed(range(x.rank))) if perm is None else tuple(
        normalize_axis(int(p), x.rank) for p in perm)
    if perm == tuple(range(x.rank)):
        return x
    return apply("transpose", [x], name=name, perm=perm)


def matrix_transpose(x):
    """Swap the last two axes."""
    perm = list(range(x.ndim))
    perm[-2], perm[-1] = perm[-1], perm[-2]
    return transpose(x, perm)


# ---- expand_dims / squeeze -----------------------------------------------------------------
def expand_dims(x, axis, name=None):
    """x with a new axis of size 1 at `axis`."""
    x = _tensor(x)
    axis = normalize_axis(axis, x.rank + 1)
    return reshape(x, x.shape[:axis] + (1,) + x.shape[axis:], name=name) if x.type.is_static \
        or builtins.sum(not isinstance(d, int) for d in x.shape) <= 1 \
        else apply("expand_dims", [x], name=name, axis=axis)


register("expand_dims",
         infer=lambda x, *, axis: TensorType(x.dtype, x.shape[:axis] + (1,) + x.shape[axis:]),
         ref=lambda x, *, axis: np.expand_dims(x, axis),
         grad=lambda node, g: [reshape_like(g, node.inputs[0])], kind="view",
         doc="insert a size-1 axis")


def _squeeze_infer(x, *, axes):
    for a in axes:
        if x.shape[a] != 1:
            raise ShapeError(f"squeeze axis {a}: size is {x.shape[a]}, not 1")
    return TensorType(x.dtype, tuple(d for i, d in enumerate(x.shape) if i not in axes))


register("squeeze", infer=_squeeze_infer, ref=lambda x, *, axes: np.squeeze(x, axis=axes),
         grad=lambda node, g: [reshape_like(g, node.inputs[0])], kind="view",
         doc="drop size-1 axes")


def squeeze(x, axis=None, name=None):
    """x without its size-1 axes (all of them, or those in `axis`)."""
    x = _tensor(x)
    if axis is None:
        axes = tuple(i for i, d in enumerate(x.shape) if d == 1)
    else:
        axes = tuple(sorted(normalize_axis(a, x.rank) for a in
                            ((axis,) if isinstance(axis, int) else axis)))
    if not axes:
        return x
    return apply("squeeze", [x], name=name, axes=axes)


def reshape_like_reduced(g, x, axes):
    """g, the result of reducing x over `axes` without keepdims, as if keepdims were set."""
    for a in sorted(axes):
        g = expand_dims(g, a)
    return g


# ---- stop_gradient ------------------------------------------------------------------------
register("stop_gradient", infer=lambda x: x, ref=lambda x: x, grad=NOT_DIFFERENTIABLE,
         kind="elementwise", doc="identity that blocks gradients")


def stop_gradient(x, name=None):
    """x itself, seen by gc.grad as a constant."""
    return apply("stop_gradient", [_tensor(x)], name=name)


# ---- basic indexing ---------------------------------------------------------------------
def getitem(x, index):
    """numpy basic indexing: ints, slices with steps, None and Ellipsis."""
    raise NotImplementedError  # written in the next change
