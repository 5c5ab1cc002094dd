"""ops.image.perspective_transform and RandomPerspective against numpy: the homography from
numpy's linear solve (Keras's compute_homography_matrix) resampled by the per-pixel numpy loop of
test_keras_affine_transform, graphc's own per-corner draws, arguments, and the identity at
inference."""
import numpy as np
import pytest

import graphc as gc
import graphc.frontend as gk

from .test_keras_affine_transform import _np_affine
from .test_keras_color_augmentations import _draws, _inference, _train_out

L = gk.layers
rng = np.random.default_rng(61)
IMAGES = rng.uniform(0, 255, (6, 5, 7, 2)).astype("float32")
CORNERS = np.array([[0, 0], [6, 0], [0, 4], [6, 4]], np.float64)


def _np_homography(start, end):
    """The map taking each end point to its start point, by an 8x8 solve."""
    rows, target = [], []
    for (sx, sy), (ex, ey) in zip(start, end):
        rows += [[ex, ey, 1, 0, 0, 0, -sx * ex, -sx * ey],
                 [0, 0, 0, ex, ey, 1, -sy * ex, -sy * ey]]
        target += [sx, sy]
    return np.linalg.solve(np.array(rows), np.array(target))


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_perspective_transform_matches_numpy(interpolation):
    end = CORNERS + CORNERS * rng.uniform(-0.4, 0.4, (6, 4, 2))
    inp = gc.placeholder(gc.float32, (None, 5, 7, 2))
    op = gk.ops.image.perspective_transform(inp, np.broadcast_to(CORNERS, (6, 4, 2)), end,
                                            interpolation, fill_value=-3.0)
    want = _np_affine(IMAGES, np.stack([_np_homography(CORNERS, e) for e in end]),
                      interpolation, "constant", -3.0)
    np.testing.assert_allclose(gc.function([inp], op)(IMAGES), want, rtol=1e-4, atol=2e-2)
    # one (4, 2) pair for the whole batch; equal points leave the images as they are
    same = gk.ops.image.perspective_transform(inp, CORNERS, CORNERS)
    np.testing.assert_allclose(gc.function([inp], same)(IMAGES), IMAGES, atol=1e-3)
    with pytest.raises(gc.GraphcError):
        gk.ops.image.perspective_transform(inp, CORNERS[:3], CORNERS[:3])


def test_random_perspective_matches_its_draws():
    layer = L.RandomPerspective(factor=(0.3, 0.9), scale=0.6, fill_value=5.0, seed=7)
    out = _train_out(layer, IMAGES)
    chance, pick = (_draws(IMAGES, s, lo, hi)[:, 0, 0, 0] for s, lo, hi in ((7, 0.3, 0.9),
                                                                            (8, 0.0, 1.0)))
    moves = np.stack([_draws(IMAGES, 9 + i, -0.3, 0.3)[:, 0, 0, 0] for i in range(8)], -1)
    end = CORNERS + CORNERS * moves.reshape(6, 4, 2)
    warped = _np_affine(IMAGES, np.stack([_np_homography(CORNERS, e) for e in end]),
                        "bilinear", "constant", 5.0)
    applied = pick < chance
    assert 0 < applied.sum() < 6
    want = np.where(applied[:, None, None, None], warped, IMAGES)
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=2e-2)
    np.testing.assert_array_equal(_inference(layer, IMAGES), IMAGES)


def test_random_perspective_arguments():
    np.testing.assert_array_equal(_train_out(L.RandomPerspective(0.0), IMAGES), IMAGES)
    np.testing.assert_allclose(_train_out(L.RandomPerspective(scale=0.0), IMAGES), IMAGES,
                               atol=1e-3)
    config = L.RandomPerspective(0.4, seed=2).get_config()
    assert config["factor"] == [0.0, 0.4] and config["scale"] == 1.0
    a = _train_out(L.RandomPerspective(seed=3), IMAGES)
    np.testing.assert_array_equal(a, _train_out(L.RandomPerspective(seed=3), IMAGES))
    for make in (lambda: L.RandomPerspective(scale=1.5), lambda: L.RandomPerspective(1.5),
                 lambda: L.RandomPerspective(interpolation="bicubic")):
        with pytest.raises(gc.GraphcError):
            make()
