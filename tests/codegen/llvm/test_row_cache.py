"""Row caches (graphc/codegen/llvm/row_cache.py): a row kernel stores a reduction's costly terms
and its store loop loads them instead of computing them again. Which terms are cached, and
that the kernels compute what numpy does whether or not a cache is used: odd and run-time row
lengths, rows too long for a cache, inf, NaN, -0.0, empty rows."""
import numpy as np
import pytest

import graphc as gc
from graphc.codegen.llvm.row_cache import MAX_BYTES, row_caches
from graphc.kernels import ir

rng = np.random.default_rng(17)


def softmax(x):
    with np.errstate(invalid="ignore", over="ignore"):
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)


def compiled(shape, build, dtype=gc.float32):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(dtype, shape, name="x")
        f = gc.function([x], build(x), session=gc.Session(g, device="cpu"))
    return f


def cached_loads(f):
    return f.source("llvm").count('%"cached" = load')


def kernels(f):
    return f.dump("kernels").count("\nkernel ")


@pytest.mark.parametrize("cols", [1, 7, 1000, 4096])
def test_softmax_rows_are_cached_and_computed_as_numpy(cols):
    f = compiled((5, cols), lambda x: gc.nn.softmax(x, axis=-1))
    xb = (rng.standard_normal((5, cols)) * 30).astype(np.float32)
    np.testing.assert_allclose(f(xb), softmax(xb), rtol=2e-6, atol=1e-30)
    np.testing.assert_allclose(f(xb), softmax(xb), rtol=2e-6, atol=1e-30)  # the direct way
    assert kernels(f) == 1
    assert cached_loads(f) == (cols > 1)  # a row of one value is no loop


def test_extreme_rows():
    f = compiled((6, 5), lambda x: gc.nn.softmax(x, axis=-1))
    inf, nan = np.inf, np.nan
    xb = np.array([[0.0, -0.0, 1.0, 2.0, 3.0],
                   [inf, 1.0, 2.0, 3.0, 4.0],
                   [-inf, -inf, -inf, -inf, -inf],
                   [nan, 1.0, 2.0, 3.0, 4.0],
                   [3e38, -3e38, 0.0, 1.0, 2.0],
                   [-1e-45, 1e-45, -0.0, 0.0, 88.0]], np.float32)
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(f(xb), softmax(xb), rtol=2e-6, atol=1e-30)


def test_rows_of_run_time_or_large_length_are_recomputed_alike():
    long = MAX_BYTES // 4 + 3
    for shape, loads in (((3, None), 0), ((2, long), 0), ((None, 33), 1)):
        f = compiled(shape, lambda x: gc.nn.softmax(x, axis=-1))
        xb = rng.standard_normal((3 if shape[0] is None else shape[0],
                                  33 if shape[1] is None else shape[1])).astype(np.float32)
        np.testing.assert_allclose(f(xb), softmax(xb), rtol=2e-6)
        assert cached_loads(f) == loads, shape
    empty = compiled((None, 33), lambda x: gc.nn.softmax(x, axis=-1))
    assert empty(np.zeros((0, 33), np.float32)).shape == (0, 33)


def test_any_costly_term_of_a_reduction_that_its_consumer_reads_is_cached():
    """tanh(x) * sum(tanh(x)): a user's expression, not softmax; float64 rows too."""
    for dtype in (gc.float32, gc.float64):
        f = compiled((4, 9), lambda x: gc.tanh(x) * gc.sum(gc.tanh(x), axis=1, keepdims=True),
                     dtype)
        xb = rng.standard_normal((4, 9)).astype(dtype.np)
        t = np.tanh(xb)
        np.testing.assert_allclose(f(xb), t * t.sum(axis=1, keepdims=True), rtol=1e-6)
        assert cached_loads(f) == 1


def test_cheap_terms_and_terms_the_loop_does_not_read_are_recomputed():
    """Layer norm's x - mean costs less than a load; log_softmax's store reads no exp."""
    def norm(x):
        centered = x - gc.mean(x, axis=1, keepdims=True)
        return centered * gc.rsqrt(gc.mean(centered * centered, axis=1, keepdims=True) + 1e-5)
    for build, reference in ((norm, lambda x: (x - x.mean(1, keepdims=True)) / np.sqrt(
            x.var(1, keepdims=True) + 1e-5)),
            (lambda x: gc.nn.log_softmax(x, axis=-1), lambda x: np.log(softmax(x)))):
        f = compiled((3, 11), build)
        xb = rng.standard_normal((3, 11)).astype(np.float32)
        np.testing.assert_allclose(f(xb), reference(xb), rtol=1e-5, atol=1e-6)
        assert kernels(f) == 1 and cached_loads(f) == 0


def test_which_terms_are_found():
    """The outermost costly term, renamed to the loop's variable; none for a reduction that
    is computed already or runs over another extent."""
    i, j, r = ir.Var("i"), ir.Var("j"), ir.Var("r")
    n = ir.const(8)

    def term(v):
        return ir.op("exp", ir.op("neg", ir.Load(0, ir.add(ir.mul(i, n), v), "float32")))
    total = ir.Reduce("sum", ((r, n),), ir.op("add", term(r), ir.const(1.0, "float32")),
                      "float32")
    value = ir.op("mul", term(j), total)
    [found] = row_caches([value], j, n, lambda e: True)
    assert found.term == term(r) and found.again == term(j) and found.reduce is total
    assert row_caches([value], j, n, lambda e: False) == []
    assert row_caches([value], j, ir.const(9), lambda e: True) == []
    assert row_caches([value], j, ir.Dim(0), lambda e: True) == []
