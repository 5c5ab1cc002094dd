"""Reductions over axes: sum, mean, max, min, prod, argmax, argmin; logsumexp on top."""
import builtins

import numpy as np

from ..errors import DTypeError, ShapeError
from ..ir import dtypes
from ..ir.types import TensorType, format_shape, normalize_axes, normalize_axis
from .broadcast import broadcast_like
from .elementwise import _tensor, cast, equal, where, zeros_like
from ..kernels import lowering_rules as rules
from .registry import NOT_DIFFERENTIABLE, apply, permuted_axes, register


def _reduced_shape(shape, axes, keepdims):
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _keepdims_grad(node, g):
    """g reshaped as if keepdims=True, ready to broadcast against the input."""
    x = node.inputs[0]
    if node.attrs["keepdims"]:
        return g
    from .shape import reshape_like_reduced
    return reshape_like_reduced(g, x, node.attrs["axes"])


def _sum_grad(node, g):
    return [broadcast_like(_keepdims_grad(node, g), node.inputs[0])]


def _mean_grad(node, g):
    x = node.inputs[0]
    return [broadcast_like(_keepdims_grad(node, g), x) / reduced_size(x, node.attrs["axes"])]


def _extremum_grad(node, g):
    # the gradient is shared equally among tied extrema, as TF and JAX do
    x = node.inputs[0]
    y = broadcast_like(_keepdims_grad(node, node.outputs[0]), x)
    mask = cast(equal(x, y), x.dtype)
    count = broadcast_like(_keepdims_grad(node, apply("sum", [mask], axes=node.attrs["axes"],
                                                        keepdims=node.attrs["keepdims"])), x)
    return [broadcast_like(_keepdims_grad(node, g), x) * mask / count]


def _prod_grad(node, g):
    # d prod / d x_i = prod / x_i, computed without dividing where x_i == 0 by
    # multiplying the products of the other elements (exclusive cumulative products).
    x = node.inputs[0]
    from .shape import prod_of_others
    return [broadcast_like(_keepdims_grad(node, g), x) * prod_of_others(x, node.attrs["axes"])]


def _check_not_empty(name, x, axes):
    """max, min, argmax and argmin of no values are undefined: numpy raises, and so does
    graphc, when the graph is built for a static 0 and at run time for a run-time dim."""
    for a in axes:
        if a < x.rank and x.shape[a] == 0:
            raise ShapeError(f"{name} over axis {a} of shape {format_shape(x.shape)}, which is "
                             f"empty: the {name} of no values is undefined")


def _reduce_infer(name, has_identity=True, accepts_bool=False, out_dtype=None):
    def infer(x, *, axes, keepdims):
        if x.dtype.is_bool and not accepts_bool:
            raise DTypeError(f"{name} expects a numeric tensor, got bool; cast it first")
        for a in axes:
            if not 0 <= a < builtins.max(x.rank, 1):
                raise ShapeError(f"{name}: axis {a} out of range for rank {x.rank}")
        if not has_identity:
            _check_not_empty(name, x, axes)
        return TensorType(out_dtype or x.dtype, _reduced_shape(x.shape, axes, keepdims))
    return infer


def _ref(fn):
    def ref(x, *, axes, keepdims):
        return np.asarray(fn(x, axis=axes, keepdims=keepdims))
    return ref


def _permuted(node, perm):
    """A reduction over a transposed input reduces the permuted axes; without keepdims the
    axes left keep the transpose's order, renumbered past the removed ones."""
    axes, keepdims = node.attrs["axes"], node.attrs["keepdims"]
    new_axes = permuted_axes(axes, perm)
    if keepdims:
        return dict(node.attrs, axes=new_axes), tuple(perm)
    kept = [perm[i] for i in range(len(perm)) if i not in axes]
    return dict(node.attrs, axes=new_axes), tuple(sorted(kept).index(a) for a in kept)


# name: (numpy reference, gradient, whether it has a value over no elements)
REDUCTIONS = {
    "sum": (np.sum, _sum_grad, True),
    "mean": (np.mean, _mean_grad, True),  # NaN over no elements
    "max": (np.max, _extremum_grad, False),
    "min": (np.min, _extremum_grad, False),
    "prod": (np.prod, _prod_grad, True),
}

for _name, (_fn, _grad, _has_identity) in REDUCTIONS.items():
    register(_name, infer=_reduce_infer(_name, _has_identity), ref=_ref(_fn), grad=_grad,
             kind="reduction", permuted=_permuted,
             lower=rules.reduction(_name),
             doc=f"{_name} over axes")


def _arg_infer(name):
    def infer(x, *, axis):
        if x.dtype.is_bool:
            raise DTypeError(f"{name} expects a numeric tensor, got bool")
        _check_not_empty(name, x, (axis,))
        return TensorType(dtypes.int64, tuple(d for i, d in enumerate(x.shape) if i != axis))
    return infer


for _name, _fn in (("argmax", np.argmax), ("argmin", np.argmin)):
    register(_name, infer=_arg_infer(_name),
             ref=(lambda fn: lambda x, *, axis: fn(x, axis=axis))(_fn),
             grad=NOT_DIFFERENTIABLE, kind="reduction", lower=rules.arg_reduction(_name),
             doc=f"{_name} along one axis (int64)")


register("reduced_size", lower=rules.reduced_size,
         infer=lambda x, *, axes: TensorType(x.dtype if x.dtype.is_float else dtypes.float32,
                                             ()),
         ref=lambda x, *, axes: np.asarray(float(np.prod([x.shape[a] for a in axes]))),
         grad=NOT_DIFFERENTIABLE, kind="elementwise", shape_only={0},
         permuted=lambda node, perm: (dict(axes=permuted_axes(node.attrs["axes"], perm)), ()),
         doc="the number of elements along `axes` (known once shapes are)")


def reduced_size(x, axes):
    return apply("reduced_size", [x], axes=tuple(axes))


def _make_reduction(opname):
    def op(x, axis=None, keepdims=False, name=None):
        x = _tensor(x)
        if opname == "mean" and not x.dtype.is_float:
            x = cast(x, dtypes.float32)
        return apply(opname, [x], name=name, axes=_axes(x, axis), keepdims=bool(keepdims))
    op.__name__ = opname
    op.__doc__ = f"{opname} over `axis` (None: all axes), numpy style."
    return op


def _axes(x, axis):
    try:
        return normalize_axes(axis, x.rank)
    except ShapeError as err:
        raise ShapeError(f"{err.detail} (tensor '{x.name}', shape {format_shape(x.shape)})",
                         x.node) from None


for _name in REDUCTIONS:
    globals()[_name] = _make_reduction(_name)


def along_axis(opname, doc):
    """The user-facing function of an op that works along one axis (argmax, softmax, ...)."""
    def op(x, axis=-1, name=None):
        x = _tensor(x)
        return apply(opname, [x], name=name, axis=normalize_axis(axis, x.rank))
    op.__name__ = opname
    op.__doc__ = doc
    return op


argmax = along_axis("argmax", "Index of the largest value along `axis` (int64).")
argmin = along_axis("argmin", "Index of the smallest value along `axis` (int64).")


def logsumexp(x, axis=None, keepdims=False, name=None):
    """log(sum(exp(x))) over `axis`, computed stably by shifting by the max."""
    from .shape import stop_gradient
    x = _tensor(x)
    m = stop_gradient(max(x, axis=axis, keepdims=True))
    m = where(apply("isfinite", [m]), m, zeros_like(m))
    from .elementwise import exp, log
    out = log(sum(exp(x - m), axis=axis, keepdims=True)) + m
    if keepdims:
        return out
    from .shape import squeeze
    return squeeze(out, axis=_axes(x, axis))
