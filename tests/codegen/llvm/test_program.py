"""Programs and the GEMM module they link: which dtypes a program needs, and a declared GEMM
called from one object and defined in another (compiled as programs get it), linked when
loaded."""
import numpy as np
from llvmlite import ir as ll

import graphc as gc
from graphc.codegen.llvm import gemm, jit
from graphc.codegen.llvm.program import (GEMM_PIPELINE, PARALLEL_MIN_WORK, gemm_dtypes,
                                         gemm_module, parallel_extent)
from graphc.kernels import ir
from tests.kernels.helpers import Program


def test_gemm_dtypes_finds_products_inside_loops():
    operand = ir.Operand(0, ir.const(0), ir.const(1), ir.const(1))

    def product(dtype):
        return ir.Gemm(dtype, ir.const(1), ir.const(1), ir.const(1), operand, operand, operand)
    store = ir.Store(0, ir.const(0), ir.Const(1.0, "float32"))
    batched = ir.Loop(ir.Var("b"), ir.const(3), (product("float64"),))
    segments = [[ir.Kernel("a", (store,), {})],
                [ir.Kernel("b", (product("float32"),), {}), ir.Kernel("c", (batched,), {})]]
    assert gemm_dtypes(segments) == ["float32", "float64"]
    assert gemm_dtypes([[ir.Kernel("a", (store,), {})]]) == []


def caller_module(dtype):
    """`void call(args...)`: calls the declared GEMM with its own arguments."""
    module = ll.Module(name="caller")
    module.triple = jit.host()[0]
    callee = gemm.declare_gemm(module, dtype)
    assert gemm.declare_gemm(module, dtype) is callee
    fn = ll.Function(module, callee.function_type, "call")
    builder = ll.IRBuilder(fn.append_basic_block("entry"))
    builder.call(callee, fn.args)
    builder.ret_void()
    return module


def test_a_declared_gemm_links_with_its_module_when_loaded():
    rng = np.random.default_rng(7)
    for dtype in ("float32", "float64"):
        library = jit.load_object(jit.compile_ir(str(caller_module(dtype))),
                                  jit.compile_ir(str(gemm_module(dtype)), **GEMM_PIPELINE))
        call = library.function("call", None, *gemm.gemm_argtypes())
        for m, n, k in [(1, 1, 1), (7, 33, 5), (40, 17, 1023)]:
            a = rng.standard_normal((m, k)).astype(dtype)
            b = rng.standard_normal((k, n)).astype(dtype)
            c = np.full((m, n), np.nan, dtype)
            call(m, n, k, a.ctypes.data, k, 1, b.ctypes.data, n, 1, c.ctypes.data, n, 0, 0, m)
            tol = 1e-4 if dtype == "float32" else 1e-10
            np.testing.assert_allclose(c, a @ b, rtol=tol, atol=tol * np.sqrt(k))


def test_math_functions_count_toward_the_work_that_pays_for_threads():
    """An LSTM step's gates (64 x 256 elements, each through sigmoid and tanh) go to the
    thread pool; the same elements through a multiply-add alone do not."""
    with gc.Graph().as_default():
        z = gc.placeholder(gc.float32, (64, 256), name="z")
        gates = gc.sigmoid(z) * gc.tanh(z * 0.5) + gc.sigmoid(z * 2.0)
        affine = z * 0.5 + 1.0
        (heavy,) = Program([gates]).kernels
        (light,) = Program([affine]).kernels
    work = {name: parallel_extent(k)[1].value for name, k in (("heavy", heavy), ("light", light))}
    assert work["light"] < PARALLEL_MIN_WORK <= work["heavy"]
