"""RandomElasticTransform against numpy: graphc's own per-image draws and noise planes, blurred
by a numpy Gaussian of Keras's int(6 sigma) | 1 taps and resampled by the per-pixel numpy loop of
test_keras_affine_transform; arguments, clipping, and the identity at inference."""
import numpy as np
import pytest

import graphc as gc
import graphc.frontend as gk
from graphc.frontend.layers.noise import standard_normal_like

from .test_keras_affine_transform import _np_sample
from .test_keras_color_augmentations import _draws, _inference, _train_out

L = gk.layers
rng = np.random.default_rng(67)
IMAGES = rng.uniform(0, 255, (5, 13, 17, 2)).astype("float32")


def _noise(x, seed):
    inp = gc.placeholder(gc.float32, (None,) + x.shape[1:])
    return gc.function([inp], standard_normal_like(inp[..., :1], seed))(x)[..., 0]


def _np_blur(plane, sigma):
    """Keras's Gaussian blur of a (batch, h, w) plane, zeros beyond the border."""
    size = int(6 * sigma) | 1
    kernel = np.exp(-0.5 * ((np.arange(size) - size // 2) / sigma) ** 2)
    kernel /= kernel.sum()
    for axis in (1, 2):
        plane = np.apply_along_axis(lambda r: np.convolve(r, kernel, "same"), axis, plane)
    return plane


@pytest.mark.parametrize("fill_mode,interpolation,scale", [("reflect", "bilinear", 1.0),
                                                           ("constant", "nearest", (0.5, 0.9)),
                                                           ("wrap", "bilinear", 0.4)])
def test_random_elastic_transform_matches_its_draws(fill_mode, interpolation, scale):
    layer = L.RandomElasticTransform(factor=(0.2, 0.9), scale=scale, fill_mode=fill_mode,
                                     interpolation=interpolation, fill_value=300.0,
                                     value_range=(10, 250), seed=11)
    out = _train_out(layer, IMAGES)
    applied = _draws(IMAGES, 12)[:, 0, 0, 0] < _draws(IMAGES, 11, 0.2, 0.9)[:, 0, 0, 0]
    low, high = layer.scale
    s = float(_draws(IMAGES, 13, low, high)[0, 0, 0, 0])
    alpha, sigma = 0.1 * 17 * s, 0.05 * 13 * s
    dx, dy = (_np_blur(_noise(IMAGES, seed) * sigma, sigma) for seed in (14, 16))
    ys, xs = np.meshgrid(np.arange(13), np.arange(17), indexing="ij")
    warped = _np_sample(IMAGES, xs + alpha * dx, ys + alpha * dy, interpolation, fill_mode,
                        300.0)
    want = np.clip(np.where(applied[:, None, None, None], warped, IMAGES), 10, 250)
    assert 0 < applied.sum() < 5
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=2e-2)
    np.testing.assert_array_equal(_inference(layer, IMAGES), IMAGES)


def test_random_elastic_transform_arguments():
    # no scale or no chance: the images as they are, not even clipped (as in Keras)
    for layer in (L.RandomElasticTransform(scale=0.0), L.RandomElasticTransform(0.0)):
        np.testing.assert_array_equal(_train_out(layer, IMAGES * 2), IMAGES * 2)
    config = L.RandomElasticTransform(0.4, seed=2).get_config()
    assert config["factor"] == [0.0, 0.4] and config["scale"] == [0.0, 1.0]
    assert config["fill_mode"] == "reflect" and config["value_range"] == [0.0, 255.0]
    a = _train_out(L.RandomElasticTransform(seed=3), IMAGES)
    np.testing.assert_array_equal(a, _train_out(L.RandomElasticTransform(seed=3), IMAGES))
    for make in (lambda: L.RandomElasticTransform(scale=1.5),
                 lambda: L.RandomElasticTransform(1.5),
                 lambda: L.RandomElasticTransform(fill_mode="edge"),
                 lambda: L.RandomElasticTransform(interpolation="bicubic")):
        with pytest.raises(gc.GraphcError):
            make()
