"""Programs and the GEMM module they link: which dtypes a program needs, and a declared GEMM
called from one object and defined in another (compiled as programs get it), linked when
loaded."""
import numpy as np
from llvmlite import ir as ll

from graphc.codegen.llvm import gemm, jit
from graphc.codegen.llvm.program import GEMM_PIPELINE, gemm_dtypes, gemm_module
from graphc.kernels import ir


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
