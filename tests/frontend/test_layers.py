"""Layers against numpy: each layer's output on random inputs, odd sizes included."""
import numpy as np
import pytest

import graphc as gc
import graphc.frontend as gk

L = gk.layers
rng = np.random.default_rng(0)


def run(model, x):
    return model.predict(x, batch_size=max(1, len(x)))


def conv_ref(x, w, stride, padding, dilation):
    """Direct NHWC/HWIO convolution with TF's SAME padding."""
    n, h, wd, c = x.shape
    kh, kw, _, f = w.shape
    ekh, ekw = (kh - 1) * dilation + 1, (kw - 1) * dilation + 1
    if padding == "same":
        oh, ow = -(-h // stride), -(-wd // stride)
        ph = max((oh - 1) * stride + ekh - h, 0)
        pw = max((ow - 1) * stride + ekw - wd, 0)
        x = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    else:
        oh, ow = (h - ekh) // stride + 1, (wd - ekw) // stride + 1
    out = np.zeros((n, oh, ow, f))
    for i in range(oh):
        for j in range(ow):
            patch = x[:, i * stride:i * stride + ekh:dilation, j * stride:j * stride + ekw:dilation]
            out[:, i, j] = np.tensordot(patch, w, axes=([1, 2, 3], [0, 1, 2]))
    return out


@pytest.mark.parametrize("batch,features,units", [(1, 1, 1), (7, 5, 3), (33, 17, 1023)])
def test_dense_is_x_at_w_plus_b(batch, features, units):
    inputs = gk.Input((features,))
    dense = L.Dense(units, activation="tanh", bias_initializer="random_normal")
    model = gk.Model(inputs, dense(inputs))
    x = rng.normal(size=(batch, features)).astype("float32")
    w, b = dense.get_weights()
    assert w.shape == (features, units) and b.shape == (units,) and np.any(b != 0)
    np.testing.assert_allclose(run(model, x), np.tanh(x @ w + b), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("stride,padding,dilation", [(1, "same", 1), (2, "valid", 1),
                                                     (1, "valid", 2), (2, "same", 1)])
def test_conv2d_matches_direct_convolution(stride, padding, dilation):
    inputs = gk.Input((9, 7, 3))
    conv = L.Conv2D(5, (3, 2), strides=stride, padding=padding, dilation_rate=dilation,
                    activation="relu", bias_initializer="random_normal")
    model = gk.Model(inputs, conv(inputs))
    x = rng.normal(size=(2, 9, 7, 3)).astype("float32")
    w, b = conv.get_weights()
    expect = np.maximum(conv_ref(x, w, stride, padding, dilation) + b, 0)
    got = run(model, x)
    assert got.shape == expect.shape == (2,) + conv.output_shape[1:]
    np.testing.assert_allclose(got, expect, rtol=1e-4, atol=1e-5)


def test_pooling_flatten_reshape_and_global_average():
    inputs = gk.Input((6, 5, 2))
    mp = L.MaxPooling2D()(inputs)
    ap = L.AveragePooling2D(pool_size=3, strides=1, padding="valid")(inputs)
    gap = L.GlobalAveragePooling2D()(inputs)
    gap_kept = L.GlobalAveragePooling2D(keepdims=True)(inputs)
    flat = L.Flatten()(mp)
    reshaped = L.Reshape((-1, 4))(flat)
    model = gk.Model(inputs, [mp, ap, gap, flat, reshaped, gap_kept])
    x = rng.normal(size=(3, 6, 5, 2)).astype("float32")
    got_mp, got_ap, got_gap, got_flat, got_rs, got_kept = run(model, x)
    np.testing.assert_allclose(got_kept, x.mean(axis=(1, 2), keepdims=True), rtol=1e-5,
                               atol=1e-6)
    expect_mp = x[:, :6, :4].reshape(3, 3, 2, 2, 2, 2).max(axis=(2, 4))
    np.testing.assert_allclose(got_mp, expect_mp)
    expect_ap = np.stack([np.stack([x[:, i:i + 3, j:j + 3].mean(axis=(1, 2))
                                    for j in range(3)], 1) for i in range(4)], 1)
    np.testing.assert_allclose(got_ap, expect_ap, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_gap, x.mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_flat, expect_mp.reshape(3, -1))
    np.testing.assert_allclose(got_rs, expect_mp.reshape(3, 3, 4))


def test_activations_by_name():
    from math import erf
    inputs = gk.Input((11,))
    names = ["relu", "tanh", "sigmoid", "softmax", "gelu", "linear"]
    model = gk.Model(inputs, [L.Activation(n)(inputs) for n in names])
    x = rng.normal(size=(4, 11)).astype("float32") * 3
    outs = dict(zip(names, run(model, x)))
    e = np.exp(x - x.max(axis=1, keepdims=True))
    expect = {"relu": np.maximum(x, 0), "tanh": np.tanh(x), "sigmoid": 1 / (1 + np.exp(-x)),
              "softmax": e / e.sum(axis=1, keepdims=True),
              "gelu": x * 0.5 * (1 + np.vectorize(erf)(x / np.sqrt(2))), "linear": x}
    for name in names:
        np.testing.assert_allclose(outs[name], expect[name], rtol=1e-5, atol=1e-6,
                                   err_msg=name)


def test_dropout_is_identity_at_inference_and_drops_while_training():
    inputs = gk.Input((1000,))
    drop = L.Dropout(0.3)
    model = gk.Model(inputs, drop(inputs))
    x = np.ones((2, 1000), "float32")
    np.testing.assert_array_equal(run(model, x), x)
    train = gc.function([inputs], drop(inputs, training=True), session=model.session)
    out = train(x)
    kept = out != 0
    assert 0.6 < kept.mean() < 0.8
    np.testing.assert_allclose(out[kept], 1 / 0.7, rtol=1e-6)


def test_unknown_activation_and_bad_arguments_are_graphc_errors():
    with pytest.raises(gc.GraphcError, match="unknown activation 'relux'"):
        L.Dense(3, activation="relux")
    with pytest.raises(gc.GraphcError, match="Dropout rate"):
        L.Dropout(1.5)
    with pytest.raises(gc.GraphcError, match="positive integer"):
        L.Dense(0)
    with pytest.raises(gc.GraphcError, match="takes graphc tensors"):
        L.Dense(3)(np.ones((2, 2)))
