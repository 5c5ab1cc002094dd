"""gk.ops.image.rgb_to_hsv / hsv_to_rgb against Python's colorsys, and RandomSaturation and
RandomHue against numpy: exact outputs for a fixed seed computed from graphc's own per-image
draws, seeding, and the identity at inference; keras_breadth_parity.py compares their
deterministic settings with Keras 3."""
import colorsys

import numpy as np
import pytest

import graphc as gc
import graphc.frontend as gk

from .test_keras_color_augmentations import _draws, _inference, _train_out

L = gk.layers
rng = np.random.default_rng(19)
IMAGES = rng.uniform(0, 255, (48, 5, 7, 3)).astype("float32")
# greys, black, white, a pure primary and a hue near 1 (wraps) among the pixels
IMAGES[0, 0, :5] = [[40, 40, 40], [0, 0, 0], [255, 255, 255], [0, 255, 0], [255, 0, 1]]


def _np_hsv(x):
    flat = x.reshape(-1, 3).astype(np.float64)
    return np.array([colorsys.rgb_to_hsv(*p) for p in flat]).reshape(x.shape)


def _np_rgb(hsv):
    flat = hsv.reshape(-1, 3).astype(np.float64)
    return np.array([colorsys.hsv_to_rgb(h % 1.0, s, v) for h, s, v in flat]).reshape(hsv.shape)


def _run(op, x):
    inp = gc.placeholder(gc.float32, (None,) + x.shape[1:])
    return gc.function([inp], op(inp))(x)


def test_rgb_to_hsv_and_back_match_colorsys():
    unit = IMAGES / 255.0
    hsv = _run(gk.ops.image.rgb_to_hsv, unit)
    np.testing.assert_allclose(hsv, _np_hsv(unit), atol=2e-6)
    assert hsv[0, 0, 0, 1] == 0 and hsv[0, 0, 1].tolist() == [0, 0, 0]
    np.testing.assert_allclose(_run(gk.ops.image.hsv_to_rgb, hsv), unit, atol=2e-6)
    # any scale: hue and saturation as in [0, 1], value in that scale
    np.testing.assert_allclose(_run(gk.ops.image.rgb_to_hsv, IMAGES)[..., :2], hsv[..., :2],
                               atol=2e-6)
    shifted = hsv + np.array([1.25, 0, 0], np.float32)  # hue taken modulo 1
    np.testing.assert_allclose(_run(gk.ops.image.hsv_to_rgb, shifted), _np_rgb(shifted),
                               atol=2e-6)
    with pytest.raises(gc.GraphcError):
        gk.ops.image.rgb_to_hsv(np.zeros((2, 2, 3), np.int32))


def test_random_saturation_matches_its_draws():
    out = _train_out(L.RandomSaturation(0.7, seed=9), IMAGES)
    u = _draws(IMAGES, 9, -0.7, 0.7).astype(np.float64)
    hsv = _np_hsv(IMAGES)
    hsv[..., 1] = np.clip(hsv[..., 1] * (u / (1 - u + 1e-7))[..., 0], 0, 255)
    np.testing.assert_allclose(out, _np_rgb(hsv), rtol=1e-5, atol=2e-3)
    grey = _train_out(L.RandomSaturation((0.0, 0.0)), IMAGES)
    np.testing.assert_allclose(grey, np.repeat(IMAGES.max(-1, keepdims=True), 3, -1),
                               rtol=1e-6)
    np.testing.assert_allclose(_train_out(L.RandomSaturation((0.5, 0.5)), IMAGES), IMAGES,
                               rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(_inference(L.RandomSaturation(0.5, seed=9), IMAGES), IMAGES)


def test_random_hue_matches_its_draws():
    unit = IMAGES / 127.5 - 1
    out = _train_out(L.RandomHue((0.2, 0.9), value_range=(-1, 1), seed=4), unit)
    sign = np.where(_draws(IMAGES, 4) > 0.5, -1.0, 1.0)
    turn = (sign * _draws(IMAGES, 5, 0.2, 0.9) * 0.5)[..., 0]
    hsv = _np_hsv(IMAGES / 255.0)
    hsv[..., 0] = hsv[..., 0] + turn
    hsv[..., 0] = np.where(hsv[..., 0] > 1, hsv[..., 0] - 1, hsv[..., 0])
    hsv[..., 0] = np.where(hsv[..., 0] < 0, hsv[..., 0] + 1, hsv[..., 0])
    want = np.clip(_np_rgb(hsv), 0, 1) * 2 - 1
    np.testing.assert_allclose(out, want, atol=3e-5)
    assert 12 < np.sum(sign > 0) < 36  # both directions
    greys = np.repeat(IMAGES[..., :1], 3, -1)  # no hue to turn
    np.testing.assert_allclose(_train_out(L.RandomHue(1.0, seed=1), greys), greys, rtol=1e-5)
    np.testing.assert_array_equal(_inference(L.RandomHue(0.5), IMAGES), IMAGES)


def test_seeding_and_arguments():
    a = _train_out(L.RandomHue(0.5, seed=3), IMAGES)
    np.testing.assert_array_equal(a, _train_out(L.RandomHue(0.5, seed=3), IMAGES))
    assert not np.allclose(a, _train_out(L.RandomHue(0.5, seed=30), IMAGES))
    assert L.RandomSaturation(0.3).get_config()["factor"] == [-0.3, 0.3]
    assert L.RandomHue(0.3).get_config()["factor"] == [0.0, 0.3]
    for make in (lambda: L.RandomHue(1.5), lambda: L.RandomSaturation(-2.0),
                 lambda: L.RandomSaturation(0.5, value_range=3),
                 lambda: L.RandomHue(0.5, data_format="channels_first")):
        with pytest.raises(gc.GraphcError):
            make()
    layer = L.RandomSaturation(0.2, seed=5)
    again = gk.layers.deserialize(gk.layers.serialize(layer))
    assert again.get_config()["factor"] == [-0.2, 0.2] and again.seed == 5
