"""SpectralNormalization against numpy power iteration: the training call's normalized kernel,
the stored estimate, the gradient through sigma (u and v held constant), inference on the raw
kernel; keras_breadth_parity.py compares its calls with Keras 3's."""
import numpy as np
import pytest

import graphc as gc
import graphc.frontend as gk

L = gk.layers
rng = np.random.default_rng(2)


def power_iteration(w, u, steps):
    """(u, v, sigma) after `steps` iterations from u, w the kernel as (-1, last axis)."""
    w = w.reshape(-1, w.shape[-1]).astype(np.float64)
    for _ in range(steps):
        v = u @ w.T
        v = v / np.linalg.norm(v)
        u = v @ w
        u = u / np.linalg.norm(u)
    return u, v, float((v @ w @ u.T)[0, 0])


class TrainingCall(gk.Model):
    def __init__(self, layer):
        super().__init__()
        self.inner = layer

    def call(self, x):
        return self.inner(x, training=True)


def test_training_call_divides_the_kernel_by_its_estimated_norm():
    x = rng.normal(size=(3, 4, 4, 2)).astype("float32")
    sn = L.SpectralNormalization(L.Conv2D(3, 2), power_iterations=2)
    model = TrainingCall(sn)
    model.predict(x, verbose=0)
    names = [w.name.split("/")[-1] for w in sn.weights]
    assert names == ["kernel", "vector_u", "bias"]
    k, u, b = sn.get_weights()
    assert u.shape == (1, 3) and np.abs(u).max() <= 0.04  # truncated normal, stddev 0.02
    b = rng.normal(size=3).astype("float32")
    sn.set_weights([k, u, b])
    _, _, sigma = power_iteration(k, u.astype(np.float64), 2)
    inp = gk.Input((4, 4, 2))
    plain = gk.Model(inp, L.Conv2D(3, 2)(inp))
    plain.layers[-1].set_weights([k / sigma, b])
    np.testing.assert_allclose(model.predict(x, verbose=0), plain.predict(x, verbose=0), 1e-5,
                               1e-5)
    plain.layers[-1].set_weights([k, b])  # at inference the kernel is used as it is
    inp = gk.Input((4, 4, 2))
    np.testing.assert_allclose(gk.Model(inp, sn(inp)).predict(x, verbose=0),
                               plain.predict(x, verbose=0), 1e-6, 1e-6)


def test_fit_updates_the_estimate_and_trains_the_kernel_through_sigma():
    x = rng.normal(size=(4, 5)).astype("float32")
    t = rng.normal(size=(4, 3)).astype("float32")
    sn = L.SpectralNormalization(L.Dense(3, use_bias=False))
    inp = gk.Input((5,))
    model = gk.Model(inp, sn(inp))
    model.compile(optimizer=gk.optimizers.SGD(learning_rate=0.1), loss="mse")
    w0, u0 = (a.astype(np.float64) for a in sn.get_weights())
    model.fit(x, t, batch_size=4, epochs=1, shuffle=False, verbose=0)
    w1, u1 = sn.get_weights()
    u_want, v, _ = power_iteration(w0, u0, 1)
    np.testing.assert_allclose(u1, u_want, 1e-5, 1e-6)

    def loss(w):  # u and v held constant, as the layer's gradient holds them
        sigma = float((v @ w @ u_want.T)[0, 0])
        return np.mean((x @ (w / sigma) - t) ** 2)
    grad = np.zeros_like(w0)
    for i in np.ndindex(w0.shape):
        step = np.zeros_like(w0)
        step[i] = 1e-6
        grad[i] = (loss(w0 + step) - loss(w0 - step)) / 2e-6
    np.testing.assert_allclose(w1, w0 - 0.1 * grad, 1e-4, 1e-5)


def test_embeddings_zero_kernels_and_refusals():
    ids = np.array([[0, 3, 6], [2, 2, 5]], np.int32)
    sn = L.SpectralNormalization(L.Embedding(7, 4))
    model = TrainingCall(sn)
    model.predict(ids, verbose=0)
    table, u = sn.get_weights()
    _, _, sigma = power_iteration(table, u.astype(np.float64), 1)
    np.testing.assert_allclose(model.predict(ids, verbose=0), table[ids] / sigma, 1e-5, 1e-6)
    sn.set_weights([np.zeros_like(table), u])  # nothing to normalize: no NaN, as Keras keeps it
    np.testing.assert_array_equal(model.predict(ids, verbose=0), np.zeros((2, 3, 4)))
    config = sn.get_config()
    assert config["power_iterations"] == 1
    assert type(L.deserialize(L.serialize(sn)).layer) is L.Embedding
    with pytest.raises(gc.GraphcError, match="power_iterations"):
        L.SpectralNormalization(L.Dense(2), power_iterations=0)
    with pytest.raises(gc.GraphcError, match="kernel"):
        inp = gk.Input((3,))
        L.SpectralNormalization(L.Activation("relu"))(inp)
