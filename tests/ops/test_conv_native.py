"""conv2d and its gradient ops compiled on device="cpu": odd sizes, every attribute, every float
dtype, symbolic sizes, fused prologues and epilogues, each against the reference device and
with no convolution left to run on the host."""
import numpy as np
import pytest

import graphc as gc
from graphc.compiler import HostStep
from tests.helpers import TOLERANCE, check_grad

rng = np.random.default_rng(5)
CONV_OPS = ("conv2d", "conv2d_backprop_input", "conv2d_backprop_filter")


def host_ops(sess, fetches, feeds):
    """The ops of the groups the cpu executable runs through the numpy reference."""
    exe = sess.compile(list(fetches), list(feeds))
    return [n.op for s in exe.steps if isinstance(s, HostStep) for n in s.group.nodes]


def assert_close(got, want, rtol=None):
    """Equal within the dtype's relative tolerance of the largest magnitude: sums of products
    taken in another order differ by rounding relative to their terms, not to their result."""
    for a, b in zip(got, want):
        assert a.shape == b.shape and a.dtype == b.dtype
        tol = rtol or TOLERANCE[b.dtype.name][0]
        scale = float(np.abs(b).max()) if b.size else 0.0
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * scale)


def run_native(build, arrays, shapes=None, rtol=None):
    """build(*placeholders) -> list of tensors, run on cpu and on the reference; asserts the
    values agree and that no convolution ran on the host. `shapes` overrides the placeholders'
    shapes (None for symbolic dims). Returns the cpu's values."""
    g = gc.Graph()
    with g.as_default():
        phs = [gc.placeholder(gc.as_dtype(a.dtype), s or a.shape, name=f"in{i}")
               for i, (a, s) in enumerate(zip(arrays, shapes or [None] * len(arrays)))]
        outs = build(*phs)
    feed = dict(zip(phs, arrays))
    cpu = gc.Session(graph=g, device="cpu")
    assert not set(host_ops(cpu, outs, phs)) & set(CONV_OPS)
    got = cpu.run(outs, feed)
    want = gc.Session(graph=g, device="reference").run(outs, feed)
    assert_close(got, want, rtol)
    return got


def conv_ops(x_shape, f_shape, stride, padding, dilation):
    """build(x, f, g) -> the three ops, and arrays for x, f and the output gradient g."""
    def build(x, f, g):
        kw = dict(strides=stride, padding=padding, dilations=dilation)
        return [gc.nn.conv2d(x, f, **kw), gc.nn.conv2d_backprop_input(x, f, g, **kw),
                gc.nn.conv2d_backprop_filter(x, f, g, **kw)]
    with gc.Graph().as_default():
        out = gc.nn.conv2d(gc.placeholder(gc.float32, x_shape),
                           gc.placeholder(gc.float32, f_shape), stride, padding, dilation)
    arrays = [rng.normal(size=s) for s in (x_shape, f_shape, out.shape)]
    return build, arrays


CASES = [  # (x shape, filter shape, stride, padding, dilation)
    ((1, 33, 17, 3), (3, 3, 3, 5), 1, "SAME", 1),
    ((7, 33, 17, 1), (5, 2, 1, 3), 2, "SAME", 1),
    ((7, 33, 17, 5), (1, 1, 5, 1), 1, "VALID", 1),
    ((1, 33, 17, 5), (5, 2, 5, 3), 2, "VALID", 1),
    ((7, 9, 8, 3), (3, 3, 3, 5), (2, 1), "SAME", (1, 2)),
    ((1, 10, 11, 1), (3, 2, 1, 1), 3, "VALID", 2),
    ((7, 5, 4, 3), (5, 4, 3, 5), 2, "SAME", 1),  # windows wider than the image
    ((1, 1, 1, 1), (1, 1, 1, 1), 1, "VALID", 1),
    ((1, 33, 17, 16), (3, 3, 16, 4), 1, "SAME", 1),  # one image, patches copied by threads
]


@pytest.mark.parametrize("xs,fs,stride,padding,dilation", CASES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_conv_ops_match_the_reference(xs, fs, stride, padding, dilation, dtype):
    build, arrays = conv_ops(xs, fs, stride, padding, dilation)
    run_native(build, [a.astype(dtype) for a in arrays])


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precisions_compute_in_float32(dtype):
    build, arrays = conv_ops((7, 9, 8, 3), (3, 2, 3, 5), 2, "SAME", 1)

    def half(x, f, g):
        return [gc.cast(y, gc.float32) for y in build(*(gc.cast(t, dtype) for t in (x, f, g)))]
    got = run_native(half, [a.astype(np.float32) for a in arrays], rtol=TOLERANCE[dtype][0])
    assert all(np.isfinite(a).all() for a in got)


def test_symbolic_batch_and_image_sizes():
    """One executable for several batches and image sizes: the padding of SAME follows the
    size of each run."""
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, None, None, 3))
        f = gc.placeholder(gc.float32, (3, 2, 3, 4))
        y = gc.nn.conv2d(x, f, 2, "SAME")
        dx, df = gc.grad(gc.sum(y * y), [x, f])
    cpu, ref = gc.Session(graph=g, device="cpu"), gc.Session(graph=g, device="reference")
    assert not set(host_ops(cpu, [y, dx, df], [x, f])) & set(CONV_OPS)
    fv = rng.normal(size=(3, 2, 3, 4)).astype(np.float32)
    for shape in [(1, 7, 5, 3), (7, 4, 9, 3), (2, 33, 17, 3)]:
        feed = {x: rng.normal(size=shape).astype(np.float32), f: fv}
        assert_close(cpu.run([y, dx, df], feed), ref.run([y, dx, df], feed))


def test_prologue_and_epilogue_fuse_into_the_convolution():
    def build(x, f, b):
        h = gc.nn.conv2d(gc.relu(x) * 2.0, f, 1, "SAME")
        return [gc.relu(h + b), gc.nn.conv2d(x, f * 0.5) - 1.0]
    arrays = [rng.normal(size=s).astype(np.float32) for s in ((7, 9, 8, 3), (3, 3, 3, 5), (5,))]
    run_native(build, arrays, shapes=[(None, 9, 8, 3), None, None])


def test_cnn_gradients_run_natively_and_check_against_finite_differences():
    def cnn(x, f1, f2):
        h = gc.relu(gc.nn.conv2d(x, f1, 2, "SAME"))
        return gc.nn.conv2d(h, f2, 1, "VALID", 2)
    arrays = [rng.normal(size=s) for s in ((2, 9, 8, 2), (3, 3, 2, 3), (2, 2, 3, 2))]

    def losses(x, f1, f2):
        y = cnn(x, f1, f2)
        return [y] + gc.grad(gc.sum(y * y), [x, f1, f2])
    run_native(losses, arrays)
    check_grad(cnn, *arrays)
