"""Keras's 3-D convolution and pooling layers, the transposed convolutions' output_padding and
dilation_rate, and keras.ops' 3-D conv and pools, against the per-cell numpy loops of
tests/ops/test_volumetric.py (benchmarks/keras_breadth_parity.py and keras_ops_parity.py check
the same against Keras 3 itself)."""
import numpy as np
import pytest

import graphc as gc
import graphc.frontend as gk
from tests.ops.test_volumetric import naive_conv, naive_conv_transpose, naive_pool

L = gk.layers
rng = np.random.default_rng(5)


def _predict(layer, x):
    inp = gk.Input(x.shape[1:])
    model = gk.Model(inp, layer(inp))
    return model.predict(x, verbose=0)


def test_conv3d_layer_weights_and_values():
    x = rng.normal(size=(2, 5, 4, 6, 3)).astype("float32")
    layer = L.Conv3D(6, (2, 3, 2), strides=(2, 1, 1), padding="same", groups=3,
                     activation="relu")
    y = _predict(layer, x)
    k, b = layer.get_weights()
    assert k.shape == (2, 3, 2, 1, 6) and b.shape == (6,)
    layer.set_weights([k, rng.normal(size=6).astype("float32")])
    y = _predict(layer, x)
    b = layer.get_weights()[1]
    want = np.concatenate([naive_conv(x[..., g:g + 1].astype(np.float64), k[..., 2 * g:2 * g + 2],
                                      (2, 1, 1), "SAME", (1, 1, 1)) for g in range(3)], -1)
    np.testing.assert_allclose(y, np.maximum(want + b, 0), rtol=1e-5, atol=1e-5)
    assert L.Convolution3D is L.Conv3D
    config = layer.get_config()
    assert config["kernel_size"] == [2, 3, 2] and config["groups"] == 3
    assert L.Conv3D.from_config(config).get_config()["strides"] == [2, 1, 1]


@pytest.mark.parametrize("kwargs", [dict(strides=(2, 1, 3)),
                                    dict(strides=2, padding="same", output_padding=(1, 0, 1)),
                                    dict(padding="same", dilation_rate=(2, 1, 2))])
def test_conv3d_transpose_layer(kwargs):
    x = rng.normal(size=(2, 3, 4, 2, 3)).astype("float32")
    layer = L.Conv3DTranspose(4, (2, 3, 2), **kwargs)
    y = _predict(layer, x)
    k, b = layer.get_weights()
    assert k.shape == (2, 3, 2, 4, 3)
    triple = lambda v: (v,) * 3 if isinstance(v, int) or v is None else v  # noqa: E731
    want = naive_conv_transpose(x.astype(np.float64), k, triple(kwargs.get("strides", 1)),
                                kwargs.get("padding", "valid").upper(),
                                triple(kwargs.get("dilation_rate", 1)),
                                triple(kwargs.get("output_padding")))
    np.testing.assert_allclose(y, want + b, rtol=1e-5, atol=1e-5)


def test_transposed_1d_and_2d_output_padding_and_dilation():
    x = rng.normal(size=(2, 4, 3, 2)).astype("float32")
    layer = L.Conv2DTranspose(3, 3, strides=(3, 2), padding="same", output_padding=(2, 1))
    y = _predict(layer, x)
    k, b = layer.get_weights()
    np.testing.assert_allclose(y, naive_conv_transpose(x, k, (3, 2), "SAME", (1, 1), (2, 1))
                               + b, rtol=1e-5, atol=1e-5)
    assert layer.get_config()["output_padding"] == [2, 1]
    seq = rng.normal(size=(2, 5, 3)).astype("float32")
    layer = L.Conv1DTranspose(2, 3, dilation_rate=2)
    y = _predict(layer, seq)
    k, b = layer.get_weights()
    want = naive_conv_transpose(seq[:, None], k[None], (1, 1), "VALID", (1, 2), (None, None))
    np.testing.assert_allclose(y, want[:, 0] + b, rtol=1e-5, atol=1e-5)
    assert y.shape == (2, 9, 2)


def test_transposed_convolution_arguments_refused_as_keras_does():
    with pytest.raises(gc.GraphcError, match="output_padding must be smaller"):
        L.Conv2DTranspose(2, 3, strides=2, output_padding=2)
    with pytest.raises(gc.GraphcError, match="dilation_rate > 1"):
        L.Conv3DTranspose(2, 3, strides=2, dilation_rate=2)
    with pytest.raises(gc.GraphcError, match="non-negative"):
        L.Conv1DTranspose(2, 3, strides=2, output_padding=-1)
    with pytest.raises(gc.GraphcError, match="three"):
        L.Conv3D(2, (3, 3))


@pytest.mark.parametrize("cls,reduce", [(L.MaxPooling3D, np.max), (L.AveragePooling3D, np.mean)])
def test_pooling3d_layers(cls, reduce):
    x = rng.normal(size=(2, 5, 4, 7, 2)).astype("float32")
    y = _predict(cls(), x)
    np.testing.assert_allclose(y, naive_pool(x, (2, 2, 2), (2, 2, 2), "VALID", reduce), 1e-6,
                               1e-6)
    y = _predict(cls((3, 2, 3), strides=(1, 2, 2), padding="same"), x)
    np.testing.assert_allclose(y, naive_pool(x, (3, 2, 3), (1, 2, 2), "SAME", reduce), 1e-6,
                               1e-6)
    assert cls((3, 2, 3)).get_config()["pool_size"] == [3, 2, 3]


def test_ops_conv_and_pools_take_3d_inputs():
    vol = rng.normal(size=(2, 4, 5, 3, 2)).astype("float32")
    k = rng.normal(size=(2, 3, 2, 2, 3)).astype("float32")
    with gc.Graph().as_default():
        got = gc.Session().run([gk.ops.conv(vol, k, (2, 1, 1), "same"),
                                gk.ops.max_pool(vol, (3, 2, 2), (1, 2, 1), "same"),
                                gk.ops.average_pool(vol, 2),
                                gk.ops.conv_transpose(vol, k.transpose(0, 1, 2, 4, 3), 2,
                                                      "same", output_padding=1)])
    np.testing.assert_allclose(got[0], naive_conv(vol, k, (2, 1, 1), "SAME", (1, 1, 1)), 1e-5,
                               1e-5)
    np.testing.assert_allclose(got[1], naive_pool(vol, (3, 2, 2), (1, 2, 1), "SAME", np.max))
    np.testing.assert_allclose(got[2], naive_pool(vol, (2,) * 3, (2,) * 3, "VALID", np.mean),
                               1e-6, 1e-6)
    np.testing.assert_allclose(got[3], naive_conv_transpose(
        vol, k.transpose(0, 1, 2, 4, 3), (2,) * 3, "SAME", (1,) * 3, (1,) * 3), 1e-5, 1e-5)
