"""AugMix against a numpy composition of its own draws: each chain step's picked augmentation
run on its own (graphc's layer, a separate graph), the chains mixed by the drawn Dirichlet
weights and blended by the drawn Beta weight in numpy; arguments and the identity at
inference."""
import numpy as np
import pytest

import graphc as gc
import graphc.frontend as gk
from graphc.frontend.layers.aug_mix import _apply

from .test_keras_color_augmentations import _inference

L = gk.layers
rng = np.random.default_rng(73)
IMAGES = rng.uniform(0, 255, (4, 6, 7, 3)).astype("float32")
# The whole layer runs on the reference device: each augmentation's kernels are checked on the
# cpu by its own tests, and compiling AugMix's 66 alternatives natively takes most of a minute.
DEVICE = "reference"


def _run(make, x, device=DEVICE):
    inp = gc.placeholder(gc.float32, (None,) + x.shape[1:])
    outs = make(inp)
    return gc.function([inp], outs if isinstance(outs, list) else [outs], device=device)(x)


@pytest.mark.parametrize("all_ops,seed", [(True, 5), (False, 8)])
def test_aug_mix_matches_its_draws(all_ops, seed):
    layer = L.AugMix(value_range=(0, 255), num_chains=2, chain_depth=3, factor=0.4, alpha=0.7,
                     all_ops=all_ops, seed=seed)
    got, *draws = _run(lambda t: [layer(t, training=True)] + layer.choices(t)
                       + layer.mix_weights(t)[0] + [layer.mix_weights(t)[1]], IMAGES)
    picks, chain_weights, blend = draws[:6], draws[6:8], float(draws[8])
    n = 11 if all_ops else 7
    assert all(p == int(p) and 0 <= p <= n for p in picks) and min(picks) < n
    assert np.isclose(sum(chain_weights), 1.0) and min(chain_weights) >= 0 and 0 <= blend <= 1
    mixed = 0.0
    for c in range(2):
        y = IMAGES
        for step in range(3 * c, 3 * c + 3):
            k = int(picks[step])
            if k < n:
                y = _run(lambda t: _apply(layer.steps[step][k], t), y)[0]
        mixed = mixed + chain_weights[c] * y
    want = np.clip(blend * IMAGES + (1 - blend) * mixed, 0, 255)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=5e-3)
    np.testing.assert_array_equal(_inference(layer, IMAGES), IMAGES)


def test_aug_mix_arguments():
    layer = L.AugMix(factor=0.3, all_ops=False, seed=1)
    assert len(layer.steps) == 9 and len(layer.steps[0]) == 7
    assert type(layer.steps[0][3]).__name__ == "RandomPosterization"
    assert layer.steps[0][3].factor == (1.0, 2.0)  # Keras's max(1, int(8 * 0.3))
    config = L.AugMix(value_range=(-1, 1), factor=(0.1, 0.2), num_chains=2).get_config()
    assert config["factor"] == [0.1, 0.2] and config["value_range"] == [-1.0, 1.0]
    assert config["num_chains"] == 2 and config["all_ops"] is True
    for make in (lambda: L.AugMix(num_chains=0), lambda: L.AugMix(chain_depth=1.5),
                 lambda: L.AugMix(factor=1.5), lambda: L.AugMix(alpha=0.0)):
        with pytest.raises(gc.GraphcError):
            make()


def test_aug_mix_keeps_the_layer_weights_list():
    """Its mixing draws have a name of their own: `weights` stays the layer's variables, so a
    model holding it lists, gets and sets its weights."""
    aug, dense = L.AugMix(), L.Dense(2)
    model = gk.Sequential([L.Input(IMAGES.shape[1:]), aug, dense])
    assert aug.weights == [] and len(model.weights) == 2
    kernel, bias = np.ones((3, 2), "float32"), np.full(2, 0.5, "float32")
    model.set_weights([kernel, bias])
    np.testing.assert_array_equal(model.get_weights()[0], kernel)
    expect = np.repeat(IMAGES.sum(-1, keepdims=True), 2, axis=-1) + 0.5
    np.testing.assert_allclose(model.predict(IMAGES), expect, rtol=1e-5)
