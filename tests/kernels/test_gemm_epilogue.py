"""A bias row and relu after a matrix product folded into the Gemm (Gemm.bias, Gemm.relu) on a
target whose Gemm takes them: which groups fold, and their values by the kernel IR interpreter
against the reference (infinities, NaN and -0.0 in the inputs, a run-time batch dim); the
kernel IR's own target folds nothing."""
import numpy as np
import pytest

import graphc as gc
from graphc.kernels import ir
from graphc.targets import KERNEL_IR, Target
from tests.kernels.helpers import Program, run_reference

rng = np.random.default_rng(5)


class Fusing(Target):
    fuses_gemm_epilogue = True


FUSING = Fusing()


def specials(x):
    flat = x.reshape(-1)
    flat[rng.integers(0, flat.size, 4)] = [np.inf, -np.inf, np.nan, -0.0]
    return x


def gemms(program):
    return [s for k in program.kernels for s in ir.walk_statements(k.body)
            if isinstance(s, ir.Gemm)]


def fused_values(outputs, feed):
    """The interpreter's run of the program for the fusing target, checked against the
    reference; returns its values."""
    got = Program(outputs, target=FUSING).execute(feed)
    for g, w in zip(got, run_reference(outputs, feed)):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
    return got


def build(fn, arrays, batch):
    g = gc.Graph()
    with g.as_default():
        phs = [gc.placeholder(gc.as_dtype(a.dtype), (None,) + a.shape[1:] if n in batch
                              else a.shape, name=f"in{n}") for n, a in enumerate(arrays)]
        out = fn(*phs)
    return [out] if not isinstance(out, list) else out, dict(zip(phs, arrays))


# (graph, bias shape, whether it folds: (bias, relu) or None)
CASES = {
    "relu(x @ w + b)": (lambda x, w, b: gc.relu(gc.matmul(x, w) + b), (1,), (True, True)),
    "relu(b + x @ w)": (lambda x, w, b: gc.relu(b + gc.matmul(x, w)), (1,), (True, True)),
    "x @ w + b": (lambda x, w, b: gc.matmul(x, w) + b, (1,), (True, False)),
    "relu(x @ w)": (lambda x, w, b: gc.relu(gc.matmul(x, w)), (1,), (False, True)),
    "relu(x @ w + b), b (1, n)": (lambda x, w, b: gc.relu(gc.matmul(x, w) + b), (1, 1),
                                  (True, True)),
    "relu(x @ w^T + b)": (lambda x, w, b: gc.relu(gc.matmul(x, gc.transpose(w)) + b), (1,),
                          (True, True)),
    # not folded: a bias that is no row, work on the bias, the product fetched too, a
    # different epilogue
    "x @ w + b, b (m, n)": (lambda x, w, b: gc.matmul(x, w) + b, (0, 1), None),
    "relu(x @ w + 2 b)": (lambda x, w, b: gc.relu(gc.matmul(x, w) + b * 2.0), (1,), None),
    "[x @ w, relu(x @ w + b)]": (lambda x, w, b: [gc.matmul(x, w),
                                                  gc.relu(gc.matmul(x, w) + b)], (1,), None),
    "relu(x @ w - b)": (lambda x, w, b: gc.relu(gc.matmul(x, w) - b), (1,), None),
}


@pytest.mark.parametrize("m,k,n", [(5, 17, 1023), (17, 5, 1), (1, 1, 3), (33, 64, 40)])
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_folds_where_the_epilogue_is_a_bias_row_and_relu(case, m, k, n, dtype):
    fn, bias_shape, folds = CASES[case]
    x, w = specials(rng.normal(size=(m, k)).astype(dtype)), rng.normal(size=(k, n)).astype(dtype)
    if "w^T" in case:
        w = np.ascontiguousarray(w.T)
    shape = tuple((m, n)[d] for d in bias_shape) if len(bias_shape) == 2 else (n,)
    bias = specials(rng.normal(size=(1, n) if bias_shape == (1, 1) else shape).astype(dtype))
    outputs, feed = build(fn, [x, w, bias], batch=(0,))
    found = [(g.bias is not None, g.relu) for g in gemms(Program(outputs, target=FUSING))]
    if m > 1 and n > 1:  # (products with a vector side are sums, no Gemm)
        assert found == [folds or (False, False)]
    fused_values(outputs, feed)
    assert all(not g.bias and not g.relu for g in gemms(Program(outputs, target=KERNEL_IR)))


def test_folded_values_match_the_reference():
    """The interpreter's fused Gemm against the reference, a run-time batch, -0.0 to relu."""
    x, w = specials(rng.normal(size=(37, 19)).astype(np.float32)), rng.normal(size=(19, 23))
    bias = specials(rng.normal(size=23).astype(np.float32))
    x[3] = 0.0
    bias[:4] = -0.0
    outputs, feed = build(lambda x, w, b: gc.relu(gc.matmul(x, w) + b),
                          [x, w.astype(np.float32), bias], batch=(0,))
    program = Program(outputs, target=FUSING)
    assert [(g.bias is not None, g.relu) for g in gemms(program)] == [(True, True)]
    got = fused_values(outputs, feed)[0]
    assert not np.signbit(got[3][got[3] == 0]).any()  # relu(-0.0) is +0.0, as numpy's


# a stack of matrices times one matrix is one product of all their rows (a sequence's input
# projection): its bias row folds as a 2-D product's; a bias per row of a step does not
STACKED = {
    "relu(x @ w + b), x (t, batch, k)": (lambda x, w, b: gc.relu(gc.matmul(x, w) + b), (7,),
                                         (True, True)),
    "x @ w + b, x (t, batch, k)": (lambda x, w, b: gc.matmul(x, w) + b, (7,), (True, False)),
    "x @ w + b, b (batch, n)": (lambda x, w, b: gc.matmul(x, w) + b, (5, 7), None),
}


@pytest.mark.parametrize("case", list(STACKED))
def test_stacked_product_folds_a_bias_row(case):
    fn, bias_shape, folds = STACKED[case]
    x = specials(rng.normal(size=(3, 5, 4)).astype(np.float32))
    w = rng.normal(size=(4, 7)).astype(np.float32)
    bias = specials(rng.normal(size=bias_shape).astype(np.float32))
    g = gc.Graph()
    with g.as_default():
        xs = gc.placeholder(gc.float32, (3, None, 4), name="x")
        ws = gc.placeholder(gc.float32, (4, 7), name="w")
        bs = gc.placeholder(gc.float32, (None, 7) if len(bias_shape) == 2 else (7,), name="b")
        out = fn(xs, ws, bs)
    feed = {xs: x, ws: w, bs: bias}
    found = [(g.bias is not None, g.relu) for g in gemms(Program([out], target=FUSING))]
    assert found == [folds or (False, False)]
    fused_values([out], feed)
    got = gc.function([xs, ws, bs], out, device="cpu")(x, w, bias)
    with np.errstate(invalid="ignore"):  # inf - inf in the sums, as in the GEMM's
        want = x @ w + bias
    np.testing.assert_allclose(got, np.maximum(want, 0) if "relu" in case else want,
                               rtol=1e-5, atol=1e-5)
