"""BatchNormalization (batch vs moving statistics), LayerNormalization, Embedding, l2."""
import numpy as np
import pytest

import graphc as gc
import graphc.frontend as gk

L = gk.layers
rng = np.random.default_rng(3)


def test_batch_norm_trains_on_batch_stats_and_updates_moving_ones():
    bn = L.BatchNormalization(momentum=0.9, epsilon=1e-3)
    model = gk.Sequential([L.Input((4, 3, 5)), bn])
    model.compile(optimizer=gk.optimizers.SGD(0.0), loss="mse")
    x = rng.normal(2.0, 3.0, size=(7, 4, 3, 5)).astype("float32")
    # inference before training: moving mean 0, variance 1
    np.testing.assert_allclose(model.predict(x), x / np.sqrt(1 + 1e-3), rtol=1e-5, atol=1e-5)
    x_in = model.inputs[0]
    train_out = gc.function([x_in], model(x_in, training=True), session=model.session)(x)
    mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    np.testing.assert_allclose(train_out, (x - mean) / np.sqrt(var + 1e-3), rtol=1e-4,
                               atol=1e-4)
    model.train_on_batch(x, np.zeros_like(x))
    gamma, beta, moving_mean, moving_var = bn.get_weights()
    np.testing.assert_allclose(moving_mean, 0.1 * mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(moving_var, 0.9 + 0.1 * var, rtol=1e-5)
    assert len(bn.trainable_weights) == 2 and len(bn.non_trainable_weights) == 2
    np.testing.assert_allclose(model.predict(x), (x - moving_mean) / np.sqrt(moving_var + 1e-3),
                               rtol=1e-4, atol=1e-4)


def test_batch_norm_frozen_runs_in_inference_mode():
    bn = L.BatchNormalization()
    model = gk.Sequential([L.Input((3,)), bn])
    bn.trainable = False
    model.compile(optimizer="sgd", loss="mse")
    x = rng.normal(size=(9, 3)).astype("float32")
    model.train_on_batch(x, np.zeros_like(x))
    np.testing.assert_array_equal(bn.get_weights()[2], np.zeros(3))


def test_layer_normalization_matches_numpy():
    ln = L.LayerNormalization(epsilon=1e-5)
    model = gk.Sequential([L.Input((7, 13)), ln])
    gamma = rng.normal(size=13).astype("float32")
    beta = rng.normal(size=13).astype("float32")
    ln.set_weights([gamma, beta])
    x = rng.normal(size=(2, 7, 13)).astype("float32")
    mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    np.testing.assert_allclose(model.predict(x), (x - mu) / np.sqrt(var + 1e-5) * gamma + beta,
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("axis,center,scale", [([1, 2], True, True), (1, False, True),
                                               ((-2, -1), True, False)])
def test_layer_normalization_over_given_axes(axis, center, scale):
    """Keras's axis: statistics over every listed axis, weights of their sizes broadcast."""
    shape = (5, 3, 7)
    ln = L.LayerNormalization(axis=axis, epsilon=1e-4, center=center, scale=scale)
    model = gk.Sequential([L.Input(shape), ln])
    axes = tuple(sorted(a % 4 for a in (axis if isinstance(axis, (list, tuple)) else [axis])))
    sizes = tuple((None,) + shape)
    weights = [rng.normal(size=[sizes[a] for a in axes]).astype("float32")
               for _ in range(center + scale)]
    ln.set_weights(weights)
    x = rng.normal(size=(3,) + shape).astype("float32")
    x[0, 0] = np.inf  # that example's statistics go NaN; the others' stay finite
    with np.errstate(invalid="ignore"):
        expect = (x - x.mean(axes, keepdims=True)) / np.sqrt(x.var(axes, keepdims=True) + 1e-4)
    broadcast = tuple(d if i in axes else 1 for i, d in enumerate(sizes))
    if scale:
        expect = expect * weights[0].reshape(broadcast)
    if center:
        expect = expect + weights[-1].reshape(broadcast)
    np.testing.assert_allclose(model.predict(x), expect, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("axis,match", [("last", "must be an int"), ([], "must be an int"),
                                        (3, "does not name"), (0, "does not name")])
def test_layer_normalization_refuses_a_bad_axis(axis, match):
    with pytest.raises(ValueError, match=match):
        gk.Sequential([L.Input((5, 3)), L.LayerNormalization(axis=axis)])


def test_embedding_looks_up_rows_and_trains():
    emb = L.Embedding(11, 4)
    ids = gk.Input((3,), dtype="int32")
    model = gk.Model(ids, L.Dense(1)(L.Flatten()(emb(ids))))
    x = rng.integers(0, 11, (6, 3)).astype("int32")
    table = emb.get_weights()[0]
    w, b = model.layers[-1].get_weights()
    np.testing.assert_allclose(model.predict(x), table[x].reshape(6, 12) @ w + b, rtol=1e-5,
                               atol=1e-6)
    model.compile(optimizer=gk.optimizers.SGD(0.1), loss="mse")
    model.fit(x, np.ones((6, 1), "float32"), epochs=1, verbose=0)
    changed = np.any(emb.get_weights()[0] != table, axis=1)
    np.testing.assert_array_equal(changed, np.isin(np.arange(11), x))


def test_l2_regularizer_adds_to_the_loss_and_the_gradient():
    dense = L.Dense(2, use_bias=False, kernel_regularizer=gk.regularizers.L2(0.1))
    model = gk.Sequential([L.Input((3,)), dense])
    model.compile(optimizer=gk.optimizers.SGD(0.5), loss="mse")
    x = rng.normal(size=(4, 3)).astype("float32")
    y = rng.normal(size=(4, 2)).astype("float32")
    w = dense.get_weights()[0]
    err = x @ w - y
    expect_loss = np.mean(err ** 2) + 0.1 * np.sum(w ** 2)
    logs = model.train_on_batch(x, y)
    assert logs["loss"] == pytest.approx(expect_loss, rel=1e-5)
    grad = x.T @ (2 * err / err.size) + 0.2 * w
    np.testing.assert_allclose(dense.get_weights()[0], w - 0.5 * grad, rtol=1e-5, atol=1e-6)


def test_initializers_are_reproducible_and_scaled():
    a = gk.initializers.get("he_normal")((300, 200))
    gk.utils.set_random_seed(7)
    b = gk.initializers.GlorotUniform()((300, 200))
    gk.utils.set_random_seed(7)
    c = gk.initializers.GlorotUniform()((300, 200))
    np.testing.assert_array_equal(b, c)
    assert np.abs(b).max() <= np.sqrt(6 / 500) and np.abs(b).max() > 0.9 * np.sqrt(6 / 500)
    assert a.std() == pytest.approx(np.sqrt(2 / 300), rel=0.05) and np.abs(a).max() <= \
        2 * np.sqrt(2 / 300) / 0.8796 + 1e-6
    np.testing.assert_array_equal(gk.initializers.HeNormal(seed=3)((5, 5)),
                                  gk.initializers.HeNormal(seed=3)((5, 5)))
    assert not gk.initializers.get("zeros")((3,)).any()
