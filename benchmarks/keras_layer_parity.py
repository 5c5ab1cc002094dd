"""Parity of graphc's recurrent and attention layers with Keras 3: for each configuration, the
same functional model is built with Keras (in another interpreter, on JAX) and with
graphc.frontend, Keras's weights are copied into graphc's layers with set_weights, and both
predict on the same random inputs (masks included). Prints one JSON line per configuration
with the max abs difference of every output, and a last summary line.

Keras is never a graphc dependency: it runs in the interpreter named by GRAPHC_PEER_PYTHON
(e.g. `python3.11 -m venv /work/peervenv && /work/peervenv/bin/pip install keras jax jaxlib`),
or in this one if it can import keras.

Usage:
    GRAPHC_PEER_PYTHON=/work/peervenv/bin/python python benchmarks/keras_layer_parity.py \
        [--device reference|cpu] [--only SUBSTRING] [--tolerance 1e-5]
"""
import json

import numpy as np

from _parity import outputs, run, script_main

B, T, F = 3, 7, 5  # batch, time steps, features: odd sizes


# ---- the cases: one function per configuration, the same code for Keras and graphc -----------
# Each takes `lib` (keras, or graphc.frontend) and returns (model, layers whose weights are
# copied, names of the input arrays in the model's input order).
def _rnn(kind, **kwargs):
    def case(lib):
        x = lib.Input((T, F))
        layer = getattr(lib.layers, kind)(**kwargs)
        return lib.Model(x, layer(x)), [layer], ["x"]
    return case


def _rnn_masked(kind, **kwargs):
    def case(lib):
        x, m = lib.Input((T, F)), lib.Input((T,), dtype="bool")
        layer = getattr(lib.layers, kind)(**kwargs)
        return lib.Model([x, m], layer(x, mask=m)), [layer], ["x", "mask"]
    return case


def _bidirectional(kind, merge_mode="concat", masked=False, cell_of=None, **kwargs):
    def case(lib):
        x = lib.Input((T, F))
        inputs = [x]
        cell = {"cell": cell_of(lib)} if cell_of else {}  # RNN's cell, made by each library
        layer = lib.layers.Bidirectional(getattr(lib.layers, kind)(**cell, **kwargs),
                                         merge_mode=merge_mode)
        if masked:
            m = lib.Input((T,), dtype="bool")
            inputs.append(m)
            out = layer(x, mask=m)
        else:
            out = layer(x)
        names = ["x", "mask"][:len(inputs)]
        return lib.Model(inputs if masked else x, out), [layer], names
    return case


def _embedding_then(kind, **kwargs):
    def case(lib):
        ids = lib.Input((T,), dtype="int32")
        emb = lib.layers.Embedding(11, F, mask_zero=True)
        layer = getattr(lib.layers, kind)(**kwargs)
        return lib.Model(ids, layer(emb(ids))), [emb, layer], ["ids"]
    return case


def _masking_then(kind, **kwargs):
    def case(lib):
        x = lib.Input((T, F))
        layer = getattr(lib.layers, kind)(**kwargs)
        return lib.Model(x, layer(lib.layers.Masking(0.0)(x))), [layer], ["x_padded"]
    return case


class _Consecutive:
    """A stateful model's predictions twice in a row (the second from the states the first
    left), then once more after reset_state() of `layers` (where given: Keras 3.15's fails
    on a stack's nested states); a case returns it as its model. Keras runs the batches as
    eager calls: on JAX its predict leaves the states untouched (its TensorFlow backend's
    predict carries them, as graphc's does)."""

    def __init__(self, lib, model, layers, batch_size):
        self.model, self.layers, self.batch_size = model, layers, batch_size
        self.eager = lib.__name__ == "keras"

    def _once(self, x):
        if not self.eager:
            out = self.model.predict(x, batch_size=self.batch_size, verbose=0)
            return list(out) if isinstance(out, (list, tuple)) else [out]
        batches = [self.model(x[i:i + self.batch_size])
                   for i in range(0, len(x), self.batch_size)]
        if isinstance(batches[0], (list, tuple)):
            return [np.concatenate([np.asarray(b[j]) for b in batches])
                    for j in range(len(batches[0]))]
        return [np.concatenate([np.asarray(b) for b in batches])]

    def predict(self, x, verbose=0):
        first, second = self._once(x), self._once(x)
        for layer in self.layers:
            layer.reset_state()
        return first + second + (self._once(x) if self.layers else [])


def _stateful(kind, data="x", wrap=None, cell_of=None, reset=True, **kwargs):
    """A stateful layer (batch size B fixed by the Input) predicted on `data` (one or more
    batches of B) twice, then after reset_state()."""
    def case(lib):
        x = lib.Input((T, F), batch_size=B)
        cell = {"cell": cell_of(lib)} if cell_of else {}
        layer = getattr(lib.layers, kind)(**cell, stateful=True, **kwargs)
        if wrap:
            layer = getattr(lib.layers, wrap)(layer)
        model = lib.Model(x, layer(x))
        return _Consecutive(lib, model, [layer] if reset else [], B), [layer], [data]
    return case


def _flat(outputs):
    """A layer's outputs as one flat list (Keras nests a stack's states per cell)."""
    if isinstance(outputs, (list, tuple)):
        return [t for o in outputs for t in _flat(o)]
    return [outputs]


def _cell_rnn(make_cell, masked=False, **kwargs):
    """RNN over the cell(s) make_cell(lib) gives, its outputs flattened."""
    def case(lib):
        x, inputs, names = lib.Input((T, F)), [], ["x"]
        layer = lib.layers.RNN(make_cell(lib), **kwargs)
        if masked:
            m = lib.Input((T,), dtype="bool")
            inputs, names = [m], ["x", "mask"]
            out = layer(x, mask=m)
        else:
            out = layer(x)
        return lib.Model([x] + inputs if masked else x, _flat(out)), [layer], names
    return case


def _minimal_cell(lib):
    """Keras's documented protocol: a Layer with call(inputs, states) and state_size; its
    output (2 tanh(h)) differs from its first state, and a second state counts steps."""
    class MinimalRNNCell(lib.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units, self.state_size = units, [units, 1]

        def build(self, input_shape):
            self.kernel = self.add_weight(shape=(input_shape[-1], self.units),
                                          initializer="uniform", name="kernel")
            self.recurrent_kernel = self.add_weight(shape=(self.units, self.units),
                                                    initializer="uniform",
                                                    name="recurrent_kernel")

        def call(self, inputs, states):
            h = lib.ops.matmul(inputs, self.kernel) + lib.ops.matmul(states[0],
                                                                     self.recurrent_kernel)
            return 2 * lib.ops.tanh(h), [h, states[1] + 1]
    return MinimalRNNCell(4)


def _conv_lstm(kind, data, **kwargs):
    """ConvLSTM1D/2D/3D on the input array named `data`, its outputs flattened."""
    def case(lib):
        x = lib.Input(inputs()[data].shape[1:])
        layer = getattr(lib.layers, kind)(**kwargs)
        return lib.Model(x, _flat(layer(x))), [layer], [data]
    return case


def _mha(call_kwargs=None, key=False, attention_mask=False, cls="MultiHeadAttention",
         same_features=False, **kwargs):
    """Cross attention; same_features: value and key with the query's features (inputs vf,
    kf), else F + 1 and F - 1 (v, k)."""
    def case(lib):
        grow = 0 if same_features else 1
        q, v = lib.Input((T, F)), lib.Input((T + 2, F + grow))
        inputs, names, extra = [q, v], ["x", "vf" if same_features else "v"], {}
        if key:
            k = lib.Input((T + 2, F - grow))
            inputs.append(k)
            names.append("kf" if same_features else "k")
            extra["key"] = k
        if attention_mask:
            m = lib.Input((T, T + 2), dtype="bool")
            inputs.append(m)
            names.append("attention_mask")
            extra["attention_mask"] = m
        layer = getattr(lib.layers, cls)(**kwargs)
        out = layer(q, v, **extra, **(call_kwargs or {}))
        return lib.Model(inputs, out), [layer], names
    return case


def _mha_self(call_kwargs=None, cls="MultiHeadAttention", **kwargs):
    def case(lib):
        x = lib.Input((T, F))
        layer = getattr(lib.layers, cls)(**kwargs)
        return lib.Model(x, layer(x, x, **(call_kwargs or {}))), [layer], ["x"]
    return case


def _mha_embedding(**kwargs):
    def case(lib):
        ids = lib.Input((T,), dtype="int32")
        emb = lib.layers.Embedding(11, F, mask_zero=True)
        layer = lib.layers.MultiHeadAttention(**kwargs)
        h = emb(ids)
        return lib.Model(ids, layer(h, h)), [emb, layer], ["ids"]
    return case


CASES = {
    "SimpleRNN": _rnn("SimpleRNN", units=7),
    "SimpleRNN relu return_sequences go_backwards": _rnn(
        "SimpleRNN", units=7, activation="relu", return_sequences=True, go_backwards=True),
    "SimpleRNN return_state no bias": _rnn("SimpleRNN", units=4, use_bias=False,
                                           return_state=True),
    "LSTM": _rnn("LSTM", units=6),
    "LSTM return_sequences return_state": _rnn("LSTM", units=6, return_sequences=True,
                                               return_state=True),
    "LSTM go_backwards return_sequences return_state": _rnn(
        "LSTM", units=5, go_backwards=True, return_sequences=True, return_state=True),
    "LSTM no bias relu, unit_forget_bias=False": _rnn(
        "LSTM", units=5, use_bias=False, activation="relu", unit_forget_bias=False),
    "GRU reset_after=True return_sequences return_state": _rnn(
        "GRU", units=6, return_sequences=True, return_state=True),
    "GRU reset_after=False return_sequences return_state": _rnn(
        "GRU", units=6, reset_after=False, return_sequences=True, return_state=True),
    "GRU go_backwards": _rnn("GRU", units=5, go_backwards=True),
    "GRU reset_after=False go_backwards no bias": _rnn(
        "GRU", units=5, reset_after=False, go_backwards=True, use_bias=False),
    "SimpleRNN mask return_sequences": _rnn_masked("SimpleRNN", units=4, return_sequences=True),
    "LSTM mask return_sequences return_state": _rnn_masked(
        "LSTM", units=6, return_sequences=True, return_state=True),
    "LSTM mask go_backwards return_sequences return_state": _rnn_masked(
        "LSTM", units=6, go_backwards=True, return_sequences=True, return_state=True),
    "GRU mask reset_after=True return_state": _rnn_masked("GRU", units=5, return_state=True),
    "GRU mask reset_after=False return_sequences": _rnn_masked(
        "GRU", units=5, reset_after=False, return_sequences=True),
    "Embedding(mask_zero) -> LSTM return_sequences": _embedding_then(
        "LSTM", units=4, return_sequences=True),
    "Embedding(mask_zero) -> GRU": _embedding_then("GRU", units=4),
    "Masking -> SimpleRNN return_sequences": _masking_then("SimpleRNN", units=3,
                                                           return_sequences=True),
    "Masking -> LSTM": _masking_then("LSTM", units=3),
    "Bidirectional(LSTM) concat": _bidirectional("LSTM", units=4),
    "Bidirectional(LSTM return_sequences) sum": _bidirectional(
        "LSTM", merge_mode="sum", units=4, return_sequences=True),
    "Bidirectional(GRU return_sequences) ave": _bidirectional(
        "GRU", merge_mode="ave", units=4, return_sequences=True),
    "Bidirectional(SimpleRNN) mul": _bidirectional("SimpleRNN", merge_mode="mul", units=4),
    "Bidirectional(GRU return_sequences) None": _bidirectional(
        "GRU", merge_mode=None, units=3, return_sequences=True),
    "Bidirectional(LSTM return_state) concat": _bidirectional(
        "LSTM", units=3, return_state=True),
    "Bidirectional(LSTM return_sequences) concat, mask": _bidirectional(
        "LSTM", masked=True, units=4, return_sequences=True),
    "Bidirectional(GRU) concat, mask": _bidirectional("GRU", masked=True, units=4),
    "RNN(SimpleRNNCell) return_sequences": _cell_rnn(
        lambda lib: lib.layers.SimpleRNNCell(6), return_sequences=True),
    "RNN(LSTMCell) mask go_backwards return_sequences return_state": _cell_rnn(
        lambda lib: lib.layers.LSTMCell(5), masked=True, go_backwards=True,
        return_sequences=True, return_state=True),
    "RNN(GRUCell reset_after=False) unroll return_state": _cell_rnn(
        lambda lib: lib.layers.GRUCell(4, reset_after=False), unroll=True, return_state=True),
    "RNN([LSTMCell, GRUCell]) mask return_sequences return_state": _cell_rnn(
        lambda lib: [lib.layers.LSTMCell(5), lib.layers.GRUCell(3)], masked=True,
        return_sequences=True, return_state=True),
    "RNN(StackedRNNCells([SimpleRNNCell, LSTMCell])) go_backwards": _cell_rnn(
        lambda lib: lib.layers.StackedRNNCells([lib.layers.SimpleRNNCell(4),
                                                lib.layers.LSTMCell(3, use_bias=False)]),
        go_backwards=True),
    "RNN(user cell) mask return_sequences return_state": _cell_rnn(
        _minimal_cell, masked=True, return_sequences=True, return_state=True),
    "RNN(user cell) go_backwards unroll": _cell_rnn(_minimal_cell, go_backwards=True,
                                                    unroll=True),
    "LSTM unroll mask return_state": _rnn_masked("LSTM", units=4, unroll=True,
                                                 return_state=True),
    "Bidirectional(RNN(GRUCell) return_sequences) concat, mask": _bidirectional(
        "RNN", masked=True, cell_of=lambda lib: lib.layers.GRUCell(3), return_sequences=True),
    "ConvLSTM1D": _conv_lstm("ConvLSTM1D", "x1d", filters=4, kernel_size=3),
    "ConvLSTM1D same dilation return_sequences go_backwards": _conv_lstm(
        "ConvLSTM1D", "x1d", filters=3, kernel_size=2, padding="same", dilation_rate=2,
        return_sequences=True, go_backwards=True),
    "ConvLSTM2D strides return_sequences return_state": _conv_lstm(
        "ConvLSTM2D", "x2d", filters=3, kernel_size=(3, 2), strides=(2, 1),
        return_sequences=True, return_state=True),
    # (Keras 3.15 on JAX fails on a masked ConvLSTM: its mask does not broadcast over the
    # spatial axes; tests/frontend/test_recurrent_layers.py checks graphc's masks)
    "ConvLSTM2D same no bias relu": _conv_lstm(
        "ConvLSTM2D", "x2d", filters=2, kernel_size=3, padding="same", use_bias=False,
        activation="relu", return_sequences=True),
    "ConvLSTM2D unit_forget_bias=False return_state": _conv_lstm(
        "ConvLSTM2D", "x2d", filters=2, kernel_size=2, unit_forget_bias=False,
        return_state=True),
    "ConvLSTM3D same strides return_sequences return_state": _conv_lstm(
        "ConvLSTM3D", "x3d", filters=2, kernel_size=(2, 3, 2), strides=(1, 2, 1),
        padding="same", return_sequences=True, return_state=True),
    "ConvLSTM3D dilation": _conv_lstm("ConvLSTM3D", "x3d", filters=3, kernel_size=2,
                                      dilation_rate=(2, 1, 1)),
    "MultiHeadAttention self": _mha_self(num_heads=2, key_dim=3),
    # scores returned: Keras 3.15's fused attention path (taken otherwise) fails on a value_dim
    # that differs from key_dim
    "MultiHeadAttention cross, key, value_dim, output_shape, scores": _mha(
        key=True, call_kwargs={"return_attention_scores": True}, num_heads=3, key_dim=4,
        value_dim=5, output_shape=6),
    "MultiHeadAttention attention_mask": _mha(attention_mask=True, num_heads=2, key_dim=3),
    "MultiHeadAttention use_causal_mask": _mha_self(
        call_kwargs={"use_causal_mask": True}, num_heads=2, key_dim=4),
    "MultiHeadAttention causal + attention_mask, scores": _mha(
        attention_mask=True,
        call_kwargs={"use_causal_mask": True, "return_attention_scores": True},
        num_heads=2, key_dim=3),
    "MultiHeadAttention no bias, return_attention_scores": _mha_self(
        call_kwargs={"return_attention_scores": True}, num_heads=3, key_dim=2,
        use_bias=False),
    "MultiHeadAttention one head": _mha(num_heads=1, key_dim=5),
    "Embedding(mask_zero) -> MultiHeadAttention": _mha_embedding(num_heads=2, key_dim=3),
    "GroupQueryAttention self": _mha_self(cls="GroupQueryAttention", head_dim=3,
                                          num_query_heads=4, num_key_value_heads=2),
    "GroupQueryAttention cross, key, attention_mask, use_gate": _mha(
        key=True, attention_mask=True, cls="GroupQueryAttention", same_features=True,
        head_dim=4, num_query_heads=3, num_key_value_heads=1, use_gate=True),
    "GroupQueryAttention causal, sliding_window, no bias, scores": _mha_self(
        call_kwargs={"use_causal_mask": True, "return_attention_scores": True},
        cls="GroupQueryAttention", head_dim=2, num_query_heads=4, num_key_value_heads=4,
        use_bias=False, sliding_window=2),
    # stateful: the states carried from batch to batch and from one predict to the next
    "SimpleRNN stateful return_sequences": _stateful("SimpleRNN", units=4,
                                                     return_sequences=True),
    "LSTM stateful, two batches a predict": _stateful("LSTM", data="x_two_batches", units=5),
    "GRU stateful return_state": _stateful("GRU", units=3, return_state=True),
    "RNN(stacked cells) stateful go_backwards": _stateful(
        "RNN", cell_of=lambda lib: [lib.layers.LSTMCell(3), lib.layers.SimpleRNNCell(2)],
        go_backwards=True, reset=False),
    "Bidirectional(LSTM stateful)": _stateful("LSTM", wrap="Bidirectional", units=3,
                                              return_sequences=True),
}


def inputs():
    """The random input arrays every case draws from."""
    rng = np.random.default_rng(0)
    lengths = np.array([T, 3, 1])
    pad = np.arange(T)[None, :] < lengths[:, None]  # right padding: True where a step counts
    mask = pad.copy()
    mask[0, 2] = False  # a hole in the middle of a sequence
    ids = rng.integers(1, 11, (B, T)).astype("int32") * pad
    x = rng.normal(size=(B, T, F)).astype("float32")
    attention_mask = rng.random((B, T, T + 2)) < 0.7
    attention_mask[:, :, 0] = True  # every query sees at least one key
    return {"x": x, "mask": mask, "ids": ids, "x_padded": x * pad[..., None],
            "v": rng.normal(size=(B, T + 2, F + 1)).astype("float32"),
            "k": rng.normal(size=(B, T + 2, F - 1)).astype("float32"),
            "attention_mask": attention_mask,
            "x1d": rng.normal(size=(B, T, 6, 3)).astype("float32"),
            "x2d": rng.normal(size=(B, T, 5, 4, 2)).astype("float32"),
            "x3d": rng.normal(size=(B, T, 3, 5, 4, 2)).astype("float32"),
            "vf": rng.normal(size=(B, T + 2, F)).astype("float32"),
            "kf": rng.normal(size=(B, T + 2, F)).astype("float32"),
            "x_two_batches": rng.normal(size=(2 * B, T, F)).astype("float32")}


# ---- the Keras side (run in the peer interpreter) ---------------------------------------------
def peer_main(in_path, out_path, only):
    import jax
    import keras
    keras.utils.set_random_seed(0)
    with np.load(in_path) as f:
        data = {k: f[k] for k in f.files}
    result, rng = {}, np.random.default_rng(1)
    for name, case in CASES.items():
        if only and only not in name:
            continue
        try:
            model, layers, names = case(keras)
        except Exception as e:
            result[name] = {"error": f"{type(e).__name__}: {e}"[:300]}
            continue
        for layer in layers:  # nonzero biases too, so that every weight matters
            layer.set_weights([np.asarray(w) + rng.normal(0, 0.2, w.shape).astype("float32")
                               for w in layer.get_weights()])
        outs = outputs(model, [data[n] for n in names])
        weights = [[np.asarray(w) for w in layer.get_weights()] for layer in layers]
        result[name] = {"outputs": outs, "weights": weights}
    arrays = {}
    for i, (name, r) in enumerate(result.items()):
        for j, o in enumerate(r.get("outputs", [])):
            arrays[f"c{i}_out{j}"] = o
        for li, ws in enumerate(r.get("weights", [])):
            for wi, w in enumerate(ws):
                arrays[f"c{i}_l{li}_w{wi}"] = w
    np.savez(out_path, **arrays)
    print(json.dumps({"cases": list(result),
                      "errors": {k: r["error"] for k, r in result.items() if "error" in r},
                      "version": f"keras {keras.__version__} on jax {jax.__version__}"}))


# ---- the graphc side --------------------------------------------------------------------------
def main(device, only, tolerance):
    data = inputs()

    def run_case(peer, theirs, i, name):
        import graphc.frontend as gk
        model, layers, names = CASES[name](gk)
        for li, layer in enumerate(layers):
            layer.set_weights([theirs[f"c{i}_l{li}_w{wi}"] for wi in range(len(layer.weights))])
        if device:
            model.compile(optimizer="sgd", loss="mse", device=device)
        return outputs(model, [data[n] for n in names])
    return run("keras_layer_parity", __file__, data, only, tolerance, run_case,
               device=device or "default")


if __name__ == "__main__":
    script_main(__doc__, peer_main, main, device=True)
