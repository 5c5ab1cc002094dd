"""Resizing and gk.ops.image.resize against numpy references written independently of the
code under test (bilinear as a normalized triangle-kernel weight matrix, as JAX computes it)."""
import numpy as np
import pytest

import graphc as gc
import graphc.frontend as gk
from graphc.errors import GraphcError

L = gk.layers
rng = np.random.default_rng(0)


def _predict(layer, x):
    inputs = gk.Input(x.shape[1:], dtype=str(x.dtype))
    return gk.Model(inputs, layer(inputs)).predict(x, verbose=0)


def _bilinear_matrix(n_in, n_out):
    """(n_out, n_in) weights: triangle kernel at half-pixel sample points, rows normalized."""
    sample = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
    w = np.maximum(0.0, 1.0 - np.abs(sample[:, None] - np.arange(n_in)[None, :]))
    return w / w.sum(axis=1, keepdims=True)


def _ref_resize(x, th, tw, interpolation):
    h, w = x.shape[1:3]
    if interpolation == "nearest":
        rows = np.floor((np.arange(th) + 0.5) * h / th).astype(int)
        cols = np.floor((np.arange(tw) + 0.5) * w / tw).astype(int)
        return x[:, rows][:, :, cols]
    x = np.einsum("oh,bhwc->bowc", _bilinear_matrix(h, th), x.astype(np.float64))
    return np.einsum("ow,bhwc->bhoc", _bilinear_matrix(w, tw), x)


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
@pytest.mark.parametrize("size", [(11, 3), (2, 9), (5, 7), (1, 1)])
def test_resizing_matches_numpy(interpolation, size):
    x = rng.normal(size=(2, 5, 7, 3)).astype("float32")
    y = _predict(L.Resizing(*size, interpolation=interpolation), x)
    assert y.shape == (2,) + size + (3,)
    np.testing.assert_allclose(y, _ref_resize(x, *size, interpolation), rtol=1e-5, atol=1e-6)


def test_resize_default_is_bilinear_and_casts_integers():
    x = rng.integers(0, 255, size=(1, 3, 4, 2)).astype("int32")
    layer = L.Resizing(6, 8)
    assert layer.get_config()["interpolation"] == "bilinear"
    y = _predict(layer, x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, _ref_resize(x, 6, 8, "bilinear"), rtol=1e-6)


def test_resize_keeps_inf_and_nan_where_they_fall():
    x = np.zeros((1, 2, 2, 1), np.float32)
    x[0, 0, 0, 0] = np.inf
    x[0, 1, 1, 0] = np.nan
    y = _predict(L.Resizing(4, 4, interpolation="nearest"), x)[0, ..., 0]
    assert np.isinf(y[:2, :2]).all() and np.isnan(y[2:, 2:]).all() and (y[:2, 2:] == 0).all()


def test_crop_and_pad_to_aspect_ratio():
    x = rng.normal(size=(2, 6, 9, 1)).astype("float32")
    y = _predict(L.Resizing(4, 4, crop_to_aspect_ratio=True), x)
    np.testing.assert_allclose(y, _ref_resize(x[:, :, 1:7], 4, 4, "bilinear"), rtol=1e-5,
                               atol=1e-6)
    y = _predict(L.Resizing(4, 4, pad_to_aspect_ratio=True, fill_value=2.0), x)
    padded = np.pad(x, [(0, 0), (1, 1), (0, 0), (0, 0)], constant_values=2.0)
    np.testing.assert_allclose(y, _ref_resize(padded, 4, 4, "bilinear"), rtol=1e-5, atol=1e-6)


def test_ops_image_resize_one_image_and_refusals():
    x = rng.normal(size=(5, 3, 2)).astype("float32")
    image = gc.placeholder(gc.float32, shape=(5, 3, 2))
    out = gk.ops.image.resize(image, (7, 4), interpolation="nearest")
    assert tuple(out.shape) == (7, 4, 2)
    np.testing.assert_array_equal(gc.function([image], out)(x),
                                  _ref_resize(x[None], 7, 4, "nearest")[0])
    with pytest.raises(GraphcError):
        gk.ops.image.resize(gk.Input((8, 8, 1)), (3, 3), interpolation="lanczos5")
    with pytest.raises(GraphcError):
        gk.ops.image.resize(gk.Input((8, 8, 1)), (3, 3), antialias=True)
    with pytest.raises(GraphcError):
        gk.ops.image.resize(gk.Input((8, 8, 1)), (3, 3), crop_to_aspect_ratio=True,
                            pad_to_aspect_ratio=True)
