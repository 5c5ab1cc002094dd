"""gc.random.global_batch in one process: the shards' draws of a batch-shaped random node,
each made from the same generator state, are together exactly the draw of the whole batch
(what DataParallel relies on for dropout masks and noise); other draws are unchanged."""
import numpy as np
import pytest

import graphc as gc
from graphc.errors import GraphcError


def _graph():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 3, 2), name="x")
        rows = gc.placeholder(gc.int64, (), name="rows")
        offset = gc.placeholder(gc.int64, (), name="offset")
        with gc.random.global_batch(rows, offset, x):
            dropped = gc.nn.dropout(x, 0.5, seed=3)
            noise = gc.random.normal((4,), seed=5)     # not batch-shaped: as before
            other = gc.nn.dropout(gc.constant(np.ones((2, 2), "float32")), 0.5, seed=7)
        alone = gc.nn.dropout(x, 0.5, seed=3)
    return g, x, rows, offset, dropped, noise, other, alone


@pytest.mark.parametrize("device", ["cpu", "reference"])
@pytest.mark.parametrize("cuts", [(0, 4, 7), (0, 7, 7), (0, 0, 3, 7), (0, 7)])
def test_the_shards_draws_are_the_global_batch_draw(device, cuts):
    g, x, rows, offset, dropped, noise, other, alone = _graph()
    windowed = {n.attrs["seed"] for n in g.nodes if n.spec.random and n.attrs.get("window")}
    assert windowed == {3}   # only the batch-shaped draw inside the context
    xb = np.ones((7, 3, 2), "float32")
    whole = gc.function([x], [alone], device=device)(xb)[0]
    step = gc.function([x, rows, offset], [dropped, noise], device=device)
    parts, noises = [], []
    for lo, hi in zip(cuts, cuts[1:]):   # each shard: a fresh session, the same seed
        step_s = gc.function([x, rows, offset], [dropped, noise], device=device,
                             session=gc.Session(graph=g))
        part, n = step_s(xb[lo:hi], 7, lo)
        parts.append(part)
        noises.append(n)
    assert np.array_equal(np.concatenate(parts), whole)
    assert all(np.array_equal(n, noises[0]) for n in noises)
    assert step(xb, 7, 0)[0].shape == (7, 3, 2)


def test_a_window_past_the_global_batch_is_an_error():
    g, x, rows, offset, dropped, *_ = _graph()
    step = gc.function([x, rows, offset], dropped)
    with pytest.raises(GraphcError, match="rows \\[5, 8\\) of a batch of 7"):
        step(np.ones((3, 3, 2), "float32"), 7, 5)
