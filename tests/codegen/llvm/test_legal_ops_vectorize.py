"""Compound ops reach LLVM legalized (graphc/kernels/legalize.py) and their loops still run on
whole vectors: sign, relu, isfinite, integer abs and sign, integer floordiv, with values as
numpy's. (Float mod and floordiv are left scalar, before legalization as after: C's fmod is a
library call per element; integer mod is bound by one scalar division per element.)"""
import re

import numpy as np
import pytest

import graphc as gc
from graphc.codegen.llvm import jit

CASES = {
    "sign": (gc.float32, gc.sign, np.sign),
    "relu": (gc.float32, gc.relu, lambda x: np.maximum(x, 0)),
    "isfinite": (gc.float32, lambda x: gc.cast(gc.isfinite(x), gc.float32),
                 lambda x: np.isfinite(x).astype(np.float32)),
    "abs_int": (gc.int32, gc.abs, np.abs),
    "sign_int": (gc.int64, gc.sign, np.sign),
    "floordiv_by_3": (gc.int32, lambda x: gc.floordiv(x, 3), lambda x: x // 3),
    "floordiv_by_minus_5": (gc.int64, lambda x: gc.floordiv(x, -5), lambda x: x // -5),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_legalized_elementwise_loops_run_on_vectors(name, graph):
    dtype, build, expect = CASES[name]
    x = gc.placeholder(dtype, (None,))
    f = gc.function([x], build(x), session=gc.Session(graph, device="cpu"))
    lanes = jit.vector_bits() // (64 if dtype is gc.int64 else 32)
    scalar = {gc.float32: "float", gc.int32: "i32", gc.int64: "i64"}[dtype]
    optimized = f.source("llvm-opt")
    widths = {int(n) for n in re.findall(rf"<(\d+) x {scalar}>", optimized)}
    assert "llvm.loop.isvectorized" in optimized and any(w % lanes == 0 for w in widths)
    values = np.array([-7, -5, -3, -1, 0, 1, 2, 3, 5, 8, 2**30, -2**30] * 5, dtype.np)
    if dtype is gc.float32:
        values[:4] = [np.nan, np.inf, -np.inf, -0.0]
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(f(values), expect(values))
