"""The kernel IR's scalar operations as CUDA C expressions, one table row per (op, kind of type).

Semantics follow numpy, as the LLVM generator's do: integers wrap around (their arithmetic goes
through the unsigned type of the same width, where C leaves signed overflow undefined);
maximum/minimum propagate NaN; float -> int casts truncate and saturate, NaN giving 0 (the
cvt.rzi intrinsics); compound ops (floor division, modulo, integer pow, sign, ...) never get
here: graphc/kernels/legalize.py expands them into simple ones, and truncdiv (C's /) gets
divisors that cannot trap; float16 computes in float and rounds back to half after every op;
bfloat16 is a float rounded only by round_bfloat16. Transcendentals are CUDA's
correctly-rounded-or-close library functions (expf, log1pf, erff, ...; no fast-math variants). The helpers the table names are defined once
per translation unit, in PRELUDE.
"""
from ...kernels import ir
from .types import FLOATS, REGISTER, math_suffix

PRELUDE = r"""#include <cuda_fp16.h>

// ---- graphc's scalar operations, with numpy's semantics -------------------------------------
#define GC_INLINE __device__ __forceinline__

// Integers wrap around: arithmetic goes through the unsigned type of the same width.
// (8- and 16-bit ones through unsigned int, where C would promote them to int, and its
// product of two 16-bit values overflow; the cast back keeps the low bits)
template <typename T> struct gc_unsigned { typedef T type; };  // the unsigned types themselves
template <> struct gc_unsigned<signed char> { typedef unsigned int type; };
template <> struct gc_unsigned<short> { typedef unsigned int type; };
template <> struct gc_unsigned<unsigned char> { typedef unsigned int type; };
template <> struct gc_unsigned<unsigned short> { typedef unsigned int type; };
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
// Shifts by counts in [0, bits) (legalize.py guards them); left shifts through the unsigned
// type, where C leaves shifting a negative value undefined; right shifts of signed values are
// arithmetic in nvcc.
template <typename T> GC_INLINE T gc_shl(T a, T count) {
    typedef typename gc_unsigned<T>::type U;
    return (T)((U)a << (int)count);
}
template <typename T> GC_INLINE T gc_shr(T a, T count) { return (T)(a >> (int)count); }
// C's division, in the operands' type (8- and 16-bit operands would give an int)
template <typename T> GC_INLINE T gc_truncdiv(T a, T b) { return (T)(a / b); }
// float -> 8- and 16-bit integers: truncated to int, then saturated to T's range
template <typename T> GC_INLINE T gc_saturate(int x, int lo, int hi) {
    return (T)(x < lo ? lo : x > hi ? hi : x);
}

// IEEE division (a zero divisor gives inf or NaN), through a call so that the compiler does
// not warn of a divisor it finds constant: the mean of an empty axis divides by a literal 0.
template <typename T> GC_INLINE T gc_divide(T a, T b) { return a / b; }

// NaN propagates through maximum and minimum (and so through the max/min reductions).
template <typename T> GC_INLINE T gc_maximum(T a, T b) { return (a > b || a != a) ? a : b; }
template <typename T> GC_INLINE T gc_minimum(T a, T b) { return (a < b || a != a) ? a : b; }

// Split by sign, so that neither branch overflows.
template <typename T> GC_INLINE T gc_sigmoid(T x) {
    T e = exp(-fabs(x));
    return x >= (T)0 ? (T)1 / ((T)1 + e) : e / ((T)1 + e);
}
template <typename T> GC_INLINE T gc_softplus(T x) {
    return log1p(exp(-fabs(x))) + gc_maximum(x, (T)0);
}

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

// Whether index i lies outside [0, n): one unsigned compare. A function, so that an extent
// of literal 0 draws no "pointless comparison of unsigned integer with zero" warning.
GC_INLINE bool gc_out_of_range(long long i, long long n) {
    return (unsigned long long)i >= (unsigned long long)n;
}
"""

# Expressions of the operand expressions {0}, {1}, {2}; {f} is the math functions' suffix.
FLOAT_OPS = {
    "add": "{0} + {1}", "sub": "{0} - {1}", "mul": "{0} * {1}", "div": "gc_divide({0}, {1})",
    "fmod": "fmod{f}({0}, {1})", "pow": "pow{f}({0}, {1})",
    "maximum": "gc_maximum({0}, {1})", "minimum": "gc_minimum({0}, {1})",
    "neg": "-{0}", "abs": "fabs{f}({0})", "sigmoid": "gc_sigmoid({0})",
    "softplus": "gc_softplus({0})", "isnan": "isnan({0})",
    **{name: name + "{f}({0})" for name in ("exp", "log", "log1p", "expm1", "sqrt", "sin",
                                            "cos", "tanh", "erf", "floor")},
}
COMPARE = {"equal": "{0} == {1}", "not_equal": "{0} != {1}", "less": "{0} < {1}",
           "less_equal": "{0} <= {1}", "greater": "{0} > {1}", "greater_equal": "{0} >= {1}"}
FLOAT_OPS.update(COMPARE)
INT_OPS = {
    "add": "gc_add({0}, {1})", "sub": "gc_sub({0}, {1})", "mul": "gc_mul({0}, {1})",
    "truncdiv": "gc_truncdiv({0}, {1})",
    "maximum": "gc_maximum({0}, {1})", "minimum": "gc_minimum({0}, {1})",
    "neg": "gc_neg({0})", "invert": "~{0}", "bitwise_and": "{0} & {1}",
    "bitwise_or": "{0} | {1}", "bitwise_xor": "{0} ^ {1}", "shl": "gc_shl({0}, {1})",
    "shr": "gc_shr({0}, {1})", **COMPARE,
}
BOOL_OPS = {
    "logical_and": "{0} && {1}", "logical_or": "{0} || {1}", "logical_xor": "{0} != {1}",
    "logical_not": "!{0}", "maximum": "{0} || {1}", "minimum": "{0} && {1}",
    "add": "{0} || {1}", "mul": "{0} && {1}", **COMPARE,  # False < True
}
ANY_DTYPE = ("cast", "where", "check_index", "round_bfloat16")

# (source register type, target dtype) -> float-to-int conversion: truncating, saturating
TRUNCATE = {("float", "int32"): "__float2int_rz", ("float", "int64"): "__float2ll_rz",
            ("double", "int32"): "__double2int_rz", ("double", "int64"): "__double2ll_rz",
            ("float", "uint32"): "__float2uint_rz", ("float", "uint64"): "__float2ull_rz",
            ("double", "uint32"): "__double2uint_rz", ("double", "uint64"): "__double2ull_rz"}
# 8- and 16-bit targets: through int, then saturated to their range
NARROW_RANGE = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767),
                "uint16": (0, 65535)}
# source dtype -> its conversion to float16, rounded once
TO_HALF = {"int8": "__short2half_rn", "uint8": "__ushort2half_rn", "int16": "__short2half_rn",
           "uint16": "__ushort2half_rn", "int32": "__int2half_rn", "uint32": "__uint2half_rn",
           "int64": "__ll2half_rn", "uint64": "__ull2half_rn", "float64": "__double2half",
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
    text = expression(e.name, src, args)
    return f"gc_half({text})" if e.dtype == "float16" else text


def expression(name, dtype, args):
    """The C expression of scalar op `name` on register values `args` of `dtype`, unrounded."""
    return table_for(dtype)[name].format(*args, f=math_suffix(dtype) if dtype in FLOATS else "")


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
    if src in FLOATS and dst in NARROW_RANGE:
        lo, hi = NARROW_RANGE[dst]
        return f"gc_saturate<{REGISTER[dst]}>({TRUNCATE[(REGISTER[src], 'int32')]}({x}), {lo}, {hi})"
    if src in FLOATS and dst not in FLOATS:
        return f"{TRUNCATE[(REGISTER[src], dst)]}({x})"
    out = x if REGISTER[src] == REGISTER[dst] else f"({REGISTER[dst]}){x}"
    return f"gc_round_bfloat16({out})" if dst == "bfloat16" else out


def unsupported_ops(kernels):
    """The (op on dtype) names in these kernels that have no CUDA C here."""
    return {f"{name} on {src}" for name, src in ir.op_uses(kernels)
            if name not in ANY_DTYPE and name not in table_for(src)}
