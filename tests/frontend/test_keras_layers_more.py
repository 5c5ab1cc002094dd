"""The noise, normalization, preprocessing, attention, depthwise and 3-D layers against
numpy, in training where they are random (benchmarks/keras_breadth_parity.py compares their
inference outputs with Keras 3)."""
import numpy as np
import pytest

import graphc as gc
import graphc.frontend as gk

L = gk.layers
rng = np.random.default_rng(0)


def _train_out(layer, x, steps=1):
    """The layer's outputs in training mode, `steps` runs of one compiled function."""
    inp = gc.placeholder(gc.float32, (None,) + x.shape[1:])
    out = layer(inp, training=True)
    f = gc.function([inp], out)
    return [f(x) for _ in range(steps)]


def test_gaussian_noise_and_dropout_statistics_in_training_only():
    x = np.ones((400, 50), "float32")
    a, b = _train_out(L.GaussianNoise(0.5, seed=3), x, steps=2)
    assert abs((a - 1).std() - 0.5) < 0.01 and abs((a - 1).mean()) < 0.01
    assert not np.array_equal(a, b)  # new noise every run
    g, = _train_out(L.GaussianDropout(0.2, seed=3), x)
    assert abs(g.mean() - 1) < 0.01 and abs(g.std() - np.sqrt(0.2 / 0.8)) < 0.01
    inputs = gk.Input((50,))
    model = gk.Model(inputs, L.GaussianNoise(1.0)(inputs))
    np.testing.assert_array_equal(model.predict(x, verbose=0), x)


def test_alpha_dropout_keeps_mean_and_variance():
    x = rng.normal(size=(2000, 40)).astype("float32")
    y, = _train_out(L.AlphaDropout(0.3, seed=5), x)
    assert abs(y.mean() - x.mean()) < 0.03 and abs(y.var() - x.var()) < 0.05
    alpha_p = -1.6732632423543772 * 1.0507009873554805
    a = ((1 - 0.3) * (1 + 0.3 * alpha_p ** 2)) ** -0.5
    dropped = np.isclose(y, a * alpha_p - a * alpha_p * 0.3)
    assert abs(dropped.mean() - 0.3) < 0.02


@pytest.mark.parametrize("layer,shape,fmt", [
    (lambda: L.SpatialDropout1D(0.5, seed=1), (50, 6, 8), "channels_last"),
    (lambda: L.SpatialDropout2D(0.5, seed=1), (50, 4, 5, 8), "channels_last"),
    (lambda: L.SpatialDropout2D(0.5, data_format="channels_first", seed=1), (50, 8, 4, 5),
     "channels_first"),
    (lambda: L.SpatialDropout3D(0.5, seed=1), (20, 2, 3, 4, 8), "channels_last"),
])
def test_spatial_dropout_drops_whole_channels(layer, shape, fmt):
    x = np.ones(shape, "float32")
    y, = _train_out(layer(), x)
    channel = 1 if fmt == "channels_first" else len(shape) - 1
    moved = np.moveaxis(y, channel, 1).reshape(shape[0], shape[channel], -1)
    assert np.all(moved == moved[..., :1])  # one draw per (example, channel)
    assert set(np.unique(y)) <= {0.0, 2.0} and 0.3 < (y == 0).mean() < 0.7


def test_augmentations_are_random_in_training_and_identity_at_inference():
    images = rng.uniform(0, 255, (64, 5, 6, 3)).astype("float32")
    flipped, = _train_out(L.RandomFlip("horizontal", seed=2), images)
    same = np.all(flipped == images, axis=(1, 2, 3))
    mirrored = np.all(flipped == images[:, :, ::-1], axis=(1, 2, 3))
    assert np.all(same | mirrored) and 10 < mirrored.sum() < 54
    again, = _train_out(L.RandomFlip("horizontal", seed=2), images)
    np.testing.assert_array_equal(flipped, again)  # seeded
    bright, = _train_out(L.RandomBrightness(0.2, seed=4), images)
    delta = (bright - images)[np.all((bright > 0) & (bright < 255), axis=(1, 2, 3))]
    assert np.all(np.abs(delta) <= 0.2 * 255 + 1e-3)
    contrast, = _train_out(L.RandomContrast(0.5, seed=4), images)
    mean = images.mean(axis=(1, 2), keepdims=True)
    factor = (contrast - mean) / (images - mean)
    inside = (contrast > 0) & (contrast < 255)
    per_image = [np.ptp(f[m]) for f, m in zip(factor, inside) if m.any()]
    assert max(per_image) < 1e-3  # one factor per image
    inputs = gk.Input((5, 6, 3))
    out = L.RandomContrast(0.5)(L.RandomFlip()(inputs))
    np.testing.assert_array_equal(gk.Model(inputs, out).predict(images, verbose=0), images)


def test_group_and_rms_normalization_match_numpy():
    x = rng.normal(size=(3, 4, 6)).astype("float32")
    inputs = gk.Input((4, 6))
    layer = L.GroupNormalization(groups=2, epsilon=1e-3)
    out = gk.Model(inputs, layer(inputs)).predict(x, verbose=0)
    g = x.reshape(3, 4, 2, 3)
    ref = (g - g.mean(axis=(1, 3), keepdims=True)) / np.sqrt(g.var(axis=(1, 3), keepdims=True)
                                                              + 1e-3)
    np.testing.assert_allclose(out, ref.reshape(3, 4, 6), rtol=1e-4, atol=1e-5)
    with pytest.raises(gc.GraphcError, match="groups"):
        L.GroupNormalization(groups=4)(gk.Input((6,)))
    rms = L.RMSNormalization(epsilon=1e-6)
    out = gk.Model(inputs, rms(inputs)).predict(x, verbose=0)
    np.testing.assert_allclose(out, x / np.sqrt((x ** 2).mean(-1, keepdims=True) + 1e-6),
                               rtol=1e-5)


def test_normalization_adapt_before_and_after_build():
    data = rng.normal(3.0, 2.0, (200, 4)).astype("float32")
    for adapt_first in (True, False):
        layer = L.Normalization()
        if adapt_first:
            layer.adapt(data)
        inputs = gk.Input((4,))
        model = gk.Model(inputs, layer(inputs))
        if not adapt_first:
            layer.adapt(data)
        out = model.predict(data, verbose=0)
        np.testing.assert_allclose(out.mean(0), 0, atol=1e-5)
        np.testing.assert_allclose(out.std(0), 1, rtol=1e-4)
        mean, var, count = layer.get_weights()
        assert count == 200 and mean.shape == (4,)


def test_lookups_and_encodings_match_numpy():
    tokens = np.array([[4, 2, 8], [0, 9, 4]], "int32")
    inputs = gk.Input((3,), dtype="int32")
    lookup = L.IntegerLookup(vocabulary=[4, 2, 9], mask_token=0)
    idx = gk.Model(inputs, lookup(inputs)).predict(tokens, verbose=0)
    np.testing.assert_array_equal(idx, [[2, 3, 1], [0, 4, 2]])  # 0 mask, 1 OOV
    assert lookup.get_vocabulary() == [0, -1, 4, 2, 9]
    hot = gk.Model(inputs, L.CategoryEncoding(10, output_mode="count")(inputs)).predict(
        tokens, verbose=0)
    np.testing.assert_array_equal(hot, [np.bincount(t, minlength=10) for t in tokens])
    values = np.array([[-2.0, 0.0, 0.49, 0.5, 7.0]], "float32")
    x = gk.Input((5,))
    bins = gk.Model(x, L.Discretization([0.0, 0.5])(x)).predict(values, verbose=0)
    np.testing.assert_array_equal(bins, np.digitize(values, [0.0, 0.5]))


def _discretize(layer, values):
    x = gk.Input(values.shape[1:])
    return gk.Model(x, layer(x)).predict(values, verbose=0)


def test_discretization_adapt_small_data_interpolates_the_sorted_values():
    # fewer values than 1 / epsilon: the summary is every value at weight 1, and boundary k
    # is the sorted values interpolated at cumulative fraction k / num_bins
    data = rng.normal(size=(9, 5)).astype("float32")
    layer = L.Discretization(num_bins=4, epsilon=0.01)
    layer.adapt(data)
    ordered = np.sort(data.reshape(-1))
    expected = np.interp(np.arange(1, 4) / 4, np.arange(1, 46) / 45, ordered)
    np.testing.assert_allclose(layer.bin_boundaries, expected, rtol=1e-6, atol=1e-6)  # f32 sums
    values = np.concatenate([data[:3], [[-np.inf, np.inf, expected[0], -0.0, 1e30]]])
    values = values.astype("float32")
    np.testing.assert_array_equal(_discretize(layer, values),
                                  np.digitize(values, np.float32(layer.bin_boundaries)))


def test_discretization_adapt_large_data_gives_near_equal_bins():
    data = rng.exponential(size=(3001,)).astype("float32")
    layer = L.Discretization(num_bins=7, epsilon=0.005)
    layer.adapt(data)
    assert len(layer.bin_boundaries) == 6
    quantiles = np.quantile(data, np.arange(1, 7) / 7)
    # within epsilon (plus one value) of the exact quantiles' ranks
    ranks = np.searchsorted(np.sort(data), layer.bin_boundaries) / data.size
    np.testing.assert_allclose(ranks, np.arange(1, 7) / 7, atol=0.005 + 1 / data.size)
    np.testing.assert_allclose(layer.bin_boundaries, quantiles, rtol=0.05)
    counts = _discretize(layer, data[None]).reshape(-1)
    assert np.all(np.abs(np.bincount(counts, minlength=7) - data.size / 7) < 0.02 * data.size)


def test_discretization_adapt_batches_steps_and_config():
    batches = [rng.uniform(size=(n,)).astype("float32") for n in (50, 7, 130)]
    layer = L.Discretization(num_bins=3, epsilon=0.1, output_mode="one_hot")
    layer.adapt(iter(batches), steps=2)
    first_two = L.Discretization(num_bins=3, epsilon=0.1)
    first_two.adapt(batches[:2])
    assert layer.bin_boundaries == first_two.bin_boundaries
    stepped = L.Discretization(num_bins=3, epsilon=0.1)  # adapt's steps, one by one
    for batch in batches[:2]:
        stepped.update_state(batch)
    stepped.finalize_state()
    assert stepped.bin_boundaries == layer.bin_boundaries
    stepped.reset_state()
    stepped.update_state(batches[2])
    stepped.finalize_state()
    assert stepped.bin_boundaries != layer.bin_boundaries
    assert len(layer.bin_boundaries) == 2
    assert all(0 < b < 1 for b in layer.bin_boundaries)
    again = L.deserialize(L.serialize(layer))
    assert again.bin_boundaries == layer.bin_boundaries and again.num_bins == 3
    values = rng.uniform(size=(6, 1)).astype("float32")
    np.testing.assert_array_equal(
        _discretize(again, values),
        np.eye(3)[np.digitize(values[:, 0], np.float32(layer.bin_boundaries))])
    empty = L.Discretization(num_bins=3)
    empty.adapt(np.zeros((0,), "float32"))
    assert empty.bin_boundaries == []


def test_discretization_refuses_what_keras_refuses():
    for kwargs in ({}, {"num_bins": 3, "bin_boundaries": [0.0]}, {"num_bins": -1}):
        with pytest.raises(ValueError, match="Discretization"):
            L.Discretization(**kwargs)
    with pytest.raises(gc.GraphcError, match="num_bins"):
        L.Discretization(bin_boundaries=[0.0]).adapt(np.ones(3))
    with pytest.raises(gc.GraphcError, match="adapt"):
        L.Discretization(num_bins=2)(gk.Input((3,)))
    layer = L.Discretization(num_bins=2)
    layer.adapt(np.arange(5.0))
    layer(gk.Input((3,)))
    with pytest.raises(gc.GraphcError, match="adapt it before"):
        layer.adapt(np.arange(5.0))


def test_activity_regularization_adds_its_penalty_to_the_loss():
    x = rng.normal(size=(8, 3)).astype("float32")
    y = np.zeros((8, 2), "float32")
    inputs = gk.Input((3,))
    dense = L.Dense(2, use_bias=False)
    model = gk.Model(inputs, L.ActivityRegularization(l1=0.1, l2=0.2)(dense(inputs)))
    model.compile(optimizer=gk.optimizers.SGD(0.0), loss="mse")
    loss = model.fit(x, y, batch_size=8, epochs=1, verbose=0).history["loss"][0]
    h = x @ dense.get_weights()[0]
    ref = (h ** 2).mean() + (0.1 * np.abs(h).sum() + 0.2 * (h ** 2).sum()) / 8
    np.testing.assert_allclose(loss, ref, rtol=1e-5)


def test_depthwise_conv_matches_a_loop():
    x = rng.normal(size=(2, 7, 6, 3)).astype("float32")
    inputs = gk.Input((7, 6, 3))
    layer = L.DepthwiseConv2D((3, 2), strides=(2, 1), depth_multiplier=2, dilation_rate=1)
    out = gk.Model(inputs, layer(inputs)).predict(x, verbose=0)
    k, b = layer.get_weights()
    ref = np.zeros((2, 3, 5, 6), np.float32)
    for i in range(3):
        for j in range(5):
            patch = x[:, 2 * i:2 * i + 3, j:j + 2]  # (b, 3, 2, c)
            ref[:, i, j] = np.einsum("bhwc,hwcm->bcm", patch, k).reshape(2, 6)
    np.testing.assert_allclose(out, ref + b, rtol=1e-5, atol=1e-5)


def test_attention_masks_and_causality():
    q = rng.normal(size=(2, 4, 3)).astype("float32")
    v = rng.normal(size=(2, 5, 3)).astype("float32")
    qi, vi = gk.Input((4, 3)), gk.Input((5, 3))
    mask = gc.placeholder(gc.bool_, (None, 5))
    out = L.Attention()([qi, vi], mask=[None, mask])
    got = gc.Session().run(out, {qi: q, vi: v, mask: np.array([[1, 1, 0, 1, 0]] * 2, bool)})
    s = q @ v.transpose(0, 2, 1)
    s[:, :, [2, 4]] -= 1e9
    w = np.exp(s - s.max(-1, keepdims=True))
    np.testing.assert_allclose(got, (w / w.sum(-1, keepdims=True)) @ v, rtol=1e-5, atol=1e-6)


def test_input_layer_input_spec_and_saving_of_new_layers(tmp_path):
    model = gk.Sequential([L.InputLayer(shape=(6, 6, 2)), L.SeparableConv2D(3, 3),
                           L.GroupNormalization(groups=3), L.GaussianNoise(0.1),
                           L.UpSampling2D(), L.GlobalMaxPooling2D(),
                           L.EinsumDense("ab,bc->ac", output_shape=4, bias_axes="c")])
    x = rng.normal(size=(3, 6, 6, 2)).astype("float32")
    model.compile(optimizer="sgd", loss="mse")
    model.save(tmp_path / "m.gck")
    loaded = gk.models.load_model(tmp_path / "m.gck")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)

    class Needs3D(L.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.input_spec = L.InputSpec(ndim=3, axes={-1: 4})

        def call(self, inputs):
            return inputs

    Needs3D()(gk.Input((2, 4)))
    with pytest.raises(gc.ShapeError, match="size 4 on axis -1"):
        Needs3D()(gk.Input((2, 5)))
    with pytest.raises(gc.ShapeError, match="rank 3"):
        Needs3D()(gk.Input((4,)))
