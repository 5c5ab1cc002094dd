"""Vectorizable math functions emitted as LLVM IR: exp, expm1, log, log1p, tanh, sigmoid,
softplus, erf, sin, cos and pow(x, y), in float32 and float64.

`call(builder, name, args)` emits a call to `graphc.math.<name>.<f32|f64>`, an internal,
alwaysinline function defined in the builder's module on first use. Bodies are straight-line
code: no branches and no library calls; special values and pieces of a piecewise method are
chosen with selects. Once inlined into a loop, LLVM's loop vectorizer turns the loop into SIMD
code (AVX-512 where the host has it). float16/bfloat16 callers compute in float32.

Method: range reduction (Cody-Waite with fma for exp and sin/cos, exponent/mantissa split for
log), then a polynomial evaluated with fma (Horner). Each coefficient table is minimax for the
weighted error named beside it (Remez exchange, coefficients rounded to the target precision;
for most tables one at a time, refitting the rest). The bound quoted for a table is its
approximation error with the rounded coefficients. The bound quoted for a function ("measured")
is the largest error against correctly rounded results: for float32 over every float32 of the
binades where the function does its work (GRAPHC_EXHAUSTIVE=1 runs that test), for float64 on
random samples against long double references (52 million per function; the tests check a
seeded 1.3 million). They are also within their bound plus one ulp of numpy's float64 (the
platform's libm, itself about an ulp off).

No fast-math flags are set: contract, reassoc, arcp and afn change roundings, nnan, ninf and nsz
change special values, and the vectorizer needs none of them.

sqrt, fabs, floor, ceil, trunc, rint, fma, copysign, minnum/maxnum (NaN-ignoring, like
np.fmin/np.fmax) and minimum/maximum (NaN-propagating, like np.minimum/np.maximum) are LLVM
intrinsics; `call` emits them directly so that callers treat every function alike.
"""
import math

import llvmlite.ir as ir

from ...errors import GraphcError

LN2 = {32: (0.6931472, -1.9046542e-09), 64: (0.6931471805599453, 2.3190468138462996e-17)}
LOG2E = 1.4426950408889634
INV_PI = 0.3183098861837907
# pi/2 as a sum of four numbers of the target precision, for Cody-Waite reduction with fma
PIO2 = {32: (1.5707964, -4.371139e-08, -1.7151245e-15, 1.0562999e-23),
        64: (1.5707963267948966, 6.123233995736766e-17, -1.4973849048591698e-33,
             5.562271104316826e-50)}


class _Body:
    """Helpers to emit one function body in float (32) or double (64) precision."""

    def __init__(self, builder, ftype):
        self.b = builder
        self.ftype = ftype
        self.bits = 32 if isinstance(ftype, ir.FloatType) else 64
        self.itype = ir.IntType(self.bits)
        self.mantissa = 23 if self.bits == 32 else 52  # stored fraction bits
        self.bias = 127 if self.bits == 32 else 1023

    def c(self, value):
        return ir.Constant(self.ftype, value)

    def ic(self, value):
        return ir.Constant(self.itype, value)

    def intrinsic(self, op, *args, name=""):
        return self.b.call(_intrinsic(self.b.module, op, self.ftype, len(args)), args, name=name)

    def math(self, fn, *args):
        """Another function of this library (inlined like this one)."""
        return call(self.b, fn, list(args))

    def fma(self, a, b, c, name=""):
        return self.intrinsic("fma", a, b, c, name=name)

    def horner(self, x, coeffs, name):
        """coeffs[0] + x*coeffs[1] + x^2*coeffs[2] + ..., one fma per coefficient."""
        acc = self.c(coeffs[-1])
        for k, coeff in enumerate(reversed(coeffs[:-1])):
            acc = self.fma(acc, x, self.c(coeff), name=f"{name}{len(coeffs) - 2 - k}")
        return acc

    def lt(self, a, b, name=""):
        return self.b.fcmp_ordered("<", a, b, name=name)

    def select(self, cond, a, b, name=""):
        return self.b.select(cond, a, b, name=name)

    def min(self, x, hi, name):
        """min(x, hi); NaN stays NaN (one min instruction on x86)."""
        above = self.b.fcmp_ordered(">", x, self.c(hi), name=f"{name}_above")
        return self.select(above, self.c(hi), x, name=name)

    def clamp(self, x, lo, hi, name):
        """x limited to [lo, hi]; NaN stays NaN."""
        below_hi = self.min(x, hi, f"{name}_hi")
        below = self.lt(below_hi, self.c(lo), name=f"{name}_below")
        return self.select(below, self.c(lo), below_hi, name=name)

    def keep_zero(self, x, y):
        """y, or x where x is +-0 (functions with f(x) ~ x that must keep the sign of zero)."""
        zero = self.b.fcmp_ordered("==", x, self.c(0.0), name="x_zero")
        return self.select(zero, x, y, name="y_signed")

    def abs(self, x, name="a"):
        return self.intrinsic("fabs", x, name=name)

    def bits_of(self, x, name):
        return self.b.bitcast(x, self.itype, name=name)

    def pow2(self, n, name):
        """2.0**n for an integer n of the normal exponent range, built from exponent bits."""
        biased = self.b.add(n, self.ic(self.bias), name=f"{name}_biased")
        exponent = self.b.shl(biased, self.ic(self.mantissa), name=f"{name}_bits")
        return self.b.bitcast(exponent, self.ftype, name=name)


# ---- exp, expm1 ------------------------------------------------------------------------------
# expm1(r)/r for |r| <= 0.3467 (ln2/2 plus rounding of n), relative error 2.3e-8 / 2.1e-17
EXP_Q = {
    32: (1.0, 0.49999997, 0.16666506, 0.041667137, 0.008369095, 0.0013888873),
    64: (1.0, 0.5000000000000006, 0.16666666666666563, 0.041666666666573635,
         0.008333333333398012, 0.0013888888932353772, 0.00019841269707195213,
         2.4801504481525668e-05, 2.75574149088416e-06, 2.762631307550929e-07,
         2.505210337481748e-08),
}
# below: exp rounds to 0; above: exp is inf. Both keep 2^n in two normal factors.
EXP_RANGE = {32: (-104.0, 89.0), 64: (-746.0, 710.0)}
# below: expm1 rounds to -1 (exp(x) < half an ulp of 1), and 2^n stays normal
EXPM1_LOW = {32: -18.0, 64: -38.0}
# 1.5 * 2^mantissa and its bits: adding it rounds to an integer that the low bits then hold
SHIFTER = {32: (12582912.0, 0x4B400000), 64: (6755399441055744.0, 0x4338000000000000)}


def _exp_reduce(m, x):
    """x = n*ln2 + r with |r| <= ln2/2 for |x| < 2^21 (Cody-Waite with fma): the integer n and r,
    exact but for r's rounding. n comes from the bits of x*log2(e) + 1.5*2^mantissa, not from
    fptosi, so a NaN x gives a NaN r, not poison."""
    shifter, shifter_bits = SHIFTER[m.bits]
    shifted = m.fma(x, m.c(LOG2E), m.c(shifter), name="n_shifted")
    n = m.b.fsub(shifted, m.c(shifter), name="n")
    ni = m.b.sub(m.bits_of(shifted, "n_bits"), m.ic(shifter_bits), name="ni")
    ln2_hi, ln2_lo = LN2[m.bits]
    minus_n = m.b.fneg(n, name="minus_n")
    r = m.fma(minus_n, m.c(ln2_hi), x, name="r_hi")
    return ni, m.fma(minus_n, m.c(ln2_lo), r, name="r")


def _expm1_reduced(m, r):
    """expm1(r) = r + r*(r*Q'(r)) for |r| <= ln2/2, rounded once by an fma (about half an
    ulp): expm1 and tanh double it and subtract 1, which doubles its error in ulps."""
    r_tail = m.b.fmul(r, m.horner(r, EXP_Q[m.bits][1:], "q"), name="r_q_tail")
    return m.fma(r, r_tail, r, name="expm1_r")


def _exp_core(m, x, x_lo=None):
    """exp(x + x_lo) for x_lo far below x's last bit (pow's product carries one)."""
    lo, hi = EXP_RANGE[m.bits]
    ni, r = _exp_reduce(m, m.clamp(x, lo, hi, "xc"))
    if x_lo is not None:
        r = m.b.fadd(r, x_lo, name="r_lo")
    p = m.fma(r, m.horner(r, EXP_Q[m.bits], "q"), m.c(1.0), name="exp_r")
    half = m.b.ashr(ni, m.ic(1), name="n1")
    scaled = m.b.fmul(p, m.pow2(half, "scale1"), name="p_scale1")
    return m.b.fmul(scaled, m.pow2(m.b.sub(ni, half, name="n2"), "scale2"), name="exp")


def _exp(m, x):
    """exp: Cody-Waite reduction, 1 + r*Q(r), scale by 2^n in two steps so that results near
    overflow and in the subnormal range are formed with one rounding.
    Measured: float32 <= 1 ulp, float64 <= 1 ulp."""
    return _exp_core(m, x)


def _expm1(m, x):
    """expm1: the reduction of exp, then 2^k*expm1(r) + (2^k - 1) with one fma, k = min(n,
    mantissa+2); a remaining 2^(n-k) for large x, where the -1 is below the last bit anyway.
    Measured: float32 <= 2 ulp, float64 <= 2 ulp."""
    ni, r = _exp_reduce(m, m.clamp(x, EXPM1_LOW[m.bits], EXP_RANGE[m.bits][1], "xc"))
    u = _expm1_reduced(m, r)
    top = m.ic(m.mantissa + 2)
    k = m.b.select(m.b.icmp_signed("<", ni, top, name="n_small"), ni, top, name="k")
    s = m.pow2(k, "s")
    y = m.fma(s, u, m.b.fsub(s, m.c(1.0), name="s_minus_1"), name="y_k")
    y = m.b.fmul(y, m.pow2(m.b.sub(ni, k, name="n_rest"), "scale_rest"), name="expm1")
    return m.keep_zero(x, y)


# ---- log, log1p ------------------------------------------------------------------------------
# log(1+f) = 2 atanh(s) = 2s + s*z*T(z) with s = f/(2+f), z = s^2 <= 0.0295; T minimax with
# weight z/2 (its share of log's relative error): 8.1e-10 / 1.2e-18
LOG_T = {
    32: (0.66666776, 0.3997758, 0.2987093),
    64: (0.6666666666666734, 0.39999999999416525, 0.28571428742071536, 0.22222198599209297,
         0.1818356321572415, 0.15314074167997838, 0.14795752201936807),
}
SQRT_HALF_BITS = {32: 0x3F3504F3, 64: 0x3FE6A09E667F3BCD}
ONE_BITS = {32: 0x3F800000, 64: 0x3FF0000000000000}
SUBNORMAL_SCALE = {32: 25, 64: 54}  # scales subnormals into the normal range


def _log_split(m, u):
    """u = 2^k * (1+f) with 1+f in [sqrt(1/2), sqrt(2)), by integer arithmetic on the bits
    (musl's method; subnormals scaled up first): k as a float and f, exact."""
    tiny = m.lt(u, m.c(2.0 ** (1 - m.bias)), name="subnormal")
    scale = SUBNORMAL_SCALE[m.bits]
    u_normal = m.select(tiny, m.b.fmul(u, m.c(2.0 ** scale), name="u_scaled"), u,
                        name="u_normal")
    k_adjust = m.select(tiny, m.ic(-scale), m.ic(0), name="k_adjust")
    ix = m.b.add(m.bits_of(u_normal, "u_bits"),
                 m.ic(ONE_BITS[m.bits] - SQRT_HALF_BITS[m.bits]), name="ix")
    k = m.b.sub(m.b.lshr(ix, m.ic(m.mantissa), name="k_biased"), m.ic(m.bias), name="k_raw")
    k = m.b.add(k, k_adjust, name="k")
    fraction = m.b.and_(ix, m.ic((1 << m.mantissa) - 1), name="fraction_bits")
    mant = m.b.add(fraction, m.ic(SQRT_HALF_BITS[m.bits]), name="mant_bits")
    f = m.b.fsub(m.b.bitcast(mant, m.ftype, name="mant"), m.c(1.0), name="f")
    return m.b.sitofp(k, m.ftype, name="dk"), f


def _log_specials(m, u, y):
    """y, or log's value at u = 0, negative, inf or NaN."""
    u_inf = m.b.fcmp_ordered("==", u, m.c(math.inf), name="u_inf")
    y = m.select(u_inf, u, y, name="y_inf")
    u_zero = m.b.fcmp_ordered("==", u, m.c(0.0), name="u_zero")
    y = m.select(u_zero, m.c(-math.inf), y, name="y_zero")
    no_log = m.b.fcmp_unordered("<", u, m.c(0.0), name="u_negative_or_nan")
    return m.select(no_log, m.c(math.nan), y, name="y")


def _log_core(m, u, c=None):
    """log(u) + c, where c is a correction far below u's last bit (log1p's rounding of 1+x):
    log(1+f) = f - f^2/2 + s*(f^2/2 + z*T(z)) as in fdlibm, plus k*ln2 in two parts."""
    dk, f = _log_split(m, u)
    s = m.b.fdiv(f, m.b.fadd(f, m.c(2.0), name="two_plus_f"), name="s")
    z = m.b.fmul(s, s, name="z")
    R = m.b.fmul(z, m.horner(z, LOG_T[m.bits], "t"), name="R")
    hfsq = m.b.fmul(m.b.fmul(f, f, name="f2"), m.c(0.5), name="hfsq")
    ln2_hi, ln2_lo = LN2[m.bits]
    low = m.b.fmul(dk, m.c(ln2_lo), name="low") if c is None else m.fma(
        dk, m.c(ln2_lo), c, name="low")
    t = m.fma(s, m.b.fadd(hfsq, R, name="hfsq_R"), low, name="t")
    t = m.b.fadd(m.b.fsub(t, hfsq, name="t_hfsq"), f, name="log1pf")
    return _log_specials(m, u, m.fma(dk, m.c(ln2_hi), t, name="log"))


def _log(m, x):
    """log: see _log_core. Measured: float32 <= 1 ulp, float64 <= 1 ulp."""
    return _log_core(m, x)


def _log1p(m, x):
    """log1p: u = 1+x rounded, log(u) plus the correction (x - (u-1))/u for that rounding (u-1
    is exact). Measured: float32 <= 1 ulp, float64 <= 1 ulp."""
    u = m.b.fadd(x, m.c(1.0), name="u")
    lost = m.b.fsub(x, m.b.fsub(u, m.c(1.0), name="u_minus_1"), name="lost")
    c = m.b.fdiv(lost, u, name="c_raw")
    # 0/0 at u = 0 and inf-inf at u = inf: log(u) alone is right there
    c = m.select(m.b.fcmp_ordered("ord", c, c, name="c_number"), c, m.c(0.0), name="c")
    return m.keep_zero(x, _log_core(m, u, c))


# ---- tanh, sigmoid, softplus -----------------------------------------------------------------
# tanh(a) = a + a^3*P(a^2) for a <= 0.55; minimax relative to tanh: 1.1e-9 / 2.0e-17
TANH_P = {
    32: (-0.33333316, 0.13332544, -0.053847548, 0.021050714, -0.0062428494),
    64: (-0.33333333333332316, 0.13333333333168934, -0.0539682538761643, 0.02186948597645484,
         -0.008863194522830659, 0.0035917198285336667, -0.001453217329482982,
         0.0005791385407931613, -0.00021030466241104957, 5.1022913207400826e-05),
}
TANH_SMALL = 0.55  # about ln(3)/2; e/(e+2) keeps within 1 ulp above it, not below
TANH_ONE = {32: 10.0, 64: 20.0}  # beyond: tanh rounds to 1 (1 - tanh(a) < 2e^(-2a))


def _tanh(m, x):
    """tanh(a), a = |x|: odd polynomial for a < 0.55, else e/(e+2) with e = expm1(2a) as in
    _expm1 (a clamped where tanh rounds to 1, so 2^n stays small); sign copied from x.
    Measured: float32 <= 1 ulp, float64 <= 1 ulp."""
    a = m.abs(x)
    z = m.b.fmul(a, a, name="z")
    small = m.fma(m.b.fmul(a, z, name="a3"), m.horner(z, TANH_P[m.bits], "p"), a, name="small")
    two_a = m.b.fmul(m.min(a, TANH_ONE[m.bits], "a_clamped"), m.c(2.0), name="two_a")
    ni, r = _exp_reduce(m, two_a)
    s = m.pow2(ni, "s")
    e = m.fma(s, _expm1_reduced(m, r), m.b.fsub(s, m.c(1.0), name="s_minus_1"), name="e")
    big = m.b.fdiv(e, m.b.fadd(e, m.c(2.0), name="e_plus_2"), name="big")
    y = m.select(m.lt(a, m.c(TANH_SMALL), name="is_small"), small, big, name="tanh_abs")
    return m.intrinsic("copysign", y, x, name="tanh")


def _sigmoid(m, x):
    """sigmoid: e = exp(-|x|) in (0, 1] never overflows; 1/(1+e) for x >= 0, e/(1+e) below.
    Measured: float32 <= 2 ulp, float64 <= 2 ulp."""
    e = m.math("exp", m.b.fneg(m.abs(x), name="minus_a"))
    numerator = m.select(m.lt(x, m.c(0.0), name="negative"), e, m.c(1.0), name="numerator")
    return m.b.fdiv(numerator, m.b.fadd(e, m.c(1.0), name="one_plus_e"), name="sigmoid")


def _softplus(m, x):
    """softplus: log1p(exp(-|x|)) + max(x, 0), never overflowing. Measured: float32 <= 2 ulp,
    float64 <= 2 ulp."""
    e = m.math("exp", m.b.fneg(m.abs(x), name="minus_a"))
    positive = m.select(m.lt(m.c(0.0), x, name="positive"), x, m.c(0.0), name="max_x_0")
    return m.b.fadd(m.math("log1p", e), positive, name="softplus")


# ---- erf -------------------------------------------------------------------------------------
# erf(a) = a + a*P(a^2) for a < 1; minimax relative to erf: 1.4e-9 / 1.4e-17
ERF_SMALL_P = {
    32: (0.12837917, -0.37612626, 0.11283579, -0.026853347, 0.005187162, -0.0007997853,
         7.806903e-05),
    64: (0.12837916709551256, -0.37612638903183343, 0.11283791670936957, -0.026866170641961472,
         0.005223977596765683, -0.0008548325486960134, 0.0001205528057153043,
         -1.4924467394651836e-05, 1.64441760746664e-06, -1.618421534921779e-07,
         1.3617789727449874e-08, -7.610063962576956e-10),
}
# erfc(a) = exp(-a^2) * G(a - center) for 1 <= a <= top, top where erf rounds to 1;
# minimax with weight exp(-a^2)/erf(a) (relative error of erf): 2.7e-9 / 1.4e-17
ERF_LARGE = {  # (center, top, coefficients)
    32: (2.5, 4.0, (0.21080765, -0.07434091, 0.024919717, -0.008126006, 0.0023006096,
                    -0.00067224377, 0.0005330081, 0.00022099393, 0.000106240426)),
    64: (3.475, 5.95, (
        0.1563334502845684, -0.04186168761046723, 0.010864085962308598, -0.002739325579803435,
        0.0006724643213059331, -0.0001610085451070889, 3.764767491783737e-05,
        -8.62160283552171e-06, 1.9373133464875238e-06, -4.0330096036468475e-07,
        1.0724401512239195e-07, -2.0898941254685104e-08, -8.146048455773921e-09,
        -1.0348605227630693e-08, -2.2963223624084848e-09, 1.1635757640557265e-09,
        1.344424738792269e-09, 5.731248530404026e-10, 1.3983385192237225e-10,
        1.9069376588450614e-11, 1.186895546059666e-12)),
}


def _erf(m, x):
    """erf: odd polynomial below 1; 1 - exp(-a^2)*G(a) from 1 up to where erf rounds to 1;
    sign copied from x. Measured: float32 <= 1 ulp, float64 <= 1 ulp (against math.erf)."""
    center, top, coeffs = ERF_LARGE[m.bits]
    a = m.abs(x)
    small = m.fma(a, m.horner(m.b.fmul(a, a, name="z"), ERF_SMALL_P[m.bits], "p"), a,
                  name="small")
    ac = m.min(a, top, "a_top")
    g = m.horner(m.b.fsub(ac, m.c(center), name="v"), coeffs, "g")
    e = m.math("exp", m.b.fneg(m.b.fmul(ac, ac, name="a2"), name="minus_a2"))
    big = m.fma(m.b.fneg(e, name="minus_e"), g, m.c(1.0), name="big")
    y = m.select(m.lt(a, m.c(1.0), name="is_small"), small, big, name="erf_abs")
    return m.intrinsic("copysign", y, x, name="erf")


# ---- sin, cos --------------------------------------------------------------------------------
# sin(r) = r + r^3*S(r^2) for |r| <= pi/2 + slack (0.02 / 1e-6, room for a rounded quotient);
# minimax relative to sin: 7.5e-9 / 3.0e-19
SIN_S = {
    32: (-0.16666658, 0.00833303, -0.0001980685, 2.5995178e-06),
    64: (-0.16666666666666666, 0.008333333333333207, -0.0001984126984121248,
         2.755731921156944e-06, -2.5052106904411517e-08, 1.605894100105815e-10,
         -7.643019307334515e-13, 2.721418330859853e-15),
}
SIN_R_MAX = {32: 1.5707964 + 0.02, 64: 1.5707963267948966 + 1e-6}


def _sin_cos(m, x, cos):
    """x = q*pi/2 + r with q = 2k (sin) or 2k+1 (cos), r by four-part Cody-Waite with fma;
    then +-sin(r): sin(x) = (-1)^k sin(r), cos(x) = -(-1)^k sin(r). r stays accurate relative
    to itself near the zeros of both. Beyond the accurate range k may be off (x/pi has too few
    fraction bits) and r is clamped to the polynomial's interval, keeping results in [-1, 1]."""
    if cos:
        k = m.intrinsic("roundeven", m.fma(x, m.c(INV_PI), m.c(-0.5), name="x_pi_half"), name="k")
        q = m.fma(k, m.c(2.0), m.c(1.0), name="q")
    else:
        k = m.intrinsic("roundeven", m.b.fmul(x, m.c(INV_PI), name="x_pi"), name="k")
        q = m.b.fadd(k, k, name="q")
    minus_q = m.b.fneg(q, name="minus_q")
    r = x
    for i, part in enumerate(PIO2[m.bits]):
        r = m.fma(minus_q, m.c(part), r, name=f"r{i}")
    r = m.clamp(r, -SIN_R_MAX[m.bits], SIN_R_MAX[m.bits], "r")
    z = m.b.fmul(r, r, name="z")
    p = m.fma(m.b.fmul(r, z, name="r3"), m.horner(z, SIN_S[m.bits], "s"), r, name="sin_r")
    half_k = m.b.fmul(k, m.c(0.5), name="half_k")
    parity = "!=" if not cos else "=="  # sin: negate for odd k, cos: for even k
    half_k_int = m.intrinsic("roundeven", half_k, name="half_k_int")
    negate = m.b.fcmp_ordered(parity, half_k, half_k_int, name="negate")
    y = m.select(negate, m.b.fneg(p, name="minus_sin_r"), p, name="y_finite")
    finite = m.lt(m.abs(x, "x_abs"), m.c(math.inf), name="finite")
    return m.select(finite, y, m.c(math.nan), name="y")


def _sin(m, x):
    """sin: see _sin_cos. Accurate for |x| <= 1e5 (float32) and 1e9 (float64); beyond, finite
    and within [-1, 1] but not accurate. Measured: float32 <= 2 ulp, float64 <= 2 ulp."""
    return m.keep_zero(x, _sin_cos(m, x, cos=False))


def _cos(m, x):
    """cos: see _sin_cos; same ranges and bounds as sin."""
    return _sin_cos(m, x, cos=True)


# ---- pow -------------------------------------------------------------------------------------
# float64 only: (2 atanh(s) - 2s - 2/3 s^3) / s^5 in z = s^2 <= 0.0295, weight z^2/2 (share of
# log's relative error): 7.6e-23, so that log|x| carries about 66 bits into y*log|x|
POW_LOG_U = (0.3999999999999998, 0.2857142857144384, 0.22222222217789592, 0.18181818844031658,
             0.1538455842457706, 0.13336264696444577, 0.11675775904197477, 0.1198179928236058)
TWO_THIRDS = (0.6666666666666666, 3.700743415417188e-17)  # as a sum of two doubles


def _two_prod(m, a, b, name):
    """a*b = hi + lo exactly."""
    hi = m.b.fmul(a, b, name=name)
    return hi, m.fma(a, b, m.b.fneg(hi, name=f"{name}_neg"), name=f"{name}_lo")


def _two_sum(m, a, b, name):
    """a+b = hi + lo exactly, any magnitudes (Knuth)."""
    hi = m.b.fadd(a, b, name=name)
    b_part = m.b.fsub(hi, a, name=f"{name}_b")
    a_err = m.b.fsub(a, m.b.fsub(hi, b_part, name=f"{name}_a"), name=f"{name}_a_err")
    b_err = m.b.fsub(b, b_part, name=f"{name}_b_err")
    return hi, m.b.fadd(a_err, b_err, name=f"{name}_lo")


def _fast_two_sum(m, a, b, name):
    """a+b = hi + lo exactly, for |a| >= |b|."""
    hi = m.b.fadd(a, b, name=name)
    return hi, m.b.fsub(b, m.b.fsub(hi, a, name=f"{name}_b"), name=f"{name}_lo")


def _log_double_double(m, u):
    """log(u) = hi + lo to about 2^-66 relative, for finite u > 0 (float64): the terms 2s and
    2/3 s^3 of 2 atanh(s) and k*ln2 kept as double-double, s^5*U(z) in double."""
    dk, f = _log_split(m, u)
    two = m.b.fadd(f, m.c(2.0), name="two_plus_f")
    two_lo = m.b.fsub(f, m.b.fsub(two, m.c(2.0), name="f_part"), name="two_plus_f_lo")
    s = m.b.fdiv(f, two, name="s")
    f_minus_s_two = m.fma(m.b.fneg(s, name="minus_s"), two, f, name="f_minus_s_two")
    residual = m.b.fsub(f_minus_s_two, m.b.fmul(s, two_lo, name="s_two_lo"), name="s_residual")
    s_lo = m.b.fdiv(residual, two, name="s_lo")
    z, z_lo = _two_prod(m, s, s, "z")
    s3, s3_lo = _two_prod(m, s, z, "s3")
    # (s + s_lo)^3 = s3 + s3_lo + s*z_lo + 3*z*s_lo + (far smaller terms)
    three_z_s_lo = m.b.fmul(m.b.fmul(z, m.c(3.0), name="three_z"), s_lo, name="three_z_s_lo")
    s3_lo = m.b.fadd(s3_lo, m.fma(s, z_lo, three_z_s_lo, name="s3_lo_terms"), name="s3_lo_all")
    c_hi, c_lo = TWO_THIRDS
    b, b_lo = _two_prod(m, m.c(c_hi), s3, "b")
    b_lo_terms = m.fma(m.c(c_hi), s3_lo, m.b.fmul(m.c(c_lo), s3, name="c_lo_s3"),
                       name="b_lo_terms")
    b_lo = m.b.fadd(b_lo, b_lo_terms, name="b_lo_all")
    d = m.b.fmul(m.b.fmul(s3, z, name="s5"), m.horner(z, POW_LOG_U, "u"), name="d")
    ln2_hi, ln2_lo = LN2[64]
    k_hi, k_lo = _two_prod(m, dk, m.c(ln2_hi), "k_ln2")
    k_lo = m.fma(dk, m.c(ln2_lo), k_lo, name="k_ln2_lo_all")
    two_s = m.b.fmul(s, m.c(2.0), name="two_s")
    hi, e1 = _two_sum(m, k_hi, two_s, "sum1")
    hi, e2 = _fast_two_sum(m, hi, b, "sum2")  # |k ln2 + 2s| > 0.34 > |b| or k = 0, |2s| > 90|b|
    lo_ks = m.b.fadd(k_lo, m.b.fmul(s_lo, m.c(2.0), name="two_s_lo"), name="lo_k_s")
    lo = m.b.fadd(lo_ks, m.b.fadd(b_lo, d, name="lo_b_d"), name="lo_terms")
    lo = m.b.fadd(lo, m.b.fadd(e1, e2, name="lo_sums"), name="lo")
    return _fast_two_sum(m, hi, lo, "log")


def _pow_magnitude(m, ax, y):
    """|x|^y = exp(y*log|x|): in float64 for float32 arguments (error far below float32's ulp),
    with a double-double log and product for float64."""
    if m.bits == 32:
        double = ir.DoubleType()
        t = m.b.fmul(m.b.fpext(y, double, name="y64"),
                     m.math("log", m.b.fpext(ax, double, name="ax64")), name="t")
        return m.b.fptrunc(m.math("exp", t), m.ftype, name="magnitude")
    log_hi, log_lo = _log_double_double(m, ax)
    log_hi = _log_specials(m, ax, log_hi)
    t, t_lo = _two_prod(m, y, log_hi, "t")
    t_lo = m.fma(y, log_lo, t_lo, name="t_lo_all")
    # where exp saturates (t clamped, infinite or NaN) the low part must not move r
    in_range = m.lt(m.abs(t, "t_abs"), m.c(-EXP_RANGE[64][0]), name="t_in_range")
    t_lo = m.select(in_range, t_lo, m.c(0.0), name="t_lo")
    return _exp_core(m, t, t_lo)


def _pow(m, x, y):
    """pow as C99 and numpy have it: exp(y*log|x|) (see _pow_magnitude), negated for x < 0
    (or -0) and odd integer y, NaN for x < 0 and finite non-integer y, 1 for y = 0, x = 1 and
    x = -1 with infinite y. Measured on random samples: float32 and float64 <= 1 ulp."""
    ax = m.abs(x, "ax")
    magnitude = _pow_magnitude(m, ax, y)
    y_int = m.b.fcmp_ordered("==", m.intrinsic("trunc", y, name="y_trunc"), y, name="y_int")
    half = m.b.fmul(y, m.c(0.5), name="half_y")
    half_int = m.intrinsic("trunc", half, name="half_y_trunc")
    y_odd = m.b.and_(y_int, m.b.fcmp_ordered("!=", half_int, half, name="half_y_fraction"),
                     name="y_odd")
    sign_bit = m.b.icmp_signed("<", m.bits_of(x, "x_bits"), m.ic(0), name="x_sign")
    negate = m.b.and_(sign_bit, y_odd, name="negate")
    r = m.select(negate, m.b.fneg(magnitude, name="minus_magnitude"), magnitude, name="signed")
    negative_finite = m.b.and_(m.lt(x, m.c(0.0), name="x_negative"),
                               m.lt(m.c(-math.inf), x, name="x_finite_below"), name="x_neg")
    no_real = m.b.and_(negative_finite, m.b.not_(y_int, name="y_fraction"), name="no_real")
    r = m.select(no_real, m.c(math.nan), r, name="real")

    def eq(a, value, name):
        return m.b.fcmp_ordered("==", a, m.c(value), name=name)
    minus_one_inf = m.b.and_(eq(x, -1.0, "x_minus_one"), eq(m.abs(y, "ay"), math.inf, "y_inf"),
                             name="minus_one_inf")
    trivial = m.b.or_(eq(y, 0.0, "y_zero"), eq(x, 1.0, "x_one"), name="y_zero_or_x_one")
    one = m.b.or_(trivial, minus_one_inf, name="one")
    return m.select(one, m.c(1.0), r, name="pow")


# name -> (number of arguments, body emitter)
_FUNCTIONS = {
    "exp": (1, _exp), "expm1": (1, _expm1), "log": (1, _log), "log1p": (1, _log1p),
    "tanh": (1, _tanh), "sigmoid": (1, _sigmoid), "softplus": (1, _softplus), "erf": (1, _erf),
    "sin": (1, _sin), "cos": (1, _cos), "pow": (2, _pow),
}
# name -> (LLVM intrinsic, number of arguments)
_INTRINSICS = {
    "sqrt": ("sqrt", 1), "fabs": ("fabs", 1), "floor": ("floor", 1), "ceil": ("ceil", 1),
    "trunc": ("trunc", 1), "rint": ("roundeven", 1), "fma": ("fma", 3),
    "copysign": ("copysign", 2), "minnum": ("minnum", 2), "maxnum": ("maxnum", 2),
    "minimum": ("minimum", 2), "maximum": ("maximum", 2),
}
NAMES = tuple(_FUNCTIONS) + tuple(_INTRINSICS)
POLYNOMIALS = tuple(_FUNCTIONS)  # tens of instructions per vector, not one


def _arity(name):
    if name in _FUNCTIONS:
        return _FUNCTIONS[name][0]
    if name in _INTRINSICS:
        return _INTRINSICS[name][1]
    raise GraphcError(f"mathlib has no function {name!r}; it has {', '.join(NAMES)}")


def _suffix(ftype):
    return "f32" if isinstance(ftype, ir.FloatType) else "f64"


def _intrinsic(module, op, ftype, arity):
    name = f"llvm.{op}.{_suffix(ftype)}"
    fn = module.globals.get(name)
    if fn is None:
        fn = ir.Function(module, ir.FunctionType(ftype, [ftype] * arity), name)
    return fn


def _define(module, name, ftype):
    """The function graphc.math.<name>.<f32|f64> of module, defined on first use."""
    symbol = f"graphc.math.{name}.{_suffix(ftype)}"
    fn = module.globals.get(symbol)
    if fn is None:
        arity, emit = _FUNCTIONS[name]
        fn = ir.Function(module, ir.FunctionType(ftype, [ftype] * arity), symbol)
        fn.linkage = "internal"
        for attribute in ("alwaysinline", "nounwind", "readnone"):
            fn.attributes.add(attribute)
        for arg, arg_name in zip(fn.args, "xy"):
            arg.name = arg_name
        builder = ir.IRBuilder(fn.append_basic_block("entry"))
        builder.ret(emit(_Body(builder, ftype), *fn.args))
    return fn


def call(builder, name, args):
    """Emit name(*args) at the builder's position and return the result value.

    args are float or double scalars, all of one type; name is one of NAMES."""
    arity = _arity(name)
    types = {arg.type for arg in args}
    if len(args) != arity or len(types) != 1 or not isinstance(
            args[0].type, (ir.FloatType, ir.DoubleType)):
        raise GraphcError(f"mathlib.{name} takes {arity} float or double argument(s) of one "
                          f"type, got {[str(arg.type) for arg in args]}")
    ftype = args[0].type
    if name in _INTRINSICS:
        fn = _intrinsic(builder.module, _INTRINSICS[name][0], ftype, arity)
    else:
        fn = _define(builder.module, name, ftype)
    return builder.call(fn, args, name=name)


def define_map(module, symbol, name, ftype):
    """Define `void symbol(T* in0, ..., T* out, i64 n)`: out[i] = name(in0[i], ...) for i < n.

    The plain loop through which tests and benchmarks see what a kernel gets from `call`."""
    arity = _arity(name)
    i64 = ir.IntType(64)
    ptr = ftype.as_pointer()
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [ptr] * (arity + 1) + [i64]), symbol)
    *inputs, out, n = fn.args
    for i, arg in enumerate(inputs):
        arg.name = f"in{i}"
    out.name, n.name = "out", "n"
    for arg in (*inputs, out):
        arg.add_attribute("noalias")
    entry, loop, done = (fn.append_basic_block(label) for label in ("entry", "loop", "done"))
    builder = ir.IRBuilder(entry)
    builder.cbranch(builder.icmp_signed(">", n, ir.Constant(i64, 0), name="nonempty"), loop, done)
    builder.position_at_end(loop)
    i = builder.phi(i64, name="i")
    i.add_incoming(ir.Constant(i64, 0), entry)
    xs = [builder.load(builder.gep(arg, [i], name=f"{arg.name}_i"), name=f"x{k}")
          for k, arg in enumerate(inputs)]
    builder.store(call(builder, name, xs), builder.gep(out, [i], name="out_i"))
    following = builder.add(i, ir.Constant(i64, 1), name="i_next")
    i.add_incoming(following, loop)
    builder.cbranch(builder.icmp_signed("<", following, n, name="more"), loop, done)
    builder.position_at_end(done)
    builder.ret_void()
    return fn
