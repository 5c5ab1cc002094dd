"""Ops with no tensor inputs: constants and placeholders; and conversion of Python values."""
import numpy as np

from ..errors import DTypeError, ShapeError
from ..ir import dtypes
from ..ir.graph import FrozenArray, Tensor, new_uid
from ..ir.types import Dim, TensorType
from .registry import NOT_DIFFERENTIABLE, apply, register


def _runtime_only(*args, **attrs):
    raise RuntimeError("evaluated by the runtime, not by a reference function")


register("constant",
         infer=lambda *, value, dtype: TensorType(dtype, value.array.shape),
         ref=lambda *, value, dtype: value.array,
         grad=NOT_DIFFERENTIABLE, kind="source",
         uniform_value=lambda node: node.attrs["value"].uniform_value,
         doc="A literal array stored in the graph.")

register("placeholder",
         infer=lambda *, uid, dtype, shape: TensorType(dtype, shape),
         ref=_runtime_only, grad=NOT_DIFFERENTIABLE, kind="source", stateful=True,
         doc="A value fed at run time; None dims become symbols.")


def constant(value, dtype=None, name=None, graph=None):
    """A constant tensor from a scalar, nested list or array."""
    dtype = dtypes.default_dtype(value) if dtype is None else dtypes.as_dtype(dtype)
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise DTypeError(f"cannot make a constant from {arr.dtype} data")
    dtypes.check_fits(arr, dtype)
    stored = dtypes.to_storage(arr, dtype)
    if graph is not None:
        with graph.as_default():
            return apply("constant", [], name=name, value=FrozenArray(stored), dtype=dtype)
    return apply("constant", [], name=name, value=FrozenArray(stored), dtype=dtype)


def placeholder(dtype, shape=None, name=None):
    """A tensor fed through feed_dict; each None in `shape` becomes a named symbolic dim."""
    if shape is None:
        raise ShapeError("placeholder needs a shape (use None for dims known at run time)")
    base = name or "placeholder"
    dims = tuple(Dim(f"{base}.{axis}") if d is None else _static_dim(d)
                 for axis, d in enumerate(shape))
    return apply("placeholder", [], name=name, uid=new_uid(), dtype=dtypes.as_dtype(dtype),
                 shape=dims)


def _static_dim(d):
    if isinstance(d, Dim):
        return d
    if not isinstance(d, (int, np.integer)) or d < 0:
        raise ShapeError(f"a dim must be a non-negative int or None, got {d!r}")
    return int(d)


def as_tensor(value, dtype=None, graph=None):
    """A Tensor as it is, anything else as a constant."""
    if isinstance(value, Tensor):
        return value
    return constant(value, dtype=dtype, graph=graph)


