"""RandomRotation against numpy: the rotation matrix of graphc's own per-image angle draws
resampled by a per-pixel numpy loop (test_keras_affine_transform's), seeding, arguments, and
the identity at inference; keras_breadth_parity.py compares fixed angles with Keras 3."""
import math

import numpy as np
import pytest

import graphc as gc
import graphc.frontend as gk

from .test_keras_affine_transform import _np_affine
from .test_keras_color_augmentations import _draws, _inference, _train_out

L = gk.layers
rng = np.random.default_rng(59)
IMAGES = rng.uniform(0, 255, (6, 5, 7, 2)).astype("float32")


def _np_rotation(angle_degrees, h, w):
    t = np.radians(angle_degrees.astype(np.float64))
    cx, cy = (w - 1) / 2, (h - 1) / 2
    a0, a1, b0, b1 = np.cos(t), -np.sin(t), np.sin(t), np.cos(t)
    return np.stack([a0, a1, cx - cx * a0 - cy * a1, b0, b1, cy - cx * b0 - cy * b1,
                     0 * t, 0 * t], -1)


@pytest.mark.parametrize("fill_mode,interpolation", [("reflect", "bilinear"),
                                                     ("constant", "nearest"),
                                                     ("wrap", "bilinear")])
def test_random_rotation_matches_its_draws(fill_mode, interpolation):
    layer = L.RandomRotation((-0.3, 0.2), fill_mode=fill_mode, interpolation=interpolation,
                             fill_value=-7.0, seed=5)
    out = _train_out(layer, IMAGES)
    angles = _draws(IMAGES, 5, -0.3 * 360, 0.2 * 360)[:, 0, 0, 0]
    want = _np_affine(IMAGES, _np_rotation(angles, 5, 7), interpolation, fill_mode, -7.0)
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=2e-3)
    np.testing.assert_array_equal(_inference(layer, IMAGES), IMAGES)


def test_half_turn_and_arguments():
    half = _train_out(L.RandomRotation((0.5, 0.5), interpolation="nearest"), IMAGES)
    np.testing.assert_allclose(half, IMAGES[:, ::-1, ::-1], atol=1e-3)
    assert math.isclose(L.RandomRotation(0.25).get_config()["factor"][0], -0.25)
    for make in (lambda: L.RandomRotation(1.5), lambda: L.RandomRotation(0.1, "edge"),
                 lambda: L.RandomRotation(0.1, interpolation="bicubic")):
        with pytest.raises(gc.GraphcError):
            make()
    a = _train_out(L.RandomRotation(0.2, seed=3), IMAGES)
    np.testing.assert_array_equal(a, _train_out(L.RandomRotation(0.2, seed=3), IMAGES))


def test_random_translation_and_zoom_match_their_draws():
    out = _train_out(L.RandomTranslation((-0.4, 0.3), 0.5, fill_mode="nearest", seed=8),
                     IMAGES)
    down = _draws(IMAGES, 8, -0.4, 0.3)[:, 0, 0, 0].astype(np.float64) * 5
    right = _draws(IMAGES, 9, -0.5, 0.5)[:, 0, 0, 0].astype(np.float64) * 7
    one, zero = np.ones_like(down), np.zeros_like(down)
    shift = np.stack([one, zero, -right, zero, one, -down, zero, zero], -1)
    np.testing.assert_allclose(out, _np_affine(IMAGES, shift, "bilinear", "nearest", 0.0),
                               rtol=1e-4, atol=2e-3)
    whole = _train_out(L.RandomTranslation((0.4, 0.4), (-3 / 7, -3 / 7), "constant",
                                           "nearest"), IMAGES)
    want = np.zeros_like(IMAGES)
    want[:, 2:, :4] = IMAGES[:, :3, 3:]  # 2 rows down, 3 columns left
    np.testing.assert_allclose(whole, want, atol=1e-3)
    out = _train_out(L.RandomZoom(0.3, (-0.5, 0.2), fill_mode="reflect", seed=4), IMAGES)
    zh = 1 + _draws(IMAGES, 4, -0.3, 0.3)[:, 0, 0, 0].astype(np.float64)
    zw = 1 + _draws(IMAGES, 5, -0.5, 0.2)[:, 0, 0, 0].astype(np.float64)
    zoom = np.stack([zw, 0 * zw, 3 * (1 - zw), 0 * zw, zh, 2 * (1 - zh), 0 * zw, 0 * zw], -1)
    np.testing.assert_allclose(out, _np_affine(IMAGES, zoom, "bilinear", "reflect", 0.0),
                               rtol=1e-4, atol=2e-3)
    same = _train_out(L.RandomZoom((0.5, 0.5), fill_mode="constant"), IMAGES)
    np.testing.assert_allclose(same[:, 2, 3], IMAGES[:, 2, 3], atol=1e-3)  # the centre stays
    for layer in (L.RandomTranslation(0.2, 0.2), L.RandomZoom(0.2)):
        np.testing.assert_array_equal(_inference(layer, IMAGES), IMAGES)
    with pytest.raises(gc.GraphcError):
        L.RandomZoom(0.2, fill_mode="edge")
    assert L.RandomZoom(0.2).get_config()["width_factor"] is None


def test_random_shear_matches_its_draws():
    out = _train_out(L.RandomShear(0.4, (0.1, 0.3), fill_mode="wrap", seed=12), IMAGES)
    sign = np.where(_draws(IMAGES, 12)[:, 0, 0, 0] > 0.5, -1.0, 1.0)
    sx = _draws(IMAGES, 13, -0.4, 0.4)[:, 0, 0, 0] * sign
    sy = _draws(IMAGES, 14, 0.1, 0.3)[:, 0, 0, 0] * sign
    one, zero = np.ones_like(sx), np.zeros_like(sx)
    shear = np.stack([one, sx, zero, sy, one, zero, zero, zero], -1)
    np.testing.assert_allclose(out, _np_affine(IMAGES, shear, "bilinear", "wrap", 0.0),
                               rtol=1e-4, atol=2e-3)
    assert np.any(sign > 0) and np.any(sign < 0)
    np.testing.assert_array_equal(_train_out(L.RandomShear(), IMAGES), IMAGES)  # factors 0
    np.testing.assert_array_equal(_inference(L.RandomShear(0.5, 0.5), IMAGES), IMAGES)
    for bad in (dict(x_factor=-0.2), dict(y_factor=(0.2, 1.5))):
        with pytest.raises(gc.GraphcError):
            L.RandomShear(**bad)
    assert L.RandomShear(0.3).get_config()["x_factor"] == [-0.3, 0.3]
