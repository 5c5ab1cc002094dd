"""Loop rewrites for gradients: the backward loop reads the forward loop's step values instead of
recomputing them (`loop_step_values`), and a carried sum of products becomes one product after
the loop (`loop_accumulators`). What the optimized graph holds, values on every device against
O0, gradients against central differences, zero-length loops, n_steps shorter than the
sequences and go_backwards."""
import numpy as np
import pytest

import graphc as gc
from tests.helpers import check_grad
from tests.passes.test_loops import loops, nodes, optimized, same_everywhere

rng = np.random.default_rng(11)
B, F, U = 3, 2, 4  # batch, features, units


@pytest.fixture
def graph():
    g = gc.Graph()
    with g.as_default():
        yield g


def lstm(x, h0, c0, W, R, go_backwards=False, n_steps=None):
    """The stacked h of an LSTM over x (time, batch, features), gates i, f, g, o."""
    def step(p_t, h, c):
        z = p_t + h @ R
        zi, zf, zg, zo = gc.split(z, 4, axis=-1)
        c = gc.sigmoid(zf) * c + gc.sigmoid(zi) * gc.tanh(zg)
        return [gc.sigmoid(zo) * gc.tanh(c), c]
    (hs, _), _ = gc.scan(step, sequences=x @ W, outputs_info=[h0, c0],
                         go_backwards=go_backwards, n_steps=n_steps)
    return hs


def weights(dtype="float64"):
    return (rng.normal(size=(F, 4 * U)).astype(dtype),
            (rng.normal(size=(U, 4 * U)) * 0.5).astype(dtype))


def feeds(lengths, dtype="float64"):
    return [(rng.normal(size=(n, B, F)).astype(dtype), rng.normal(size=(B, U)).astype(dtype),
             rng.normal(size=(B, U)).astype(dtype)) for n in lengths]


def build(graph, dtype=gc.float64, length=None, **options):
    w, r = weights(dtype.name)
    W, R = gc.Variable(w, name="W"), gc.Variable(r, name="R")
    x = gc.placeholder(dtype, (length, B, F), name="x")
    h0 = gc.placeholder(dtype, (B, U), name="h0")
    c0 = gc.placeholder(dtype, (B, U), name="c0")
    hs = lstm(x, h0, c0, W, R, **options)
    loss = gc.sum(hs * hs) + 0.1 * gc.sum(hs)
    return [x, h0, c0], [loss] + gc.grad(loss, [W, R, x, h0, c0])


def results_of(loop):
    return len(loop.attrs["body"].results)


@pytest.mark.parametrize("length", [None, 5])
def test_the_backward_loop_reads_the_forward_pre_activations(graph, length):
    inputs, outs = build(graph, length=length)
    opt = optimized(outs, inputs)
    forward, backward = sorted(loops(opt), key=lambda n: n.attrs["reverse"])
    assert results_of(forward) == 3  # h, c and the kept z = p_t + h @ R
    kept = forward.outputs[2]
    assert any(t is kept for t in backward.inputs[1:1 + backward.attrs["counts"][0]])
    # no product over the whole sequence recomputes z: only x @ W and dW's remain outside
    outside = [n for n in nodes(opt) if n.op == "matmul"]
    assert all(n.inputs[1].node.op == "variable" or n.inputs[0].shape[-1] != U
               for n in outside), [n.inputs for n in outside]
    excluded = optimized(outs, inputs, excluding=["loop_step_values"])
    assert results_of(sorted(loops(excluded), key=lambda n: n.attrs["reverse"])[0]) == 2
    same_everywhere(outs, inputs, feeds([5] if length else [5, 1, 0]))


def test_the_rewrite_keeps_gradients_right():
    w, r = weights()

    def f(x, h0, c0):
        return lstm(x, h0, c0, gc.constant(w), gc.constant(r))[-1]
    check_grad(f, *feeds([4])[0], rtol=1e-5)

    def backwards(x, h0, c0):
        return lstm(x, h0, c0, gc.constant(w), gc.constant(r), go_backwards=True)
    check_grad(backwards, *feeds([3])[0], rtol=1e-5)


def test_go_backwards_and_float32(graph):
    inputs, outs = build(graph, dtype=gc.float32, go_backwards=True)
    forward = sorted(loops(optimized(outs, inputs)), key=lambda n: n.attrs["reverse"])[0]
    assert results_of(forward) == 3
    same_everywhere(outs, inputs, feeds([6, 1, 0], "float32"))


def test_n_steps_shorter_than_the_sequence_keeps_only_what_has_the_loop_s_rows(graph):
    inputs, outs = build(graph, length=6, n_steps=4)
    forward = sorted(loops(optimized(outs, inputs)), key=lambda n: n.attrs["reverse"])[0]
    # the projection p covers 6 rows and the loop runs 4 steps: p + h @ R is not a step value
    # of the forward loop, h @ R (over the states before each step) is
    assert [t.node.op for t in forward.attrs["body"].results][2:] == ["matmul"]
    same_everywhere(outs, inputs, feeds([6]))


# ---- loop_accumulators ---------------------------------------------------------------------
def carries(loop):
    return loop.attrs["counts"][1]


@pytest.mark.parametrize("go_backwards", [False, True])
def test_the_recurrent_kernel_gradient_is_one_product_after_the_backward_loop(graph,
                                                                              go_backwards):
    inputs, outs = build(graph, length=5, go_backwards=go_backwards)
    opt = optimized(outs, inputs)
    backward = sorted(loops(opt), key=lambda n: n.attrs["reverse"])[1]
    assert carries(backward) == 2  # dh and dc; dR is no longer carried
    excluded = optimized(outs, inputs, excluding=["loop_accumulators"])
    assert carries(sorted(loops(excluded), key=lambda n: n.attrs["reverse"])[1]) == 3
    # a length known only at run time: the states before each step are not provably as many
    # as the steps (one row more after zero steps); they are cut to the steps' rows (those of
    # the other factor, a stacked step value) and the carry goes too
    for dtype in (gc.float64, gc.float32):
        with gc.Graph().as_default():
            inputs_d, outs_d = build(gc.get_default_graph(), dtype=dtype)
            backward_d = sorted(loops(optimized(outs_d, inputs_d)),
                                key=lambda n: n.attrs["reverse"])[1]
            assert carries(backward_d) == 2
            assert any(n.op == "resize_rows" for n in nodes(optimized(outs_d, inputs_d)))
            same_everywhere(outs_d, inputs_d, feeds([4, 0, 1, 7, 3], dtype.name))
    # dR: one product whose contraction is (time * batch): (U, T*B) @ (T*B, 4U)
    flat = [n for n in nodes(opt) if n.op == "matmul" and n.inputs[0].shape[0] == U
            and n.inputs[1].shape[-1] == 4 * U and n.inputs[0].rank == 2]
    assert len(flat) == 1
    same_everywhere(outs, inputs, feeds([5]))


def test_a_sum_of_products_of_sequence_slices_and_body_values(graph):
    x = gc.placeholder(gc.float64, (None, B, F), name="x")
    w = gc.Variable(rng.normal(size=(F, U)), name="w")
    # foldl: only the final accumulator is read; the factors are the slice and a body value
    final = gc.foldl(lambda acc, x_t: acc + gc.transpose(x_t) @ gc.sigmoid(x_t @ w), x,
                     initializer=gc.constant(np.ones((F, U))))
    loss = gc.sum(final * final)
    outs = [final, loss]  # (a gradient would read the stacked accumulator)
    opt = optimized(outs, [x])
    # sigmoid(x_t @ w) moves out (loop_invariants), the sum of products becomes one product of
    # the two sequences, and the loop, left with nothing to compute, goes
    assert not loops(opt)
    assert [n.inputs[0].shape[0] for n in nodes(opt) if n.op == "matmul"][-1] == F
    same_everywhere(outs, [x], [(rng.normal(size=(n, B, F)),) for n in (4, 1, 0)])
    f = gc.function([x], final, device="cpu")
    np.testing.assert_allclose(f(np.zeros((0, B, F))), np.ones((F, U)))


def test_a_used_stack_a_carry_factor_or_a_shorter_n_steps_keeps_the_carry(graph):
    """(n_steps shorter than two sequence factors: no stacked step value to cut them by)"""
    x = gc.placeholder(gc.float64, (6, B, F), name="x")
    w = gc.Variable(rng.normal(size=(F, F)), name="w")
    step = lambda x_t, acc: acc + gc.transpose(x_t) @ x_t  # noqa: E731
    zero = gc.constant(np.zeros((F, F)))
    stacked, _ = gc.scan(step, sequences=x, outputs_info=[zero])
    short, _ = gc.scan(step, sequences=x, outputs_info=[zero], n_steps=4)
    carried, _ = gc.scan(lambda x_t, acc: acc + acc @ w, sequences=x, outputs_info=[zero + 1])
    outs = [stacked, short[-1], carried[-1]]
    assert [carries(n) for n in loops(optimized(outs, [x]))] == [1, 1, 1]
    same_everywhere(outs, [x], [(rng.normal(size=(6, B, F)),)])


def test_accumulator_gradients_by_central_differences():
    w, r = weights()

    def f(x, h0, c0):
        R = gc.constant(r)
        hs = lstm(x, h0, c0, gc.constant(w), R)
        g = gc.grad(gc.sum(hs * hs), [R])[0]  # dR, accumulated over the steps
        return g
    check_grad(f, *feeds([3])[0], rtol=1e-5)


def test_a_body_value_factor_becomes_a_stacked_result(graph):
    x = gc.placeholder(gc.float64, (None, None, F), name="x")  # batch known at run time
    w = gc.Variable(rng.normal(size=(F, U)), name="w")
    # x_t[::-1] views a shape known only at run time: it stays in the body (loop_invariants)
    final = gc.foldl(lambda acc, x_t: acc + gc.transpose(x_t) @ gc.tanh(x_t[::-1] @ w), x,
                     initializer=gc.constant(np.ones((F, U))))
    (loop,) = loops(optimized([final], [x]))
    assert carries(loop) == 0 and len(loop.attrs["body"].results) == 1  # tanh(...) stacked
    same_everywhere([final], [x], [(rng.normal(size=(n, B, F)),) for n in (4, 1, 0)])
