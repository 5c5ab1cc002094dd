"""compile/fit/evaluate/predict against hand-computed numpy steps."""
import re

import numpy as np
import pytest

import graphc as gc
import graphc.frontend as gk

L = gk.layers
rng = np.random.default_rng(1)


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def linear_classifier(features, classes, optimizer):
    model = gk.Sequential([L.Input((features,)), L.Dense(classes, activation="softmax")])
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def test_one_fit_step_is_a_hand_computed_sgd_step():
    x = rng.normal(size=(7, 5)).astype("float32")
    y = rng.integers(0, 3, 7)
    model = linear_classifier(5, 3, gk.optimizers.SGD(0.5))
    w, b = model.get_weights()
    p = softmax(x @ w + b)
    loss = -np.log(p[np.arange(7), y]).mean()
    g = (p - np.eye(3)[y]) / 7
    history = model.fit(x, y, batch_size=7, epochs=1, shuffle=False, verbose=0)
    w2, b2 = model.get_weights()
    np.testing.assert_allclose(w2, w - 0.5 * x.T @ g, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b2, b - 0.5 * g.sum(0), rtol=1e-5, atol=1e-6)
    assert history.history["loss"][0] == pytest.approx(loss, rel=1e-5)
    acc = (p.argmax(1) == y).mean()
    assert history.history["accuracy"][0] == pytest.approx(acc)


def test_adam_steps_match_numpy():
    x = rng.normal(size=(10, 4)).astype("float32")
    y = rng.integers(0, 2, 10)
    model = linear_classifier(4, 2, gk.optimizers.Adam(0.01))
    w, b = [a.astype(np.float64) for a in model.get_weights()]
    m = [np.zeros_like(w), np.zeros_like(b)]
    v = [np.zeros_like(w), np.zeros_like(b)]
    for t in range(1, 4):
        p = softmax(x @ w + b)
        g = (p - np.eye(2)[y]) / 10
        grads = [x.T @ g, g.sum(0)]
        params = [w, b]
        for i in range(2):
            m[i] = 0.9 * m[i] + 0.1 * grads[i]
            v[i] = 0.999 * v[i] + 0.001 * grads[i] ** 2
            lr = 0.01 * np.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
            params[i] = params[i] - lr * m[i] / (np.sqrt(v[i]) + 1e-7)
        w, b = params
        model.train_on_batch(x, y)
    got_w, got_b = model.get_weights()
    np.testing.assert_allclose(got_w, w, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got_b, b, rtol=1e-4, atol=1e-6)
    assert int(model.session.get_value(model.optimizer.iterations)) == 3


def test_a_last_batch_of_another_size_does_not_recompile():
    x = rng.normal(size=(23, 3)).astype("float32")
    y = rng.integers(0, 4, 23)
    model = linear_classifier(3, 4, "sgd")
    model.fit(x, y, batch_size=5, epochs=2, verbose=0)
    train_steps = [k for k in model._steps if k[0] == "train"]
    assert len(train_steps) == 1
    fn = model.train_function
    sess = model.session
    calls = []

    def counted(run):
        def call(exe, arrays):
            out = run(exe, arrays)
            if out is not None:  # execute_again gives None where it did not run
                calls.append(exe)
            return out
        return call
    sess.execute, sess.execute_again = counted(sess.execute), counted(sess.execute_again)
    model.fit(x[:11], y[:11], batch_size=4, epochs=1, verbose=0)
    assert model.train_function is fn
    assert len(calls) == 3 and len(set(map(id, calls))) == 1  # one call per batch, one executable


def test_validation_split_takes_the_last_fraction_before_shuffling():
    x = np.arange(20, dtype="float32").reshape(20, 1)
    y = (np.arange(20) % 2).astype("int32")
    model = gk.Sequential([L.Input((1,)), L.Dense(2, activation="softmax")])
    model.compile(optimizer=gk.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    seen = []

    class Spy(gk.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(logs)

    history = model.fit(x, y, batch_size=4, epochs=1, validation_split=0.25, verbose=0,
                        callbacks=[Spy()])
    # SGD(0) leaves the weights alone, so val metrics must equal evaluate on the last 5 rows
    expect = model.evaluate(x[15:], y[15:], return_dict=True, verbose=0)
    assert history.history["val_loss"][0] == pytest.approx(expect["loss"], rel=1e-6)
    assert history.history["val_accuracy"][0] == pytest.approx(expect["accuracy"])
    train_part = model.evaluate(x[:15], y[:15], return_dict=True, verbose=0)
    assert seen[0]["loss"] == pytest.approx(train_part["loss"], rel=1e-5)


def test_evaluate_and_predict_agree_with_numpy():
    x = rng.normal(size=(37, 6)).astype("float32")
    y = rng.integers(0, 5, 37)
    model = linear_classifier(6, 5, "adam")
    w, b = model.get_weights()
    p = softmax(x @ w + b)
    np.testing.assert_allclose(model.predict(x, batch_size=8), p, rtol=1e-5, atol=1e-6)
    loss, acc = model.evaluate(x, y, batch_size=8, verbose=0)
    assert loss == pytest.approx(-np.log(p[np.arange(37), y]).mean(), rel=1e-5)
    assert acc == pytest.approx((p.argmax(1) == y).mean())
    np.testing.assert_allclose(model.predict_on_batch(x[:3]), p[:3], rtol=1e-5, atol=1e-6)


def test_the_digits_cnn_learns(capsys):
    gk.utils.set_random_seed(0)  # the same start whatever ran before
    (x, y), (xt, yt) = gk.datasets.load_digits()
    assert x.shape == (1438, 8, 8) and xt.shape == (359, 8, 8)
    assert x.min() == 0 and x.max() == 1 and set(np.unique(y)) == set(range(10))
    model = gk.Sequential([L.Input((8, 8, 1)), L.Conv2D(8, 3, padding="same",
                                                        activation="relu"),
                           L.MaxPooling2D(), L.Flatten(), L.Dense(10, activation="softmax")])
    model.compile(optimizer=gk.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x[..., None], y, epochs=3, verbose=2)
    out = capsys.readouterr().out
    assert out.count("Epoch ") == 3 and "45/45" in out
    assert re.search(r"\d+(us|ms|s)/step", out)  # the unit follows the speed
    assert "\r" not in out  # not a terminal: one line per epoch
    _, acc = model.evaluate(xt[..., None], yt, verbose=0)
    assert acc > 0.85


def test_compile_errors():
    model = gk.Sequential([L.Input((3,)), L.Dense(2)])
    with pytest.raises(gc.GraphcError, match="must be compiled"):
        model.fit(np.ones((4, 3)), np.zeros(4), verbose=0)
    with pytest.raises(gc.GraphcError, match="unknown optimizer 'adamx'"):
        model.compile(optimizer="adamx", loss="mse")
    with pytest.raises(gc.GraphcError, match="unknown loss"):
        model.compile(optimizer="sgd", loss="msq")
        model.fit(np.ones((4, 3)), np.zeros((4, 2)), verbose=0)


def test_compile_passes_the_device_through():
    model = linear_classifier(3, 2, "sgd")
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", device="reference")
    model.fit(np.ones((4, 3), "float32"), np.zeros(4, "int32"), verbose=0)
    assert model.session.device == "reference"
    assert model.train_function.session is model.session
    with pytest.raises(gc.DeviceError, match="unknown device 'tpu'"):
        model.compile(optimizer="sgd", loss="mse", device="tpu")


def test_layer_calls_are_recorded_per_graph():
    from graphc.frontend.layers.base import record_of
    x = gk.Input((2,))
    dense = L.Dense(1)
    out = dense(x)
    assert record_of(out).layer is dense
    assert "frontend_layer_calls" not in vars(gc.Graph())
