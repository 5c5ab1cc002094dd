"""Stateful recurrent layers against the numpy references of test_recurrent_layers: a
stateful layer's batch starts from the states the previous batch left (in predict, fit and
evaluate, and from one call to the next), as if the batches were one longer sequence;
reset_state() starts again from zeros. The batch size is fixed by the Input."""
import numpy as np
import pytest

import graphc as gc
import graphc.frontend as gk

from .test_recurrent_layers import random_weights, ref_rnn

L = gk.layers
rng = np.random.default_rng(23)
B, T, F = 3, 5, 4


def _stateful_model(kind, units, **kwargs):
    x = gk.Input((T, F), batch_size=B)
    layer = getattr(L, kind)(units, stateful=True, **kwargs)
    model = gk.Model(x, layer(x))
    layer.set_weights(random_weights(layer))
    return model, layer


def _continued(kind, weights, units, pieces):
    """The reference's last output of each piece, the pieces run as one sequence."""
    outs, _ = ref_rnn(kind, np.concatenate(pieces, axis=1), weights, units)
    return [outs[:, (i + 1) * T - 1] for i in range(len(pieces))]


@pytest.mark.parametrize("kind", ["SimpleRNN", "LSTM", "GRU"])
def test_predict_carries_states_across_batches_and_calls(kind):
    model, layer = _stateful_model(kind, 6)
    x = rng.normal(size=(2 * B, T, F)).astype("float32")
    first = model.predict(x, batch_size=B, verbose=0)
    second = model.predict(x, batch_size=B, verbose=0)
    weights = layer.get_weights()
    assert len(weights) == 3  # the states are not weights, as in Keras
    expected = _continued(kind, weights, 6, [x[:B], x[B:], x[:B], x[B:]])
    np.testing.assert_allclose(np.concatenate([first, second]), np.concatenate(expected),
                               rtol=1e-5, atol=1e-6)
    h = gk.backend.session(model.graph).get_value(layer.states[0])
    np.testing.assert_allclose(h, expected[-1], rtol=1e-5, atol=1e-6)
    layer.reset_state()
    np.testing.assert_allclose(model.predict(x, batch_size=B, verbose=0), first, rtol=1e-6)
    layer.reset_states()
    assert not gk.backend.session(model.graph).get_value(layer.states[0]).any()


def test_return_sequences_and_states_continue_too():
    model, layer = _stateful_model("LSTM", 2, return_sequences=True, return_state=True)
    x = rng.normal(size=(B, T, F)).astype("float32")
    x[0, 1, 2] = -0.0
    runs = [model.predict(x, batch_size=B, verbose=0) for _ in range(2)]
    outs, states = ref_rnn("LSTM", np.concatenate([x, x], axis=1), layer.get_weights(), 2)
    np.testing.assert_allclose(np.concatenate([runs[0][0], runs[1][0]], axis=1), outs,
                               rtol=1e-5, atol=1e-6)
    for got, want in zip(runs[1][1:], states):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_fit_and_evaluate_carry_states():
    model, layer = _stateful_model("GRU", 3)
    model.compile(optimizer=gk.optimizers.SGD(0.0), loss="mse")  # weights stay put
    x = rng.normal(size=(2 * B, T, F)).astype("float32")
    y = rng.normal(size=(2 * B, 3)).astype("float32")
    model.fit(x, y, batch_size=B, epochs=1, shuffle=False, verbose=0)
    weights = layer.get_weights()
    expected = _continued("GRU", weights, 3, [x[:B], x[B:], x[:B]])
    sess = gk.backend.session(model.graph)
    np.testing.assert_allclose(sess.get_value(layer.states[0]), expected[1], rtol=1e-5,
                               atol=1e-6)
    loss = model.evaluate(x[:B], y[:B], batch_size=B, verbose=0)
    np.testing.assert_allclose(loss, np.mean((expected[2] - y[:B]) ** 2), rtol=1e-5)
    np.testing.assert_allclose(sess.get_value(layer.states[0]), expected[2], rtol=1e-5,
                               atol=1e-6)


def test_bidirectional_and_stacked_cells_keep_every_state():
    x = gk.Input(batch_shape=(B, T, F))
    bi = L.Bidirectional(L.SimpleRNN(2, stateful=True))
    stack = L.RNN([L.LSTMCell(3), L.GRUCell(2)], stateful=True)
    model = gk.Model(x, [bi(x), stack(x)])
    assert bi.stateful and len(stack.states) == 3
    data = rng.normal(size=(B, T, F)).astype("float32")
    first = model.predict(data, batch_size=B, verbose=0)
    second = model.predict(data, batch_size=B, verbose=0)
    assert all(np.abs(a - b).max() > 1e-4 for a, b in zip(first, second))
    fwd, bwd = bi.get_weights()[:3], bi.get_weights()[3:]
    forward = _continued("SimpleRNN", fwd, 2, [data, data])
    # backwards, each call runs its batch from the last step to the first
    flipped = data[:, ::-1]
    backward = _continued("SimpleRNN", bwd, 2, [flipped, flipped])
    np.testing.assert_allclose(second[0], np.concatenate([forward[1], backward[1]], -1),
                               rtol=1e-5, atol=1e-6)
    bi.reset_state()
    stack.reset_state()
    again = model.predict(data, batch_size=B, verbose=0)
    for a, b in zip(first, again):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_fixed_batch_sizes_are_needed_and_checked():
    with pytest.raises(ValueError, match="lstm.*fixed batch size"):
        L.LSTM(2, stateful=True, name="lstm")(gk.Input((T, F)))
    layer = L.GRU(2, stateful=True)
    layer(gk.Input((T, F), batch_size=B))
    with pytest.raises(ValueError, match="batches of 3"):
        layer(gk.Input((T, F), batch_size=B + 1))
    model, _ = _stateful_model("SimpleRNN", 2)
    with pytest.raises(gc.GraphcError):
        model.predict(rng.normal(size=(B + 1, T, F)).astype("float32"), batch_size=B + 1,
                      verbose=0)
    assert L.InputLayer(batch_shape=(B, T, F)).batch_shape == (B, T, F)
    assert L.InputLayer(shape=(T, F)).batch_shape == (None, T, F)
    assert gk.Input((T,), batch_size=7).shape[0] == 7
    with pytest.raises(gc.GraphcError):
        gk.Input((T,), batch_size=-1)


def test_stateful_layers_save_and_reload(tmp_path):
    model, layer = _stateful_model("LSTM", 3)
    x = rng.normal(size=(B, T, F)).astype("float32")
    first = model.predict(x, batch_size=B, verbose=0)
    model.save(str(tmp_path / "stateful.gck"))
    again = gk.load_model(str(tmp_path / "stateful.gck"))
    # a loaded model starts from zero states (Keras saves no states either)
    np.testing.assert_allclose(again.predict(x, batch_size=B, verbose=0), first, rtol=1e-6)
    assert any(getattr(l, "stateful", False) for l in again.layers)


def test_stateful_conv_lstm_continues_like_one_longer_sequence():
    x = gk.Input((T, 6, 2), batch_size=2)
    layer = L.ConvLSTM1D(3, 3, padding="same", stateful=True)
    model = gk.Model(x, layer(x))
    layer.set_weights(random_weights(layer))
    data = rng.normal(size=(2, T, 6, 2)).astype("float32")
    model.predict(data, batch_size=2, verbose=0)
    second = model.predict(data, batch_size=2, verbose=0)
    assert [tuple(v.shape) for v in layer.states] == [(2, 6, 3), (2, 6, 3)]
    # the stateless layer (tested against numpy in test_recurrent_layers) over both calls' steps
    long_x = gk.Input((2 * T, 6, 2))
    plain = L.ConvLSTM1D(3, 3, padding="same")
    whole = gk.Model(long_x, plain(long_x))
    plain.set_weights(layer.get_weights())
    np.testing.assert_allclose(second, whole.predict(np.concatenate([data, data], 1),
                                                     verbose=0), rtol=1e-5, atol=1e-6)
