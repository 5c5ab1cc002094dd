"""Keras's colour augmentations and RandomCrop against numpy: exact outputs for a fixed seed, computed from
graphc's own per-image draws (the same seeded random op the layer draws from), the structure
and frequency of the changes, and the identity at inference; keras_breadth_parity.py compares
their inference behaviour and their deterministic settings with Keras 3."""
import numpy as np
import pytest

import graphc as gc
import graphc.frontend as gk
from graphc.ops.state import random_uniform_like

L = gk.layers
rng = np.random.default_rng(8)
IMAGES = rng.uniform(0, 255, (64, 5, 6, 3)).astype("float32")


def _train_out(layer, x):
    inp = gc.placeholder(gc.float32, (None,) + x.shape[1:])
    return gc.function([inp], layer(inp, training=True))(x)


def _draws(x, seed, low=0.0, high=1.0):
    """The per-image uniform draws (batch, 1, 1, 1) of seed `seed` the layers make."""
    inp = gc.placeholder(gc.float32, (None,) + x.shape[1:])
    return gc.function([inp], random_uniform_like(inp[:, :1, :1, :1], low, high,
                                                  seed=seed))(x)


def _inference(layer, x):
    inp = gk.Input(x.shape[1:])
    return gk.Model(inp, layer(inp)).predict(x, verbose=0)


def test_random_invert_matches_its_draws():
    out = _train_out(L.RandomInvert(factor=(0.2, 0.9), seed=5), IMAGES)
    chance, pick = _draws(IMAGES, 5, 0.2, 0.9), _draws(IMAGES, 6)
    np.testing.assert_array_equal(out, np.where(pick < chance, 255 - IMAGES, IMAGES))
    inverted = np.all(out == 255 - IMAGES, axis=(1, 2, 3))
    assert np.all(inverted | np.all(out == IMAGES, axis=(1, 2, 3))) and 10 < inverted.sum() < 54
    # Keras's default factor 1.0: a draw in [0, 1] against one in [0, 1], half inverted
    many = np.repeat(IMAGES[:, :1, :1], 16, axis=0)
    share = np.mean(_train_out(L.RandomInvert(seed=1), many) != many)
    assert 0.42 < share < 0.58
    np.testing.assert_array_equal(_inference(L.RandomInvert(seed=5), IMAGES), IMAGES)


def test_random_grayscale_matches_its_draws():
    out = _train_out(L.RandomGrayscale(factor=0.4, seed=3), IMAGES)
    gray = IMAGES.astype(np.float64) @ np.array([0.2989, 0.5870, 0.1140])
    want = np.where(_draws(IMAGES, 3) < 0.4, gray[..., None], IMAGES)
    np.testing.assert_allclose(out, np.broadcast_to(want, out.shape), rtol=1e-6)
    converted = np.all(out == out[..., :1], axis=(1, 2, 3))
    assert 10 < converted.sum() < 40
    np.testing.assert_array_equal(_inference(L.RandomGrayscale(1.0), IMAGES), IMAGES)


def test_solarization_matches_its_draws_and_value_range():
    out = _train_out(L.Solarization(addition_factor=0.2, threshold_factor=0.8, seed=11), IMAGES)
    add, threshold = _draws(IMAGES, 11, 0.0, 0.2 * 255), _draws(IMAGES, 12, 0.0, 0.8 * 255)
    shifted = np.clip(IMAGES + add, 0, 255)
    np.testing.assert_allclose(out, np.where(shifted < threshold, shifted, 255 - shifted),
                               rtol=1e-6, atol=1e-4)
    unit = IMAGES / 255.0
    np.testing.assert_allclose(_train_out(L.Solarization(value_range=(0, 1)), unit), 1 - unit,
                               atol=1e-6)
    np.testing.assert_array_equal(_inference(L.Solarization(0.5, 0.5), IMAGES), IMAGES)


def test_random_posterization_keeps_the_top_bits():
    out = _train_out(L.RandomPosterization(factor=6, seed=2), IMAGES)
    bits = np.floor(_draws(IMAGES, 2, 1.0, 6.0))
    step = 2.0 ** (8 - bits)
    np.testing.assert_array_equal(out, np.floor(np.floor(IMAGES) / step) * step)
    assert set(np.unique(bits)) <= {1, 2, 3, 4, 5} and len(np.unique(bits)) >= 3
    exact = _train_out(L.RandomPosterization(factor=(2, 2), value_range=(-1, 1)),
                       IMAGES / 127.5 - 1)
    want = np.floor(np.floor(IMAGES.astype(np.float64)) / 64) * 64 / 255 * 2 - 1
    np.testing.assert_allclose(exact, want, atol=1e-5)
    np.testing.assert_array_equal(_inference(L.RandomPosterization(4), IMAGES), IMAGES)


def test_color_degeneration_and_sharpness_match_their_draws():
    out = _train_out(L.RandomColorDegeneration(0.8, seed=4), IMAGES)
    f = _draws(IMAGES, 4, -0.8, 0.8)
    gray = (IMAGES.astype(np.float64) @ np.array([0.2989, 0.5870, 0.1140]))[..., None]
    np.testing.assert_allclose(out, np.clip(IMAGES + f * (gray - IMAGES), 0, 255), rtol=1e-5,
                               atol=1e-3)
    out = _train_out(L.RandomSharpness((0.1, 0.9), value_range=(0, 300), seed=6), IMAGES)
    f = _draws(IMAGES, 6, 0.1, 0.9) * 2
    padded = np.pad(IMAGES.astype(np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)))
    smoothed = sum(padded[:, i:i + 5, j:j + 6] * (5 if (i, j) == (1, 1) else 1)
                   for i in range(3) for j in range(3)) / 13
    np.testing.assert_allclose(out, np.clip(IMAGES + (1 - f) * (smoothed - IMAGES), 0, 300),
                               rtol=1e-5, atol=1e-3)
    for layer in (L.RandomColorDegeneration(1.0), L.RandomSharpness(1.0)):
        np.testing.assert_array_equal(_inference(layer, IMAGES), IMAGES)


def test_auto_contrast_stretches_every_channel():
    x = IMAGES * 0.5 + 20
    x[0, ..., 1] = 7.0  # a constant channel is kept as it is
    out = _inference(L.AutoContrast(), x)  # applied at inference too, as in Keras
    low, high = x.min(axis=(1, 2), keepdims=True), x.max(axis=(1, 2), keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        want = np.where(high > low, (x - low) * (255.0 / (high - low)), x)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-3)
    unit = _inference(L.AutoContrast(value_range=(-1, 1)), x / 255.0)
    assert np.allclose(unit[1:].min(axis=(1, 2)), -1) and np.allclose(unit[1:].max(axis=(1, 2)), 1)


def test_arguments_refused_as_keras_does():
    for make in (lambda: L.RandomGrayscale(1.5), lambda: L.RandomInvert(factor=2.0),
                 lambda: L.Solarization(addition_factor=1.2),
                 lambda: L.RandomPosterization(factor=9),
                 lambda: L.AutoContrast(value_range=5)):
        with pytest.raises(gc.GraphcError):
            make()
    assert L.RandomInvert(0.5).get_config()["factor"] == [0.0, 0.5]
    assert L.RandomColorDegeneration(0.5).get_config()["factor"] == [-0.5, 0.5]
    assert L.RandomPosterization(4).get_config()["factor"] == [1.0, 4.0]


def test_random_crop_takes_one_window_per_batch_in_training():
    out = _train_out(L.RandomCrop(3, 4, seed=9), IMAGES)
    top, left = int(_scalar_draw(IMAGES, 9, 5 - 3 + 1)), int(_scalar_draw(IMAGES, 10, 6 - 4 + 1))
    np.testing.assert_array_equal(out, IMAGES[:, top:top + 3, left:left + 4])
    offsets = set()
    for seed in range(12):
        window = _train_out(L.RandomCrop(3, 4, seed=seed), IMAGES)[0]
        offsets |= {(i, j) for i in range(3) for j in range(3)
                    if np.array_equal(window, IMAGES[0, i:i + 3, j:j + 4])}
    assert len(offsets) >= 4  # seeds move the window
    # not larger than 7x6 along both axes: the central window of aspect 7:6 (5x4) starts at
    # (0, 1); Keras slices 7x6 cells from there (5x5 inside the image) and resizes them
    small = _train_out(L.RandomCrop(7, 6, seed=1), IMAGES)
    with gc.Graph().as_default():
        want = gc.Session().run(gk.ops.image.resize(IMAGES[:, 0:5, 1:6], (7, 6)))
    np.testing.assert_allclose(small, want, rtol=1e-6)
    np.testing.assert_array_equal(_inference(L.RandomCrop(3, 4), IMAGES), IMAGES)


def _scalar_draw(x, seed, high):
    """The scalar uniform draw in [0, high) of seed `seed` that RandomCrop makes."""
    inp = gc.placeholder(gc.float32, (None,) + x.shape[1:])
    return gc.function([inp], random_uniform_like(inp[0, 0, 0, 0], 0.0, float(high),
                                                  seed=seed))(x)
