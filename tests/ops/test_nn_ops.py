"""gc.nn: softmax family, cross-entropies, conv2d, pooling and dropout against plain numpy."""
import math

import numpy as np
import pytest

import graphc as gc
from tests.helpers import DEVICES, check_grad, evaluate

rng = np.random.default_rng(3)


# ---- straightforward numpy, one output cell at a time ----------------------------------------
def same_padding(size, k, stride, dilation):
    """TensorFlow's SAME rule, written out: (output size, padding before)."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    return out, total // 2


def geometry(size, k, stride, dilation, padding):
    if padding == "SAME":
        return same_padding(size, k, stride, dilation)
    return (size - (k - 1) * dilation - 1) // stride + 1, 0


def naive_conv2d(x, f, stride, padding, dilation):
    n, h, w, c = x.shape
    kh, kw, _, o = f.shape
    oh, top = geometry(h, kh, stride, dilation, padding)
    ow, left = geometry(w, kw, stride, dilation, padding)
    out = np.zeros((n, oh, ow, o))
    for b in range(n):
        for r in range(oh):
            for q in range(ow):
                for i in range(kh):
                    for j in range(kw):
                        row = r * stride + i * dilation - top
                        col = q * stride + j * dilation - left
                        if 0 <= row < h and 0 <= col < w:
                            out[b, r, q] += x[b, row, col] @ f[i, j]
    return out


def naive_pool(x, k, stride, padding, reduce):
    n, h, w, c = x.shape
    oh, top = geometry(h, k, stride, 1, padding)
    ow, left = geometry(w, k, stride, 1, padding)
    out = np.zeros((n, oh, ow, c))
    for r in range(oh):
        for q in range(ow):
            rows = [r * stride + i - top for i in range(k) if 0 <= r * stride + i - top < h]
            cols = [q * stride + j - left for j in range(k) if 0 <= q * stride + j - left < w]
            window = x[:, rows][:, :, cols]
            out[:, r, q] = reduce(window.reshape(n, -1, c), axis=1)
    return out


# ---- softmax, log_softmax ----------------------------------------------------------------------
@pytest.mark.parametrize("shape,axis", [((1,), -1), ((7,), 0), ((3, 7), -1), ((3, 7), 0),
                                        ((2, 5, 3), 1)])
def test_softmax_and_log_softmax_match_numpy(shape, axis):
    x = rng.normal(size=shape).astype(np.float32) * 3
    sm, lsm = evaluate(lambda t: [gc.nn.softmax(t, axis), gc.nn.log_softmax(t, axis)], x)
    x64 = x.astype(np.float64)
    want = np.exp(x64) / np.exp(x64).sum(axis=axis, keepdims=True)
    np.testing.assert_allclose(sm, want, rtol=1e-5)
    np.testing.assert_allclose(sm.sum(axis=axis), 1.0, rtol=1e-6)
    np.testing.assert_allclose(lsm, np.log(want), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape,axis", [((0,), 0), ((3, 0), -1), ((0, 4), -1), ((0, 4), 0)])
def test_softmax_and_log_softmax_of_empty_tensors_are_empty(shape, axis):
    """On every device, also through constant folding; the reference raised numpy's error for
    the max of an empty axis."""
    x = np.zeros(shape, np.float32)
    sm, lsm = evaluate(lambda t: [gc.nn.softmax(t, axis), gc.nn.log_softmax(t, axis)], x)
    assert sm.shape == lsm.shape == shape
    with gc.Graph().as_default():
        folded = gc.nn.log_softmax(gc.constant(x), axis)
        assert gc.Session(device="cpu", optimize="O1").run(folded).shape == shape


def test_softmax_of_large_logits_stays_finite():
    x = np.array([[1000.0, 999.0, -1000.0], [-1e4, -1e4, -1e4]], np.float32)
    sm, lsm = evaluate(lambda t: [gc.nn.softmax(t), gc.nn.log_softmax(t)], x)
    assert np.all(np.isfinite(sm)) and np.all(np.isfinite(lsm))
    e = math.exp(-1)
    np.testing.assert_allclose(sm[0], [1 / (1 + e), e / (1 + e), 0.0], rtol=1e-6)
    np.testing.assert_allclose(sm[1], [1 / 3] * 3, rtol=1e-6)
    np.testing.assert_allclose(lsm[0, 2], -2000 - math.log1p(e), rtol=1e-6)


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
@pytest.mark.parametrize("axis", [0, -1])
def test_softmax_gradients(op, axis):
    check_grad(lambda t: getattr(gc.nn, op)(t, axis), rng.normal(size=(3, 5)))


def test_softmax_rejects_integers_and_scalars():
    with gc.Graph().as_default():
        with pytest.raises(gc.DTypeError, match="floating-point"):
            gc.nn.softmax(gc.placeholder(gc.int32, (3,)))
        with pytest.raises(gc.ShapeError, match="rank >= 1"):
            gc.nn.log_softmax(gc.placeholder(gc.float32, ()), axis=0)


# ---- cross-entropies ---------------------------------------------------------------------------
def log_softmax_np(x):
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


@pytest.mark.parametrize("label_dtype", [np.int32, np.int64])
def test_sparse_softmax_cross_entropy_matches_numpy(label_dtype):
    logits = rng.normal(size=(2, 7, 5)).astype(np.float32)
    labels = rng.integers(0, 5, size=(2, 7)).astype(label_dtype)
    got = evaluate(gc.nn.sparse_softmax_cross_entropy, logits, labels)
    want = -np.take_along_axis(log_softmax_np(logits.astype(np.float64)),
                               labels[..., None], axis=-1)[..., 0]
    assert got.shape == (2, 7) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_sparse_softmax_cross_entropy_of_huge_logits():
    """The loss is log(sum(exp(x - max))) - (x[label] - max): device cpu added the max first
    and subtracted x[label] after, which lost the log to cancellation (0 for [1e38, 1e38])."""
    big = np.finfo(np.float32).max
    logits = np.array([[big, big], [1e38, 1e38], [-big, -big], [big, 0.0]], np.float32)
    got = evaluate(gc.nn.sparse_softmax_cross_entropy, logits, np.array([0, 1, 1, 0], np.int32))
    np.testing.assert_allclose(got, [math.log(2)] * 3 + [0.0], rtol=1e-6)


def test_sparse_softmax_cross_entropy_gradient():
    labels = np.array([0, 6, 3], np.int64)
    check_grad(lambda t: gc.nn.sparse_softmax_cross_entropy(t, gc.constant(labels)),
               rng.normal(size=(3, 7)))


def test_a_bad_label_is_reported_when_an_earlier_kernel_reads_the_loss_shape_only():
    """fill_like(loss) reads only the loss's shape, so its kernel may run before the loss's:
    device cpu, rerunning the kernels before the failing one to report the bad label, read
    the loss's unmade buffer (IndexError) instead of raising IndexError_."""
    g = gc.Graph()
    with g.as_default():
        labels = gc.placeholder(gc.int32, (1, 2))
        loss = gc.nn.sparse_softmax_cross_entropy(gc.constant(np.zeros((1, 2, 3), np.float32)),
                                                  labels)
        fetches = [gc.fill_like(loss, 2.0), -loss]
    for device in ("reference",) + DEVICES:
        sess = gc.Session(g, device=device)
        with pytest.raises(gc.errors.IndexError_, match=r"label 6 at position \(0, 1\)"):
            sess.run(fetches, {labels: np.array([[0, 6]], np.int32)})
        np.testing.assert_allclose(sess.run(fetches, {labels: np.array([[0, 2]], np.int32)})[1],
                                   [[-math.log(3)] * 2], rtol=1e-6)


def test_sparse_label_out_of_range_names_label_and_range():
    logits = rng.normal(size=(4, 3)).astype(np.float32)
    labels = np.array([0, 2, 3, 1], np.int32)
    with pytest.raises(gc.errors.IndexError_,
                       match=r"label 3 at position \(2,\) is out of range \[0, 3\)"):
        evaluate(gc.nn.sparse_softmax_cross_entropy, logits, labels)
    with pytest.raises(gc.errors.IndexError_, match=r"label -1 .* \[0, 3\)"):
        evaluate(gc.nn.sparse_softmax_cross_entropy, logits, labels - 1)


def test_sparse_cross_entropy_build_errors():
    with gc.Graph().as_default():
        logits = gc.placeholder(gc.float32, (None, 5))
        with pytest.raises(gc.DTypeError, match="int32 or int64 labels"):
            gc.nn.sparse_softmax_cross_entropy(logits, gc.placeholder(gc.float32, (None,)))
        with pytest.raises(gc.ShapeError, match="labels"):
            gc.nn.sparse_softmax_cross_entropy(logits, gc.placeholder(gc.int32, (None, 5)))
        with pytest.raises(gc.ShapeError, match=r"expected \(4,\)"):
            gc.nn.sparse_softmax_cross_entropy(gc.placeholder(gc.float32, (4, 5)),
                                               gc.placeholder(gc.int32, (3,)))


def test_sparse_cross_entropy_gradient_needs_a_known_class_count():
    with gc.Graph().as_default():
        logits = gc.placeholder(gc.float64, (3, None))
        loss = gc.sum(gc.nn.sparse_softmax_cross_entropy(logits, gc.constant([0, 1, 0])))
        with pytest.raises(gc.GradientError, match="known number of classes"):
            gc.grad(loss, logits)


def test_sparse_cross_entropy_with_symbolic_batch_trains_like_numpy():
    """DESIGN.md's first example: one gradient step of a softmax regression."""
    xb = rng.normal(size=(7, 4)).astype(np.float32)
    yb = rng.integers(0, 3, size=7).astype(np.int32)
    w0 = rng.normal(size=(4, 3)).astype(np.float32)
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 4))
        y = gc.placeholder(gc.int32, (None,))
        w = gc.Variable(w0)
        loss = gc.mean(gc.nn.sparse_softmax_cross_entropy(x @ w, y))
        gw = gc.grad(loss, w)
        got = gc.Session(g, device="reference").run(gw, {x: xb, y: yb})
    p = np.exp(log_softmax_np(xb.astype(np.float64) @ w0))
    p[np.arange(7), yb] -= 1
    np.testing.assert_allclose(got, xb.T @ p / 7, rtol=1e-5, atol=1e-6)


def test_softmax_cross_entropy_matches_numpy_and_differentiates():
    logits = rng.normal(size=(7, 4))
    labels = rng.dirichlet(np.ones(4), size=7)
    got = evaluate(gc.nn.softmax_cross_entropy, logits, labels)
    np.testing.assert_allclose(got, -(labels * log_softmax_np(logits)).sum(-1), rtol=1e-12)
    check_grad(gc.nn.softmax_cross_entropy, logits, labels)


def test_sigmoid_cross_entropy_matches_numpy_stably_and_differentiates():
    logits = np.array([-800.0, -3.0, -0.5, 0.25, 2.0, 800.0, 1e-3])
    labels = np.array([0.0, 1.0, 0.3, 1.0, 0.0, 1.0, 0.5])
    got = evaluate(gc.nn.sigmoid_cross_entropy, logits, labels)
    assert np.all(np.isfinite(got))
    moderate = np.abs(logits) < 30
    p = 1 / (1 + np.exp(-logits[moderate]))
    z = labels[moderate]
    np.testing.assert_allclose(got[moderate], -z * np.log(p) - (1 - z) * np.log1p(-p),
                               rtol=1e-10)
    np.testing.assert_allclose(got[~moderate], [0.0, 0.0], atol=1e-12)
    check_grad(gc.nn.sigmoid_cross_entropy, rng.normal(size=(3, 5)),
               rng.uniform(size=(3, 5)))


# ---- conv2d ------------------------------------------------------------------------------------
CONV_CASES = [  # (x shape, filter shape, stride, padding, dilation)
    ((2, 7, 7, 3), (3, 3, 3, 4), 1, "VALID", 1),
    ((2, 7, 7, 3), (3, 3, 3, 4), 1, "SAME", 1),
    ((1, 7, 6, 2), (3, 2, 2, 5), 2, "SAME", 1),
    ((1, 7, 6, 2), (3, 2, 2, 5), 2, "VALID", 1),
    ((2, 7, 7, 1), (3, 3, 1, 2), 1, "SAME", 2),
    ((2, 9, 8, 2), (2, 3, 2, 1), 2, "VALID", 2),
    ((3, 1, 1, 2), (1, 1, 2, 7), 1, "VALID", 1),
    ((1, 1, 7, 1), (1, 4, 1, 1), 2, "SAME", 1),
    ((1, 5, 5, 2), (4, 4, 2, 1), 2, "SAME", 2),
]


@pytest.mark.parametrize("xs,fs,stride,padding,dilation", CONV_CASES)
def test_conv2d_matches_per_pixel_loop(xs, fs, stride, padding, dilation):
    x = rng.normal(size=xs).astype(np.float32)
    f = rng.normal(size=fs).astype(np.float32)
    got = evaluate(lambda a, b: gc.nn.conv2d(a, b, stride, padding.lower(), dilation), x, f)
    want = naive_conv2d(x.astype(np.float64), f.astype(np.float64), stride, padding, dilation)
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("xs,fs,stride,padding,dilation", CONV_CASES[:6])
def test_conv2d_gradients(xs, fs, stride, padding, dilation):
    xs = (1,) + xs[1:]  # one image keeps the finite differences quick
    check_grad(lambda a, b: gc.nn.conv2d(a, b, stride, padding, dilation),
               rng.normal(size=xs), rng.normal(size=fs))


def test_conv2d_takes_separate_height_and_width_strides_and_dilations():
    x, f = rng.normal(size=(1, 8, 9, 2)), rng.normal(size=(2, 3, 2, 3))
    got = evaluate(lambda a, b: gc.nn.conv2d(a, b, (1, 2), "SAME", (2, 1)), x, f)
    # strides (1, 2) with dilation (2, 1) keeps 8 rows and ceil(9 / 2) = 5 columns
    assert got.shape == (1, 8, 5, 3)
    check_grad(lambda a, b: gc.nn.conv2d(a, b, (1, 2), "SAME", (2, 1)),
               x[:, :5, :5], f)


def test_conv2d_second_derivatives():
    """The gradient ops differentiate again (both conv2d gradients, then their gradients)."""
    x, f = rng.normal(size=(1, 5, 4, 2)), rng.normal(size=(2, 2, 2, 3))
    w = rng.normal(size=(1, 3, 2, 3))

    def grad_norm(a, b):
        y = gc.nn.conv2d(a, b, 2, "SAME")
        ga, gb = gc.grad(gc.sum(y * gc.constant(w) * y), [a, b])
        return gc.sum(ga * ga) + gc.sum(gb * gb)

    check_grad(grad_norm, x, f)


def test_conv2d_backprop_ops_match_numpy():
    x, f = rng.normal(size=(2, 6, 5, 3)), rng.normal(size=(3, 2, 3, 4))
    g = rng.normal(size=(2, 3, 3, 4))
    dx, df = evaluate(lambda a, b, c: [gc.nn.conv2d_backprop_input(a, b, c, 2, "SAME"),
                                       gc.nn.conv2d_backprop_filter(a, b, c, 2, "SAME")],
                      x, f, g)
    # conv2d is linear: its gradient is the transpose of its matrix, built column by column
    basis = np.eye(x.size).reshape((x.size,) + x.shape)
    matrix = np.stack([naive_conv2d(e, f, 2, "SAME", 1).ravel() for e in basis], axis=1)
    np.testing.assert_allclose(dx, (matrix.T @ g.ravel()).reshape(x.shape), rtol=1e-10)
    basis = np.eye(f.size).reshape((f.size,) + f.shape)
    matrix = np.stack([naive_conv2d(x, e, 2, "SAME", 1).ravel() for e in basis], axis=1)
    np.testing.assert_allclose(df, (matrix.T @ g.ravel()).reshape(f.shape), rtol=1e-10)


def test_conv2d_with_symbolic_dims():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, None, None, 3))
        f = gc.Variable(rng.normal(size=(3, 3, 3, 2)).astype(np.float32))
        y = gc.nn.conv2d(x, f, 2, "SAME")
        n, h, w, c = y.shape
        assert n is x.shape[0] and c == 2
        assert isinstance(h, gc.Dim) and isinstance(w, gc.Dim) and h is not x.shape[1]
        dx = gc.grad(gc.sum(y), x)
        assert dx.shape == x.shape
        sess = gc.Session(g, device="reference")
        for shape in [(1, 7, 5, 3), (3, 4, 9, 3)]:
            xb = rng.normal(size=shape).astype(np.float32)
            out, grad_x = sess.run([y, dx], {x: xb})
            want = naive_conv2d(xb.astype(np.float64), sess.get_value(f).astype(np.float64),
                                2, "SAME", 1)
            np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-5)
            assert grad_x.shape == shape


@pytest.mark.parametrize("xs,fs,kwargs,error,message", [
    ((1, 5, 5, 3), (3, 3, 2, 4), {}, gc.ShapeError, "3 channels .* expect 2"),
    ((5, 5, 3), (3, 3, 3, 4), {}, gc.ShapeError, "NHWC input of rank 4"),
    ((1, 5, 5, 3), (3, 3, 3), {}, gc.ShapeError, "HWIO filters of rank 4"),
    ((1, 5, 5, 3), (3, 3, 3, 4), {"padding": "FULL"}, gc.GraphcError,
     "padding must be \"SAME\" or \"VALID\", got 'FULL'"),
    ((1, 2, 5, 3), (3, 3, 3, 4), {}, gc.ShapeError, "input height 2 .* output height of 0"),
    ((1, 5, 5, 3), (2, 2, 3, 4), {"dilations": 5}, gc.ShapeError, "output height of 0"),
    ((1, 5, 5, 3), (2, 2, 3, 4), {"strides": 0}, gc.GraphcError,
     r"strides must be a positive int .* got \(0, 0\)"),
    ((1, 5, 5, 3), (2, 2, 3, 4), {"strides": (1, 2, 1)}, gc.GraphcError, "strides must be"),
])
def test_conv2d_build_errors(xs, fs, kwargs, error, message):
    with gc.Graph().as_default():
        x = gc.placeholder(gc.float32, xs)
        f = gc.placeholder(gc.float32, fs)
        with pytest.raises(error, match=message) as info:
            gc.nn.conv2d(x, f, **kwargs)
        assert "[conv2d]" in str(info.value) and "test_nn_ops.py" in str(info.value)


def test_conv2d_dtype_errors():
    with gc.Graph().as_default():
        x = gc.placeholder(gc.float32, (1, 5, 5, 3))
        with pytest.raises(gc.DTypeError, match="float32, float64"):
            gc.nn.conv2d(x, gc.placeholder(gc.float64, (3, 3, 3, 1)))
        with pytest.raises(gc.DTypeError, match="int32"):
            gc.nn.conv2d(gc.placeholder(gc.int32, (1, 5, 5, 3)), x)


# ---- pooling -----------------------------------------------------------------------------------
POOL_CASES = [  # (x shape, ksize, stride, padding)
    ((2, 7, 7, 3), 2, 2, "VALID"),
    ((2, 7, 7, 3), 2, 2, "SAME"),
    ((1, 7, 5, 2), 3, 2, "SAME"),
    ((1, 7, 5, 2), 3, 1, "VALID"),
    ((1, 6, 6, 1), 3, 3, "SAME"),
    ((3, 1, 1, 2), 1, 1, "VALID"),
    ((1, 1, 7, 1), 2, 2, "SAME"),
]


@pytest.mark.parametrize("xs,k,stride,padding", POOL_CASES)
def test_pools_match_per_window_loop(xs, k, stride, padding):
    x = rng.normal(size=xs).astype(np.float32)
    mx, av = evaluate(lambda a: [gc.nn.max_pool2d(a, k, stride, padding),
                                 gc.nn.avg_pool2d(a, k, stride, padding)], x)
    np.testing.assert_array_equal(mx, naive_pool(x, k, stride, padding, np.max))
    np.testing.assert_allclose(av, naive_pool(x.astype(np.float64), k, stride, padding,
                                              np.mean), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("xs,k,stride,padding", POOL_CASES[:5])
@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d"])
def test_pool_gradients(xs, k, stride, padding, op):
    x = rng.permutation(np.prod(xs)).reshape(xs) / 7.0  # distinct: no ties for the max
    check_grad(lambda a: getattr(gc.nn, op)(a, k, stride, padding), x[:1])


def test_pools_take_separate_height_and_width_sizes():
    x = rng.permutation(2 * 7 * 6 * 2).reshape(2, 7, 6, 2) / 5.0
    got = evaluate(lambda a: gc.nn.max_pool2d(a, (3, 1), (2, 3), "SAME"), x)
    assert got.shape == (2, 4, 2, 2)
    np.testing.assert_array_equal(got[:, 1, 0], x[:, 1:4, 0].max(axis=1))
    check_grad(lambda a: gc.nn.avg_pool2d(a, (3, 1), (2, 3), "SAME"), x[:1])


def test_max_pool_gradient_goes_to_first_of_tied_maxima():
    x = np.array([[2.0, 5.0, 5.0, 1.0],
                  [5.0, 0.0, 3.0, 5.0],
                  [1.0, 1.0, 1.0, 1.0]]).reshape(1, 3, 4, 1)
    g = np.array([[10.0, 20.0], [30.0, 40.0]]).reshape(1, 2, 2, 1)
    dx = evaluate(lambda a, b: gc.nn.max_pool2d_grad(a, b, 2, 2, "SAME"), x, g)
    want = np.array([[0, 10, 20, 0],
                     [0, 0, 0, 0],
                     [30, 0, 40, 0]]).reshape(1, 3, 4, 1)
    np.testing.assert_array_equal(dx, want)


def test_avg_pool_counts_only_real_cells_at_the_border():
    x = np.ones((1, 3, 3, 1))
    got = evaluate(lambda a: gc.nn.avg_pool2d(a, 2, 2, "SAME"), x)
    np.testing.assert_array_equal(got, np.ones((1, 2, 2, 1)))
    dx = evaluate(lambda a: gc.grad(gc.sum(gc.nn.avg_pool2d(a, 2, 2, "SAME")), a), x)
    np.testing.assert_allclose(dx[0, :, :, 0], [[0.25, 0.25, 0.5], [0.25, 0.25, 0.5],
                                                 [0.5, 0.5, 1.0]])


def test_avg_pool_second_derivative_and_max_pool_refuses_one():
    x = rng.normal(size=(1, 5, 4, 2))
    check_grad(lambda a: gc.grad(gc.sum(gc.nn.avg_pool2d(a, 2, 2, "SAME") ** 2), a), x)
    with gc.Graph().as_default():
        a = gc.placeholder(gc.float64, (1, 4, 4, 1))
        da = gc.grad(gc.sum(gc.nn.max_pool2d(a, 2, 2) ** 2), a)
        with pytest.raises(gc.GradientError, match="second derivatives of max_pool2d"):
            gc.grad(gc.sum(da), a)


def test_pool_build_errors():
    with gc.Graph().as_default():
        x = gc.placeholder(gc.float32, (None, 4, 4, 3))
        with pytest.raises(gc.ShapeError, match="output width of 0"):
            gc.nn.max_pool2d(gc.placeholder(gc.float32, (1, 8, 2, 1)), 3, 1)
        with pytest.raises(gc.GraphcError, match="ksize must be"):
            gc.nn.avg_pool2d(x, (2, 0), 1)
        with pytest.raises(gc.GraphcError, match="padding must be"):
            gc.nn.avg_pool2d(x, 2, 2, padding="full")
        with pytest.raises(gc.ShapeError, match="rank 4"):
            gc.nn.max_pool2d(gc.placeholder(gc.float32, (4, 4, 3)), 2, 2)
        assert gc.nn.max_pool2d(x, 2, 2).shape == (x.shape[0], 2, 2, 3)


# ---- dropout -----------------------------------------------------------------------------------
def _dropout_graph(rate, seed):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 101))
        return g, x, gc.nn.dropout(x, rate, seed=seed)


@pytest.mark.parametrize("rate", [0.2, 0.7])
def test_dropout_keeps_about_one_minus_rate_and_scales_survivors(rate):
    g, x, y = _dropout_graph(rate, seed=11)
    xb = rng.uniform(1.0, 2.0, size=(97, 101)).astype(np.float32)
    out = gc.Session(g, device="reference").run(y, {x: xb})
    kept = out != 0
    n = kept.size
    # the kept count is binomial(n, 1 - rate): allow five standard deviations
    assert abs(kept.sum() - n * (1 - rate)) < 5 * math.sqrt(n * rate * (1 - rate))
    np.testing.assert_allclose(out[kept], xb[kept] / (1 - rate), rtol=1e-6)


def test_dropout_seed_reproduces_in_a_new_session_and_runs_differ():
    g, x, y = _dropout_graph(0.5, seed=5)
    xb = np.ones((3, 101), np.float32)
    first = gc.Session(g, device="reference")
    a, b = first.run(y, {x: xb}), first.run(y, {x: xb})
    assert not np.array_equal(a, b)
    again = gc.Session(g, device="reference")
    np.testing.assert_array_equal(again.run(y, {x: xb}), a)
    np.testing.assert_array_equal(again.run(y, {x: xb}), b)


def test_dropout_is_the_identity_at_rate_zero_or_inference_and_checks_rate():
    with gc.Graph().as_default():
        x = gc.placeholder(gc.float32, (3,))
        assert gc.nn.dropout(x, 0.0) is x
        assert gc.nn.dropout(x, 0.5, training=False) is x
        for rate in (1.0, -0.1, 2, "0.5"):
            with pytest.raises(gc.GraphcError, match=r"rate must be a number in \[0, 1\)"):
                gc.nn.dropout(x, rate)
        with pytest.raises(gc.DTypeError, match="floating-point"):
            gc.nn.dropout(gc.placeholder(gc.int32, (3,)), 0.5)


def test_dropout_gradient_uses_the_same_mask():
    xb = rng.uniform(1.0, 2.0, size=(4, 101)).astype(np.float32)
    g, x, y = _dropout_graph(0.3, seed=2)
    with g.as_default():
        dx = gc.grad(gc.sum(y), x)
    out, grad_x = gc.Session(g, device="reference").run([y, dx], {x: xb})
    np.testing.assert_allclose(grad_x, (out != 0) / 0.7, rtol=1e-6)
