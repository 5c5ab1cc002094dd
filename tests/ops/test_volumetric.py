"""gc.nn's 3-D convolutions and pools and the transposed convolutions, against per-cell numpy
loops written from TensorFlow's window rule and Keras 3's transposed-convolution rule."""
from itertools import product

import numpy as np
import pytest

import graphc as gc
from tests.helpers import check_grad, evaluate


def tf_geometry(size, k, stride, dilation, padding):
    """(outputs, padding before) of one axis, as TensorFlow pads."""
    span = (k - 1) * dilation + 1
    out = -(-size // stride) if padding == "SAME" else -(-(size - span + 1) // stride)
    return out, max((out - 1) * stride + span - size, 0) // 2


def windows(x, ksize, strides, padding, dilations):
    """Yield (output position, [input positions inside x]) over x's spatial axes."""
    geo = [tf_geometry(n, k, s, d, padding)
           for n, k, s, d in zip(x.shape[1:-1], ksize, strides, dilations)]
    for pos in product(*[range(out) for out, _ in geo]):
        cells = []
        for tap in product(*[range(k) for k in ksize]):
            at = tuple(p * s + t * d - before for p, t, s, d, (_, before)
                       in zip(pos, tap, strides, dilations, geo))
            if all(0 <= i < n for i, n in zip(at, x.shape[1:-1])):
                cells.append((tap, at))
        yield pos, cells, tuple(out for out, _ in geo)


def naive_conv(x, f, strides, padding, dilations):
    out = None
    for pos, cells, shape in windows(x, f.shape[:-2], strides, padding, dilations):
        if out is None:
            out = np.zeros((x.shape[0],) + shape + (f.shape[-1],))
        for tap, at in cells:
            out[(slice(None),) + pos] += x[(slice(None),) + at] @ f[tap]
    return out


def naive_pool(x, ksize, strides, padding, reduce):
    out = None
    for pos, cells, shape in windows(x, ksize, strides, padding, (1,) * len(ksize)):
        if out is None:
            out = np.zeros((x.shape[0],) + shape + (x.shape[-1],))
        out[(slice(None),) + pos] = reduce([x[(slice(None),) + at] for _, at in cells], axis=0)
    return out


def keras_transpose_pads(k, stride, dilation, padding, output_padding):
    """Keras 3's (left, right) padding of the stride-dilated input (its JAX backend's rule)."""
    span = (k - 1) * dilation + 1
    if padding == "VALID":
        output_padding = max(span, stride) - span if output_padding is None else output_padding
        return span - 1, span - 1 + output_padding
    total = stride + span - 2 if output_padding is None else span + span % 2 - 2 + output_padding
    left = min(total // 2 + total % 2, span - 1)
    return left, total - left


def naive_conv_transpose(x, f, strides, padding, dilations, output_padding):
    """Scatter every input cell through the kernel (f (k..., out, in)) into the uncropped
    output, then read it at Keras's offsets (cells beyond it are zeros)."""
    rank = x.ndim - 2
    spans = [(k - 1) * d + 1 for k, d in zip(f.shape[:rank], dilations)]
    full = np.zeros((x.shape[0],) + tuple((n - 1) * s + sp for n, s, sp
                                          in zip(x.shape[1:-1], strides, spans)) + (f.shape[-2],))
    for pos in product(*[range(n) for n in x.shape[1:-1]]):
        for tap in product(*[range(k) for k in f.shape[:rank]]):
            at = tuple(p * s + t * d for p, t, s, d in zip(pos, tap, strides, dilations))
            full[(slice(None),) + at] += x[(slice(None),) + pos] @ f[tap].T
    pads = [keras_transpose_pads(k, s, d, padding, op) for k, s, d, op
            in zip(f.shape[:rank], strides, dilations, output_padding)]
    sizes = [(n - 1) * s + 1 + left + right - sp + 1
             for n, s, (left, right), sp in zip(x.shape[1:-1], strides, pads, spans)]
    out = np.zeros((x.shape[0],) + tuple(sizes) + (f.shape[-2],))
    for pos in product(*[range(n) for n in sizes]):
        at = tuple(p + sp - 1 - left for p, sp, (left, _) in zip(pos, spans, pads))
        if all(0 <= i < n for i, n in zip(at, full.shape[1:-1])):
            out[(slice(None),) + pos] = full[(slice(None),) + at]
    return out


rng = np.random.default_rng(3)
CONV3D = [  # input shape, filter shape, strides, padding, dilations
    ((2, 5, 6, 7, 3), (3, 2, 3, 3, 4), 1, "VALID", 1),
    ((1, 7, 5, 6, 2), (3, 3, 2, 2, 3), (2, 1, 3), "SAME", 1),
    ((2, 6, 7, 5, 2), (2, 3, 3, 2, 2), 1, "SAME", (2, 1, 2)),
    ((1, 9, 4, 5, 1), (4, 1, 2, 1, 2), (3, 2, 2), "VALID", (2, 1, 1)),
]


def triple(v):
    return (v,) * 3 if isinstance(v, int) else v


@pytest.mark.parametrize("xs,fs,strides,padding,dilations", CONV3D)
def test_conv3d_matches_per_cell_loop(xs, fs, strides, padding, dilations):
    x, f = rng.normal(size=xs).astype(np.float32), rng.normal(size=fs).astype(np.float32)
    got = evaluate(lambda a, b: gc.nn.conv3d(a, b, strides, padding.lower(), dilations), x, f)
    want = naive_conv(x.astype(np.float64), f.astype(np.float64), triple(strides), padding,
                      triple(dilations))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_conv3d_with_a_run_time_batch():
    x, f = rng.normal(size=(3, 4, 5, 3, 2)), rng.normal(size=(2, 3, 2, 2, 3))
    g = gc.Graph()
    with g.as_default():
        xp = gc.placeholder(gc.float64, (None, 4, 5, 3, 2))
        y = gc.nn.conv3d(xp, gc.constant(f), (1, 2, 1), "SAME")
        assert y.shape[1:] == (4, 3, 3, 3)
        got = gc.Session(graph=g).run(y, {xp: x})
    np.testing.assert_allclose(got, naive_conv(x, f, (1, 2, 1), "SAME", (1, 1, 1)), 1e-10,
                               1e-10)


@pytest.mark.parametrize("strides,padding,dilations", [(1, "SAME", (2, 1, 1)),
                                                       ((2, 1, 2), "VALID", 1)])
def test_conv3d_gradients(strides, padding, dilations):
    check_grad(lambda a, b: gc.nn.conv3d(a, b, strides, padding, dilations),
               rng.normal(size=(1, 5, 4, 3, 2)), rng.normal(size=(2, 2, 3, 2, 2)))


POOLS = [((2, 5, 6, 7, 3), 2, None, "VALID"), ((1, 7, 5, 4, 2), (3, 2, 3), (2, 2, 1), "SAME"),
         ((2, 4, 5, 5, 1), (3, 3, 2), (1, 2, 3), "SAME"), ((1, 6, 3, 5, 2), (2, 3, 1), 3, "VALID")]


@pytest.mark.parametrize("xs,ksize,strides,padding", POOLS)
def test_pools3d_match_per_cell_loops(xs, ksize, strides, padding):
    x = rng.normal(size=xs).astype(np.float32)
    x.reshape(-1)[::7] = np.inf
    x.reshape(-1)[3::11] = -np.inf
    x.reshape(-1)[5::13] = -0.0
    strides = ksize if strides is None else strides
    got_max, got_avg = evaluate(lambda a: [gc.nn.max_pool3d(a, ksize, strides, padding),
                                           gc.nn.avg_pool3d(a, ksize, strides, padding)], x)
    x64 = x.astype(np.float64)
    want_max = naive_pool(x64, triple(ksize), triple(strides), padding, np.max)
    with np.errstate(invalid="ignore"):
        want_avg = naive_pool(x64, triple(ksize), triple(strides), padding, np.mean)
    np.testing.assert_array_equal(got_max, want_max.astype(np.float32))
    np.testing.assert_allclose(got_avg, want_avg, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op", ["max_pool3d", "avg_pool3d"])
def test_pools3d_gradients(op):
    check_grad(lambda a: getattr(gc.nn, op)(a, (3, 2, 2), (2, 1, 2), "SAME"),
               rng.permutation(120).reshape(1, 5, 4, 3, 2) / 7.0)


TRANSPOSED = [  # input shape, filter shape, strides, padding, dilations, output_padding
    ((2, 4, 5, 3), (3, 2, 2, 3), (2, 3), "VALID", 1, None),
    ((1, 3, 4, 2), (2, 3, 3, 2), 2, "SAME", 1, None),
    ((1, 3, 4, 2), (3, 3, 2, 2), (3, 2), "SAME", 1, (2, 1)),
    ((2, 3, 3, 1), (2, 4, 2, 1), (2, 3), "VALID", 1, (1, 0)),
    ((1, 5, 4, 2), (3, 2, 3, 2), 1, "SAME", (2, 3), None),
    ((1, 4, 3, 2), (2, 3, 1, 2), 1, "VALID", (3, 2), 0),
    ((1, 2, 3, 1), (1, 1, 2, 1), 3, "VALID", 1, None),  # a stride larger than the kernel
]


def pairwise(v, rank):
    return (v,) * rank if isinstance(v, int) or v is None else v


TRANSPOSED += [  # 3-D ones
    ((2, 3, 4, 3, 2), (2, 3, 2, 3, 2), (2, 1, 2), "VALID", 1, None),
    ((1, 4, 3, 2, 1), (3, 2, 2, 2, 1), (3, 2, 1), "SAME", 1, (2, 1, 0)),
    ((1, 3, 3, 4, 2), (2, 2, 3, 1, 2), 1, "SAME", (2, 1, 2), None),
    ((1, 2, 3, 2, 1), (1, 2, 2, 2, 1), (3, 2, 2), "VALID", 1, (1, 0, 1)),
]


@pytest.mark.parametrize("xs,fs,strides,padding,dilations,output_padding", TRANSPOSED)
def test_transposed_convolutions_match_keras_rule(xs, fs, strides, padding, dilations,
                                                  output_padding):
    rank = len(xs) - 2
    op = gc.nn.conv2d_transpose if rank == 2 else gc.nn.conv3d_transpose
    x, f = rng.normal(size=xs).astype(np.float32), rng.normal(size=fs).astype(np.float32)
    got = evaluate(lambda a, b: op(a, b, strides, padding, dilations, output_padding), x, f)
    want = naive_conv_transpose(x.astype(np.float64), f.astype(np.float64),
                                pairwise(strides, rank), padding, pairwise(dilations, rank),
                                pairwise(output_padding, rank))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_transposed_convolution_gradients():
    check_grad(lambda a, b: gc.nn.conv3d_transpose(a, b, (2, 1, 2), "SAME", 1, (1, 0, 0)),
               rng.normal(size=(1, 2, 3, 2, 2)), rng.normal(size=(2, 2, 3, 1, 2)))
    check_grad(lambda a, b: gc.nn.conv2d_transpose(a, b, 1, "VALID", (2, 1)),
               rng.normal(size=(2, 3, 2, 2)), rng.normal(size=(2, 2, 3, 2)))


def test_errors_name_what_is_wrong():
    x = gc.placeholder(gc.float32, (1, 4, 4, 4, 2))
    f = gc.constant(np.zeros((2, 2, 2, 2, 3), np.float32))
    with pytest.raises(gc.ShapeError, match="rank 5"):
        gc.nn.conv3d(x, gc.constant(np.zeros((2, 2, 2, 3), np.float32)))
    with pytest.raises(gc.ShapeError, match="3 spatial axes"):
        gc.nn.max_pool3d(gc.placeholder(gc.float32, (1, 4, 4, 2)), 2, 2)
    with pytest.raises(gc.GraphcError, match="padding"):
        gc.nn.avg_pool3d(x, 2, 2, "FULL")
    with pytest.raises(gc.GraphcError, match="strides"):
        gc.nn.conv3d(x, f, (1, 0, 1))
    with pytest.raises(gc.ShapeError, match="leaves no output"):
        gc.nn.conv3d(x, gc.constant(np.zeros((5, 1, 1, 2, 3), np.float32)))
    with pytest.raises(gc.GraphcError, match="output_padding"):
        gc.nn.conv3d_transpose(x, gc.constant(np.zeros((2, 2, 2, 3, 2), np.float32)), 2,
                               output_padding=2)
    with pytest.raises(gc.ShapeError, match="input channels"):
        gc.nn.conv2d_transpose(gc.placeholder(gc.float32, (1, 3, 3, 4)),
                               gc.constant(np.zeros((2, 2, 3, 2), np.float32)))
