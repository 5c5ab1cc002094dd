"""Keras's adaptive pooling layers and ops against a numpy loop over PyTorch-style windows
([floor(o * n / out), ceil((o + 1) * n / out)) per axis); keras_breadth_parity.py and
keras_ops_parity.py check them against Keras 3 itself."""
from itertools import product
from math import ceil, floor

import numpy as np
import pytest

import graphc as gc
import graphc.frontend as gk

L = gk.layers
rng = np.random.default_rng(11)


def naive_adaptive(x, sizes, reduce):
    out = np.zeros((x.shape[0],) + tuple(sizes) + (x.shape[-1],))
    for pos in product(*[range(o) for o in sizes]):
        box = tuple(slice(floor(p * n / o), ceil((p + 1) * n / o))
                    for p, n, o in zip(pos, x.shape[1:-1], sizes))
        cells = x[(slice(None),) + box].reshape(x.shape[0], -1, x.shape[-1])
        out[(slice(None),) + pos] = reduce(cells, axis=1)
    return out


def _predict(layer, x):
    inp = gk.Input(x.shape[1:])
    return gk.Model(inp, layer(inp)).predict(x, verbose=0)


@pytest.mark.parametrize("shape,output_size", [((2, 7, 3), 3), ((2, 5, 2), (8,)),
                                               ((1, 8, 5, 2), (3, 7)), ((2, 4, 6, 5, 1), 2),
                                               ((1, 5, 3, 7, 2), (2, 4, 3))])
@pytest.mark.parametrize("kind,reduce", [("Average", np.mean), ("Max", np.max)])
def test_adaptive_pooling_layers(shape, output_size, kind, reduce):
    rank = len(shape) - 2
    x = rng.normal(size=shape).astype("float32")
    if kind == "Max":  # -inf cells win no window that holds a finite one
        x.reshape(-1)[::9] = -np.inf
    layer = getattr(L, f"Adaptive{kind}Pooling{rank}D")(output_size)
    sizes = (output_size,) * rank if isinstance(output_size, int) else output_size
    np.testing.assert_allclose(_predict(layer, x), naive_adaptive(x, sizes, reduce), 1e-6, 1e-6)
    assert layer.get_config()["output_size"] == list(sizes)


def test_adaptive_pool_ops_differentiate_and_check_arguments():
    x = rng.normal(size=(2, 6, 5, 3))
    with gc.Graph().as_default():
        t = gc.constant(x)
        y = gk.ops.adaptive_average_pool(t, (4, 2))
        (g,) = gc.grad(gc.sum(y * y), [t])
        got_y, got_g = gc.Session().run([y, g])
    np.testing.assert_allclose(got_y, naive_adaptive(x, (4, 2), np.mean), 1e-12)
    # d/dx of sum(y^2): each cell gets 2 * y / window size from every window that holds it
    want = np.zeros_like(x)
    for i, j in product(range(4), range(2)):
        hs, ws = (slice(floor(i * 6 / 4), ceil((i + 1) * 6 / 4)),
                  slice(floor(j * 5 / 2), ceil((j + 1) * 5 / 2)))
        cells = (hs.stop - hs.start) * (ws.stop - ws.start)
        want[:, hs, ws] += 2 * got_y[:, i, j][:, None, None] / cells
    np.testing.assert_allclose(got_g, want, 1e-12)
    with pytest.raises(gc.GraphcError, match="output size"):
        gk.ops.adaptive_max_pool(gc.constant(x), (2, 2, 2))
    with pytest.raises(gc.GraphcError, match="output_size"):
        L.AdaptiveMaxPooling2D((2, 0))
    with pytest.raises(gc.GraphcError, match="data_format"):
        L.AdaptiveAveragePooling1D(2, data_format="nchw")
