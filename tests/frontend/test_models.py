"""Functional models (several inputs and outputs, shared layers), subclassed models,
Sequential without an Input, and summary()."""
import numpy as np
import pytest

import graphc as gc
import graphc.frontend as gk

L = gk.layers
rng = np.random.default_rng(2)


def test_functional_two_inputs_two_outputs_and_a_shared_layer():
    a, b = gk.Input((4,), name="a"), gk.Input((4,), name="b")
    shared = L.Dense(3, activation="relu", name="shared")
    ha, hb = shared(a), shared(b)
    merged = L.Concatenate(name="cat")([ha, hb])
    total = L.Add(name="add")([ha, hb])
    out1 = L.Dense(2, name="head1")(merged)
    model = gk.Model([a, b], [out1, total])
    assert [layer.name for layer in model.layers] == ["shared", "cat", "add", "head1"]
    assert len(model.weights) == 4  # the shared layer's weights count once
    xa, xb = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    (w, c), (w1, c1) = shared.get_weights(), model.layers[3].get_weights()
    ra, rb = np.maximum(xa @ w + c, 0), np.maximum(xb @ w + c, 0)
    p1, p2 = model.predict([xa, xb])
    np.testing.assert_allclose(p1, np.concatenate([ra, rb], 1) @ w1 + c1, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(p2, ra + rb, rtol=1e-5, atol=1e-6)

    model.compile(optimizer="adam", loss=["mse", "mae"], loss_weights=[1.0, 0.5],
                  metrics={"head1": ["mae"]})
    history = model.fit([xa, xb], [rng.normal(size=(5, 2)), rng.normal(size=(5, 3))],
                        epochs=2, verbose=0)
    assert set(history.history) == {"loss", "head1_loss", "add_loss", "head1_mae"}
    logs = model.evaluate([xa, xb], [np.zeros((5, 2)), np.zeros((5, 3))], return_dict=True,
                          verbose=0)
    p1, p2 = model.predict([xa, xb])
    assert logs["head1_loss"] == pytest.approx(np.mean(p1 ** 2), rel=1e-5)
    assert logs["add_loss"] == pytest.approx(np.mean(np.abs(p2)), rel=1e-5)
    assert logs["loss"] == pytest.approx(np.mean(p1 ** 2) + 0.5 * np.mean(np.abs(p2)), rel=1e-5)


def test_functional_model_refuses_ops_outside_layers():
    x = gk.Input((3,))
    h = L.Dense(2)(x)
    with pytest.raises(gc.GraphcError, match="not computed from the model's inputs by layers"):
        gk.Model(x, h * 2.0)


class TwoLayer(gk.Model):
    def __init__(self):
        super().__init__(name="two_layer")
        self.hidden = L.Dense(8, activation="relu")
        self.drop = L.Dropout(0.5)
        self.out = L.Dense(3)

    def call(self, inputs, training=False):
        return self.out(self.drop(self.hidden(inputs), training=training))


def test_subclassed_model_trains_and_summarizes_once_built(capsys):
    model = TwoLayer()
    model.summary()
    assert "no layers yet" in capsys.readouterr().out
    x = rng.normal(size=(30, 5)).astype("float32")
    y = rng.integers(0, 3, 30)
    model.compile(optimizer="adam",
                  loss=gk.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    first = model.evaluate(x, y, verbose=0)[0]
    model.fit(x, y, epochs=30, batch_size=10, verbose=0)
    assert model.evaluate(x, y, verbose=0)[0] < first
    model.summary()
    out = capsys.readouterr().out
    assert f"{model.hidden.name} (Dense)" in out and "(None, 8)" in out
    assert "Total params: 75" in out
    (w1, b1), (w2, b2) = model.hidden.get_weights(), model.out.get_weights()
    np.testing.assert_allclose(model.predict(x), np.maximum(x @ w1 + b1, 0) @ w2 + b2,
                               rtol=1e-4, atol=1e-5)


def test_sequential_without_input_builds_from_data_and_summary_counts(capsys):
    model = gk.Sequential([L.Dense(1000, activation="relu"), L.Dense(10)])
    x = rng.normal(size=(4, 12)).astype("float32")
    assert model.predict(x).shape == (4, 10)
    model.summary()
    out = capsys.readouterr().out
    assert "13,000" in out and "10,010" in out and "Total params: 23,010" in out


def test_sequential_with_input_shape_argument_and_nested_model():
    inner = gk.Sequential([L.Dense(4, input_shape=(3,), activation="tanh")])
    assert inner.output_shape == (None, 4)
    x = gk.Input((3,))
    outer = gk.Model(x, L.Dense(2)(inner(x)))
    assert len(outer.weights) == 4
    xs = rng.normal(size=(6, 3))
    (w, b), = [inner.layers[0].get_weights()]
    w2, b2 = outer.layers[1].get_weights()
    np.testing.assert_allclose(outer.predict(xs), np.tanh(xs @ w + b) @ w2 + b2, rtol=1e-5,
                               atol=1e-5)


def test_trainable_false_freezes_a_layer():
    x = rng.normal(size=(8, 3)).astype("float32")
    y = rng.normal(size=(8, 1)).astype("float32")
    first, second = L.Dense(4), L.Dense(1)
    model = gk.Sequential([L.Input((3,)), first, second])
    first.trainable = False
    assert len(model.trainable_weights) == 2 and len(model.non_trainable_weights) == 2
    model.compile(optimizer="sgd", loss="mse")
    frozen = first.get_weights()
    before = second.get_weights()
    model.fit(x, y, epochs=2, verbose=0)
    for a, b in zip(frozen, first.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(before[0], second.get_weights()[0])


def test_identity_layers_stay_in_the_functional_graph():
    """Dropout returns its input at inference; the training replay must still drop."""
    x = gk.Input((200,))
    h = L.Dense(200, kernel_initializer="ones", use_bias=False)(x)
    d1 = L.Dropout(0.5)(h)
    d2 = L.Dropout(0.5)(h)  # same input, same inference node
    model = gk.Model(x, L.Add()([h, L.Activation("linear")(d1), d2]))
    assert sum(isinstance(layer, L.Dropout) for layer in model.layers) == 2
    xs = np.ones((3, 200), "float32")
    np.testing.assert_allclose(model.predict(xs), 3 * 200 * np.ones((3, 200)))
    train_out = gc.function([model.inputs[0]], model(model.inputs[0], training=True),
                            session=model.session)(xs)
    assert np.any(train_out != 600)
