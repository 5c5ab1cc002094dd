"""Equalization against a numpy transcription of Keras's rule: one histogram per channel over
the whole batch, the rounded cdf lookup, channels of one bin kept, value_range and bins;
run-time sizes; the identity at inference."""
import numpy as np
import pytest

import graphc as gc
import graphc.frontend as gk

from .test_keras_color_augmentations import _inference

L = gk.layers
rng = np.random.default_rng(47)


def _np_equalize(x, value_range=(0, 255), bins=256):
    lo, hi = value_range
    y = (x.astype(np.float64) - lo) * 255.0 / (hi - lo)
    out = np.empty_like(y)
    for c in range(x.shape[-1]):
        ch = y[..., c]
        idx = np.clip(np.trunc(ch * (bins - 1) / 255.0), 0, bins - 1).astype(int)
        hist = np.bincount(idx.ravel(), minlength=bins)
        if np.count_nonzero(hist) <= 1:
            out[..., c] = ch
            continue
        cdf = np.cumsum(hist)
        cdf_min = cdf[np.nonzero(cdf)[0][0]]
        lut = np.clip(np.round((cdf - cdf_min) * 255.0 / max(cdf[-1] - cdf_min, 1)), 0, 255)
        out[..., c] = lut[np.clip(np.trunc(ch / 255.0 * (bins - 1)), 0, bins - 1).astype(int)]
    return out * (hi - lo) / 255.0 + lo


def _train(layer, x):
    inp = gc.placeholder(gc.float32, (None, None, None, x.shape[-1]))
    return gc.function([inp], layer(inp, training=True))(x)


def test_equalization_matches_keras_rule():
    x = rng.uniform(0, 255, (3, 7, 9, 3)).astype("float32")
    x[..., 0] = x[..., 0] ** 2 / 255  # a skewed channel: equalising spreads it
    x[..., 2] = 42.0  # one bin: kept as it is
    x[0, 0, :3, 1] = [-5.0, 300.0, 0.0]  # outside the range: first and last bins
    out = _train(L.Equalization(), x)
    np.testing.assert_allclose(out, _np_equalize(x), atol=1e-3)
    assert np.all(out[..., 2] == 42.0) and out[..., 0].std() > x[..., 0].std()
    unit = x / 127.5 - 1
    np.testing.assert_allclose(_train(L.Equalization(value_range=(-1, 1), bins=16), unit),
                               _np_equalize(unit, (-1, 1), 16), atol=1e-5)
    np.testing.assert_array_equal(_inference(L.Equalization(), x), x)


def test_arguments_refused_and_config():
    for make in (lambda: L.Equalization(bins=0), lambda: L.Equalization(value_range=1),
                 lambda: L.Equalization(data_format="channels_first")):
        with pytest.raises(gc.GraphcError):
            make()
    assert L.Equalization(bins=64).get_config()["bins"] == 64
