"""RandomErasing against numpy: the erased rectangles and the fill for a fixed seed computed
from graphc's own per-image draws, the normal fill's statistics, run-time sizes, and the
identity at inference."""
import numpy as np
import pytest

import graphc as gc
import graphc.frontend as gk

from .test_keras_color_augmentations import _draws, _inference, _train_out

L = gk.layers
rng = np.random.default_rng(31)
IMAGES = rng.uniform(0, 255, (64, 9, 11, 3)).astype("float32")


def _np_mask(x, seed, scale, factor):
    h, w = x.shape[1:3]
    inside = True
    for axis, length, k in ((2, w, 0), (1, h, 1)):
        ratio = np.sqrt(_draws(x, seed + k, *scale).astype(np.float64))
        start = _draws(x, seed + k + 2) * (length - ratio * length)
        shape = [1, 1, 1, 1]
        shape[axis] = length
        where = np.arange(length).reshape(shape)
        inside = inside & (where >= start) & (where < start + ratio * length)
    return inside & (_draws(x, seed + 5) < _draws(x, seed + 4, *factor))


def test_random_erasing_with_a_fill_value_matches_its_draws():
    layer = L.RandomErasing(factor=(0.4, 0.9), scale=(0.1, 0.5), fill_value=[10, 300, -5],
                            value_range=(0, 255), seed=3)
    out = _train_out(layer, IMAGES)
    mask = np.broadcast_to(_np_mask(IMAGES, 3, (0.1, 0.5), (0.4, 0.9)), IMAGES.shape)
    np.testing.assert_array_equal(out, np.where(mask, np.array([10, 255, 0], np.float32),
                                                IMAGES))
    erased = mask.any(axis=(1, 2, 3))
    assert 20 < erased.sum() < 60 and mask.any() and not mask.all()
    # run-time height and width give the same result
    inp = gc.placeholder(gc.float32, (None, None, None, 3))
    np.testing.assert_array_equal(gc.function([inp], layer(inp, training=True))(IMAGES), out)
    np.testing.assert_array_equal(_inference(layer, IMAGES), IMAGES)


def test_random_erasing_default_fill_is_clipped_normal_noise():
    layer = L.RandomErasing(factor=(1.0, 1.0), scale=(0.3, 0.3), value_range=(-1, 1), seed=8)
    x = np.full((400, 6, 6, 1), 0.25, np.float32)
    out = _train_out(layer, x)
    mask = np.broadcast_to(_np_mask(x, 8, (0.3, 0.3), (1.0, 1.0)), x.shape)
    np.testing.assert_array_equal(out[~mask], x[~mask])
    noise = out[mask]
    # a standard normal clipped to [-1, 1]: about 15.9% of the cells at each bound
    assert abs(np.mean(noise == 1.0) - 0.159) < 0.03 and abs(np.mean(noise == -1.0) - 0.159) < 0.03
    inner = noise[np.abs(noise) < 1]
    assert abs(inner.mean()) < 0.03 and np.all(np.isfinite(noise))


def test_arguments_refused_as_keras_does():
    for make in (lambda: L.RandomErasing(1.5), lambda: L.RandomErasing(scale=(0.2, 1.5, 2)),
                 lambda: L.RandomErasing(fill_value=[1, 2]),
                 lambda: L.RandomErasing(fill_value="red")):
        with pytest.raises(gc.GraphcError):
            make()
    config = L.RandomErasing(0.5, scale=0.4).get_config()
    assert config["factor"] == [0.0, 0.5] and config["scale"] == [0.0, 0.4]
