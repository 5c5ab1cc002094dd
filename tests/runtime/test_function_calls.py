"""Repeated gc.function calls on device "cpu": arrays that fit the last run go straight to the
native call (run_again), and everything else still gets the full feed checks."""
import numpy as np
import pytest

import graphc as gc

rng = np.random.default_rng(4)


def uniform(*shape, dtype=np.float32):
    return rng.uniform(-1, 1, shape).astype(dtype)


def cpu_function(inputs, outputs, graph, **kwargs):
    return gc.function(inputs, outputs, session=gc.Session(graph, device="cpu"), **kwargs)


def test_repeated_calls_see_new_arrays_and_values_changed_in_place(graph):
    x = gc.placeholder(gc.float32, (None, 3), name="x")
    f = cpu_function([x], gc.exp(x) + 1.0, graph)
    assert f._exe.repeatable
    xb = uniform(5, 3)
    for _ in range(3):
        np.testing.assert_allclose(f(xb), np.exp(xb) + 1, rtol=1e-6)
        xb += 0.5  # the same array, new values
    [again] = f.session.execute_again(f._exe, (xb,))  # the shortcut is taken
    np.testing.assert_allclose(again, np.exp(xb) + 1, rtol=1e-6)
    for xb in (uniform(5, 3), uniform(1, 3), uniform(5, 3), uniform(7, 3)):  # new batch sizes
        np.testing.assert_allclose(f(xb), np.exp(xb) + 1, rtol=1e-6)


def test_arrays_that_do_not_fit_the_last_run_are_checked_and_converted(graph):
    x = gc.placeholder(gc.float32, (4, 3), name="x")
    f = cpu_function([x], x * 2.0, graph)
    xb = uniform(4, 3)
    f(xb)
    wide = uniform(4, 3, dtype=np.float64)  # cast to float32
    np.testing.assert_allclose(f(wide), wide.astype(np.float32) * 2)
    strided = uniform(3, 4).T  # not contiguous
    np.testing.assert_allclose(f(strided), strided * 2)
    np.testing.assert_allclose(f(xb.tolist()), xb * 2)  # a list
    readonly = uniform(4, 3)
    readonly.flags.writeable = False
    np.testing.assert_allclose(f(readonly), readonly * 2)
    np.testing.assert_allclose(f(xb), xb * 2)


def test_bad_feeds_fail_as_on_a_first_call(graph):
    x = gc.placeholder(gc.int32, (2, None), name="x")
    y = x + 1
    bad = [np.zeros((3, 2), np.int32), np.zeros((2, 2), np.float64) + 0.5,
           np.array([["a", "b"], ["c", "d"]]), np.zeros((2, 2, 1), np.int32)]
    messages = []
    for warm in (False, True):
        f = cpu_function([x], y, graph)
        if warm:
            f(np.ones((2, 2), np.int32))
        found = []
        for value in bad:
            with pytest.raises(gc.FeedError) as err:
                f(value)
            found.append(str(err.value))
        messages.append(found)
    assert messages[0] == messages[1]
    assert "has shape (3, 2); expected (2, None)" in messages[0][0]


def test_variables_set_between_calls_are_read(graph):
    x = gc.placeholder(gc.float32, (3,), name="x")
    w = gc.Variable(np.ones(3, np.float32), name="w")
    f = cpu_function([x], x * w, graph)
    xb = uniform(3)
    np.testing.assert_allclose(f(xb), xb)
    f.session.set_value(w, [1, 2, 3])
    np.testing.assert_allclose(f(xb), xb * [1, 2, 3])


def test_updates_apply_on_every_call(graph):
    x = gc.placeholder(gc.float32, (2,), name="x")
    total = gc.Variable(np.zeros(2, np.float32), name="total")
    f = cpu_function([x], total + x, graph, updates=[(total, total + x)])
    assert f._exe.repeatable  # the assignment runs no step of its own
    for i in range(1, 4):
        np.testing.assert_array_equal(f(np.ones(2, np.float32)), [i, i])
        np.testing.assert_array_equal(f.session.get_value(total), [i, i])


def spy_on(sess):
    """The names of the session's entries each call of a function goes through."""
    taken = []
    for name in ("execute", "execute_again"):
        def call(exe, arrays, run=getattr(sess, name), name=name):
            out = run(exe, arrays)
            taken.append(name if out is not None else "checked")
            return out
        setattr(sess, name, call)
    return taken


def mlp_step(graph, dropout=None):
    """(inputs, loss, updates, variables) of a small SGD train step."""
    x = gc.placeholder(gc.float32, (None, 7), name="x")
    y = gc.placeholder(gc.int32, (None,), name="y")
    params = [gc.Variable(uniform(7, 9), name="w1"), gc.Variable(uniform(9), name="b1"),
              gc.Variable(uniform(9, 3), name="w2"), gc.Variable(uniform(3), name="b2")]
    h = gc.relu(x @ params[0] + params[1])
    if dropout:
        h = gc.nn.dropout(h, dropout)
    loss = gc.mean(gc.nn.sparse_softmax_cross_entropy(h @ params[2] + params[3], y))
    grads = gc.grad(loss, params)
    return [x, y], loss, [(p, p - 0.1 * g) for p, g in zip(params, grads)], params


def test_train_steps_take_the_fast_path_and_update_as_the_reference_does(graph):
    inputs, loss, updates, params = mlp_step(graph)
    f = cpu_function(inputs, loss, graph, updates=updates)
    g = gc.function(inputs, loss, updates=updates, session=gc.Session(graph, device="reference"))
    exe = f._exe
    assert exe.repeatable and exe.in_variables  # some values computed over their variables
    taken = spy_on(f.session)
    values = f.session._values
    xb, yb = uniform(13, 7), rng.integers(0, 3, 13).astype(np.int32)
    for step in range(4):
        if step == 2:
            xb, yb = uniform(1, 7), rng.integers(0, 3, 1).astype(np.int32)  # a new shape
        before = {uid: values.get(uid) for uid, _, _ in exe.in_variables}
        np.testing.assert_allclose(f(xb, yb), g(xb, yb), rtol=1e-5)
        for p in params:
            np.testing.assert_allclose(f.session.get_value(p), g.session.get_value(p),
                                       rtol=1e-5, atol=1e-6)
        # written where the variable's array is: the session holds the same arrays
        assert step == 0 or all(values[uid] is before[uid] for uid in before)
    assert taken == ["checked", "execute", "execute_again"] * 2


def test_outputs_and_variables_never_share_arrays(graph):
    """A fetched new value, a fetched variable and the variables' arrays stay apart, and
    fetching the variable gives its value from before the run."""
    x = gc.placeholder(gc.float32, (5,), name="x")
    w = gc.Variable(uniform(5), name="w")
    v = gc.Variable(uniform(5), name="v")
    new_w = w * 0.5 + x
    f = cpu_function([x], [new_w, v], graph, updates=[(w, new_w), (v, v + 1.0)])
    sess = f.session
    kept = []
    for _ in range(3):
        xb = uniform(5)
        old_w, old_v = sess.get_value(w), sess.get_value(v)
        got_w, got_v = f(xb)
        np.testing.assert_allclose(got_w, old_w * 0.5 + xb, rtol=1e-6)
        np.testing.assert_array_equal(got_v, old_v)
        np.testing.assert_allclose(sess.get_value(w), got_w, rtol=1e-6)
        np.testing.assert_allclose(sess.get_value(v), old_v + 1, rtol=1e-6)
        for out in (got_w, got_v):
            assert not any(np.shares_memory(out, a) for a in sess._values.values())
        kept.append((got_w, np.array(got_w)))
    for got, copy in kept:  # later calls left earlier outputs alone
        np.testing.assert_array_equal(got, copy)


def test_an_update_that_others_read_first_is_kept_apart(graph):
    """b's new value reads a's old one; variables swapped by two assignments."""
    x = gc.placeholder(gc.float32, (6,), name="x")
    a = gc.Variable(uniform(6), name="a")
    b = gc.Variable(uniform(6), name="b")
    c = gc.Variable(uniform(6), name="c")
    d = gc.Variable(uniform(6), name="d")
    updates = [(a, a + x), (b, gc.exp(a) * 2.0), (c, d), (d, c)]
    for optimize in ("O0", "O2"):
        f = gc.function([x], gc.sum(x), updates=updates, optimize=optimize,
                        session=gc.Session(graph, device="cpu"))
        g = gc.function([x], gc.sum(x), updates=updates,
                        session=gc.Session(graph, device="reference"))
        for _ in range(3):
            xb = uniform(6)
            f(xb)
            g(xb)
            for var in (a, b, c, d):
                np.testing.assert_allclose(f.session.get_value(var), g.session.get_value(var),
                                           rtol=1e-6)


def test_a_run_that_fails_changes_no_variable(graph):
    """An index error raised after or before the update kernels leaves every variable as
    it was, whether the new value goes over the variable or beside it."""
    i = gc.placeholder(gc.int32, (3,), name="i")
    w = gc.Variable(uniform(4, 2), name="w")
    v = gc.Variable(uniform(4, 2), name="v")
    picked = gc.gather(w, i)
    for outputs, new in ((gc.sum(picked), w * 2.0), (gc.gather(w * 2.0, i), w + 1.0),
                         (gc.sum(picked), gc.gather(w, i * 0)[0] + w),
                         (gc.gather(v, i), w + 1.0)):  # the update's kernel comes first
        f = cpu_function([i], outputs, graph, updates=[(w, new)])
        sess = f.session
        start = sess.get_value(w)
        f(np.array([0, 3, 1], np.int32))
        after_one = sess.get_value(w)
        assert not np.array_equal(after_one, start)
        for _ in range(2):
            with pytest.raises(gc.IndexError_):
                f(np.array([0, 4, 1], np.int32))
            np.testing.assert_array_equal(sess.get_value(w), after_one)


def test_dropout_train_steps_take_the_fast_path_with_their_draws(graph):
    """Random draws stay host steps, and the fast path still takes the step: the same
    draws and updates as in a session whose calls all take the checked path."""
    inputs, loss, updates, params = mlp_step(graph, dropout=0.3)
    fast = gc.function(inputs, loss, updates=updates,
                       session=gc.Session(graph, device="cpu", seed=5))
    checked = gc.function(inputs, loss, updates=updates,
                          session=gc.Session(graph, device="cpu", seed=5))
    assert fast._exe.repeatable
    taken = spy_on(fast.session)
    xb, yb = uniform(11, 7), rng.integers(0, 3, 11).astype(np.int32)
    for _ in range(3):
        np.testing.assert_allclose(fast(xb, yb), checked(xb.tolist(), yb.tolist()), rtol=1e-5)
    assert taken.count("execute_again") == 2
    for p in params:
        np.testing.assert_allclose(fast.session.get_value(p), checked.session.get_value(p),
                                   rtol=1e-5, atol=1e-6)


def test_an_output_that_is_a_feed_is_a_copy(graph):
    x = gc.placeholder(gc.float32, (3,), name="x")
    f = cpu_function([x], [x, x + 1.0], graph)
    xb = uniform(3)
    for _ in range(2):
        same, plus = f(xb)
        assert same is not xb and np.array_equal(same, xb)
        np.testing.assert_allclose(plus, xb + 1)


def test_bfloat16_feeds_are_rounded_on_every_call(graph):
    x = gc.placeholder(gc.bfloat16, (3,), name="x")
    f = cpu_function([x], gc.cast(x, gc.float32), graph)
    xb = np.array([1.00390625, 2.0, -3.0078125], np.float32)  # not all bfloat16 values
    first, second = f(xb), f(xb)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, [1.0, 2.0, -3.0])


def test_calls_of_native_kernels_alone_take_the_direct_way(graph):
    """A program of native calls with fresh outputs runs them straight from run_again: nested
    fetch structures come back whole, an output the caller keeps is never written over, and
    a fed array changed in place is read again."""
    x = gc.placeholder(gc.float32, (None, 5), name="x")
    y = gc.placeholder(gc.float32, (5,), name="y")
    f = cpu_function([x, y], {"sum": x + y, "pair": (gc.exp(x), gc.max(x, axis=1))}, graph)
    xb, yb = uniform(3, 5), uniform(5)
    kept = []
    for _ in range(3):
        out = f(xb, yb)
        assert f._exe.last_plan.direct is not None
        kept.append((xb.copy(), out))
        xb += 0.25
    for xs, out in kept:  # every call's outputs are its own arrays
        np.testing.assert_allclose(out["sum"], xs + yb, rtol=1e-6)
        np.testing.assert_allclose(out["pair"][0], np.exp(xs), rtol=1e-6)
        np.testing.assert_array_equal(out["pair"][1], xs.max(axis=1))
    one = cpu_function([x], gc.abs(x), graph)
    special = np.array([[np.inf, -np.inf, np.nan, -0.0, 2.5]] * 2, np.float32)
    for _ in range(2):
        got = one(special)
        np.testing.assert_array_equal(got, np.abs(special))
        assert not np.signbit(got[0, 3])
    assert one(np.zeros((0, 5), np.float32)).shape == (0, 5)


def test_a_bad_index_is_diagnosed_on_the_direct_way(graph):
    """A gather's bad index raises the reference's error on a repeated call too, and the next
    good call runs."""
    i = gc.placeholder(gc.int32, (3,), name="i")
    table = uniform(4, 2)
    f = cpu_function([i], gc.gather(gc.constant(table), i) * 2.0, graph)
    good = np.array([0, 3, 1], np.int32)
    np.testing.assert_allclose(f(good), table[good] * 2)
    assert f._exe.last_plan.direct is not None
    for _ in range(2):
        with pytest.raises(gc.IndexError_, match="4"):
            f(np.array([0, 4, 1], np.int32))
    np.testing.assert_allclose(f(good), table[good] * 2)


def test_the_direct_way_follows_calls_that_alternate_between_shapes(graph):
    """Each set of shapes has its own plan; the program's runner, which takes no arguments,
    runs on the plan of the call at hand however the calls alternate."""
    x = gc.placeholder(gc.float32, (None, 4), name="x")
    f = cpu_function([x], gc.nn.softmax(x * 2.0, axis=-1), graph)
    arrays = [uniform(n, 4) for n in (5, 1, 5, 3, 1)]
    for xb in arrays + arrays[::-1]:
        for _ in range(2):  # the second call of a shape takes the direct way
            e = np.exp(2 * xb - (2 * xb).max(axis=-1, keepdims=True))
            np.testing.assert_allclose(f(xb), e / e.sum(axis=-1, keepdims=True), rtol=1e-6)
            assert f._exe.last_plan.shapes[f._exe.feed_slots[0]] == xb.shape


def test_arrays_whose_strides_differ_from_a_new_arrays_take_the_checked_way(graph):
    """The shortcut compares strides with a new C-contiguous array's: a contiguous array with
    other strides on an axis of extent 1, or a broadcast view, gets the full checks and the
    same values; an empty array takes the shortcut as any other."""
    x = gc.placeholder(gc.float32, (4, 1), name="x")
    f = cpu_function([x], x * 2.0, graph)
    xb = uniform(4, 1)
    np.testing.assert_allclose(f(xb), xb * 2)
    odd = uniform(1, 4).T
    assert odd.flags.c_contiguous and odd.strides != xb.strides
    wide = np.broadcast_to(uniform(1, 1), (4, 1))
    for other in (odd, wide):
        assert f.session.execute_again(f._exe, (other,)) is None
        np.testing.assert_allclose(f(other), other * 2)
    [again] = f.session.execute_again(f._exe, (xb,))
    np.testing.assert_allclose(again, xb * 2)
    e = gc.placeholder(gc.float32, (None, 3), name="e")
    g = cpu_function([e], e + 1.0, graph)
    empty = np.zeros((0, 3), np.float32)
    assert g(empty).shape == (0, 3)
    [again] = g.session.execute_again(g._exe, (empty,))  # an empty array's strides fit too
    assert again.shape == (0, 3)
