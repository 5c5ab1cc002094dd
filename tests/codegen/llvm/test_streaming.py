"""Streaming row stores (graphc/codegen/llvm/streaming.py): a row kernel whose output holds at
least STREAM_BYTES writes its rows through a stack row with non-temporal stores of aligned
vectors and prefetches the next row; smaller outputs store as before. The values are numpy's
either way: odd row lengths (rows that start at every alignment), rows shorter than a vector,
run-time row counts on both sides of the threshold, empty inputs, inf, NaN, -0.0, -inf rows."""
import numpy as np
import pytest

import graphc as gc
from graphc.codegen.llvm.streaming import STREAM_BYTES

from tests.codegen.llvm.test_row_cache import compiled, softmax

rng = np.random.default_rng(29)


def streams(f):
    ir_text = f.source("llvm")
    return "!nontemporal" in ir_text and "llvm.prefetch" in ir_text


def optimized(f):
    """The optimized IR: a branch on a size known when compiling is folded away."""
    return f.source("llvm-opt")


def rows_for(cols, itemsize=4):
    """A row count that makes an output of `cols` columns just over the threshold."""
    return STREAM_BYTES // (cols * itemsize) + 3


@pytest.mark.parametrize("cols", [7, 1023, 4096])
def test_large_softmax_streams_and_computes_as_numpy(cols):
    rows = rows_for(cols)
    f = compiled((rows, cols), lambda x: gc.nn.softmax(x, axis=-1))
    xb = (rng.standard_normal((rows, cols)) * 20).astype(np.float32)
    assert streams(f)
    for _ in range(2):  # the second call writes over the first call's dropped output
        np.testing.assert_allclose(f(xb), softmax(xb), rtol=2e-6, atol=1e-30)


def test_small_outputs_store_as_before():
    f = compiled((4, 1023), lambda x: gc.nn.softmax(x, axis=-1))
    assert "!nontemporal" not in optimized(f)
    xb = rng.standard_normal((4, 1023)).astype(np.float32)
    np.testing.assert_allclose(f(xb), softmax(xb), rtol=2e-6, atol=1e-30)


def test_run_time_row_counts_on_both_sides_of_the_threshold():
    cols = 1001
    f = compiled((None, cols), lambda x: gc.nn.softmax(x, axis=-1))
    assert streams(f)
    for rows in (rows_for(cols), 3, 1, 0, rows_for(cols) + 17):
        xb = rng.standard_normal((rows, cols)).astype(np.float32)
        out = f(xb)
        assert out.shape == (rows, cols)
        np.testing.assert_allclose(out, softmax(xb), rtol=2e-6, atol=1e-30)


def test_extreme_rows_in_a_streamed_output():
    cols = 513
    rows = rows_for(cols)
    f = compiled((rows, cols), lambda x: gc.nn.softmax(x, axis=-1))
    xb = rng.standard_normal((rows, cols)).astype(np.float32)
    xb[0] = -np.inf
    xb[1, 5] = np.nan
    xb[2, 7] = np.inf
    xb[3, :] = -0.0
    xb[4, ::2] = 3e38
    xb[rows - 1] = -np.inf  # the last row: no next row to prefetch
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(f(xb), softmax(xb), rtol=2e-6, atol=1e-30)


def test_float64_layer_norm_rows_stream():
    """Another row kernel: no costly term cached, float64 rows of odd length."""
    cols = 1001
    rows = rows_for(cols, 8)

    def norm(x):
        centered = x - gc.mean(x, axis=1, keepdims=True)
        return centered * gc.rsqrt(gc.mean(centered * centered, axis=1, keepdims=True) + 1e-5)
    f = compiled((rows, cols), norm, gc.float64)
    xb = rng.standard_normal((rows, cols)) * 3 + 1
    assert streams(f)
    expected = (xb - xb.mean(1, keepdims=True)) / np.sqrt(xb.var(1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(f(xb), expected, rtol=1e-10, atol=1e-12)


def test_rows_of_one_value_are_computed_as_numpy():
    rows = rows_for(1)
    f = compiled((rows, 1), lambda x: gc.nn.softmax(x, axis=-1))
    xb = rng.standard_normal((rows, 1)).astype(np.float32)
    xb[::1000] = np.nan
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(f(xb), softmax(xb))


@pytest.mark.parametrize("rows", [2, rows_for(2)])
def test_a_reduction_per_element_of_the_row_is_not_prefetched_as_the_rows(rows):
    """A row of two argmaxes (each a reduction over its own last axis, of the row's length by
    chance) streams; the next row's prefetch must not read the element loop's variable
    (its IR did not verify)."""
    x = gc.placeholder(gc.float32, (None, 2, 2))
    f = gc.function([x], [abs(x), gc.cast(gc.argmax(x + 1.5, axis=-1), gc.float32)],
                    device="cpu")
    xb = rng.standard_normal((rows, 2, 2)).astype(np.float32)
    xb[0, 0] = [np.nan, -0.0]
    got_abs, got_arg = f(xb)
    np.testing.assert_array_equal(got_abs, np.abs(xb))
    np.testing.assert_array_equal(got_arg, np.argmax(xb + np.float32(1.5), axis=-1))
