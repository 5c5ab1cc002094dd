"""The kernel IR's scalar operations as CUDA C expressions, one table row per (op, kind of type).

Semantics follow numpy, as the LLVM generator's do: integers wrap around (their arithmetic goes
through the unsigned type of the same width, where C leaves signed overflow undefined); floor
division and modulo round toward minus infinity, and by 0 give 0 for integers; maximum/minimum
propagate NaN; float -> int casts truncate and saturate, NaN giving 0 (the cvt.rzi intrinsics);
float16 computes in float and rounds back to half after every op; bfloat16 is a float rounded
only by round_bfloat16. Transcendentals are CUDA's correctly-rounded-or-close library functions
(expf, log1pf, erff, ...; no fast-math variants). The helpers the table names are defined once
per translation unit, in PRELUDE.
"""
from ...kernels import ir
from .types import FLOATS, REGISTER, math_suffix

PRELUDE = r"""#include <cuda_fp16.h>

// ---- graphc's scalar operations, with numpy's semantics -------------------------------------
#define GC_INLINE __device__ __forceinline__

// Integers wrap around: arithmetic goes through the unsigned type of the same width.
template <typename T> struct gc_unsigned;
template <> struct gc_unsigned<int> { typedef unsigned int type; };
template <> struct gc_unsigned<long long> { typedef unsigned long long type; };
template <typename T> GC_INLINE T gc_add(T a, T b) {
    typedef typename gc_unsigned<T>::type U;
    return (T)((U)a + (U)b);
}
template <typename T> GC_INLINE T gc_sub(T a, T b) {
    typedef typename gc_unsigned<T>::type U;
    return (T)((U)a - (U)b);
}
template <typename T> GC_INLINE T gc_mul(T a, T b) {
    typedef typename gc_unsigned<T>::type U;
    return (T)((U)a * (U)b);
}
template <typename T> GC_INLINE T gc_neg(T a) { return gc_sub((T)0, a); }
template <typename T> GC_INLINE T gc_abs(T a) { return a < 0 ? gc_neg(a) : a; }

// Python's floor division and remainder: the quotient is floored, the remainder takes the
// divisor's sign; an integer divisor of 0 gives 0, and -1 wraps (MIN / -1 is undefined in C).
template <typename T> GC_INLINE T gc_floordiv(T a, T b) {
    if (b == 0) return 0;
    if (b == -1) return gc_neg(a);
    T q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}
template <typename T> GC_INLINE T gc_mod(T a, T b) {
    if (b == 0 || b == -1) return 0;
    T r = a % b;
    return (r != 0 && (r < 0) != (b < 0)) ? r + b : r;
}
// IEEE division (a zero divisor gives inf or NaN), through a call so that the compiler does
// not warn of a divisor it finds constant: the mean of an empty axis divides by a literal 0.
template <typename T> GC_INLINE T gc_divide(T a, T b) { return a / b; }
// For floats, numpy's divmod: the quotient from the remainder, so that 1.0 // 0.1 is 9 (not
// floor(1.0 / 0.1) = 10) and inf // 2 is NaN; a zero remainder takes the divisor's sign.
template <typename T> GC_INLINE T gc_floordiv_float(T a, T b) {
    if (b == (T)0) return a / b;
    T r = fmod(a, b);
    T q = (a - r) / b;
    if (r != (T)0 && (b < (T)0) != (r < (T)0)) q -= (T)1;
    if (q == (T)0) return copysign((T)0, a / b);
    T whole = floor(q);
    return q - whole > (T)0.5 ? whole + (T)1 : whole;
}
template <typename T> GC_INLINE T gc_mod_float(T a, T b) {
    T r = fmod(a, b);
    if (b == (T)0) return r;
    if (r == (T)0) return copysign((T)0, b);
    return (b < (T)0) != (r < (T)0) ? r + b : r;
}
// a ** b; a negative exponent gives 1 / a**-b truncated toward zero.
template <typename T> GC_INLINE T gc_pow_int(T a, T b) {
    typedef typename gc_unsigned<T>::type U;
    if (b < 0) return a == 1 ? (T)1 : a == -1 ? ((b & 1) ? (T)-1 : (T)1) : (T)0;
    U base = (U)a, out = 1;
    for (; b > 0; b >>= 1) {
        if (b & 1) out *= base;
        base *= base;
    }
    return (T)out;
}

// NaN propagates through maximum and minimum (and so through relu and the max/min reductions).
template <typename T> GC_INLINE T gc_maximum(T a, T b) { return (a > b || a != a) ? a : b; }
template <typename T> GC_INLINE T gc_minimum(T a, T b) { return (a < b || a != a) ? a : b; }
template <typename T> GC_INLINE T gc_relu(T x) { return gc_maximum(x, (T)0); }
// -1, 0 or 1; NaN and -0.0 pass through.
template <typename T> GC_INLINE T gc_sign(T x) { return x > (T)0 ? (T)1 : x < (T)0 ? (T)-1 : x; }

template <typename T> GC_INLINE T gc_rsqrt(T x) { return (T)1 / sqrt(x); }
// Split by sign, so that neither branch overflows.
template <typename T> GC_INLINE T gc_sigmoid(T x) {
    T e = exp(-fabs(x));
    return x >= (T)0 ? (T)1 / ((T)1 + e) : e / ((T)1 + e);
}
template <typename T> GC_INLINE T gc_softplus(T x) { return log1p(exp(-fabs(x))) + gc_relu(x); }

// float16 values are computed as floats, rounded to half after every operation.
GC_INLINE float gc_half(float x) { return __half2float(__float2half_rn(x)); }
// The nearest bfloat16 (ties to even), kept in a float; NaN stays NaN.
GC_INLINE float gc_round_bfloat16(float x) {
    unsigned int bits = __float_as_uint(x);
    bits = (bits + 0x7FFFu + ((bits >> 16) & 1u)) & 0xFFFF0000u;
    return x != x ? x : __uint_as_float(bits);
}

// The buffers are global memory: said so, their loads and stores need no generic addresses.
template <typename T> GC_INLINE T* gc_global(T* p) {
    __builtin_assume(__isGlobal(p));
    return p;
}

// Records error `what` about `value` unless a kernel recorded one already (the first wins);
// the host reads error[0] - 1 and error[1] after the launch.
GC_INLINE void gc_report(long long* error, long long what, long long value) {
    unsigned long long code = (unsigned long long)(what + 1);
    if (atomicCAS((unsigned long long*)error, 0ULL, code) == 0ULL) error[1] = value;
}
"""

# Expressions of the operand expressions {0}, {1}, {2}; {f} is the math functions' suffix.
FLOAT_OPS = {
    "add": "{0} + {1}", "sub": "{0} - {1}", "mul": "{0} * {1}", "div": "gc_divide({0}, {1})",
    "floordiv": "gc_floordiv_float({0}, {1})", "mod": "gc_mod_float({0}, {1})",
    "pow": "pow{f}({0}, {1})",
    "maximum": "gc_maximum({0}, {1})", "minimum": "gc_minimum({0}, {1})",
    "neg": "-{0}", "abs": "fabs{f}({0})", "sign": "gc_sign({0})", "square": "{0} * {0}",
    "rsqrt": "gc_rsqrt({0})", "relu": "gc_relu({0})", "sigmoid": "gc_sigmoid({0})",
    "softplus": "gc_softplus({0})", "isnan": "isnan({0})", "isfinite": "isfinite({0})",
    **{name: name + "{f}({0})" for name in ("exp", "log", "log1p", "expm1", "sqrt", "sin",
                                            "cos", "tanh", "erf", "floor")},
}
COMPARE = {"equal": "{0} == {1}", "not_equal": "{0} != {1}", "less": "{0} < {1}",
           "less_equal": "{0} <= {1}", "greater": "{0} > {1}", "greater_equal": "{0} >= {1}"}
FLOAT_OPS.update(COMPARE)
INT_OPS = {
    "add": "gc_add({0}, {1})", "sub": "gc_sub({0}, {1})", "mul": "gc_mul({0}, {1})",
    "floordiv": "gc_floordiv({0}, {1})", "mod": "gc_mod({0}, {1})", "pow": "gc_pow_int({0}, {1})",
    "maximum": "gc_maximum({0}, {1})", "minimum": "gc_minimum({0}, {1})",
    "neg": "gc_neg({0})", "abs": "gc_abs({0})", "sign": "gc_sign({0})",
    "square": "gc_mul({0}, {0})", "relu": "gc_relu({0})", **COMPARE,
}
BOOL_OPS = {
    "logical_and": "{0} && {1}", "logical_or": "{0} || {1}", "logical_xor": "{0} != {1}",
    "logical_not": "!{0}", "maximum": "{0} || {1}", "minimum": "{0} && {1}",
    "add": "{0} || {1}", "mul": "{0} && {1}", **COMPARE,  # False < True
}
ANY_DTYPE = ("cast", "where", "check_index", "round_bfloat16")

# (source register type, target dtype) -> float-to-int conversion: truncating, saturating
TRUNCATE = {("float", "int32"): "__float2int_rz", ("float", "int64"): "__float2ll_rz",
            ("double", "int32"): "__double2int_rz", ("double", "int64"): "__double2ll_rz"}
# source dtype -> its conversion to float16, rounded once
TO_HALF = {"int32": "__int2half_rn", "int64": "__ll2half_rn", "float64": "__double2half",
           "float32": "__float2half_rn", "bfloat16": "__float2half_rn"}


def table_for(dtype):
    return FLOAT_OPS if dtype in FLOATS else BOOL_OPS if dtype == "bool" else INT_OPS


def render_op(e, args):
    """The C expression of Op e on the C expressions `args` of its operands (check_index is
    a statement: the renderer emits it)."""
    src = e.args[0].dtype
    if e.name == "cast":
        return cast(args[0], src, e.dtype)
    if e.name == "where":
        return f"{args[0]} ? {args[1]} : {args[2]}"
    if e.name == "round_bfloat16":
        return f"gc_round_bfloat16({args[0]})"
    text = table_for(src)[e.name].format(*args, f=math_suffix(src) if src in FLOATS else "")
    return f"gc_half({text})" if e.dtype == "float16" else text


def cast(x, src, dst):
    """x (a register value of dtype src) as a register value of dtype dst, as numpy's astype."""
    if src == dst:
        return x
    if dst == "bool":
        return f"{x} != 0"
    if dst == "float16":
        if src == "bool":
            return f"(float){x}"
        return f"__half2float({TO_HALF[src]}({x}))" if src != "float16" else x
    if src in FLOATS and dst not in FLOATS:
        return f"{TRUNCATE[(REGISTER[src], dst)]}({x})"
    out = x if REGISTER[src] == REGISTER[dst] else f"({REGISTER[dst]}){x}"
    return f"gc_round_bfloat16({out})" if dst == "bfloat16" else out


def unsupported_ops(kernels):
    """The (op on dtype) names in these kernels that have no CUDA C here."""
    return {f"{name} on {src}" for name, src in ir.op_uses(kernels)
            if name not in ANY_DTYPE and name not in table_for(src)}
