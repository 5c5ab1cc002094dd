"""Pools, their gradients and gather's gradient run as native kernels on device "cpu" (no host
step), giving the reference's values on odd sizes, every float dtype, NaN and tied maxima,
symbolic sizes; out-of-range indices raise IndexError_ on both devices."""
import numpy as np
import pytest

import graphc as gc
from graphc.compiler import HostStep
from graphc.ops.registry import apply
from tests.helpers import run

rng = np.random.default_rng(5)
FLOATS = ("float32", "float64", "float16", "bfloat16")


def storage(dtype):
    return np.float32 if dtype == "bfloat16" else np.dtype(dtype)


def host_ops(graph, fetches, feeds):
    """The ops that device "cpu" runs through the numpy reference for these fetches."""
    exe = gc.Session(graph=graph, device="cpu").compile(list(fetches), list(feeds))
    return [n.op for s in exe.steps if isinstance(s, HostStep) for n in s.group.nodes]


def with_ties_and_nans(shape, dtype):
    """Values on a coarse grid (many tied maxima), a few NaN, one in the first cell (which
    the first window always holds)."""
    x = np.round(rng.normal(size=shape) * 2) / 2
    x.flat[rng.integers(0, x.size, x.size // 40)] = np.nan
    x.flat[0] = np.nan
    return x.astype(storage(dtype))


POOLS = [  # (x shape, ksize, strides, padding)
    ((7, 9, 13, 3), 3, 2, "SAME"),
    ((1, 9, 13, 2), 3, 2, "VALID"),
    ((7, 9, 13, 1), 2, 2, "VALID"),  # the last row and column are in no window
    ((1, 7, 5, 2), (3, 2), (2, 3), "SAME"),
    ((7, 4, 4, 5), 4, 1, "SAME"),  # windows overlap by 3: a cell is in up to 16 of them
    ((1, 1, 1, 3), 1, 1, "VALID"),
]


def pool_graph(dtype, shape, ksize, strides, padding, symbolic):
    """(graph, [x, g], [max, avg, max grad, avg grad]) with g the output gradient."""
    graph = gc.Graph()
    with graph.as_default():
        spatial = (None, None) if symbolic else shape[1:3]
        x = gc.placeholder(gc.as_dtype(dtype), (None,) + spatial + shape[3:], name="x")
        mx = gc.nn.max_pool2d(x, ksize, strides, padding)
        g = gc.placeholder(gc.as_dtype(dtype), (None,) + tuple(mx.shape[1:]), name="g")
        av = gc.nn.avg_pool2d(x, ksize, strides, padding)
        grads = [gc.nn.max_pool2d_grad(x, g, ksize, strides, padding),
                 gc.nn.avg_pool2d_grad(x, g, ksize, strides, padding)]
    return graph, [x, g], [mx, av] + grads


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape,ksize,strides,padding", POOLS)
def test_pools_and_their_gradients_match_the_reference_natively(dtype, shape, ksize, strides,
                                                                 padding):
    graph, (x, g), fetches = pool_graph(dtype, shape, ksize, strides, padding, False)
    xv = with_ties_and_nans(shape, dtype)
    gv = rng.normal(size=(shape[0],) + tuple(fetches[0].shape[1:])).astype(storage(dtype))
    mx, av, dmx, dav = run(fetches, {x: xv, g: gv}, graph=graph)
    assert host_ops(graph, fetches, [x, g]) == []
    assert np.isnan(mx[0, 0, 0, 0]) and not np.isnan(mx).all()  # NaN won, not everywhere
    assert dmx.shape == dav.shape == shape
    # each window's gradient went to one cell: the totals agree
    np.testing.assert_allclose(np.nansum(dmx, dtype=np.float64), gv.sum(dtype=np.float64),
                               rtol=2e-2, atol=1e-2)


@pytest.mark.parametrize("shape,ksize,strides,padding", [POOLS[0], POOLS[3]])
def test_pools_with_symbolic_height_and_width(shape, ksize, strides, padding):
    graph, (x, g), fetches = pool_graph("float32", shape, ksize, strides, padding, True)
    assert host_ops(graph, fetches, [x, g]) == []
    with graph.as_default():
        sess = {d: gc.Session(graph=graph, device=d) for d in ("reference", "cpu")}
    for size in (shape, (3, 8, 11) + shape[3:], (2, 1, 2) + shape[3:]):
        xv = with_ties_and_nans(size, "float32")
        out_hw = sess["reference"].run(fetches[0], {x: xv}).shape
        gv = rng.normal(size=out_hw).astype(np.float32)
        want = sess["reference"].run(fetches, {x: xv, g: gv})
        got = sess["cpu"].run(fetches, {x: xv, g: gv})
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6, equal_nan=True)


def test_max_pool_gradient_ties_and_nan_go_to_the_first_cell():
    x = np.array([[2.0, 5.0, 5.0, 1.0],
                  [5.0, np.nan, 3.0, 5.0],
                  [1.0, 1.0, -np.inf, -np.inf]], np.float32).reshape(1, 3, 4, 1)
    g = np.array([[10.0, 20.0], [30.0, 40.0]], np.float32).reshape(1, 2, 2, 1)
    graph = gc.Graph()
    with graph.as_default():
        xp, gp = gc.placeholder(gc.float32, x.shape), gc.placeholder(gc.float32, g.shape)
        dx = gc.nn.max_pool2d_grad(xp, gp, 2, 2, "SAME")
        got = run(dx, {xp: x, gp: g}, graph=graph)
        assert host_ops(graph, [dx], [xp, gp]) == []
    # the NaN wins its window; the bottom-right window's only real cells are -inf, tied with
    # its padding: the first real one takes the gradient
    want = np.array([[0, 0, 20, 0],
                     [0, 10, 0, 0],
                     [30, 0, 40, 0]], np.float32).reshape(1, 3, 4, 1)
    np.testing.assert_array_equal(got, want)


# ---- gather's gradient --------------------------------------------------------------------
GATHERS = [  # (params shape, indices shape, axis)
    ((10, 4), (7,), 0),
    ((1023, 3), (4099,), 0),
    ((3, 5, 2), (4, 3), 1),
    ((6,), (), 0),
    ((1, 7), (9,), 1),
]


@pytest.mark.parametrize("dtype", FLOATS + ("int32", "int64", "bool"))
@pytest.mark.parametrize("params,indices,axis", GATHERS)
def test_gather_grad_adds_repeated_indices_natively(dtype, params, indices, axis):
    grad_shape = params[:axis] + indices + params[axis + 1:]
    graph = gc.Graph()
    with graph.as_default():
        g = gc.placeholder(gc.as_dtype(dtype), grad_shape)
        i = gc.placeholder(gc.int32, indices)
        like = gc.placeholder(gc.as_dtype(dtype), params)
        out = apply("gather_grad", [g, i, like], axis=axis)
    gv = (rng.normal(size=grad_shape) * 4 > 3).astype(bool) if dtype == "bool" else (
        rng.normal(size=grad_shape) * 4).astype(storage(dtype))
    iv = rng.integers(0, min(3, params[axis]), indices).astype(np.int32)  # many repeats
    want = np.zeros(params, gv.dtype if dtype == "bool" else np.float64)  # bool adds: or
    np.add.at(want, (slice(None),) * axis + (iv,), gv)
    # float16 and bfloat16 round each add: a device adding in another order (a GPU's
    # atomics) differs by up to half a unit in the last place of the sum per add
    adds = int(np.bincount(iv.ravel()).max()) if iv.size else 0
    largest = np.abs(want).max(initial=0)
    ulp = {"float16": float(np.spacing(np.float16(largest))),  # bfloat16: float32's top 16 bits
           "bfloat16": float(np.spacing(np.float32(largest))) * 2 ** 16}.get(dtype, 0.0)
    got = run(out, {g: gv, i: iv, like: np.zeros(params, storage(dtype))}, graph=graph,
              tolerance={dtype: (0, adds * ulp / 2)} if ulp else None)
    assert host_ops(graph, [out], [g, i, like]) == []
    if not ulp:  # the reference rounds float16/bfloat16 too: `run` compared them
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


def test_embedding_gradient_runs_natively():
    graph = gc.Graph()
    with graph.as_default():
        table = gc.placeholder(gc.float32, (1023, 16))
        ids = gc.placeholder(gc.int64, (None, 7))
        loss = gc.sum(gc.square(gc.gather(table, ids)))
        grad = gc.grad(loss, [table])[0]
    tv = rng.normal(size=(1023, 16)).astype(np.float32)
    iv = rng.integers(0, 1023, (33, 7))
    iv[:, 0] = 5  # a row many times
    got = run(grad, {table: tv, ids: iv}, graph=graph)
    assert host_ops(graph, [grad], [table, ids]) == []
    counts = np.bincount(iv.ravel(), minlength=1023)[:, None]
    np.testing.assert_allclose(got, 2 * tv * counts, rtol=1e-5)


@pytest.mark.parametrize("bad,position", [(10, (3,)), (-1, (0,))])
def test_gather_grad_index_out_of_range_raises(bad, position):
    graph = gc.Graph()
    with graph.as_default():
        g = gc.placeholder(gc.float32, (5, 4))
        i = gc.placeholder(gc.int64, (5,))
        out = apply("gather_grad", [g, i, gc.placeholder(gc.float32, (10, 4))], axis=0,
                    name="scatter")
        iv = np.array([1, 2, 2, 0, 9])
        iv[position] = bad
        feed = {g: np.ones((5, 4), np.float32), i: iv, out.node.inputs[2]: np.zeros((10, 4))}
        with pytest.raises(gc.IndexError_, match=rf"'scatter'.*gather_grad: index {bad} at "
                           rf"position \({position[0]},\).*expected 0 <= index < 10"):
            run(out, feed, graph=graph)
