"""TensorType: a dtype and a shape whose dims are ints or named symbols (Dim)."""
import itertools

from ..errors import ShapeError
from .dtypes import as_dtype

_fresh = itertools.count()


class Dim:
    """A dimension known only at run time, such as the batch dim of a placeholder.

    Two Dims are the same dimension only if they are the same object; `None` in a placeholder's
    shape becomes a fresh Dim named after the placeholder and the axis.
    """

    __slots__ = ("name", "_id")

    def __init__(self, name=None):
        self._id = next(_fresh)
        self.name = name or f"d{self._id}"

    def __repr__(self):
        return self.name

    def __reduce__(self):
        return (Dim, (self.name,))


def is_static(dim):
    return isinstance(dim, int)


class TensorType:
    __slots__ = ("dtype", "shape")

    def __init__(self, dtype, shape):
        self.dtype = as_dtype(dtype)
        self.shape = tuple(int(d) if not isinstance(d, Dim) else d for d in shape)

    @property
    def rank(self):
        return len(self.shape)

    @property
    def is_static(self):
        return all(isinstance(d, int) for d in self.shape)

    def num_elements(self):
        """The element count when every dim is known, else None."""
        if not self.is_static:
            return None
        n = 1
        for d in self.shape:
            n *= d
        return n

    def __eq__(self, other):
        return (isinstance(other, TensorType) and self.dtype is other.dtype
                and self.shape == other.shape)

    def __hash__(self):
        return hash((self.dtype.name, self.shape))

    def __repr__(self):
        """As dumps show it: run-time dims by name (float32[x.0, 4]); see format_type."""
        return f"{self.dtype.name}[{', '.join(str(d) for d in self.shape)}]"


def broadcast_shapes(*shapes, what="broadcast"):
    """numpy's broadcasting rule over static and symbolic dims.

    A symbolic dim broadcasts against 1 and against itself; against a known size n > 1 it is
    taken to be n (the run-time shape check holds it to that).
    """
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for axis in range(rank):
        dims = [s[len(s) - rank + axis] for s in shapes if len(s) - rank + axis >= 0]
        result = 1
        for d in dims:
            if d == 1 or d == result:  # ints by value, symbolic Dims by identity
                continue
            if result == 1:
                result = d
            elif isinstance(result, int) and isinstance(d, int):
                raise ShapeError(f"cannot {what} shapes {' and '.join(map(format_shape, shapes))}: "
                                 f"axis {axis - rank} has sizes {result} and {d}")
            elif isinstance(d, int):
                result = d
            # two different symbols: keep the first; the run-time check compares them
        out.append(result)
    return tuple(out)


def _message_dim(d):
    return "None" if isinstance(d, Dim) else str(d)


def format_shape(shape):
    """A shape as error messages show it: a dim known only at run time is None, as Keras and
    TensorFlow users read it ((None, 4)); dumps name it instead (x.0)."""
    return "(" + ", ".join(map(_message_dim, shape)) + ("," if len(shape) == 1 else "") + ")"


def format_type(t):
    """A TensorType as error messages show it: float32[None, 4]."""
    return f"{t.dtype.name}[{', '.join(map(_message_dim, t.shape))}]"


def normalize_axis(axis, rank, what="axis"):
    if not -rank <= axis < max(rank, 1) or (rank == 0 and axis not in (0, -1)):
        raise ShapeError(f"{what} {axis} is out of range for a tensor of rank {rank}")
    return axis % rank if rank else 0


def normalize_axes(axis, rank):
    """axis=None|int|sequence -> a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(rank))
    if isinstance(axis, int):
        axis = (axis,)
    axes = tuple(sorted(normalize_axis(int(a), rank) for a in axis))
    if len(set(axes)) != len(axes):
        raise ShapeError(f"repeated axis in {tuple(axis)}")
    return axes
