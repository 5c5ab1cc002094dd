"""Legalization: the kernel IR's compound scalar ops rewritten into simple ones, for every target.

floordiv and mod (numpy's, for ints and floats), integer pow, sign, integer abs, relu, square,
rsqrt, isfinite and shifts (whose counts may lie outside the type's bits) each take several instructions with exact semantics at the edges (ir.py: a
zero's sign, NaN, inf, division by 0 or -1, wrapping). They are written here once, as
expressions of simple ops (comparisons, where, floor, fmod, truncdiv, ...) that every code
generator translates one to one. The interpreter computes both forms, so tests compare the
expansions with the ops they replace. float16 expansions compute in float32 and round once, as
one float16 op does; bfloat16 ones compute in float32 as all bfloat16 ops do.

lower_group's kernels are legal. A target pass that builds compound ops after lowering (index
arithmetic such as ir.unflatten's floordiv and mod) passes what it builds through `expression`.
"""
import dataclasses

import numpy as np

from ..ir import dtypes
from . import ir


def legalize(kernels):
    """The kernels with every compound op expanded into simple ones."""
    rewrite = Rewrite(_expand)
    return [rewrite.kernel(k) for k in kernels]


def expression(e):
    """The legal form of one expression."""
    return Rewrite(_expand).expr(e)


# ---- building simple ops ------------------------------------------------------------------------
def _op(name, *args):
    return ir.Op(name, args, args[0].dtype)


def _test(name, a, b):
    return ir.Op(name, (a, b), "bool")


def _where(condition, a, b):
    return ir.Op("where", (condition, a, b), a.dtype)


def _and(a, b):
    return ir.Op("logical_and", (a, b), "bool")


def _c(value, like):
    return ir.Const(value, like.dtype)


def _is_float(e):
    return e.dtype in ("float16", "bfloat16", "float32", "float64")


def _is_int(e):
    return dtypes.BY_NAME[e.dtype].is_integer


def _is_unsigned(e):
    return dtypes.BY_NAME[e.dtype].is_unsigned


def _moves(r, d):
    """Where C's remainder r by d moves to the floored one: nonzero, and not of d's sign."""
    zero = _c(0, r)
    if isinstance(d, ir.Const):  # a known divisor's sign
        return _test("less" if d.value > 0 else "greater", r, zero)
    return _and(_test("not_equal", r, zero),
                _test("logical_xor", _test("less", r, zero), _test("less", d, _c(0, d))))


def _known_sign(e, depth=6):
    """What is known of the sign of index arithmetic e (int64 sizes and positions, which never
    overflow), or of any unsigned value: "positive", "non-negative" or None. Loop variables
    and run-time dims are non-negative; looked for `depth` ops deep."""
    if isinstance(e, ir.Const) and _is_int(e):
        return "positive" if e.value > 0 else "non-negative" if e.value == 0 else None
    if _is_unsigned(e):
        return "non-negative"
    if e.dtype != ir.INDEX:
        return None
    if isinstance(e, ir.Const):
        return "positive" if e.value > 0 else "non-negative" if e.value == 0 else None
    if isinstance(e, (ir.Var, ir.Dim)):
        return "non-negative"
    if not isinstance(e, ir.Op) or depth == 0 or e.name not in SIGNS:
        return None
    return SIGNS[e.name]([_known_sign(a, depth - 1) for a in e.args])


def _all(signs):
    return None if None in signs else "non-negative" if "non-negative" in signs else "positive"


def _any(signs):
    return "positive" if "positive" in signs else "non-negative" if "non-negative" in signs \
        else None


# op -> the sign of its result from its operands' signs
SIGNS = {"add": lambda s: _any(s) if None not in s else None, "mul": _all, "minimum": _all,
         "maximum": _any, "where": lambda s: _all(s[1:]),
         "truncdiv": lambda s: s[0] and s[1] and "non-negative"}


class _Division:
    """Integer x / y as C divides (truncdiv, and its remainder), by a divisor that cannot trap,
    and where the result must differ (by 0, or -1: MIN / -1 overflows). What is known of the
    operands' signs drops the tests that cannot hold, as they would in index arithmetic."""

    def __init__(self, x, y):
        self.x, self.y = x, y
        divisor, dividend = _known_sign(y), _known_sign(x)
        if isinstance(y, ir.Const) or divisor == "positive":  # (_floordiv takes 0 and -1)
            self.zero = self.minus_one = None
        else:
            self.zero = _test("equal", y, _c(0, y))
            self.minus_one = None if divisor else _test("equal", y, _c(-1, y))
        self.traps = self.zero if self.minus_one is None else ir.Op(
            "logical_or", (self.zero, self.minus_one), "bool")
        self.d = y if self.traps is None else _where(self.traps, _c(1, y), y)
        self.q = _op("truncdiv", x, self.d)
        self.r = _op("sub", x, _op("mul", self.q, self.d))  # C's %, from the one division
        if divisor and dividend:  # both non-negative: so is the remainder
            self.moves = None
        elif divisor:
            self.moves = _test("less", self.r, _c(0, y))
        else:
            self.moves = _moves(self.r, y if isinstance(y, ir.Const) else self.d)

    def floored(self):
        q = self.q
        if self.moves is not None:
            q = _where(self.moves, _op("sub", q, _c(1, q)), q)
        if self.minus_one is not None:
            q = _where(self.minus_one, _op("neg", self.x), q)
        return q if self.zero is None else _where(self.zero, _c(0, self.x), q)

    def remainder(self):
        r = self.r
        if self.moves is not None:
            r = _where(self.moves, _op("add", r, self.d), r)
        return r if self.traps is None else _where(self.traps, _c(0, self.x), r)


# ---- the expansions: (operands) -> Expr, or None where the op is simple on its dtype ------------
def _floordiv(x, y):
    if _is_float(x):
        q, _ = _float_divmod(x, y)
        return q
    if isinstance(y, ir.Const) and y.value in (0, -1):
        return _c(0, x) if y.value == 0 else _op("neg", x)
    return _Division(x, y).floored()


def _mod(x, y):
    if _is_float(x):
        _, r = _float_divmod(x, y)
        return r
    if isinstance(y, ir.Const) and y.value in (0, -1):
        return _c(0, x)
    return _Division(x, y).remainder()


def _float_divmod(x, y):
    """numpy's divmod of floats: the quotient from C's remainder, so that 1.0 // 0.1 is 9
    (not floor(1.0 / 0.1) = 10) and inf // 2 is NaN; the remainder moved into the divisor's
    sign, a zero one taking the divisor's sign too. By 0: x / 0 and NaN."""
    zero, one = _c(0.0, x), _c(1.0, x)
    r = _op("fmod", x, y)
    moves = _moves(r, y)
    q = _op("div", _op("sub", x, r), y)
    q = _where(moves, _op("sub", q, one), q)
    whole = _op("floor", q)
    nearest = _where(_test("greater", _op("sub", q, whole), _c(0.5, x)), _op("add", whole, one),
                     whole)
    ratio = _op("div", x, y)
    # a zero quotient takes the sign of x / y, which is finite there: 0 * (x / y)
    q = _where(_test("not_equal", q, zero), nearest, _op("mul", zero, ratio))
    q = _where(_test("equal", y, zero), ratio, q)
    signed_zero = _where(_test("less", y, zero), _c(-0.0, x), zero)
    r = _where(_test("equal", r, zero), signed_zero, _where(moves, _op("add", r, y), r))
    return q, r


def _pow(a, b):
    """Integer a ** b by squaring, over every bit an exponent of the dtype has; a negative
    exponent gives 1 / a**-b truncated toward zero. Floats: simple (the math library's)."""
    if not _is_int(a):
        return None
    one = _c(1, a)
    if isinstance(b, ir.Const) and b.value < 0:
        return _inverse(a, b.value % 2 == 0)
    if isinstance(b, ir.Const):
        out, power, n = one, a, int(b.value)
        while n:
            if n & 1:
                out = power if out is one else _op("mul", out, power)
            n >>= 1
            if n:
                power = _op("mul", power, power)
        return out
    if _is_unsigned(b):
        negative, e = None, b
    else:
        negative = _test("less", b, _c(0, b))
        e = _where(negative, _c(0, b), b)
    out, power = one, a
    bits = np.iinfo(dtypes.BY_NAME[b.dtype].np).max.bit_length()  # of e >= 0
    for bit in range(bits):
        half = _op("truncdiv", e, _c(2, e))
        odd = _test("not_equal", e, _op("mul", half, _c(2, e)))
        out = _where(odd, power if out is one else _op("mul", out, power), out)
        if bit < bits - 1:
            power, e = _op("mul", power, power), half
    if negative is None:
        return out
    even = _test("equal", b, _op("mul", _op("truncdiv", b, _c(2, b)), _c(2, b)))
    return _where(negative, _inverse(a, even), out)


def _inverse(a, even):
    """1 / a**b truncated toward zero for b < 0, even (a bool or a bool Expr) or odd: 0 unless
    |a| is 1."""
    one, minus_one = _c(1, a), _c(-1, a)
    odd_power = (one if even else minus_one) if isinstance(even, bool) else \
        _where(even, one, minus_one)
    return _where(_test("equal", a, one), one,
                  _where(_test("equal", a, minus_one), odd_power, _c(0, a)))


def _sign(x):
    """-1, 0 or 1, as numpy's: NaN stays, and -0.0 + 0.0 is 0.0."""
    zero = _c(0, x)
    if _is_unsigned(x):
        return _where(_test("greater", x, zero), _c(1, x), zero)
    rest = _op("add", x, zero) if _is_float(x) else x
    return _where(_test("greater", x, zero), _c(1, x),
                  _where(_test("less", x, zero), _c(-1, x), rest))


def _abs(x):
    if _is_unsigned(x):
        return x
    return _where(_test("less", x, _c(0, x)), _op("neg", x), x) if _is_int(x) else None


def _isfinite(x):
    return _test("less", _op("abs", x), _c(float("inf"), x))


def _in_bits(count):
    """Whether a shift count lies in [0, bits of its dtype)."""
    bits = _c(8 * dtypes.BY_NAME[count.dtype].np.itemsize, count)
    below = _test("less", count, bits)
    return below if _is_unsigned(count) else _and(_test("greater_equal", count, _c(0, count)),
                                                  below)


def _left_shift(a, count):
    """numpy's: a count outside [0, bits) shifts every bit out."""
    fits = _in_bits(count)
    return _where(fits, _op("shl", a, _where(fits, count, _c(0, count))), _c(0, a))


def _right_shift(a, count):
    """numpy's: a count outside [0, bits) leaves only copies of the sign bit (arithmetic shift
    by bits - 1 for signed values, 0 for unsigned ones)."""
    fits = _in_bits(count)
    if _is_unsigned(a):
        return _where(fits, _op("shr", a, _where(fits, count, _c(0, count))), _c(0, a))
    top = _c(8 * dtypes.BY_NAME[a.dtype].np.itemsize - 1, count)
    return _op("shr", a, _where(fits, count, top))


def _on_bool(logical):
    """A bitwise op on bool as its logical op (C's ~true is not false); None for ints."""
    return lambda *args: ir.Op(logical, args, "bool") if args[0].dtype == "bool" else None


EXPANSIONS = {
    "floordiv": _floordiv, "mod": _mod, "pow": _pow, "sign": _sign, "abs": _abs,
    "relu": lambda x: _op("maximum", x, _c(0, x)),
    "square": lambda x: _op("mul", x, x),
    "rsqrt": lambda x: _op("div", _c(1.0, x), _op("sqrt", x)),
    "isfinite": _isfinite,
    "left_shift": _left_shift, "right_shift": _right_shift,
    "invert": _on_bool("logical_not"), "bitwise_and": _on_bool("logical_and"),
    "bitwise_or": _on_bool("logical_or"), "bitwise_xor": _on_bool("logical_xor"),
}


def _expand(e, args):
    """Op e's legal form, on its operands' legal forms `args`; None where it is simple."""
    expand = EXPANSIONS.get(e.name)
    if expand is None:
        return None
    if args[0].dtype != "float16":
        return expand(*args)
    out = expand(*(ir.Op("cast", (a,), "float32") for a in args))  # rounded once, at the end
    return out if out is None or out.dtype == "bool" else ir.Op("cast", (out,), "float16")


# ---- the rewrite --------------------------------------------------------------------------------
class Rewrite:
    """Expressions with their Ops rewritten by `rule(op, its operands rewritten)` (a new
    expression, or None to keep the op on those operands), bottom up, each computed once (by
    identity: equal expressions stay equal), iteratively, since chains of ops may be deeper
    than Python's recursion limit. Legalization's rule is _expand."""

    def __init__(self, rule):
        self.rule = rule
        self.memo = {}  # id(expression) -> (expression, its rewritten form)

    def kernel(self, k):
        body = self.statements(k.body)
        return k if body is k.body else dataclasses.replace(k, body=body)

    def statements(self, stmts):
        out = tuple(self.statement(s) for s in stmts)
        return stmts if all(a is b for a, b in zip(out, stmts)) else out

    def statement(self, s):
        if isinstance(s, ir.Loop):
            return self.fields(s, extent=s.extent, body=s.body)
        if isinstance(s, ir.Store):
            return self.fields(s, index=s.index, value=s.value)
        if isinstance(s, ir.Check):
            return self.fields(s, ok=s.ok, value=s.value)
        if isinstance(s, ir.Gemm):
            bias = {} if s.bias is None else {"bias": s.bias}
            return self.fields(s, m=s.m, n=s.n, k=s.k, a=s.a, b=s.b, c=s.c, **bias)
        raise AssertionError(f"unknown statement {type(s).__name__}")

    def fields(self, node, **fields):
        """node with the named fields (expressions, statement lists, Gemm operands) legal."""
        new = {name: self.part(value) for name, value in fields.items()}
        changed = {name: v for name, v in new.items() if v is not fields[name]}
        return dataclasses.replace(node, **changed) if changed else node

    def part(self, value):
        if isinstance(value, tuple):
            return self.statements(value)
        if isinstance(value, ir.Operand):
            return self.fields(value, offset=value.offset, rows=value.rows, cols=value.cols)
        if isinstance(value, ir.Gathered):
            return self.fields(value, value=value.value)
        return self.expr(value)

    def expr(self, root):
        memo = self.memo
        stack = [root]
        while stack:
            e = stack[-1]
            if id(e) in memo:
                stack.pop()
                continue
            waiting = [k for k in ir.children(e) if id(k) not in memo]
            if waiting:
                stack.extend(waiting)
                continue
            stack.pop()
            memo[id(e)] = (e, self.rebuild(e))
        return memo[id(root)][1]

    def rebuild(self, e):
        """e on its children's legal forms (which the memo holds)."""
        def legal(x):
            return self.memo[id(x)][1]
        if isinstance(e, ir.Load):
            index = legal(e.index)
            return e if index is e.index else dataclasses.replace(e, index=index)
        if isinstance(e, ir.Reduce):
            loops = tuple((v, legal(x)) for v, x in e.loops)
            value = legal(e.value)
            if value is e.value and all(a[1] is b[1] for a, b in zip(loops, e.loops)):
                return e
            return dataclasses.replace(e, loops=loops, value=value)
        if isinstance(e, ir.Op):
            args = tuple(legal(a) for a in e.args)
            expanded = self.rule(e, args)
            if expanded is not None:
                return expanded
            return e if all(a is b for a, b in zip(args, e.args)) else \
                dataclasses.replace(e, args=args)
        return e
