"""One parallel loop over a kernel's whole nest (graphc/codegen/cuda/collapse_loops.py): the
collapsed kernels compute what the originals do (in the interpreter, fresh random inputs, odd
sizes, batches 1 and 7; as CUDA C on the host against the reference device), the pass leaves
alone what it must (accumulating stores, Gemms, stores of what the nest reads, kinds other than
"loop"), and W5's pools go to one thread per output."""
import numpy as np
import pytest

import graphc as gc
from graphc.codegen.cuda import launch, nvcc
from graphc.codegen.cuda.collapse_loops import collapse_loops
from graphc.codegen.cuda.render import PRELUDE, render_kernel
from graphc.compiler import NativeStep
from graphc.kernels import interpret, ir
from graphc.kernels.interpret import KernelIndexError
from tests.codegen.cuda import programs
from tests.codegen.cuda.host_emulation import compile_for_host, missing_toolchain
from tests.kernels.helpers import Program, run_reference

needs_host = pytest.mark.skipif(missing_toolchain() is not None,
                                reason=f"host emulation of CUDA C: {missing_toolchain()}")

# (x shape with a symbolic batch, ksize, strides, padding, dtype)
POOLS = [((None, 9, 13, 3), 3, 2, "SAME", gc.float32),
         ((None, 7, 8, 5), (3, 2), (2, 3), "SAME", gc.float32),
         ((None, 10, 7, 1), (5, 3), 1, "VALID", gc.float32),
         ((None, 6, 5, 2), 2, 2, "VALID", gc.float16)]
# windows of 72: collapsed whole, a pool's nest would go to warps sharing each window (launch
# kind "warp_rows"); its channels stay a loop in each thread
LONG_WINDOWS = ((None, 12, 11, 3), (9, 8), (1, 2), "VALID", gc.float32)
POOL_OPS = ("max_pool2d", "avg_pool2d", "max_pool2d_grad", "avg_pool2d_grad")


def _pools(shape, ksize, strides, padding, dtype):
    """(original Program, collapsed Program, x) of both pools and their gradients."""
    def build():
        x = gc.placeholder(dtype, shape, name="x")
        top = gc.nn.max_pool2d(x, ksize, strides, padding)
        mean = gc.nn.avg_pool2d(x, ksize, strides, padding)
        return x, [top, mean, gc.grad(gc.sum(top * top) + gc.sum(mean * 0.5), [x])[0]]
    with gc.Graph().as_default():
        x, outs = build()
        original, collapsed = Program(outs), Program(outs)
    for step in collapsed.steps:
        if isinstance(step, NativeStep):
            step.kernels[:] = collapse_loops(step.kernels)
    return original, collapsed, x


def _feed(x, batch, seed):
    rng = np.random.default_rng(seed)
    shape = (batch,) + tuple(x.shape[1:])
    return {x: rng.normal(0, 2, shape).astype(x.dtype.np)}


def _pool_kernels(program):
    return [k for k in program.kernels if any(n.split("/")[-1].startswith(POOL_OPS)
                                              for n in k.nodes)]


@pytest.mark.parametrize("pool", POOLS)
def test_pool_kernels_become_one_loop_over_their_outputs(pool):
    original, collapsed, _ = _pools(*pool)
    before, after = _pool_kernels(original), _pool_kernels(collapsed)
    assert len(after) == 4
    for old, new in zip(before, after):
        loops = [s for s in ir.walk_statements(old.body) if isinstance(s, ir.Loop)][:4]
        assert [launch.launch(k).kind for k in (old, new)] == ["loop", "loop"]
        assert new.body[0].var.name == "_".join(loop.var.name for loop in loops)
        for batch in (1, 7):
            extent = launch.evaluate(launch.launch(new).extent, [batch])
            assert extent == batch * np.prod([loop.extent.value for loop in loops[1:]])
        assert not any(isinstance(s, ir.Loop) for s in new.body[0].body)  # windows: Reduces


def test_pools_of_long_windows_keep_their_channel_loops():
    _, collapsed, _ = _pools(*LONG_WINDOWS)
    kernels = _pool_kernels(collapsed)
    names = [k.body[0].var.name for k in kernels]
    assert names == ["i0_i1_i2", "i0_i1_i2", "i0_i1_i2_i3", "i0_i1_i2_i3"]  # forward, gradients
    assert {launch.launch(k).kind for k in kernels} == {"loop"}


@pytest.mark.parametrize("pool", POOLS + [LONG_WINDOWS])
@pytest.mark.parametrize("batch", [1, 7])
def test_collapsed_pools_in_the_interpreter_match_the_originals(pool, batch):
    original, collapsed, x = _pools(*pool)
    feed = _feed(x, batch, batch)
    want = original.execute(feed)
    for g, w in zip(collapsed.execute(feed), want):
        np.testing.assert_array_equal(g, w)
    tol = 3e-3 if pool[-1] == gc.float16 else 1e-5
    for g, w in zip(want, run_reference(original.fetches, feed)):
        np.testing.assert_allclose(g.astype(np.float32), w.astype(np.float32), rtol=tol,
                                   atol=tol)


@needs_host
@pytest.mark.parametrize("pool", POOLS + [LONG_WINDOWS])
def test_collapsed_pools_in_cuda_c_on_the_host(pool):
    _, collapsed, x = _pools(*pool)
    host = compile_for_host(collapsed.kernels)
    tol = 3e-3 if pool[-1] == gc.float16 else 1e-5
    for batch in (1, 7):
        feed = _feed(x, batch, 10 + batch)
        for g, w in zip(collapsed.execute(feed, host.run),
                        run_reference(collapsed.fetches, feed)):
            assert g.dtype == w.dtype and g.shape == w.shape
            np.testing.assert_allclose(g.astype(np.float32), w.astype(np.float32), rtol=tol,
                                       atol=tol)


@pytest.mark.skipif(nvcc.find() is None, reason="nvcc is not on the PATH")
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_collapsed_kernels_compile_to_ptx_without_warnings(arch):
    kernels = [(f"{k.name}_{n}", k) for n, pool in enumerate(POOLS)
               for k in _pools(*pool)[1].kernels]
    kernels += [(k.name, k) for k in collapse_loops(_handmade())]
    source = "\n\n".join([PRELUDE] + [render_kernel(k, name) for name, k in kernels])
    ptx = nvcc.compile_source(source, arch).decode()
    assert all(f".entry {name}(" in ptx for name, _ in kernels)


def test_w5_pools_take_one_thread_per_output():
    """W5's train step on device "cuda": its pools and their gradients run over
    batch * 13 * 13 * 32 and batch * 5 * 5 * 64 outputs (and 26 x 26 x 32, 11 x 11 x 64
    inputs), not over the batch."""
    rng = np.random.default_rng(0)
    with gc.Graph().as_default():
        x = gc.placeholder(gc.float32, (None, 28, 28, 1), name="x")
        y = gc.placeholder(gc.int32, (None,), name="y")
        shapes = [(3, 3, 1, 32), (32,), (3, 3, 32, 64), (64,), (5 * 5 * 64, 10), (10,)]
        k1, c1, k2, c2, w, b = params = [gc.Variable(rng.normal(0, 0.1, s).astype(np.float32))
                                         for s in shapes]
        h = x
        for k, c in ((k1, c1), (k2, c2)):
            h = gc.nn.max_pool2d(gc.relu(gc.nn.conv2d(h, k) + c), 2, 2)
        loss = gc.mean(gc.nn.sparse_softmax_cross_entropy(gc.reshape(h, (-1, 1600)) @ w + b, y))
        grads = gc.grad(loss, params)
        f = gc.function([x, y], loss, updates=[(p, p - 0.01 * d) for p, d in zip(params, grads)],
                        device="cuda")
    ranges = {}
    for k in [k for s in f._exe.steps if isinstance(s, NativeStep) for k in s.kernels]:
        if any("pool" in n for n in k.nodes):
            shape = launch.launch(k)
            ranges[k.nodes[-1].split("/")[-1]] = (shape.kind, [
                launch.evaluate(shape.extent, [batch]) for batch in (1, 64)])
    assert ranges == {"max_pool2d": ("loop", [13 * 13 * 32, 64 * 13 * 13 * 32]),
                      "max_pool2d_1": ("loop", [5 * 5 * 64, 64 * 5 * 5 * 64]),
                      # the gradients of the second pool, then the first's
                      "max_pool2d_grad": ("loop", [11 * 11 * 64, 64 * 11 * 11 * 64]),
                      "max_pool2d_grad_1": ("loop", [26 * 26 * 32, 64 * 26 * 26 * 32])}, ranges


# ---- kernels written in the kernel IR ------------------------------------------------------
N = ir.Dim(0)
I0, I1, I2, J, R = (ir.Var(n) for n in ("i0", "i1", "i2", "j", "r"))


def _f32(slot, index):
    return ir.Load(slot, index, "float32")


def _at(variables, extents):
    return ir.linear(variables, ir.contiguous_strides(extents))


def _transposed(store=None, accumulate=False, source=1):
    """out[i0, i1, i2] = 2 * x[i0, i1, i2] + 1 (x in slot `source`) in a nest whose outer loops
    are (i1, i0): a "loop" kernel (its stores are not at the nest's flat position)."""
    at = _at([I0, I1, I2], [N, ir.const(3), ir.const(5)])
    value = ir.op("add", ir.op("mul", _f32(source, at), ir.const(2.0, "float32")),
                  ir.const(1.0, "float32"))
    body = (ir.Store(0, at if store is None else store, value, accumulate),)
    body = (ir.Loop(I2, ir.const(5), body),)
    return ir.Kernel("transposed", (ir.Loop(I1, ir.const(3), (ir.Loop(I0, N, body),),
                                            parallel=True),), {})


def _rows():
    """Per (i0, i1): a check of an index, a sum over 3, a short inner loop of two stores;
    and a max over i2 that does not depend on i2's loop, inside it: i2 is not collapsed."""
    row = _at([I0, I1], [N, ir.const(4)])
    index = ir.op("cast", ir.Load(4, row, "int32"), dtype="int64")
    total = ir.Reduce("sum", ((R, ir.const(3)),), _f32(1, ir.add(ir.mul(row, ir.const(3)), R)),
                      "float32")
    inner = ir.Loop(J, ir.const(2), (
        ir.Store(3, _at([I0, I1, J], [N, ir.const(4), ir.const(2)]),
                 ir.op("mul", total, _f32(5, J))),))
    checked = ir.Kernel("checked_rows", (ir.Loop(I0, N, (ir.Loop(I1, ir.const(4), (
        ir.Check(ir.op("less", index, ir.const(5), dtype="bool"), 0, index),
        ir.Store(2, row, ir.op("add", total, _f32(5, index))), inner)),), parallel=True),),
                        {})
    at = _at([I0, I1, I2], [N, ir.const(4), ir.const(3)])
    top = ir.Reduce("max", ((R, ir.const(3)),), _f32(1, ir.add(ir.mul(row, ir.const(3)), R)),
                    "float32")
    centred = ir.Kernel("centred", (ir.Loop(I0, N, (ir.Loop(I1, ir.const(4), (ir.Loop(
        I2, ir.const(3), (ir.Store(6, at, ir.op("sub", _f32(1, at), top)),)),)),),
        parallel=True),), {})
    return [checked, centred]


def _handmade():
    return [_transposed()] + _rows()


def _buffers(rng, n):
    """Buffers of the handmade kernels for dim 0 = n."""
    return [rng.normal(size=n * 15).astype(np.float32),
            rng.normal(size=n * 15).astype(np.float32),
            rng.normal(size=n * 4).astype(np.float32),
            rng.normal(size=n * 8).astype(np.float32),
            rng.integers(0, 5, n * 4).astype(np.int32),
            rng.normal(size=5).astype(np.float32),
            rng.normal(size=n * 12).astype(np.float32)]


def _same_as_original(original, collapsed, buffers, n):
    want, got = [b.copy() for b in buffers], [b.copy() for b in buffers]
    interpret.run_kernel(original, want, [n])
    interpret.run_kernel(collapsed, got, [n])
    for slot, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_array_equal(g, w, err_msg=f"{original.name}: slot {slot}")


@pytest.mark.parametrize("n", [1, 7])
def test_handmade_nests_collapse_and_compute_the_same(n):
    kernels = _handmade()
    collapsed = collapse_loops(kernels)
    outer = [k.body[0].var.name for k in collapsed]
    assert outer == ["i1_i0_i2", "i0_i1", "i0_i1"]
    assert [launch.launch(k).kind for k in kernels + collapsed] == ["loop"] * 6
    for before, after in zip(kernels, collapsed):
        _same_as_original(before, after, _buffers(np.random.default_rng(n), n), n)
    # the centred rows' max is computed once per (i0, i1), in front of the i2 loop left
    inner = collapsed[2].body[0].body[0]
    assert isinstance(inner, ir.Loop) and inner.var == I2
    # stores at the row-major position of the collapsed variables store at the new one's
    assert collapsed[1].body[0].body[1].index == ir.Var("i0_i1")


def test_a_failed_check_reports_the_same_error():
    kernel = _rows()[0]
    collapsed = collapse_loops([kernel])[0]
    for k in (kernel, collapsed):
        buffers = _buffers(np.random.default_rng(3), 7)
        buffers[4][13] = 9
        with pytest.raises(KernelIndexError) as err:
            interpret.run_kernel(k, buffers, [7])
        assert (err.value.what, err.value.value) == (0, 9)


@pytest.mark.parametrize("variant,depth", [
    ("plain", 3), ("accumulating", 0), ("reads what it stores", 0), ("index without i2", 2),
    ("index without i0", 1), ("index not row-major", 0), ("two indices for one buffer", 0)])
def test_collapses_only_independent_iterations(variant, depth):
    kernel = {
        "plain": _transposed(),
        "accumulating": _transposed(accumulate=True),
        "reads what it stores": _transposed(source=0),  # out = 2 * out + 1
        "index without i2": _transposed(_at([I0, I1], [N, ir.const(3)])),
        "index without i0": _transposed(_at([I1, I2], [ir.const(3), ir.const(5)])),
        "index not row-major": _transposed(ir.add(ir.mul(I0, ir.const(3)), ir.add(I1, I2))),
    }.get(variant)
    if variant == "two indices for one buffer":
        loop = _transposed().body[0]
        store = loop.body[0].body[0].body[0]
        second = ir.Store(0, _at([I1, I0, I2], [ir.const(3), N, ir.const(5)]), store.value)
        kernel = ir.Kernel("two", (ir.Loop(I1, ir.const(3), (ir.Loop(I0, N, (ir.Loop(
            I2, ir.const(5), (store, second)),)),), parallel=True),), {})
    assert launch.launch(kernel).kind == "loop"
    [collapsed] = collapse_loops([kernel])
    if depth < 2:
        assert collapsed is kernel
        return
    assert collapsed.body[0].var.name == "_".join(["i1", "i0", "i2"][:depth])
    for n in (1, 7):
        buffers = _buffers(np.random.default_rng(n), n)
        _same_as_original(kernel, collapsed, buffers, n)


def test_gemms_and_scatter_adds_are_left_alone():
    square = ir.Operand(1, ir.mul(ir.add(ir.mul(I0, ir.const(3)), I1), ir.const(4)),
                        ir.const(2), ir.const(1))
    out = ir.Operand(0, ir.mul(ir.add(ir.mul(I0, ir.const(3)), I1), ir.const(4)),
                     ir.const(2), ir.const(1))
    gemms = ir.Kernel("gemms", (ir.Loop(I0, N, (ir.Loop(I1, ir.const(3), (
        ir.Gemm("float32", ir.const(2), ir.const(2), ir.const(2), square, square, out),)),),
        parallel=True),), {})
    case = next(c for c in programs.CASES if c.name == "scatter_adds")
    scatters = [k for k in programs.program(case)[0].kernels if ir.accumulates(k.body)]
    assert len(scatters) == 6 and launch.launch(gemms).kind == "loop"
    kernels = [gemms] + scatters
    assert all(a is b for a, b in zip(collapse_loops(kernels), kernels))


def test_only_loop_kernels_change_and_they_stay_loop_kernels():
    changed = 0
    for case, program in programs.all_programs():
        for before, after in zip(program.kernels, collapse_loops(program.kernels)):
            if after is not before:
                changed += 1
                assert launch.launch(before).kind == launch.launch(after).kind == "loop"
    assert changed >= 10
