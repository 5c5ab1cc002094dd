"""float32 divisions by a value fixed along the loop are computed as a multiply by the
divisor's reciprocal in double, rounded once (scalar.divide_by_invariant): the bits must be
numpy's float32 division's for every dividend and divisor, in vector loops (vector.py), loops
LLVM widens, and row kernels (softmax's division by the row's sum). Divisors that vary along
the loop, and float64 divisions, keep their division."""
import numpy as np
import pytest

import graphc as gc

rng = np.random.default_rng(41)
SPECIAL = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 1e-38, 3.4028235e38,
                    -3.4028235e38, 1.0, -1.0, 3.0, 0.1, 7e-40], np.float32)


def compiled(shapes, build, dtype=gc.float32):
    g = gc.Graph()
    with g.as_default():
        xs = [gc.placeholder(dtype, shape, name=f"x{i}") for i, shape in enumerate(shapes)]
        return gc.function(xs, build(*xs), session=gc.Session(g, device="cpu"))


def same_bits(got, expected):
    """Equal bit for bit, but for the payloads of NaNs."""
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    nan = np.isnan(expected)
    np.testing.assert_array_equal(np.isnan(got), nan)
    np.testing.assert_array_equal(got[~nan].view(np.uint32), expected[~nan].view(np.uint32))


def dividends(n):
    """Random float32 bit patterns of every exponent, the special values among them."""
    x = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32).view(np.float32)
    x[:len(SPECIAL)] = SPECIAL[:n]
    return x


def test_by_a_scalar_fed_at_run_time_every_divisor():
    f = compiled([(None,), ()], lambda x, y: x / y)
    assert "reciprocal" in f.source("llvm")
    for n in (1, 5, 129, 1001):
        x = dividends(n)
        for y in list(SPECIAL) + list(dividends(40)):
            with np.errstate(all="ignore"):
                same_bits(f(x, np.float32(y)), x / np.float32(y))


def test_by_constants_in_vector_loops_and_loops_llvm_widens():
    """x / c is a vector loop of graphc's; exp(x) / c calls a math function, so LLVM widens
    it (compared with graphc's own exp divided by numpy)."""
    exp = compiled([(1003,)], gc.exp)
    x = (rng.standard_normal(1003) * 30).astype(np.float32)
    x[:len(SPECIAL)] = SPECIAL
    for c in (3.0, 0.1, 1e-40, -7.0, 0.0):
        c32 = np.float32(c)
        for build, reference in ((lambda x: x / c, lambda x: x / c32),
                                 (lambda x: gc.exp(x) / c, lambda x: exp(x) / c32)):
            f = compiled([(1003,)], build)
            assert "reciprocal" in f.source("llvm")
            with np.errstate(all="ignore"):
                same_bits(f(x), reference(x))


def test_softmax_rows_divide_within_a_rounding_of_numpy():
    """The same exp and sum from graphc either way: the division alone is compared, against a
    kernel that divides the row's values by their sum."""
    rows, cols = 37, 1001
    f = compiled([(rows, cols)], lambda x: gc.nn.softmax(x, axis=-1))
    parts = compiled([(rows, cols)], lambda x: gc.exp(x - gc.max(x, axis=1, keepdims=True)))
    x = (rng.standard_normal((rows, cols)) * 20).astype(np.float32)
    x[0] = -np.inf
    x[1, 3] = np.nan
    x[2, 5] = np.inf
    e = parts(x)
    with np.errstate(all="ignore"):
        total = e.astype(np.float64).sum(axis=1, keepdims=True).astype(np.float32)
        expected = e / total
    got = f(x)
    assert "reciprocal" in f.source("llvm")
    with np.errstate(invalid="ignore"):
        close = np.isclose(got, expected, rtol=2e-7, atol=0, equal_nan=True)
    assert close.all()


def test_varying_divisors_and_float64_keep_their_division():
    f = compiled([(7,), (7,)], lambda x, y: x / y)
    assert "reciprocal" not in f.source("llvm")
    x, y = dividends(7), dividends(40)[-7:]
    with np.errstate(all="ignore"):
        same_bits(f(x, y), x / y)
    g = compiled([(9,), ()], lambda x, y: x / y, gc.float64)
    assert "reciprocal" not in g.source("llvm")
    xd = rng.standard_normal(9)
    np.testing.assert_array_equal(g(xd, np.float64(3.0)), xd / 3.0)


@pytest.mark.parametrize("shape", [(0,), (1,), (2, 3)])
def test_empty_and_small_shapes(shape):
    f = compiled([shape, ()], lambda x, y: x / y)
    x = dividends(int(np.prod(shape))).reshape(shape)
    with np.errstate(all="ignore"):
        same_bits(f(x, np.float32(3.0)), x / np.float32(3.0))
