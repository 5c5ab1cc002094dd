"""Float max and min reductions take one machine max or min per vector and track NaN apart
(emit.NAN_TRACKED): a NaN anywhere in a row (first, last, in the vector body or its remainder,
alone or everywhere) gives NaN, infinities and finite extremes give numpy's value, on float32
and float64, rows of odd and run-time lengths, in row kernels (softmax) too."""
import numpy as np
import pytest

import graphc as gc

rng = np.random.default_rng(53)


def reducer(shape, op, dtype):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(dtype, shape, name="x")
        return gc.function([x], op(x, axis=-1), session=gc.Session(g, device="cpu"))


def rows_with_extremes(rows, cols, np_dtype):
    x = (rng.standard_normal((rows, cols)) * 1e3).astype(np_dtype)
    specials = [(0, 0, np.nan), (1, cols - 1, np.nan), (2, cols // 2, np.nan),
                (4, 0, np.inf), (5, cols - 1, -np.inf)]
    for r, c, v in specials:
        if r < rows:
            x[r, c] = v
    if rows > 3:
        x[3] = np.nan
    if rows > 6:
        x[6] = -np.inf
    if rows > 7:
        x[7] = np.inf
    if rows > 8:
        x[8] = np.finfo(np_dtype).max
        x[8, ::3] = -np.finfo(np_dtype).max
    return x


@pytest.mark.parametrize("dtype", [gc.float32, gc.float64])
@pytest.mark.parametrize("cols", [1, 2, 15, 17, 1000, 4099])
@pytest.mark.parametrize("name", ["max", "min"])
def test_max_and_min_rows_as_numpy(dtype, cols, name):
    op, reference = {"max": (gc.max, np.max), "min": (gc.min, np.min)}[name]
    x = rows_with_extremes(11, cols, dtype.np)
    for shape in ((11, cols), (None, None)):
        f = reducer(shape, op, dtype)
        with np.errstate(invalid="ignore"):
            np.testing.assert_array_equal(f(x), reference(x, axis=-1))


def test_the_maximum_of_zeros_is_a_zero():
    """Equal zeros may give either sign (numpy's result depends on their order too)."""
    f = reducer((2, 33), gc.max, gc.float32)
    x = np.zeros((2, 33), np.float32)
    x[0, ::2] = -0.0
    x[1] = -0.0
    got = f(x)
    assert (got == 0).all() and not np.isnan(got).any()


def test_softmax_rows_with_nan_and_infinities():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 37), name="x")
        f = gc.function([x], gc.nn.softmax(x, axis=-1), session=gc.Session(g, device="cpu"))
    x = rows_with_extremes(9, 37, np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        expected = e / e.sum(axis=-1, keepdims=True)
        np.testing.assert_allclose(f(x), expected, rtol=2e-6, atol=1e-30)
