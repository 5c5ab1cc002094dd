"""Lowering end to end: graphs optimized at O2, every fusion group lowered to kernel IR with one
Slots, the kernels run by the interpreter, every fetched value compared with the reference
device on fresh random inputs (odd sizes, symbolic batch dims)."""
import os

import numpy as np
import pytest
from hypothesis import given, settings

import graphc as gc
from graphc.ops.elementwise import BINARY, UNARY
from graphc.kernels import ir
from graphc.kernels.interpret import KernelIndexError, run_kernel
from tests.helpers import run
from tests.kernels.helpers import Program, assert_matches_reference, run_reference
from tests.passes.random_graphs import assert_same_values, random_graphs

rng = np.random.default_rng(11)


def check(build, *arrays, batch=(), unsupported=0, rtol=1e-5, atol=1e-6):
    """build(*placeholders) -> tensor(s), run as kernels and by the reference; placeholders
    listed in `batch` have a symbolic first dim. Returns the Program."""
    g = gc.Graph()
    with g.as_default():
        phs = [gc.placeholder(gc.as_dtype(a.dtype),
                              (None,) + a.shape[1:] if n in batch else a.shape, name=f"in{n}")
               for n, a in enumerate(arrays)]
        out = build(*phs)
        outs = list(out) if isinstance(out, (list, tuple)) else [out]
        return assert_matches_reference(outs, dict(zip(phs, arrays)), rtol=rtol, atol=atol,
                                        unsupported=unsupported)


def normal(*shape, dtype=np.float32):
    return rng.normal(size=shape).astype(dtype)


def integers(lo, hi, *shape, dtype=np.int32):
    return rng.integers(lo, hi, shape).astype(dtype)


# ---- elementwise --------------------------------------------------------------------------------
@pytest.mark.parametrize("shapes", [[(7, 13), (13,), (7, 1), ()], [(3, 1, 5), (1, 4, 1)],
                                    [(1, 1), (1,)], [(1023,), (1,)]])
def test_elementwise_chain_with_broadcasting(shapes):
    def build(*xs):
        out = xs[0]
        for n, x in enumerate(xs[1:]):
            out = gc.tanh(out) * x + 0.5 * out if n % 2 == 0 else gc.maximum(out, x) - x * x
        return gc.sigmoid(out) + gc.exp(-gc.abs(xs[0]))
    check(build, *(normal(*s) for s in shapes))


def test_elementwise_with_a_symbolic_batch():
    check(lambda x, b, s: gc.relu(x * s + b) - gc.square(b), normal(7, 13), normal(7, 1),
          normal(13), batch=(0, 1))


DOMAIN = {"log": "positive", "sqrt": "positive", "rsqrt": "positive", "log1p": "unit"}


def sample(name, shape, dtype=np.float32):
    domain = DOMAIN.get(name)
    if domain == "positive":
        return rng.uniform(0.1, 3.0, shape).astype(dtype)
    if domain == "unit":
        return rng.uniform(-0.9, 2.0, shape).astype(dtype)
    return rng.normal(0, 2, shape).astype(dtype)


@pytest.mark.parametrize("name", sorted(n for n, (_, _, kind) in UNARY.items()
                                        if kind not in ("bool", "bits")))  # bits: test_bitwise.py
def test_every_unary_op(name):
    kind = UNARY[name][2]
    op = getattr(gc, name)
    x = sample(name, (7, 13))
    x[0, :3] = [np.nan, np.inf, -np.inf] if kind == "pred" else x[0, :3]
    check(lambda t: op(t * 1.5), x)
    dtypes = [np.float64] + ([np.int32] if kind == "num" else [])
    for dtype in dtypes:
        check(lambda t: op(t), sample(name, (1, 7)).astype(dtype))
    if kind == "float":  # bfloat16 rounds after every op; float16 computes in half precision
        check(lambda t: op(gc.cast(t, gc.bfloat16) * 1.5), x, rtol=1e-2, atol=1e-2)
        check(lambda t: op(gc.cast(t, gc.float16)), x, rtol=2e-3, atol=2e-3)


def test_logical_ops():
    a, b = rng.random((7, 13)) < 0.5, rng.random((13,)) < 0.5
    check(lambda x, y: [gc.logical_not(x), gc.logical_and(x, y), gc.logical_or(x, y),
                        gc.logical_xor(x, y)], a, b)


# logic: see test_logical_ops; bits and int (the bitwise ops): tests/ops/test_bitwise.py
@pytest.mark.parametrize("name", sorted(n for n, (_, _, kind) in BINARY.items()
                                        if kind not in ("logic", "bits", "int")))
def test_every_binary_op(name):
    op = getattr(gc, name)
    for dtype in (np.float32, np.int32):
        a = normal(7, 13) * 4
        b = normal(13) * 4
        if name == "pow":
            a, b = np.abs(a) + 0.1, b / 4
        if dtype == np.int32:
            a, b = np.round(a), np.round(b)
            if name == "pow":
                b = np.abs(b)
            if name in ("floordiv", "mod"):
                b[0] = 0  # numpy's integer division by zero: 0
            if name == "div":
                b[b == 0] = 1
        a, b = a.astype(dtype), b.astype(dtype)
        b[:4] = a[0, :4]  # ties for the comparisons
        check(lambda x, y: op(x, y), a, b)


def test_where_cast_clip():
    x, y = normal(7, 13), normal(7, 1)
    check(lambda a, b: [gc.where(a > b, a, b * 2.0), gc.cast(a * 3.0, gc.int32),
                        gc.cast(a > 0, gc.float32), gc.clip(a, -0.5, 0.7),
                        gc.cast(gc.cast(a, gc.float16) + 1.0, gc.float64)], x, y)
    check(lambda a: gc.cast(a, gc.bfloat16) * 3.0, x, rtol=1e-2)


# ---- reductions -------------------------------------------------------------------------------
@pytest.mark.parametrize("op", ["sum", "mean", "max", "min", "prod"])
@pytest.mark.parametrize("shape,axis,keepdims", [
    ((7, 13), 1, False), ((7, 13), 0, False), ((7, 13), 0, True), ((7, 13), None, False),
    ((3, 4, 5), (0, 2), False), ((3, 4, 5), (0, 2), True), ((3, 1, 5), 1, True),
    ((1, 1), None, True), ((3, 4, 5), 1, False)])
def test_reductions(op, shape, axis, keepdims):
    x = normal(*shape)
    if op == "prod":
        x = np.where(rng.random(shape) < 0.5, 1.25, -0.8).astype(np.float32)
    reduce = getattr(gc, op)
    check(lambda t: reduce(t * 2.0, axis=axis, keepdims=keepdims), x, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("op", ["sum", "max", "argmax", "argmin"])
def test_reductions_of_a_symbolic_batch(op):
    x = integers(-3, 3, 7, 13).astype(np.float32)  # ties for the arg reductions
    reduce = getattr(gc, op)
    for axis in (0, 1):
        check(lambda t: reduce(t, axis=axis), x, batch=(0,))
    check(lambda t: reduce(t, axis=0), integers(-3, 3, 7, 13), batch=(0,))


def test_gradients_of_broadcasts_sum_over_the_broadcast_axes():
    x, b, s = normal(7, 13), normal(13), normal(7, 1)
    check(lambda t, u, v: gc.grad(gc.sum(gc.tanh(t * u + v)), [u, v]), x, b, s, rtol=1e-5,
          atol=1e-5)


def test_reduction_with_epilogue_and_prologue():
    """x - mean over columns, and the sum of squares per row: a row kernel."""
    x = normal(7, 13)
    check(lambda t: [t - gc.mean(t, axis=1, keepdims=True),
                     gc.sqrt(gc.sum(gc.square(t), axis=1)) + 1.0], x, batch=(0,), rtol=1e-5)
    check(lambda t: gc.logsumexp(t, axis=0), x, rtol=1e-5)


# ---- nn ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("axis", [-1, 0])
def test_softmax_and_log_softmax(axis):
    x = normal(7, 13) * 3
    check(lambda t: [gc.nn.softmax(t, axis=axis), gc.nn.log_softmax(t * 0.5, axis=axis)], x,
          batch=(0,))


def test_sparse_softmax_cross_entropy():
    logits, labels = normal(7, 13) * 3, integers(0, 13, 7)
    check(lambda t, y: [gc.nn.sparse_softmax_cross_entropy(t, y),
                        gc.mean(gc.nn.sparse_softmax_cross_entropy(t, y))], logits, labels,
          batch=(0, 1))


def test_bad_label_raises_the_cross_entropy_error():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 13))
        y = gc.placeholder(gc.int32, (None,))
        loss = gc.nn.sparse_softmax_cross_entropy(x, y)
        program = Program([loss])
        labels = integers(0, 13, 7)
        labels[4] = 13
        feed = {x: normal(7, 13), y: labels}
        with pytest.raises(KernelIndexError) as err:
            program.execute(feed)
        node, message = program.slots.errors[err.value.what]
        assert node.op == "sparse_softmax_cross_entropy" and err.value.value == 13
        assert "label 13 is out of range [0, 13)" in message.format(value=err.value.value)
        with pytest.raises(gc.GraphcError):
            run_reference([loss], feed)


# ---- views ------------------------------------------------------------------------------------
def test_reshape_transpose_expand_squeeze():
    x = normal(7, 13)
    check(lambda t: [gc.reshape(t * 2.0, (13, 7)) + 1.0, gc.transpose(t) * gc.transpose(t),
                     gc.squeeze(gc.expand_dims(t, 1) * 3.0, 1),
                     gc.reshape(gc.transpose(t + 1.0), (-1,))], x, batch=(0,))
    y = normal(3, 1, 5)
    check(lambda t: [gc.transpose(t, (2, 0, 1)) - 1.0, gc.squeeze(t) * 2.0,
                     gc.reshape(t, (5, 3)) + gc.reshape(t, (15,))[:3]], y)


def test_concat_split():
    a, b, c = normal(7, 13), normal(7, 2), normal(1, 13)
    check(lambda x, y: [gc.concat([x, y * 2.0, x], axis=1) + 1.0], a, b, batch=(0, 1))
    check(lambda x, z: gc.concat([x, z], axis=0) * 2.0, a, c, batch=(0,))
    check(lambda x: [p * float(n + 1) for n, p in enumerate(gc.split(x, [4, 1, 8], axis=1))], a,
          batch=(0,))
    check(lambda x: gc.concat(gc.split(x, [2, -1], axis=0)[::-1], axis=0) - x, a)


def gate_gradients(z):
    """Four pieces of one shape from the four quarters of z, joined again: an LSTM step's
    gate gradients and their concat."""
    i, f, g, o = gc.split(z, 4, axis=1)
    si, sf, c = gc.sigmoid(i), gc.sigmoid(f), 0.5 * o
    return gc.concat([c * si * (1.0 - si), c * sf, (1.0 - gc.square(gc.tanh(g))) * c, -o],
                     axis=1)


def test_concat_of_equal_pieces_is_one_kernel_storing_each_piece():
    z = normal(7, 4 * 13)
    z[0, :3], z[1, 13], z[2, 40:42] = [np.inf, -np.inf, np.nan], -0.0, [np.inf, np.nan]
    program = check(gate_gradients, z, batch=(0,))
    (kernel,) = program.kernels
    stores = [s for s in ir.walk_statements(kernel.body) if isinstance(s, ir.Store)]
    assert len(stores) == 4 and len({s.buffer for s in stores}) == 1
    with gc.Graph().as_default() as g:  # compiled for the devices too
        x = gc.placeholder(gc.float32, (None, 4 * 13))
        run(gate_gradients(x), {x: z}, graph=g)
    # pieces along axis 0, a stack (pieces with a new axis of 1), the same input twice, an
    # empty batch, and pieces of no columns
    a, b = normal(5, 3), normal(5, 3)
    check(lambda x, y: gc.concat([gc.exp(x), x * y, x], axis=0), a, b)
    check(lambda x: gc.stack([x + 1.0, gc.abs(x), x], axis=1), a, batch=(0,))
    check(gate_gradients, normal(0, 4 * 13), batch=(0,))
    check(lambda x, y: gc.concat([x * 2.0, y], axis=1), normal(4, 0), normal(4, 0))


def test_concat_of_unequal_pieces_still_reads_them_back():
    check(lambda x, y: gc.concat([gc.exp(x), y * 2.0], axis=1), normal(7, 3), normal(7, 5),
          batch=(0, 1))


def test_strided_slicing():
    x = normal(7, 13)
    check(lambda t: [t[1:-1:2, ::-3] * 2.0, t[-2::-2, 3:-1] + 1.0, t[3, ::2] * 2.0,
                     t[:, -1] - t[:, 0]], x)
    # and the gradient of a slice (strided_slice_grad scatters into zeros)
    check(lambda t: gc.grad(gc.sum(gc.square(t[1:-1:2, ::-3])), [t])[0], x)


def test_pad():
    x = normal(7, 13)
    check(lambda t: [gc.pad(t, [(1, 2), (0, 3)]) * 2.0,
                     gc.pad(t + 1.0, [(0, 0), (4, 1)], constant_values=-1.5)], x, batch=(0,))


def test_gather_and_one_hot():
    params = normal(7, 13)
    check(lambda p, i: gc.gather(p, i) * 2.0, params, integers(0, 7, 4))
    check(lambda p, i: gc.gather(p + 1.0, i, axis=1), params, integers(0, 13, 2, 3))
    labels = integers(-1, 6, 9)  # -1 and 5: rows of off_value only
    check(lambda i: [gc.one_hot(i, 5), gc.one_hot(i, 5, on_value=2.0, off_value=-1.0, axis=0),
                     gc.one_hot(i, 5, dtype=gc.int32)], labels, batch=(0,))


def test_bad_gather_index_raises():
    g = gc.Graph()
    with g.as_default():
        p = gc.placeholder(gc.float32, (7, 13))
        i = gc.placeholder(gc.int32, (None,))
        out = gc.gather(p, i) * 2.0
        program = Program([out])
        for bad in (7, -1):
            feed = {p: normal(7, 13), i: np.array([0, 3, bad, 6], np.int32)}
            with pytest.raises(KernelIndexError) as err:
                program.execute(feed)
            node, message = program.slots.errors[err.value.what]
            assert node.op == "gather" and err.value.value == bad
            assert f"index {bad} is out of range" in message.format(value=bad)
            with pytest.raises(gc.GraphcError):
                run_reference([out], feed)


# ---- matmul -----------------------------------------------------------------------------------
@pytest.mark.parametrize("m,k,n", [(7, 13, 5), (1, 1, 1), (1, 13, 1)])
def test_matmul_2d(m, k, n):
    a, b, bias = normal(m, k), normal(k, n), normal(n)
    check(lambda x, w: gc.matmul(x, w), a, b, rtol=1e-5, atol=1e-5)
    check(lambda x, w, c: gc.relu(gc.matmul(x, w) + c), a, b, bias, batch=(0,), rtol=1e-5,
          atol=1e-5)
    check(lambda x, w: gc.matmul(x, gc.transpose(w)), a, b.T.copy(), rtol=1e-5, atol=1e-5)
    check(lambda x, w: gc.matmul(gc.transpose(x), w), a.T.copy(), b, rtol=1e-5, atol=1e-5)


def test_batched_matmul_with_epilogue():
    a, b, bias = normal(3, 7, 13), normal(3, 13, 5), normal(5)
    check(lambda x, w, c: gc.relu(gc.matmul(x, w) + c), a, b, bias, rtol=1e-5, atol=1e-5)
    check(lambda x, w: gc.matmul(x, w) * 2.0, a, normal(13, 5), batch=(0,), rtol=1e-5,
          atol=1e-5)
    check(lambda x, w: gc.matmul(x, gc.transpose(w, (0, 2, 1))), a, normal(3, 5, 13), rtol=1e-5,
          atol=1e-5)
    check(lambda x, w: gc.matmul(gc.exp(x), w * 0.5), a, b, rtol=1e-5, atol=1e-5)  # prologues
    check(lambda x, w: gc.matmul(x, w), a.astype(np.float64), b.astype(np.float64), rtol=1e-12)


def test_batched_rows_read_out_of_order_are_copied_into_one_gemm():
    """(t, b, k) from a transpose of (b, t, k), times one (k, n): A is copied row-major and
    multiplied in one Gemm of t*b rows (not one per batch entry, each packing B again), the
    bias added on the way out; the weight gradient reads the steps reshaped into rows in
    place. Batch symbolic, sizes odd."""
    x, w, bias = normal(5, 3, 7), normal(7, 9), normal(9)
    x[1, 2, :2] = [np.inf, np.nan]

    def projection(x, w, c):
        return gc.matmul(gc.transpose(x, (1, 0, 2)), w) + c
    program = check(projection, x, w, bias, batch=(0,))
    gemms = [s for k in program.kernels for s in ir.walk_statements(k.body)
             if isinstance(s, ir.Gemm)]
    assert len(gemms) == 1 and not [s for k in program.kernels for s in k.body
                                    if isinstance(s, ir.Loop) and isinstance(s.body[0], ir.Gemm)]

    def weight_gradient(x, w, c):
        return gc.grad(gc.sum(gc.square(projection(x, w, c))), [w])[0]
    check(weight_gradient, normal(5, 3, 7), w, bias, batch=(0,), rtol=1e-4, atol=1e-4)


def test_integer_matmul_wraps_around():
    big = 2 ** 30
    for dtype in (np.int32, np.int64):
        check(lambda x, w: gc.matmul(x, w) + 1, integers(-big, big, 7, 13, dtype=dtype),
              integers(-big, big, 13, 5, dtype=dtype))
        check(gc.matmul, integers(-3, 3, 2, 1, 7, 3, dtype=dtype),
              integers(-3, 3, 4, 3, 5, dtype=dtype))
        check(gc.matmul, integers(-3, 3, 3, dtype=dtype), integers(-3, 3, 3, dtype=dtype))


ONE_D = [((13,), (13, 5)), ((7, 13), (13,)), ((13,), (13,)), ((2, 7, 13), (13,)),
         ((13,), (2, 13, 5)), ((2, 1, 7, 13), (3, 13, 1)), ((1,), (1,))]


@pytest.mark.parametrize("sa,sb", ONE_D)
def test_matmul_1d_operands_and_broadcast_batches(sa, sb):
    check(gc.matmul, normal(*sa), normal(*sb), rtol=1e-5, atol=1e-5)
    check(lambda x, w: gc.exp(gc.matmul(x * 0.5, w)) * 0.5, normal(*sa), normal(*sb),
          rtol=1e-5, atol=1e-5)


def _matmul_kernel(program):
    """The kernel that computes the matmul: its last one, holding the product's Reduce."""
    return [k for k in program.kernels if "matmul" in " ".join(k.nodes)][-1]


def _exprs(stmts):
    """Every expression under the statements, subexpressions included."""
    todo, found = list(ir.statement_exprs(stmts)), []
    while todo:
        found.append(todo.pop())
        todo.extend(ir.children(found[-1]))
    return found


def _reduces(stmts):
    return {e for e in _exprs(stmts) if isinstance(e, ir.Reduce)}


# (build, A, B, extent of the parallel loop): products with a vector side
VECTOR_PRODUCTS = [
    (gc.matmul, (1023, 13), (13,), 1023),  # dot products of rows
    (gc.matmul, (7, 13), (13, 1), 7),
    (gc.matmul, (1, 13), (13, 1023), 1023),  # column sums, the unit row no loop
    (gc.matmul, (13,), (13, 33), 33),
    (lambda x, v: gc.matmul(gc.transpose(x), v), (13, 33), (13,), 33),  # columns of x
    (lambda v, x: gc.matmul(v, gc.transpose(x)), (13,), (33, 13), 33),  # rows of x
    (gc.matmul, (3, 7, 13), (13,), 3),  # batch entries, each 7 rows
    (lambda v, x: gc.matmul(v, gc.transpose(x, (0, 2, 1))), (13,), (3, 5, 13), 3),
]


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
@pytest.mark.parametrize("build,sa,sb,extent", VECTOR_PRODUCTS)
def test_products_with_a_vector_side_are_sums(dtype, build, sa, sb, extent):
    """No Gemm: one Reduce(sum) over k per output element, in float32 for half dtypes, the
    loops over the output's axes of more than one position, the first of them parallel; the
    epilogue in the same kernel."""
    def cast(x):
        return x if dtype == "float32" else gc.cast(x, dtype)
    tol = {"float16": 1e-2, "bfloat16": 2e-2}.get(dtype, 1e-5)
    program = check(lambda x, y: gc.relu(build(cast(x), cast(y))) * 2.0, normal(*sa),
                    normal(*sb), rtol=tol, atol=tol)
    kernel = _matmul_kernel(program)
    assert not [s for s in ir.walk_statements(kernel.body) if isinstance(s, ir.Gemm)]
    (reduce,) = _reduces(kernel.body)
    assert reduce.op == "sum" and reduce.dtype == ("float64" if dtype == "float64" else
                                                   "float32")
    assert kernel.parallel_loop.extent == ir.const(extent)
    assert not any(s.extent == ir.const(1) for s in ir.walk_statements(kernel.body)
                   if isinstance(s, ir.Loop))


def test_vector_products_copy_a_computed_vector_once():
    """A vector side computed in the group (exp(v)) is copied first, not computed again for
    every row; a computed matrix side is read through its prologue; rows symbolic."""
    program = check(lambda x, v: gc.matmul(x * 0.5, gc.exp(v)) + 1.0, normal(9, 13),
                    normal(13), batch=(0,))
    copy, sums = program.kernels[-2:]
    assert _reduces(sums.body) and not _reduces(copy.body)
    assert "exp" not in {e.name for e in _exprs(sums.body) if isinstance(e, ir.Op)}
    assert "exp" in {e.name for e in _exprs(copy.body) if isinstance(e, ir.Op)}


def test_batched_vector_products_reading_columns_stay_gemms():
    """(k,) @ (b, k, n): B's columns inside each batch entry would be read a row apart, so
    this one is a Gemm per batch entry."""
    program = check(gc.matmul, normal(13), normal(3, 13, 5))
    assert [s for k in program.kernels for s in ir.walk_statements(k.body)
            if isinstance(s, ir.Gemm)]


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("sa,sb", [((7, 33), (33, 5)), ((3, 7, 33), (33,)), ((33,), (33, 1))])
def test_half_matmul_sums_in_float32_and_rounds_once(dtype, sa, sb):
    """A half Gemm statement by default; the result of float32 sums rounded once."""
    def build(x, w):
        x, w = gc.cast(x, dtype), gc.cast(w, dtype)
        return [gc.matmul(x, w), gc.matmul(x, w) * 2.0, gc.matmul(gc.transpose(gc.transpose(x)),
                                                                  w + 1.0)]
    program = check(build, normal(*sa), normal(*sb), rtol=1e-2, atol=1e-2)
    assert {s.dtype for k in program.kernels for s in k.body if isinstance(s, ir.Gemm)} \
        <= {dtype}


# ---- a whole train step -----------------------------------------------------------------------
def test_mlp_train_step():
    """Loss and gradients of a two-layer MLP with softmax cross-entropy, batch symbolic."""
    def step(x, y, w1, w2, b1):
        h = gc.relu(gc.matmul(x, w1) + b1)
        loss = gc.mean(gc.nn.sparse_softmax_cross_entropy(gc.matmul(h, w2), y))
        g1, g2, gb = gc.grad(loss, [w1, w2, b1])
        return [loss, g1, g2, gb, w1 - 0.1 * g1, w2 - 0.1 * g2]
    program = check(step, normal(9, 13), integers(0, 5, 9), normal(13, 11) * 0.3,
                    normal(11, 5) * 0.3, normal(11) * 0.1, batch=(0, 1), rtol=1e-5, atol=1e-6)
    assert len(program.kernels) >= 4 and not program.unsupported


def test_the_harness_sees_elements_no_kernel_wrote():
    """Buffers start poisoned: a kernel that does not run leaves NaN in what it should write."""
    def skip_reductions(kernel, buffers, dims):
        if "sum" not in kernel.nodes:
            run_kernel(kernel, buffers, dims)
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (7, 13))
        out = gc.sum(gc.exp(x), axis=1) * gc.transpose(x)
        program = Program([out])
        assert any("sum" in k.nodes for k in program.kernels)
        got = program.execute({x: normal(7, 13)}, skip_reductions)[0]
        assert np.isnan(got).all()


@settings(max_examples=int(os.environ.get("GRAPHC_HYPOTHESIS_EXAMPLES", 60)), deadline=None)
@given(random_graphs())
def test_random_graphs(case):
    """Random graphs over the whole op set (the optimizer tests' generator)."""
    program = Program(case.outputs)
    got = program.execute(case.feed)
    assert_same_values(run_reference(case.outputs, case.feed), got, case.outputs,
                       "\n".join(case.lines))


@pytest.mark.parametrize("fed", [False, True])
@pytest.mark.parametrize("rows", [0, 3])
def test_a_scalar_output_fused_into_a_broadcast_is_stored_when_the_broadcast_is_empty(
        fed, rows):
    """exp(x) of a scalar x, fetched (through minimum) and broadcast into e + exp(x) in one
    fusion group: its store sat inside the loop over e, which runs no times for an empty e,
    so device cpu returned whatever the buffer held. e constant, or fed for a run-time dim;
    on the interpreter and every device."""
    x, e = normal(), normal(rows)
    g = gc.Graph()
    with g.as_default():
        t = gc.placeholder(gc.float32, ())
        u = gc.placeholder(gc.float32, (None,)) if fed else gc.constant(e)
        outs = [gc.minimum(t, gc.exp(t)), u + gc.exp(t)]
        feed = {t: x, u: e} if fed else {t: x}
        assert_matches_reference(outs, feed)
    run(outs, feed, graph=g)
