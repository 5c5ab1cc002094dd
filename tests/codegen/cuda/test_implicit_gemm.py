"""Convolutions as implicit GEMMs (graphc/codegen/cuda/implicit_operands.py): the patches copies are
dropped and the products read the patches from x as they load their tiles. The rewritten
kernels run in the interpreter and as CUDA C on the host (host_emulation.py) against the
reference device, on odd sizes (batches of 1 and 7, strides, SAME and VALID, dilation, 1x1
filters, a symbolic batch), and compile to PTX for sm_80 and sm_90 without warnings."""
import math

import numpy as np
import pytest

import graphc as gc
from graphc.codegen.cuda import nvcc
from graphc.codegen.cuda.implicit_operands import gather_copies
from graphc.codegen.cuda.render import PRELUDE, render_kernel
from graphc.compiler import NativeStep
from graphc.kernels import conv_rules, interpret, ir
from tests.codegen.cuda.host_emulation import compile_for_host, missing_toolchain
from tests.kernels.helpers import Program, run_reference

needs_host = pytest.mark.skipif(missing_toolchain() is not None,
                                reason=f"host emulation of CUDA C: {missing_toolchain()}")

# (x shape, filter shape, strides, padding, dilations)
CONVS = [((7, 9, 8, 3), (3, 2, 3, 5), 2, "SAME", 1),
         ((1, 9, 8, 1), (3, 3, 1, 3), 1, "VALID", 2),
         ((7, 5, 6, 5), (1, 1, 5, 17), 3, "SAME", 1),
         ((1, 17, 19, 4), (5, 3, 4, 70), (2, 1), "SAME", (1, 2))]


def _program(xs, fs, strides, padding, dilations, dtype=gc.float32):
    """The three conv ops of one configuration (x's batch symbolic), with a fused bias+relu
    epilogue, as a Program whose copies the products read in place; and its placeholders."""
    kw = dict(strides=strides, padding=padding, dilations=dilations)
    with gc.Graph().as_default():
        x = gc.placeholder(dtype, (None,) + xs[1:], name="x")
        f = gc.placeholder(dtype, fs, name="f")
        b = gc.placeholder(dtype, fs[3:], name="b")
        y = gc.nn.conv2d(x, f, **kw)
        dy = gc.placeholder(dtype, (None,) + tuple(y.shape[1:]), name="dy")
        outs = [gc.relu(y + b), gc.nn.conv2d_backprop_input(x, f, dy, **kw),
                gc.nn.conv2d_backprop_filter(x, f, dy, **kw)]
        program = Program(outs)
    assert not program.unsupported
    before = len(program.kernels)
    dropped = gather_copies([s.kernels for s in program.steps if isinstance(s, NativeStep)],
                            program.slots)
    return program, (x, f, b, dy), before, dropped


def _feed(phs, xs, batch, rng, dtype=np.float32):
    x, f, b, dy = phs
    shapes = {x: (batch,) + xs[1:], f: f.shape, b: b.shape, dy: (batch,) + tuple(dy.shape[1:])}
    return {t: rng.uniform(-1, 1, s).astype(dtype) for t, s in shapes.items()}


def _gathered(program):
    return [o for k in program.kernels for s in ir.walk_statements(k.body)
            if isinstance(s, ir.Gemm) for o in (s.a, s.b) if isinstance(o, ir.Gathered)]


def _compare(program, feed, run_kernel, tol):
    got = program.execute(feed, run_kernel)
    for g, w in zip(got, run_reference(program.fetches, feed)):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(g.astype(np.float32), w.astype(np.float32), rtol=tol,
                                   atol=tol * max(1.0, float(np.abs(w).max())))


@pytest.mark.parametrize("conv", CONVS)
def test_patches_copies_are_dropped_and_products_read_x(conv):
    program, phs, before, dropped = _program(*conv)
    # conv2d's and the filter gradient's patches; their scratch is used by no kernel now
    # (conv2d sums the taps of small patches in place: it copies none)
    direct = math.prod(conv[1][:3]) <= conv_rules.DIRECT_PATCH
    copies = 1 if direct else 2
    assert len(dropped) == copies and len(program.kernels) == before - copies
    gathered = _gathered(program)
    assert sorted(o.along for o in gathered) == (["row"] if direct else ["col", "row"])
    x_slot = program.slots.buffers[phs[0].node.id, 0]
    assert all(x_slot in {e.buffer for e in _loads(o.value)} for o in gathered)
    for k in program.kernels:
        used = {e.buffer for e in _loads_of(k)} | {
            s.buffer for s in ir.walk_statements(k.body) if isinstance(s, ir.Store)} | {
            b for s in ir.walk_statements(k.body) if isinstance(s, ir.Gemm)
            for b in ir.operand_buffers(s) + [s.c.buffer]}
        assert not used & dropped


def _loads(e):
    todo, out = [e], []
    while todo:
        x = todo.pop()
        if isinstance(x, ir.Load):
            out.append(x)
        todo.extend(ir.children(x))
    return out


def _loads_of(kernel):
    return [x for e in ir.statement_exprs(kernel.body) for x in _loads(e)]


@pytest.mark.parametrize("conv", CONVS)
@pytest.mark.parametrize("batch", [1, 7])
def test_the_interpreter_runs_implicit_products_as_the_reference(conv, batch):
    program, phs, _, _ = _program(*conv)
    _compare(program, _feed(phs, conv[0], batch, np.random.default_rng(batch)),
             interpret.run_kernel, 1e-5)


@needs_host
@pytest.mark.parametrize("conv", CONVS)
def test_implicit_products_in_cuda_c_on_the_host(conv):
    program, phs, _, _ = _program(*conv)
    host = compile_for_host(program.kernels)
    for batch in (1, 7):
        _compare(program, _feed(phs, conv[0], batch, np.random.default_rng(batch)), host.run,
                 1e-5)


@needs_host
def test_float16_convolutions_on_the_tensor_cores():
    """float16 conv2d and its filter gradient: products of half operands on wmma, summed
    in float32 and rounded once, the patches gathered from x into the half tiles."""
    # patches of 27 entries: a Gemm's (smaller ones conv2d sums in place)
    program, phs, _, _ = _program((7, 9, 8, 3), (3, 3, 3, 33), 2, "SAME", 1, gc.float16)
    x_slot = program.slots.buffers[phs[0].node.id, 0]
    patches = [s for k in program.kernels for s in ir.walk_statements(k.body)
               if isinstance(s, ir.Gemm) and any(isinstance(o, ir.Gathered) and x_slot in {
                   e.buffer for e in _loads(o.value)} for o in (s.a, s.b))]
    assert len(patches) == 2 and {g.dtype for g in patches} == {"float16"}
    sources = "\n".join(render_kernel(k) for k in program.kernels)
    assert "wmma::mma_sync" in sources
    host = compile_for_host(program.kernels)
    for batch in (1, 7):
        _compare(program, _feed(phs, (7, 9, 8, 3), batch, np.random.default_rng(batch),
                                np.float16), host.run, 3e-3)


@pytest.mark.skipif(nvcc.find() is None, reason="nvcc is not on the PATH")
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_implicit_products_compile_to_ptx_without_warnings(arch):
    kernels = []
    for n, conv in enumerate(CONVS):
        program = _program(*conv)[0]
        kernels += [(f"{k.name}_{n}", k) for k in program.kernels]
    half = _program(*CONVS[0], dtype=gc.float16)[0]
    kernels += [(f"{k.name}_half", k) for k in half.kernels]
    source = "\n\n".join([PRELUDE] + [render_kernel(k, name) for name, k in kernels])
    ptx = nvcc.compile_source(source, arch).decode()
    assert all(f".entry {name}(" in ptx for name, _ in kernels)


def _broadcast_operands():
    """Products of operands gathered from values constant along one side (a broadcast row,
    a broadcast column, a broadcast scalar), as a Program; and their placeholders."""
    with gc.Graph().as_default():
        row = gc.placeholder(gc.float32, (7,), name="row")
        col = gc.placeholder(gc.float32, (5, 1), name="col")
        s = gc.placeholder(gc.float32, (), name="s")
        w = gc.placeholder(gc.float32, (7, 9), name="w")
        outs = [gc.matmul(gc.broadcast_to(row * 2, (5, 7)), w),
                gc.matmul(gc.broadcast_to(gc.exp(col), (5, 7)), w),
                gc.matmul(w, gc.broadcast_to(gc.exp(s), (9, 3)))]
        program = Program(outs)
    gather_copies([st.kernels for st in program.steps if isinstance(st, NativeStep)],
                  program.slots)
    return program, (row, col, s, w)


@pytest.mark.skipif(nvcc.find() is None, reason="nvcc is not on the PATH")
def test_operands_constant_along_a_side_compile_without_warnings_and_run():
    """Such an operand's value reads no index on that side: the CUDA C binds only the index
    it reads (nvcc refuses an unread one), and the products still give the reference's."""
    program, (row, col, s, w) = _broadcast_operands()
    assert _gathered(program)
    source = "\n\n".join([PRELUDE] + [render_kernel(k) for k in program.kernels])
    for arch in ("sm_80", "sm_90"):
        nvcc.compile_source(source, arch)
    rng = np.random.default_rng(3)
    feed = {row: rng.uniform(-1, 1, 7).astype(np.float32),
            col: rng.uniform(-1, 1, (5, 1)).astype(np.float32),
            s: np.float32(-0.5), w: rng.uniform(-1, 1, (7, 9)).astype(np.float32)}
    _compare(program, feed, interpret.run_kernel, 1e-5)
    if missing_toolchain() is None:
        _compare(program, feed, compile_for_host(program.kernels).run, 1e-5)
