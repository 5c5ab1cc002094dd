"""The convolution ops lowered to kernel IR (patches copy, Gemm, gather or epilogue), run by the
interpreter against the reference device on odd sizes, symbolic sizes and fused neighbours."""
import numpy as np
import pytest

import graphc as gc
from graphc.kernels import conv_rules, ir
from tests.kernels.helpers import assert_matches_reference
from tests.ops.test_conv_native import run_native

rng = np.random.default_rng(17)


def check(build, arrays, shapes=None, rtol=1e-5):
    """build(*placeholders) -> tensors, run as kernels by the interpreter and by the reference,
    none of them left to the references. Returns the Program."""
    g = gc.Graph()
    with g.as_default():
        phs = [gc.placeholder(gc.as_dtype(a.dtype), s or a.shape, name=f"in{i}")
               for i, (a, s) in enumerate(zip(arrays, shapes or [None] * len(arrays)))]
        out = build(*phs)
        outs = list(out) if isinstance(out, (list, tuple)) else [out]
        # of the finite values: inf and NaN must come out where the reference has them
        scale = max(float(np.abs(a, where=np.isfinite(a), out=np.zeros(a.shape)).max(initial=0))
                    for a in arrays) ** 2
        return assert_matches_reference(outs, dict(zip(phs, arrays)), rtol=rtol,
                                        atol=rtol * scale * 10)


def gemms(program):
    def walk(body):
        for s in body:
            if isinstance(s, ir.Gemm):
                yield s
            elif isinstance(s, ir.Loop):
                yield from walk(s.body)
    return [g for k in program.kernels for g in walk(k.body)]


@pytest.mark.parametrize("xs,fs,stride,padding,dilation", [
    ((7, 33, 17, 3), (5, 2, 3, 5), 2, "SAME", 1),
    ((1, 9, 8, 1), (3, 3, 1, 3), 1, "VALID", 2),
    ((7, 5, 6, 5), (1, 1, 5, 1), 3, "SAME", 1),
    ((2, 6, 7, 7), (2, 2, 7, 3), 1, "VALID", 1),
])
def test_each_op_is_a_copy_a_gemm_and_a_gather_or_a_direct_sum(xs, fs, stride, padding, dilation):
    x, f = rng.normal(size=xs).astype(np.float32), rng.normal(size=fs).astype(np.float32)
    kw = dict(strides=stride, padding=padding, dilations=dilation)
    with gc.Graph().as_default():
        ys = gc.nn.conv2d(gc.placeholder(gc.float32, xs), gc.placeholder(gc.float32, fs),
                          **kw).shape
    g = rng.normal(size=ys).astype(np.float32)
    forward = check(lambda a, b: gc.nn.conv2d(a, b, **kw), [x, f])
    backward = check(lambda a, b, c: [gc.nn.conv2d_backprop_input(a, b, c, **kw),
                                      gc.nn.conv2d_backprop_filter(a, b, c, **kw)], [x, f, g])
    # patches + Gemm, or one loop summing small patches' taps; (Gemm + gather, or a gather
    # of few taps x output channels summed in place) and (patches + Gemm)
    direct = np.prod(fs[:3]) <= conv_rules.DIRECT_PATCH
    assert (len(forward.kernels), len(gemms(forward))) == ((1, 0) if direct else (2, 1))
    direct = np.prod(fs[:2]) * fs[3] <= conv_rules.DIRECT_PATCH
    assert (len(backward.kernels), len(gemms(backward))) == ((3, 1) if direct else (4, 2))


def test_symbolic_sizes_and_float64():
    x = rng.normal(size=(3, 10, 7, 2))
    f, g = rng.normal(size=(3, 2, 2, 4)), rng.normal(size=(3, 5, 4, 4))
    shapes = [(None, None, None, 2), None, (None, None, None, 4)]

    def ops(a, b, c):
        return [gc.nn.conv2d(a, b, 2, "SAME"), gc.nn.conv2d_backprop_input(a, b, c, 2, "SAME"),
                gc.nn.conv2d_backprop_filter(a, b, c, 2, "SAME")]
    check(ops, [x, f, g], shapes, rtol=1e-12)
    # filters of symbolic size: the input gradient sums its taps in a Reduce
    program = check(ops, [x, f, g], [shapes[0], (None, None, 2, 4), shapes[2]], rtol=1e-12)
    values = [e for k in program.kernels for e in ir.statement_exprs(k.body)]
    assert any(isinstance(e, ir.Reduce) for e in values)


def test_prologues_are_computed_into_the_operands_and_epilogues_after_the_product():
    x, f, b = (rng.normal(size=s).astype(np.float32) for s in ((2, 7, 6, 3), (3, 3, 3, 4), (4,)))
    program = check(lambda a, w, c: gc.relu(gc.nn.conv2d(gc.exp(a * 0.5), w * 2.0, 1, "SAME")
                                            + c), [x, f, b])
    assert len(gemms(program)) == 1
    # the scaled filters, the patches of exp(x / 2), the Gemm, bias and relu: one group
    assert len(program.compilation.partition.groups) == 1


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precisions_multiply_in_the_targets_gemm_dtype(dtype):
    """conv2d and its filter gradient multiply half operands where the target's Gemm takes
    them (these tests' Slots take every dtype, as CUDA's); the input gradient's product runs
    in float32, since its gather sums the taps in the product's dtype."""
    # patches of 27 entries: conv2d multiplies them in a Gemm (smaller ones: a direct sum)
    x, f = rng.normal(size=(2, 7, 6, 3)).astype(np.float32), rng.normal(size=(3, 3, 3, 4))
    g = rng.normal(size=(2, 7, 6, 4)).astype(np.float32)

    def convs(a, w, dy):
        a, w, dy = (gc.cast(t, dtype) for t in (a, w, dy))
        return [gc.nn.conv2d(a, w, 1, "SAME"), gc.nn.conv2d_backprop_filter(a, w, dy, 1, "SAME"),
                gc.nn.conv2d_backprop_input(a, w, dy, 1, "SAME")]
    program = check(convs, [x, f.astype(np.float32), g], rtol=2e-2)
    assert [g.dtype for g in gemms(program)] == [dtype, dtype, "float32"]


@pytest.mark.parametrize("batch", [1, None])
@pytest.mark.parametrize("channels", [7, 1])  # patches of 42 (copied), of 6 (summed in place)
def test_threads_split_the_patch_copy_or_the_direct_loop_by_image_rows(batch, channels):
    x = rng.normal(size=(3, 11, 6, channels))
    f = rng.normal(size=(3, 2, channels, 4))
    program = check(lambda a, b: gc.nn.conv2d(a, b, 2, "VALID"), [x[:batch or 3], f],
                    [(batch, 11, 6, channels), None], rtol=1e-12)
    copy = program.kernels[0].parallel_loop
    # 5 output rows per image: 5 rows in all for one image, batch * 5 for a symbolic batch
    if batch:
        assert copy.extent == ir.const(5)
    else:
        assert copy.extent.name == "mul" and isinstance(copy.extent.args[0], ir.Dim)
        assert copy.extent.args[1] == ir.const(5)


@pytest.mark.parametrize("xs,fs,stride,padding,dilation", [
    ((3, 28, 27, 1), (3, 3, 1, 32), 1, "VALID", 1),    # the first layer of a CNN
    ((2, 11, 9, 1), (5, 5, 1, 7), (2, 3), "SAME", 1),  # odd sizes, strides, padding
    ((1, 9, 10, 2), (2, 3, 2, 1), 1, "SAME", (2, 1)),  # one output channel, dilations
    ((2, 7, 6, 4), (1, 1, 4, 5), 2, "VALID", 1),       # 1x1
])
def test_small_patches_sum_their_taps_with_the_epilogue_in_one_loop(xs, fs, stride, padding,
                                                                   dilation):
    x, f = rng.normal(size=xs).astype(np.float32), rng.normal(size=fs).astype(np.float32)
    b = rng.normal(size=fs[3:]).astype(np.float32)
    x[0, 0, 0, 0], x[-1, -1, -1, -1], x[0, 1, 1, 0] = np.inf, np.nan, -0.0

    def conv(a, w, c):
        return gc.relu(gc.nn.conv2d(a, w, stride, padding, dilation) + c)
    program = check(conv, [x, f, b], [(None,) + xs[1:], None, None])
    assert len(program.kernels) == 1 and not gemms(program)
    for batch in (1, 0):  # a run-time batch of one image, and of none
        check(conv, [x[:batch], f, b], [(None,) + xs[1:], None, None])


@pytest.mark.parametrize("xs,fs,stride,padding,dilation", [
    ((3, 13, 12, 6), (3, 3, 6, 1), 1, "VALID", 1),     # one output channel
    ((2, 11, 9, 5), (3, 2, 5, 2), (2, 3), "SAME", 1),  # odd sizes, strides, padding
    ((1, 9, 10, 2), (2, 3, 2, 3), 1, "SAME", (2, 1)),  # dilations
    ((2, 7, 6, 4), (1, 1, 4, 5), 2, "VALID", 1),       # 1x1, strided: cells no output reads
])
def test_input_gradients_of_few_taps_and_channels_sum_them_in_place(xs, fs, stride, padding,
                                                                    dilation):
    x, f = rng.normal(size=xs).astype(np.float32), rng.normal(size=fs).astype(np.float32)
    with gc.Graph().as_default():
        ys = gc.nn.conv2d(gc.placeholder(gc.float32, xs), gc.placeholder(gc.float32, fs),
                          stride, padding, dilation).shape
    g = rng.normal(size=ys).astype(np.float32)
    extreme = g.copy()
    extreme[0, 0, 0, 0], extreme[-1, -1, -1, -1], extreme[0, -1, 0, 0] = np.inf, np.nan, -0.0

    def grad(a, w, dy):
        return [gc.exp(gc.nn.conv2d_backprop_input(a, w, dy * 0.5, stride, padding, dilation))]
    program = check(grad, [x, f, extreme])
    # dy * 0.5 computed where it is read, exp in the same loop, threads over images x rows
    assert len(program.kernels) == 1 and not gemms(program)
    assert program.kernels[0].parallel_loop.extent == ir.const(xs[0] * xs[1])
    # compiled for the cpu, a run-time batch: of several images, of one, of none
    shapes = [(None,) + xs[1:], None, (None,) + ys[1:]]
    for batch in (None, 1, 0):
        run_native(grad, [x[:batch], f, g[:batch]], shapes)


def test_small_patches_compute_prologues_where_the_taps_read_them():
    x, f, b = (rng.normal(size=s).astype(np.float32) for s in ((2, 7, 6, 1), (3, 3, 1, 4), (4,)))
    program = check(lambda a, w, c: gc.relu(gc.nn.conv2d(gc.exp(a * 0.5), w * 2.0, 1, "SAME")
                                            + c), [x, f, b])
    assert len(program.kernels) == 1 and len(program.compilation.partition.groups) == 1


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_small_patches_sum_half_precision_taps_in_float32(dtype):
    x, f = rng.normal(size=(2, 9, 8, 1)).astype(np.float32), rng.normal(size=(3, 3, 1, 4))
    program = check(lambda a, w: gc.nn.conv2d(gc.cast(a, dtype), gc.cast(w, dtype), 1, "SAME"),
                    [x, f.astype(np.float32)], rtol=2e-2)
    sums = {e.dtype for e in _exprs(program) if isinstance(e, ir.Op) and e.name == "add"
            and e.dtype != ir.INDEX}  # not the index arithmetic
    assert sums == {"float32"}


def _exprs(program):
    todo = [e for k in program.kernels for e in ir.statement_exprs(k.body)]
    while todo:
        e = todo.pop()
        yield e
        todo.extend(ir.children(e))
