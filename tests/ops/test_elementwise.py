"""Elementwise ops: reference values, broadcasting, dtype rules and gradients."""
import math

import numpy as np
import pytest

import graphc as gc
from graphc.ops.elementwise import BINARY, UNARY
from tests.helpers import DEVICES, check_grad, evaluate

rng = np.random.default_rng(0)
SIZES = [(1,), (7,), (1023,), (3, 5)]

# op -> (numpy expectation, input sampler keeping it inside the op's domain)
POSITIVE = lambda shape: rng.uniform(0.5, 2.0, shape)  # noqa: E731
ANY = lambda shape: rng.normal(size=shape)  # noqa: E731
UNIT = lambda shape: rng.uniform(-0.9, 0.9, shape)  # noqa: E731
UNARY_CASES = {
    "neg": (lambda x: -x, ANY),
    "abs": (np.abs, ANY),
    "sign": (np.sign, ANY),
    "square": (lambda x: x * x, ANY),
    "exp": (np.exp, ANY),
    "log": (np.log, POSITIVE),
    "log1p": (np.log1p, UNIT),
    "expm1": (np.expm1, ANY),
    "sqrt": (np.sqrt, POSITIVE),
    "rsqrt": (lambda x: 1 / np.sqrt(x), POSITIVE),
    "sin": (np.sin, ANY),
    "cos": (np.cos, ANY),
    "tanh": (np.tanh, ANY),
    "sigmoid": (lambda x: 1 / (1 + np.exp(-x)), ANY),
    "softplus": (lambda x: np.log(1 + np.exp(x)), ANY),
    "relu": (lambda x: np.where(x > 0, x, 0), ANY),
    "erf": (np.vectorize(math.erf), ANY),
    "floor": (np.floor, ANY),
    "isnan": (np.isnan, ANY),
    "isfinite": (np.isfinite, ANY),
}


def test_every_unary_op_has_a_case():
    # the ops of bools and integers have tests of their own (invert: test_bitwise.py)
    assert set(UNARY) - {"logical_not", "invert"} == set(UNARY_CASES)


@pytest.mark.parametrize("name", sorted(UNARY_CASES))
@pytest.mark.parametrize("shape", SIZES)
def test_unary_reference(name, shape):
    expect, sample = UNARY_CASES[name]
    x = sample(shape).astype(np.float32)
    got = evaluate(getattr(gc, name), x)
    np.testing.assert_allclose(got, expect(x.astype(np.float64)), rtol=2e-6, atol=1e-6)


DIFFERENTIABLE_UNARY = sorted(n for n in UNARY_CASES if n not in ("isnan", "isfinite", "sign",
                                                                 "floor", "relu", "abs"))


@pytest.mark.parametrize("name", DIFFERENTIABLE_UNARY)
def test_unary_gradient(name):
    _, sample = UNARY_CASES[name]
    check_grad(getattr(gc, name), sample((2, 3)))


def test_piecewise_gradients_away_from_kinks():
    x = rng.uniform(0.2, 1.0, (7,)) * rng.choice([-1, 1], 7)
    check_grad(gc.relu, x)
    check_grad(gc.abs, x)
    g = check_grad(gc.sign, x)[0]
    assert np.all(g == 0)


@pytest.mark.parametrize("n", [1, 7, 1023])
def test_relu_gradient_reads_the_output_alone(graph, n):
    x = gc.placeholder(gc.float32, (None,), name="x")
    y = gc.relu(x)
    [dx] = gc.grad(gc.sum(y * y), [x])
    mask = [node for node in graph.nodes if node.op == "greater"]
    assert mask and all(node.inputs[0] is y for node in mask)
    xb = rng.standard_normal(n).astype(np.float32)
    xb[:3] = [np.nan, 0.0, -0.0][:n]  # no gradient through NaN or either zero
    for device in ("reference", "cpu"):
        got = gc.function([x], dx, session=gc.Session(graph, device=device))(xb)
        np.testing.assert_allclose(got, np.where(xb > 0, 2 * np.maximum(xb, 0), 0), rtol=1e-6)


BINARY_CASES = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
    "maximum": np.maximum, "minimum": np.minimum, "pow": np.power,
    "floordiv": np.floor_divide, "mod": np.mod,
}


@pytest.mark.parametrize("name", sorted(BINARY_CASES))
@pytest.mark.parametrize("shapes", [((7,), (7,)), ((3, 1), (1, 5)), ((1023,), ()), ((1,), (4, 1))])
def test_binary_reference_with_broadcasting(name, shapes):
    a = rng.uniform(0.5, 2.0, shapes[0]).astype(np.float32)
    b = rng.uniform(0.5, 2.0, shapes[1]).astype(np.float32)
    got = evaluate(getattr(gc, name), a, b)
    np.testing.assert_allclose(got, BINARY_CASES[name](a, b), rtol=1e-6)


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "pow", "maximum", "minimum", "mod"])
def test_binary_gradient_through_broadcasting(name):
    a = rng.uniform(0.5, 2.0, (3, 1))
    b = rng.uniform(0.5, 2.0, (4,)) + 0.01  # keep maximum/minimum away from ties
    check_grad(getattr(gc, name), a, b)


@pytest.mark.parametrize("name,fn", [("equal", np.equal), ("not_equal", np.not_equal),
                                     ("less", np.less), ("less_equal", np.less_equal),
                                     ("greater", np.greater),
                                     ("greater_equal", np.greater_equal)])
def test_comparisons(name, fn):
    a = rng.integers(0, 3, (4, 5)).astype(np.int32)
    b = rng.integers(0, 3, (5,)).astype(np.int32)
    got = evaluate(getattr(gc, name), a, b)
    assert got.dtype == np.bool_
    np.testing.assert_array_equal(got, fn(a, b))


def test_logical_ops_and_operators():
    a = rng.random((6,)) > 0.5
    b = rng.random((6,)) > 0.5
    got = evaluate(lambda x, y: [x & y, x | y, x ^ y, ~x], a, b)
    np.testing.assert_array_equal(got[0], a & b)
    np.testing.assert_array_equal(got[1], a | b)
    np.testing.assert_array_equal(got[2], a ^ b)
    np.testing.assert_array_equal(got[3], ~a)


def test_python_operators_match_numpy():
    a = rng.uniform(1, 2, (3, 4)).astype(np.float32)
    b = rng.uniform(1, 2, (4,)).astype(np.float32)
    got = evaluate(lambda x, y: [x + y, x - y, x * y, x / y, x // y, x % y, x ** 2, -x, abs(-x),
                                 2 - x, 3 / x, x < y, x >= y, 2.0 ** x], a, b)
    want = [a + b, a - b, a * b, a / b, a // b, a % b, a ** 2, -a, a, 2 - a, 3 / a, a < b,
            a >= b, 2.0 ** a]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-6)


def test_where_and_clip():
    c = rng.random((4, 3)) > 0.5
    a = rng.normal(size=(4, 3))
    b = rng.normal(size=(3,))
    np.testing.assert_allclose(evaluate(gc.where, c, a, b), np.where(c, a, b))
    np.testing.assert_allclose(evaluate(lambda x: gc.clip(x, -0.5, 0.5), a), np.clip(a, -0.5, 0.5))
    check_grad(lambda x, y: gc.where(gc.constant(c), x, y), a, b)


def test_cast_and_its_gradient():
    x = rng.normal(size=(5,)) * 3
    got = evaluate(lambda t: gc.cast(t, gc.int32), x)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, x.astype(np.int32))
    # float64 -> float32 -> float64 passes the gradient through, cast back to float64
    g = evaluate(lambda t: gc.grad(gc.sum(gc.cast(gc.cast(t, gc.float32), gc.float64) * 3.0), t), x)
    assert g.dtype == np.float64
    np.testing.assert_array_equal(g, np.full(5, 3.0))


def test_weak_python_scalars_keep_the_tensor_dtype():
    g = gc.Graph()
    with g.as_default():
        h = gc.placeholder(gc.float16, (3,))
        i = gc.placeholder(gc.int32, (3,))
        assert (h * 2.0).dtype is gc.float16
        assert (i * 3).dtype is gc.int32
        assert (i * 1.5).dtype is gc.float32
        assert (i / i).dtype is gc.float32


@pytest.mark.parametrize("a,b,want", [("float16", "bfloat16", "float32"),
                                      ("int32", "float16", "float16"),
                                      ("int64", "float32", "float32"),
                                      ("bool", "int32", "int32"),
                                      ("float32", "float64", "float64"),
                                      ("int32", "int64", "int64")])
def test_promotion_table(a, b, want):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(a, (2,))
        y = gc.placeholder(b, (2,))
        assert (x + y).dtype is gc.as_dtype(want)
        assert (y + x).dtype is gc.as_dtype(want)


def test_bfloat16_rounds_after_every_op():
    x = np.array([1.0, 1.00390625, 3.14159265], np.float32)
    got = evaluate(lambda t: gc.cast(t, gc.bfloat16) * 1.0, x)
    np.testing.assert_array_equal(got, np.array([1.0, 1.0, 3.140625], np.float32))


@pytest.mark.parametrize("name,in_float32", [("rsqrt", lambda x: 1 / np.sqrt(x)),
                                              ("sigmoid", lambda x: 1 / (1 + np.exp(-x)))])
def test_float16_composites_round_once(name, in_float32):
    """A float16 op computes in float32 and rounds once, on every device and in the reference
    (which rounded each numpy step to float16: rsqrt was 1 ulp off on 8402 of the 31744
    non-negative float16s). Every finite non-negative float16."""
    x = np.arange(0, 0x7C00, dtype=np.uint16).view(np.float16)
    g = gc.Graph()
    with g.as_default():
        t = gc.placeholder(gc.float16, x.shape)
        y = getattr(gc, name)(t)
    with np.errstate(divide="ignore"):
        want = in_float32(x.astype(np.float32)).astype(np.float16)
    for device in ("reference",) + DEVICES:
        np.testing.assert_array_equal(gc.Session(g, device=device).run(y, {t: x}), want,
                                      err_msg=device)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_integer_powers_with_negative_exponents_truncate_toward_zero(dtype):
    """1 / a**-b truncated toward zero (0 unless |a| is 1), as graphc's kernels promise
    (kernels/ir.py), on every device; numpy raises, and so did the reference."""
    a = np.array([2, -1, -1, 1, 0, 3, -2, 7], dtype)
    b = np.array([-1, -3, -2, -5, -1, 2, -2, 0], dtype)
    got = evaluate(lambda x, y: x ** y, a, b)
    np.testing.assert_array_equal(got, np.array([0, -1, 1, 1, 0, 9, 0, 1], dtype))


def test_fills_beyond_a_dtypes_range_are_infinite():
    """fill_like, pad and one_hot values too large for float16 (or float32) are rounded to the
    dtype as numpy casts them, to inf: device cpu failed to compile them (OverflowError
    packing the LLVM constant); 65519 still rounds to 65504."""
    x = np.ones(2, np.float16)
    got = evaluate(lambda t: [gc.fill_like(t, 1e5), gc.pad(t, [[1, 0]], -70000.0),
                              gc.one_hot(gc.constant(np.array([0, 2])), 3, on_value=1e6,
                                         dtype=gc.float16),
                              gc.fill_like(t, 1e39, gc.float32), gc.fill_like(t, 65519.0)], x)
    np.testing.assert_array_equal(got[0], [np.inf, np.inf])
    np.testing.assert_array_equal(got[1], [-np.inf, 1, 1])
    np.testing.assert_array_equal(got[2], [[np.inf, 0, 0], [0, 0, np.inf]])
    np.testing.assert_array_equal(got[3], [np.inf, np.inf])
    np.testing.assert_array_equal(got[4], [65504, 65504])


def test_transcendentals_need_floats():
    g = gc.Graph()
    with g.as_default():
        i = gc.placeholder(gc.int32, (3,))
        with pytest.raises(gc.DTypeError, match="exp expects a floating-point tensor, got int32"):
            gc.exp(i)


def test_second_order_gradients_of_elementwise_ops():
    # d2/dx2 of tanh(x) * exp(x) computed by differentiating the gradient graph
    x = rng.normal(size=(5,))
    check_grad(lambda t: gc.grad(gc.sum(gc.tanh(t) * gc.exp(t)), t), x)
    check_grad(lambda t: gc.grad(gc.sum(gc.sigmoid(t) * t * t / (1 + t * t)), t), x)


def test_unary_ops_on_scalars():
    x = np.float32(0.5)
    for name, (expect, _) in UNARY_CASES.items():
        got = evaluate(getattr(gc, name), np.asarray(x))
        assert got.shape == ()
        np.testing.assert_allclose(got, expect(np.float64(x)), rtol=2e-6)


def test_float_remainders_take_the_divisors_sign_at_zero_too():
    """numpy's remainder is 0.0 with the divisor's sign where the division is exact; device
    cpu returned fmod's zero, with the dividend's sign (-2.0 % 1.0 was -0.0)."""
    a = np.array([-2.0, 2.0, -0.0, 0.0, -3.0, 3.0, -1.3812797, 7.0, np.inf, 1.0], np.float32)
    b = np.array([1.0, -1.0, 1.0, -1.0, 1.5, -1.5, 1.1754944e-38, 0.0, 2.0, np.inf], np.float32)
    with np.errstate(all="ignore"):
        want = np.mod(a, b)
    g = gc.Graph()
    with g.as_default():
        x, y = gc.placeholder(gc.float32, a.shape), gc.placeholder(gc.float32, b.shape)
    for device in ("reference",) + DEVICES:
        got = gc.Session(g, device=device).run(x % y, {x: a, y: b})
        np.testing.assert_array_equal(got, want, err_msg=device)
        np.testing.assert_array_equal(np.signbit(got), np.signbit(want), err_msg=device)


def test_float_floor_division_follows_numpy_at_the_edges():
    a = np.array([1.0, np.inf, -7.5, 7.5, 5.0, -0.0, 3.0, np.nan, 1e308, 0.3])
    b = np.array([0.1, 2.0, 2.0, -2.0, 0.0, 3.0, -0.0, 1.0, 1e-308, 0.1])
    with np.errstate(all="ignore"):
        want = np.floor_divide(a, b)
    got = evaluate(lambda x, y: x // y, a, b)  # every device against the reference
    np.testing.assert_array_equal(got, want)
    assert np.signbit(got[5]) == np.signbit(want[5])
