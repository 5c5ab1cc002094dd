"""SimpleRNN, LSTM, GRU, Bidirectional, Masking and Embedding(mask_zero=True) against numpy
references written from Keras 3's equations (benchmarks/keras_layer_parity.py checks the same
layers against Keras itself), their weights, masks, saving, training and gradients."""
import os
import subprocess
import sys

import numpy as np
import pytest

import graphc as gc
import graphc.frontend as gk
from graphc.frontend.layers.base import mask_of

L = gk.layers
rng = np.random.default_rng(11)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


# ---- numpy references (Keras 3's cells; batch-major inputs) --------------------------------------
def ref_step(kind, x_t, states, weights, units, reset_after=True):
    kernel, rk = weights[0], weights[1]
    bias = weights[2] if len(weights) > 2 else None
    h = states[0]
    if kind == "SimpleRNN":
        out = np.tanh(x_t @ kernel + h @ rk + (0 if bias is None else bias))
        return [out]
    if kind == "LSTM":
        z = x_t @ kernel + h @ rk + (0 if bias is None else bias)
        i, f, c, o = np.split(z, 4, axis=-1)
        c_new = sigmoid(f) * states[1] + sigmoid(i) * np.tanh(c)
        return [sigmoid(o) * np.tanh(c_new), c_new]
    u = units
    if reset_after:
        bx, bh = (bias[0], bias[1]) if bias is not None else (0, 0)
        xz, xr, xh = np.split(x_t @ kernel + bx, 3, axis=-1)
        rz, rr, rh = np.split(h @ rk + bh, 3, axis=-1)
        z, r = sigmoid(xz + rz), sigmoid(xr + rr)
        hh = np.tanh(xh + r * rh)
    else:
        xz, xr, xh = np.split(x_t @ kernel + (0 if bias is None else bias), 3, axis=-1)
        z = sigmoid(xz + h @ rk[:, :u])
        r = sigmoid(xr + h @ rk[:, u:2 * u])
        hh = np.tanh(xh + (r * h) @ rk[:, 2 * u:])
    return [z * h + (1 - z) * hh]


def ref_rnn(kind, x, weights, units, mask=None, go_backwards=False, reset_after=True,
            zero_output_for_mask=False):
    """(outputs in the order the steps ran (batch, time, units), final states)."""
    batch, steps = x.shape[:2]
    states = [np.zeros((batch, units), x.dtype) for _ in range(2 if kind == "LSTM" else 1)]
    order = range(steps - 1, -1, -1) if go_backwards else range(steps)
    outs = []
    for t in order:
        new = ref_step(kind, x[:, t], states, weights, units, reset_after)
        if mask is not None:
            keep = mask[:, t, None]
            new = [np.where(keep, n, s) for n, s in zip(new, states)]
            out = np.where(keep, new[0], 0) if zero_output_for_mask else new[0]
        else:
            out = new[0]
        states = new
        outs.append(out)
    return np.stack(outs, axis=1), states


def random_weights(layer):
    return [rng.normal(0, 0.5, tuple(w.shape)).astype("float32") for w in layer.weights]


def predict(model, *arrays):
    out = model.predict(list(arrays) if len(arrays) > 1 else arrays[0], verbose=0)
    return out if isinstance(out, list) else [out]


# ---- outputs against the references -----------------------------------------------------------------
CONFIGS = [
    ("SimpleRNN", {}), ("LSTM", {}), ("GRU", {}), ("GRU", {"reset_after": False}),
    ("LSTM", {"use_bias": False}), ("GRU", {"use_bias": False, "reset_after": False}),
]


@pytest.mark.parametrize("kind,extra", CONFIGS)
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_rnn_matches_numpy_reference(kind, extra, go_backwards, masked):
    batch, steps, features, units = 5, 9, 3, 7
    x = rng.normal(size=(batch, steps, features)).astype("float32")
    inputs = [gk.Input((steps, features))]
    layer = getattr(L, kind)(units, return_sequences=True, return_state=True,
                             go_backwards=go_backwards, **extra)
    if masked:
        inputs.append(gk.Input((steps,), dtype="bool"))
        outputs = layer(inputs[0], mask=inputs[1])
    else:
        outputs = layer(inputs[0])
    model = gk.Model(inputs, outputs)
    weights = random_weights(layer)
    layer.set_weights(weights)
    mask = None
    if masked:
        lengths = rng.integers(1, steps + 1, batch)
        mask = np.arange(steps)[None] < lengths[:, None]
        mask[0, 1] = False  # a hole inside a sequence
    got = predict(model, x, mask) if masked else predict(model, x)
    seq, states = ref_rnn(kind, x, weights, units, mask, go_backwards,
                          extra.get("reset_after", True))
    np.testing.assert_allclose(got[0], seq, rtol=1e-5, atol=1e-5)
    for g, s in zip(got[1:], states):
        np.testing.assert_allclose(g, s, rtol=1e-5, atol=1e-5)
    assert len(got) == 1 + len(states)


def test_last_output_without_return_sequences_and_unbatched_shapes():
    x = rng.normal(size=(4, 6, 2)).astype("float32")
    layer = L.GRU(3)
    model = gk.Sequential([L.Input((6, 2)), layer])
    seq, _ = ref_rnn("GRU", x, layer.get_weights(), 3)
    assert model.output_shape == (None, 3)
    np.testing.assert_allclose(model.predict(x, verbose=0), seq[:, -1], rtol=1e-5, atol=1e-6)
    # one compiled model serves every batch size and, with a None time axis, every length
    free = gk.Sequential([L.Input((None, 2)), L.LSTM(3, return_sequences=True)])
    for steps in (1, 4, 9):
        assert free.predict(rng.normal(size=(2, steps, 2)).astype("float32"),
                            verbose=0).shape == (2, steps, 3)


def test_weights_have_keras_shapes_order_and_initial_values():
    model = gk.Sequential([L.Input((5, 3)), L.LSTM(4)])
    lstm = model.layers[0]
    assert [w.name for w in lstm.weights] == [f"{lstm.name}/kernel",
                                              f"{lstm.name}/recurrent_kernel",
                                              f"{lstm.name}/bias"]
    assert [tuple(w.shape) for w in lstm.weights] == [(3, 16), (4, 16), (16,)]
    _, rk, bias = lstm.get_weights()
    np.testing.assert_allclose(rk @ rk.T, np.eye(4), atol=1e-5)  # orthogonal recurrent kernel
    np.testing.assert_array_equal(bias, np.r_[np.zeros(4), np.ones(4), np.zeros(8)])
    gru = L.GRU(5)
    gk.Sequential([L.Input((2, 3)), gru])
    assert [tuple(w.shape) for w in gru.weights] == [(3, 15), (5, 15), (2, 15)]
    gru_before = L.GRU(5, reset_after=False)
    gk.Sequential([L.Input((2, 3)), gru_before])
    assert [tuple(w.shape) for w in gru_before.weights] == [(3, 15), (5, 15), (15,)]
    rnn = L.SimpleRNN(2, use_bias=False)
    gk.Sequential([L.Input((2, 3)), rnn])
    assert [tuple(w.shape) for w in rnn.weights] == [(3, 2), (2, 2)]
    bi = L.Bidirectional(L.LSTM(2))
    gk.Sequential([L.Input((2, 3)), bi])
    assert bi.weights == bi.forward_layer.weights + bi.backward_layer.weights
    assert [tuple(w.shape) for w in bi.weights] == [(3, 8), (2, 8), (8,)] * 2
    assert bi.forward_layer.name.startswith("forward_lstm")
    assert bi.backward_layer.name.startswith("backward_lstm")
    assert bi.backward_layer.go_backwards and not bi.forward_layer.go_backwards


# ---- masks ------------------------------------------------------------------------------------
def test_embedding_mask_zero_gives_the_unpadded_sequences_results():
    """A sequence right-padded with id 0 gives what the sequence alone gives."""
    emb, lstm = L.Embedding(13, 4, mask_zero=True), L.LSTM(5, return_sequences=True)
    ids_in = gk.Input((None,), dtype="int32")
    h = emb(ids_in)
    assert mask_of(h) is not None
    out = lstm(h)
    assert mask_of(out) is not None
    last = L.GRU(3)(out)
    assert mask_of(last) is None
    model = gk.Model(ids_in, [out, last])
    ids = rng.integers(1, 13, (4, 8)).astype("int32")
    lengths = [8, 5, 2, 1]
    padded = ids * (np.arange(8)[None] < np.array(lengths)[:, None])
    seq_all, last_all = predict(model, padded)
    for i, n in enumerate(lengths):
        seq_i, last_i = predict(model, ids[i:i + 1, :n])
        np.testing.assert_allclose(last_all[i], last_i[0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(seq_all[i, :n], seq_i[0], rtol=1e-5, atol=1e-6)
        # masked steps repeat the last unmasked output (Keras 3)
        np.testing.assert_allclose(seq_all[i, n:], np.repeat(seq_i[0, -1:], 8 - n, axis=0),
                                   rtol=1e-5, atol=1e-6)


def test_masking_zeroes_masked_steps_and_masks_through_dense_and_dropout():
    x = rng.normal(size=(3, 5, 2)).astype("float32")
    x[1, 3:] = 0.5
    x[2, 0] = 0.5
    masking = L.Masking(0.5)
    inp = gk.Input((5, 2))
    masked = masking(inp)
    h = L.Dropout(0.3)(L.Dense(4)(masked))
    assert mask_of(h) is not None  # Dense and Dropout pass the mask on, as in Keras
    out = L.SimpleRNN(3, return_sequences=True)(h)
    model = gk.Model(inp, [masked, out])
    got_x, _ = predict(model, x)
    keep = np.any(x != 0.5, axis=-1)
    np.testing.assert_array_equal(got_x, x * keep[..., None])
    fn = gc.function([inp], mask_of(masked), session=model.session)
    np.testing.assert_array_equal(fn(x), keep)
    assert mask_of(L.Flatten()(masked)) is None  # layers without mask support drop it
    both = L.Add()([masked, L.Dense(2)(inp)])  # Add ands the masks there are
    assert mask_of(both) is not None and mask_of(L.Add()([inp, inp])) is None


def test_zero_output_for_mask_and_bidirectional_merge_modes():
    batch, steps, features, units = 3, 6, 2, 4
    x = rng.normal(size=(batch, steps, features)).astype("float32")
    mask = np.arange(steps)[None] < np.array([6, 4, 2])[:, None]
    outs, layers = [], []
    inp, m = gk.Input((steps, features)), gk.Input((steps,), dtype="bool")
    for mode in ("concat", "sum", "mul", "ave", None):
        bi = L.Bidirectional(L.GRU(units, return_sequences=True), merge_mode=mode)
        y = bi(inp, mask=m)
        outs.extend(y if mode is None else [y])
        layers.append(bi)
    model = gk.Model([inp, m], outs)
    got = predict(model, x, mask)
    expected = []
    for mode, bi in zip(("concat", "sum", "mul", "ave", None), layers):
        w = random_weights(bi)
        bi.set_weights(w)
        fwd, _ = ref_rnn("GRU", x, w[:3], units, mask, zero_output_for_mask=True)
        bwd, _ = ref_rnn("GRU", x, w[3:], units, mask, go_backwards=True,
                         zero_output_for_mask=True)
        bwd = bwd[:, ::-1]
        expected.extend({"concat": [np.concatenate([fwd, bwd], -1)], "sum": [fwd + bwd],
                         "mul": [fwd * bwd], "ave": [(fwd + bwd) / 2], None: [fwd, bwd]}[mode])
    got = predict(model, x, mask)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-5)
    assert np.all(got[0][1, 4:] == 0)  # masked steps output zeros in a Bidirectional


def test_bidirectional_return_state_gives_both_directions_states():
    x = rng.normal(size=(2, 5, 3)).astype("float32")
    bi = L.Bidirectional(L.LSTM(4, return_state=True))
    inp = gk.Input((5, 3))
    outs = bi(inp)
    assert len(outs) == 5
    model = gk.Model(inp, outs)
    w = random_weights(bi)
    bi.set_weights(w)
    got = predict(model, x)
    fwd, (fh, fc) = ref_rnn("LSTM", x, w[:3], 4)
    bwd, (bh, bc) = ref_rnn("LSTM", x, w[3:], 4, go_backwards=True)
    for g, e in zip(got, [np.concatenate([fwd[:, -1], bwd[:, -1]], -1), fh, fc, bh, bc]):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-5)


# ---- saving, training, gradients ----------------------------------------------------------------
def test_models_with_recurrent_layers_save_and_load(tmp_path):
    ids = gk.Input((7,), dtype="int32")
    h = L.Embedding(10, 4, mask_zero=True)(ids)
    h = L.Bidirectional(L.LSTM(3, return_sequences=True), merge_mode="sum")(h)
    h = L.GRU(5, reset_after=False, go_backwards=True)(h)
    out = L.Dense(2, activation="softmax")(h)
    model = gk.Model(ids, out)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = rng.integers(0, 10, (6, 7)).astype("int32")
    x[:, 0] = 1
    model.fit(x, rng.integers(0, 2, 6), epochs=1, verbose=0)
    before = model.predict(x, verbose=0)
    model.save(tmp_path / "m.gck")
    loaded = gk.load_model(tmp_path / "m.gck")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), before, rtol=1e-6, atol=1e-6)
    kinds = [type(layer).__name__ for layer in loaded.layers]
    assert kinds == ["Embedding", "Bidirectional", "GRU", "Dense"]
    gru = loaded.layers[2]
    assert (gru.reset_after, gru.go_backwards, gru.units) == (False, True, 5)
    assert loaded.layers[1].merge_mode == "sum"
    seq = gk.Sequential([L.Input((4, 2)), L.SimpleRNN(3, activation="relu"), L.Dense(1)])
    seq.save(tmp_path / "s.gck")
    xs = rng.normal(size=(2, 4, 2)).astype("float32")
    np.testing.assert_allclose(gk.load_model(tmp_path / "s.gck").predict(xs, verbose=0),
                               seq.predict(xs, verbose=0), rtol=1e-6)


def test_fit_lowers_the_loss_of_an_lstm_and_a_gru():
    x = rng.normal(size=(64, 6, 3)).astype("float32")
    y = (x[:, :, 0].sum(axis=1) > 0).astype("int32")
    for rnn in (L.LSTM(8), L.GRU(8, dropout=0.1)):
        model = gk.Sequential([L.Input((6, 3)), rnn, L.Dense(2, activation="softmax")])
        model.compile(optimizer=gk.optimizers.Adam(0.02), loss="sparse_categorical_crossentropy")
        first = model.evaluate(x, y, verbose=0)
        model.fit(x, y, batch_size=16, epochs=15, verbose=0)
        assert model.evaluate(x, y, verbose=0) < 0.6 * first


def test_lstm_gradient_matches_central_differences_in_float64():
    batch, steps, features, units = 2, 4, 3, 3
    x = rng.normal(size=(batch, steps, features))
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0]], bool)
    proj = rng.normal(size=(steps, units))
    xin = gc.placeholder("float64", (None, steps, features))
    min_ = gc.placeholder("bool", (None, steps))
    lstm = L.LSTM(units, return_sequences=True, dtype="float64")
    seq = lstm(xin, mask=min_)
    loss = gc.sum(seq * gc.constant(proj))
    grads = gc.grad(loss, lstm.weights + [xin])
    weights = [w.astype("float64") for w in random_weights(lstm)]
    lstm.set_weights(weights)
    got = gc.function([xin, min_], grads, session=lstm._session())(x, mask)

    def f(ws, xv):
        return np.sum(ref_rnn("LSTM", xv, ws, units, mask)[0] * proj)
    eps = 1e-6
    for k, target in enumerate(weights + [x]):
        num = np.zeros_like(target)
        for idx in np.ndindex(target.shape):
            for sign in (1, -1):
                moved = [w.copy() for w in weights] + [x.copy()]
                moved[k][idx] += sign * eps
                num[idx] += sign * f(moved[:3], moved[3]) / (2 * eps)
        np.testing.assert_allclose(got[k], num, rtol=1e-6, atol=1e-8)
    assert np.all(got[3][1, 2:] == 0)  # masked steps take no gradient


def test_bad_arguments_are_graphc_errors():
    with pytest.raises(gc.GraphcError, match="units"):
        L.GRU(0)
    with pytest.raises(gc.GraphcError, match="merge_mode"):
        L.Bidirectional(L.LSTM(2), merge_mode="max")
    with pytest.raises(gc.GraphcError, match=r"\(batch, time, features\)"):
        L.LSTM(2)(gk.Input((3,)))


def test_digits_lstm_example_runs_at_a_tiny_size():
    result = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "digits_lstm.py"),
                             "--epochs", "1", "--units", "8", "--samples", "200"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "held-out accuracy" in result.stdout and "reloaded" in result.stdout


# ---- cells and RNN(cell) ----------------------------------------------------------------------
def ref_cell_rnn(steps_of, x, states, mask=None, go_backwards=False, reference=0):
    """Keras's loop over any cell: `steps_of(x_t, states) -> (output, new states)` (states
    flat); at a masked step the states stay and the output is states[reference]. (outputs in
    the order the steps ran, final states)."""
    order = range(x.shape[1] - 1, -1, -1) if go_backwards else range(x.shape[1])
    outs = []
    for t in order:
        out, new = steps_of(x[:, t], states)
        if mask is not None:
            keep = mask[:, t, None]
            out = np.where(keep, out, states[reference])
            new = [np.where(keep, n, s) for n, s in zip(new, states)]
        states = new
        outs.append(out)
    return np.stack(outs, axis=1), states


def ref_stack(kinds_units, weights, reset_after=True):
    """The step of StackedRNNCells over graphc's cells (kind, units) with their weights."""
    def steps_of(x_t, states):
        new, at, w_at = [], 0, 0
        for kind, units in kinds_units:
            n = 2 if kind == "LSTM" else 1  # states; weights: kernel, recurrent, bias
            out = ref_step(kind, x_t, states[at:at + n], weights[w_at:w_at + 3], units,
                           reset_after)
            new.extend(out)
            x_t, at, w_at = out[0], at + n, w_at + 3
        return x_t, new
    return steps_of


CELLS = {"SimpleRNN": L.SimpleRNNCell, "LSTM": L.LSTMCell, "GRU": L.GRUCell}


@pytest.mark.parametrize("kinds", [["LSTM"], ["GRU"], ["SimpleRNN", "LSTM"],
                                   ["LSTM", "GRU", "SimpleRNN"]])
@pytest.mark.parametrize("masked,go_backwards,unroll", [(False, False, False),
                                                        (True, True, False),
                                                        (True, False, True)])
def test_rnn_over_cells_matches_numpy_reference(kinds, masked, go_backwards, unroll):
    batch, steps, features = 4, 6, 3
    units = [5, 3, 4][:len(kinds)]
    x = rng.normal(size=(batch, steps, features)).astype("float32")
    cells = [CELLS[k](u) for k, u in zip(kinds, units)]
    layer = L.RNN(cells if len(cells) > 1 else cells[0], return_sequences=True,
                  return_state=True, go_backwards=go_backwards, unroll=unroll)
    inputs = [gk.Input((steps, features))] + ([gk.Input((steps,), dtype="bool")] if masked
                                               else [])
    outs = layer(inputs[0], mask=inputs[1] if masked else None)
    model = gk.Model(inputs, outs)
    weights = random_weights(layer)
    layer.set_weights(weights)
    mask = None
    if masked:
        mask = np.arange(steps)[None] < np.array([6, 1, 4, 3])[:, None]
        mask[0, 2] = False
    got = predict(model, x, mask) if masked else predict(model, x)
    kinds_units = list(zip(kinds, units))
    states0 = [np.zeros((batch, u), "float32") for k, u in kinds_units
               for _ in range(2 if k == "LSTM" else 1)]
    # nested states (a stack): the masked output is the last cell's first state
    reference = len(states0) - (2 if kinds[-1] == "LSTM" else 1) if len(kinds) > 1 else 0
    seq, states = ref_cell_rnn(ref_stack(kinds_units, weights), x, states0, mask,
                               go_backwards, reference)
    assert len(got) == 1 + len(states) == 1 + layer.state_count
    np.testing.assert_allclose(got[0], seq, rtol=1e-5, atol=1e-5)
    for g, s in zip(got[1:], states):
        np.testing.assert_allclose(g, s, rtol=1e-5, atol=1e-5)


class ConcatRNNCell(L.Layer):
    """Keras's cell protocol, written as a user would: one kernel over [x, h], an output
    (2 tanh(z)) that is not its first state (z), and a second state that counts steps."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units, self.state_size = units, [units, 1]

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1] + self.units, self.units),
                                      initializer="uniform", name="kernel")

    def call(self, inputs, states):
        z = gk.ops.matmul(gk.ops.concatenate([inputs, states[0]], axis=-1), self.kernel)
        return 2 * gk.ops.tanh(z), [z, states[1] + 1]

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@pytest.mark.parametrize("unroll", [False, True])
def test_a_users_cell_runs_in_rnn_with_masks(unroll):
    batch, steps, features, units = 3, 5, 2, 4
    x = rng.normal(size=(batch, steps, features)).astype("float32")
    mask = np.arange(steps)[None] < np.array([5, 2, 3])[:, None]
    mask[0, 1] = False
    layer = L.RNN(ConcatRNNCell(units), return_sequences=True, return_state=True,
                  go_backwards=True, unroll=unroll)
    inp, m = gk.Input((steps, features)), gk.Input((steps,), dtype="bool")
    model = gk.Model([inp, m], layer(inp, mask=m))
    kernel, = random_weights(layer)
    layer.set_weights([kernel])

    def steps_of(x_t, states):
        z = np.concatenate([x_t, states[0]], axis=-1) @ kernel
        return 2 * np.tanh(z), [z, states[1] + 1]
    seq, (h, count) = ref_cell_rnn(steps_of, x, [np.zeros((batch, units), "float32"),
                                                 np.zeros((batch, 1), "float32")],
                                   mask, go_backwards=True)
    got = predict(model, x, mask)
    np.testing.assert_allclose(got[0], seq, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got[1], h, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(got[2][:, 0], mask.sum(axis=1))  # steps that counted
    assert got[0][1, 0].tolist() == [0.0] * units  # masked before any step: the zero state


def test_a_cell_called_alone_is_one_step():
    x = rng.normal(size=(3, 4)).astype("float32")
    h0, c0 = (rng.normal(size=(3, 5)).astype("float32") for _ in range(2))
    xin, hin, cin = (gc.placeholder("float32", (None, n)) for n in (4, 5, 5))
    cell = L.LSTMCell(5)
    out, (h, c) = cell(xin, [hin, cin])
    weights = random_weights(cell)
    cell.set_weights(weights)
    got = gc.function([xin, hin, cin], [out, h, c], session=cell._session())(x, h0, c0)
    want_h, want_c = ref_step("LSTM", x, [h0, c0], weights, 5)
    for g, w in zip(got, [want_h, want_h, want_c]):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
    gru = L.GRUCell(5, reset_after=False)
    out, state = gru(xin, hin)  # one state, not in a list: a tensor back, as in Keras
    assert isinstance(state, gc.Tensor) and tuple(gru.bias.shape) == (15,)
    assert (L.SimpleRNNCell(3).state_size, L.LSTMCell(3).state_size, gru.state_size) == \
        (3, [3, 3], 5)
    assert L.StackedRNNCells([L.GRUCell(2), L.LSTMCell(3)]).state_size == [2, [3, 3]]


def test_layers_are_rnn_over_their_cell_and_train_like_rnn_over_a_stack():
    """LSTM (inputs projected before the loop) and RNN(StackedRNNCells([LSTMCell])) (the
    cell called each step) give the same History and weights from the same start."""
    x = rng.normal(size=(24, 5, 3)).astype("float32")
    y = rng.normal(size=(24, 4)).astype("float32")
    lstm = L.LSTM(4, name="the_lstm")
    assert isinstance(lstm, L.RNN) and isinstance(lstm.cell, L.LSTMCell)
    assert lstm.units == 4 and lstm.unit_forget_bias and not hasattr(lstm, "project")
    stack = L.RNN(L.StackedRNNCells([L.LSTMCell(4)]))
    results = []
    for layer in (lstm, stack):
        model = gk.Sequential([L.Input((5, 3)), layer])
        model.compile(optimizer=gk.optimizers.Adam(0.05), loss="mse")
        if layer is lstm:
            start = model.get_weights()
        else:
            model.set_weights(start)
        history = model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
        results.append((history.history["loss"], model.get_weights()))
    assert [w.name for w in lstm.weights] == ["the_lstm/kernel", "the_lstm/recurrent_kernel",
                                              "the_lstm/bias"]
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-6)
    for a, b in zip(results[0][1], results[1][1]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_dropout_masks_of_cells_are_drawn_once_per_sequence():
    """In training, a cell's input dropout mask is the same at every step (Keras's), in
    RNN over graphc's cell and inside a stack; the identity at inference."""
    steps = 6
    x = np.ones((50, steps, 4), "float32")
    for make in (lambda c: L.RNN(c, return_sequences=True),
                 lambda c: L.RNN(L.StackedRNNCells([c]), return_sequences=True)):
        cell = L.SimpleRNNCell(4, activation=None, dropout=0.5, kernel_initializer="identity",
                               recurrent_initializer="zeros")
        inp = gc.placeholder("float32", (None, steps, 4))
        layer = make(cell)
        train, infer = layer(inp, training=True), layer(inp, training=False)
        got_train, got_infer = gc.function([inp], [train, infer],
                                           session=cell._session())(x)
        assert set(np.unique(got_train)) <= {0.0, 2.0} and 0.2 < got_train.mean() / 2 < 0.8
        np.testing.assert_array_equal(got_train, np.repeat(got_train[:, :1], steps, axis=1))
        np.testing.assert_array_equal(got_infer, x)


def test_rnn_saves_and_loads_with_its_cells(tmp_path):
    inp = gk.Input((4, 3))
    h = L.RNN([L.GRUCell(3, reset_after=False), L.LSTMCell(2)], return_sequences=True)(inp)
    out = L.RNN(L.SimpleRNNCell(2, activation="relu"), go_backwards=True)(h)
    model = gk.Model(inp, out)
    x = rng.normal(size=(5, 4, 3)).astype("float32")
    model.save(tmp_path / "cells.gck")
    loaded = gk.load_model(tmp_path / "cells.gck")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-6, atol=1e-7)
    stack = loaded.layers[0].cell
    assert [type(c).__name__ for c in stack.cells] == ["GRUCell", "LSTMCell"]
    assert stack.cells[0].reset_after is False and loaded.layers[1].go_backwards


def test_rnn_refuses_what_it_cannot_run():
    with pytest.raises(gc.GraphcError, match="state_size"):
        L.RNN(L.Dense(3))
    with pytest.raises(gc.GraphcError, match="call"):
        L.RNN(object())
    with pytest.raises(gc.GraphcError, match="unroll"):
        L.RNN(L.GRUCell(2), unroll=True)(gk.Input((None, 3)))
    with pytest.raises(gc.GraphcError, match="2 states, got 1"):
        L.RNN(L.LSTMCell(2))(gk.Input((4, 3)), initial_state=[gk.Input((2,))])
    with pytest.raises(gc.GraphcError, match="units"):
        L.LSTMCell(-1)


# ---- ConvLSTM ---------------------------------------------------------------------------------
def ref_conv(x, kernel, strides, padding, dilations):
    """channels_last convolution of any rank, TF's "same" padding (the extra pad after)."""
    sizes, ks = x.shape[1:-1], kernel.shape[:-2]
    spans = [(k - 1) * d + 1 for k, d in zip(ks, dilations)]
    if padding == "same":
        outs = [-(-n // s) for n, s in zip(sizes, strides)]
        pads = [max((o - 1) * s + sp - n, 0) for o, s, sp, n in zip(outs, strides, spans, sizes)]
        x = np.pad(x, [(0, 0)] + [(p // 2, p - p // 2) for p in pads] + [(0, 0)])
    else:
        outs = [-(-(n - sp + 1) // s) for n, s, sp in zip(sizes, strides, spans)]
    out = np.zeros((x.shape[0],) + tuple(outs) + (kernel.shape[-1],), x.dtype)
    for pos in np.ndindex(*outs):
        for tap in np.ndindex(*ks):
            at = tuple(p * s + t * d for p, s, t, d in zip(pos, strides, tap, dilations))
            out[(slice(None),) + pos] += x[(slice(None),) + at] @ kernel[tap]
    return out


@pytest.mark.parametrize("rank,kwargs", [
    (1, {"kernel_size": 3, "padding": "same", "dilation_rate": 2}),
    (2, {"kernel_size": (3, 2), "strides": (2, 1)}),
    (2, {"kernel_size": 2, "padding": "same", "use_bias": False}),
    (3, {"kernel_size": (2, 3, 2), "padding": "same", "strides": (1, 2, 1)}),
    (3, {"kernel_size": 2, "dilation_rate": (2, 1, 1)}),
])
@pytest.mark.parametrize("masked,go_backwards", [(False, False), (True, True)])
def test_conv_lstm_matches_numpy_reference(rank, kwargs, masked, go_backwards):
    batch, steps, channels, filters = 3, 4, 2, 3
    spatial = {1: (7,), 2: (5, 4), 3: (3, 5, 4)}[rank]
    x = rng.normal(size=(batch, steps) + spatial + (channels,)).astype("float32")
    layer = getattr(L, f"ConvLSTM{rank}D")(filters, return_sequences=True, return_state=True,
                                            go_backwards=go_backwards, **kwargs)
    inputs = [gk.Input((None,) + spatial + (channels,))]  # time known at run time only
    if masked:
        inputs.append(gk.Input((None,), dtype="bool"))
    model = gk.Model(inputs, layer(inputs[0], mask=inputs[1] if masked else None))
    weights = random_weights(layer)
    layer.set_weights(weights)
    mask = None
    if masked:
        mask = np.arange(steps)[None] < np.array([4, 2, 1])[:, None]
        mask[0, 1] = False
    got = predict(model, x, mask) if masked else predict(model, x)
    kernel, rk = weights[:2]
    bias = weights[2] if len(weights) > 2 else 0
    strides = layer.strides
    padding, dilations = layer.padding, layer.dilation_rate

    def steps_of(x_t, states):
        h, c = states
        z = ref_conv(x_t, kernel, strides, padding, dilations) + bias + \
            ref_conv(h, rk, (1,) * rank, "same", (1,) * rank)
        i, f, cc, o = np.split(z, 4, axis=-1)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(cc)
        h = sigmoid(o) * np.tanh(c)
        return h, [h, c]
    state_shape = (batch,) + tuple(got[1].shape[1:])
    zero = np.zeros(state_shape, "float32")
    mask_full = None if mask is None else mask.reshape(mask.shape + (1,) * rank)
    seq, (h, c) = ref_cell_rnn(steps_of, x, [zero, zero], mask_full, go_backwards)
    np.testing.assert_allclose(got[0], seq, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got[1], h, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got[2], c, rtol=1e-5, atol=1e-5)
    assert [tuple(w.shape) for w in layer.weights][:2] == [
        layer.kernel_size + (channels, 4 * filters), layer.kernel_size + (filters, 4 * filters)]


def test_conv_lstm_trains_saves_and_refuses_bad_arguments(tmp_path):
    x = rng.normal(size=(16, 3, 6, 6, 1)).astype("float32")
    y = (x.mean(axis=(1, 2, 3, 4)) > 0).astype("int32")
    model = gk.Sequential([L.Input((3, 6, 6, 1)), L.ConvLSTM2D(4, 3, dropout=0.1),
                           L.Flatten(), L.Dense(2, activation="softmax")])
    model.compile(optimizer=gk.optimizers.Adam(0.02), loss="sparse_categorical_crossentropy")
    first = model.evaluate(x, y, verbose=0)
    model.fit(x, y, batch_size=8, epochs=8, verbose=0)
    assert model.evaluate(x, y, verbose=0) < first
    model.save(tmp_path / "convlstm.gck")
    loaded = gk.load_model(tmp_path / "convlstm.gck")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    assert loaded.layers[0].kernel_size == (3, 3) and loaded.layers[0].dropout == 0.1
    with pytest.raises(gc.GraphcError, match="strides > 1 and dilation_rate > 1"):
        L.ConvLSTM1D(2, 3, strides=2, dilation_rate=2)
    with pytest.raises(gc.GraphcError, match="channels_last"):
        L.ConvLSTM2D(2, 3, data_format="channels_first")
    with pytest.raises(gc.GraphcError, match="known sizes"):
        L.ConvLSTM2D(2, 3)(gk.Input((3, None, 6, 1)))
    with pytest.raises(gc.GraphcError, match="does not fit"):
        L.ConvLSTM1D(2, 5)(gk.Input((3, 4, 1)))
