"""MixUp and CutMix against numpy: each MixUp image is w * image + (1 - w) * its partner, each
CutMix image its partner inside a rectangle, for graphc's own draws of the weights, the
rectangles and the permutation; the draws' distributions (Beta(alpha, alpha) moments,
uniform permutations), run-time batch sizes, seeding, and the identity at inference."""
import numpy as np
import pytest

import graphc as gc
import graphc.frontend as gk
from graphc.frontend.layers.mix_up import random_permutation
from graphc.frontend.random import beta_like

from graphc.ops.state import random_uniform_like

from .test_keras_color_augmentations import _draws, _inference, _train_out

L = gk.layers
rng = np.random.default_rng(41)
IMAGES = rng.uniform(0, 255, (37, 4, 5, 3)).astype("float32")


def test_mix_up_matches_its_draws():
    inp = gc.placeholder(gc.float32, (None, 4, 5, 3))
    out = gc.function([inp], L.MixUp(alpha=0.4, seed=2)(inp, training=True))(IMAGES)
    batch = inp[:, 0, 0, 0]
    w, perm = gc.function([inp], [beta_like(batch, 0.4, 0.4, 2),
                                  random_permutation(batch, 2 + 10000)])(IMAGES)
    assert sorted(perm.tolist()) == list(range(len(IMAGES))) and np.any(perm != np.arange(37))
    w = w.astype(np.float64)[:, None, None, None]
    np.testing.assert_allclose(out, w * IMAGES + (1 - w) * IMAGES[perm], rtol=1e-5, atol=1e-3)
    assert np.all((w >= 0) & (w <= 1)) and np.mean((w < 0.1) | (w > 0.9)) > 0.3  # Beta(0.4)
    np.testing.assert_array_equal(_inference(L.MixUp(seed=2), IMAGES), IMAGES)


def test_mix_weights_and_permutations_are_distributed_as_keras_draws_them():
    inp = gc.placeholder(gc.float32, (None,))
    for a, b in ((0.2, 0.2), (2.0, 5.0)):
        w = gc.function([inp], beta_like(inp, a, b, seed=5))(np.zeros(20000, np.float32))
        assert np.all((w >= 0) & (w <= 1)) and np.isfinite(w).all()
        assert abs(w.mean() - a / (a + b)) < 0.01
        assert abs(w.var() - a * b / ((a + b) ** 2 * (a + b + 1))) < 0.01
    perm = gc.function([inp], random_permutation(inp, seed=3))
    firsts = [perm(np.zeros(n, np.float32)) for n in (1, 2, 9)]
    assert [sorted(p.tolist()) for p in firsts] == [list(range(n)) for n in (1, 2, 9)]
    # over many seeds every position takes every index about equally often
    counts = np.zeros((5, 5))
    for seed in range(300):
        p = gc.function([inp], random_permutation(inp, seed=seed))(np.zeros(5, np.float32))
        counts[np.arange(5), p] += 1
    assert counts.min() > 35 and counts.max() < 85


def test_seeding_and_arguments():
    a = _train_out(L.MixUp(seed=4), IMAGES)
    np.testing.assert_array_equal(a, _train_out(L.MixUp(seed=4), IMAGES))
    assert not np.allclose(a, _train_out(L.MixUp(seed=40), IMAGES))
    for bad in (0, -1.0, "x"):
        with pytest.raises(gc.GraphcError):
            L.MixUp(alpha=bad)
    assert L.MixUp(0.3).get_config()["alpha"] == 0.3


def test_cut_mix_pastes_a_partner_rectangle_by_its_draws():
    x = rng.uniform(0, 255, (33, 9, 11, 3)).astype("float32")
    inp = gc.placeholder(gc.float32, (None, None, None, 3))
    out = gc.function([inp], L.CutMix(factor=0.8, seed=7)(
        inp, training=True))(x)
    batch = inp[:, 0, 0, 0]
    alpha = random_uniform_like(inp[0, 0, 0, 0], 0.0, 0.8, seed=7) + 1e-6
    m, perm = gc.function([inp], [beta_like(batch, alpha, alpha, 7 + 20000),
                                  random_permutation(batch, 7 + 10000)])(x)
    ratio = np.sqrt(1.0 - m.astype(np.float64))[:, None, None, None]
    inside = True
    for axis, length, k in ((2, 11, 2), (1, 9, 3)):
        start = _draws(x, 7 + k) * (length - ratio * length)
        shape = [1, 1, 1, 1]
        shape[axis] = length
        where = np.arange(length).reshape(shape)
        inside = inside & (where >= start) & (where < start + ratio * length)
    inside = np.broadcast_to(inside, x.shape)
    np.testing.assert_array_equal(out, np.where(inside, x[perm], x))
    pasted = inside.mean(axis=(1, 2, 3))
    assert 0.1 < pasted.mean() < 0.9 and np.any(x[perm] != x)
    np.testing.assert_array_equal(_inference(L.CutMix(seed=7), x), x)
    with pytest.raises(gc.GraphcError):
        L.CutMix(factor=1.5)
    assert L.CutMix(0.5).get_config()["factor"] == [0.0, 0.5]


LABELS = np.eye(6, dtype="float32")[rng.integers(0, 6, len(IMAGES))]


def _mixed(layer, images, labels, training=True):
    x = gc.placeholder(gc.float32, (None,) + images.shape[1:])
    y = gc.placeholder(gc.as_dtype(str(labels.dtype)), (None,) + labels.shape[1:])
    out = layer({"images": x, "labels": y}, training=training)
    assert sorted(out) == ["images", "labels"]
    return gc.function([x, y], [out["images"], out["labels"]])(images, labels)


def test_mix_up_mixes_labels_by_the_images_weights():
    # images that are their labels, spread over the pixels: a mixed image is its mixed label
    images = np.broadcast_to(LABELS[:, None, None, :], (37, 3, 2, 6)).copy()
    out, labels = _mixed(L.MixUp(alpha=0.5, seed=3), images, LABELS)
    np.testing.assert_allclose(labels, out[:, 0, 0, :], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(labels.sum(axis=1), 1.0, rtol=1e-6)
    assert np.any((labels > 0.05) & (labels < 0.95))
    # the images are those MixUp gives without labels, for the same seed
    alone = gc.placeholder(gc.float32, (None, 3, 2, 6))
    np.testing.assert_array_equal(
        out, gc.function([alone], L.MixUp(alpha=0.5, seed=3)(alone, training=True))(images))
    same_images, same_labels = _mixed(L.MixUp(seed=3), images, LABELS, training=False)
    np.testing.assert_array_equal(same_labels, LABELS)
    np.testing.assert_array_equal(same_images, images)


def test_cut_mix_mixes_labels_by_the_rectangle_area():
    x = rng.uniform(0, 255, (29, 16, 13, 2)).astype("float32")
    labels = np.eye(4)[rng.integers(0, 4, 29)].astype("float32")
    # integer labels of a one-hot are mixed as floats
    out, mixed = _mixed(L.CutMix(factor=1.0, seed=11), x, labels.astype("int32"))
    inp = gc.placeholder(gc.float32, (None, 16, 13, 2))
    batch = inp[:, 0, 0, 0]
    alpha = random_uniform_like(inp[0, 0, 0, 0], 0.0, 1.0, seed=11) + 1e-6
    m, perm = gc.function([inp], [beta_like(batch, alpha, alpha, 11 + 20000),
                                  random_permutation(batch, 11 + 10000)])(x)
    # the weight is 1 - area share = m (Keras's (x1 - x0)(y1 - y0) / (w h), x1 - x0 = ratio w)
    m = m.astype(np.float64)[:, None]
    np.testing.assert_allclose(mixed, m * labels + (1 - m) * labels[perm], atol=2e-6)
    pasted = np.any(out != x, axis=(1, 2, 3)) & np.any(x[perm] != x, axis=(1, 2, 3))
    # where cells were pasted the label takes the partner's share, at most the cells' share
    share = (out == x[perm]).all(axis=3).mean(axis=(1, 2))
    assert np.all(np.abs((1 - m[:, 0]) - share)[pasted] < 0.2)
    assert mixed.dtype == np.float32


def test_mixing_refuses_other_keys_and_flat_labels():
    x = gc.placeholder(gc.float32, (None, 4, 4, 3))
    for layer in (L.MixUp(), L.CutMix()):
        with pytest.raises(ValueError, match="images"):
            layer({"images": x, "bounding_boxes": x})
        with pytest.raises(ValueError, match="one-hot"):
            layer({"images": x, "labels": gc.placeholder(gc.int32, (None,))})
        images_only = layer({"images": x}, training=True)
        assert list(images_only) == ["images"]
