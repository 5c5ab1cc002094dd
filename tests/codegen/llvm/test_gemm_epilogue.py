"""relu(x @ W + b) and its kin compiled for the CPU: the Gemm computes the epilogue (no loop
over C after it), and its values are exactly those of the same product followed by its own
add and relu (a program that also fetches the product, which keeps them apart), on odd and
run-time sizes, transposed weights, infinities, NaN and -0.0."""
import numpy as np
import pytest

import graphc as gc

rng = np.random.default_rng(17)

EPILOGUES = {
    "relu(x @ w + b)": lambda p, b: gc.relu(p + b),
    "relu(b + x @ w)": lambda p, b: gc.relu(b + p),
    "x @ w + b": lambda p, b: p + b,
    "relu(x @ w)": lambda p, b: gc.relu(p),
}


def specials(x, count):
    flat = x.reshape(-1)
    if flat.size:
        at = rng.integers(0, flat.size, count)
        flat[at] = rng.choice(np.array([np.inf, -np.inf, np.nan, -0.0], x.dtype), count)
    return x


# odd sizes; more than one block of k (the epilogue goes with the last); N of one vector or
# less (the narrow tiles); shares of columns (few rows, many columns)
SHAPES = [(1, 1, 1, "float32", False), (5, 17, 5, "float32", True),
          (17, 5, 1023, "float32", False), (1023, 129, 17, "float32", True),
          (130, 1000, 40, "float32", False), (6, 400, 300, "float64", True),
          (37, 71, 9, "float64", False)]


@pytest.mark.parametrize("m,k,n,dtype,transposed", SHAPES)
@pytest.mark.parametrize("epilogue", list(EPILOGUES))
def test_fused_epilogue_is_the_product_then_its_epilogue(m, k, n, epilogue, dtype, transposed):
    x = specials(rng.standard_normal((m, k)).astype(dtype), 3)
    w = specials(rng.standard_normal((n, k) if transposed else (k, n)).astype(dtype), 2)
    b = specials(rng.standard_normal(n).astype(dtype), 2)
    x[0] = 0.0  # a row of zeros: -0.0 in b gives -0.0 sums for relu to make +0.0
    g = gc.Graph()
    with g.as_default():
        xs = gc.placeholder(dtype, (None, k), name="x")  # rows known at run time
        ws = gc.placeholder(dtype, w.shape, name="W")
        bs = gc.placeholder(dtype, (n,), name="b")
        product = gc.matmul(xs, gc.transpose(ws) if transposed else ws)
        out = EPILOGUES[epilogue](product, bs)
        session = gc.Session(g, device="cpu")
        fused = gc.function([xs, ws, bs], out, session=session)
        apart = gc.function([xs, ws, bs], [product, out], session=session)
    got = fused(x, w, b)
    expected = apart(x, w, b)[1]
    np.testing.assert_array_equal(got, expected)
    numbers = ~np.isnan(got)  # (which NaN an add of two passes on is the hardware's choice)
    np.testing.assert_array_equal(np.signbit(got[numbers]), np.signbit(expected[numbers]))
    if "relu" in epilogue:
        assert not np.signbit(got[numbers]).any()  # relu(-0.0) is +0.0
    with np.errstate(all="ignore"):
        wm = (w.T if transposed else w).astype(np.float64)
        ref = {"relu(x @ w + b)": lambda p: np.maximum(p + b, 0),
               "relu(b + x @ w)": lambda p: np.maximum(b + p, 0),
               "x @ w + b": lambda p: p + b, "relu(x @ w)": lambda p: np.maximum(p, 0)}
        want = ref[epilogue](x.astype(np.float64) @ wm)
    tol = {"float32": 1e-4, "float64": 1e-10}[dtype] * np.sqrt(k)
    np.testing.assert_allclose(got, want.astype(dtype), rtol=tol, atol=tol)
    if m > 1 and n > 1 and dtype == "float32":  # (products with a vector side are sums)
        rows = fused.profile(x, w, b, runs=1, show=False).rows
        kernels = [r.name for r in rows if r.name != "python"]
        assert len(kernels) == 1, kernels  # the Gemm (W^T read in place), its epilogue inside
