"""Graphs whose kernels the CUDA tests render: every elementwise op on every dtype it takes,
casts between all dtypes, reductions (arg ones, softmax, cross-entropy), views, matrix
products with prologues and epilogues, and a whole train step; plus kernels written directly in
the kernel IR for what lowering does not produce yet (Check, accumulating and nested Gemms,
bool reductions, integer pow).

A Case builds its outputs from placeholders of given dtypes and shapes (None: a symbolic batch
dim); `program(case)` lowers them through tests.kernels.helpers.Program.
"""
from dataclasses import dataclass, field

import numpy as np

import graphc as gc
from graphc.codegen.cuda.values import statement_exprs
from graphc.kernels import ir
from graphc.kernels.legalize import legalize
from graphc.ops.elementwise import BINARY, UNARY
from graphc.ops.registry import apply
from tests.kernels.helpers import Program

FLOATS = ("float16", "bfloat16", "float32", "float64")
INTS = ("int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64")
ALL = ("bool",) + INTS + FLOATS
# the dtypes each kind of op (graphc.ops.elementwise's tables) takes
UNARY_DTYPES = {"float": FLOATS, "num": INTS + FLOATS, "pred": FLOATS, "bool": ("bool",),
                "bits": INTS + ("bool",)}
BINARY_DTYPES = {"same": INTS + FLOATS, "float": FLOATS, "pred": ALL, "logic": ("bool",),
                 "bits": INTS + ("bool",), "int": INTS}


@dataclass
class Case:
    name: str
    inputs: list  # (dtype name, shape) per placeholder
    build: object  # placeholders -> output tensor(s)
    ops: set = field(default_factory=set)  # (op, dtype) pairs its kernels must contain
    ranges: dict = field(default_factory=dict)  # input number -> (lo, hi) of its values


def program(case):
    """(Program, placeholders) of the case, in a graph of its own."""
    g = gc.Graph()
    with g.as_default():
        phs = [gc.placeholder(gc.as_dtype(d), shape, name=f"in{n}")
               for n, (d, shape) in enumerate(case.inputs)]
        out = case.build(*phs)
        return Program(list(out) if isinstance(out, (list, tuple)) else [out]), phs


def _unary_case(dtype):
    names = sorted(n for n, (_, _, kind) in UNARY.items() if dtype in UNARY_DTYPES[kind])
    ops = {(n, dtype) for n in names}
    return Case(f"unary_{dtype}", [(dtype, (None, 7))],
                lambda x: [getattr(gc, n)(x) for n in names], ops)


def _binary_case(dtype):
    # numpy refuses integers to negative powers: integer pow has a case of its own
    names = sorted(n for n, (_, _, kind) in BINARY.items() if dtype in BINARY_DTYPES[kind]
                   and not (n == "pow" and dtype in INTS))
    ops = {(n, dtype) for n in names}
    return Case(f"binary_{dtype}", [(dtype, (None, 7)), (dtype, (7,))],
                lambda x, y: [getattr(gc, n)(x, y) for n in names], ops)


def _casts(x):
    return [gc.cast(x, d) for d in ALL if d != x.dtype.name]


def _where(c, x, y):
    return [gc.where(c, x, y), gc.clip(x, -0.5, 0.75)]


CASES = (
    [_unary_case(d) for d in ALL] + [_binary_case(d) for d in ALL]
    + [Case(f"pow_{d}", [(d, (None, 7)), (d, (7,))], gc.pow, {("pow", d)}, {1: (0, 5)})
       for d in INTS]
    + [Case(f"cast_from_{d}", [(d, (None, 5))], _casts,
            {("cast", d)}) for d in ALL]
    + [Case(f"where_{d}", [("bool", (None, 5)), (d, (None, 5)), (d, (5,))], _where,
            {("where", "bool")}) for d in ("float32", "float16", "int32", "float64")]
    + [
        Case("bfloat16_chain", [("bfloat16", (None, 9)), ("bfloat16", (9,))],
             lambda x, y: gc.tanh(x * y + 1.5) - gc.exp(y), {("round_bfloat16", "bfloat16")}),
        Case("broadcast_chain", [("float32", (7, 13)), ("float32", (13,)), ("float32", (7, 1)),
                                 ("float32", ())],
             lambda a, b, c, d: gc.sigmoid(gc.tanh(a) * b + 0.5 * gc.maximum(a, c) - d)),
        Case("vector_tails", [("float32", (None,)), ("float16", (None, 3)), ("float64", (None,)),
                              ("bool", (None,)), ("float32", (3,))],
             lambda x, h, d, b, c: [gc.tanh(x) * 0.5 + x, gc.exp(h * 0.25), gc.abs(h) + c,
                                    gc.cast(d, gc.float16), gc.logical_not(b),
                                    gc.where(b, d, 2.0 * d), gc.cast(h > 0.0, gc.int64)]),
        Case("reductions_float32", [("float32", (None, 4, 5))],
             lambda x: [f(x * 2.0, axis=a, keepdims=k)
                        for f in (gc.sum, gc.mean, gc.max, gc.min, gc.prod)
                        for a, k in ((1, False), ((0, 2), True), (None, False))]),
        Case("reductions_float16", [("float16", (None, 13))],
             lambda x: [gc.sum(x, axis=1), gc.max(x, axis=0), gc.mean(x), gc.prod(x, axis=1)]),
        Case("reductions_int", [("int32", (None, 13)), ("int64", (13, 3))],
             lambda x, y: [gc.sum(x, axis=1), gc.max(x, axis=0), gc.min(y), gc.prod(y, axis=0)]),
        Case("arg_reductions", [("float32", (None, 13)), ("int32", (None, 13)),
                                ("float64", (3, 4, 5))],
             lambda x, i, z: [gc.argmax(x, axis=1), gc.argmin(x, axis=0), gc.argmax(i, axis=0),
                              gc.argmin(i, axis=1), gc.argmax(z, axis=1)],
             {("argmax", "float32"), ("argmin", "int32")}),
        Case("softmax", [("float32", (None, 13))],
             lambda x: [gc.nn.softmax(x), gc.nn.log_softmax(x * 0.5, axis=0),
                        gc.logsumexp(x, axis=1)]),
        Case("long_rows", [("float32", (None, 300)), ("int32", (None, 100))],
             lambda x, i: [gc.nn.softmax(x), gc.nn.log_softmax(x, axis=0), gc.logsumexp(x, axis=1),
                           gc.argmax(x, axis=1), gc.argmin(x, axis=1), gc.prod(gc.exp(x * 0.01),
                                                                                axis=1),
                           gc.sum(i, axis=1), gc.argmax(i, axis=1), gc.min(i, axis=1)],
             {("argmax", "int32")}),
        Case("wide_rows", [("float32", (None, 1500)), ("float16", (None, 1100))],
             lambda x, h: [gc.nn.softmax(x), gc.nn.log_softmax(x * 0.5) + x,
                           gc.argmax(x, axis=1), gc.nn.softmax(h), gc.sum(h, axis=1)]),
        Case("full_reductions", [("float32", (None, 300)), ("int64", (None, 70)),
                                 ("bool", (None, 90))],
             lambda x, i, b: [gc.sum(x), gc.max(x), gc.mean(gc.exp(x * 0.1)), gc.argmax(
                 gc.reshape(x, (-1,))), gc.sum(i), gc.min(i), gc.prod(gc.cast(b, gc.int32)),
                              gc.argmin(gc.reshape(i, (-1,)))]),
        Case("long_dot_products", [("float32", (None, 300)), ("float32", (300, 5)),
                                   ("float32", (None, 3)), ("float16", (None, 70)),
                                   ("float16", (70, 3)), ("float32", (2, 100, 4))],
             lambda x, w, y, h, v, b: [x @ w, gc.transpose(x) @ y, h @ v,
                                       gc.transpose(b, (0, 2, 1)) @ b]),
        Case("empty_shapes", [("float32", (0, 3, 5)), ("float32", (4, 0, 5)),
                              ("float32", (7, 3, 4))],
             lambda x, y, z: [gc.sum(x), gc.mean(x * 2.0, axis=0), gc.max(x, axis=2),
                              gc.sum(y, axis=1), gc.nn.softmax(y, axis=2), y[:, :, 1:3] + 1.0,
                              z[-100:2, ..., :-100], gc.mean(x)]),
        Case("means", [("float32", (None, 33))],
             lambda t: [gc.sum(t), gc.mean(gc.square(t - 1.0)), gc.mean(t, axis=0)]),
        Case("reductions_of_broadcasts", [("float32", (None, 4, 3)), ("float32", (None,))],
             lambda y, x: [gc.sum(gc.fill_like(y, 2.0)), gc.sum(y * 0.0 + gc.sum(x)),
                           gc.max(gc.broadcast_to(gc.reshape(gc.sum(x), (1, 1)), (600, 7)))]),
        Case("long_gathered_rows", [("float32", (50, 200)), ("int32", (None,)),
                                    ("float32", (None, 120)), ("int64", (None,))],
             lambda p, i, x, y: [gc.nn.softmax(gc.gather(p, i)),
                                 gc.nn.sparse_softmax_cross_entropy(x, y)],
             ranges={1: (0, 50), 3: (0, 120)}),
        Case("sparse_cross_entropy", [("float32", (None, 13)), ("int32", (None,))],
             lambda x, y: [gc.nn.sparse_softmax_cross_entropy(x, y),
                           gc.mean(gc.nn.sparse_softmax_cross_entropy(x, y))],
             {("check_index", "int64")}, {1: (0, 13)}),
        Case("row_kernels", [("float32", (None, 13))],
             lambda x: [x - gc.mean(x, axis=1, keepdims=True),
                        gc.sqrt(gc.sum(gc.square(x), axis=1)) + 1.0]),
        Case("reshape_transpose", [("float32", (None, 13)), ("float32", (3, 1, 5))],
             lambda x, y: [gc.reshape(gc.transpose(x + 1.0), (-1,)), gc.transpose(x) * 2.0,
                           gc.squeeze(gc.expand_dims(x, 1) * 3.0, 1),
                           gc.transpose(y, (2, 0, 1)) - 1.0, gc.reshape(y, (5, 3)) + 1.0]),
        Case("concat_split", [("float32", (None, 13)), ("float32", (None, 2))],
             lambda x, y: [gc.concat([x, y * 2.0, x], axis=1) + 1.0]
             + [p * float(n + 1) for n, p in enumerate(gc.split(x, [4, 1, 8], axis=1))]),
        Case("strided_slices", [("float32", (7, 13))],
             lambda t: [t[1:-1:2, ::-3] * 2.0, t[-2::-2, 3:-1] + 1.0, t[3, ::2] * 2.0,
                        t[:, -1] - t[:, 0], gc.grad(gc.sum(gc.square(t[1:-1:2, ::-3])), [t])[0]]),
        Case("pad", [("float32", (None, 13))],
             lambda t: [gc.pad(t, [(1, 2), (0, 3)]) * 2.0,
                        gc.pad(t + 1.0, [(0, 0), (4, 1)], constant_values=-1.5)]),
        Case("gather_one_hot", [("float32", (7, 13)), ("int32", (None,)), ("int64", (2, 3))],
             lambda p, i, j: [gc.gather(p, i) * 2.0, gc.gather(p + 1.0, j, axis=1),
                              gc.one_hot(i, 5), gc.one_hot(i, 5, dtype=gc.int32, axis=0)],
             ranges={1: (0, 7), 2: (0, 13)}),
        Case("pools", [("float32", (None, 9, 13, 3))], lambda x: _pools(x, 3, 2, "SAME")),
        Case("pools_float16", [("float16", (None, 6, 5, 2))], lambda x: _pools(x, 2, 2, "VALID")),
        Case("embedding_grads", [("float32", (7, 5)), ("int32", (None,)), ("bfloat16", (4, 3)),
                                 ("int64", (2, 3))],
             lambda p, i, q, j: gc.grad(gc.sum(gc.square(gc.gather(p, i)))
                                        + gc.sum(gc.gather(q, j, axis=1) * 1.5), [p, q]),
             ranges={1: (0, 3), 3: (0, 3)}),  # repeated indices
        Case("scatter_adds", [("int64", (None,))] + [(d, (None, 4)) for d in (
            "float32", "float64", "float16", "int32", "int64", "bool")],
             lambda i, *grads: _scatter_adds(i, *grads),
             ranges={0: (0, 6)}),
        Case("matmul", [("float32", (None, 13)), ("float32", (13, 5)), ("float32", (5,))],
             lambda x, w, b: [gc.relu(gc.matmul(x, w) + b), gc.matmul(x, gc.transpose(
                 gc.transpose(w))) * 2.0, gc.matmul(gc.transpose(w), gc.transpose(x))],
             {("relu", "float32")}),
        Case("batched_matmul", [("float32", (3, 7, 13)), ("float32", (3, 13, 5)),
                                ("float64", (None, 4, 6)), ("float64", (6, 2))],
             lambda a, b, c, d: [gc.relu(gc.matmul(a, b) + 1.0), gc.matmul(gc.exp(a), b * 0.5),
                                 gc.matmul(c, d)]),
        Case("tiled_matmul", [("float32", (None, 70)), ("float32", (70, 33)), ("float32", (33,)),
                              ("float64", (None, 30)), ("float64", (20, 30))],
             lambda x, w, b, y, v: [gc.relu(gc.matmul(x, w) + b),
                                    gc.matmul(gc.transpose(w), gc.transpose(x)),
                                    gc.matmul(y, gc.transpose(v)) * 2.0]),
        Case("tiled_batched_matmul", [("float32", (3, 20, 17)), ("float32", (3, 17, 40)),
                                      ("float32", (None, 40, 17))],
             lambda a, b, c: [gc.matmul(a, b) - 1.0, gc.matmul(c, b[0]),
                              gc.matmul(gc.transpose(a, (0, 2, 1)), gc.exp(a * 0.1))]),
        Case("half_matmul", [("float16", (None, 70)), ("float16", (70, 33)),
                             ("bfloat16", (3, 20, 40)), ("bfloat16", (40,))],
             lambda x, w, a, v: [gc.relu(gc.matmul(x, w) + 1.0),
                                 gc.matmul(gc.transpose(w), gc.transpose(x)),
                                 gc.matmul(a, v), gc.matmul(v, gc.transpose(a, (0, 2, 1))),
                                 gc.matmul(a * 0.5, gc.transpose(a, (0, 2, 1)))]),
        Case("integer_matmul", [("int32", (None, 13)), ("int32", (13, 5)),
                                ("int64", (3, 7, 13)), ("int64", (13,))],
             lambda x, w, a, v: [gc.matmul(x, w) + 1, gc.matmul(a, v), gc.matmul(v, v),
                                 gc.matmul(v, gc.transpose(a, (0, 2, 1)))],
             {("mul", "int32"), ("mul", "int64")}),
        Case("vector_matmul", [("float32", (None, 13)), ("float32", (13,)),
                               ("float64", (2, 1, 7, 13)), ("float64", (3, 13, 7))],
             lambda x, v, a, b: [gc.matmul(x, v), gc.matmul(v, gc.transpose(x)),
                                 gc.matmul(v, v), gc.matmul(a, b), gc.matmul(a[0, 0, 0], b)]),
        Case("mlp_train_step", [("float32", (None, 13)), ("int32", (None,)),
                                ("float32", (13, 11)), ("float32", (11, 5)), ("float32", (11,))],
             lambda x, y, w1, w2, b1: _mlp_step(x, y, w1, w2, b1), ranges={1: (0, 5)}),
    ])


def _pools(x, ksize, strides, padding):
    top, mean = gc.nn.max_pool2d(x, ksize, strides, padding), gc.nn.avg_pool2d(x, ksize, strides,
                                                                               padding)
    return [top, mean, gc.grad(gc.sum(top * top) + gc.sum(mean * 0.5), [x])[0]]


def _scatter_adds(indices, *grads):
    """gather_grad of each grad into 6 rows."""
    return [apply("gather_grad", [g, indices, gc.constant(np.zeros((6, 4), g.dtype.np))],
                  axis=0) for g in grads]


def _mlp_step(x, y, w1, w2, b1):
    h = gc.relu(gc.matmul(x, w1) + b1)
    loss = gc.mean(gc.nn.sparse_softmax_cross_entropy(gc.matmul(h, w2), y))
    g1, g2, gb = gc.grad(loss, [w1, w2, b1])
    return [loss, g1, g2, gb, w1 - 0.1 * g1, w2 - 0.1 * g2]


# ---- kernels written in the kernel IR -----------------------------------------------------------
def _v(name):
    return ir.Var(name)


def _load(slot, index, dtype):
    return ir.Load(slot, index, dtype)


def handmade_kernels():
    """Kernels that lowering does not produce (yet), reading slots 0.. of a program whose
    run-time dim 0 is n: bool reductions, integer pow, a Check, Gemms that accumulate or that
    run inside a parallel loop; legalized, as lowering's kernels are."""
    i, r = _v("i0"), _v("r0")
    n = ir.Dim(0)
    flags = _load(0, ir.add(ir.mul(i, n), r), "bool")
    bool_reductions = ir.Kernel("bool_reductions", (ir.Loop(i, n, tuple(
        ir.Store(slot, i, ir.Reduce(op, ((r, n),), flags, "int64" if op.startswith("arg")
                                    else "bool"))
        for slot, op in ((1, "sum"), (2, "prod"), (3, "max"), (4, "min"), (5, "argmax"),
                         (6, "argmin"))), parallel=True),), {}, ("any", "all"))
    base, exponent = _load(7, i, "int32"), _load(8, i, "int32")
    wide = ir.op("cast", base, dtype="int64")
    powers = ir.Kernel("integer_pow", (ir.Loop(i, n, (
        ir.Store(9, i, ir.op("pow", base, exponent)),
        ir.Store(10, i, ir.op("pow", wide, ir.op("cast", exponent, dtype="int64"))),
        ir.Store(11, i, ir.op("floordiv", ir.const(-(1 << 63)), ir.const(-1))),
    ), parallel=True),), {}, ("pow",))
    index = ir.op("cast", _load(12, i, "int32"), dtype="int64")
    check = ir.Kernel("check", (ir.Loop(i, n, (
        ir.Check(ir.op("less", index, n, dtype="bool"), 0, index),
        ir.Store(13, i, ir.op("mul", _load(14, i, "float32"), ir.const(float("nan"), "float32"))),
    ), parallel=True),), {}, ("check",))
    square = ir.Operand(15, ir.const(0), n, ir.const(1))
    accumulate = ir.Kernel("gemm_accumulate", (ir.Gemm("float32", n, n, n, square, square,
                                                       ir.Operand(16, ir.const(0), n,
                                                                  ir.const(1)), True),),
                           {}, ("matmul",))
    per_row = ir.Operand(17, ir.mul(i, ir.mul(n, n)), n, ir.const(1))
    nested = ir.Kernel("gemm_per_row", (ir.Loop(i, n, (ir.Gemm(
        "float64", n, n, n, per_row, per_row,
        ir.Operand(18, ir.mul(i, ir.mul(n, n)), n, ir.const(1))),), parallel=True),),
                       {}, ("matmul",))
    return legalize([bool_reductions, powers, check, accumulate, nested])


def all_programs():
    """(case, Program) for every case."""
    return [(case, program(case)[0]) for case in CASES]


def expected_ops():
    """The (op, operand dtype) pairs the cases' kernels must contain: the cases' own, a
    compound op's (legalize.py) replaced by those of its expansion."""
    return set().union(*(_legal_ops(name, dtype) for case in CASES for name, dtype in case.ops))


def _legal_ops(name, dtype):
    """The (op, operand dtype) pairs of op `name` on `dtype` operands once legalized."""
    if name not in ir.ARITY:  # a reduction
        return {(name, dtype)}
    args = tuple(ir.Var(f"x{n}", dtype) for n in range(ir.ARITY[name]))
    result = "bool" if name in ir.COMPARISONS + ("isnan", "isfinite") else dtype
    probe = ir.Kernel("probe", (ir.Store(0, ir.const(0), ir.Op(name, args, result)),), {})
    return ir.op_uses(legalize([probe]))


def op_uses(kernels):
    """(op, operand dtype) of every Op and Reduce (its value's dtype) in the kernels."""
    found, todo, seen = set(ir.op_uses(kernels)), [], set()
    for k in kernels:
        todo.extend(statement_exprs(k.body))
    while todo:
        e = todo.pop()
        if id(e) not in seen:
            seen.add(id(e))
            if isinstance(e, ir.Reduce):
                found.add((e.op, e.value.dtype))
            todo.extend(ir.children(e))
    return found


def sample(dtype, shape, rng, bounds=None):
    """Random values of a dtype's storage type (integers in [lo, hi) when bounds are given)."""
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype in INTS:
        return rng.integers(*(bounds or (-9, 10)), shape).astype(dtype)
    if bounds:
        return rng.uniform(*bounds, shape).astype(np.float32 if dtype == "bfloat16" else dtype)
    return rng.normal(0, 2, shape).astype(np.float32 if dtype == "bfloat16" else dtype)


def feed(case, placeholders, rng, batch=7):
    """Random values for a case's placeholders, `batch` for every symbolic dim."""
    out = {}
    for n, ((dtype, shape), ph) in enumerate(zip(case.inputs, placeholders)):
        shape = tuple(batch if d is None else d for d in shape)
        out[ph] = sample(dtype, shape, rng, case.ranges.get(n))
    return out
