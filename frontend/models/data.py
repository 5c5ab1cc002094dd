"""Arrays in and out of the step functions: structure, checks, validation split, batches."""
import math

import numpy as np

from graphc.errors import GraphcError


def as_arrays(data, what):
    """A list of numpy arrays from an array or a list/tuple of them."""
    if data is None:
        return None
    items = list(data) if isinstance(data, (list, tuple)) else [data]
    arrays = [np.asarray(a) for a in items]
    for a in arrays:
        if a.ndim == 0:
            raise GraphcError(f"{what} must be arrays with a batch axis, got a scalar")
    return arrays


def num_examples(*groups):
    sizes = {len(a) for group in groups if group for a in group}
    if len(sizes) > 1:
        raise GraphcError(f"inputs and targets have different numbers of examples: "
                          f"{sorted(sizes)}")
    if not sizes or 0 in sizes:
        raise GraphcError("no examples: the arrays are empty")
    return sizes.pop()


def label_dtype(array):
    """Labels feed as int32 (class indices) or float32."""
    if np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_:
        return "int32"
    return "float32"


def feed_dtype(array):
    return "int32" if np.issubdtype(array.dtype, np.integer) else "float32"


def split_last(groups, fraction):
    """(training part, validation part) of each array group: the validation part is the last
    `fraction` of the examples, taken before any shuffling (as Keras documents)."""
    if not 0 < fraction < 1:
        raise GraphcError(f"validation_split must be in (0, 1), got {fraction!r}")
    n = num_examples(*groups)
    cut = n - int(math.floor(n * fraction))
    if cut in (0, n):
        raise GraphcError(f"validation_split={fraction} of {n} examples leaves one of the "
                          "two parts empty")
    train = [[a[:cut] for a in g] if g else g for g in groups]
    val = [[a[cut:] for a in g] if g else g for g in groups]
    return train, val


def batch_slices(n, batch_size, order=None):
    """Index arrays (or slices) of consecutive batches; the last may be smaller."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise GraphcError(f"batch_size must be a positive integer, got {batch_size!r}")
    for start in range(0, n, batch_size):
        yield slice(start, start + batch_size) if order is None else \
            order[start:start + batch_size]
