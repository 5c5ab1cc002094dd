"""Reductions compiled by LLVM accumulate as the kernel IR's REDUCTIONS declare, and give what
the interpreter gives: bool sums are `any` and products `all`, every reduction of every dtype
over no iterations gives its identity, float sums accumulate in float64."""
import ctypes

import numpy as np
import pytest
from llvmlite import ir as ll

from graphc.codegen.llvm import jit
from graphc.codegen.llvm.emit import KernelEmitter
from graphc.ir import dtypes
from graphc.kernels import interpret, ir

ROWS, COLS = 5, 6
OPS = ("sum", "prod", "max", "min", "argmax", "argmin")


def row_reductions(dtype):
    """out(1 + k)[i] = OPS[k] over j < dim 0 of x(0)[i * COLS + j]."""
    i, j = ir.Var("i"), ir.Var("j")
    value = ir.Load(0, ir.add(ir.mul(i, ir.const(COLS)), j), dtype)
    stores = tuple(ir.Store(1 + k, i, ir.Reduce(op, ((j, ir.Dim(0)),), value,
                                                ir.INDEX if op.startswith("arg") else dtype))
                   for k, op in enumerate(OPS))
    return ir.Kernel("rows", (ir.Loop(i, ir.const(ROWS), stores, parallel=True),), {})


def compiled(kernel):
    module = ll.Module(name="reductions")
    module.triple = jit.host()[0]
    KernelEmitter(module, kernel, "rows").emit().linkage = "external"
    library = jit.load_object(jit.compile_ir(str(module)))
    function = library.function("rows", None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64)

    def run(buffers, dims):
        pointers = (ctypes.c_void_p * len(buffers))(*(b.ctypes.data for b in buffers))
        sizes = (ctypes.c_int64 * len(dims))(*dims)
        error = (ctypes.c_int64 * 2)()
        ctx = (ctypes.c_void_p * 3)(ctypes.addressof(pointers), ctypes.addressof(sizes),
                                    ctypes.addressof(error))
        function(ctypes.addressof(ctx), 0, ROWS)
    run.library = library  # its code lives as long as run does
    return run


def outputs(dtype):
    return [np.full(ROWS, 7, np.int64 if op.startswith("arg") else dtypes.BY_NAME[dtype].np)
            for op in OPS]


@pytest.mark.parametrize("dtype", ["bool", "int32", "int64", "float16", "float32", "float64"])
def test_llvm_reductions_give_the_interpreters_values(dtype):
    rng = np.random.default_rng(3)
    x = rng.integers(-3, 4, ROWS * COLS).astype(dtypes.BY_NAME[dtype].np)
    if dtype == "bool":
        x = np.array([1, 1, 0, 0, 0, 0] * 2 + [1] * 6 + [0] * 6 + [1, 0, 1, 0, 1, 1], bool)
    kernel = row_reductions(dtype)
    run = compiled(kernel)
    for n in (COLS, 0):  # every column, then none: the identities
        want, got = outputs(dtype), outputs(dtype)
        interpret.run_kernel(kernel, [x] + want, [n])
        run([x] + got, [n])
        for op, g, w in zip(OPS, got, want):
            np.testing.assert_array_equal(g, w, err_msg=f"{op} over {n} of {dtype}")
        if n == 0:
            for op, w in zip(OPS, want):
                np.testing.assert_array_equal(w, ir.identity(op, dtype))


def test_the_table_declares_identities_and_accumulators():
    assert ir.identity("max", "int32") == -2**31 and ir.identity("min", "bool") is True
    assert ir.identity("argmin", "float32") == 0 and ir.identity("prod", "float16") == 1
    assert ir.reduction_start("argmax", "float64") == -np.inf
    assert ir.accumulator("sum", "float16") == "float64" == ir.accumulator("prod", "bfloat16")
    assert ir.accumulator("max", "float32") == "float32"
    assert ir.accumulator("sum", "int32") == "int32" and ir.accumulator("sum", "bool") == "bool"
