"""Grouped Conv1D/Conv2D and Conv1DTranspose against numpy references (direct loops);
benchmarks/keras_breadth_parity.py checks the same layers against Keras 3."""
import numpy as np
import pytest

import graphc.frontend as gk
from graphc.errors import GraphcError

L = gk.layers
rng = np.random.default_rng(3)


def _predict(layer, x):
    inputs = gk.Input(x.shape[1:])
    return gk.Model(inputs, layer(inputs)).predict(x, verbose=0)


def _conv2d_ref(x, k, groups, stride=(1, 1), dilation=(1, 1)):
    """Valid grouped convolution by loops over output positions."""
    b, h, w, c = x.shape
    kh, kw, cin, f = k.shape
    fo = f // groups
    oh = (h - (kh - 1) * dilation[0] - 1) // stride[0] + 1
    ow = (w - (kw - 1) * dilation[1] - 1) // stride[1] + 1
    out = np.zeros((b, oh, ow, f))
    for i in range(oh):
        for j in range(ow):
            rows = i * stride[0] + np.arange(kh) * dilation[0]
            cols = j * stride[1] + np.arange(kw) * dilation[1]
            patch = x[:, rows][:, :, cols]  # (b, kh, kw, c)
            for g in range(groups):
                out[:, i, j, g * fo:(g + 1) * fo] = np.einsum(
                    "bhwc,hwcf->bf", patch[..., g * cin:(g + 1) * cin],
                    k[..., g * fo:(g + 1) * fo])
    return out


@pytest.mark.parametrize("groups,stride,dilation", [(3, (1, 1), (1, 1)), (2, (2, 1), (1, 2)),
                                                    (6, (1, 2), (1, 1))])
def test_grouped_conv2d_matches_numpy(groups, stride, dilation):
    x = rng.normal(size=(2, 7, 9, 6)).astype("float32")
    layer = L.Conv2D(12, (3, 2), strides=stride, dilation_rate=dilation, groups=groups)
    y = _predict(layer, x)
    k, b = layer.get_weights()
    assert k.shape == (3, 2, 6 // groups, 12) and layer.get_config()["groups"] == groups
    np.testing.assert_allclose(y, _conv2d_ref(x, k, groups, stride, dilation) + b, rtol=1e-4,
                               atol=1e-5)


def test_grouped_conv1d_causal_matches_numpy():
    x = rng.normal(size=(3, 8, 4)).astype("float32")
    layer = L.Conv1D(6, 3, padding="causal", dilation_rate=2, groups=2, use_bias=False)
    y = _predict(layer, x)
    (k,) = layer.get_weights()
    assert k.shape == (3, 2, 6)
    xp = np.pad(x, [(0, 0), (4, 0), (0, 0)])[:, None]
    ref = _conv2d_ref(xp, k[None], 2, dilation=(1, 2))[:, 0]
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5)


def test_groups_must_divide_channels_and_filters():
    with pytest.raises(GraphcError):
        L.Conv2D(6, 3, groups=4)(gk.Input((5, 5, 8)))
    with pytest.raises(GraphcError):
        L.Conv1D(4, 3, groups=3)(gk.Input((5, 6)))
    with pytest.raises(GraphcError):
        L.Conv1D(4, 3, groups=0)


@pytest.mark.parametrize("kernel,stride", [(3, 2), (2, 3), (1, 1), (4, 1)])
def test_conv1d_transpose_valid_matches_scatter_reference(kernel, stride):
    x = rng.normal(size=(2, 5, 3)).astype("float32")
    layer = L.Conv1DTranspose(4, kernel, strides=stride)
    y = _predict(layer, x)
    k, b = layer.get_weights()
    assert k.shape == (kernel, 4, 3)
    n = x.shape[1]
    ref = np.zeros((2, (n - 1) * stride + max(kernel, stride), 4))
    for t in range(n):
        for i in range(kernel):
            ref[:, t * stride + i] += x[:, t] @ k[i].T
    np.testing.assert_allclose(y, ref + b, rtol=1e-4, atol=1e-5)


def test_conv1d_transpose_same_length_and_refusals():
    x = rng.normal(size=(2, 5, 3)).astype("float32")
    assert _predict(L.Conv1DTranspose(2, 3, strides=2, padding="same"), x).shape == (2, 10, 2)
    with pytest.raises(GraphcError):  # Keras refuses strides > 1 with dilation_rate > 1
        L.Conv1DTranspose(2, 3, strides=2, dilation_rate=2)
    with pytest.raises(GraphcError):
        L.Conv1DTranspose(2, 3)(gk.Input((4, 4, 3)))
