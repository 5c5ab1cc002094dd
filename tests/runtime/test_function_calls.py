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
    assert "has shape (3, 2); expected (2, x.1)" in messages[0][0]


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
    assert not f._exe.repeatable  # an assignment runs on the host
    for i in range(1, 4):
        f(np.ones(2, np.float32))
        np.testing.assert_array_equal(f.session.get_value(total), [i, i])


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
