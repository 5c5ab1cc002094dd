"""Elementwise ops, declared as tables: unary math, binary arithmetic, comparisons, logic, bits.

Each table row holds the op's numpy reference and its gradient side by side. Binary ops
broadcast as numpy does and promote dtypes by the table in graphc/ir/dtypes.py.
"""
import math

import numpy as np

from ..errors import DTypeError
from ..ir import dtypes
from ..ir.graph import Tensor
from ..ir.types import TensorType, broadcast_shapes
from .broadcast import unbroadcast
from ..kernels import lowering_rules as rules
from .registry import NOT_DIFFERENTIABLE, apply, graph_of, register
from .sources import constant

_erf = np.frompyfunc(math.erf, 1, 1)

__all__ = ["where", "cast", "clip", "fill_like", "zeros_like", "ones_like", "bitwise_not"]  # + every table op


def _np_erf(x):
    return np.asarray(_erf(x), dtype=x.dtype)


def _rounded_once(fn):
    """fn computed in float32 for a float16 x and rounded once, as a float16 device computes
    one op (numpy would round each of fn's steps to float16)."""
    def ref(x):
        if x.dtype == np.float16:
            return fn(x.astype(np.float32)).astype(np.float16)
        return fn(x)
    return ref


@_rounded_once
def _sigmoid(x):
    # split by sign so neither branch overflows
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1 / (1 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1 + ex)
    return out


# ---- unary ------------------------------------------------------------------------------------
# name: (reference, gradient g -> dx given x, y, accepted kinds, result dtype rule)
# "float" ops need a floating input; "num" ops take ints too; "pred" ops return bool;
# "bits" ops take integers or bools (on bool, invert is logical_not).
UNARY = {
    "neg": (np.negative, lambda x, y, g: -g, "num"),
    "abs": (np.abs, lambda x, y, g: g * sign(x), "num"),
    "sign": (np.sign, lambda x, y, g: zeros_like(x), "num"),
    "square": (np.square, lambda x, y, g: g * (2 * x), "num"),
    "exp": (np.exp, lambda x, y, g: g * y, "float"),
    "log": (np.log, lambda x, y, g: g / x, "float"),
    "log1p": (np.log1p, lambda x, y, g: g / (1 + x), "float"),
    "expm1": (np.expm1, lambda x, y, g: g * (y + 1), "float"),
    "sqrt": (np.sqrt, lambda x, y, g: g / (2 * y), "float"),
    "rsqrt": (_rounded_once(lambda x: 1 / np.sqrt(x)), lambda x, y, g: g * (-0.5) * y / x,
              "float"),
    "sin": (np.sin, lambda x, y, g: g * cos(x), "float"),
    "cos": (np.cos, lambda x, y, g: -(g * sin(x)), "float"),
    "tanh": (np.tanh, lambda x, y, g: g * (1 - y * y), "float"),
    "sigmoid": (_sigmoid, lambda x, y, g: g * (y * (1 - y)), "float"),
    "softplus": (lambda x: np.logaddexp(np.zeros_like(x), x), lambda x, y, g: g * sigmoid(x),
                 "float"),
    "relu": (lambda x: np.maximum(x, np.zeros_like(x)),
             # from the output (y > 0 exactly where x > 0, NaN neither): a train step
             # then keeps relu's output alone, not its input too
             lambda x, y, g: where(y > 0, g, zeros_like(g)), "num"),
    "erf": (_np_erf, lambda x, y, g: g * (2 / math.sqrt(math.pi)) * exp(-(x * x)), "float"),
    "floor": (np.floor, lambda x, y, g: zeros_like(x), "float"),
    "isnan": (np.isnan, None, "pred"),
    "isfinite": (np.isfinite, None, "pred"),
    "logical_not": (np.logical_not, None, "bool"),
    "invert": (np.invert, None, "bits"),
}


def _unary_infer(name, accepts):
    def infer(x):
        if accepts == "float" and not x.dtype.is_float:
            raise DTypeError(f"{name} expects a floating-point tensor, got {x.dtype.name}; "
                             f"cast it first (gc.cast(x, gc.float32))")
        if accepts == "num" and x.dtype.is_bool:
            raise DTypeError(f"{name} expects a numeric tensor, got bool")
        if accepts == "bool" and not x.dtype.is_bool:
            raise DTypeError(f"{name} expects a bool tensor, got {x.dtype.name}")
        if accepts == "bits" and not (x.dtype.is_integer or x.dtype.is_bool):
            raise DTypeError(f"{name} expects an integer or bool tensor, got {x.dtype.name}")
        out = dtypes.bool_ if accepts in ("pred", "bool") else x.dtype
        return TensorType(out, x.shape)
    return infer


def _unary_grad(rule):
    if rule is None:
        return NOT_DIFFERENTIABLE

    def grad(node, g):
        return [rule(node.inputs[0], node.outputs[0], g)]
    return grad


for _name, (_ref, _rule, _accepts) in UNARY.items():
    register(_name, infer=_unary_infer(_name, _accepts), ref=_ref, grad=_unary_grad(_rule),
             kind="elementwise", lower=rules.scalar, doc=f"elementwise {_name}")


def _make_unary(opname):
    def op(x, name=None):
        return apply(opname, [_tensor(x)], name=name)
    op.__name__ = opname
    op.__doc__ = f"Elementwise {opname}."
    return op


for _name in UNARY:
    globals()[_name] = _make_unary(_name)
    __all__.append(_name)


# ---- binary -----------------------------------------------------------------------------------
def _true_div(a, b):
    return np.true_divide(a, b)


def _power(a, b):
    """numpy's power, except that an integer to a negative integer power is 1 / a**-b
    truncated toward zero (0 unless |a| is 1), as the kernels compute it, where numpy raises.
    (Unsigned exponents are never negative.)"""
    if a.dtype.kind != "i":
        return np.power(a, b)
    negative = b < 0
    truncated = np.where(np.abs(a) == 1, np.where(b % 2 == 0, 1, a), 0)
    return np.where(negative, truncated, np.power(a, np.where(negative, 0, b))).astype(a.dtype)


def _pow_grad_exponent(a, y, g):
    safe_log = where(a > 0, log(where(a > 0, a, ones_like(a))), zeros_like(a))
    return g * y * safe_log


# name: (reference, gradient (a, b, y, g) -> (da, db) before unbroadcasting, result kind)
# result kind: "same" keeps the promoted dtype, "float" makes integer results float32,
# "pred" returns bool, "logic" takes and returns bool, "bits" takes integers or bools, "int"
# integers only. Shifts are numpy's also for counts outside [0, bits): a left shift gives 0, a
# right shift 0, or -1 for a negative signed value.
BINARY = {
    "add": (np.add, lambda a, b, y, g: (g, g), "same"),
    "sub": (np.subtract, lambda a, b, y, g: (g, -g), "same"),
    "mul": (np.multiply, lambda a, b, y, g: (g * b, g * a), "same"),
    "div": (_true_div, lambda a, b, y, g: (g / b, -(g * a) / (b * b)), "float"),
    "floordiv": (np.floor_divide, lambda a, b, y, g: (zeros_like(a), zeros_like(b)), "same"),
    "mod": (np.mod, lambda a, b, y, g: (g, -(g * floordiv(a, b))), "same"),
    "pow": (_power, lambda a, b, y, g: (g * b * pow(a, b - 1), _pow_grad_exponent(a, y, g)),
            "same"),
    "maximum": (np.maximum,
                lambda a, b, y, g: (where(a >= b, g, zeros_like(g)),
                                    where(a >= b, zeros_like(g), g)), "same"),
    "minimum": (np.minimum,
                lambda a, b, y, g: (where(a <= b, g, zeros_like(g)),
                                    where(a <= b, zeros_like(g), g)), "same"),
    "equal": (np.equal, None, "pred"),
    "not_equal": (np.not_equal, None, "pred"),
    "less": (np.less, None, "pred"),
    "less_equal": (np.less_equal, None, "pred"),
    "greater": (np.greater, None, "pred"),
    "greater_equal": (np.greater_equal, None, "pred"),
    "logical_and": (np.logical_and, None, "logic"),
    "logical_or": (np.logical_or, None, "logic"),
    "logical_xor": (np.logical_xor, None, "logic"),
    "bitwise_and": (np.bitwise_and, None, "bits"),
    "bitwise_or": (np.bitwise_or, None, "bits"),
    "bitwise_xor": (np.bitwise_xor, None, "bits"),
    "left_shift": (np.left_shift, None, "int"),
    "right_shift": (np.right_shift, None, "int"),
}
# the binary ops whose operands may swap
COMMUTATIVE = ("add", "mul", "maximum", "minimum", "equal", "not_equal", "logical_and",
               "logical_or", "logical_xor", "bitwise_and", "bitwise_or", "bitwise_xor")


def _binary_infer(name, result):
    def infer(a, b):
        shape = broadcast_shapes(a.shape, b.shape, what=name)
        if a.dtype is not b.dtype:
            raise DTypeError(f"{name} needs operands of one dtype, got {a.dtype.name} and "
                             f"{b.dtype.name}")
        if result == "logic":
            if not a.dtype.is_bool:
                raise DTypeError(f"{name} expects bool tensors, got {a.dtype.name}")
            return TensorType(dtypes.bool_, shape)
        if result == "pred":
            return TensorType(dtypes.bool_, shape)
        if result == "bits":
            if not (a.dtype.is_integer or a.dtype.is_bool):
                raise DTypeError(f"{name} expects integer or bool tensors, got {a.dtype.name}")
            return TensorType(a.dtype, shape)
        if result == "int" and not a.dtype.is_integer:
            raise DTypeError(f"{name} expects integer tensors, got {a.dtype.name}")
        if a.dtype.is_bool:
            raise DTypeError(f"{name} expects numeric tensors, got bool; cast first")
        return TensorType(a.dtype, shape)
    return infer


def _binary_grad(rule):
    if rule is None:
        return NOT_DIFFERENTIABLE

    def grad(node, g):
        a, b = node.inputs
        da, db = rule(a, b, node.outputs[0], g)
        return [unbroadcast(da, a), unbroadcast(db, b)]
    return grad


for _name, (_ref, _rule, _result) in BINARY.items():
    register(_name, infer=_binary_infer(_name, _result), ref=_ref, grad=_binary_grad(_rule),
             kind="elementwise", lower=rules.scalar, commutative=_name in COMMUTATIVE,
             doc=f"elementwise {_name} with broadcasting")


def _tensor(x, like=None):
    if isinstance(x, Tensor):
        return x
    graph = like.graph if like is not None else None
    if like is not None and dtypes.is_weak(x):
        return constant(x, dtype=dtypes.weak_scalar_dtype(x, like.dtype), graph=graph)
    return constant(x, graph=graph)


def coerce_pair(a, b):
    """Two operands as tensors of one dtype: Python scalars are weak, tensors promote."""
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        a = _tensor(a)
    if not isinstance(a, Tensor):
        a = _tensor(a, like=b)
    if not isinstance(b, Tensor):
        b = _tensor(b, like=a)
    common = dtypes.promote(a.dtype, b.dtype)
    return cast(a, common), cast(b, common)


def _make_binary(opname, result):
    def op(a, b, name=None):
        a, b = coerce_pair(a, b)
        if result == "float" and not a.dtype.is_float:
            a, b = cast(a, dtypes.float32), cast(b, dtypes.float32)
        return apply(opname, [a, b], name=name)
    op.__name__ = opname
    op.__doc__ = f"Elementwise {opname}, broadcasting as numpy does."
    return op


for _name, (_r, _g, _result) in BINARY.items():
    globals()[_name] = _make_binary(_name, _result)
    __all__.append(_name)


# ---- where, cast, fill ------------------------------------------------------------------------
def _where_infer(cond, a, b):
    if not cond.dtype.is_bool:
        raise DTypeError(f"where expects a bool condition, got {cond.dtype.name}")
    if a.dtype is not b.dtype:
        raise DTypeError(f"where needs branches of one dtype, got {a.dtype.name} and "
                         f"{b.dtype.name}")
    return TensorType(a.dtype, broadcast_shapes(cond.shape, a.shape, b.shape, what="where"))


def _where_grad(node, g):
    cond, a, b = node.inputs
    zero = zeros_like(g)
    return [None, unbroadcast(where(cond, g, zero), a), unbroadcast(where(cond, zero, g), b)]


register("where", infer=_where_infer, ref=np.where, grad=_where_grad, kind="elementwise",
         lower=rules.scalar, doc="where(cond, a, b): a where cond holds, else b")


def where(cond, a, b, name=None):
    """Elementwise choice: a where cond is true, else b (broadcasting all three)."""
    cond = _tensor(cond)
    a, b = coerce_pair(a, b)
    return apply("where", [cond, a, b], name=name)


def _cast_grad(node, g):
    x = node.inputs[0]
    if not x.dtype.is_float or not g.dtype.is_float:
        return [None]
    return [cast(g, x.dtype)]


register("cast", infer=lambda x, *, dtype: TensorType(dtype, x.shape),
         ref=lambda x, *, dtype: dtypes.cast(x, dtype), grad=_cast_grad, kind="elementwise",
         lower=rules.scalar, doc="convert to another dtype")


def cast(x, dtype, name=None):
    """x converted to `dtype` (a no-op when it already has it)."""
    dtype = dtypes.as_dtype(dtype)
    x = _tensor(x)
    if x.dtype is dtype:
        return x
    return apply("cast", [x], name=name, dtype=dtype)


register("fill_like", lower=rules.fill_like,
         infer=lambda x, *, value, dtype: TensorType(dtype, x.shape),
         ref=lambda x, *, value, dtype: np.full(x.shape, value, dtype.np),
         grad=NOT_DIFFERENTIABLE, kind="elementwise", shape_only={0},
         uniform_value=lambda node: node.attrs["value"],
         doc="a tensor of x's shape filled with one value")


def fill_like(x, value, dtype=None):
    return apply("fill_like", [x], value=value, dtype=dtypes.as_dtype(dtype or x.dtype))


def zeros_like(x, dtype=None):
    return fill_like(x, 0, dtype)


def ones_like(x, dtype=None):
    return fill_like(x, 1, dtype)


bitwise_not = globals()["invert"]  # numpy's other name for the op the unary loop made


def clip(x, lo, hi):
    """x limited to [lo, hi] elementwise."""
    return minimum(maximum(x, lo), hi)


