"""RandAugment against a composition of its own draws: each round's picked augmentation run
on its own (graphc's layer, a separate graph); arguments and the identity at inference."""
import numpy as np
import pytest

import graphc as gc
import graphc.frontend as gk
from graphc.frontend.layers.aug_mix import _apply

from .test_aug_mix import _run
from .test_keras_color_augmentations import _inference

L = gk.layers
rng = np.random.default_rng(79)
IMAGES = rng.uniform(0, 255, (4, 6, 7, 3)).astype("float32")


@pytest.mark.parametrize("seed,device", [(4, "reference"), (21, "cpu")])
def test_rand_augment_matches_its_draws(seed, device):
    layer = L.RandAugment(value_range=(0, 255), num_ops=3, factor=0.6, seed=seed)
    got, *picks = _run(lambda t: [layer(t, training=True)] + layer.choices(t), IMAGES, device)
    assert all(p == int(p) and 0 <= p < 11 for p in picks)
    want = IMAGES
    for p in picks:
        want = _run(lambda t: _apply(layer.operations[int(p)], t), want)[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=5e-3)
    assert not np.allclose(got, IMAGES, atol=1e-2)
    np.testing.assert_array_equal(_inference(layer, IMAGES), IMAGES)


def test_rand_augment_arguments():
    layer = L.RandAugment(factor=0.3, seed=1)
    assert [type(op).__name__ for op in layer.operations] == [
        "RandomShear", "RandomTranslation", "RandomRotation", "RandomBrightness",
        "RandomColorDegeneration", "RandomContrast", "RandomSharpness", "RandomPosterization",
        "Solarization", "AutoContrast", "Equalization"]
    assert layer.operations[2].factor == (0.0, 0.3)
    np.testing.assert_array_equal(_run(lambda t: L.RandAugment(num_ops=0)(t, training=True),
                                       IMAGES)[0], IMAGES)
    config = L.RandAugment(value_range=(0, 1), num_ops=1, factor=(0.1, 0.4)).get_config()
    assert (config["num_ops"], config["factor"], config["value_range"]) == \
        (1, [0.1, 0.4], [0.0, 1.0])
    for make in (lambda: L.RandAugment(num_ops=-1), lambda: L.RandAugment(factor=2.0)):
        with pytest.raises(gc.GraphcError):
            make()
