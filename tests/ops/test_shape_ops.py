"""Shape, movement and indexing ops: broadcast_to, concat, stack, split, pad, gather, one_hot,
basic indexing, and prod's gradient, against numpy and finite differences."""
import numpy as np
import pytest

import graphc as gc
from graphc.errors import GradientError, GraphcError, IndexError_, ShapeError
from graphc.ops.shape import prod_of_others
from tests.helpers import check_grad, evaluate, numeric_grad

rng = np.random.default_rng()


def rand(*shape):
    return rng.standard_normal(shape)


def run_symbolic(build, arrays, dims):
    """build(*placeholders) evaluated where placeholder i has shape dims[i] (None: symbolic)."""
    g = gc.Graph()
    with g.as_default():
        phs = [gc.placeholder(gc.as_dtype(a.dtype), d, name=f"in{i}")
               for i, (a, d) in enumerate(zip(arrays, dims))]
        out = build(*phs)
        return gc.Session(graph=g, device="reference").run(out, dict(zip(phs, arrays)))


def check_grad_symbolic(build, a, dims):
    """gc.grad of sum(build(x) * w) with x fed through a placeholder of shape `dims` (None:
    symbolic), compared with central differences."""
    a = np.asarray(a, np.float64)
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float64, dims, name="x")
        out = build(x)
        w = gc.placeholder(gc.float64, [None] * out.ndim, name="w")
        y = gc.sum(out * w)
        dx = gc.grad(y, x)
        sess = gc.Session(graph=g, device="reference")
        weights = rng.uniform(0.5, 1.5, size=sess.run(out, {x: a}).shape)
        analytic = sess.run(dx, {x: a, w: weights})
        numeric, = numeric_grad(lambda v: float(sess.run(y, {x: v, w: weights})), [a])
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


# ---- broadcast_to -----------------------------------------------------------------------------
@pytest.mark.parametrize("src, target", [((1,), (7,)), ((3, 1), (2, 3, 1023)), ((1, 7), (1, 7)),
                                         ((), (4, 1)), ((5, 1, 2), (5, 7, 2))])
def test_broadcast_to_matches_numpy(src, target):
    a = rand(*src)
    out = evaluate(lambda x: gc.broadcast_to(x, target), a)
    np.testing.assert_array_equal(out, np.broadcast_to(a, target))


def test_broadcast_to_symbolic_dims_from_another_tensor():
    a, b = rand(1, 3), rand(5, 2)
    out = run_symbolic(lambda x, y: gc.broadcast_to(x, (y.shape[0], 3)), [a, b],
                       [(1, 3), (None, 2)])
    np.testing.assert_array_equal(out, np.broadcast_to(a, (5, 3)))


def test_broadcast_to_symbolic_dim_of_x_itself():
    a = rand(6, 1)
    out = run_symbolic(lambda x: gc.broadcast_to(x, (2, x.shape[0], 4)), [a], [(None, 1)])
    np.testing.assert_array_equal(out, np.broadcast_to(a, (2, 6, 4)))


def test_broadcast_to_returns_x_when_shape_is_unchanged():
    with gc.Graph().as_default():
        x = gc.placeholder(gc.float32, (None, 3))
        assert gc.broadcast_to(x, (x.shape[0], 3)) is x


def test_broadcast_to_gradient():
    check_grad(lambda x: gc.broadcast_to(x, (2, 3, 4)), rand(3, 1))
    check_grad(lambda x: gc.broadcast_to(x, (3, 1, 5)), rand(5))


def test_broadcast_to_gradient_with_symbolic_dims():
    check_grad_symbolic(lambda x: gc.broadcast_to(x[:, :1], (3, x.shape[0], 4)), rand(5, 2),
                        (None, 2))


def test_broadcast_to_bad_shape_fails_at_build_time():
    with gc.Graph().as_default():
        x = gc.placeholder(gc.float32, (3, 2))
        with pytest.raises(ShapeError, match=r"cannot broadcast \(3, 2\) to \(3, 4\)"):
            gc.broadcast_to(x, (3, 4))
        with pytest.raises(ShapeError, match=r"cannot broadcast \(3, 2\) to \(2,\)"):
            gc.broadcast_to(x, (2,))
        with pytest.raises(ShapeError, match="non-negative int"):
            gc.broadcast_to(x, (3, -2))


def test_broadcast_to_bad_symbolic_shape_fails_at_run_time():
    with pytest.raises(ShapeError, match=r"at run time.*cannot broadcast \(4, 1\) to \(3, 2\)"):
        run_symbolic(lambda x: gc.broadcast_to(x, (3, 2)), [rand(4, 1)], [(None, 1)])


# ---- concat, stack, split ---------------------------------------------------------------------
@pytest.mark.parametrize("sizes, axis", [((1, 7, 1023), 0), ((2, 1), 1), ((3, 3, 3, 3), -1)])
def test_concat_matches_numpy(sizes, axis):
    arrays = [rand(*[s if a == (axis % 2) else 2 for a in range(2)]) for s in sizes]
    out = evaluate(lambda *xs: gc.concat(xs, axis), *arrays)
    np.testing.assert_array_equal(out, np.concatenate(arrays, axis))


def test_concat_of_one_tensor_is_that_tensor():
    with gc.Graph().as_default():
        x = gc.placeholder(gc.float32, (3,))
        assert gc.concat([x], 0) is x


def test_concat_promotes_dtypes():
    a, b = rand(2, 3).astype(np.float32), rng.integers(0, 9, (1, 3)).astype(np.int32)
    out = evaluate(lambda x, y: gc.concat([x, y], 0), a, b)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.concatenate([a, b.astype(np.float32)]))


def test_concat_symbolic_sizes_along_axis():
    a, b = rand(4, 3), rand(7, 3)
    with gc.Graph().as_default() as g:
        x = gc.placeholder(gc.float64, (None, 3))
        y = gc.placeholder(gc.float64, (None, 3))
        out = gc.concat([x, y, x], 0)
        assert not isinstance(out.shape[0], int) and out.shape[1] == 3
        got = gc.Session(graph=g, device="reference").run(out, {x: a, y: b})
    np.testing.assert_array_equal(got, np.concatenate([a, b, a]))


def test_concat_gradient():
    check_grad(lambda x, y: gc.concat([x, y * y, x], 1), rand(2, 3), rand(2, 1))


def test_concat_gradient_with_symbolic_sizes():
    check_grad_symbolic(lambda x: gc.concat([x, x[1:] * x[:-1]], 0), rand(5, 2), (None, 2))


def test_concat_shape_errors_at_build_time():
    with gc.Graph().as_default():
        x = gc.placeholder(gc.float32, (2, 3))
        y = gc.placeholder(gc.float32, (2, 4))
        with pytest.raises(ShapeError, match=r"input 1 has shape \(2, 4\) but input 0 has "
                                             r"\(2, 3\); all axes but 0 must agree"):
            gc.concat([x, y], 0)
        with pytest.raises(ShapeError, match="rank >= 1"):
            gc.concat([gc.constant(1.0), gc.constant(2.0)], 0)
        with pytest.raises(ShapeError, match="at least one tensor"):
            gc.concat([], 0)
        with pytest.raises(ShapeError, match="axis 2 is out of range"):
            gc.concat([x, x], 2)


def test_concat_mismatch_on_symbolic_dim_fails_at_run_time():
    with pytest.raises(ShapeError, match="at run time.*all axes but 1 must agree"):
        run_symbolic(lambda x, y: gc.concat([x, y], 1), [rand(3, 2), rand(4, 2)],
                     [(None, 2), (None, 2)])


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_stack_matches_numpy(axis):
    arrays = [rand(7, 3) for _ in range(4)]
    out = evaluate(lambda *xs: gc.stack(xs, axis), *arrays)
    np.testing.assert_array_equal(out, np.stack(arrays, axis))


def test_stack_of_symbolic_tensors():
    a, b = rand(5, 2), rand(5, 2)
    out = run_symbolic(lambda x, y: gc.stack([x, y], 1), [a, b], [(None, 2), (None, 2)])
    np.testing.assert_array_equal(out, np.stack([a, b], 1))


def test_stack_gradient():
    check_grad(lambda x, y: gc.stack([x, y, x * y], -1), rand(2, 3), rand(2, 3))


def test_stack_needs_one_shape():
    with gc.Graph().as_default():
        x = gc.placeholder(gc.float32, (2, 3))
        y = gc.placeholder(gc.float32, (3, 2))
        with pytest.raises(ShapeError, match=r"one shape, got \(2, 3\) and \(3, 2\)"):
            gc.stack([x, y])


@pytest.mark.parametrize("shape, parts, axis", [((1023, 2), 3, 0), ((2, 7), [1, -1, 2], 1),
                                                ((7,), [7], 0), ((4, 1), 1, 1),
                                                ((6, 5), [0, 2, 4], 0)])
def test_split_matches_numpy(shape, parts, axis):
    a = rand(*shape)
    sections = parts if isinstance(parts, int) else np.cumsum(
        [p if p != -1 else a.shape[axis] - sum(parts) - 1 for p in parts])[:-1]
    out = evaluate(lambda x: gc.split(x, parts, axis), a)
    expected = np.split(a, sections, axis)
    assert isinstance(out, list) and len(out) == len(expected)
    for got, want in zip(out, expected):
        np.testing.assert_array_equal(got, want)


def test_split_symbolic_axis_with_a_rest_piece():
    a = rand(9, 2)
    first, rest = run_symbolic(lambda x: gc.split(x, [2, -1]), [a], [(None, 2)])
    np.testing.assert_array_equal(first, a[:2])
    np.testing.assert_array_equal(rest, a[2:])


def test_split_sizes_not_adding_up_fail():
    with gc.Graph().as_default():
        x = gc.placeholder(gc.float32, (5, 2))
        with pytest.raises(ShapeError, match=r"axis 0 \(size 5\) into pieces of sizes \(2, 2\)"):
            gc.split(x, [2, 2])
        with pytest.raises(ShapeError, match="3 equal parts needs a known size along axis 0 "
                                             "that 3 divides, got 5"):
            gc.split(x, 3)
        with pytest.raises(ShapeError, match="at most one -1"):
            gc.split(x, [-1, -1])
    with pytest.raises(ShapeError, match="at run time.*add up to 9"):
        run_symbolic(lambda x: gc.split(x, [2, 3]), [rand(9)], [(None,)])


def test_split_gradient_including_unused_pieces():
    check_grad(lambda x: gc.split(x, [1, 2, -1], 1)[1] * 3, rand(2, 7))
    check_grad(lambda x: gc.concat(gc.split(x, 2, 0)[::-1], 0), rand(4, 3))


# ---- pad --------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape, paddings", [((7,), [[1, 1023]]), ((1, 1), [[0, 0], [2, 1]]),
                                             ((3, 4, 2), [[1, 0], [0, 2], [3, 3]])])
def test_pad_matches_numpy(shape, paddings):
    a = rand(*shape)
    out = evaluate(lambda x: gc.pad(x, paddings, constant_values=-1.5), a)
    np.testing.assert_array_equal(out, np.pad(a, paddings, constant_values=-1.5))


def test_pad_integer_tensor_and_symbolic_dims():
    a = rng.integers(-9, 9, (5, 2)).astype(np.int32)
    out = run_symbolic(lambda x: gc.pad(x, [[2, 1], [0, 0]], 7), [a], [(None, 2)])
    np.testing.assert_array_equal(out, np.pad(a, [[2, 1], [0, 0]], constant_values=7))


def test_pad_gradient():
    check_grad(lambda x: gc.pad(x, [[1, 2], [0, 3]]), rand(3, 2))
    check_grad_symbolic(lambda x: gc.pad(x, [[2, 1], [1, 0]]), rand(4, 3), (None, 3))


def test_pad_errors():
    with gc.Graph().as_default():
        x = gc.placeholder(gc.float32, (2, 3))
        with pytest.raises(ShapeError, match=r"one \[before, after\] pair of non-negative ints "
                                             r"per axis \(2 pairs for shape \(2, 3\)\)"):
            gc.pad(x, [[1, 1]])
        with pytest.raises(ShapeError, match="non-negative"):
            gc.pad(x, [[1, -1], [0, 0]])
        with pytest.raises(gc.DTypeError, match="fits int32"):
            gc.pad(gc.placeholder(gc.int32, (2,)), [[1, 1]], constant_values=0.5)


# ---- gather -----------------------------------------------------------------------------------
@pytest.mark.parametrize("shape, index_shape, axis", [((1023, 3), (7,), 0), ((2, 7, 3), (4, 2), 1),
                                                      ((5,), (), 0), ((1, 1), (1,), -1),
                                                      ((3, 2, 7), (1023,), 2)])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_gather_matches_numpy_take(shape, index_shape, axis, index_dtype):
    a = rand(*shape)
    idx = rng.integers(0, shape[axis], index_shape).astype(index_dtype)
    out = evaluate(lambda p, i: gc.gather(p, i, axis), a, idx)
    np.testing.assert_array_equal(out, np.take(a, idx, axis))


def test_gather_with_python_indices_and_symbolic_batch():
    a = rand(6, 3)
    out = run_symbolic(lambda p: gc.gather(p, [[5, 0], [0, 2]]), [a], [(None, 3)])
    np.testing.assert_array_equal(out, a[[[5, 0], [0, 2]]])


def test_gather_gradient_accumulates_repeated_indices():
    idx = np.array([[2, 0, 2], [2, 1, 2]])
    check_grad(lambda p: gc.gather(p, gc.constant(idx), 1), rand(3, 4))
    check_grad(lambda p: gc.gather(p, [0, 0, 0, 4]) ** 2, rand(5, 2))


def test_gather_second_order_gradient():
    def first_grad(p):
        return gc.grad(gc.sum(gc.gather(p * p * p, [1, 1, 0]) ** 2), p)
    check_grad(first_grad, rand(3, 2))


def test_gather_index_out_of_range_raises_and_session_still_works():
    with gc.Graph().as_default() as g:
        p = gc.placeholder(gc.float32, (None, 3), name="params")
        i = gc.placeholder(gc.int64, (2, 2), name="ids")
        out = gc.gather(p, i, name="lookup")
        sess = gc.Session(graph=g, device="reference")
        a = rand(4, 3).astype(np.float32)
        bad = np.array([[0, 1], [4, 2]])
        with pytest.raises(IndexError_) as err:
            sess.run(out, {p: a, i: bad})
        message = str(err.value)
        assert "'lookup'" in message
        assert "index 4 at position (1, 0)" in message
        assert r"params with shape (4, 3): expected 0 <= index < 4" in message
        with pytest.raises(IndexError_, match=r"index -1 at position \(0, 1\)"):
            sess.run(out, {p: a, i: np.array([[0, -1], [1, 2]])})
        good = np.array([[3, 1], [0, 3]])
        np.testing.assert_array_equal(sess.run(out, {p: a, i: good}), a[good])


def test_gather_needs_integer_indices():
    with gc.Graph().as_default():
        p = gc.placeholder(gc.float32, (4, 3))
        with pytest.raises(gc.DTypeError, match="int32 or int64 indices, got float32"):
            gc.gather(p, gc.placeholder(gc.float32, (2,)))
        with pytest.raises(ShapeError, match="rank >= 1"):
            gc.gather(gc.constant(1.0), [0])


# ---- one_hot ----------------------------------------------------------------------------------
def np_one_hot(idx, depth, on, off, axis):
    hot = np.where(np.arange(depth) == idx[..., None], on, off)
    return np.moveaxis(hot, -1, axis)


@pytest.mark.parametrize("index_shape, depth, axis", [((7,), 1023, -1), ((3, 5), 7, 0),
                                                      ((), 1, 0), ((2, 3), 4, 1)])
def test_one_hot_matches_numpy(index_shape, depth, axis):
    idx = rng.integers(-2, depth + 2, index_shape)  # some out of range: rows of off_value
    out = evaluate(lambda i: gc.one_hot(i, depth, on_value=2.5, off_value=-1, axis=axis), idx)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np_one_hot(idx, depth, 2.5, -1, axis))


def test_one_hot_out_of_range_rows_are_all_off_and_dtype_is_kept():
    out = evaluate(lambda i: gc.one_hot(i, 3, dtype=gc.int32), np.array([0, 3, -1, 2]))
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, [[1, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 1]])


def test_one_hot_errors():
    with gc.Graph().as_default():
        with pytest.raises(gc.DTypeError, match="int32 or int64 indices, got float32"):
            gc.one_hot(gc.placeholder(gc.float32, (2,)), 3)
        with pytest.raises(ShapeError, match="non-negative int, got -3"):
            gc.one_hot([1], -3)


# ---- basic indexing ---------------------------------------------------------------------------
INDICES = [
    np.s_[3], np.s_[-1], np.s_[1:6], np.s_[::2], np.s_[::-1], np.s_[-2:0:-3], np.s_[5:1],
    np.s_[..., 2], np.s_[None, 1, ..., None], np.s_[:, None, ::-2], np.s_[1, 2, 3],
    np.s_[-7, :, -1], np.s_[..., ::3, 1:], np.s_[100:], np.s_[-100:2, ..., :-100],
    np.s_[...], np.s_[:], np.s_[2:3, 0, None, 1::-1],
]


@pytest.mark.parametrize("index", INDICES, ids=repr)
def test_getitem_matches_numpy(index):
    a = rand(7, 3, 4)
    np.testing.assert_array_equal(evaluate(lambda x: x[index], a), a[index])


@pytest.mark.parametrize("index", INDICES, ids=repr)
def test_getitem_on_symbolic_dims_matches_numpy(index):
    a = rand(7, 3, 4)
    np.testing.assert_array_equal(run_symbolic(lambda x: x[index], [a], [(None, 3, None)]),
                                  a[index])


def test_getitem_large_and_single_element_axes():
    a, b = rand(1023), rand(1, 1)
    np.testing.assert_array_equal(evaluate(lambda x: x[1::7], a), a[1::7])
    np.testing.assert_array_equal(evaluate(lambda x: x[-1, ::-1], b), b[-1, ::-1])


def test_getitem_equal_selections_share_a_node():
    with gc.Graph().as_default():
        x = gc.placeholder(gc.float32, (5, 4))
        assert x[1:5] is x[1:] and x[-1] is x[4] and x[:, :] is x and x[...] is x


def test_getitem_gradient_with_steps_and_chains():
    check_grad(lambda x: x[1::2, ::-1], rand(5, 3))
    check_grad(lambda x: x[-1:0:-2, None, 1] * x[0, ..., None, 2], rand(7, 3))
    check_grad(lambda x: x[::-1][1:][::2, 1:2] * 2, rand(6, 2))


def test_getitem_gradient_with_symbolic_dims():
    check_grad_symbolic(lambda x: x[-2::-2, 1] + x[1, None], rand(7, 3), (None, 3))


def test_getitem_second_order_gradient():
    check_grad(lambda x: gc.grad(gc.sum(x[1:, ::-2] ** 3), x), rand(4, 5))


def test_getitem_out_of_range_int_fails_at_build_time():
    with gc.Graph().as_default():
        x = gc.placeholder(gc.float32, (3, 4), name="x")
        with pytest.raises(IndexError_, match="index 4 is out of range for axis 1 with size 4: "
                                              "expected -4 <= index < 4"):
            x[0, 4]
        with pytest.raises(IndexError_, match="index -4 is out of range for axis 0"):
            x[-4]
        with pytest.raises(IndexError_, match=r"too many indices for 'x' of shape \(3, 4\): "
                                              "3 axes indexed, the tensor has 2"):
            x[0, 0, 0]
        with pytest.raises(IndexError_, match="single ellipsis"):
            x[..., 0, ...]
        with pytest.raises(ValueError, match="step cannot be zero"):  # as numpy says it
            x[::0]


def test_getitem_out_of_range_on_symbolic_dim_fails_at_run_time():
    with pytest.raises(IndexError_, match="at run time: index 5 is out of range for axis 0 "
                                          "with size 5"):
        run_symbolic(lambda x: x[5], [rand(5, 2)], [(None, 2)])


@pytest.mark.parametrize("index", [[0, 1], np.array([1]), True])
def test_advanced_indexing_points_at_gather(index):
    with gc.Graph().as_default():
        x = gc.placeholder(gc.float32, (3, 4))
        with pytest.raises(GraphcError, match="advanced indexing.*gc.gather"):
            x[index]
        with pytest.raises(GraphcError, match="advanced indexing.*gc.gather"):
            x[gc.constant([0, 1])]
        with pytest.raises(GraphcError, match="slice bounds must be ints or None.*gc.gather"):
            x[gc.constant(1):]
        with pytest.raises(GraphcError, match="unsupported index 1.5"):
            x[1.5]


# ---- prod and its gradient ----------------------------------------------------------------------
def brute_prod_of_others(a, axes):
    out = np.empty_like(a)
    for pos in np.ndindex(a.shape):
        group = tuple(slice(None) if k in axes else p for k, p in enumerate(pos))
        others = np.array(a[group])
        others[tuple(pos[k] for k in sorted(axes))] = 1
        out[pos] = np.prod(others)
    return out


@pytest.mark.parametrize("shape, axes", [((7,), (0,)), ((3, 4, 2), (0, 2)), ((1, 5), (1,)),
                                         ((2, 3), ()), ((2, 3), (0, 1))])
def test_prod_of_others_with_zeros(shape, axes):
    a = rand(*shape)
    a.reshape(-1)[rng.integers(0, a.size, 2)] = 0.0
    out = evaluate(lambda x: prod_of_others(x, axes), a)
    np.testing.assert_allclose(out, brute_prod_of_others(a, axes), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("zeros", [[], [4], [1, 4]])
def test_prod_gradient_with_zeros(zeros):
    a = rng.uniform(0.5, 1.5, (3, 4))
    a.reshape(-1)[zeros] = 0.0  # one zero in a row, then two zeros in one column
    check_grad(lambda x: gc.prod(x, axis=0), a)
    check_grad(lambda x: gc.prod(x, axis=1, keepdims=True), a)
    check_grad(lambda x: gc.prod(x), a)


def test_prod_second_order_gradient_is_refused():
    with gc.Graph().as_default():
        x = gc.placeholder(gc.float64, (3,))
        dx = gc.grad(gc.prod(x), x)
        with pytest.raises(GradientError, match="second-order gradient of prod is not supported"):
            gc.grad(gc.sum(dx), x)
