"""Legalization (graphc/kernels/legalize.py): every compound scalar op, expanded into simple ones,
computes what it replaces, bit for bit, on every dtype's extremes (NaN, +-inf, -0.0, the
largest and smallest values, integer min and max, division and mod by 0 and -1, shifts by
every count from negative through the width and beyond): in the
interpreter against the op it replaces and against numpy, and on every device (device "cpu";
"cuda" where CUDA code runs: GRAPHC_TEST_CUDA=host runs it through the host emulation) against
numpy. Lowered kernels hold no compound op, and index arithmetic of known signs keeps no test
that cannot hold."""
import itertools

import numpy as np
import pytest

import graphc as gc
from graphc.ir import dtypes
from graphc.kernels import interpret, ir
from graphc.kernels.legalize import legalize
from tests.helpers import DEVICES
from tests.kernels.helpers import Program

FLOATS = ("float16", "bfloat16", "float32", "float64")
INTS = ("int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64")
UNARY = ("sign", "abs", "relu", "square", "rsqrt", "isfinite")
BINARY = ("floordiv", "mod", "pow", "left_shift", "right_shift")
FLOAT_ONLY = ("rsqrt", "isfinite")
INT_ONLY = ("pow", "abs", "left_shift", "right_shift")  # float pow and abs are simple
ZERO_SIGN_OPEN = ("relu",)  # maximum's zero of either sign (ir.py leaves it open)


def extremes(dtype):
    """Values of a dtype at its edges, in its storage."""
    store = dtypes.BY_NAME[dtype].np
    if dtype in INTS:
        info = np.iinfo(store)
        values = [0, 1, -1, 2, -2, 3, -3, 7, -7, 8, 15, 16, 31, 32, 63, 64, 100, -100, info.min,
                  info.min + 1, info.max, info.max - 1, info.max // 2, info.max // 2 + 1]
        return np.array([v for v in values if info.min <= v <= info.max], store)
    info = np.finfo(np.float16 if dtype == "float16" else store)
    values = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 1.5, -2.5, 7.0, -7.0, 0.1, 3.0, 1e4, -1e-3,
              np.inf, -np.inf, np.nan, float(info.max), -float(info.max), float(info.tiny),
              float(info.smallest_subnormal), -float(info.smallest_subnormal)]
    out = np.array(values).astype(store)
    return dtypes.round_bfloat16(out) if dtype == "bfloat16" else out


def cases():
    for name in UNARY + BINARY:
        for dtype in FLOATS + INTS:
            if not (name in FLOAT_ONLY and dtype in INTS or name in INT_ONLY and dtype in FLOATS):
                yield name, dtype


def operands(name, dtype):
    """Every value, or every pair of values, of the dtype's extremes."""
    values = extremes(dtype)
    if name in UNARY:
        return [values]
    pairs = np.array(list(itertools.product(range(values.size), repeat=2)))
    return [values[pairs[:, 0]], values[pairs[:, 1]]]


def result_dtype(name, dtype):
    return "bool" if name == "isfinite" else dtype


def numpy_result(name, dtype, args):
    """numpy's answer, in the kernel IR's terms: a float16 op rounds once from float32, a
    bfloat16 one from float32 too; integer division by 0 gives 0 and pow with a negative
    exponent 1 / a**-b truncated toward zero (numpy refuses those)."""
    wide = [a.astype(np.float32) if dtype in ("float16", "bfloat16") else a for a in args]
    with np.errstate(all="ignore"):
        if name == "pow":
            a, b = wide
            out = np.power(a, np.where(b < 0, 0, b))
            inverse = np.where(a == 1, 1, np.where(a == -1, np.where(b % 2 == 0, 1, -1), 0))
            out = np.where(b < 0, inverse.astype(a.dtype), out)
        else:
            out = {"floordiv": np.floor_divide, "mod": np.mod, "sign": np.sign, "abs": np.abs,
                   "relu": lambda x: np.maximum(x, np.zeros((), x.dtype)),
                   "square": np.square, "rsqrt": lambda x: 1 / np.sqrt(x),
                   "isfinite": np.isfinite, "left_shift": np.left_shift,
                   "right_shift": np.right_shift}[name](*wide)
        out = dtypes.to_storage(out, dtypes.BY_NAME[result_dtype(name, dtype)])
    return out


def assert_same_bits(got, want, name, what):
    """Equal values; floats: NaN where the other is NaN, and zeros of the same sign."""
    assert got.dtype == want.dtype and got.shape == want.shape, (what, got.dtype, want.dtype)
    if got.dtype.kind != "f":
        bad = got != want
    else:
        bits = got.dtype.itemsize
        unsigned = {2: np.uint16, 4: np.uint32, 8: np.uint64}[bits]
        same = got.view(unsigned) == want.view(unsigned)
        if name in ZERO_SIGN_OPEN:
            same |= (got == 0) & (want == 0)
        bad = ~(same | np.isnan(got) & np.isnan(want))
    assert not bad.any(), (f"{what}: {int(bad.sum())} of {bad.size} differ, first at "
                           f"{np.flatnonzero(bad)[:5]}: {got[bad][:5]} instead of {want[bad][:5]}")


def elementwise_kernel(name, dtype, arity):
    """out(arity)[i] = name(in0[i], ...) for i < dim 0 (a bfloat16 result rounded, as lowering
    rounds it)."""
    i = ir.Var("i")
    args = tuple(ir.Load(slot, i, dtype) for slot in range(arity))
    value = ir.Op(name, args, result_dtype(name, dtype))
    if value.dtype == "bfloat16":
        value = ir.Op("round_bfloat16", (value,), "bfloat16")
    store = ir.Store(arity, i, value)
    return ir.Kernel(name, (ir.Loop(i, ir.Dim(0), (store,), parallel=True),), {})


def interpreted(kernel, name, dtype, args):
    out = np.zeros(args[0].size, dtypes.BY_NAME[result_dtype(name, dtype)].np)
    interpret.run_kernel(kernel, list(args) + [out], [args[0].size])
    return out


@pytest.mark.parametrize("name,dtype", list(cases()))
def test_expansions_compute_what_they_replace_in_the_interpreter(name, dtype):
    args = operands(name, dtype)
    kernel = elementwise_kernel(name, dtype, len(args))
    [legal] = legalize([kernel])
    assert name not in {op for op, _ in ir.op_uses([legal])}
    want = numpy_result(name, dtype, args)
    assert_same_bits(interpreted(kernel, name, dtype, args), want, name, "the op")
    assert_same_bits(interpreted(legal, name, dtype, args), want, name, "its expansion")


@pytest.mark.parametrize("dtype", FLOATS + INTS)
def test_expansions_on_every_device_match_numpy(dtype):
    names = [name for name, d in cases() if d == dtype]
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.as_dtype(dtype), (None,), name="x")
        y = gc.placeholder(gc.as_dtype(dtype), (None,), name="y")
        outputs = [getattr(gc, n)(x) if n in UNARY else getattr(gc, n)(x, y) for n in names]
        a, b = operands("mod", dtype)
        for device in DEVICES:
            session = gc.Session(graph=g, device=device)
            for name, got in zip(names, session.run(outputs, {x: a, y: b})):
                want = numpy_result(name, dtype, [a] if name in UNARY else [a, b])
                assert_same_bits(np.asarray(got), want, name, f"{name} on device {device!r}")


def test_lowered_kernels_hold_no_compound_op(graph):
    x = gc.placeholder(gc.float32, (None, 3))
    n = gc.placeholder(gc.int64, (None, 3))
    out = [gc.floordiv(x, 3.0), gc.mod(x, x), gc.sign(x), gc.relu(x), gc.square(x),
           gc.rsqrt(x), gc.isfinite(x), gc.floordiv(n, n), gc.mod(n, 5), gc.pow(n, n),
           gc.abs(n), gc.sign(n), gc.transpose(x)[::2]]  # a strided view: index arithmetic
    program = Program(out)
    assert not program.unsupported
    used = {op for op, _ in ir.op_uses(program.kernels)}
    assert {"floordiv", "mod", "pow", "sign", "relu", "square", "rsqrt", "isfinite"}.isdisjoint(
        used), used
    assert ("abs", "int64") not in ir.op_uses(program.kernels)


def test_index_arithmetic_of_known_signs_keeps_no_test_that_cannot_hold():
    """Loop variables and dims are never negative: dividing one by a dim tests only for a zero
    dim; by a positive constant, nothing (the quotient is C's, the remainder from it)."""
    i, n = ir.Var("i"), ir.Dim(0)
    by_dim = ir.Kernel("by_dim", (ir.Loop(i, ir.const(7), (
        ir.Store(0, i, ir.floordiv(i, n)), ir.Store(1, i, ir.mod(i, n)),
        ir.Store(2, i, ir.floordiv(i, ir.const(3))), ir.Store(3, i, ir.mod(i, ir.const(3))),
        ir.Store(4, i, ir.floordiv(ir.sub(i, ir.const(3)), ir.const(3))),
    )),), {})
    [legal] = legalize([by_dim])
    used = ir.op_uses([legal])
    assert ("equal", "int64") in used and ("logical_or", "bool") not in used, used
    quotients = [s.value for s in legal.body[0].body]
    quotient = ir.Op("truncdiv", (i, ir.const(3)), "int64")
    assert quotients[2] == quotient
    assert quotients[3] == ir.Op("sub", (i, ir.Op("mul", (quotient, ir.const(3)), "int64")),
                                 "int64")
    assert ("less", "int64") in ir.op_uses([ir.Kernel("k", (legal.body[0].body[4],), {})])
    for dim in (0, 1, 3, 5):
        outs = [np.zeros(7, np.int64) for _ in range(5)]
        interpret.run_kernel(legal, outs, [dim])
        positions = np.arange(7)
        np.testing.assert_array_equal(outs[0], positions // dim if dim else 0)
        np.testing.assert_array_equal(outs[1], positions % dim if dim else 0)
        np.testing.assert_array_equal(outs[2:], [positions // 3, positions % 3,
                                                 (positions - 3) // 3])
