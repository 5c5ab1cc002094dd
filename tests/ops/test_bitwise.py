"""Bitwise ops (bitwise_and/or/xor, invert, left_shift, right_shift) and their operators: numpy's
results on every device for every integer dtype at its edges (min, max, 0, -1) and for shift
counts 0, 1, width - 1, width, beyond it and negative (numpy defines those: everything shifted
out, a negative signed value's right shift gives -1), on bools where numpy takes them, with
broadcasting, strided views, run-time sizes and empty tensors."""
import itertools

import numpy as np
import pytest

import graphc as gc
from graphc.ir import dtypes
from graphc.ops.registry import NOT_DIFFERENTIABLE, REGISTRY
from tests.helpers import DEVICES, evaluate

INTS = [d.name for d in dtypes.INTEGERS]
BINARY = ("bitwise_and", "bitwise_or", "bitwise_xor", "left_shift", "right_shift")
OPS = BINARY + ("invert",)


def width(name):
    return 8 * np.dtype(name).itemsize


def edges(name):
    info = np.iinfo(name)
    values = [info.min, info.min + 1, info.max, info.max - 1, 0, 1, 5, info.max // 3]
    values += [-1, -6] if info.min < 0 else [170, 85]
    return np.array(values, name)


def counts(name):
    """Shift counts: in range, at the width, past it, and negative (or, unsigned, huge)."""
    w = width(name)
    info = np.iinfo(name)
    values = [0, 1, 3, w - 1, w, w + 1, 2 * w - 1, info.max]
    values += [-1, -w, info.min] if info.min < 0 else [w // 2, 2 * w]
    return np.array(values, name)


def every_pair(name):
    a, c = edges(name), counts(name)
    pairs = np.array(list(itertools.product(range(a.size), range(c.size))))
    return a[pairs[:, 0]], c[pairs[:, 1]]


@pytest.mark.parametrize("dtype", INTS)
def test_bitwise_ops_are_numpy_s_on_every_device_at_the_edges(dtype):
    a, c = every_pair(dtype)
    got = evaluate(lambda x, n: [gc.bitwise_and(x, n), gc.bitwise_or(x, n), gc.bitwise_xor(x, n),
                                 gc.left_shift(x, n), gc.right_shift(x, n), gc.invert(x),
                                 gc.left_shift(n, x), gc.right_shift(n, x)], a, c)
    want = [a & c, a | c, a ^ c, np.left_shift(a, c), np.right_shift(a, c), ~a,
            np.left_shift(c, a), np.right_shift(c, a)]
    for name, g, w in zip(OPS + ("left_shift of counts", "right_shift of counts"), got, want):
        assert g.dtype == w.dtype, (name, g.dtype)
        np.testing.assert_array_equal(g, w, err_msg=f"{name} on {dtype}")


@pytest.mark.parametrize("dtype", INTS)
def test_shifts_out_of_range_are_graphc_s_documented_values(dtype):
    """Written out, not taken from numpy: left shifts give 0, right shifts the sign's fill."""
    w = width(dtype)
    a = np.array([-5 if dtype[0] == "i" else 5, 7, np.iinfo(dtype).max], dtype)
    for count in ([w, w + 7, -1] if dtype[0] == "i" else [w, w + 7]):
        n = np.full(3, count, dtype)
        left, right = evaluate(lambda x, k: [x << k, x >> k], a, n)
        assert (left == 0).all(), (dtype, count, left)
        np.testing.assert_array_equal(right, np.array([-1 if dtype[0] == "i" else 0, 0, 0], dtype))
    top, = [evaluate(lambda x, k: x << k, np.array([1], dtype), np.array([w - 1], dtype))]
    assert int(top[0]) == (np.iinfo(dtype).min if dtype[0] == "i" else 2 ** (w - 1))


def test_operators_are_bitwise_on_integers_and_logical_on_bools():
    rng = np.random.default_rng(3)
    a = rng.integers(-2 ** 31, 2 ** 31, (5, 7), dtype=np.int32)
    n = rng.integers(-3, 40, (7,), dtype=np.int32)
    got = evaluate(lambda x, k: [x & k, x | k, x ^ k, ~x, x << k, x >> k, 5 << k, x >> 3,
                                 0xF0 & x, 1 | x, x ^ -1], a, n)
    want = [a & n, a | n, a ^ n, ~a, np.left_shift(a, n), np.right_shift(a, n),
            np.left_shift(np.int32(5), n), a >> 3, 0xF0 & a, 1 | a, a ^ -1]
    for g, w in zip(got, want):
        assert g.dtype == np.int32
        np.testing.assert_array_equal(g, w)
    p = rng.random((4, 3)) < 0.5
    q = rng.random((3,)) < 0.5
    x = gc.placeholder(gc.bool_, (4, 3))
    assert [t.op for t in (x & x, x | x, x ^ x, ~x)] == ["logical_and", "logical_or",
                                                         "logical_xor", "logical_not"]
    got = evaluate(lambda x, y: [x & y, x | y, x ^ y, ~x, gc.bitwise_and(x, y),
                                 gc.bitwise_or(x, y), gc.bitwise_xor(x, y), gc.invert(x),
                                 gc.bitwise_not(y)], p, q)
    for g, w in zip(got, [p & q, p | q, p ^ q, ~p, p & q, p | q, p ^ q, ~p, ~q]):
        assert g.dtype == np.bool_
        np.testing.assert_array_equal(g, w)


def test_mixed_widths_promote_and_python_scalars_are_weak():
    a = np.array([-128, -1, 0, 127], np.int8)
    b = np.array([255, 1, 128, 7], np.uint8)
    got = evaluate(lambda x, y: [x & y, x | y, x << y, gc.right_shift(x, 1), x & 0x7F], a, b)
    want = [a & b, a | b, np.left_shift(a, b), a >> 1, a & np.int8(0x7F)]
    for g, w in zip(got, want):
        assert g.dtype == w.dtype, (g.dtype, w.dtype)
        np.testing.assert_array_equal(g, w)


def test_strided_views_run_time_sizes_and_empty_tensors():
    rng = np.random.default_rng(7)
    a = rng.integers(0, 2 ** 16, (9, 5), dtype=np.uint16)
    n = rng.integers(0, 20, (9, 5), dtype=np.uint16)
    x = gc.placeholder(gc.uint16, (None, 5))
    k = gc.placeholder(gc.uint16, (None, 5))
    out = [x[::-2] << k[::2], ~x[:, ::-3] ^ k[:, 1:3], x[-1] >> k[0]]
    for rows, device in itertools.product((9, 0), ("reference",) + DEVICES):
        with gc.Session(device=device) as sess:
            # x[-1] of no rows is an index error: fetched only where there are rows
            got = sess.run(out if rows else out[:2], {x: a[:rows], k: n[:rows]})
        aa, nn = a[:rows], n[:rows]
        want = [np.left_shift(aa[::-2], nn[::2]), ~aa[:, ::-3] ^ nn[:, 1:3]]
        for g, w in zip(got, want):
            assert g.shape == w.shape and g.dtype == w.dtype
            np.testing.assert_array_equal(g, w, err_msg=device)
        if rows:
            np.testing.assert_array_equal(got[2], np.right_shift(aa[-1], nn[0]))
    empty = np.zeros((0, 3), np.int64)
    assert evaluate(lambda e: e >> 2, empty).shape == (0, 3)


@pytest.mark.parametrize("op", OPS)
def test_floats_are_refused_naming_the_op_and_the_line(op):
    x = gc.placeholder(gc.float32, (3,))
    with pytest.raises(gc.GraphcError, match=f"{op} expects .*integer.*float32") as err:
        getattr(gc, op)(x) if op == "invert" else getattr(gc, op)(x, x)
    assert isinstance(err.value, TypeError) and "test_bitwise.py" in str(err.value)


def test_shifts_refuse_bools():
    x = gc.placeholder(gc.bool_, (3,))
    with pytest.raises(gc.GraphcError, match="left_shift expects integer tensors, got bool"):
        gc.left_shift(x, x)


def test_bitwise_ops_are_not_differentiable():
    for op in OPS:
        assert REGISTRY[op].grad is NOT_DIFFERENTIABLE


def test_kernel_dumps_write_them_as_python_operators():
    x = gc.placeholder(gc.int16, (None,), name="x")
    f = gc.function([x], (x << 2 ^ ~x) & (x >> 1 | 3))
    text = f.dump(stage="kernels")
    assert "(in0 << 2 ^ ~in0) & (in0 >> 1 | 3)" in text, text
    a = np.array([-32768, -1, 0, 1, 32767, 1234], np.int16)
    np.testing.assert_array_equal(f(a), (a << 2 ^ ~a) & (a >> 1 | 3))
