"""GroupQueryAttention against a numpy version of Keras's computation (its weights in Keras's
shapes and order, key and value heads repeated per query group, gate, masks, sliding window,
dropout only in training); keras_layer_parity.py compares it with Keras 3 itself."""
import numpy as np
import pytest

import graphc as gc
import graphc.frontend as gk

L = gk.layers
rng = np.random.default_rng(71)
B, TQ, TK, F = 3, 5, 7, 6


def _np_gqa(weights, q, v, k, mask, heads, kv, use_gate, use_bias, window=None):
    w = list(weights)

    def dense(x, n):
        kernel = w.pop(0)
        out = np.einsum("btm,muh->btuh", x, kernel)
        return out + w.pop(0) if use_bias else out
    query, key = dense(q, heads), dense(k, kv)
    gate = 1 / (1 + np.exp(-dense(q, heads))) if use_gate else 1.0
    value = dense(v, kv)
    key, value = (np.repeat(t, heads // kv, axis=2) for t in (key, value))
    scores = np.einsum("bquh,bkuh->buqk", query / np.sqrt(query.shape[-1]), key)
    if window is not None:
        band = np.abs(np.arange(q.shape[1])[:, None] - np.arange(k.shape[1])[None]) < window
        mask = band[None] if mask is None else mask & band
    if mask is not None:
        scores = np.where(mask[:, None], scores, -1e9)
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    context = np.einsum("buqk,bkuh->bquh", probs, value) * gate
    out = np.einsum("bquh,uhm->bqm", context, w.pop(0))
    return (out + w.pop(0) if use_bias else out), probs


@pytest.mark.parametrize("heads,kv,use_gate,use_bias", [(4, 2, False, True), (6, 1, True, True),
                                                        (3, 3, True, False)])
def test_matches_numpy_with_keras_weights(heads, kv, use_gate, use_bias):
    layer = L.GroupQueryAttention(head_dim=3, num_query_heads=heads, num_key_value_heads=kv,
                                  use_gate=use_gate, use_bias=use_bias)
    q_in, v_in, k_in = gk.Input((TQ, F)), gk.Input((TK, F)), gk.Input((TK, F))
    m_in = gk.Input((TQ, TK), dtype="bool")
    out, scores = layer(q_in, v_in, key=k_in, attention_mask=m_in, return_attention_scores=True)
    model = gk.Model([q_in, v_in, k_in, m_in], [out, scores])
    names = ["query", "key"] + (["gate"] if use_gate else []) + ["value", "attention_output"]
    parts = ["kernel", "bias"] if use_bias else ["kernel"]
    assert [w.name.split("/")[-2] + "/" + w.name.split("/")[-1] for w in layer.weights] == \
        [f"{n}/{p}" for n in names for p in parts]
    shapes = {"query": (F, heads, 3), "key": (F, kv, 3), "gate": (F, heads, 3),
              "value": (F, kv, 3), "attention_output": (heads, 3, F)}
    assert [tuple(w.shape) for w in layer.get_weights()[::len(parts)]] == \
        [shapes[n] for n in names]
    weights = [rng.normal(size=w.shape).astype("float32") for w in layer.get_weights()]
    layer.set_weights(weights)
    q, v, k = (rng.normal(size=(B, t, F)).astype("float32") for t in (TQ, TK, TK))
    mask = rng.random((B, TQ, TK)) < 0.6
    mask[:, :, 2] = True
    got_out, got_scores = model.predict([q, v, k, mask], verbose=0)
    want_out, want_scores = _np_gqa(weights, q, v, k, mask, heads, kv, use_gate, use_bias)
    np.testing.assert_allclose(got_scores, want_scores, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got_out, want_out, rtol=1e-4, atol=1e-4)


def test_causal_sliding_window_self_attention_and_dropout():
    layer = L.GroupQueryAttention(2, 4, 2, dropout=0.5, sliding_window=2, seed=3)
    x_in = gk.Input((TQ, F))
    model = gk.Model(x_in, layer(x_in, x_in, use_causal_mask=True))
    x = rng.normal(size=(B, TQ, F)).astype("float32")
    causal = np.tril(np.ones((TQ, TQ), bool))[None].repeat(B, 0)
    want, _ = _np_gqa(layer.get_weights(), x, x, x, causal, 4, 2, False, True, window=2)
    np.testing.assert_allclose(model.predict(x, verbose=0), want, rtol=1e-4, atol=1e-5)
    # dropout acts in training only
    inp = gc.placeholder(gc.float32, (None, TQ, F))
    trained = gc.function([inp], layer(inp, inp, use_causal_mask=True, training=True))(x)
    assert not np.allclose(trained, want, atol=1e-3)


def test_arguments_and_config():
    for make in (lambda: L.GroupQueryAttention(2, 4, 3), lambda: L.GroupQueryAttention(2, 4, 0),
                 lambda: L.GroupQueryAttention(2, 4, 2, sliding_window=0),
                 lambda: L.GroupQueryAttention(2, 4, 2, dropout=0.1, flash_attention=True)):
        with pytest.raises(gc.GraphcError):
            make()
    layer = L.GroupQueryAttention(2, 4, 2)
    with pytest.raises(gc.GraphcError):
        layer(gk.Input((TQ, F)), gk.Input((TK, F + 1)))
    config = L.GroupQueryAttention(3, 6, 2, use_gate=True, sliding_window=4).get_config()
    assert (config["head_dim"], config["num_query_heads"], config["num_key_value_heads"],
            config["use_gate"], config["sliding_window"]) == (3, 6, 2, True, 4)
    again = L.GroupQueryAttention.from_config(config)
    assert again.num_key_value_heads == 2 and again.use_gate
    assert L.GroupQueryAttention is L.GroupedQueryAttention
