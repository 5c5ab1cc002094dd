"""Repeated copies into scratch buffers: a convolution's filter gradient multiplies the patches
the forward convolution copied; copies that would read changed buffers, or that differ, stay."""
import numpy as np
import pytest

import graphc as gc
from graphc.compiler import NativeStep
from graphc.kernels import ir
from graphc.kernels.access import loads
from graphc.kernels.lower import Slots
from graphc.kernels.shared_copies import share_copies
from tests.ops.test_conv_native import assert_close

rng = np.random.default_rng(23)


# ---- on hand-made kernels ----------------------------------------------------------------------
def copy(source, target, name):
    """target[i] = source[2 * i] for i < 8."""
    i = ir.Var("i")
    value = ir.Load(source, ir.mul(i, ir.const(2)), "float32")
    return ir.Kernel(name, (ir.Loop(i, ir.const(8), (ir.Store(target, i, value),), True),), {})


def product(a, c, name):
    """c (2 x 2) = a (2 x 4) @ a^T."""
    operand = ir.Operand
    gemm = ir.Gemm("float32", ir.const(2), ir.const(2), ir.const(4),
                   operand(a, ir.const(0), ir.const(4), ir.const(1)),
                   operand(a, ir.const(0), ir.const(1), ir.const(4)),
                   operand(c, ir.const(0), ir.const(2), ir.const(1)))
    return ir.Kernel(name, (gemm,), {})


def slots(count):
    s = Slots()
    for _ in range(count):
        s.scratch("float32", (16,))
    return s


def test_a_second_identical_copy_is_dropped_and_its_product_reads_the_first():
    segments = [[copy(0, 1, "a"), product(1, 2, "b")], [copy(0, 3, "c"), product(3, 4, "d")]]
    assert share_copies(segments, slots(5)) == {3: 1}
    assert [k.name for k in segments[0] + segments[1]] == ["a", "b", "d"]
    assert segments[1][0].body[0].a.buffer == 1 and segments[1][0].body[0].b.buffer == 1
    assert segments[1][0].body[0].c.buffer == 4


def test_copies_that_read_a_changed_buffer_differ_or_are_loaded_are_kept():
    i = ir.Var("i")
    scatter = ir.Kernel("s", (ir.Loop(i, ir.const(8), (
        ir.Store(0, i, ir.const(1.0, "float32"), accumulate=True),)),), {})
    changed = [[copy(0, 1, "a"), product(1, 2, "b"), scatter, copy(0, 3, "c"),
                product(3, 4, "d")]]
    other = [[copy(0, 1, "a"), product(1, 2, "b"), copy(5, 3, "c"), product(3, 4, "d")]]
    reread = [[copy(0, 1, "a"), product(1, 2, "b"), copy(0, 3, "c"), copy(3, 4, "e")]]
    for segments in (changed, other, reread):
        names = [k.name for k in segments[0]]
        assert share_copies(segments, slots(6)) == {}
        assert [k.name for k in segments[0]] == names


# ---- on device cpu -----------------------------------------------------------------------------
def kernels_loading(exe, tensor):
    slot = exe.slots.buffer(tensor)
    return [k.name for s in exe.steps if isinstance(s, NativeStep) for k in s.kernels
            if any(load.buffer == slot for load in loads(k))]


@pytest.mark.parametrize("stride,padding", [(1, "VALID"), (2, "SAME")])
def test_the_filter_gradient_multiplies_the_forward_patches(stride, padding):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 13, 9, 3))
        # patches of 27 entries: a Gemm's (smaller ones conv2d sums in place)
        k = gc.Variable(rng.normal(size=(3, 3, 3, 5)).astype(np.float32))
        y = gc.relu(gc.nn.conv2d(x, k, stride, padding))
        loss = gc.sum(y * y)
        dx, dk = gc.grad(loss, [x, k])
    cpu, ref = gc.Session(graph=g, device="cpu"), gc.Session(graph=g, device="reference")
    # x is read by one kernel: the forward's patch copy
    assert len(kernels_loading(cpu.compile([loss, dx, dk], [x]), x)) == 1
    for batch in (1, 7, 2):
        feed = {x: rng.normal(size=(batch, 13, 9, 3)).astype(np.float32)}
        assert_close(cpu.run([loss, dx, dk], feed), ref.run([loss, dx, dk], feed))


def test_patches_of_other_values_are_copied_again():
    """The forward copies relu(x) (fused), the gradient of another convolution copies x."""
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (5, 8, 7, 2))
        k = gc.placeholder(gc.float32, (4, 4, 2, 3))  # patches of 32: a Gemm's
        y = gc.nn.conv2d(gc.relu(x), k)
        dk = gc.nn.conv2d_backprop_filter(x, k, y * 2.0)
    cpu, ref = gc.Session(graph=g, device="cpu"), gc.Session(graph=g, device="reference")
    assert len(kernels_loading(cpu.compile([y, dk], [x, k]), x)) == 2
    feed = {x: rng.normal(size=(5, 8, 7, 2)).astype(np.float32),
            k: rng.normal(size=(4, 4, 2, 3)).astype(np.float32)}
    assert_close(cpu.run([y, dk], feed), ref.run([y, dk], feed))
