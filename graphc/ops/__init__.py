"""The op set. Importing this package registers every op and gives Tensor its operators."""
import numbers

import numpy as np

from ..ir.graph import Tensor
from . import broadcast, elementwise, linalg, nn, reductions, shape, sources, state  # noqa: F401
from . import control_flow  # noqa: F401
from . import body_draws  # noqa: F401
from . import indexing  # noqa: F401
from . import collectives  # noqa: F401
from . import ctc  # noqa: F401
from .elementwise import (abs, add, bitwise_and, bitwise_or, bitwise_xor, coerce_pair, div,
                          equal, floordiv, greater, greater_equal, invert, left_shift, less,
                          less_equal, logical_and, logical_not, logical_or, logical_xor, mod, mul,
                          neg, not_equal, pow, right_shift, sub)
from .linalg import matmul
from .shape import getitem


def _flip(fn):
    return lambda a, b: fn(b, a)


# What == and != compare elementwise; anything else (None, a string) is not equal, by identity.
COMPARABLE = (Tensor, numbers.Number, np.bool_, np.ndarray, list, tuple)


def _elementwise_or_identity(fn):
    def compare(a, b):
        return fn(a, b) if isinstance(b, COMPARABLE) else NotImplemented
    return compare


def _logical_on_bool(logical, bitwise):
    """& | ^ as numpy's: the logical op on bools, the bitwise one on integers."""
    def op(a, b):
        a, b = coerce_pair(a, b)
        return (logical if a.dtype.is_bool else bitwise)(a, b)
    return op


_and, _or, _xor = (_logical_on_bool(logical_and, bitwise_and),
                   _logical_on_bool(logical_or, bitwise_or),
                   _logical_on_bool(logical_xor, bitwise_xor))


def _invert(x):
    return logical_not(x) if x.dtype.is_bool else invert(x)


# Python operator -> op; the reflected forms swap the operands.
OPERATORS = {
    "__add__": add, "__radd__": _flip(add),
    "__sub__": sub, "__rsub__": _flip(sub),
    "__mul__": mul, "__rmul__": _flip(mul),
    "__truediv__": div, "__rtruediv__": _flip(div),
    "__floordiv__": floordiv, "__rfloordiv__": _flip(floordiv),
    "__mod__": mod, "__rmod__": _flip(mod),
    "__pow__": pow, "__rpow__": _flip(pow),
    "__matmul__": matmul, "__rmatmul__": _flip(matmul),
    "__lt__": less, "__le__": less_equal, "__gt__": greater, "__ge__": greater_equal,
    "__eq__": _elementwise_or_identity(equal), "__ne__": _elementwise_or_identity(not_equal),
    "__and__": _and, "__rand__": _flip(_and),
    "__or__": _or, "__ror__": _flip(_or),
    "__xor__": _xor, "__rxor__": _flip(_xor),
    "__lshift__": left_shift, "__rlshift__": _flip(left_shift),
    "__rshift__": right_shift, "__rrshift__": _flip(right_shift),
    "__neg__": neg, "__abs__": abs, "__invert__": _invert,
    "__pos__": lambda x: x,
    "__getitem__": getitem,
}

for _name, _fn in OPERATORS.items():
    setattr(Tensor, _name, _fn)
