"""The kernel IR's scalar operations as LLVM instructions, one table row per (op, kind of type).

Semantics follow numpy: NaN propagates through maximum/minimum; float -> int casts saturate
(NaN gives 0) rather than producing poison. Compound ops (floor division, modulo, integer pow,
sign, ...) never get here: graphc/kernels/legalize.py expands them into simple ones, and
truncdiv gets divisors that cannot trap. float16 arithmetic runs in float32 and rounds back
after each op, as numpy's float16 does; transcendentals come from graphc's vectorizable math
library.
"""
from llvmlite import ir as ll

from ...kernels import ir
from . import mathlib
from .types import F16, F32, F64, FLOATS, I32, I64, TYPES, UNSIGNED, intrinsic, shaped

MATH = ("exp", "log", "log1p", "expm1", "sin", "cos", "tanh", "sigmoid", "softplus", "erf")
ANY_DTYPE = ("cast", "where", "check_index", "round_bfloat16")


def emit_scalar(k, e, args):
    b, name = k.b, e.name
    src = e.args[0].dtype
    if name == "cast":
        return cast(k, args[0], src, e.dtype)
    if name == "where":
        return b.select(args[0], args[1], args[2], name="where")
    if name == "check_index":
        return check_index(k, *args)
    if name == "round_bfloat16":
        return round_bfloat16(b, args[0])
    if src in FLOATS:
        if src == "float16":  # compute in float32, round back once
            wide = [b.fpext(a, F32) if a.type == F16 else a for a in args]
            out = float_op(k, name, wide)
            return b.fptrunc(out, F16) if out.type == F32 else out
        return float_op(k, name, args)
    return table_for(src)[name](k, *args)


# ---- floats ----------------------------------------------------------------------------------
def float_op(k, name, args):
    return FLOAT_OPS[name](k, *args)


def _intrinsic(name, nargs=1):
    return lambda k, *args: k.b.call(intrinsic(k.module, name, args[0].type, nargs), list(args))


def _math(name):
    return lambda k, *args: mathlib.call(k.b, name, list(args))


FLOAT_OPS = {
    "add": lambda k, x, y: k.b.fadd(x, y, name="add"),
    "sub": lambda k, x, y: k.b.fsub(x, y, name="sub"),
    "mul": lambda k, x, y: k.b.fmul(x, y, name="mul"),
    "div": lambda k, x, y: k.b.fdiv(x, y, name="div"),
    "fmod": lambda k, x, y: k.b.frem(x, y, name="fmod"),
    "pow": _math("pow") if "pow" in mathlib.NAMES else _intrinsic("llvm.pow", 2),
    "maximum": lambda k, x, y: extremum(k, "maximum", "float32", x, y),
    "minimum": lambda k, x, y: extremum(k, "minimum", "float32", x, y),
    "neg": lambda k, x: k.b.fneg(x, name="neg"),
    "isnan": lambda k, x: k.b.fcmp_unordered("uno", x, x, name="isnan"),
    "sqrt": _intrinsic("llvm.sqrt"),
    "floor": _intrinsic("llvm.floor"),
    "abs": _intrinsic("llvm.fabs"),
    **{name: _math(name) for name in MATH},
}
# name -> (ordered comparison?, predicate); != is unordered so that NaN != NaN
COMPARE = {"equal": (True, "=="), "not_equal": (False, "!="), "less": (True, "<"),
           "less_equal": (True, "<="), "greater": (True, ">"), "greater_equal": (True, ">=")}
for _name, (_ordered, _pred) in COMPARE.items():
    FLOAT_OPS[_name] = (lambda ordered, pred, name: lambda k, x, y: (
        k.b.fcmp_ordered if ordered else k.b.fcmp_unordered)(pred, x, y, name=name))(
            _ordered, _pred, _name)


def divides_as_double(e):
    """Whether e is a division of float32 registers (float32, bfloat16), which
    divide_by_invariant computes where its divisor does not change along the loop."""
    return isinstance(e, ir.Op) and e.name == "div" and TYPES[e.dtype][0] == F32


def divide_by_invariant(b, x, y):
    """x / y (float32 registers, scalars or vectors) for a y that does not change along the
    loop: x times y's reciprocal, both in double, rounded once to float32, so the loop
    multiplies instead of dividing (a division costs several multiplies) and LLVM computes the
    reciprocal in front of it. The bits are the float32 division's: the double product is
    within 2^-52 of the quotient, and a quotient of two float32 values is either a float32 value
    or farther than that from every midpoint between two of them, so both round alike (inf,
    NaN, zeros and subnormals included)."""
    wide = shaped(F64, x)
    one = ll.Constant(wide, [1.0] * wide.count) if isinstance(wide, ll.VectorType) else (
        ll.Constant(F64, 1.0))
    reciprocal = b.fdiv(one, b.fpext(y, wide), name="reciprocal")
    return b.fptrunc(b.fmul(b.fpext(x, wide), reciprocal), x.type, name="div")


def extremum(k, name, dtype, a, c):
    """maximum/minimum: NaN wins for floats."""
    b = k.b
    high = name in ("max", "maximum")
    if dtype in FLOATS:
        return b.call(intrinsic(k.module, "llvm.maximum" if high else "llvm.minimum", a.type, 2),
                      [a, c], name=name)
    if dtype == "bool":
        return b.or_(a, c, name=name) if high else b.and_(a, c, name=name)
    compare = b.icmp_unsigned if dtype in UNSIGNED else b.icmp_signed
    return b.select(compare(">" if high else "<", a, c), a, c, name=name)


# ---- integers and bools --------------------------------------------------------------------------
INT_COMPARE = {"equal": "==", "not_equal": "!=", "less": "<", "less_equal": "<=",
               "greater": ">", "greater_equal": ">="}
INT_OPS = {
    "add": lambda k, x, y: k.b.add(x, y, name="add"),
    "sub": lambda k, x, y: k.b.sub(x, y, name="sub"),
    "mul": lambda k, x, y: k.b.mul(x, y, name="mul"),
    "truncdiv": lambda k, x, y: k.b.sdiv(x, y, name="truncdiv"),
    "maximum": lambda k, x, y: extremum(k, "maximum", "int", x, y),
    "minimum": lambda k, x, y: extremum(k, "minimum", "int", x, y),
    "neg": lambda k, x: k.b.sub(ll.Constant(x.type, 0), x, name="neg"),
    "invert": lambda k, x: k.b.not_(x, name="invert"),
    "bitwise_and": lambda k, x, y: k.b.and_(x, y, name="and"),
    "bitwise_or": lambda k, x, y: k.b.or_(x, y, name="or"),
    "bitwise_xor": lambda k, x, y: k.b.xor(x, y, name="xor"),
    # counts in [0, bits) only (legalize.py guards them): LLVM makes larger ones poison
    "shl": lambda k, x, y: k.b.shl(x, y, name="shl"),
    "shr": lambda k, x, y: k.b.ashr(x, y, name="shr"),
    **{name: (lambda pred, name: lambda k, x, y: k.b.icmp_signed(pred, x, y, name=name))(
        pred, name) for name, pred in INT_COMPARE.items()},
}


# unsigned integers: the same but for division, right shifts, comparisons and extrema
UINT_OPS = {
    **INT_OPS,
    "truncdiv": lambda k, x, y: k.b.udiv(x, y, name="truncdiv"),
    "shr": lambda k, x, y: k.b.lshr(x, y, name="shr"),
    "maximum": lambda k, x, y: extremum(k, "maximum", "uint64", x, y),
    "minimum": lambda k, x, y: extremum(k, "minimum", "uint64", x, y),
    **{name: (lambda pred, name: lambda k, x, y: k.b.icmp_unsigned(pred, x, y, name=name))(
        pred, name) for name, pred in INT_COMPARE.items()},
}


BOOL_OPS = {
    "logical_and": lambda k, x, y: k.b.and_(x, y, name="and"),
    "logical_or": lambda k, x, y: k.b.or_(x, y, name="or"),
    "logical_xor": lambda k, x, y: k.b.xor(x, y, name="xor"),
    "logical_not": lambda k, x: k.b.not_(x, name="not"),
    "maximum": lambda k, x, y: k.b.or_(x, y, name="maximum"),
    "minimum": lambda k, x, y: k.b.and_(x, y, name="minimum"),
    "add": lambda k, x, y: k.b.or_(x, y, name="add"),
    "mul": lambda k, x, y: k.b.and_(x, y, name="mul"),
    # False < True
    **{name: (lambda pred, name: lambda k, x, y: k.b.icmp_unsigned(pred, x, y, name=name))(
        pred, name) for name, pred in INT_COMPARE.items()},
}


def table_for(dtype):
    if dtype in FLOATS:
        return FLOAT_OPS
    return BOOL_OPS if dtype == "bool" else UINT_OPS if dtype in UNSIGNED else INT_OPS


def unsupported_ops(kernels):
    """The (op on dtype) names in these kernels that have no instructions here."""
    missing, seen = set(), set()
    todo = [e for k in kernels for e in ir.statement_exprs(k.body)]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, ir.Op):
            src = e.args[0].dtype
            if e.name not in ANY_DTYPE and e.name not in table_for(src):
                missing.add(f"{e.name} on {src}")
        todo.extend(ir.children(e))
    return missing


# ---- casts, bfloat16 rounding, checked indices ------------------------------------------------------
def cast(k, x, src, dst):
    b = k.b
    to = shaped(TYPES[dst][0], x)  # a vector of as many lanes where x is one (vector.py)
    if src == dst or x.type == to and not (dst == "bfloat16" and src != "bfloat16"):
        return round_bfloat16(b, x) if dst == "bfloat16" and src != dst else x
    if dst == "bool":
        if src in FLOATS:
            return b.fcmp_unordered("!=", x, ll.Constant(x.type, 0.0), name="to_bool")
        return b.icmp_signed("!=", x, ll.Constant(x.type, 0), name="to_bool")
    if src == "bool":
        out = b.uitofp(x, to) if dst in FLOATS else b.zext(x, to)
    elif src in FLOATS and dst in FLOATS:
        out = b.fpext(x, to) if _width(src) < _width(dst) else narrow_float(b, x, to)
    elif src in FLOATS:
        saturating = "llvm.fptoui.sat" if dst in UNSIGNED else "llvm.fptosi.sat"
        out = b.call(intrinsic(k.module, saturating, x.type, result=to), [x])
    elif dst in FLOATS:
        out = b.uitofp(x, to) if src in UNSIGNED else b.sitofp(x, to)
    elif _width(src) < _width(dst):  # widened by the source's sign
        out = b.zext(x, to) if src in UNSIGNED else b.sext(x, to)
    else:
        out = b.trunc(x, to)
    return round_bfloat16(b, out) if dst == "bfloat16" else out


def narrow_float(b, x, to):
    """x rounded to the narrower float type `to`. double -> half goes through a float rounded
    to odd (toward zero, then the lowest bit set where inexact), which the second rounding
    turns into the correctly rounded half: LLVM would call __truncdfhf2, which the JIT does
    not link."""
    if not (x.type == F64 and to == F16):
        return b.fptrunc(x, to)
    near = b.fptrunc(x, F32, name="near")
    wide = b.fpext(near, F64)
    zero = ll.Constant(F64, 0.0)
    away = b.or_(b.and_(b.fcmp_ordered(">", x, zero), b.fcmp_ordered(">", wide, x)),
                 b.and_(b.fcmp_ordered("<", x, zero), b.fcmp_ordered("<", wide, x)))
    bits = b.bitcast(near, I32)
    bits = b.select(away, b.sub(bits, I32(1)), bits)
    bits = b.select(b.fcmp_unordered("!=", wide, x), b.or_(bits, I32(1)), bits)
    return b.fptrunc(b.bitcast(bits, F32), F16, name="half")


def _width(dtype):
    """Bits of a dtype's register type."""
    ty = TYPES[dtype][0]
    return ty.width if isinstance(ty, ll.IntType) else {"half": 16, "float": 32, "double": 64}[str(ty)]


def round_bfloat16(b, x):
    """Round a float to the nearest bfloat16 (ties to even), as graphc.ir.dtypes does."""
    bits = b.bitcast(x, I32)
    lsb = b.and_(b.lshr(bits, I32(16)), I32(1))
    rounded = b.and_(b.add(bits, b.add(lsb, I32(0x7FFF))), I32(0xFFFF0000 - (1 << 32)))
    nan = b.fcmp_unordered("uno", x, x)
    return b.select(nan, x, b.bitcast(rounded, F32), name="bf16")


def check_index(k, i, n, what):
    """i when 0 <= i < n; else records (what, i) in the error slot and leaves the kernel."""
    b = k.b
    ok = b.icmp_unsigned("<", i, n, name="in_range")
    bad_block = k.fn.append_basic_block("index.bad")
    good_block = k.fn.append_basic_block("index.ok")
    b.cbranch(ok, good_block, bad_block)
    b.position_at_end(bad_block)
    b.store(b.add(what, I64(1)), b.gep(k.error, [I64(0)]))
    b.store(i, b.gep(k.error, [I64(1)]))
    b.ret_void()
    b.position_at_end(good_block)
    return i
