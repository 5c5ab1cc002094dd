"""Indexing along dims known only at run time (placeholders with None), against numpy on every
device: negative ints, negative and out-of-range bounds, negative steps and steps > 1, None and
..., empty results and ints out of range (IndexError_ at run time), forward and gradient; and
the reads of pad, concat and the slice's gradient from tensors that are empty at run time.

Each graph is fed several sizes (1 and 0 among them) in one session per device, and its kernels
also run through the kernel IR interpreter, which fails on any read or write out of bounds (a
device only shows one when the value it read comes out wrong); every group must lower to
kernels, none may fall back to the numpy reference.
"""
import numpy as np
import pytest

import graphc as gc
from graphc.codegen.cuda.launch import launch
from tests.helpers import DEVICES
from tests.kernels.helpers import Program

rng = np.random.default_rng(5)

# (rows, columns) fed to x of shape (None, 4, None)
SIZES = [(5, 3), (1, 1), (0, 2), (7, 5), (2, 0), (5, 3)]

INDICES = [
    np.s_[-1], np.s_[0], np.s_[3], np.s_[-2], np.s_[-7],
    np.s_[1:], np.s_[:-1], np.s_[-2:], np.s_[1:-1], np.s_[-3:-1], np.s_[:2], np.s_[0:],
    np.s_[::2], np.s_[1::3], np.s_[-4::2], np.s_[::-1], np.s_[::-2], np.s_[-2::-2],
    np.s_[:1:-1], np.s_[-1:-4:-1], np.s_[3:0:-2], np.s_[4:1:-1], np.s_[:-3:-1],
    np.s_[100:], np.s_[-100:], np.s_[:-100], np.s_[-100:100:3], np.s_[100::-1],
    np.s_[:-100:-1], np.s_[-100::-1], np.s_[2:100:-1],
    np.s_[:], np.s_[...], np.s_[None, -1], np.s_[..., -1], np.s_[-1, ..., None],
    np.s_[:, -1, ::-1], np.s_[-1, 1:3, -2], np.s_[::-1, None, ::-2, 1::2],
    np.s_[2:-2:2, ..., -3:], np.s_[-1, -1, -1], np.s_[None, ..., None],
]


def arange(*shape, dtype=np.float32):
    return np.arange(int(np.prod(shape)), dtype=dtype).reshape(shape) + 1


def check_at_sizes(build, dims, feeds, want, dtype=gc.float32):
    """build(*placeholders of shapes `dims`) -> list of tensors, run for each list of arrays in
    `feeds` on every device (one session each) and by the interpreter: the values must equal
    want(*arrays) exactly, or where that raises IndexError, every run must raise IndexError_."""
    g = gc.Graph()
    with g.as_default():
        phs = [gc.placeholder(dtype, d, name=f"in{i}") for i, d in enumerate(dims)]
        outs = build(*phs)
    program = Program(outs)
    assert not program.unsupported, [group.describe() for group in program.unsupported]
    sessions = {device: gc.Session(graph=g, device=device) for device in ("reference",) + DEVICES}
    for arrays in feeds:
        feed = dict(zip(phs, arrays))
        shapes = [a.shape for a in arrays]
        try:
            expected = want(*arrays)
        except IndexError:
            for device, sess in sessions.items():
                with pytest.raises(gc.IndexError_, match="at run time: index -?[0-9]+ is out of "
                                                         "range for axis"):
                    sess.run(outs, feed)
            with pytest.raises(gc.IndexError_):
                program.execute(feed)
            continue
        results = {device: sess.run(outs, feed) for device, sess in sessions.items()}
        results["interpreter"] = program.execute(feed)
        for device, got in results.items():
            for i, (a, b) in enumerate(zip(got, expected)):
                assert a.dtype == b.dtype and a.shape == b.shape, (device, i, shapes, a.shape,
                                                                  b.shape)
                np.testing.assert_array_equal(a, b, err_msg=f"{device}, output {i}, {shapes}")


@pytest.mark.parametrize("index", INDICES, ids=repr)
def test_indexing_runtime_dims_matches_numpy_forward_and_gradient(index):
    rank = np.zeros((9, 4, 9))[index].ndim

    def feeds():
        for rows, cols in SIZES:
            a = arange(rows, 4, cols)
            try:
                shape = a[index].shape
            except IndexError:
                shape = (1,) * rank  # broadcasts: the run fails at the index first
            yield [a, rng.uniform(1, 2, shape).astype(np.float32)]

    def build(x, w):
        y = x[index]
        return [y, gc.grad(gc.sum(y * w), x)]

    def want(a, w):
        dx = np.zeros_like(a)
        dx[index] = w
        return [a[index], dx]

    check_at_sizes(build, [(None, 4, None), (None,) * rank], list(feeds()), want)


def test_last_row_of_a_runtime_batch():
    x = np.arange(15, dtype=np.float32).reshape(5, 3)
    check_at_sizes(lambda x: [x[-1], x[-1:], x[-2, -1]], [(None, 3)], [[x], [x[:1]]],
                   lambda a: [a[-1], a[-1:], a[-2, -1]])  # one row: x[-2] is out of range


@pytest.mark.parametrize("device", ("reference",) + DEVICES)
def test_index_out_of_range_on_a_runtime_dim_raises_then_the_session_goes_on(device):
    with gc.Graph().as_default():
        x = gc.placeholder(gc.float32, (None, 3), name="x")
        sess = gc.Session(device=device)
        a = arange(5, 3)
        for k in (5, -6):
            with pytest.raises(gc.IndexError_, match=f"'strided_slice.*at run time: index {k} "
                                                     f"is out of range for axis 0 with size 5: "
                                                     r"expected -5 <= index < 5"):
                sess.run(x[k], {x: a})
        np.testing.assert_array_equal(sess.run(x[-5], {x: a}), a[0])
        with pytest.raises(gc.IndexError_, match="index -1 is out of range for axis 0 with size 0"):
            sess.run(x[-1], {x: a[:0]})
        np.testing.assert_array_equal(sess.run(x[4], {x: a}), a[4])


def test_indexing_runtime_dims_runs_no_host_step_on_cpu():
    with gc.Graph().as_default() as g:
        x = gc.placeholder(gc.float32, (None, None), name="x")
        y = x[-1] + x[1:-1:2, ::-1][0] + x[::-3][-1]
        f = gc.function([x], [y, gc.grad(gc.sum(y), x)], session=gc.Session(g, device="cpu"))
        assert f.stats()["host_steps"] == []
        a = arange(6, 4)
        out, dx = f(a)
        np.testing.assert_array_equal(out, a[-1] + a[1:-1:2, ::-1][0] + a[::-3][-1])
        want = np.zeros_like(a)
        want[[5, 1, 2]] = 1  # x[-1], x[1:-1:2, ::-1][0] and x[::-3][-1] of 6 rows
        np.testing.assert_array_equal(dx, want)


def test_whole_axis_selections_keep_the_runtime_dim():
    with gc.Graph().as_default():
        x = gc.placeholder(gc.float32, (None, None), name="x")
        assert x[0:] is x and x[0:5] is x[:5] and x[::-1][0:] is x[::-1]
        assert x[::-1].shape[0] is x.shape[0] and x[-1::-1].shape[0] is x.shape[0]
        assert x[:, ::-1].shape == x.shape
        for part in (x[1:], x[:-1], x[::2], x[-2::-1], x[:0:-1]):
            assert part.shape[0] is not x.shape[0] and part.shape[1] is x.shape[1]


# ---- reads from tensors that are empty at run time ----------------------------------------------
@pytest.mark.parametrize("dtype", [gc.float32, gc.int32, gc.bool_])
def test_concat_with_pieces_empty_at_run_time(dtype):
    def build(x, y, z, empty):  # `empty` is empty at build time too
        return [gc.concat([x, y, empty, z], 0), gc.concat([y, x], 0), gc.concat([empty, y], 0),
                gc.concat([x, x[::-1]], 1)]

    def want(a, b, c, none):
        return [np.concatenate([a, b, none, c]), np.concatenate([b, a]),
                np.concatenate([none, b]), np.concatenate([a, a[::-1]], 1)]
    sizes = [(3, 0, 2), (0, 3, 0), (0, 0, 0), (1, 1, 1), (2, 2, 4)]
    feeds = [[(arange(n, 2) % 3).astype(dtype.np) for n in (a, b, c, 0)] for a, b, c in sizes]
    check_at_sizes(build, [(None, 2)] * 3 + [(0, 2)], feeds, want, dtype)


def test_concat_gradient_with_pieces_empty_at_run_time():
    def build(x, y):
        out = gc.concat([x, y, x * 2.0], 0)
        return [out, *gc.grad(gc.sum(out * out), [x, y])]

    def want(a, b):
        return [np.concatenate([a, b, 2 * a]), 2 * a + 8 * a, 2 * b]
    check_at_sizes(build, [(None, 3), (None, 3)],
                   [[arange(n, 3), arange(m, 3)] for n, m in [(2, 0), (0, 2), (0, 0), (1, 4)]],
                   want)


@pytest.mark.parametrize("dtype", [gc.float32, gc.int32, gc.bool_])
def test_pad_of_tensors_empty_at_run_time(dtype):
    fill = {gc.float32: -1.5, gc.int32: 7, gc.bool_: 1}[dtype]

    def build(x, empty):  # `empty` is empty at build time too
        return [gc.pad(x, [[1, 2], [0, 1]], fill), gc.pad(x, [[0, 0], [2, 0]], fill),
                gc.pad(empty, [[1, 0], [0, 0]], fill)]

    def want(a, none):
        pad = [np.pad(a, p, constant_values=fill) for p in ([[1, 2], [0, 1]], [[0, 0], [2, 0]])]
        return pad + [np.full((1, 2), fill, a.dtype)]
    feeds = [[(arange(*s) % 2).astype(dtype.np), np.zeros((0, 2), dtype.np)]
             for s in [(0, 2), (3, 0), (0, 0), (1, 1), (3, 2)]]
    check_at_sizes(build, [(None, None), (0, 2)], feeds, want, dtype)


def test_pad_gradient_with_runtime_dims():
    def build(x):
        out = gc.pad(x, [[2, 1], [0, 3]], 5.0)
        return [out, gc.grad(gc.sum(out * out), x)]
    check_at_sizes(build, [(None, None)], [[arange(*s)] for s in [(0, 2), (1, 1), (3, 2), (2, 0)]],
                   lambda a: [np.pad(a, [[2, 1], [0, 3]], constant_values=5.0), 2 * a])


def test_slice_gradient_where_the_slice_is_empty_at_run_time():
    def build(x):
        parts = [x[1:], x[:-1], x[5:], x[::-3], x[-1:0:-2, 1:]]
        return [gc.grad(gc.sum(p * p), x) for p in parts]

    def want(a):
        out = []
        for index in (np.s_[1:], np.s_[:-1], np.s_[5:], np.s_[::-3], np.s_[-1:0:-2, 1:]):
            dx = np.zeros_like(a)
            dx[index] = 2 * a[index]
            out.append(dx)
        return out
    check_at_sizes(build, [(None, None)], [[arange(*s)] for s in [(1, 2), (0, 3), (6, 1), (2, 2)]],
                   want)


def test_guarded_reads_keep_cuda_kernels_per_thread():
    """A read guarded against an empty tensor is a Reduce of at most one iteration: it must not
    make the kernel one whose blocks or warps share long reductions."""
    with gc.Graph().as_default():
        x = gc.placeholder(gc.float32, (None,), name="x")
        y = gc.placeholder(gc.float32, (None,), name="y")
        for out in (gc.concat([x, y], 0), gc.pad(x, [[1, 2]]), gc.grad(gc.sum(x[1:] * y), x)):
            kinds = {launch(k).kind for k in Program([out]).kernels}
            assert kinds <= {"flat", "loop"}, kinds
