"""The op set. Importing this package registers every op and gives Tensor its operators."""
import numbers

import numpy as np

from ..ir.graph import Tensor
from . import broadcast, elementwise, linalg, nn, reductions, shape, sources, state  # noqa: F401
from . import control_flow  # noqa: F401
from . import indexing  # noqa: F401
from . import collectives  # noqa: F401
from .elementwise import (abs, add, div, equal, floordiv, greater, greater_equal, less,
                          less_equal, logical_and, logical_not, logical_or, logical_xor, mod, mul,
                          neg, not_equal, pow, sub)
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
    "__and__": logical_and, "__rand__": _flip(logical_and),
    "__or__": logical_or, "__ror__": _flip(logical_or),
    "__xor__": logical_xor, "__rxor__": _flip(logical_xor),
    "__neg__": neg, "__abs__": abs, "__invert__": logical_not,
    "__pos__": lambda x: x,
    "__getitem__": getitem,
}

for _name, _fn in OPERATORS.items():
    setattr(Tensor, _name, _fn)
