"""RandomColorJitter against its stages: the chain of RandomBrightness, RandomContrast,
RandomSaturation and RandomHue with the seeds it derives, applied in Keras's order; only the
given factors act; the identity at inference."""
import numpy as np
import pytest

import graphc as gc
import graphc.frontend as gk

from .test_keras_color_augmentations import _inference, _train_out

L = gk.layers
rng = np.random.default_rng(43)
IMAGES = rng.uniform(0, 255, (24, 5, 6, 3)).astype("float32")


def test_color_jitter_chains_its_stages_in_keras_order():
    layer = L.RandomColorJitter(value_range=(0, 255), brightness_factor=0.2,
                                contrast_factor=0.3, saturation_factor=0.4,
                                hue_factor=0.25, seed=6)
    out = _train_out(layer, IMAGES)
    x = IMAGES
    for make, seed in ((lambda s: L.RandomBrightness(0.2, seed=s), 106),
                       (lambda s: L.RandomContrast(0.3, seed=s), 206),
                       (lambda s: L.RandomSaturation(0.4, seed=s), 306),
                       (lambda s: L.RandomHue(0.25, seed=s), 406)):
        x = _train_out(make(seed), x)
    np.testing.assert_allclose(out, x, rtol=1e-5, atol=1e-3)
    assert np.abs(out - IMAGES).mean() > 1.0
    np.testing.assert_array_equal(_inference(layer, IMAGES), IMAGES)


def test_only_the_given_factors_act():
    only_hue = _train_out(L.RandomColorJitter(hue_factor=0.5, seed=2), IMAGES)
    np.testing.assert_allclose(only_hue, _train_out(L.RandomHue(0.5, seed=402), IMAGES),
                               rtol=1e-6)
    np.testing.assert_array_equal(_train_out(L.RandomColorJitter(seed=2), IMAGES), IMAGES)
    grey = _train_out(L.RandomColorJitter(saturation_factor=(0.0, 0.0), value_range=(0, 1)),
                      IMAGES / 255.0)
    np.testing.assert_allclose(grey, np.repeat(IMAGES.max(-1, keepdims=True), 3, -1) / 255,
                               rtol=1e-5)
    config = L.RandomColorJitter(contrast_factor=0.1, seed=3).get_config()
    assert config["contrast_factor"] == 0.1 and config["hue_factor"] is None
    with pytest.raises(gc.GraphcError):
        L.RandomColorJitter(hue_factor=2.0)
