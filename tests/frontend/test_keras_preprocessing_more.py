"""Resizing and gk.ops.image.resize against numpy references written independently of the
code under test (bilinear as a normalized triangle-kernel weight matrix, as JAX computes it)."""
import numpy as np
import pytest

import graphc as gc
import graphc.frontend as gk
from graphc.errors import GraphcError

L = gk.layers
rng = np.random.default_rng(0)


def _predict(layer, x):
    inputs = gk.Input(x.shape[1:], dtype=str(x.dtype))
    return gk.Model(inputs, layer(inputs)).predict(x, verbose=0)


def _bilinear_matrix(n_in, n_out):
    """(n_out, n_in) weights: triangle kernel at half-pixel sample points, rows normalized."""
    sample = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
    w = np.maximum(0.0, 1.0 - np.abs(sample[:, None] - np.arange(n_in)[None, :]))
    return w / w.sum(axis=1, keepdims=True)


def _ref_resize(x, th, tw, interpolation):
    h, w = x.shape[1:3]
    if interpolation == "nearest":
        rows = np.floor((np.arange(th) + 0.5) * h / th).astype(int)
        cols = np.floor((np.arange(tw) + 0.5) * w / tw).astype(int)
        return x[:, rows][:, :, cols]
    x = np.einsum("oh,bhwc->bowc", _bilinear_matrix(h, th), x.astype(np.float64))
    return np.einsum("ow,bhwc->bhoc", _bilinear_matrix(w, tw), x)


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
@pytest.mark.parametrize("size", [(11, 3), (2, 9), (5, 7), (1, 1)])
def test_resizing_matches_numpy(interpolation, size):
    x = rng.normal(size=(2, 5, 7, 3)).astype("float32")
    y = _predict(L.Resizing(*size, interpolation=interpolation), x)
    assert y.shape == (2,) + size + (3,)
    np.testing.assert_allclose(y, _ref_resize(x, *size, interpolation), rtol=1e-5, atol=1e-6)


def _ref_center_crop(x, th, tw):
    h, w = x.shape[1:3]
    if h >= th and w >= tw:
        return x[:, (h - th) // 2:(h - th) // 2 + th, (w - tw) // 2:(w - tw) // 2 + tw]
    # Keras's smart_resize: the largest central window of the target's aspect ratio, resized
    rows, cols = max(min(h, w * th // tw), 1), max(min(w, h * tw // th), 1)
    top, left = (h - rows) // 2, (w - cols) // 2
    return _ref_resize(x[:, top:top + rows, left:left + cols], th, tw, "bilinear")


@pytest.mark.parametrize("size", [(3, 7), (4, 4), (5, 7), (9, 2), (6, 9), (13, 11), (1, 8)])
def test_center_crop_matches_numpy_also_on_smaller_images(size):
    x = rng.normal(size=(3, 5, 7, 2)).astype("float32")
    x[0, 2, 3, 1] = -0.0
    y = _predict(L.CenterCrop(*size), x)
    assert y.shape == (3,) + size + (2,) and y.dtype == np.float32
    np.testing.assert_allclose(y, _ref_center_crop(x, *size), rtol=1e-5, atol=1e-6)


def test_center_crop_casts_integer_images_and_needs_known_sizes():
    pixels = rng.integers(0, 256, (2, 4, 6, 3)).astype("uint8")
    y = _predict(L.CenterCrop(8, 3), pixels)
    np.testing.assert_allclose(y, _ref_center_crop(pixels.astype("float32"), 8, 3),
                               rtol=1e-5, atol=1e-4)
    with pytest.raises(GraphcError, match="known height"):
        L.CenterCrop(2, 2)(gk.Input((None, None, 3)))


def test_resize_default_is_bilinear_and_casts_integers():
    x = rng.integers(0, 255, size=(1, 3, 4, 2)).astype("int32")
    layer = L.Resizing(6, 8)
    assert layer.get_config()["interpolation"] == "bilinear"
    y = _predict(layer, x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, _ref_resize(x, 6, 8, "bilinear"), rtol=1e-6)


def test_resize_keeps_inf_and_nan_where_they_fall():
    x = np.zeros((1, 2, 2, 1), np.float32)
    x[0, 0, 0, 0] = np.inf
    x[0, 1, 1, 0] = np.nan
    y = _predict(L.Resizing(4, 4, interpolation="nearest"), x)[0, ..., 0]
    assert np.isinf(y[:2, :2]).all() and np.isnan(y[2:, 2:]).all() and (y[:2, 2:] == 0).all()


def test_crop_and_pad_to_aspect_ratio():
    x = rng.normal(size=(2, 6, 9, 1)).astype("float32")
    y = _predict(L.Resizing(4, 4, crop_to_aspect_ratio=True), x)
    np.testing.assert_allclose(y, _ref_resize(x[:, :, 1:7], 4, 4, "bilinear"), rtol=1e-5,
                               atol=1e-6)
    y = _predict(L.Resizing(4, 4, pad_to_aspect_ratio=True, fill_value=2.0), x)
    padded = np.pad(x, [(0, 0), (1, 1), (0, 0), (0, 0)], constant_values=2.0)
    np.testing.assert_allclose(y, _ref_resize(padded, 4, 4, "bilinear"), rtol=1e-5, atol=1e-6)


def test_ops_image_resize_one_image_and_refusals():
    x = rng.normal(size=(5, 3, 2)).astype("float32")
    image = gc.placeholder(gc.float32, shape=(5, 3, 2))
    out = gk.ops.image.resize(image, (7, 4), interpolation="nearest")
    assert tuple(out.shape) == (7, 4, 2)
    np.testing.assert_array_equal(gc.function([image], out)(x),
                                  _ref_resize(x[None], 7, 4, "nearest")[0])
    with pytest.raises(GraphcError):
        gk.ops.image.resize(gk.Input((8, 8, 1)), (3, 3), interpolation="lanczos5")
    with pytest.raises(GraphcError):
        gk.ops.image.resize(gk.Input((8, 8, 1)), (3, 3), antialias=True)
    with pytest.raises(GraphcError):
        gk.ops.image.resize(gk.Input((8, 8, 1)), (3, 3), crop_to_aspect_ratio=True,
                            pad_to_aspect_ratio=True)


# the host layers on strings and hash values

def test_hashing_matches_keras_documented_bins():
    # the outputs printed in Keras's Hashing docstring (FarmHash64, with and without a mask)
    layer = L.Hashing(num_bins=3)
    np.testing.assert_array_equal(layer([["A"], ["B"], ["C"], ["D"], ["E"]]),
                                  [[1], [0], [1], [1], [2]])
    layer = L.Hashing(num_bins=3, mask_value="")
    np.testing.assert_array_equal(layer([["A"], ["B"], [""], ["C"], ["D"]]),
                                  [[1], [1], [0], [2], [2]])


def test_hashing_of_numbers_is_the_hash_of_their_decimal_text():
    ints = rng.integers(-10 ** 12, 10 ** 12, (3, 5)).astype("int64")
    layer = L.Hashing(num_bins=97)
    np.testing.assert_array_equal(layer(ints), layer(ints.astype(str)))
    floats = np.array([1.9, -2.7, -0.0, 0.4], "float32")
    np.testing.assert_array_equal(layer(floats), layer(np.array(["1", "-2", "0", "0"])))
    counts = L.Hashing(num_bins=5, output_mode="count")(ints)
    bins = layer.__class__(num_bins=5)(ints)
    np.testing.assert_array_equal(counts, [np.bincount(r, minlength=5) for r in bins])
    assert L.Hashing(num_bins=4)(np.zeros((2, 0), "int64")).shape == (2, 0)


def test_hashing_salt_matches_keras_documented_bins():
    # Keras's docstring: SipHash64 under salt [133, 137], and an int salt k as [k, k]
    letters = [["A"], ["B"], ["C"], ["D"], ["E"]]
    np.testing.assert_array_equal(L.Hashing(num_bins=3, salt=[133, 137])(letters),
                                  [[1], [2], [1], [0], [2]])
    np.testing.assert_array_equal(L.Hashing(num_bins=3, salt=133)(letters),
                                  [[0], [0], [2], [1], [0]])
    assert L.Hashing(num_bins=3, salt=133).get_config()["salt"] == [133, 133]
    with pytest.raises(ValueError, match="salt"):
        L.Hashing(num_bins=3, salt=[1, 2, 3])


def test_siphash_reference_vectors():
    from graphc.frontend.siphash import siphash64
    # SipHash-2-4's published vectors: key bytes 0..15, message bytes 0..n-1
    key = (int.from_bytes(bytes(range(8)), "little"), int.from_bytes(bytes(range(8, 16)),
                                                                     "little"))
    vectors = {0: 0x726fdb47dd0e0e31, 1: 0x74f839c593dc67fd, 7: 0xab0200f58b01d137,
               8: 0x93f5f5799a932462, 15: 0xa129ca6149be45e5, 63: 0x958a324ceb064572}
    for n, expected in vectors.items():
        assert siphash64(key, bytes(range(n))) == expected, n


def test_hashing_salt_of_numbers_masks_and_modes():
    ints = rng.integers(-10 ** 12, 10 ** 12, (4, 7)).astype("int64")
    layer = L.Hashing(num_bins=31, salt=(7, -3))
    bins = layer(ints)
    np.testing.assert_array_equal(bins, layer(ints.astype(str)))
    assert bins.min() >= 0 and bins.max() < 31
    # a negative key word is its two's complement, as TensorFlow's int64 attribute
    np.testing.assert_array_equal(bins, L.Hashing(num_bins=31, salt=(7, 2 ** 64 - 3))(ints))
    assert not np.array_equal(bins, L.Hashing(num_bins=31)(ints))
    masked = L.Hashing(num_bins=32, mask_value=int(ints[0, 0]), salt=(7, -3))(ints)
    from graphc.frontend.siphash import strong_hash_bucket
    expected = [[0 if v == ints[0, 0] else 1 + strong_hash_bucket(str(v), 31, (7, -3))
                 for v in row] for row in ints]
    np.testing.assert_array_equal(masked, expected)
    counts = L.Hashing(num_bins=31, salt=(7, -3), output_mode="count")(ints)
    np.testing.assert_array_equal(counts, [np.bincount(r, minlength=31) for r in bins])
    assert layer(np.zeros((3, 0), "int64")).shape == (3, 0)


def test_fingerprint_lengths_take_every_branch():
    from graphc.frontend.fingerprint import fingerprint64
    # every length class gives a 64-bit value; a one-byte change changes it
    for n in (0, 1, 3, 4, 7, 8, 16, 17, 32, 33, 64, 65, 128, 200):
        data = bytes(range(n))
        h = fingerprint64(data)
        assert 0 <= h < 2 ** 64
        if n:
            assert fingerprint64(data[:-1] + bytes([(data[-1] + 1) % 256])) != h


def _lookup_reference(tokens, vocab, mask=None, oov_slots=1):
    start = (mask is not None) + oov_slots
    table = {t: i + start for i, t in enumerate(vocab)}
    return np.vectorize(lambda t: 0 if t == mask else table.get(t, int(mask is not None)))(
        tokens)


def test_string_lookup_vocabulary_oov_mask_invert():
    vocab = ["b", "a", "ü", "dd"]
    tokens = np.array([["a", "zz", ""], ["dd", "ü", "b"]], dtype=object)
    layer = L.StringLookup(vocabulary=vocab, mask_token="")
    ids = layer(tokens)
    np.testing.assert_array_equal(ids, _lookup_reference(tokens, vocab, mask=""))
    assert layer.get_vocabulary() == ["", "[UNK]"] + vocab
    back = L.StringLookup(vocabulary=vocab, mask_token="", invert=True)(ids)
    np.testing.assert_array_equal(back, [["a", "[UNK]", ""], ["dd", "ü", "b"]])
    counts = L.StringLookup(vocabulary=vocab, output_mode="count")(tokens)
    ref = np.stack([np.bincount(r, minlength=5) for r in _lookup_reference(tokens, vocab)])
    np.testing.assert_array_equal(counts, ref)
    with pytest.raises(GraphcError):
        L.StringLookup(vocabulary=vocab, num_oov_indices=0)(tokens)
    with pytest.raises(GraphcError):
        L.StringLookup(vocabulary=["a", "a"])
    with pytest.raises(GraphcError):
        L.StringLookup(vocabulary=vocab)(gk.Input((3,)))


def test_string_lookup_adapt_orders_by_count_then_string_and_idf():
    docs = np.array([["x", "y", "y"], ["z", "y", "w"], ["x", "q", "q"]], dtype=object)
    layer = L.StringLookup(output_mode="tf_idf")
    layer.adapt(docs)
    # counts: y 3, x 2, q 2, z 1, w 1; ties by decreasing string
    assert layer.get_vocabulary() == ["[UNK]", "y", "x", "q", "z", "w"]
    df = np.array([2, 2, 1, 1, 1])
    idf = np.log(1 + 3 / (1 + df))
    idf = np.concatenate([[idf.mean()], idf])
    tf = np.stack([np.bincount(r, minlength=6) for r in layer.lookup(docs)])
    np.testing.assert_allclose(layer(docs), tf * idf, rtol=1e-6)


def _tokens_reference(text):
    import string
    kept = "".join(c for c in text.lower() if c not in string.punctuation)
    return kept.split()


def test_text_vectorization_int_against_python_tokenizer():
    texts = np.array(["Hello, World! hello", "world... of  WORDS", "", "new words here"])
    layer = L.TextVectorization(output_sequence_length=4)
    layer.adapt(texts[:2])
    vocab = layer.get_vocabulary()
    assert vocab[:2] == ["", "[UNK]"] and vocab[2:4] == ["world", "hello"]
    ids = layer(texts)
    for row, text in zip(ids, texts):
        toks = _tokens_reference(text)[:4]
        ref = [vocab.index(t) if t in vocab else 1 for t in toks]
        np.testing.assert_array_equal(row, ref + [0] * (4 - len(ref)))
    ragged = L.TextVectorization(vocabulary=["of", "words"])(texts)
    assert ragged.shape == (4, 3)


def test_text_vectorization_ngrams_and_multi_hot():
    layer = L.TextVectorization(ngrams=2, output_mode="multi_hot", vocabulary=[
        "a b", "b", "a", "c"])
    out = layer(np.array(["A b a", "c"]))
    # tokens "a b a" -> a, b, a, "a b", "b a"; index 0 is the OOV one
    np.testing.assert_array_equal(out, [[1, 1, 1, 1, 0], [0, 0, 0, 0, 1]])
    with pytest.raises(GraphcError):
        L.TextVectorization(output_mode="count", output_sequence_length=3)
