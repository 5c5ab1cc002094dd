"""Loop metadata: a loop that carries no value is vectorized without interleaving, a reduction
that accumulates in a wider type than its values (float32 sums in double) takes whole vectors
of its values, other reduction loops keep LLVM's choice; each hint is its loop's own and LLVM
takes it (the loop still runs on whole vectors, and computes what numpy does)."""
import ctypes

import numpy as np
from llvmlite import ir as ll

from graphc.codegen.llvm import jit
from graphc.codegen.llvm.emit import KernelEmitter
from graphc.kernels import ir

ROWS, COLS = ir.Var("r"), ir.Var("c")


def row_kernel(n):
    """out(1)[r, c] = exp(x(0)[r, c]) for c < n, then sums(2)[r] = sum over c of x[r, c]."""
    at = ir.add(ir.mul(ROWS, ir.const(n)), COLS)
    k = ir.Var("k")
    total = ir.Reduce("sum", ((k, ir.const(n)),),
                      ir.Load(0, ir.add(ir.mul(ROWS, ir.const(n)), k), "float32"), "float32")
    body = (ir.Loop(COLS, ir.const(n), (ir.Store(1, at, ir.op("exp", ir.Load(0, at, "float32"))),)),
            ir.Store(2, ROWS, total))
    return ir.Kernel("rows", (ir.Loop(ROWS, ir.Dim(0), body, parallel=True),), {})


def module_of(kernel):
    module = ll.Module(name="hints")
    module.triple = jit.host()[0]
    fn = KernelEmitter(module, kernel, "rows").emit()
    fn.linkage = "external"
    return module, fn


def latch_hints(fn):
    """{loop variable: the latch's llvm.loop metadata or None}."""
    hints = {}
    for block in fn.blocks:
        term = block.instructions[-1]
        if term.opname == "br" and len(term.operands) == 3:
            body = term.operands[1].name
            hints[body.removesuffix(".body")] = term.metadata.get("llvm.loop")
    return hints


def hint(loop):
    """The (option, value) a loop's metadata sets."""
    assert loop.operands[0] is loop               # names itself, as LLVM requires
    return tuple(op.string if hasattr(op, "string") else op.constant
                 for op in loop.operands[1].operands)


def test_loops_that_carry_nothing_are_not_interleaved_and_widened_sums_take_whole_vectors():
    _, fn = module_of(row_kernel(37))
    hints = latch_hints(fn)
    # the float32 sum's loop (in double) computes its values in whole float32 vectors
    assert hint(hints["k"]) == ("llvm.loop.vectorize.width", jit.vector_bits() // 32)
    for var in ("r", "c"):
        assert hint(hints[var]) == ("llvm.loop.interleave.count", 1)
    assert hints["r"] is not hints["c"]           # one identity per loop


def test_reductions_in_their_own_type_keep_llvms_choice():
    k, n = ir.Var("k"), ir.const(9)
    for op, dtype in (("max", "float32"), ("sum", "float64"), ("sum", "int32")):
        total = ir.Reduce(op, ((k, n),), ir.Load(0, ir.add(ir.mul(ROWS, n), k), dtype), dtype)
        kernel = ir.Kernel("rows", (ir.Loop(ROWS, ir.Dim(0), (ir.Store(1, ROWS, total),),
                                            parallel=True),), {})
        _, fn = module_of(kernel)
        assert latch_hints(fn)["k"] is None, (op, dtype)


def test_the_hinted_loop_still_runs_on_whole_vectors():
    module, _ = module_of(row_kernel(1023))
    optimized = jit.optimize_ir(str(module), level=3, unroll=False)
    lanes = jit.vector_bits() // 32
    assert f"<{lanes} x float>" in optimized and "llvm.loop.isvectorized" in optimized


def test_hinted_kernels_compute_as_numpy():
    rng = np.random.default_rng(11)
    for rows, n in [(1, 1), (3, 7), (2, 1023), (5, 16)]:
        module, _ = module_of(row_kernel(n))
        library = jit.load_object(jit.compile_ir(str(module), level=3, unroll=False))
        kernel = library.function("rows", None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64)
        x = rng.standard_normal((rows, n)).astype(np.float32)
        out = np.full((rows, n), np.nan, np.float32)
        sums = np.full(rows, np.nan, np.float32)
        buffers = (ctypes.c_void_p * 3)(x.ctypes.data, out.ctypes.data, sums.ctypes.data)
        dims = (ctypes.c_int64 * 1)(rows)
        error = (ctypes.c_int64 * 2)()
        ctx = (ctypes.c_void_p * 3)(ctypes.addressof(buffers), ctypes.addressof(dims),
                                    ctypes.addressof(error))
        kernel(ctypes.addressof(ctx), 0, rows)
        np.testing.assert_allclose(out, np.exp(x), rtol=1e-6)
        np.testing.assert_allclose(sums, x.sum(axis=1, dtype=np.float64), rtol=1e-5, atol=1e-5)
