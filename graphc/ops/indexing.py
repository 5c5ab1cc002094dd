"""Ops that pick, place or order elements by positions held in tensors (ONNX needs them; they
are graphc ops like any other): gather_elements, scatter_elements, scatter_nd, cumsum, top_k,
einsum, round. They run through their numpy references between native steps (kind "host"),
except round, which composes from floor."""
import numbers

import numpy as np

from ..errors import DTypeError, GradientError, ShapeError
from ..ir import dtypes
from ..ir.types import TensorType, format_shape
from .registry import NOT_DIFFERENTIABLE, apply, register
from .sources import as_tensor

__all__ = ["gather_elements", "scatter_elements", "scatter_nd", "cumsum", "top_k", "einsum"]


def _axis(axis, rank, what):
    if not -rank <= axis < max(rank, 1):
        raise ShapeError(f"{what}: axis {axis} is out of range for rank {rank}")
    return axis % max(rank, 1)


def _check_int(what, t):
    if not t.dtype.is_integer:
        raise DTypeError(f"{what} expects int32 or int64 indices, got {t.dtype.name}")


def _wrapped(indices, dim):
    return np.where(indices < 0, indices + dim, indices)


# ---- gather_elements / scatter_elements ---------------------------------------------------------
def _gather_elements_infer(x, indices, *, axis):
    _check_int("gather_elements", indices)
    if indices.rank != x.rank:
        raise ShapeError(f"gather_elements: indices {format_shape(indices.shape)} must have the "
                         f"rank of x {format_shape(x.shape)}")
    return TensorType(x.dtype, indices.shape)


def _gather_elements_ref(x, indices, *, axis):
    return np.take_along_axis(x, _wrapped(indices, x.shape[axis]).astype(np.int64), axis)


def _gather_elements_grad(node, g):
    x, indices = node.inputs
    zeros = apply("fill_like", [x], value=0, dtype=x.dtype)
    return [apply("scatter_elements", [zeros, indices, g], axis=node.attrs["axis"],
                  reduction="add"), None]


register("gather_elements", infer=_gather_elements_infer, ref=_gather_elements_ref,
         grad=_gather_elements_grad, kind="host",
         doc="x's elements at indices along axis (numpy's take_along_axis)")


def _scatter_elements_infer(x, indices, updates, *, axis, reduction):
    _check_int("scatter_elements", indices)
    if indices.shape != updates.shape or x.dtype is not updates.dtype:
        raise ShapeError(f"scatter_elements: updates {format_shape(updates.shape)} "
                         f"{updates.dtype.name} must match indices "
                         f"{format_shape(indices.shape)} and x's dtype {x.dtype.name}")
    return TensorType(x.dtype, x.shape)


_REDUCE = {"none": None, "add": np.add, "mul": np.multiply, "max": np.maximum,
           "min": np.minimum}


def _scatter_elements_ref(x, indices, updates, *, axis, reduction):
    out = np.array(x, copy=True)
    idx = list(np.indices(indices.shape, sparse=True))
    idx[axis] = _wrapped(indices, x.shape[axis]).astype(np.int64)
    idx = tuple(np.broadcast_arrays(*idx))
    if _REDUCE[reduction] is None:
        out[idx] = updates
    else:
        _REDUCE[reduction].at(out, idx, updates)
    return out


def _zeros(t):
    return apply("fill_like", [t], value=0, dtype=t.dtype)


def _scatter_gradients(node, g, gather_updates):
    """[dx, None, dupdates] of a scatter writing (reduction "none": x's written places get no
    gradient) or adding (reduction "add") updates; gather_updates(g) picks g at the indices."""
    x, indices, updates = node.inputs
    reduction = node.attrs["reduction"]
    if reduction not in ("none", "add"):
        raise GradientError(f"{node.op} with reduction {reduction!r} has no gradient (only "
                            "'none' and 'add' do)", node)
    dx = g if reduction == "add" else apply(node.op, [g, indices, _zeros(updates)],
                                            **node.attrs)
    return [dx, None, gather_updates(g)]


def _scatter_elements_grad(node, g):
    return _scatter_gradients(node, g, lambda g: apply(
        "gather_elements", [g, node.inputs[1]], axis=node.attrs["axis"]))


register("scatter_elements", infer=_scatter_elements_infer, ref=_scatter_elements_ref,
         grad=_scatter_elements_grad, kind="host",
         doc="x with updates written (or combined by reduction) at indices along axis")


def _scatter_nd_infer(x, indices, updates, *, reduction):
    _check_int("scatter_nd", indices)
    k = indices.shape[-1] if indices.rank else None
    if not isinstance(k, numbers.Integral) or k > x.rank:
        raise ShapeError(f"scatter_nd: the last dim of indices {format_shape(indices.shape)} "
                         f"must be known and at most x's rank {x.rank}")
    return TensorType(x.dtype, x.shape)


def _scatter_nd_ref(x, indices, updates, *, reduction):
    out = np.array(x, copy=True)
    k = indices.shape[-1]
    flat = indices.reshape(-1, k)
    ups = updates.reshape((flat.shape[0],) + x.shape[k:])
    fn = _REDUCE[reduction]
    for i, index in enumerate(flat):
        index = tuple(_wrapped(index, np.array(x.shape[:k])))
        out[index] = ups[i] if fn is None else fn(out[index], ups[i])
    return out


def _gather_nd(g, indices):
    """g's slices at the index tuples along indices' last axis (negative ones from the end):
    the rows of g with its first k axes flattened, at each tuple's flat position."""
    from .elementwise import add, less, mul, where
    from .shape import gather, reshape, squeeze, split
    k = indices.shape[-1]
    dims = g.shape[:k]
    if not all(isinstance(d, numbers.Integral) for d in dims):
        raise GradientError("the gradient of scatter_nd needs the indexed dims known before "
                            "run time", g.node)
    flat = None
    for j, part in enumerate(split(indices, k, axis=-1) if k > 1 else [indices]):
        index = squeeze(part, -1)
        index = where(less(index, 0), add(index, dims[j]), index)
        flat = index if flat is None else add(mul(flat, dims[j]), index)
    rows = reshape(g, (int(np.prod(dims, dtype=np.int64)),) + tuple(g.shape[k:]))
    return gather(rows, flat, axis=0)


def _scatter_nd_grad(node, g):
    return _scatter_gradients(node, g, lambda g: _gather_nd(g, node.inputs[1]))


register("scatter_nd", infer=_scatter_nd_infer, ref=_scatter_nd_ref, grad=_scatter_nd_grad,
         kind="host",
         doc="x with slices of updates written at the index tuples of indices' last axis")


# ---- cumsum -------------------------------------------------------------------------------------
def _cumsum_ref(x, *, axis, exclusive, reverse):
    if reverse:
        x = np.flip(x, axis)
    out = np.cumsum(x, axis=axis, dtype=x.dtype)
    if exclusive:
        out = out - x
    return np.flip(out, axis) if reverse else out


def _cumsum_grad(node, g):
    a = node.attrs
    return [apply("cumsum", [g], axis=a["axis"], exclusive=a["exclusive"],
                  reverse=not a["reverse"])]


register("cumsum", infer=lambda x, *, axis, exclusive, reverse: x, ref=_cumsum_ref,
         grad=_cumsum_grad, kind="host",
         doc="running sums along axis (exclusive: each leaves out its own element)")


# ---- top_k --------------------------------------------------------------------------------------
def _top_k_infer(x, *, k, axis, largest, sorted):
    if isinstance(x.shape[axis], numbers.Integral) and k > x.shape[axis]:
        raise ShapeError(f"top_k: k={k} exceeds the size {x.shape[axis]} of axis {axis}")
    shape = x.shape[:axis] + (k,) + x.shape[axis + 1:]
    return TensorType(x.dtype, shape), TensorType(dtypes.int64, shape)


def _top_k_ref(x, *, k, axis, largest, sorted):
    # stable: among equal values the lower index comes first
    order = np.argsort(-x if largest else x, axis=axis, kind="stable")
    if largest and x.dtype.kind == "f":  # -x would misorder NaN-free ties only by index
        order = np.argsort(-x.astype(np.float64), axis=axis, kind="stable")
    idx = np.take(order, np.arange(k), axis=axis)
    return np.take_along_axis(x, idx, axis), idx.astype(np.int64)


register("top_k", infer=_top_k_infer, ref=_top_k_ref, grad=NOT_DIFFERENTIABLE, kind="host",
         doc="the k largest (or smallest) values along axis and their indices")


# ---- einsum -------------------------------------------------------------------------------------
def _einsum_infer(*xs, equation):
    arrays = [np.empty([d if isinstance(d, numbers.Integral) else 1 for d in x.shape],
                       x.dtype.np) for x in xs]
    if any(not isinstance(d, numbers.Integral) for x in xs for d in x.shape):
        raise ShapeError("einsum needs operands of known shapes")
    try:
        shape = np.einsum(equation, *arrays).shape
    except ValueError as err:
        raise ShapeError(f"einsum {equation!r}: {err}") from None
    return TensorType(xs[0].dtype, tuple(shape))


def _einsum_subscripts(equation, n):
    """(each operand's subscripts, the output's) of an equation without an ellipsis; an
    implicit output is numpy's: the letters used once, in alphabetical order."""
    inputs, arrow, out = equation.partition("->")
    ins = inputs.split(",")
    if not arrow:
        letters = "".join(ins)
        out = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    return ins[:n], out


def _einsum_grad(node, g):
    """Each operand's gradient is an einsum of g with the other operands onto its subscripts;
    its letters that appear nowhere else (summed over it alone) are broadcast back."""
    from .shape import broadcast_to, reshape
    equation = node.attrs["equation"]
    if "." in equation:
        raise GradientError("einsum's gradient with an ellipsis is not implemented", node)
    ins, out = _einsum_subscripts(equation, len(node.inputs))
    grads = []
    for i, x in enumerate(node.inputs):
        sub, others = ins[i], ins[:i] + ins[i + 1:]
        if len(set(sub)) != len(sub):
            raise GradientError(f"einsum's gradient for operand {i} ({sub!r}: a repeated "
                                "index, a diagonal) is not implemented", node)
        reached = set(out).union(*others)
        kept = "".join(c for c in sub if c in reached)
        operands = [g] + [t for j, t in enumerate(node.inputs) if j != i]
        gx = apply("einsum", operands, equation=",".join([out] + others) + "->" + kept)
        if kept != sub:
            gx = broadcast_to(reshape(gx, tuple(d if c in reached else 1
                                                for c, d in zip(sub, x.shape))), x.shape)
        grads.append(gx)
    return grads


register("einsum", infer=_einsum_infer,
         ref=lambda *xs, equation: np.asarray(np.einsum(equation, *xs), dtype=xs[0].dtype),
         grad=_einsum_grad, kind="host", doc="numpy's einsum over the operands")


# ---- functions ----------------------------------------------------------------------------------
def gather_elements(x, indices, axis=0, name=None):
    """x's elements at `indices` along `axis` (numpy's take_along_axis; negative indices count
    from the end)."""
    x, indices = as_tensor(x), as_tensor(indices)
    return apply("gather_elements", [x, indices], name=name,
                 axis=_axis(axis, x.rank, "gather_elements"))


def scatter_elements(x, indices, updates, axis=0, reduction="none", name=None):
    """x with `updates` written at `indices` along `axis`; reduction "add", "mul", "max" or
    "min" combines them with what is there instead."""
    x, indices, updates = as_tensor(x), as_tensor(indices), as_tensor(updates)
    if reduction not in _REDUCE:
        raise ShapeError(f"scatter_elements: unknown reduction {reduction!r}")
    return apply("scatter_elements", [x, indices, updates], name=name,
                 axis=_axis(axis, x.rank, "scatter_elements"), reduction=reduction)


def scatter_nd(x, indices, updates, reduction="none", name=None):
    """x with slices of `updates` written at the index tuples along indices' last axis."""
    if reduction not in _REDUCE:
        raise ShapeError(f"scatter_nd: unknown reduction {reduction!r}")
    return apply("scatter_nd", [as_tensor(x), as_tensor(indices), as_tensor(updates)],
                 name=name, reduction=reduction)


def cumsum(x, axis=0, exclusive=False, reverse=False, name=None):
    """Running sums of x along `axis` (TF's cumsum)."""
    x = as_tensor(x)
    return apply("cumsum", [x], name=name, axis=_axis(axis, x.rank, "cumsum"),
                 exclusive=bool(exclusive), reverse=bool(reverse))


def top_k(x, k, axis=-1, largest=True, sorted=True, name=None):
    """(values, int64 indices) of the k largest (largest=False: smallest) elements along axis,
    in order; ties keep the lower index first."""
    x = as_tensor(x)
    return apply("top_k", [x], name=name, k=int(k), axis=_axis(axis, x.rank, "top_k"),
                 largest=bool(largest), sorted=bool(sorted))


def einsum(equation, *operands, name=None):
    """numpy's einsum (operands of known shapes and one dtype)."""
    return apply("einsum", [as_tensor(x) for x in operands], name=name,
                 equation=equation.replace(" ", ""))
