"""Reductions and matmul: reference values, keepdims, symbolic dims and gradients."""
import numpy as np
import pytest

import graphc as gc
from graphc.compiler import HostStep
from tests.helpers import DEVICES, check_grad, evaluate, run

rng = np.random.default_rng(1)

REDUCTIONS = {"sum": np.sum, "mean": np.mean, "max": np.max, "min": np.min, "prod": np.prod}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@pytest.mark.parametrize("shape,axis", [((1,), None), ((7,), 0), ((1023,), -1),
                                        ((3, 5, 2), (0, 2)), ((4, 6), 1), ((2, 3), ()),
                                        ((5,), ())])  # no axes: device cpu failed to compile
@pytest.mark.parametrize("keepdims", [False, True])
def test_reduction_reference(name, shape, axis, keepdims):
    x = rng.uniform(0.9, 1.1, shape).astype(np.float32)
    got = evaluate(lambda t: getattr(gc, name)(t, axis=axis, keepdims=keepdims), x)
    want = REDUCTIONS[name](x.astype(np.float64), axis=axis, keepdims=keepdims)
    assert got.shape == np.shape(want)
    np.testing.assert_allclose(got, want, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@pytest.mark.parametrize("axis,keepdims", [(None, False), (1, True), ((0, 2), False)])
def test_reduction_gradient(name, axis, keepdims):
    x = rng.permutation(24).reshape(2, 3, 4) / 10.0 + 0.5  # distinct values: no ties for max
    check_grad(lambda t: getattr(gc, name)(t, axis=axis, keepdims=keepdims), x)


def test_max_gradient_splits_ties():
    x = np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]])
    g = evaluate(lambda t: gc.grad(gc.sum(gc.max(t, axis=1)), t), x)
    np.testing.assert_allclose(g, [[0, 0.5, 0.5], [1, 0, 0]])


@pytest.mark.parametrize("name,fn", [("argmax", np.argmax), ("argmin", np.argmin)])
def test_arg_reductions(name, fn):
    x = rng.normal(size=(5, 7)).astype(np.float32)
    for axis in (0, 1, -1):
        got = evaluate(lambda t: getattr(gc, name)(t, axis=axis), x)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, fn(x, axis=axis))


EMPTY_UNDEFINED = {"max": lambda t, a: gc.max(t, axis=a), "min": lambda t, a: gc.min(t, axis=a),
                   "argmax": gc.argmax, "argmin": gc.argmin}


@pytest.mark.parametrize("name", sorted(EMPTY_UNDEFINED))
def test_extrema_of_an_empty_axis_are_errors_on_every_device(name):
    """As numpy raises, so does every device (device cpu gave -inf or position 0): at run time
    for a run-time dim fed 0, when the graph is built for a static 0. Reducing a non-empty axis
    of an empty tensor is fine."""
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 3))
        over_rows, over_columns = (EMPTY_UNDEFINED[name](x, axis) for axis in (0, 1))
        for device in ("reference",) + DEVICES:
            sess = gc.Session(g, device=device)
            with pytest.raises(gc.ShapeError, match="empty"):
                sess.run(over_rows, {x: np.zeros((0, 3), np.float32)})
            assert sess.run(over_columns, {x: np.zeros((0, 3), np.float32)}).shape == (0,)
            assert sess.run(over_rows, {x: np.ones((2, 3), np.float32)}).shape == (3,)
        with pytest.raises(gc.ShapeError, match="empty"):
            EMPTY_UNDEFINED[name](gc.placeholder(gc.float32, (0, 3)), 0)


def test_logsumexp_is_stable_and_differentiable():
    x = np.array([[1000.0, 1000.0], [-1000.0, 0.0]])
    got = evaluate(lambda t: gc.logsumexp(t, axis=1), x)
    np.testing.assert_allclose(got, [1000 + np.log(2), 0.0], rtol=1e-12)
    check_grad(lambda t: gc.logsumexp(t, axis=0, keepdims=True), rng.normal(size=(3, 4)))


def test_mean_over_a_symbolic_batch_dim():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 3))
        m = gc.mean(x, axis=0)
        dx = gc.grad(gc.sum(m), x)
        sess = gc.Session(g, device="reference")
        for n in (1, 7):
            xb = rng.normal(size=(n, 3)).astype(np.float32)
            got_m, got_dx = sess.run([m, dx], {x: xb})
            np.testing.assert_allclose(got_m, xb.mean(0), rtol=1e-6)
            np.testing.assert_allclose(got_dx, np.full((n, 3), 1.0 / n), rtol=1e-6)


def test_integer_mean_is_float():
    got = evaluate(gc.mean, np.array([1, 2, 4], np.int32))
    assert got.dtype == np.float32 and got == pytest.approx(7 / 3)


@pytest.mark.parametrize("sa,sb", [((3, 4), (4, 5)), ((1, 7), (7, 1)), ((4,), (4, 3)),
                                   ((3, 4), (4,)), ((4,), (4,)), ((2, 3, 4), (4, 5)),
                                   ((2, 1, 3, 4), (5, 4, 2)), ((1023, 3), (3, 2))])
def test_matmul_reference_and_gradient(sa, sb):
    a = rng.normal(size=sa)
    b = rng.normal(size=sb)
    np.testing.assert_allclose(evaluate(gc.matmul, a, b), np.matmul(a, b), rtol=1e-12)
    if np.prod(sa) < 100:
        check_grad(gc.matmul, a, b)


def test_matmul_second_order():
    a = rng.normal(size=(3, 4))
    b = rng.normal(size=(4, 2))
    check_grad(lambda x, y: gc.grad(gc.sum(gc.tanh(x @ y)), x) * 1.0, a, b)



def test_weight_gradient_of_a_batched_product_is_one_product():
    """The gradient w.r.t. b of a (batch, time, k) @ b (k, n) (a Dense or LSTM kernel on a
    sequence) is one (k, batch*time) @ (batch*time, n) product, not a (batch, k, n) batched
    product summed over the batch afterwards; second order through it too."""
    from graphc.ir.graph import nodes_needed
    a, b = rng.normal(size=(2, 3, 4)), rng.normal(size=(4, 5))
    check_grad(lambda x, y: gc.grad(gc.sum(gc.tanh(x @ y)), y) * 1.0, a, b)
    check_grad(lambda x, y: gc.grad(gc.sum(gc.tanh(x @ y)), x) * 1.0, a, b)
    x = gc.placeholder(gc.float32, (None, 3, 4))
    w = gc.Variable(b.astype(np.float32))
    [gw] = gc.grad(gc.sum(gc.tanh(x @ w)), [w])
    products = [n for n in nodes_needed([gw]) if n.op == "matmul"]
    assert [p.outputs[0].ndim for p in products] == [3, 2]  # the forward's, then the gradient's
    np.testing.assert_allclose(
        run([gw], {x: a.astype(np.float32)})[0],
        np.einsum("btk,btn->kn", a, 1 - np.tanh(a @ b) ** 2), rtol=1e-4, atol=1e-5)

def test_matmul_shape_error_names_the_dims():
    g = gc.Graph()
    with g.as_default():
        a = gc.placeholder(gc.float32, (3, 4))
        b = gc.placeholder(gc.float32, (5, 2))
        with pytest.raises(gc.ShapeError, match=r"inner dims 4 and 5 differ"):
            a @ b


# ---- matmul compiled on device="cpu": no HostStep, every dtype, numpy's 1-D rules --------------
MATMUL_SHAPES = [((1, 1), (1, 1)), ((7, 33), (33, 1)), ((33, 7), (7, 33)), ((1, 7), (7, 33)),
                 ((33,), (33, 7)), ((7, 33), (33,)), ((7,), (7,)), ((1,), (1, 1)),
                 ((3, 7, 33), (33,)), ((33,), (3, 33, 7)), ((3, 7, 33), (33, 1)),
                 ((2, 1, 7, 33), (3, 33, 7)), ((7, 1), (3, 1, 33)), ((1023, 7), (7,)),
                 ((7,), (7, 1023)), ((1, 7), (7, 1023)), ((33, 1023), (1023, 1)),
                 ((2, 1, 7), (7,))]  # batched rows of one times a vector: cpu failed to build
MATMUL_DTYPES = ("float16", "bfloat16", "float32", "float64", "int32", "int64")


def values(shape, dtype, low=-1.0):
    """Floats in [low, 1); `low` 0 for long sums, whose terms of mixed signs would cancel to
    less than the reference's own rounding error."""
    if dtype.startswith("int"):
        # large enough that products and their sums wrap around as numpy's do
        return rng.integers(-2 ** 20, 2 ** 20, shape).astype(dtype)
    return rng.uniform(low, 1, shape)


def run_native(build, arrays, dtype):
    """build(*placeholders of dtype) -> tensors, run on the reference and on cpu (tests.helpers
    .run compares them within the dtype's tolerance), with no matmul left on cpu's host."""
    g = gc.Graph()
    with g.as_default():
        phs = [gc.placeholder(gc.as_dtype(dtype), a.shape, name=f"in{i}")
               for i, a in enumerate(arrays)]
        outs = build(*phs)
    exe = gc.Session(graph=g, device="cpu").compile(list(outs), phs)
    assert not [n.op for s in exe.steps if isinstance(s, HostStep) for n in s.group.nodes]
    storage = np.float32 if dtype == "bfloat16" else dtype  # bfloat16 feeds are rounded
    return run(outs, {p: a.astype(storage) for p, a in zip(phs, arrays)}, graph=g)


@pytest.mark.parametrize("dtype", MATMUL_DTYPES)
@pytest.mark.parametrize("sa,sb", MATMUL_SHAPES)
def test_matmul_native_on_cpu(dtype, sa, sb):
    low = 0.0 if sa[-1] > 100 else -1.0
    a, b = values(sa, dtype, low), values(sb, dtype, low)
    bias = values(np.broadcast_shapes(np.matmul(a, b).shape[-1:]), dtype)
    got = run_native(lambda x, y, c: [gc.matmul(x, y), gc.matmul(x, y) + c], [a, b, bias],
                     dtype)
    if dtype.startswith("int"):  # wrapped around exactly as numpy's
        np.testing.assert_array_equal(got[0], np.matmul(a, b))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_matmul_native_prologues_and_transposes(dtype):
    a, b = values((3, 33, 7), dtype), values((3, 33, 7), dtype)
    run_native(lambda x, y: [gc.matmul(gc.transpose(x, (0, 2, 1)), y),
                             gc.matmul(x * 0.5, gc.transpose(y, (0, 2, 1))),
                             gc.relu(gc.matmul(x[0], gc.transpose(y[1])))], [a, b], dtype)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_vector_products_native_with_transposes_and_prologues(dtype):
    """Matrix-vector products reading the matrix down its columns (a transpose) or along its
    rows, a computed vector and a computed matrix, a symbolic number of rows."""
    x, v, w = values((33, 1023), dtype, 0.0), values((33,), dtype), values((1023,), dtype, 0.0)
    run_native(lambda x, v, w: [gc.matmul(gc.transpose(x), v), gc.matmul(v, x),
                                gc.matmul(w, gc.transpose(x)), gc.matmul(x, gc.exp(w) * 0.5),
                                gc.tanh(gc.matmul(gc.exp(x), w)) + 1.0,
                                gc.matmul(gc.transpose(x * 2.0), v)], [x, v, w], dtype)
    g = gc.Graph()
    with g.as_default():
        rows = gc.placeholder(gc.as_dtype(dtype), (None, 1023))
        product = gc.matmul(rows, gc.constant(w, dtype=dtype)) * 2.0
    storage = np.float32 if dtype == "bfloat16" else dtype
    for n in (1, 7):
        run([product], {rows: values((n, 1023), dtype, 0.0).astype(storage)}, graph=g)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("sa,sb", [((7, 33), (33, 1)), ((33,), (33, 7)), ((7, 33), (33,)),
                                   ((33,), (33,)), ((3, 7, 33), (33,)),
                                   ((2, 1, 7, 33), (3, 33, 7))])
def test_matmul_gradients_native_on_cpu(dtype, sa, sb):
    a, b = values(sa, dtype), values(sb, dtype)
    weights = rng.uniform(0.5, 1.5, np.matmul(a, b).shape)

    def build(x, y):
        loss = gc.sum(gc.matmul(x, y) * gc.constant(weights, dtype=dtype))
        return gc.grad(loss, [x, y])
    da, db = run_native(build, [a, b], dtype)
    if dtype == "float64":
        check_grad(gc.matmul, a, b)
