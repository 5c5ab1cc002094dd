"""mathlib: accuracy in ulps on large seeded samples over the whole float range, special values
as numpy has them, loops of every length, and loops that LLVM vectorizes with no library call.

References: float32 results are compared with the float64 value rounded to float32 (correctly
rounded but for rare double-rounding ties); float64 results with long double values rounded to
float64, and with numpy's float64 functions; erf with math.erf.

MAX_ULP holds the largest error measured, which the README states: over 40 seeds of samples()
(52 million values per function and dtype; about 1.3 million of them are checked here, one
seed) and, for float32, every value of the binades where each function does its work
(GRAPHC_EXHAUSTIVE=1).
"""
import ctypes
import functools
import math
import os
import re

import llvmlite.ir as ir
import numpy as np
import pytest

from graphc.codegen.llvm import jit, mathlib
from graphc.errors import GraphcError

FTYPES = {np.float32: ir.FloatType(), np.float64: ir.DoubleType()}
DTYPES = [np.float32, np.float64]
# name -> largest error in ulps against the correctly rounded result, (float32, float64)
MAX_ULP = {"exp": (1, 1), "log": (1, 1), "log1p": (1, 1), "tanh": (1, 1), "erf": (1, 1),
           "pow": (1, 1), "expm1": (2, 2), "sigmoid": (2, 2), "softplus": (2, 2), "sin": (2, 2),
           "cos": (2, 2)}
# numpy's float64 functions (the platform's libm) are themselves within about an ulp
NUMPY_SLACK = 1
SEED = 20240611
TRIG_RANGE = {np.float32: 1e5, np.float64: 1e9}  # where sin/cos promise accuracy


def _sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x < 0, e, 1) / (1 + e)


def _softplus(x):
    return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0)


_erf = np.vectorize(math.erf, otypes=[np.float64])

# name -> reference on an array of a wider type (float64 or long double)
REFERENCES = {"exp": np.exp, "expm1": np.expm1, "log": np.log, "log1p": np.log1p,
              "tanh": np.tanh, "sigmoid": _sigmoid, "softplus": _softplus, "sin": np.sin,
              "cos": np.cos, "erf": None}
NUMPY_FLOAT64 = {"exp", "expm1", "log", "log1p", "tanh", "sin", "cos"}


@functools.lru_cache(maxsize=None)
def _library(dtype):
    """One compiled module with a loop `map_<name>` for every function, per dtype."""
    module = ir.Module(name=f"mathlib_test_{dtype.__name__}")
    module.triple = jit.host()[0]
    for name in mathlib.NAMES:
        mathlib.define_map(module, f"map_{name}", name, FTYPES[dtype])
    return jit.load_object(jit.compile_ir(str(module)))


def apply(name, *arrays, n=None):
    """out[:n] = name(*arrays) elementwise through the compiled loop (n defaults to all)."""
    arrays = [np.ascontiguousarray(a) for a in arrays]
    dtype = arrays[0].dtype.type
    out = np.full(arrays[0].shape, 7.0, dtype)
    kernel = _library(dtype).function(f"map_{name}", None,
                                      *[ctypes.c_void_p] * (len(arrays) + 1), ctypes.c_int64)
    kernel(*[a.ctypes.data for a in arrays], out.ctypes.data, out.size if n is None else n)
    return out


def ulp_distance(a, b):
    """How many representable values lie between a and b (elementwise, same float dtype);
    +0 and -0 count as one value."""
    itype, sign = ((np.int32, 0x7FFF_FFFF) if a.dtype == np.float32
                   else (np.int64, 0x7FFF_FFFF_FFFF_FFFF))

    def ordered(v):
        bits = v.view(itype).astype(np.int64)
        return np.where(bits < 0, -(bits & sign), bits)
    # keys of finite values and infinities stay below 2**63 in magnitude, so no difference wraps
    return np.abs(ordered(a) - ordered(b))


def samples(rng, dtype, n=1 << 18):
    """Random floats over the whole range: random bit patterns (every exponent), subnormals,
    magnitudes from 1e-30 to 1e3, and the ranges where the functions bend. Odd total size, so
    loops end in their remainder."""
    itype = np.uint32 if dtype == np.float32 else np.uint64
    info = np.finfo(dtype)
    bits = rng.integers(0, np.iinfo(itype).max, n, dtype=itype, endpoint=True).view(dtype)
    subnormal = rng.uniform(-1, 1, n).astype(dtype) * info.tiny
    magnitudes = rng.choice([-1, 1], n) * 10.0 ** rng.uniform(-30, 3, n)
    parts = [bits[np.isfinite(bits)], subnormal, magnitudes.astype(dtype),
             rng.uniform(-10, 10, n).astype(dtype), rng.uniform(-1, 1, n).astype(dtype),
             np.array([0.5], dtype)]
    return np.concatenate(parts)


def reference(name, x):
    """The correctly rounded result (but for rare ties) in x's dtype."""
    if name == "erf":
        return _erf(x.astype(np.float64)).astype(x.dtype)
    wide = np.float64 if x.dtype == np.float32 else np.longdouble
    with np.errstate(all="ignore"):
        return REFERENCES[name](x.astype(wide)).astype(x.dtype)


def max_ulp(name, dtype):
    return MAX_ULP[name][DTYPES.index(np.dtype(dtype).type)]


def check_close(name, x, y, ref, against, slack=0):
    """y within MAX_ULP (plus `slack`) of ref, with NaNs in the same places."""
    nan = np.isnan(ref)
    wrong_nan = np.flatnonzero(nan != np.isnan(y))
    assert wrong_nan.size == 0, (
        f"{name}: NaN where {against} has none or the reverse, e.g. x={x[wrong_nan[0]]!r} "
        f"-> {y[wrong_nan[0]]!r}, {against} {ref[wrong_nan[0]]!r}")
    errors = ulp_distance(y[~nan], ref[~nan])
    worst = np.argmax(errors)
    message = (f"{name} {x.dtype}: max error {errors[worst]} ulp against {against} over "
               f"{errors.size} values, at x={x[~nan][worst]!r}: {y[~nan][worst]!r} vs "
               f"{ref[~nan][worst]!r}")
    assert errors[worst] <= max_ulp(name, x.dtype) + slack, message
    return message


def readme_bounds():
    """What the README must say: each bound and the functions it holds for, as in MAX_ULP."""
    groups = {}
    for name, (b32, b64) in MAX_ULP.items():
        bound = f"{b32} ulp" if b32 == b64 else f"{b32} ulp (float32) and {b64} (float64)"
        groups.setdefault(bound, []).append(name)
    return ", ".join(f"{bound} for `{' '.join(names)}`" for bound, names in groups.items())


def test_every_function_has_a_bound_and_the_readme_states_it():
    assert set(MAX_ULP) == set(REFERENCES) | {"pow"}
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    with open(os.path.join(root, "README.md")) as f:
        readme = " ".join(f.read().split())
    assert f"within {readme_bounds()} of the correctly rounded result" in readme, readme_bounds()


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("name", list(REFERENCES))
def test_accuracy(name, dtype):
    rng = np.random.default_rng(SEED)
    x = samples(rng, dtype)
    if name in ("sin", "cos"):
        x = x[np.abs(x) <= TRIG_RANGE[dtype]]
    y = apply(name, x)
    print(check_close(name, x, y, reference(name, x), "the correctly rounded result"))
    if dtype == np.float64 and name in NUMPY_FLOAT64:
        with np.errstate(all="ignore"):
            print(check_close(name, x, y, getattr(np, name)(x), "numpy", NUMPY_SLACK))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_pow_accuracy(dtype):
    rng = np.random.default_rng(SEED)
    x = samples(rng, dtype)
    exponents = [rng.uniform(-30, 30, x.size), rng.uniform(-2, 2, x.size),
                 rng.integers(-20, 21, x.size),
                 rng.choice([-1, 1], x.size) * 10.0 ** rng.uniform(-10, 3, x.size)]
    y = np.choose(rng.integers(0, len(exponents), x.size), exponents).astype(dtype)
    wide = np.float64 if dtype == np.float32 else np.longdouble
    with np.errstate(all="ignore"):
        ref = np.power(x.astype(wide), y.astype(wide)).astype(dtype)
    got = apply("pow", x, y)
    print(check_close("pow", x, got, ref, "the correctly rounded result"))
    if dtype == np.float64:
        with np.errstate(all="ignore"):
            print(check_close("pow", x, got, np.power(x, y), "numpy", NUMPY_SLACK))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_pow_special_values_as_numpy(dtype):
    """Every pair of special bases and exponents (C99 Annex F, which numpy follows): zeros,
    infinities and NaN exactly, with signs; other results within the usual bound."""
    info = np.finfo(dtype)
    big_odd = 2.0 ** (info.nmant + 1) - 1
    bases = [NAN, INF, -INF, 0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0, info.tiny,
             info.smallest_subnormal, -info.smallest_subnormal, info.max, -info.max]
    exponents = [NAN, INF, -INF, 0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 3.0, -3.0, 0.5, -0.5,
                 2.0 ** 60, big_odd, -big_odd, 1e-30]
    x, y = (a.ravel() for a in np.meshgrid(np.array(bases, dtype), np.array(exponents, dtype)))
    got = apply("pow", x, y)
    with np.errstate(all="ignore"):
        ref = np.power(x, y)
    exact = (ref == 0) | np.isinf(ref)
    same = (got == ref) & (np.signbit(got) == np.signbit(ref)) | (np.isnan(got) & np.isnan(ref))
    assert same[exact | np.isnan(ref)].all(), [
        (a, b, c, d) for a, b, c, d, bad in zip(x, y, got, ref, ~same & (exact | np.isnan(ref)))
        if bad]
    finite = ~exact & ~np.isnan(ref)
    check_close("pow", x[finite], got[finite], ref[finite], "numpy", NUMPY_SLACK)


# name -> (lowest binade, binade past the highest, signs): where each function does its work;
# outside, results saturate or are x itself (covered by the samples and special values)
EXHAUSTIVE = {"exp": (-12, 7, (1, -1)), "expm1": (-12, 7, (1, -1)), "log": (-24, 24, (1,)),
              "log1p": (-20, 20, (1, -1)), "tanh": (-14, 4, (1,)), "sigmoid": (-12, 7, (1, -1)),
              "softplus": (-12, 7, (1, -1)), "erf": (-14, 2, (1,)), "sin": (-14, 17, (1,)),
              "cos": (-14, 17, (1,))}


@pytest.mark.skipif(not os.environ.get("GRAPHC_EXHAUSTIVE"),
                    reason="minutes long: set GRAPHC_EXHAUSTIVE=1 to check every float32")
@pytest.mark.parametrize("name", list(EXHAUSTIVE))
def test_float32_exhaustive(name):
    """Every float32 of the binades in EXHAUSTIVE, one binade and sign at a time."""
    lowest, past, signs = EXHAUSTIVE[name]
    fraction = np.arange(1 << 23, dtype=np.uint32)
    for exponent in range(lowest, past):
        for sign in signs:
            bits = fraction | np.uint32((exponent + 127) << 23 | (sign < 0) << 31)
            x = bits.view(np.float32)
            x = x[np.abs(x) <= TRIG_RANGE[np.float32]] if name in ("sin", "cos") else x
            x = x[x >= -1] if name == "log1p" else x
            if x.size:
                check_close(name, x, apply(name, x), reference(name, x),
                            "the correctly rounded result")


INF, NAN = math.inf, math.nan
# name -> [(x, exact expected result)]; checked in both precisions, with the sign of zeros
SPECIAL = {
    "exp": [(NAN, NAN), (INF, INF), (-INF, 0.0), (0.0, 1.0), (-0.0, 1.0), (1e3, INF),
            (-1e3, 0.0)],
    "expm1": [(NAN, NAN), (INF, INF), (-INF, -1.0), (0.0, 0.0), (-0.0, -0.0), (1e3, INF),
              (-1e3, -1.0), (1e-30, 1e-30), (-1e-30, -1e-30)],
    "log": [(NAN, NAN), (INF, INF), (-INF, NAN), (0.0, -INF), (-0.0, -INF), (-1.0, NAN),
            (1.0, 0.0)],
    "log1p": [(NAN, NAN), (INF, INF), (-INF, NAN), (0.0, 0.0), (-0.0, -0.0), (-1.0, -INF),
              (-2.0, NAN), (1e-30, 1e-30), (-1e-30, -1e-30)],
    "tanh": [(NAN, NAN), (INF, 1.0), (-INF, -1.0), (0.0, 0.0), (-0.0, -0.0), (30.0, 1.0),
             (-30.0, -1.0), (1e300, 1.0), (1e-30, 1e-30), (-1e-30, -1e-30)],
    "sigmoid": [(NAN, NAN), (INF, 1.0), (-INF, 0.0), (0.0, 0.5), (-0.0, 0.5), (1e3, 1.0),
                (-1e3, 0.0), (-1e300, 0.0)],
    "softplus": [(NAN, NAN), (INF, INF), (-INF, 0.0), (1e30, 1e30), (-1e3, 0.0)],
    "erf": [(NAN, NAN), (INF, 1.0), (-INF, -1.0), (0.0, 0.0), (-0.0, -0.0), (6.0, 1.0),
            (-6.0, -1.0), (1e300, 1.0)],
    "sin": [(NAN, NAN), (INF, NAN), (-INF, NAN), (0.0, 0.0), (-0.0, -0.0), (1e-30, 1e-30),
            (-1e-30, -1e-30)],
    "cos": [(NAN, NAN), (INF, NAN), (-INF, NAN), (0.0, 1.0), (-0.0, 1.0), (1e-30, 1.0)],
}


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("name", list(SPECIAL))
def test_special_values(name, dtype):
    with np.errstate(over="ignore"):  # 1e300 is inf in float32: still a huge argument
        x, expected = (np.array(column, dtype) for column in zip(*SPECIAL[name]))
    y = apply(name, x)
    same = (y == expected) & (np.signbit(y) == np.signbit(expected)) | (
        np.isnan(y) & np.isnan(expected))
    assert same.all(), f"{name}: x={x[~same]} gave {y[~same]}, expected {expected[~same]}"


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_subnormal_and_extreme_results(dtype):
    info = np.finfo(dtype)
    # exp into the subnormal range and the last finite values, log of subnormals
    x = np.array([math.log(info.smallest_subnormal) + 0.1, math.log(info.tiny) - 1,
                  math.log(info.max) - 1e-3], dtype)
    check_close("exp", x, apply("exp", x), reference("exp", x), "the correctly rounded result")
    tiny = np.array([info.smallest_subnormal, info.tiny / 3, info.tiny, info.max], dtype)
    check_close("log", tiny, apply("log", tiny), reference("log", tiny), "the reference")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("name", ["sin", "cos"])
def test_sin_cos_beyond_their_range_stay_in_unit_interval(name, dtype):
    rng = np.random.default_rng(SEED)
    x = rng.choice([-1, 1], 4099) * 10.0 ** rng.uniform(
        math.log10(TRIG_RANGE[dtype]), math.log10(np.finfo(dtype).max), 4099)
    y = apply(name, np.concatenate([x.astype(dtype), [np.finfo(dtype).max]]).astype(dtype))
    assert np.isfinite(y).all() and (np.abs(y) <= 1).all(), y[~(np.abs(y) <= 1)]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("size", [0, 1, 7, 17, 1023])
def test_any_length_same_bits_and_nothing_written_past_n(size, dtype):
    """Vector body and scalar remainder compute identical bits; the loop stops at n."""
    x, y = np.random.default_rng(SEED).uniform(-4, 4, (2, 2048)).astype(dtype)
    for name in [*REFERENCES, "pow"]:
        args = (x, y) if name == "pow" else (x,)
        full = apply(name, *args)
        part = apply(name, *args, n=size)
        assert np.array_equal(part[:size], full[:size], equal_nan=True), name
        assert (part[size:] == 7.0).all(), f"{name} wrote past n={size}"


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("name", [*REFERENCES, "pow"])
def test_loop_is_vectorized_without_calls(name, dtype):
    if jit.vector_bits() < 256:
        pytest.skip("host has no 256-bit vectors")
    module = ir.Module(name="vectorized")
    module.triple = jit.host()[0]
    mathlib.define_map(module, "map", name, FTYPES[dtype])
    asm = jit.assembly(str(module))
    calls = re.findall(r"^\s*call\w*\s+(\S+)", asm, re.M)
    assert not calls, f"{name}: the loop calls {calls}"
    # packed single or double: float32 pow computes in double
    packed = re.findall(r"^\s*v(?:fn?m(?:add|sub)\w*|mul|add|sub|div)p[sd]\s.*%[yz]mm", asm, re.M)
    assert len(packed) >= 5, f"{name}: packed arithmetic on ymm/zmm: {packed}"


BINARY_INTRINSICS = {"copysign": np.copysign, "minnum": np.fmin, "maxnum": np.fmax,
                     "minimum": np.minimum, "maximum": np.maximum}
UNARY_INTRINSICS = {"sqrt": np.sqrt, "fabs": np.abs, "floor": np.floor, "ceil": np.ceil,
                    "trunc": np.trunc, "rint": np.rint}


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_intrinsics_match_numpy(dtype):
    rng = np.random.default_rng(SEED)
    x = samples(rng, dtype, 1 << 12)
    x[::97] = np.nan
    w = rng.permutation(x)
    with np.errstate(all="ignore"):
        for name, fn in UNARY_INTRINSICS.items():
            np.testing.assert_array_equal(apply(name, x), fn(x), err_msg=name)
        for name, fn in BINARY_INTRINSICS.items():
            # equal values; which of -0 and +0 a min or max returns may differ
            np.testing.assert_array_equal(apply(name, x, w), fn(x, w), err_msg=name)
    # fma rounds once: inputs with few significant bits make the float64 sum exact
    a, b, c = (rng.integers(-2 ** 10, 2 ** 10, 999) * 2.0 ** -5 for _ in range(3))
    a, b, c = a * np.pi, b, c * np.e
    exact = (a.astype(dtype).astype(np.longdouble) * b.astype(dtype) + c.astype(dtype))
    got = apply("fma", a.astype(dtype), b.astype(dtype), c.astype(dtype))
    assert (ulp_distance(got, exact.astype(dtype)) == 0).all()


def test_functions_are_defined_once_named_and_inlinable():
    module = ir.Module()
    fn = ir.Function(module, ir.FunctionType(ir.FloatType(), [ir.FloatType()]), "f")
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    y = mathlib.call(builder, "sigmoid", [fn.args[0]])
    builder.ret(mathlib.call(builder, "sigmoid", [y]))
    text = str(module)
    assert text.count('define internal float @"graphc.math.sigmoid.f32"') == 1
    assert text.count('define internal float @"graphc.math.exp.f32"') == 1  # sigmoid uses exp
    assert "alwaysinline" in text and "br " not in text
    assert '%"n" = fsub float %"n_shifted"' in text  # builder values carry names
    assert "@exp(" not in text and "@expf(" not in text


@pytest.mark.parametrize("ftype", [ir.FloatType(), ir.DoubleType()], ids=str)
def test_every_value_in_the_bodies_is_named(ftype):
    module = ir.Module()
    for name in mathlib.NAMES:
        arity = 3 if name == "fma" else 2 if name in ("pow", *BINARY_INTRINSICS) else 1
        fn = ir.Function(module, ir.FunctionType(ftype, [ftype] * arity), f"use_{name}")
        builder = ir.IRBuilder(fn.append_basic_block("entry"))
        builder.ret(mathlib.call(builder, name, list(fn.args)))
    unnamed = re.findall(r'^\s*(%"\.\d+" = .*)$', str(module), re.M)
    assert not unnamed, unnamed[:5]


def test_bad_calls_are_graphc_errors():
    module = ir.Module()
    fn = ir.Function(module, ir.FunctionType(ir.FloatType(), [ir.FloatType(), ir.IntType(32)]),
                     "f")
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    x, i = fn.args
    with pytest.raises(GraphcError, match="no function 'gamma'"):
        mathlib.call(builder, "gamma", [x])
    with pytest.raises(GraphcError, match="takes 1 float or double"):
        mathlib.call(builder, "exp", [x, x])
    with pytest.raises(GraphcError, match="i32"):
        mathlib.call(builder, "log", [i])
