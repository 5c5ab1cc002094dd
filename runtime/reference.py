"""The reference device: a numpy interpreter of the graph, the oracle of every test."""
import contextlib
import math
import os

import numpy as np

from graphc.errors import GraphcError, NumericsError, ResourceError, ShapeError
from graphc.ir import dtypes
from graphc.ir.types import TensorType, format_shape
from graphc.ops.registry import call_reference
from graphc.ops.state import draw, scan_draws_shape, scan_stream


def memory_limit():
    """Bytes one tensor may take: $GRAPHC_MEMORY_LIMIT, else the machine's physical memory."""
    env = os.environ.get("GRAPHC_MEMORY_LIMIT")
    if env:
        return int(env)
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return 1 << 40


def concrete_types(node, arrays):
    """The node's output types for these concrete inputs, checked by the op's own inference."""
    spec = node.spec
    types = [TensorType(t.dtype, a.shape) for t, a in zip(node.inputs, arrays)]
    try:
        out = spec.infer(*types, **node.attrs)
    except GraphcError as err:
        raise type(err)(f"at run time: {err.detail}", node) from None
    return (out,) if isinstance(out, TensorType) else tuple(out)


def check_allocation(node, types, limit, what="output"):
    """A ResourceError naming the node where a tensor of one of `types` would exceed limit
    (a dim known only from the value, of a value-shaped op, is not counted)."""
    for t in types:
        nbytes = math.prod(d for d in t.shape if isinstance(d, int)) * t.dtype.itemsize
        if nbytes > limit:
            raise ResourceError(f"{what} {t} needs {nbytes:,} bytes, more than the "
                                f"{limit:,} bytes that can be allocated", node)


@contextlib.contextmanager
def allocating(node):
    """numpy's MemoryError, from an array no check foresaw (a reference's intermediate), as a
    ResourceError naming the node: the session stays usable."""
    try:
        yield
    except MemoryError as err:
        raise ResourceError(f"out of memory computing it on the host: {err}", node) from None


def evaluate(node, arrays, limit):
    """Run one pure op through its numpy reference, with shapes checked before allocating."""
    types = concrete_types(node, arrays)
    check_allocation(node, types, limit)
    with allocating(node):
        try:
            out = call_reference(node, arrays)
        except GraphcError:
            raise
        except (ValueError, IndexError, TypeError) as err:
            raise ShapeError(f"at run time with input shapes "
                             f"{', '.join(format_shape(a.shape) for a in arrays)}: {err}",
                             node) from None
        outs = out if isinstance(out, tuple) else (out,)
        return tuple(_shaped(dtypes.to_storage(o, t.dtype), t) for o, t in zip(outs, types))


def _shaped(array, t):
    """The array in the shape of type t; dims of t known only from the value (Dims, which
    value-shaped ops such as loops give) are taken from the array."""
    if t.is_static:
        return array.reshape(t.shape)
    if array.ndim != t.rank or any(isinstance(d, int) and d != n
                                   for d, n in zip(t.shape, array.shape)):
        raise ShapeError(f"at run time: a value of shape {format_shape(array.shape)} where "
                         f"{format_shape(t.shape)} was inferred")
    return array


def check_finite(node, outputs):
    for i, out in enumerate(outputs):
        if out.dtype.kind == "f" and not np.all(np.isfinite(out)):
            nans = int(np.isnan(out).sum())
            infs = int(np.isinf(out).sum())
            raise NumericsError(f"output {i} has {nans} NaN and {infs} Inf values "
                                f"(check_numerics=True)", node)


def random_draw(node, rng, like_arrays, limit=None):
    """A random node's numbers, their size checked first: numpy draws them in float64."""
    shape = like_arrays[0].shape if like_arrays else node.attrs["shape"]
    dims = node.attrs.get("dims")
    if dims is not None:  # a scan's draws: inputs (counter, tensors giving the dims)
        shape = scan_draws_shape(dims, [a.shape for a in like_arrays[1:]])
        rng = scan_stream(rng, like_arrays[0])
    window = None
    if node.attrs.get("window"):  # the global batch's draw, this shard's rows of it
        rows, offset = int(like_arrays[1]), int(like_arrays[2])
        if offset < 0 or offset + shape[0] > rows:
            raise GraphcError(f"a global-batch draw of rows [{offset}, {offset + shape[0]}) of "
                              f"a batch of {rows}", node)
        window, shape = (offset, offset + shape[0]), (rows,) + tuple(shape[1:])
    limit = memory_limit() if limit is None else limit
    check_allocation(node, [TensorType(node.attrs["dtype"], shape)], limit)
    check_allocation(node, [TensorType(dtypes.float64, shape)], limit,
                     "numpy draws in float64: a draw of")
    with allocating(node):
        numbers = draw(rng, node.op, shape, node.attrs["params"])
        if window is not None:
            numbers = numbers[window[0]:window[1]]
        return dtypes.to_storage(numbers, node.attrs["dtype"])
