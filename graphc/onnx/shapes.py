"""Shape computations on tensors of run-time shape, done at load time on symbolic dims.

`Shape(x)` of a tensor with run-time dims is the tuple of x's dims (ints and graphc's symbolic
Dims), a `Dims` value; `Gather`, `Slice`, `Squeeze`, `Unsqueeze`, `Concat` and `Cast` of such
values give Dims values again (where every dim comes out known, a constant), and `Reshape`,
`Expand` and `ConstantOfShape` take them as shapes whose symbolic dims graphc binds when it
runs: a batch size is fed, not compiled in, so a dynamic batch axis compiles once. Any other
use of a Dims value (arithmetic on dims, a graph output) is refused with an
OnnxUnsupportedError naming the node.
"""
import numpy as np

from ..ir import dtypes
from ..ops.sources import constant
from .proto import gc_dtype


class Dims:
    """A 1-D (or, scalar=True, 0-D) int64 ONNX value known as dims: ints and Dims."""

    def __init__(self, dims, scalar=False):
        self.dims, self.scalar = tuple(dims), scalar

    def value(self):
        """A constant where every dim is known, else self."""
        if not all(isinstance(d, int) for d in self.dims):
            return self
        arr = np.asarray(self.dims, np.int64)
        return constant(arr[0] if self.scalar else arr, dtype=dtypes.int64)


def dims_of(node, i):
    """Input i of `node` as a list of dims (from a Dims value or a static 0-D/1-D integer
    value), or None where it is neither."""
    x = node.input(i)
    if isinstance(x, Dims):
        return list(x.dims)
    value = node.static(i)
    if value is None or value.ndim > 1 or value.dtype.kind not in "iu":
        return None
    return [int(v) for v in value.reshape(-1)]


def _static_list(node, i, what):
    return [int(v) for v in node.need_static(i, what).reshape(-1)]


def _gather(node):
    dims = node.inputs[0].dims
    index = node.need_static(1, "the indices")
    picked = [dims[int(k)] for k in index.reshape(-1)]
    return Dims(picked, scalar=index.ndim == 0)


def _slice(node):
    dims = node.inputs[0].dims
    starts, ends = (_static_list(node, i, "starts and ends") for i in (1, 2))
    steps = [1] if node.input(4) is None else _static_list(node, 4, "the steps")
    return Dims(dims[slice(starts[0], ends[0], steps[0])])


def _unsqueeze(node):
    if not node.inputs[0].scalar:
        raise node.unsupported("Unsqueeze of a shape to rank 2")
    return Dims(node.inputs[0].dims)


def _squeeze(node):
    if len(node.inputs[0].dims) != 1:
        raise node.unsupported("Squeeze of a shape of more than one dim")
    return Dims(node.inputs[0].dims, scalar=True)


def _concat(node):
    out = []
    for i in range(len(node.inputs)):
        dims = dims_of(node, i)
        if dims is None:
            raise node.unsupported("Concat of a shape and a value computed at run time")
        out.extend(dims)
    return Dims(out)


def _cast(node):
    if not gc_dtype(node.attr("to")).is_integer:
        raise node.unsupported("Cast of a shape of run-time dims to a non-integer type")
    return node.inputs[0]


# ONNX op -> (the inputs that may be Dims, what computes the op on them, or None where its
# converter takes the Dims itself through dims_of)
USES = {"Gather": ((0,), _gather), "Slice": ((0,), _slice), "Unsqueeze": ((0,), _unsqueeze),
        "Squeeze": ((0,), _squeeze), "Concat": (None, _concat), "Cast": ((0,), _cast),
        "Identity": ((0,), lambda node: node.inputs[0]), "Reshape": ((1,), None),
        "Expand": ((1,), None), "ConstantOfShape": ((0,), None)}


def reshaped(x, dims, allowzero):
    """The dims of Reshape(x, dims): 0 copies x's dim (unless allowzero), and -1 is what the
    others leave of x's elements, found by cancelling the symbolic dims x and dims share."""
    dims = [x.shape[i] if isinstance(d, int) and d == 0 and not allowzero else d
            for i, d in enumerate(dims)]
    if -1 not in dims:
        return tuple(dims)
    left = list(x.shape)
    for d in dims:
        if not isinstance(d, int):
            shared = [k for k, e in enumerate(left) if e is d]
            if not shared:
                return tuple(dims)  # graphc's reshape finds what it can (one unknown dim)
            del left[shared[0]]
    if not all(isinstance(e, int) for e in left):
        return tuple(dims)
    known = int(np.prod([d for d in dims if isinstance(d, int) and d != -1]))
    dims[dims.index(-1)] = int(np.prod(left)) // known if known else 0
    return tuple(dims)
