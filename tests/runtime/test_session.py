"""Sessions and functions on the reference device."""
import collections

import numpy as np
import pytest

import graphc as gc
from tests.helpers import DEVICES

rng = np.random.default_rng(2)


def test_fetch_structures(graph):
    x = gc.placeholder(gc.float32, (None,), name="x")
    a, b = x * 2.0, x + 1.0
    sess = gc.Session(device="reference")
    xb = np.arange(3, dtype=np.float32)
    assert np.array_equal(sess.run(a, {x: xb}), xb * 2)
    lst = sess.run([a, [b]], {x: xb})
    assert isinstance(lst, list) and np.array_equal(lst[1][0], xb + 1)
    tup = sess.run((a, b), {x: xb})
    assert isinstance(tup, tuple)
    d = sess.run({"a": a, "nested": {"b": b}}, {"x": xb})  # feed by name too
    assert np.array_equal(d["nested"]["b"], xb + 1)
    Pair = collections.namedtuple("Pair", "p q")
    nt = sess.run(Pair(a, b), {x: xb})
    assert isinstance(nt, Pair) and np.array_equal(nt.q, xb + 1)


def test_feeds_accept_same_kind_and_refuse_lossy_casts(graph):
    x = gc.placeholder(gc.float32, (2,))
    i = gc.placeholder(gc.int32, (2,))
    sess = gc.Session(device="reference")
    out = sess.run(x * 1.0, {x: np.array([1.5, 2.5])})  # float64 -> float32 accepted
    assert out.dtype == np.float32
    assert sess.run(i + 1, {i: [1, 2]}).tolist() == [2, 3]  # Python ints -> int32
    with pytest.raises(gc.FeedError, match="has dtype float64; expected int32"):
        sess.run(i + 1, {i: np.array([1.5, 2.0])})


def test_a_new_batch_size_runs_the_same_graph(graph):
    x = gc.placeholder(gc.float32, (None, 3))
    W = gc.Variable(rng.normal(size=(3, 2)).astype(np.float32))
    y = gc.tanh(x @ W)
    sess = gc.Session(device="reference")
    w = sess.get_value(W)
    for n in (1, 7, 64):
        xb = rng.normal(size=(n, 3)).astype(np.float32)
        np.testing.assert_allclose(sess.run(y, {x: xb}), np.tanh(xb @ w), rtol=1e-6)


def test_variables_initialize_on_first_use_and_persist(graph):
    v = gc.Variable(np.array([1.0, 2.0], np.float32), name="v")
    inc = gc.assign_add(v, 1.0)
    sess = gc.Session(device="reference")
    np.testing.assert_array_equal(sess.run(inc), [2, 3])
    np.testing.assert_array_equal(sess.run(v), [2, 3])
    other = gc.Session(device="reference")  # values live in a session
    np.testing.assert_array_equal(other.run(v), [1, 2])
    sess.set_value(v, [10, 20])
    np.testing.assert_array_equal(sess.get_value(v), [10, 20])
    sess.run(gc.global_variables_initializer())


def test_variable_from_a_tensor_initial_value(graph):
    v = gc.Variable(gc.random.normal((3, 2), seed=5) * 0.5, name="w")
    sess = gc.Session(device="reference")
    first = sess.get_value(v)
    assert first.shape == (3, 2)
    np.testing.assert_array_equal(sess.run(v), first)  # initialized once


def test_assignments_read_old_values_and_apply_together(graph):
    a = gc.Variable(np.float32(1.0), name="a")
    b = gc.Variable(np.float32(10.0), name="b")
    swap = gc.group(gc.assign(a, b), gc.assign(b, a))
    sess = gc.Session(device="reference")
    assert sess.run(swap) is None  # a group fetches as None
    assert (sess.get_value(a), sess.get_value(b)) == (10.0, 1.0)


def test_assign_methods_and_sub(graph):
    v = gc.Variable(np.ones(3, np.float32))
    sess = gc.Session(device="reference")
    sess.run(v.assign_sub(np.full(3, 0.25, np.float32)))
    np.testing.assert_array_equal(sess.get_value(v), [0.75] * 3)
    sess.run(v.assign(gc.constant(2.0)))  # a scalar broadcasts to the variable's shape
    np.testing.assert_array_equal(sess.get_value(v), [2.0] * 3)


def test_random_is_stateful_and_reproducible_with_a_seed(graph):
    r = gc.random.uniform((4,), seed=42)
    n = gc.random.normal((1000,), mean=2.0, stddev=0.5)
    s1, s2 = gc.Session(device="reference"), gc.Session(device="reference")
    first, second = s1.run(r), s1.run(r)
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(s2.run(r), first)
    assert np.all((first >= 0) & (first < 1))
    draw = s1.run(n)
    assert abs(draw.mean() - 2.0) < 0.1 and abs(draw.std() - 0.5) < 0.1


def test_fetching_a_variable_returns_a_copy(graph):
    v = gc.Variable(np.zeros(2, np.float32))
    sess = gc.Session(device="reference")
    got = sess.run(v)
    got[0] = 5
    assert sess.get_value(v)[0] == 0


def test_function_with_updates_runs_in_the_default_session(graph):
    x = gc.placeholder(gc.float32, (None,), name="x")
    acc = gc.Variable(np.float32(0.0), name="acc")
    f = gc.function([x], gc.sum(x) + acc, updates=[(acc, acc + gc.sum(x))])
    assert f.session is gc.get_default_session()
    assert f(np.ones(3)) == 3.0
    assert f(np.ones(2)) == 5.0
    assert f.session.get_value(acc) == 5.0
    assert f(x=np.ones(1)) == 6.0


def test_function_in_a_given_session_and_with_block(graph):
    x = gc.placeholder(gc.float32, (2,), name="x")
    v = gc.Variable(np.zeros(2, np.float32))
    sess = gc.Session(device="reference")
    f = gc.function([x], [x * 2.0], updates={v: v + x}, session=sess)
    out = f(np.array([1, 2], np.float32))
    assert isinstance(out, list) and out[0].tolist() == [2, 4]
    assert sess.get_value(v).tolist() == [1, 2]
    with gc.Session(device="reference") as s2:
        assert gc.get_default_session() is s2
        g = gc.function([x], x + v)
        assert g.session is s2


def test_function_checks_its_arguments(graph):
    x = gc.placeholder(gc.float32, (2,), name="x")
    f = gc.function([x], x * 2.0)
    with pytest.raises(gc.FeedError, match="takes 1 inputs"):
        f()


def test_mlp_sgd_step_equals_numpy_by_hand(graph):
    n, d, h, k = 7, 5, 4, 3
    xb = rng.normal(size=(n, d))
    yb = rng.normal(size=(n, k))
    W1v, W2v = rng.normal(size=(d, h)), rng.normal(size=(h, k))
    x = gc.placeholder(gc.float64, (None, d))
    y = gc.placeholder(gc.float64, (None, k))
    W1, W2 = gc.Variable(W1v), gc.Variable(W2v)
    hid = gc.tanh(x @ W1)
    loss = gc.mean(gc.square(hid @ W2 - y))
    g1, g2 = gc.grad(loss, [W1, W2])
    f = gc.function([x, y], loss, updates=[(W1, W1 - 0.1 * g1), (W2, W2 - 0.1 * g2)],
                    session=gc.Session(device="reference"))
    f(xb, yb)
    # by hand
    a = np.tanh(xb @ W1v)
    err = a @ W2v - yb
    d_out = 2 * err / err.size
    dW2 = a.T @ d_out
    dW1 = xb.T @ ((d_out @ W2v.T) * (1 - a * a))
    np.testing.assert_allclose(f.session.get_value(W1), W1v - 0.1 * dW1, rtol=1e-12)
    np.testing.assert_allclose(f.session.get_value(W2), W2v - 0.1 * dW2, rtol=1e-12)


def test_unconnected_zero_gradient_of_a_static_placeholder_needs_no_feed(graph):
    x = gc.placeholder(gc.float32, (2, 3), name="x")
    v = gc.Variable(np.ones(3, np.float32))
    gx, gv = gc.grad(gc.sum(v * 2.0), [x, v], unconnected="zero")
    out = gc.Session(device="reference").run([gx, gv])
    np.testing.assert_array_equal(out[0], np.zeros((2, 3)))
    np.testing.assert_array_equal(out[1], [2.0, 2.0, 2.0])


@pytest.mark.parametrize("level", ["O0", "O1", "O2"])
def test_a_feed_the_fetches_do_not_need_is_not_read(graph, level):
    """A fed placeholder with run-time dims that no fetch reads: unoptimized, device cpu kept
    a buffer for it whose dims nothing bound (KeyError when planning the run)."""
    n = gc.placeholder(gc.float32, (None, None), name="unused")
    x = gc.placeholder(gc.float32, (None,), name="x")
    for device in ("reference",) + DEVICES:
        sess = gc.Session(device=device, optimize=level)
        got = sess.run(gc.neg(x), {n: np.ones((2, 5), np.float32), x: np.arange(3.0)})
        np.testing.assert_array_equal(got, -np.arange(3.0))
        assert sess.run(gc.constant(2.0) * 3.0, {n: np.ones((4, 1), np.float32)}) == 6.0


def test_an_assigned_value_broadcasts_to_the_variable_shape(graph):
    """assign(v, c) for a scalar c and v of shape (1, 3): on device cpu the variable took
    the value's shape (), so the next run that read it failed."""
    v = gc.Variable(np.zeros((1, 3)))
    assign = gc.assign(v, gc.constant(np.float64(2.5)))
    total = gc.sum(v * 2.0)
    for device in ("reference",) + DEVICES:
        sess = gc.Session(device=device)
        for expected in (0.0, 15.0):
            new, got = sess.run([assign, total])
            np.testing.assert_array_equal(new, np.full((1, 3), 2.5))
            assert got == expected
        np.testing.assert_array_equal(sess.get_value(v), np.full((1, 3), 2.5))
