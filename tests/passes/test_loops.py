"""Passes inside loop and cond bodies, and loop-invariant hoisting: what the optimized graph
holds, and that every device still gives what the unoptimized graph gives (zero-length
loops and gradients through loops included)."""
import numpy as np
import pytest

import graphc as gc
from tests.helpers import DEVICES, assert_same

rng = np.random.default_rng(5)


@pytest.fixture
def graph():
    g = gc.Graph()
    with g.as_default():
        yield g


def optimized(fetches, inputs, **options):
    """The optimized graph's output tensors of gc.function(inputs, fetches)."""
    f = gc.function(inputs, fetches, device="reference", **options)
    return f._exe.compilation.outputs


def nodes(outputs):
    from graphc.ir.graph import nodes_needed
    return nodes_needed(list(outputs))


def loops(outputs):
    return [n for n in nodes(outputs) if n.op == "loop"]


def ops_of(body):
    return sorted(n.op for n in body.nodes if n.op not in ("argument", "constant"))


def same_everywhere(fetches, inputs, feeds, **options):
    """Each device at O2 gives what the reference gives at O0, for every feed."""
    want_f = gc.function(inputs, fetches, device="reference", optimize="O0")
    fs = {d: gc.function(inputs, fetches, device=d, **options) for d in ("reference",) + DEVICES}
    for feed in feeds:
        want = want_f(*feed)
        for device, f in fs.items():
            assert_same(f(*feed), want, fetches, device)


def rnn(graph_dtype=gc.float32, units=5, features=3, batch=4):
    W = gc.Variable(rng.normal(size=(features, units)).astype(graph_dtype.np), name="W")
    U = gc.Variable((rng.normal(size=(units, units)) * 0.5).astype(graph_dtype.np), name="U")
    b = gc.Variable(rng.normal(size=units).astype(graph_dtype.np), name="b")
    x = gc.placeholder(graph_dtype, (None, batch, features), name="x")
    h0 = gc.placeholder(graph_dtype, (batch, units), name="h0")
    hs, _ = gc.scan(lambda x_t, h: gc.tanh(x_t @ W + h @ U + b), sequences=x,
                    outputs_info=[h0])
    return x, h0, W, U, b, hs


def test_the_input_projection_of_an_rnn_is_one_matmul_before_the_loop(graph):
    x, h0, W, U, b, hs = rnn()
    (out,) = optimized([hs], [x, h0])
    (loop,) = loops([out])
    outside = [n for n in nodes([out]) if n.op == "matmul"]
    assert len(outside) == 1
    (proj,) = outside
    assert [t.node.op for t in proj.inputs] == ["placeholder", "variable"]
    assert proj.outputs[0].shape[1:] == (4, 5)  # (time, batch, units): the whole sequence
    assert any(t is proj.outputs[0] for t in loop.inputs[1:1 + loop.attrs["counts"][0]])
    body = loop.attrs["body"]
    assert ops_of(body).count("matmul") == 1  # only h @ U runs per step
    assert len(body.arguments) == sum(loop.attrs["counts"])
    # at O1 (no hoisting) the product stays in the body
    (o1,) = optimized([hs], [x, h0], optimize="O1")
    assert not [n for n in nodes([o1]) if n.op == "matmul"]
    assert ops_of(loops([o1])[0].attrs["body"]).count("matmul") == 2
    feeds = [(rng.normal(size=(n, 4, 3)).astype("float32"),
              rng.normal(size=(4, 5)).astype("float32")) for n in (7, 1, 0)]
    same_everywhere([hs], [x, h0], feeds)


def test_rnn_gradients_after_hoisting_and_zero_length_sequences(graph):
    x, h0, W, U, b, hs = rnn(gc.float64)
    loss = gc.sum(hs * hs)
    grads = gc.grad(loss, [W, U, b, x, h0])
    outs = optimized([loss] + grads, [x, h0])
    products = [n for n in nodes(outs) if n.op == "matmul"]
    assert any([t.node.op for t in n.inputs] == ["placeholder", "variable"] for n in products)
    feeds = [(rng.normal(size=(n, 4, 3)), rng.normal(size=(4, 5))) for n in (6, 0)]
    same_everywhere([loss] + grads, [x, h0], feeds)
    f = gc.function([x, h0], grads, device="cpu")
    zero = f(*feeds[1])
    assert zero[3].shape == (0, 4, 3)
    np.testing.assert_array_equal(zero[0], 0)


def test_invariant_work_moves_out_of_scans_and_while_loops(graph):
    W = gc.Variable(rng.normal(size=(3, 3)), name="W")
    x = gc.placeholder(gc.float64, (None, 3), name="x")
    # exp(W) and its row sums read only a captured variable: computed once
    ys, _ = gc.scan(lambda x_t, h: h * 0.5 + gc.sum(gc.exp(W), axis=0) * x_t, sequences=x,
                    outputs_info=[gc.constant(np.zeros(3))])
    n = gc.placeholder(gc.int32, (), name="n")
    i, v = gc.while_loop(lambda i, v: i < n,
                         lambda i, v: (i + 1, v + gc.sum(gc.tanh(W) @ W)),
                         (gc.constant(0), gc.constant(0.0, dtype=gc.float64)))
    outs = optimized([ys, v], [x, n])
    body_ops = [ops_of(lp.attrs["body"]) for lp in loops(outs)]
    assert not any("exp" in ops or "tanh" in ops for ops in body_ops), body_ops
    outside = {n.op for n in nodes(outs)} - {"loop"}
    assert {"exp", "tanh", "matmul", "sum"} <= outside
    feeds = [(rng.normal(size=(t, 3)), np.int32(k)) for t, k in ((5, 3), (0, 0), (2, 1))]
    same_everywhere([ys, v], [x, n], feeds)


def test_nothing_that_may_fail_or_may_not_run_moves(graph):
    table = gc.placeholder(gc.float64, (None,), name="table")
    k = gc.placeholder(gc.int32, (), name="k")
    # the loop runs no step when k is out of range: its gather must not run either
    _, v = gc.while_loop(lambda i, v: i < gc.minimum(k, 2) - 5,
                         lambda i, v: (i + 1, v + gc.gather(table, k) * 2.0),
                         (gc.constant(0), gc.constant(0.0, dtype=gc.float64)))
    # a cond's branches keep their work, invariant or not
    y = gc.cond(k < 3, lambda: gc.exp(gc.gather(table, k)), lambda: gc.constant(0.0, gc.float64))
    outs = optimized([v, y], [table, k])
    assert "gather" in ops_of(loops(outs)[0].attrs["body"])
    (cond,) = [n for n in nodes(outs) if n.op == "cond"]
    assert ops_of(cond.attrs["true_body"]) == ["exp", "gather"]
    assert not {"gather", "exp"} & {n.op for n in nodes(outs)}
    same_everywhere([v, y], [table, k], [(np.arange(3.0), np.int32(7)),
                                         (np.arange(3.0), np.int32(1))])


def test_passes_run_inside_bodies_nested_ones_too(graph):
    x = gc.placeholder(gc.float64, (None, 2, 3), name="x")

    def inner(row, acc):
        # x * 1 (algebraic), log(sigmoid) (stabilize), 2 * 3 (folding), a dead node (dce)
        gc.exp(row) * 5.0
        return acc + gc.log(gc.sigmoid(row * 1.0)) * (gc.constant(2.0) * gc.constant(3.0))

    def outer(m):
        return gc.foldl(inner, m, initializer=gc.zeros_like(m[0]))
    ys = gc.map_fn(outer, x)
    (out,) = optimized([ys], [x])
    (loop,) = loops([out])
    (nested,) = [n for n in loop.attrs["body"].nodes if n.op == "loop"]
    inner_body = nested.attrs["body"]
    ops = ops_of(inner_body)
    assert "log" not in ops and "sigmoid" not in ops and "softplus" in ops, ops
    assert "exp" not in ops  # the dead node is gone
    consts = [n.attrs["value"].array for n in inner_body.nodes if n.op == "constant"]
    assert any(np.all(c == 6.0) for c in consts)
    # bodies keep their arguments in order, used or not, and their results
    before = gc.function([x], ys, optimize="O0")._exe.compilation.outputs
    old = loops(before)[0].attrs["body"]
    assert [a.type for a in loop.attrs["body"].arguments] == [a.type for a in old.arguments]
    assert [r.type for r in loop.attrs["body"].results] == [r.type for r in old.results]
    same_everywhere([ys], [x], [(rng.normal(size=(n, 2, 3)),) for n in (3, 0)])


def test_excluding_loops_keeps_bodies_whole_and_o0_changes_no_body(graph):
    x, h0, W, U, b, hs = rnn()
    (out,) = optimized([hs], [x, h0], excluding=["loops"])
    assert ops_of(loops([out])[0].attrs["body"]).count("matmul") == 2
    (o0,) = optimized([hs], [x, h0], optimize="O0")
    assert loops([o0])[0].attrs["body"] is hs.node.attrs["body"]


def test_products_move_out_of_nested_loops_level_by_level(graph):
    x = gc.placeholder(gc.float64, (None, 2, 3), name="x")
    W = gc.Variable(rng.normal(size=(3, 3)), name="W")
    ys = gc.map_fn(lambda m: gc.foldl(lambda a, r: a * 0.5 + gc.tanh(r @ W), m,
                                      initializer=gc.constant(np.zeros(3))), x)
    (out,) = optimized([ys], [x])
    # r @ W leaves the foldl as m @ W, which leaves the map_fn as x @ W
    (proj,) = [n for n in nodes([out]) if n.op == "matmul"]
    assert [t.node.op for t in proj.inputs] == ["placeholder", "variable"]
    (loop,) = loops([out])
    (inner,) = [n for n in loop.attrs["body"].nodes if n.op == "loop"]
    assert "matmul" not in ops_of(loop.attrs["body"]) + ops_of(inner.attrs["body"])
    same_everywhere([ys], [x], [(rng.normal(size=(n, 2, 3)),) for n in (4, 0)])
