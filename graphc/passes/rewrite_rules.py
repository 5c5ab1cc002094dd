"""The local rewrite rules, grouped by the pass that applies them.

Each rule reads: pattern -> replacement, and says so in its doc (markdown; the README's table
of levels lists them, see table.py). Constants sit on the right of commutative ops after
canonicalization, so the other rules need only one orientation.
"""
import math

import numpy as np

from ..ir import dtypes
from ..ops import elementwise as E
from ..ops import shape as S
from ..ops.registry import REGISTRY, apply
from .rewrite import Const, Op, Rule, Var, constant_value

x, y = Var("x"), Var("y")


def _const_first(node):
    a, b = node.inputs
    return constant_value(a) is not None and constant_value(b) is None


def _scalar_like(value, like):
    """A scalar constant of `like`'s dtype (broadcasting does the rest)."""
    return E.constant(np.asarray(value, like.dtype.np), dtype=like.dtype)


def _float(t):
    return t.dtype.is_float


def _exact_reciprocal(c, like):
    """x / c == x * (1/c) exactly when c is a power of two whose reciprocal the dtype holds."""
    if c in (0, 1) or not np.isfinite(c) or abs(math.frexp(c)[0]) != 0.5:
        return False
    return _finite_in(1.0 / c, like)


def _finite_in(value, like):
    with np.errstate(over="ignore"):
        return bool(np.isfinite(np.asarray(value, like.dtype.np)))


CANONICALIZE = [
    Rule(f"{op}_constant_right", Op(op, x, y, where=_const_first),
         (lambda op: lambda m: apply(op, [m.y, m.x]))(op), "constants to the right")
    for op, spec in REGISTRY.items() if spec.commutative
] + [
    Rule("sub_constant_to_add", Op("sub", Var("x", _float), Const(name="c")),
         lambda m: m.x + _scalar_like(-m.c, m.x) if m.c != 0 else None,
         "`x - c` to `x + (-c)`"),
]

# Exact, or closer to the exact value than the formula as written (log(exp x) is x even where
# exp overflows); none turns a NaN into a number or a number into a NaN.
ALGEBRAIC = [
    Rule("add_zero", Op("add", x, Const(0)), lambda m: m.x, "`x+0` to `x`"),
    Rule("sub_zero", Op("sub", x, Const(0)), lambda m: m.x, "`x-0` to `x`"),
    Rule("mul_one", Op("mul", x, Const(1)), lambda m: m.x, "`x*1` to `x`"),
    Rule("div_one", Op("div", x, Const(1)), lambda m: m.x, "`x/1` to `x`"),
    Rule("pow_one", Op("pow", x, Const(1)), lambda m: m.x, "`x**1` to `x`"),
    Rule("pow_two", Op("pow", x, Const(2)), lambda m: E.square(m.x), "`x**2` to `square(x)`"),
    Rule("neg_neg", Op("neg", Op("neg", x)), lambda m: m.x, "`neg(neg x)` to `x`"),
    Rule("div_by_power_of_two", Op("div", Var("x", _float), Const(name="c")),
         lambda m: m.x * _scalar_like(1.0 / m.c, m.x) if _exact_reciprocal(m.c, m.x) else None,
         "`x/c` to `x*(1/c)` for `c` a power of two"),
    Rule("mul_neg_one", Op("mul", x, Const(-1)), lambda m: E.neg(m.x), "`x*-1` to `-x`"),
    Rule("reshape_reshape", Op("reshape", Op("reshape", x), name="outer"),
         lambda m: S.reshape(m.x, m.outer.node.attrs["shape"]),
         "`reshape(reshape x)` to one reshape"),
    Rule("reshape_like_reshape", Op("reshape_like", Op("reshape", x), y),
         lambda m: S.reshape_like(m.x, m.y),
         "`reshape_like(reshape x, y)` to `reshape_like(x, y)`"),
    Rule("log_exp", Op("log", Op("exp", x)), lambda m: m.x, "`log(exp x)` to `x`"),
    Rule("cast_roundtrip", Op("cast", Op("cast", x, name="inner"), name="outer"),
         lambda m: m.x if (m.outer.dtype is m.x.dtype
                           and dtypes.holds_exactly(m.inner.dtype, m.x.dtype)) else None,
         "`cast(cast x)` back to x's dtype to `x` where the middle dtype holds x's values"),
]

STABILIZE = [
    Rule("log_softmax", Op("log", Op("softmax", x, name="s")),
         lambda m: apply("log_softmax", [m.x], **m.s.node.attrs),
         "`log(softmax)` to `log_softmax`"),
    Rule("log_sigmoid", Op("log", Op("sigmoid", x)), lambda m: E.neg(E.softplus(E.neg(m.x))),
         "`log(sigmoid x)` to `-softplus(-x)`"),
    Rule("log1p", Op("log", Op("add", x, Const(1))), lambda m: E.log1p(m.x),
         "`log(1+x)` to `log1p`"),
    Rule("expm1", Op("add", Op("exp", x), Const(-1)), lambda m: E.expm1(m.x),
         "`exp(x)-1` to `expm1`"),
    Rule("softplus", Op("log1p", Op("exp", x)), lambda m: E.softplus(m.x),
         "`log1p(exp x)` to `softplus`"),
]

# Exact only on part of the domain (x*0 and x-x are NaN for an infinite x, exp(log x) for a
# negative one), or within an ulp (x/c as x*(1/c)): run at O3.
FAST_MATH = [
    Rule("mul_zero", Op("mul", Var("x", _float), Const(0)), lambda m: E.zeros_like(m.x),
         "`x*0` to `0` (finite `x`)"),
    Rule("sub_self", Op("sub", x, x), lambda m: E.zeros_like(m.x), "`x-x` to `0` (finite `x`)"),
    Rule("div_by_constant", Op("div", Var("x", _float), Const(name="c")),
         lambda m: m.x * _scalar_like(1.0 / m.c, m.x)
         if m.c != 0 and _finite_in(1.0 / m.c, m.x) else None,
         "`x/c` to `x*(1/c)` (within an ulp)"),
    Rule("exp_log", Op("exp", Op("log", x)), lambda m: m.x, "`exp(log x)` to `x` (`x >= 0`)"),
    Rule("sqrt_square", Op("sqrt", Op("square", x)), lambda m: E.abs(m.x),
         "`sqrt(square x)` to `abs(x)` (where `x*x` neither overflows nor underflows)"),
]
