"""Checking fed values against the tensors they replace."""
import numpy as np

from graphc.errors import FeedError
from graphc.ir import dtypes
from graphc.ir.types import format_shape


def check_feed(tensor, value):
    """`value` as an array of the tensor's storage dtype, or a FeedError saying what is wrong."""
    if (type(value) is np.ndarray and value.dtype == tensor.dtype.np
            and tensor.dtype is not dtypes.bfloat16 and _fits(tensor.shape, value.shape)):
        return value  # the common case, checked in a few hundred nanoseconds
    try:
        arr = np.asarray(value)
    except Exception as err:  # a ragged list, an object numpy cannot read
        raise FeedError(f"value fed for '{tensor.name}' is not an array: {err}", tensor.node)
    want = tensor.dtype
    if arr.dtype.kind not in "biuf":
        raise FeedError(f"value fed for '{tensor.name}' has dtype {arr.dtype}; expected "
                        f"{want.name}", tensor.node)
    if arr.dtype != want.np or want is dtypes.bfloat16:
        # integers of any width and sign convert where their values fit (checked below)
        lossy = not (np.can_cast(arr.dtype, want.np, "same_kind")
                     or arr.dtype.kind in "iu" and want.is_integer)
        if not lossy and want.is_integer and arr.size:
            info = np.iinfo(want.np)
            lossy = bool(arr.min() < info.min or arr.max() > info.max)
        if lossy:
            raise FeedError(f"value fed for '{tensor.name}' has dtype {arr.dtype}; expected "
                            f"{want.name} (casting would lose information)", tensor.node)
        arr = dtypes.to_storage(arr, want)
    shape = tensor.shape
    if not _fits(shape, arr.shape):
        raise FeedError(f"value fed for '{tensor.name}' has shape {format_shape(arr.shape)}; "
                        f"expected {format_shape(shape)}", tensor.node)
    return arr


def _fits(shape, concrete):
    if len(shape) != len(concrete):
        return False
    for d, n in zip(shape, concrete):
        if d != n and isinstance(d, int):
            return False
    return True
