"""Column reductions (reductions over leading axes, the kept axis contiguous) are emitted in
blocks with the kept axis innermost (graphc/codegen/llvm/columns.py): the same values as the
reference on odd sizes (one column, blocks cut short, more than one block, rows in and out
of whole unrolled steps), every reduction
and dtype, NaN, nested column reductions and full-size outputs beside them."""
import numpy as np
import pytest

import graphc as gc
from graphc.codegen.llvm.columns import BLOCK, UNROLL, column_reductions
from tests.helpers import evaluate
from tests.kernels.helpers import Program

rng = np.random.default_rng(17)
# rows: fewer than UNROLL, whole steps of it with and without rows left over
SHAPES = [(1, 1), (7, 1), (1, 7), (7, 13), (1023, 3), (3, BLOCK * 2 + 5), (2, 5, 1031),
          (UNROLL, 13), (2 * UNROLL, BLOCK + 1), (3, UNROLL, 9)]
REDUCTIONS = {"sum": gc.sum, "mean": gc.mean, "max": gc.max, "min": gc.min, "prod": gc.prod}


def blocked_kernels(build, *arrays):
    """How many of the lowered kernels the LLVM emitter runs in column blocks."""
    g = gc.Graph()
    with g.as_default():
        phs = [gc.placeholder(gc.as_dtype(a.dtype), a.shape) for a in arrays]
        out = build(*phs)
        program = Program(out if isinstance(out, list) else [out])
    return sum(1 for k in program.kernels if k.parallel_loop is not None
               and column_reductions(k.parallel_loop))


def leading(x):
    return tuple(range(x.rank - 1))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", list(REDUCTIONS))
def test_column_reductions_match_the_reference(shape, name):
    x = rng.normal(size=shape).astype(np.float32)
    if name == "prod":
        x = (1 + 0.01 * x).astype(np.float32)
    x.flat[::11] = np.nan if name in ("max", "min") else x.flat[::11]

    def build(t):
        return REDUCTIONS[name](t, axis=leading(t))
    got = evaluate(build, x)
    assert got.shape == shape[-1:]
    if shape[-1] > 1 and np.prod(shape[:-1]) > 1:  # a real column reduction
        assert blocked_kernels(build, x) == 1


@pytest.mark.parametrize("dtype", ["float64", "float16", "int32", "int64"])
def test_column_sums_and_extrema_of_other_dtypes(dtype):
    x = rng.integers(-20, 20, (37, 530)).astype(dtype)  # float16 sums exact, as numpy's
    got = evaluate(lambda t: [gc.sum(t, axis=0), gc.max(t, axis=0), gc.min(t, axis=0)], x)
    np.testing.assert_array_equal(got[1], x.max(axis=0))
    np.testing.assert_array_equal(got[2], x.min(axis=0))


def test_outputs_beside_a_column_reduction_and_nested_ones():
    """x - mean over axis 0 (full-size stores in the blocks) and softmax over axis 0 (a sum
    of exp(x - max): one column reduction reads another)."""
    x = rng.normal(size=(9, 1029)).astype(np.float32)

    def build(t):
        return [t - gc.mean(t, axis=0), gc.nn.softmax(t, axis=0), gc.sum(t * t, axis=0) + 1.0]
    centered, soft, squares = evaluate(build, x)
    np.testing.assert_allclose(soft.sum(axis=0), 1.0, rtol=1e-5)
    np.testing.assert_allclose(centered.mean(axis=0), 0.0, atol=1e-5)
    assert blocked_kernels(build, x) >= 2


def test_float32_column_sums_accumulate_in_double():
    """Large values that cancel: a float32 accumulator (numpy's for a column sum, hence the
    reference's) loses the small ones."""
    x = np.tile(np.array([[1e8], [1.0], [-1e8], [1.0]], np.float32), (1025, 21))
    g = gc.Graph()
    with g.as_default():
        t = gc.placeholder(gc.float32, x.shape)
        got = gc.Session(graph=g, device="cpu").run(gc.sum(t, axis=0), {t: x})
    np.testing.assert_array_equal(got, np.full(21, 2050.0, np.float32))
    assert x.sum(axis=0)[0] != 2050.0


def test_row_reductions_keep_their_loop_order():
    x = rng.normal(size=(7, 13)).astype(np.float32)
    assert blocked_kernels(lambda t: gc.sum(t, axis=1), x) == 0
