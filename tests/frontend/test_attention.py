"""MultiHeadAttention against a numpy reference written from Keras 3's einsums (the Keras
parity itself is benchmarks/keras_layer_parity.py), its weights, masks, saving and training."""
import numpy as np
import pytest

import graphc as gc
import graphc.frontend as gk
from graphc.frontend.layers.base import mask_of

L = gk.layers
rng = np.random.default_rng(5)


def ref_mha(q, v, k, weights, heads, key_dim, mask=None, use_bias=True):
    """Keras 3's MultiHeadAttention: projections with (dim, heads, size) kernels, scores
    scaled by 1/sqrt(key_dim), masked scores -1e9, softmax over keys, output kernel
    (heads, value_dim, out). Returns (output, scores (B, heads, Tq, Tk))."""
    if use_bias:
        wq, bq, wk, bk, wv, bv, wo, bo = weights
    else:
        (wq, wk, wv, wo), bq = weights, None
    qp = np.einsum("abc,cde->abde", q, wq) + (bq if use_bias else 0)
    kp = np.einsum("abc,cde->abde", k, wk) + (bk if use_bias else 0)
    vp = np.einsum("abc,cde->abde", v, wv) + (bv if use_bias else 0)
    qp = qp / np.sqrt(key_dim)
    scores = np.einsum("aecd,abcd->acbe", kp, qp)
    if mask is not None:
        scores = np.where(mask[:, None], scores, -1e9)
    scores = np.exp(scores - scores.max(-1, keepdims=True))
    scores /= scores.sum(-1, keepdims=True)
    ctx = np.einsum("acbe,aecd->abcd", scores, vp)
    out = np.einsum("abcd,cde->abe", ctx, wo) + (bo if use_bias else 0)
    return out, scores


def random_weights(layer):
    return [rng.normal(0, 0.5, tuple(w.shape)).astype("float32") for w in layer.weights]


@pytest.mark.parametrize("heads,key_dim,value_dim,output_shape,use_bias", [
    (1, 3, None, None, True), (3, 2, 5, 7, True), (2, 4, None, None, False)])
@pytest.mark.parametrize("with_key", [False, True])
def test_mha_matches_numpy_reference(heads, key_dim, value_dim, output_shape, use_bias,
                                     with_key):
    batch, tq, tk, dq, dv, dk = 3, 5, 6, 4, 7, 3
    q_in, v_in = gk.Input((tq, dq)), gk.Input((tk, dv))
    k_in = gk.Input((tk, dk)) if with_key else None
    m_in = gk.Input((tq, tk), dtype="bool")
    mha = L.MultiHeadAttention(heads, key_dim, value_dim=value_dim, output_shape=output_shape,
                               use_bias=use_bias)
    out, scores = mha(q_in, v_in, key=k_in, attention_mask=m_in, return_attention_scores=True)
    inputs = [q_in, v_in] + ([k_in] if with_key else []) + [m_in]
    model = gk.Model(inputs, [out, scores])
    weights = random_weights(mha)
    mha.set_weights(weights)
    q = rng.normal(size=(batch, tq, dq)).astype("float32")
    v = rng.normal(size=(batch, tk, dv)).astype("float32")
    k = rng.normal(size=(batch, tk, dk)).astype("float32") if with_key else v
    mask = rng.random((batch, tq, tk)) < 0.6
    mask[..., 2] = True
    feeds = [q, v] + ([k] if with_key else []) + [mask]
    got_out, got_scores = model.predict(feeds, verbose=0)
    exp_out, exp_scores = ref_mha(q, v, k, weights, heads, key_dim, mask, use_bias)
    np.testing.assert_allclose(got_out, exp_out, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got_scores, exp_scores, rtol=1e-5, atol=1e-6)
    assert got_out.shape == (batch, tq, output_shape or dq)


def test_weights_have_keras_shapes_and_order():
    mha = L.MultiHeadAttention(num_heads=2, key_dim=3, value_dim=5)
    mha(gk.Input((4, 6)), gk.Input((9, 7)))
    names = [w.name.split("/", 1)[1] for w in mha.weights]
    assert names == ["query/kernel", "query/bias", "key/kernel", "key/bias", "value/kernel",
                     "value/bias", "attention_output/kernel", "attention_output/bias"]
    assert [tuple(w.shape) for w in mha.weights] == [
        (6, 2, 3), (2, 3), (7, 2, 3), (2, 3), (7, 2, 5), (2, 5), (2, 5, 6), (6,)]


def test_causal_and_implicit_masks_combine():
    batch, steps, vocab = 2, 6, 9
    ids = gk.Input((steps,), dtype="int32")
    emb = L.Embedding(vocab, 4, mask_zero=True)
    h = emb(ids)
    mha = L.MultiHeadAttention(2, 3)
    out, scores = mha(h, h, use_causal_mask=True, return_attention_scores=True)
    assert mask_of(out) is not None  # the query's mask goes on, as in Keras
    model = gk.Model(ids, [out, scores])
    x = rng.integers(1, vocab, (batch, steps)).astype("int32")
    x[1, 4:] = 0
    got_out, got_scores = model.predict(x, verbose=0)
    table = emb.get_weights()[0]
    present = x != 0
    mask = np.tril(np.ones((steps, steps), bool))[None] & present[:, :, None] \
        & present[:, None, :]
    exp_out, exp_scores = ref_mha(table[x], table[x], table[x], mha.get_weights(), 2, 3, mask)
    np.testing.assert_allclose(got_out, exp_out, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got_scores, exp_scores, rtol=1e-5, atol=1e-6)
    assert np.all(got_scores[1, :, :4, 4:] == 0)  # padding is never attended to
    assert np.all(np.triu(got_scores[0, 0], 1) == 0)  # nor the future


def test_model_with_attention_saves_loads_and_trains(tmp_path):
    steps = 5
    x_in, m_in = gk.Input((steps, 3)), gk.Input((steps, steps), dtype="bool")
    h = L.Dense(8)(x_in)
    h = L.LayerNormalization()(
        L.Add()([h, L.MultiHeadAttention(2, 4, dropout=0.1)(h, h, attention_mask=m_in,
                                                            use_causal_mask=True)]))
    out = L.Dense(1)(L.Flatten()(h))
    model = gk.Model([x_in, m_in], out)
    model.compile(optimizer=gk.optimizers.Adam(0.01), loss="mse")
    x = rng.normal(size=(48, steps, 3)).astype("float32")
    mask = np.ones((48, steps, steps), bool)
    y = x[:, :, 0].sum(axis=1, keepdims=True)
    first = model.evaluate([x, mask], y, verbose=0)
    model.fit([x, mask], y, batch_size=16, epochs=20, verbose=0)
    assert model.evaluate([x, mask], y, verbose=0) < 0.5 * first
    before = model.predict([x, mask], verbose=0)
    model.save(tmp_path / "att.gck")
    loaded = gk.load_model(tmp_path / "att.gck")
    np.testing.assert_allclose(loaded.predict([x, mask], verbose=0), before, rtol=1e-5,
                               atol=1e-6)
    mha = [layer for layer in loaded.layers if isinstance(layer, L.MultiHeadAttention)][0]
    assert (mha.num_heads, mha.key_dim, mha.dropout) == (2, 4, 0.1)


def test_bad_arguments_are_graphc_errors():
    with pytest.raises(gc.GraphcError, match="num_heads"):
        L.MultiHeadAttention(0, 3)
    with pytest.raises(gc.GraphcError, match="attention_axes"):
        L.MultiHeadAttention(2, 3, attention_axes=(1, 2))
    mha = L.MultiHeadAttention(2, 3)
    x = gk.Input((None, 4))
    with pytest.raises(gc.GraphcError, match="use_causal_mask"):
        mha(x, x, use_causal_mask=True)
    with pytest.raises(gc.GraphcError, match="mha\\(query, value"):
        L.MultiHeadAttention(2, 3)(x)
