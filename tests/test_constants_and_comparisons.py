"""How Python and numpy values become constants (their dtypes), and tensor comparisons.

dtypes follow numpy 2 (NEP 50): a Python scalar (or list) is "weak" and takes the dtype of the
tensor beside it (a Python float alone is float32, an int int32, as in TF and Keras); a numpy
scalar or array keeps its own dtype, which promotes with the tensor's by graphc's table.
"""
import numpy as np
import pytest

import graphc as gc
from tests.helpers import run


# ---- constants from numpy values keep their dtype -------------------------------------------
@pytest.mark.parametrize("value, want", [
    (np.float64(0.3), gc.float64), (np.float32(0.3), gc.float32), (np.float16(0.3), gc.float16),
    (np.int64(3), gc.int64), (np.int32(3), gc.int32), (np.bool_(True), gc.bool_),
    (np.array(0.3), gc.float64), (np.array(3), gc.int64), (np.array(0.3, np.float16), gc.float16),
    # Python scalars and lists are weak: floats float32, ints int32
    (0.3, gc.float32), (3, gc.int32), (True, gc.bool_), ([0.3, 1.0], gc.float32),
    ([1, 2], gc.int32),
])
def test_constant_dtype_follows_numpy2_numpy_values_are_strong(graph, value, want):
    c = gc.constant(value)
    assert c.dtype is want
    got = run(c, graph=graph)
    want_array = np.asarray(value).astype(want.np)
    assert got.dtype == want.np and got.shape == want_array.shape
    np.testing.assert_array_equal(got, want_array)


def test_float64_numpy_scalar_constant_keeps_every_bit(graph):
    assert run(gc.constant(np.float64(0.3)), graph=graph) == 0.3  # float32 would be 0.30000001
    assert run(gc.constant(np.int64(2**40)), graph=graph) == 2**40


def test_variable_from_numpy_scalar_keeps_its_dtype(graph):
    v64, i64, f32 = gc.Variable(np.float64(0.3)), gc.Variable(np.int64(2**40)), gc.Variable(0.3)
    assert (v64.dtype, i64.dtype, f32.dtype) == (gc.float64, gc.int64, gc.float32)
    sess = gc.Session(graph=graph)
    assert sess.get_value(v64) == 0.3 and sess.get_value(i64) == 2**40
    assert sess.get_value(f32) == np.float32(0.3)


def _numpy2_result(array, scalar, flip=False):
    """What numpy 2 computes for array + scalar (the expectation of the operator tests)."""
    return scalar + array if flip else array + scalar


@pytest.mark.parametrize("dtype, scalar", [
    ("float32", np.float64(2.5)),   # numpy 2: float32 array + float64 scalar -> float64
    ("float16", np.float32(2.5)),
    ("float32", np.float16(2.5)),   # the wider tensor wins
    ("int32", np.int64(3)),
    ("float64", np.float32(2.5)),
    ("int64", np.int32(3)),
    ("float32", np.array(2.5)),     # 0-d arrays are as strong as numpy scalars
])
@pytest.mark.parametrize("flip", [False, True])
def test_numpy2_promotion_numpy_scalar_operand_is_strong(graph, dtype, scalar, flip):
    x = gc.placeholder(dtype, (3,))
    y = scalar + x if flip else x + scalar
    a = np.array([1, 2, 3], dtype)
    want = _numpy2_result(a, scalar, flip)
    assert y.dtype is gc.as_dtype(want.dtype)
    got = run(y, {x: a}, graph=graph)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype, scalar", [
    ("float16", 2.5), ("float32", 2.5), ("float64", 0.1), ("int32", 3), ("int64", 3),
    ("int32", 2.5),  # a Python float beside an integer tensor gives float32
])
@pytest.mark.parametrize("flip", [False, True])
def test_numpy2_promotion_python_scalar_operand_is_weak(graph, dtype, scalar, flip):
    x = gc.placeholder(dtype, (3,))
    y = scalar * x if flip else x * scalar
    want_dtype = np.dtype(np.float32 if (dtype, scalar) == ("int32", 2.5) else dtype)
    assert y.dtype is gc.as_dtype(want_dtype)
    a = np.array([1, 2, 3], dtype)
    got = run(y, {x: a}, graph=graph)
    np.testing.assert_array_equal(got, (a.astype(want_dtype) * want_dtype.type(scalar)))


def test_python_list_operand_is_weak_and_keeps_its_kind(graph):
    i = gc.placeholder(gc.int32, (2,))
    h = gc.placeholder(gc.float16, (2,))
    assert (i + [1, 2]).dtype is gc.int32   # was float32: a list was read as a float
    assert (h + [0.5, 1.0]).dtype is gc.float16
    assert (i + [0.5, 1.0]).dtype is gc.float32
    got = run([i + [1, 2], h + [0.5, 1.0]], {i: np.array([3, 4], np.int32),
                                             h: np.array([1, 2], np.float16)}, graph=graph)
    np.testing.assert_array_equal(got[0], np.array([4, 6], np.int32))
    np.testing.assert_array_equal(got[1], np.array([1.5, 3.0], np.float16))


def test_numpy_scalars_in_where_and_maximum_are_strong(graph):
    x = gc.placeholder(gc.float32, (3,))
    a = np.array([-1.0, 0.5, 2.0], np.float32)
    m = gc.maximum(x, np.float64(0.25))
    w = gc.where(x > 0.0, x, np.float64(-0.1))
    assert (m.dtype, w.dtype) == (gc.float64, gc.float64)
    got_m, got_w = run([m, w], {x: a}, graph=graph)
    np.testing.assert_array_equal(got_m, np.maximum(a, np.float64(0.25)))
    np.testing.assert_array_equal(got_w, np.where(a > 0, a, np.float64(-0.1)))


def test_numpy_scalars_fed_and_assigned_take_the_tensor_dtype(graph):
    p64 = gc.placeholder(gc.float64, ())
    p32 = gc.placeholder(gc.float32, ())
    pi = gc.placeholder(gc.int32, ())
    v = gc.Variable(np.zeros(2, np.float32))
    step = v.assign_add(np.float64(0.3))  # the variable keeps its dtype
    sess = gc.Session(graph=graph)
    got = sess.run([p64, p32, pi, step], {p64: np.float64(0.3), p32: np.float64(0.3),
                                         pi: np.int64(7)})
    assert got[0] == 0.3 and got[0].dtype == np.float64
    assert got[1] == np.float32(0.3) and got[1].dtype == np.float32
    assert got[2] == 7 and got[2].dtype == np.int32
    assert step.dtype is gc.float32
    np.testing.assert_array_equal(sess.get_value(v), np.full(2, np.float32(np.float64(0.3))))


# ---- == and != are elementwise; tensors stay hashable by identity ---------------------------
def test_eq_and_ne_against_a_number_are_elementwise(graph):
    x = gc.placeholder(gc.float32, (4,))
    a = np.array([1.0, 2.0, 1.0, np.nan], np.float32)
    eq, ne = x == 1.0, x != 1.0
    assert isinstance(eq, gc.Tensor) and (eq.op, eq.dtype) == ("equal", gc.bool_)
    assert isinstance(ne, gc.Tensor) and (ne.op, ne.dtype) == ("not_equal", gc.bool_)
    share = gc.mean(gc.cast(x == 1.0, gc.float32))  # was 0.0: x == 1.0 was Python's False
    got_eq, got_ne, got_share = run([eq, ne, share], {x: a}, graph=graph)
    np.testing.assert_array_equal(got_eq, a == 1.0)
    np.testing.assert_array_equal(got_ne, a != 1.0)  # NaN != 1.0, as in numpy
    assert got_share == 0.5


def test_eq_and_ne_against_arrays_tensors_and_reflected(graph):
    x = gc.placeholder(gc.int32, (2, 3))
    y = gc.placeholder(gc.int32, (3,))
    a = np.array([[1, 2, 3], [3, 2, 1]], np.int32)
    b = np.array([3, 2, 1], np.int32)
    cases = {  # expression -> numpy's answer
        x == y: a == b, x != y: a != b,
        x == b: a == b, b == x: b == a, b != x: b != a,
        x == [3, 2, 1]: a == b, 2 == x: 2 == a, np.int32(2) != x: np.int32(2) != a,
        x == 2.5: a == 2.5,  # compared as float32, as x + 2.5 would be
    }
    got = run(list(cases), {x: a, y: b}, graph=graph)
    for (expr, want), value in zip(cases.items(), got):
        assert expr.dtype is gc.bool_
        np.testing.assert_array_equal(value, want)


def test_eq_with_other_objects_is_identity(graph):
    x = gc.placeholder(gc.float32, (2,))
    assert (x == None) is False and (x != None) is True  # noqa: E711
    assert (x == "x") is False and (x != object()) is True


def test_tensors_stay_feed_dict_keys_set_members_and_dict_keys(graph):
    xs = [gc.placeholder(gc.float32, (2,), name=f"p{i}") for i in range(50)]
    total = xs[0]
    for t in xs[1:]:
        total = total + t
    feed = {t: np.full(2, i, np.float32) for i, t in enumerate(xs)}
    np.testing.assert_array_equal(run(total, feed, graph=graph), np.full(2, sum(range(50))))
    assert len(set(xs)) == 50 and len(set(xs + xs)) == 50
    assert xs[7] in set(xs) and feed[xs[7]][0] == 7
    assert gc.exp(xs[0]) in {gc.exp(xs[0])}  # one node (hash-consed), so one tensor
    assert gc.exp(xs[1]) not in {gc.exp(xs[0]): 1}
    assert hash(xs[0]) != hash(xs[1])


def test_truth_value_of_a_tensor_is_a_clear_type_error(graph):
    x = gc.placeholder(gc.float32, (2,))
    for make in (lambda: bool(x), lambda: bool(x == 1.0), lambda: x if x != 0.0 else None,
                 lambda: not x, lambda: gc.exp(x) in [x]):
        with pytest.raises(gc.GraphcError, match=r"no truth value.*gc\.equal.*`is`") as info:
            make()
        assert isinstance(info.value, TypeError)


def test_broadcast_to_dims_of_two_other_tensors(graph):
    # broadcast_to keeps a list of the tensors whose dims it takes: found by identity, not ==
    x = gc.placeholder(gc.float32, ())
    rows = gc.placeholder(gc.float32, (None,), name="rows")
    cols = gc.placeholder(gc.float32, (None,), name="cols")
    y = gc.broadcast_to(x, (rows.shape[0], cols.shape[0], rows.shape[0]))
    got = run(y, {x: np.float32(2), rows: np.zeros(3, np.float32),
                  cols: np.zeros(2, np.float32)}, graph=graph)
    np.testing.assert_array_equal(got, np.full((3, 2, 3), 2, np.float32))
