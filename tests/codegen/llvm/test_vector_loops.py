"""Elementwise loops emitted as vector code (graphc/codegen/llvm/vector.py): values as numpy's on
run-time sizes around the vector width (the masked last iteration), every dtype the emitter
takes, broadcast operands, special values, in-place updates; and a kernel's size never decides
whether it is vector code."""
import re

import numpy as np
import pytest

import graphc as gc
from graphc.codegen.llvm import jit, program, vector
from graphc.kernels import ir

SIZES = (0, 1, 7, 31, 32, 33, 64, 65, 127, 1023)


def run(graph, inputs, output, *values):
    f = gc.function(inputs, output, session=gc.Session(graph, device="cpu"))
    return f, f(*values)


@pytest.mark.parametrize("n", SIZES)
def test_float_chain_on_run_time_sizes(graph, n):
    x = gc.placeholder(gc.float32, (None,))
    y = x
    for _ in range(40):
        y = y * 1.0001 + 0.001
    rng = np.random.default_rng(n)
    xb = rng.standard_normal(n).astype(np.float32)
    f, out = run(graph, [x], y, xb)
    expect = xb
    for _ in range(40):
        expect = expect * np.float32(1.0001) + np.float32(0.001)
    np.testing.assert_allclose(out, expect, rtol=1e-6)
    assert "llvm.masked.store" in f.source("llvm")


@pytest.mark.parametrize("dtype", [gc.int8, gc.uint8, gc.int16, gc.int32, gc.uint32, gc.int64,
                                   gc.float64])
def test_dtypes(graph, dtype):
    # two run-time sizes would read z through a clamped index (it may broadcast): fixed ones
    x = gc.placeholder(dtype, (77,))
    z = gc.placeholder(dtype, (77,))
    y = gc.maximum(x * z - x, gc.minimum(x, z)) + gc.cast(x > z, dtype)
    rng = np.random.default_rng(3)
    xb = rng.integers(-60, 60, 77).astype(dtype.np)
    zb = rng.integers(-60, 60, 77).astype(dtype.np)
    f, out = run(graph, [x, z], y, xb, zb)
    with np.errstate(over="ignore"):
        expect = np.maximum(xb * zb - xb, np.minimum(xb, zb)) + (xb > zb).astype(dtype.np)
    np.testing.assert_array_equal(out, expect)
    assert "llvm.masked.store" in f.source("llvm")


def test_bools_and_comparisons_with_special_values(graph):
    x = gc.placeholder(gc.float32, (41,))
    z = gc.placeholder(gc.float32, (41,))
    both = gc.logical_and(x < z, gc.logical_not(gc.isnan(x)))
    y = gc.where(both, gc.maximum(x, z), -x)
    special = [np.nan, np.inf, -np.inf, -0.0, 0.0, 1e38, -1e-45, 3.0]
    xb = np.array(special * 5 + [1.5], np.float32)
    zb = np.roll(xb, 3)
    f, (out, flags) = run(graph, [x, z], [y, both], xb, zb)
    with np.errstate(invalid="ignore"):
        expect_flags = (xb < zb) & ~np.isnan(xb)
        expect = np.where(expect_flags, np.maximum(xb, zb), -xb)
    np.testing.assert_array_equal(flags, expect_flags)
    np.testing.assert_array_equal(out, expect)   # NaNs in the same places, -0.0 kept
    assert np.array_equal(np.signbit(out), np.signbit(expect))


def test_casts_saturate_as_numpy_on_vectors(graph):
    x = gc.placeholder(gc.float32, (None,))
    y = gc.cast(gc.cast(x, gc.int32), gc.float64) + gc.cast(x, gc.float64)
    xb = np.array([np.nan, np.inf, -np.inf, 3e9, -3e9, 2.7, -2.7, -0.0] * 3, np.float32)
    f, out = run(graph, [x], y, xb)
    as_int = np.array([0, 2**31 - 1, -2**31, 2**31 - 1, -2**31, 2, -2, 0] * 3, np.float64)
    np.testing.assert_array_equal(out, as_int + xb.astype(np.float64))


def test_broadcast_operands_are_splat(graph):
    x = gc.placeholder(gc.float32, (None, None))
    row = gc.placeholder(gc.float32, (None,))
    s = gc.placeholder(gc.float32, ())
    y = (x - row) * s
    rng = np.random.default_rng(5)
    xb = rng.standard_normal((5, 37)).astype(np.float32)
    rb = rng.standard_normal(37).astype(np.float32)
    f, out = run(graph, [x, row, s], y, xb, rb, np.float32(-2.5))
    np.testing.assert_allclose(out, (xb - rb) * np.float32(-2.5), rtol=1e-6)


def test_in_place_update(graph):
    v = gc.Variable(np.arange(45, dtype=np.float32), name="v")
    x = gc.placeholder(gc.float32, (45,))
    f = gc.function([x], gc.sum(x), updates=[(v, v * 0.5 - x)],
                    session=gc.Session(graph, device="cpu"))
    xb = np.linspace(-1, 1, 45).astype(np.float32)
    f(xb)
    f(xb)
    expect = np.arange(45, dtype=np.float32)
    for _ in range(2):
        expect = expect * np.float32(0.5) - xb
    np.testing.assert_allclose(f.session.get_value(v), expect, rtol=1e-6)


@pytest.mark.parametrize("length", [20, 900])
def test_kernel_size_does_not_decide_vector_code(graph, length):
    x = gc.placeholder(gc.float32, (1000,))
    y = x
    for _ in range(length):
        y = y * 1.0001 + 0.001
    f, out = run(graph, [x], y, np.ones(1000, np.float32))
    expect = np.ones(1000, np.float32)
    for _ in range(length):
        expect = expect * np.float32(1.0001) + np.float32(0.001)
    np.testing.assert_allclose(out, expect, rtol=1e-5)
    asm = f.source("asm")
    register = "zmm" if jit.vector_bits() == 512 else "ymm"
    assert len(re.findall(rf"vmulps\s.*%{register}", asm)) >= length
    assert not re.search(r"vmulss", asm)   # no scalar multiply left


def test_lanes_cover_interleaved_registers():
    i = ir.Var("i")
    loop = ir.Loop(i, ir.Dim(0), (ir.Store(1, i, ir.op("add", ir.Load(0, i, "float64"),
                                                         ir.const(1.0, "float64"))),))
    assert vector.vector_lanes(loop) == jit.vector_bits() // 64 * vector.INTERLEAVE


def test_declines_gathers_reductions_and_accumulation():
    i, j = ir.Var("i"), ir.Var("j")
    strided = ir.Load(0, ir.mul(i, ir.const(2)), "float32")
    gather = ir.Loop(i, ir.Dim(0), (ir.Store(1, i, strided),))
    total = ir.Reduce("sum", ((j, ir.Dim(1)),), ir.Load(0, j, "float32"), "float32")
    reduce = ir.Loop(i, ir.Dim(0), (ir.Store(1, i, total),))
    accumulate = ir.Loop(i, ir.Dim(0), (ir.Store(1, i, ir.Load(0, i, "float32"), True),))
    polynomial = ir.Loop(i, ir.Dim(0), (ir.Store(1, i, ir.op("exp", ir.Load(0, i, "float32"))),))
    for loop in (gather, reduce, accumulate, polynomial):
        assert vector.vector_lanes(loop) is None


def test_deep_expressions_hash_and_bind_without_recursion():
    i = ir.Var("i")
    e = ir.Load(0, i, "float32")
    for _ in range(20_000):
        e = ir.op("add", ir.op("mul", e, ir.const(1.5)), ir.const(0.5))
    assert hash(e) == hash(e)
    assert ir.free_vars(e) == {"i"}


def test_programs_of_vector_loops_alone_get_the_fast_code_generator():
    i = ir.Var("i")
    one = ir.const(1.0, "float32")
    elementwise = ir.Kernel("add", (ir.Loop(i, ir.Dim(0), (ir.Store(
        1, i, ir.op("add", ir.Load(0, i, "float32"), one)),), parallel=True),), {})
    total = ir.Kernel("sum", (ir.Store(1, ir.const(0), ir.Reduce(
        "sum", ((i, ir.Dim(0)),), ir.Load(0, i, "float32"), "float32")),), {})
    assert program.build_module([[elementwise]], "a")[1] == program.VECTOR_PIPELINE
    assert program.build_module([[elementwise, total]], "b")[1] == program.PROGRAM_PIPELINE
    assert program.build_module([[elementwise]], "c", loop_driver=True)[1] == (
        program.PROGRAM_PIPELINE)
