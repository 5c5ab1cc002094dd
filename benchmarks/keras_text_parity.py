"""Parity with Keras 3 of the host preprocessing layers on strings and hash values: Hashing
(integers, strings, floats, mask_value, salt, output modes), StringLookup and TextVectorization
(given vocabularies and adapt(), mask and OOV tokens, several hashed OOV indices, output
modes int/one_hot/multi_hot/count/tf_idf, standardization, whitespace split, ngrams,
output_sequence_length). Each case applies the layer to the same data with Keras (in another
interpreter, on JAX; these layers use TensorFlow there) and with graphc.frontend and compares
the arrays. One JSON line per case, then a summary line.

Usage:
    GRAPHC_PEER_PYTHON=/work/peervenv/bin/python python benchmarks/keras_text_parity.py \
        [--only SUBSTRING] [--tolerance 1e-5]
"""

import numpy as np

from _parity import peer_run, run, script_main

WORDS = ["the", "cat", "sat", "on", "mat", "a", "dog", "ate", "my", "homework", "zebra",
         "Ünïcode", ""]
TEXTS = ["The cat sat on the mat.", "A dog ate my HOMEWORK!!", "the the the, cat?",
         "  spaced\tout \n words  ", "", "Ünïcode café's 'quotes' (and) [brackets]"]
VOCAB = ["the", "cat", "sat", "on", "mat", "dog"]


def _strings():
    rng = np.random.default_rng(0)
    return np.array(WORDS, dtype=object)[rng.integers(0, len(WORDS), (5, 4))]


def _ints():
    return np.random.default_rng(1).integers(-50, 10 ** 12, (6, 3)).astype("int64")


def _apply(make, data):
    def case(lib):
        return [np.asarray(make(lib.layers)(data()))]
    return case


def _adapted(make, adapt_data, data):
    def case(lib):
        layer = make(lib.layers)
        layer.adapt(adapt_data())
        return [np.asarray(layer(data())), np.asarray(len(layer.get_vocabulary()))]
    return case


def _texts():
    return np.array(TEXTS, dtype=object)


CASES = {
    "Hashing strings": _apply(lambda L: L.Hashing(num_bins=7), _strings),
    "Hashing strings mask_value": _apply(lambda L: L.Hashing(num_bins=5, mask_value=""),
                                         _strings),
    "Hashing integers": _apply(lambda L: L.Hashing(num_bins=1000003), _ints),
    "Hashing integers mask_value": _apply(lambda L: L.Hashing(num_bins=11, mask_value=7),
                                          lambda: np.array([[7, 3], [-2, 7]], "int64")),
    "Hashing floats": _apply(lambda L: L.Hashing(num_bins=13),
                             lambda: np.array([[1.7, -2.5, 0.0, 1e6]], "float32")),
    "Hashing multi_hot": _apply(lambda L: L.Hashing(num_bins=6, output_mode="multi_hot"),
                                _strings),
    "Hashing count": _apply(lambda L: L.Hashing(num_bins=6, output_mode="count"), _ints),
    "Hashing one_hot": _apply(lambda L: L.Hashing(num_bins=4, output_mode="one_hot"),
                              lambda: _strings()[:, :1]),
    # salted: SipHash-2-4 (tf.strings.to_hash_bucket_strong)
    "Hashing strings salt pair": _apply(lambda L: L.Hashing(num_bins=7, salt=[133, 137]),
                                        _strings),
    "Hashing integers salt mask_value": _apply(lambda L: L.Hashing(
        num_bins=1009, salt=2 ** 40 + 5, mask_value=7), _ints),
    "Hashing floats salt count": _apply(lambda L: L.Hashing(
        num_bins=5, salt=(3, 99), output_mode="count"), lambda: _ints().astype("float64") / 7),
    "StringLookup vocabulary": _apply(lambda L: L.StringLookup(vocabulary=VOCAB), _strings),
    "StringLookup mask oov 3": _apply(lambda L: L.StringLookup(
        vocabulary=VOCAB, mask_token="", num_oov_indices=3), _strings),
    "StringLookup multi_hot": _apply(lambda L: L.StringLookup(
        vocabulary=VOCAB, output_mode="multi_hot"), _strings),
    "StringLookup mask dropped in multi_hot": _apply(lambda L: L.StringLookup(
        vocabulary=VOCAB, mask_token="", output_mode="multi_hot"), _strings),
    "StringLookup count pad_to_max_tokens": _apply(lambda L: L.StringLookup(
        vocabulary=VOCAB, output_mode="count", max_tokens=10, pad_to_max_tokens=True),
        _strings),
    "StringLookup one_hot": _apply(lambda L: L.StringLookup(
        vocabulary=VOCAB, output_mode="one_hot"), lambda: _strings()[:, 0]),
    "StringLookup tf_idf given": _apply(lambda L: L.StringLookup(
        vocabulary=VOCAB, output_mode="tf_idf", idf_weights=[0.5, 1, 1.5, 2, 2.5, 3]),
        _strings),
    "StringLookup adapt": _adapted(lambda L: L.StringLookup(), _strings, _strings),
    "StringLookup adapt max_tokens mask": _adapted(lambda L: L.StringLookup(
        max_tokens=5, mask_token="", num_oov_indices=2), _strings, _strings),
    "StringLookup adapt tf_idf": _adapted(lambda L: L.StringLookup(output_mode="tf_idf"),
                                          _strings, _strings),
    "TextVectorization adapt int": _adapted(lambda L: L.TextVectorization(), _texts, _texts),
    "TextVectorization output_sequence_length": _adapted(lambda L: L.TextVectorization(
        max_tokens=8, output_sequence_length=4), _texts, _texts),
    "TextVectorization bigrams multi_hot": _adapted(lambda L: L.TextVectorization(
        ngrams=2, output_mode="multi_hot"), _texts, _texts),
    "TextVectorization ngrams (1, 3) count": _adapted(lambda L: L.TextVectorization(
        ngrams=(1, 3), output_mode="count", standardize="lower"), _texts, _texts),
    "TextVectorization tf_idf": _adapted(lambda L: L.TextVectorization(
        output_mode="tf_idf", max_tokens=12, pad_to_max_tokens=True), _texts, _texts),
    "TextVectorization vocabulary no standardize": _apply(lambda L: L.TextVectorization(
        vocabulary=["The", "cat", "the", "mat."], standardize=None), _texts),
    "TextVectorization column strip_punctuation": _adapted(lambda L: L.TextVectorization(
        standardize="strip_punctuation", output_sequence_length=7),
        lambda: _texts()[:, None], lambda: _texts()[:, None]),
}


def peer_main(in_path, out_path, only):
    peer_run(in_path, out_path, only, list(CASES),
             lambda i, name, data, arrays: CASES[name](__import__("keras")))


def main(only, tolerance):
    def run_case(peer, theirs, i, name):
        import graphc.frontend as gk
        return CASES[name](gk)
    return run("keras_text_parity", __file__, {"unused": np.zeros(1)}, only, tolerance,
               run_case)


if __name__ == "__main__":
    script_main(__doc__, peer_main, main)
