"""The kernel IR interpreter on hand-built kernels: loops, loads through strides, every scalar
op against numpy on several dtypes, reductions (empty ones included), checks and Gemm."""
import math

import numpy as np
import pytest

from graphc.ir import dtypes
from graphc.kernels import ir
from graphc.kernels.interpret import KernelIndexError, run_kernel, storage

rng = np.random.default_rng(7)
i, j, r, s = (ir.Var(n) for n in "ijrs")


def c(value, dtype=ir.INDEX):
    return ir.Const(value, dtype)


def loop(var, extent, *body):
    return ir.Loop(var, c(extent) if isinstance(extent, int) else extent, tuple(body))


def kernel(*body, buffers=None):
    return ir.Kernel("test_kernel", tuple(body), buffers or {})


def at(var, stride=1, offset=0):
    return ir.add(ir.mul(var, c(stride)), c(offset))


def elementwise(name, result, *arrays):
    """out[i] = name(a0[i], a1[i], ...) over flat arrays of IR dtypes [(array, dtype)]."""
    n = arrays[0][0].size
    args = tuple(ir.Load(slot + 1, i, d) for slot, (_, d) in enumerate(arrays))
    out = np.empty(n, storage(result))
    run_kernel(kernel(loop(i, n, ir.Store(0, i, ir.Op(name, args, result)))),
               [out] + [a for a, _ in arrays], [])
    return out


def sample(dtype, n=37, domain="any"):
    """Random values of an IR dtype in its storage, inside an op's domain."""
    if dtype == "bool":
        return rng.random(n) < 0.5
    if dtype in ("int32", "int64"):
        lo = 1 if domain == "positive" else -20
        return rng.integers(lo, 20, n).astype(dtype)
    x = {"any": lambda: rng.normal(0, 2, n), "positive": lambda: rng.uniform(0.1, 4, n),
         "above_minus_one": lambda: rng.uniform(-0.9, 3, n)}[domain]()
    return dtypes.to_storage(x, dtypes.BY_NAME[dtype])


# ---- scalar ops -------------------------------------------------------------------------------
# op -> (expectation in float64 / Python terms, domain, dtypes it is tested on)
FLOATS = ("float16", "bfloat16", "float32", "float64")
NUMBERS = ("int32", "int64", "float16", "float32", "float64")
UNARY_CASES = {
    "neg": (lambda x: -x, "any", NUMBERS),
    "abs": (np.abs, "any", NUMBERS),
    "sign": (np.sign, "any", NUMBERS),
    "square": (lambda x: x * x, "any", NUMBERS),
    "relu": (lambda x: np.where(x > 0, x, 0), "any", NUMBERS),
    "exp": (np.exp, "any", FLOATS),
    "log": (np.log, "positive", FLOATS),
    "log1p": (np.log1p, "above_minus_one", FLOATS),
    "expm1": (np.expm1, "any", FLOATS),
    "sqrt": (np.sqrt, "positive", FLOATS),
    "rsqrt": (lambda x: 1 / np.sqrt(x), "positive", FLOATS),
    "sin": (np.sin, "any", FLOATS),
    "cos": (np.cos, "any", FLOATS),
    "tanh": (np.tanh, "any", FLOATS),
    "sigmoid": (lambda x: 1 / (1 + np.exp(-x)), "any", FLOATS),
    "softplus": (lambda x: np.log(1 + np.exp(x)), "any", FLOATS),
    "erf": (np.vectorize(math.erf), "any", FLOATS),
    "floor": (np.floor, "any", FLOATS),
}
TOLERANCE = {"float16": 2e-3, "bfloat16": 1e-6, "float32": 1e-6, "float64": 1e-13}


def assert_close(got, want, dtype):
    if dtype in TOLERANCE:
        np.testing.assert_allclose(got.astype(np.float64), want, rtol=TOLERANCE[dtype],
                                   atol=TOLERANCE[dtype])
    else:
        np.testing.assert_array_equal(got, np.asarray(want).astype(storage(dtype)))


def test_every_scalar_op_has_a_case():
    covered = set(UNARY_CASES) | set(BINARY_CASES) | {"isnan", "isfinite", "logical_not",
                                                      "cast", "round_bfloat16", "where",
                                                      "check_index", "invert"}
    assert covered == set(ir.ARITY)


@pytest.mark.parametrize("name", sorted(UNARY_CASES))
def test_unary(name):
    expect, domain, kinds = UNARY_CASES[name]
    for dtype in kinds:
        x = sample(dtype, domain=domain)
        got = elementwise(name, dtype, (x, dtype))
        assert got.dtype == storage(dtype)
        assert_close(got, expect(x.astype(np.float64)), dtype)


def test_predicates_on_nan_and_inf():
    x = np.array([0.0, -1.5, np.nan, np.inf, -np.inf, 3.0], np.float32)
    np.testing.assert_array_equal(elementwise("isnan", "bool", (x, "float32")),
                                  [False, False, True, False, False, False])
    np.testing.assert_array_equal(elementwise("isfinite", "bool", (x, "float32")),
                                  [True, True, False, False, False, True])
    b = sample("bool")
    np.testing.assert_array_equal(elementwise("logical_not", "bool", (b, "bool")), ~b)


def test_nan_propagates_through_extrema_and_sign():
    x = np.array([np.nan, 1.0, np.nan], np.float64)
    y = np.array([2.0, np.nan, np.nan], np.float64)
    for name in ("maximum", "minimum"):
        assert np.isnan(elementwise(name, "float64", (x, "float64"), (y, "float64"))).all()
    assert np.isnan(elementwise("sign", "float64", (x, "float64"))[[0, 2]]).all()


def py_floordiv(a, b):
    return a // b if b else 0


def py_mod(a, b):
    return a % b if b else 0


def py_pow(a, b):
    return a ** b if b >= 0 else int(1 / a ** -b) if a else 0


def pairwise(fn):
    def apply(a, b):
        return np.array([fn(x, y) for x, y in zip(a.tolist(), b.tolist())])
    return apply


COMPARISONS = {"equal": np.equal, "not_equal": np.not_equal, "less": np.less,
               "less_equal": np.less_equal, "greater": np.greater,
               "greater_equal": np.greater_equal}
BINARY_CASES = {
    "add": (np.add, NUMBERS),
    "sub": (np.subtract, NUMBERS),
    "mul": (np.multiply, NUMBERS),
    "div": (np.true_divide, FLOATS),
    "maximum": (np.maximum, NUMBERS),
    "minimum": (np.minimum, NUMBERS),
    "floordiv": (pairwise(py_floordiv), NUMBERS),
    "mod": (pairwise(py_mod), NUMBERS),
    "pow": (pairwise(py_pow), ("int32", "int64")),
    "fmod": (np.fmod, FLOATS),
    "truncdiv": (pairwise(lambda a, b: abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1)),
                 ("int32", "int64")),
    **{name: (fn, NUMBERS) for name, fn in COMPARISONS.items()},
    **{f"logical_{name}": (fn, ("bool",)) for name, fn in
       (("and", np.logical_and), ("or", np.logical_or), ("xor", np.logical_xor))},
    # Python's ints are two's complement of unbounded width: &, |, ^ and >> agree with any
    # width's, and these samples' left shifts never reach the sign bit
    "bitwise_and": (pairwise(lambda a, b: a & b), ("int32", "int64", "bool")),
    "bitwise_or": (pairwise(lambda a, b: a | b), ("int32", "int64", "bool")),
    "bitwise_xor": (pairwise(lambda a, b: a ^ b), ("int32", "int64", "bool")),
    "left_shift": (pairwise(lambda a, b: a << b if b >= 0 else 0), ("int32", "int64")),
    "right_shift": (pairwise(lambda a, b: a >> b if b >= 0 else -(a < 0)), ("int32", "int64")),
    "shl": (pairwise(lambda a, b: a << b), ("int32", "int64")),
    "shr": (pairwise(lambda a, b: a >> b), ("int32", "int64")),
}


@pytest.mark.parametrize("name", sorted(BINARY_CASES))
def test_binary(name):
    expect, kinds = BINARY_CASES[name]
    for dtype in kinds:
        a = sample(dtype)
        divides = name in ("div", "floordiv", "mod", "fmod", "truncdiv")
        b = sample(dtype, domain="positive" if divides or name in ("shl", "shr") else "any")
        if name == "truncdiv":
            b = b + 1  # C's division by -1 may trap, and by 0 is undefined
        if divides and name != "div":
            b = b * np.where(rng.random(b.size) < 0.5, -1, 1).astype(b.dtype)  # both signs
        if name == "pow":
            a = rng.integers(-4, 5, a.size).astype(dtype)
            b = rng.integers(0, 6, a.size).astype(dtype)
        if name in COMPARISONS:
            b[::3] = a[::3]  # ties
        result = "bool" if name in COMPARISONS or dtype == "bool" else dtype
        got = elementwise(name, result, (a, dtype), (b, dtype))
        assert_close(got, expect(a.astype(np.float64) if dtype in FLOATS else a,
                                 b.astype(np.float64) if dtype in FLOATS else b), result)


def test_invert_and_shifts_past_the_width():
    x = np.array([-128, -1, 0, 1, 127, -7], np.int8)
    np.testing.assert_array_equal(elementwise("invert", "int8", (x, "int8")),
                                  [127, 0, -1, -2, -128, 6])
    b = sample("bool")
    np.testing.assert_array_equal(elementwise("invert", "bool", (b, "bool")), ~b)
    count = np.array([8, 9, -1, 127, -128, 7], np.int8)
    np.testing.assert_array_equal(elementwise("left_shift", "int8", (x, "int8"), (count, "int8")),
                                  [0, 0, 0, 0, 0, -128])
    np.testing.assert_array_equal(elementwise("right_shift", "int8", (x, "int8"),
                                              (count, "int8")), [-1, -1, 0, 0, 0, -1])


def test_float_pow_and_special_divisions():
    a, b = sample("float64", domain="positive"), sample("float64")
    assert_close(elementwise("pow", "float64", (a, "float64"), (b, "float64")), a ** b,
                 "float64")
    # integer division and remainder by zero give 0, as numpy does
    x = np.array([7, -7, 0, 5], np.int32)
    zero = np.zeros(4, np.int32)
    np.testing.assert_array_equal(elementwise("floordiv", "int32", (x, "int32"), (zero, "int32")),
                                  0)
    np.testing.assert_array_equal(elementwise("mod", "int32", (x, "int32"), (zero, "int32")), 0)
    # floats follow Python: the quotient is floored, the remainder takes the divisor's sign
    f = np.array([7.5, -7.5, 7.5, -7.5], np.float32)
    g = np.array([2.0, 2.0, -2.0, -2.0], np.float32)
    np.testing.assert_array_equal(elementwise("floordiv", "float32", (f, "float32"),
                                              (g, "float32")), [3, -4, -4, 3])
    np.testing.assert_array_equal(elementwise("mod", "float32", (f, "float32"), (g, "float32")),
                                  [1.5, 0.5, -0.5, -1.5])
    # a negative integer exponent truncates 1 / a**-b toward zero
    base = np.array([2, -1, -1, 1, 0, 3], np.int64)
    exponent = np.array([-1, -3, -2, -5, -1, -2], np.int64)
    np.testing.assert_array_equal(elementwise("pow", "int64", (base, "int64"),
                                              (exponent, "int64")), [0, -1, 1, 1, 0, 0])


def test_c_division_of_integers_by_zero_or_minus_one_is_a_lowering_error():
    x = np.array([7, -2**31], np.int32)
    for divisor in (0, -1):
        with pytest.raises(AssertionError, match="truncdiv by 0 or -1"):
            elementwise("truncdiv", "int32", (x, "int32"),
                        (np.array([3, divisor], np.int32), "int32"))
    np.testing.assert_array_equal(elementwise("truncdiv", "int32", (x, "int32"),
                                              (np.array([-2, 3], np.int32), "int32")),
                                  [-3, -715827882])


def test_integer_arithmetic_wraps():
    big = np.array([2**31 - 1, -2**31], np.int32)
    one = np.array([1, 1], np.int32)
    np.testing.assert_array_equal(elementwise("add", "int32", (big, "int32"), (one, "int32")),
                                  [-2**31, -2**31 + 1])


@pytest.mark.parametrize("src,dst", [("float32", "int32"), ("float64", "int64"),
                                     ("float32", "bool"), ("float32", "float16"),
                                     ("int32", "float32"), ("int64", "float64"),
                                     ("bool", "float32"), ("float64", "float32"),
                                     ("int32", "int64"), ("int64", "int32")])
def test_cast_is_numpy_astype(src, dst):
    x = sample(src)
    if src.startswith("float"):
        x[::4] = 0  # zero and nonzero both
    got = elementwise("cast", dst, (x, src))
    np.testing.assert_array_equal(got, x.astype(storage(dst)))


def test_round_bfloat16():
    x = rng.normal(0, 100, 1000).astype(np.float32)
    np.testing.assert_array_equal(elementwise("round_bfloat16", "bfloat16", (x, "float32")),
                                  dtypes.round_bfloat16(x))
    # bfloat16 keeps 8 significant bits: halfway cases go to the even neighbour
    ties = np.array([1 + 2**-8, 1 + 3 * 2**-8, 1 + 2**-9, -(1 + 3 * 2**-8), np.nan], np.float32)
    got = elementwise("round_bfloat16", "bfloat16", (ties, "bfloat16"))
    np.testing.assert_array_equal(got[:4], [1, 1 + 2**-6, 1, -(1 + 2**-6)])
    assert np.isnan(got[4])


def test_bfloat16_constants_are_rounded_and_ops_do_not_round():
    x = np.array([1.0, 2.0], np.float32)
    out = np.empty(2, np.float32)
    value = ir.Op("add", (ir.Load(1, i, "bfloat16"), c(1 + 2**-9 + 2**-12, "bfloat16")),
                  "bfloat16")
    run_kernel(kernel(loop(i, 2, ir.Store(0, i, value))), [out, x], [])
    np.testing.assert_array_equal(out, [2.0, 3.0])  # the constant rounds to 1
    value = ir.Op("mul", (ir.Load(1, i, "bfloat16"), ir.Load(1, i, "bfloat16")), "bfloat16")
    x = np.array([1 + 2**-7, 3.0], np.float32)
    run_kernel(kernel(loop(i, 2, ir.Store(0, i, value))), [out, x], [])
    np.testing.assert_array_equal(out, x * x)  # 1 + 2**-6 + 2**-14: float32, not rounded


@pytest.mark.parametrize("dtype", ["float32", "int32", "bool"])
def test_where_selects(dtype):
    cond, a, b = sample("bool"), sample(dtype), sample(dtype)
    got = elementwise("where", dtype, (cond, "bool"), (a, dtype), (b, dtype))
    np.testing.assert_array_equal(got, np.where(cond, a, b))


def test_check_index():
    index = np.array([0, 3, 6, 2], np.int64)
    size = np.full(4, 7, np.int64)
    what = np.full(4, 5, np.int64)
    got = elementwise("check_index", "int64", (index, "int64"), (size, "int64"), (what, "int64"))
    np.testing.assert_array_equal(got, index)
    for bad, first in (([0, 7, 9, 1], 7), ([3, 2, -1, 8], -1)):
        with pytest.raises(KernelIndexError) as err:
            elementwise("check_index", "int64", (np.array(bad), "int64"), (size, "int64"),
                        (what, "int64"))
        assert (err.value.what, err.value.value) == (5, first)


def test_ill_typed_ops_are_lowering_errors():
    a, b = np.ones(3, np.float32), np.ones(3, np.int32)
    for name, result, args in (("add", "float32", ((a, "float32"), (b, "int32"))),
                               ("exp", "int32", ((b, "int32"),)),
                               ("where", "bool", ((b > 0, "bool"), (a, "float32"),
                                                  (a, "float32"))),
                               ("less", "int32", ((a, "float32"), (a, "float32")))):
        with pytest.raises(AssertionError, match="test_kernel"):
            elementwise(name, result, *args)


# ---- loops, loads and stores ------------------------------------------------------------------
def test_nested_loops_over_dims_and_broadcasting_strides():
    """out[i, j] = x[i, j] * col[i] + row[j], rows of a run-time size, 13 columns."""
    rows, cols = 7, 13
    x, col, row = (rng.normal(size=n).astype(np.float32) for n in (rows * cols, rows, cols))
    value = ir.Op("add", (ir.Op("mul", (ir.Load(1, ir.add(ir.mul(i, c(cols)), j), "float32"),
                                        ir.Load(2, i, "float32")), "float32"),
                          ir.Load(3, j, "float32")), "float32")
    out = np.full(rows * cols, np.nan, np.float32)
    k = kernel(loop(i, ir.Dim(0), loop(j, cols, ir.Store(0, ir.add(ir.mul(i, c(cols)), j),
                                                         value))))
    run_kernel(k, [out, x, col, row], [rows])
    want = x.reshape(rows, cols) * col[:, None] + row[None, :]
    np.testing.assert_array_equal(out.reshape(rows, cols), want)


def test_stores_of_loop_variables_and_transposed_index():
    """out[j, i] = i * 100 + j: the store index runs against the loop order."""
    out = np.full(7 * 5, -1, np.int64)
    k = kernel(loop(i, 7, loop(j, 5, ir.Store(0, ir.add(ir.mul(j, c(7)), i),
                                              ir.add(ir.mul(i, c(100)), j)))))
    run_kernel(k, [out], [])
    np.testing.assert_array_equal(out.reshape(5, 7), np.add.outer(np.arange(5), 100 *
                                                                  np.arange(7)))


def test_repeated_store_index_keeps_the_last_iteration():
    out = np.zeros(1, np.int64)
    run_kernel(kernel(loop(i, 6, loop(j, 4, ir.Store(0, c(0), ir.add(ir.mul(i, c(10)), j))))),
               [out], [])
    assert out[0] == 53


@pytest.mark.parametrize("dtype", ["int32", "int64", "float16", "float32", "float64", "bool"])
def test_accumulating_store_adds_every_iteration(dtype):
    """out[index[i]] += value[i] with repeated indices, in the dtype (float16 rounds each add,
    bool adds are or); a plain store to the same places keeps only the last value."""
    index = rng.integers(0, 5, 41)
    value = sample(dtype, 41)
    out = sample(dtype, 5)
    want = out.copy()
    np.add.at(want, index, value)
    add = ir.Store(0, ir.Load(1, i, ir.INDEX), ir.Load(2, i, dtype), accumulate=True)
    run_kernel(kernel(loop(i, 41, add)), [out, index, value], [])
    np.testing.assert_array_equal(out, want)


def test_accumulating_store_of_bfloat16_is_refused():
    add = ir.Store(0, c(0), ir.Load(1, i, "bfloat16"), accumulate=True)
    with pytest.raises(AssertionError, match="bfloat16"):
        run_kernel(kernel(loop(i, 3, add)), [np.zeros(1, np.float32), np.ones(3, np.float32)],
                   [])


def test_zero_extent_loops_run_nothing():
    out = np.full(3, 9.0, np.float32)
    bad = ir.Store(0, c(100), ir.Load(1, c(-1), "float32"))  # would fail if it ran
    check = ir.Check(c(False, "bool"), 0, c(1))
    run_kernel(kernel(loop(i, ir.Dim(0), bad, check), loop(j, 3, loop(i, 0, bad))),
               [out, np.zeros(1, np.float32)], [0])
    np.testing.assert_array_equal(out, 9.0)


def test_out_of_bounds_access_is_a_lowering_error():
    x = np.zeros(5, np.float32)
    out = np.zeros(5, np.float32)
    load = kernel(loop(i, 5, ir.Store(0, i, ir.Load(1, ir.add(i, c(1)), "float32"))))
    with pytest.raises(AssertionError, match="test_kernel.*load from slot 1 at 5"):
        run_kernel(load, [out, x], [])
    store = kernel(loop(i, 6, ir.Store(0, i, c(1.0, "float32"))))
    with pytest.raises(AssertionError, match="store to slot 0 at 5"):
        run_kernel(store, [out], [])
    wrong_dtype = kernel(loop(i, 5, ir.Store(0, i, c(1, "int32"))))
    with pytest.raises(AssertionError, match="slot 0"):
        run_kernel(wrong_dtype, [out], [])
    stray = kernel(ir.Store(0, c(0), ir.Op("cast", (i,), "float32")))
    with pytest.raises(AssertionError, match="variable i"):
        run_kernel(stray, [out], [])


def test_buffer_sizes_are_checked():
    out = np.zeros(6, np.float32)
    k = kernel(loop(i, 6, ir.Store(0, i, c(2.0, "float32"))),
               buffers={0: ir.Buffer(0, "float32", ir.mul(ir.Dim(0), c(3)))})
    run_kernel(k, [out], [2])
    np.testing.assert_array_equal(out, 2.0)
    with pytest.raises(AssertionError, match="holds 6 elements, the kernel expects 9"):
        run_kernel(k, [out], [3])


def test_reading_a_written_buffer_is_refused():
    buf = np.zeros(4, np.float32)
    k = kernel(loop(i, 3, ir.Store(0, ir.add(i, c(1)), ir.Load(0, i, "float32"))))
    with pytest.raises(AssertionError, match="also writes"):
        run_kernel(k, [buf], [])


def test_check_statement_reports_the_first_failure_in_loop_order():
    labels = np.array([1, 4, 0, 9, 7], np.int64)
    ok = ir.Op("less", (ir.Load(0, i, "int64"), c(5)), "bool")
    k = kernel(loop(i, 5, ir.Check(ok, 3, ir.Load(0, i, "int64"))))
    with pytest.raises(KernelIndexError) as err:
        run_kernel(k, [labels], [])
    assert (err.value.what, err.value.value) == (3, 9)
    run_kernel(k, [np.array([1, 4, 0, 2, 3], np.int64)], [])


def test_deep_expression_chains():
    """10,000 nested ops: no recursion limit, and one value per equal subexpression."""
    x = rng.normal(size=7)
    value = ir.Load(1, i, "float64")
    for n in range(10_000):
        value = ir.Op("add" if n % 2 else "mul", (value, c(1.0 if n % 2 else 1.0001,
                                                            "float64")), "float64")
    out = np.empty(7)
    run_kernel(kernel(loop(i, 7, ir.Store(0, i, value))), [out, x], [])
    want = x.copy()
    for n in range(10_000):
        want = want + 1.0 if n % 2 else want * 1.0001
    np.testing.assert_allclose(out, want, rtol=1e-12)


# ---- reductions -------------------------------------------------------------------------------
def row_reduce(op, x, dtype, result=None):
    """out[i] = op over j of x[i, j]."""
    rows, cols = x.shape
    value = ir.Load(1, ir.add(ir.mul(i, c(cols)), r), dtype)
    red = ir.Reduce(op, ((r, c(cols)),), value, result or dtype)
    out = np.empty(rows, storage(result or dtype))
    run_kernel(kernel(loop(i, rows, ir.Store(0, i, red))), [out, x.reshape(-1)], [])
    return out


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64"])
@pytest.mark.parametrize("op", ["sum", "prod", "max", "min"])
def test_reductions(op, dtype):
    x = sample(dtype, 7 * 13).reshape(7, 13)
    if op == "prod":
        x = np.where(rng.random(x.shape) < 0.5, 1, 2).astype(x.dtype) * np.sign(x)
    got = row_reduce(op, x, dtype)
    want = getattr(np, op)(x.astype(np.float64) if dtype.startswith("float") else x, axis=1)
    assert_close(got, want, dtype)


@pytest.mark.parametrize("op", ["argmax", "argmin"])
def test_arg_reductions_take_the_first_extreme(op):
    x = rng.integers(0, 3, (9, 13)).astype(np.float32)  # many ties
    got = row_reduce(op, x, "float32", ir.INDEX)
    np.testing.assert_array_equal(got, getattr(np, op)(x, axis=1))
    x[2, 5] = x[2, 8] = np.nan  # numpy's choice: the first NaN
    assert row_reduce(op, x, "float32", ir.INDEX)[2] == 5


def test_arg_reduction_over_two_loops_is_flattened_in_loop_order():
    x = rng.integers(0, 4, (5, 3, 4)).astype(np.float64)
    value = ir.Load(1, ir.add(ir.add(ir.mul(i, c(12)), ir.mul(r, c(4))), s), "float64")
    red = ir.Reduce("argmax", ((r, c(3)), (s, c(4))), value, ir.INDEX)
    out = np.empty(5, np.int64)
    run_kernel(kernel(loop(i, 5, ir.Store(0, i, red))), [out, x.reshape(-1)], [])
    np.testing.assert_array_equal(out, np.argmax(x.reshape(5, 12), axis=1))


@pytest.mark.parametrize("op,dtype,identity", [
    ("sum", "float32", 0), ("prod", "float32", 1), ("max", "float32", -np.inf),
    ("min", "float64", np.inf), ("max", "int32", -2**31), ("min", "int64", 2**63 - 1),
    ("argmax", "float32", 0), ("argmin", "int32", 0)])
def test_reductions_over_nothing_give_the_identity(op, dtype, identity):
    result = ir.INDEX if op.startswith("arg") else dtype
    value = ir.Load(1, c(10**6), dtype)  # out of bounds: it must not be evaluated
    red = ir.Reduce(op, ((r, ir.Dim(0)),), value, result)
    out = np.empty(3, storage(result))
    run_kernel(kernel(loop(i, 3, ir.Store(0, i, red))), [out, np.zeros(1, storage(dtype))],
               [0])
    np.testing.assert_array_equal(out, identity)


def test_max_propagates_nan():
    x = rng.normal(size=(3, 5))
    x[1, 2] = np.nan
    got = row_reduce("max", x, "float64")
    assert np.isnan(got[1]) and not np.isnan(got[[0, 2]]).any()


def test_softmax_row_kernel_with_a_reduction_inside_a_reduction():
    """out[i, j] = exp(x[i, j] - max_j x) / sum_j exp(x[i, j] - max_j x), 13 columns."""
    rows, cols = 6, 13
    x = rng.normal(size=(rows, cols)).astype(np.float32)

    def at(col):
        return ir.Load(1, ir.add(ir.mul(i, c(cols)), col), "float32")
    top = ir.Reduce("max", ((r, c(cols)),), at(r), "float32")
    total = ir.Reduce("sum", ((s, c(cols)),), ir.op("exp", ir.op("sub", at(s), top)), "float32")
    value = ir.op("div", ir.op("exp", ir.op("sub", at(j), top)), total)
    out = np.empty(rows * cols, np.float32)
    run_kernel(kernel(loop(i, ir.Dim(0), loop(j, cols, ir.Store(
        0, ir.add(ir.mul(i, c(cols)), j), value)))), [out, x.reshape(-1)], [rows])
    e = np.exp(x - x.max(axis=1, keepdims=True))
    np.testing.assert_allclose(out.reshape(rows, cols), e / e.sum(axis=1, keepdims=True),
                               rtol=1e-6)


def test_reduction_of_a_value_independent_of_its_loop():
    """sum over r < 4 of x[i] is 4 * x[i]: the value is broadcast along the reduced axis."""
    x = rng.normal(size=5)
    out = np.empty(5)
    red = ir.Reduce("sum", ((r, c(4)),), ir.Load(1, i, "float64"), "float64")
    run_kernel(kernel(loop(i, 5, ir.Store(0, i, red))), [out, x], [])
    np.testing.assert_allclose(out, 4 * x)


# ---- gemm ------------------------------------------------------------------------------------
def operand(slot, offset, rows, cols):
    def e(v):
        return c(v) if isinstance(v, int) else v
    return ir.Operand(slot, e(offset), e(rows), e(cols))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("m,n,k", [(7, 5, 13), (1, 1, 1), (3, 4, 0), (0, 3, 2)])
def test_gemm_with_transposed_operands(dtype, m, n, k):
    """C = A @ B with A stored transposed (k x m) and B row-major, at offsets."""
    a = rng.normal(size=(k, m)).astype(dtype)
    b = rng.normal(size=(k, n)).astype(dtype)
    abuf = np.concatenate([np.zeros(3, dtype), a.reshape(-1)])
    cbuf = np.full(m * n + 2, 7, dtype)
    g = ir.Gemm(dtype, c(m), c(n), c(k), operand(1, 3, 1, m), operand(2, 0, n, 1),
                operand(0, 2, n, 1))
    run_kernel(kernel(g), [cbuf, abuf, b.reshape(-1)], [])
    np.testing.assert_allclose(cbuf[2:].reshape(m, n), a.T @ b, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(cbuf[:2], 7)


def test_batched_gemm_in_loops_with_broadcast_operand_and_accumulation():
    """C[b] += A[b] @ B for b < 3 (B shared: its offset ignores the batch var)."""
    batch, m, n, k = 3, 5, 4, 6
    a = rng.normal(size=(batch, m, k))
    b = rng.normal(size=(n, k))  # used transposed: B[kk, j] at j*k + kk
    c0 = rng.normal(size=(batch, m, n))
    cbuf = c0.reshape(-1).copy()
    b_var = ir.Var("b0")
    g = ir.Gemm("float64", c(m), c(n), ir.Dim(0),
                operand(1, ir.mul(b_var, c(m * k)), ir.Dim(0), 1), operand(2, 0, 1, ir.Dim(0)),
                operand(0, ir.mul(b_var, c(m * n)), n, 1), accumulate=True)
    run_kernel(kernel(loop(b_var, batch, g)), [cbuf, a.reshape(-1), b.reshape(-1)], [k])
    np.testing.assert_allclose(cbuf.reshape(batch, m, n), c0 + a @ b.T, rtol=1e-12)


def test_gemm_out_of_bounds_is_a_lowering_error():
    a = np.zeros(6, np.float32)
    g = ir.Gemm("float32", c(2), c(2), c(3), operand(1, 0, 3, 1), operand(1, 1, 2, 1),
                operand(0, 0, 2, 1))
    with pytest.raises(AssertionError, match="gemm access to slot 1 at 6"):
        run_kernel(kernel(g), [np.zeros(4, np.float32), a], [])
