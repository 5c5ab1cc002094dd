"""The integer dtypes of every width and sign (int8 ... uint64): numpy's promotion between them,
numpy's integer semantics at the edges (wraparound, floor division and mod signs, unsigned
comparisons and extrema, casts between every pair), checked on every device against the
reference and the reference against numpy, on each type's min, max, 0 and values that wrap."""
import itertools

import numpy as np
import pytest

import graphc as gc
from graphc.ir import dtypes
from tests.helpers import evaluate

INTS = [d.name for d in dtypes.INTEGERS]
NEW = ("int8", "uint8", "int16", "uint16", "uint32", "uint64")


def edges(name, size=13):
    """The type's min, max, 0, 1, their neighbours and random values, `size` of them (odd)."""
    info = np.iinfo(name)
    values = [info.min, info.min + 1, info.max, info.max - 1, 0, 1, info.max // 2 + 1, 7]
    values += [-1, -7] if info.min < 0 else [3, 200 % (info.max + 1)]
    rng = np.random.default_rng(len(name))
    extra = rng.integers(info.min, info.max, size - len(values), dtype=name, endpoint=True)
    return np.concatenate([np.array(values, name), extra])


def pairs(name):
    """Every pair of edges(name), as two arrays."""
    v = edges(name, 11)
    a, b = np.array(list(itertools.product(v, v))).T
    return a.astype(name), b.astype(name)


def test_every_integer_dtype_is_named_and_read_from_numpy():
    for name in INTS:
        d = gc.as_dtype(name)
        assert d is getattr(gc, name) and d.name == name and d.is_integer
        assert gc.as_dtype(np.dtype(name)) is d and d.np == np.dtype(name)
        assert d.is_unsigned == name.startswith("u")
        assert gc.constant(np.zeros(3, name)).dtype is d


@pytest.mark.parametrize("a,b", list(itertools.combinations_with_replacement(INTS, 2)))
def test_integer_promotion_is_numpy_s(a, b):
    want = np.promote_types(a, b)
    assert gc.as_dtype(dtypes.promote(a, b)).np == want
    assert dtypes.promote(a, b) is dtypes.promote(b, a)


def test_integers_promote_below_floats_and_above_bool():
    for name in INTS:
        assert dtypes.promote(name, "bool") is gc.as_dtype(name)
        assert dtypes.promote(name, "float16") is gc.float16
        assert dtypes.promote(name, "float64") is gc.float64


def test_weak_python_scalars_keep_the_tensor_s_integer_type():
    for name in NEW:
        x = gc.placeholder(gc.as_dtype(name), (3,))
        assert (x + 1).dtype.name == name and (2 * x).dtype.name == name
        assert (x * 1.5).dtype is gc.float32


@pytest.mark.parametrize("name", INTS)
def test_arithmetic_wraps_around_as_numpy_s(name):
    a, b = pairs(name)
    fns = [lambda x, y: x + y, lambda x, y: x - y, lambda x, y: x * y, lambda x, y: -x,
           gc.floordiv, gc.mod, gc.maximum, gc.minimum, lambda x, y: gc.abs(x),
           lambda x, y: gc.sign(x), lambda x, y: gc.square(x)]
    with np.errstate(all="ignore"):  # numpy warns of the wraps and divisions by 0 it does
        want = [a + b, a - b, a * b, -a, np.floor_divide(a, b), np.mod(a, b), np.maximum(a, b),
                np.minimum(a, b), np.abs(a), np.sign(a), np.square(a)]
        got = evaluate(lambda x, y: [f(x, y) for f in fns], a, b)
    for g, w, f in zip(got, want, ("add", "sub", "mul", "neg", "floordiv", "mod", "maximum",
                                   "minimum", "abs", "sign", "square")):
        assert g.dtype == np.dtype(name), f
        np.testing.assert_array_equal(g, w, err_msg=f"{f} on {name}")


@pytest.mark.parametrize("name", INTS)
def test_comparisons_order_unsigned_values_above_the_signed_range(name):
    a, b = pairs(name)
    ops = (np.less, np.less_equal, np.greater, np.greater_equal, np.equal, np.not_equal)
    got = evaluate(lambda x, y: [x < y, x <= y, x > y, x >= y, gc.equal(x, y),
                                 gc.not_equal(x, y)], a, b)
    for g, op in zip(got, ops):
        np.testing.assert_array_equal(g, op(a, b), err_msg=f"{op.__name__} on {name}")


@pytest.mark.parametrize("name", NEW)
def test_reductions_wrap_and_order_as_numpy_s(name):
    x = edges(name, 15).reshape(3, 5)
    got = evaluate(lambda t: [gc.sum(t, axis=1), gc.prod(t, axis=0), gc.max(t, axis=1),
                              gc.min(t), gc.argmax(t, axis=1), gc.argmin(t, axis=0),
                              gc.sum(t)], x)
    want = [np.sum(x, axis=1, dtype=name), np.prod(x, axis=0, dtype=name), np.max(x, axis=1),
            np.min(x), np.argmax(x, axis=1), np.argmin(x, axis=0), np.sum(x, dtype=name)]
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
        assert g.dtype == w.dtype


@pytest.mark.parametrize("src", INTS + ["bool"])
def test_casts_between_every_pair_of_integer_and_bool_dtypes(src):
    x = edges(src) if src != "bool" else np.array([True, False, True])
    targets = [d for d in INTS + ["bool", "float16", "float32", "float64"] if d != src]
    got = evaluate(lambda t: [gc.cast(t, d) for d in targets], x)
    for g, d in zip(got, targets):
        with np.errstate(over="ignore"):
            np.testing.assert_array_equal(g, x.astype(d), err_msg=f"{src} -> {d}")


@pytest.mark.parametrize("dst", NEW)
def test_floats_convert_to_integers_truncated_and_saturated(dst):
    info = np.iinfo(dst)
    x = np.array([0.0, -0.0, 1.9, -1.9, 7.5, np.nan, np.inf, -np.inf, 1e30, -1e30,
                  float(info.max), float(info.min), 100.7], np.float64)
    want = [0, 0, 1, max(-1, info.min), 7, 0, info.max, info.min, info.max, info.min,
            info.max, info.min, 100]
    for src in ("float32", "float64"):
        got = evaluate(lambda t: gc.cast(t, dst), x.astype(src))
        np.testing.assert_array_equal(got, np.array(want, dtype=object).astype(dst),
                                      err_msg=f"{src} -> {dst}")


def test_unsigned_index_tensors_gather():
    params = np.arange(21, dtype=np.float32).reshape(7, 3)
    for name in NEW:
        idx = np.array([6, 0, 3, 3], name)
        got = evaluate(lambda p, i: gc.gather(p, i), params, idx)
        np.testing.assert_array_equal(got, params[idx])


def test_a_python_int_out_of_an_unsigned_type_s_range_is_refused():
    x = gc.placeholder(gc.uint8, (3,))
    with pytest.raises(gc.GraphcError, match="uint8"):
        x + (-1)
    with pytest.raises(gc.GraphcError, match="uint8"):
        x + 256


def test_integer_feeds_of_another_integer_type_are_checked_for_range():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.uint8, (None,))
        y = x + 1
        sess = gc.Session(graph=g)
        np.testing.assert_array_equal(sess.run(y, {x: [0, 254, 255]}), [1, 255, 0])
        with pytest.raises(gc.GraphcError, match="lose information"):
            sess.run(y, {x: [-1]})
