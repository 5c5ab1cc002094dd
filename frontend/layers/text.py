"""The preprocessing layers that work on strings or hash values: Hashing, StringLookup and
TextVectorization. They run on the host, on numpy arrays and lists, outside the graph (as in
Keras, where they run in tf.data): call them on the data before fit/predict. Hashes are
FarmHash Fingerprint64 of the values' text (SipHash-2-4 with a salt), the same bins as
Keras's."""
import re
from functools import partial

import numpy as np

from graphc.errors import ArgumentError, GraphcError
from graphc.ir.graph import Tensor

from ..fingerprint import hash_bucket
from ..siphash import strong_hash_bucket
from .base import Layer

# what Keras's "strip_punctuation" removes
PUNCTUATION = re.compile(r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']')
ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
OUTPUT_MODES = ("int", "one_hot", "multi_hot", "count", "tf_idf")


def encode(indices, depth, output_mode, idf_weights=None):
    """Integer indices as Keras's output modes, in numpy: "int" (int64), "one_hot" (a
    trailing axis of size 1 replaced), "multi_hot", "count" and "tf_idf" (over the last
    axis; a rank-1 input is one sample)."""
    indices = np.asarray(indices, np.int64)
    if output_mode == "int":
        return indices
    if indices.ndim == 0:
        indices = indices[None]
    if output_mode == "one_hot":
        if indices.ndim > 1 and indices.shape[-1] == 1:
            indices = indices[..., 0]
    hot = (indices[..., None] == np.arange(depth)).astype(np.float32)  # -1 (dropped): none
    if output_mode == "one_hot":
        return hot
    counts = hot.sum(axis=-2)
    if output_mode == "multi_hot":
        return np.minimum(counts, 1.0)
    if output_mode == "tf_idf":
        return counts * np.asarray(idf_weights, np.float32)
    return counts


class HostLayer(Layer):
    """A layer that maps numpy data to numpy data on the host; graph tensors are refused."""

    def __call__(self, inputs, **kwargs):
        if isinstance(inputs, Tensor):
            raise GraphcError(f"{type(self).__name__} '{self.name}' runs on the host, on numpy "
                              "arrays or lists (as Keras runs it in tf.data): apply it to the "
                              "data before fit/predict, not to a graph tensor")
        return self.call(inputs, **kwargs)


def _texts(values):
    """Values as an array of Python strings (bytes decoded as UTF-8)."""
    arr = np.asarray(values, dtype=object)
    return np.vectorize(lambda v: v.decode("utf-8") if isinstance(v, bytes) else str(v),
                        otypes=[object])(arr) if arr.size else arr


class Hashing(HostLayer):
    """Values to num_bins hash bins: FarmHash Fingerprint64 of each value's text (integers
    in decimal, floats truncated to integers first) modulo the bins, as Keras's
    tf.strings.to_hash_bucket_fast; with mask_value, that value goes to bin 0 and the others
    to 1 + hash mod (num_bins - 1). With a salt, an int k or a pair (k0, k1) (an int is
    (k, k)), the hash is SipHash-2-4 keyed by it, as tf.strings.to_hash_bucket_strong."""

    def __init__(self, num_bins, mask_value=None, salt=None, output_mode="int", sparse=False,
                 **kwargs):
        super().__init__(**kwargs)
        if sparse:
            raise GraphcError("Hashing: sparse outputs are not supported")
        self.salt = _salt_key(salt, self.name)
        if output_mode not in OUTPUT_MODES[:4]:
            raise GraphcError(f"Hashing: output_mode must be int, one_hot, multi_hot or count, "
                              f"got {output_mode!r}")
        self.num_bins, self.mask_value, self.output_mode = int(num_bins), mask_value, output_mode

    def call(self, inputs):
        values = np.asarray(inputs)
        if values.dtype.kind == "f":
            values = values.astype(np.int64)
        bins = self.num_bins - (self.mask_value is not None and self.num_bins > 1)
        texts = _texts(values)
        bucket = hash_bucket if self.salt is None else partial(strong_hash_bucket, key=self.salt)
        hashed = np.vectorize(lambda t: bucket(t, bins), otypes=[np.int64])(texts) \
            if texts.size else np.zeros(texts.shape, np.int64)
        if bins != self.num_bins:
            masked = texts == str(self.mask_value.decode() if isinstance(self.mask_value, bytes)
                                  else self.mask_value)
            hashed = np.where(masked, 0, hashed + 1)
        return encode(hashed, self.num_bins, self.output_mode)

    def get_config(self):
        return {**super().get_config(), "num_bins": self.num_bins, "salt": self.salt,
                "mask_value": self.mask_value, "output_mode": self.output_mode}


def _salt_key(salt, name):
    """Keras's salt as the SipHash key [k0, k1]: None stays None, an int k is [k, k]."""
    if salt is None:
        return None
    if isinstance(salt, (int, np.integer)) and not isinstance(salt, bool):
        return [int(salt)] * 2
    if isinstance(salt, (tuple, list)) and len(salt) == 2 and \
            all(isinstance(k, (int, np.integer)) for k in salt):
        return [int(k) for k in salt]
    raise ArgumentError(f"Hashing '{name}': salt must be an int or a pair of ints, "
                        f"got {salt!r}")


class StringLookup(HostLayer):
    """Strings to vocabulary indices as Keras's StringLookup: the mask token (if any) to 0,
    out-of-vocabulary strings to the num_oov_indices indices after it (by FarmHash when
    there are several), vocabulary[i] to the index after those; invert=True maps indices
    back to strings. The vocabulary is given or learnt by adapt(data) (by decreasing count,
    ties by decreasing string; tf_idf weights log(1 + documents / (1 + document count)))."""

    def __init__(self, max_tokens=None, num_oov_indices=1, mask_token=None,
                 oov_token="[UNK]", vocabulary=None, idf_weights=None, invert=False,
                 output_mode="int", pad_to_max_tokens=False, sparse=False, encoding="utf-8",
                 **kwargs):
        super().__init__(**kwargs)
        if output_mode not in OUTPUT_MODES or sparse or encoding != "utf-8":
            raise GraphcError(f"StringLookup: output_mode must be one of {OUTPUT_MODES} "
                              f"(utf-8, dense), got {output_mode!r}")
        if invert and output_mode != "int":
            raise GraphcError("StringLookup: invert=True needs output_mode='int'")
        self.max_tokens, self.num_oov_indices = max_tokens, int(num_oov_indices)
        self.mask_token, self.oov_token = mask_token, oov_token
        self.invert, self.output_mode = bool(invert), output_mode
        self.pad_to_max_tokens = bool(pad_to_max_tokens)
        self.vocabulary, self.idf_weights = None, None
        if vocabulary is not None:
            self.set_vocabulary(vocabulary, idf_weights)

    def _mask_slot(self):
        """Whether index 0 is the mask's: in "int" mode only; the other modes drop masks."""
        return self.mask_token is not None and self.output_mode == "int"

    def _token_start(self):
        return self._mask_slot() + self.num_oov_indices

    def _special(self):
        return [self.mask_token] * self._mask_slot() + [self.oov_token] * self.num_oov_indices

    def _depth(self):
        return self.max_tokens if self.pad_to_max_tokens and self.max_tokens else \
            self.vocabulary_size()

    def set_vocabulary(self, vocabulary, idf_weights=None):
        vocab = list(_texts(vocabulary).reshape(-1))
        special = self._special()
        padded = vocab[:len(special)] == special
        tokens = vocab[len(special):] if padded else vocab
        if not tokens or len(set(tokens)) != len(tokens) or self.mask_token in tokens:
            raise GraphcError("StringLookup: the vocabulary must be non-empty, without repeated "
                              "terms or the mask token")
        self.vocabulary = tokens
        if self.output_mode == "tf_idf":
            if idf_weights is None:
                raise GraphcError("StringLookup: output_mode='tf_idf' needs idf_weights with a "
                                  "given vocabulary")
            idf = np.asarray(idf_weights, np.float32)
            if len(idf) != len(vocab):
                raise GraphcError(f"StringLookup: {len(idf)} idf_weights for a vocabulary of "
                                  f"{len(vocab)}")
            front = 0 if padded else self._token_start()
            self.idf_weights = self._pad_idf(idf, front, np.average(idf) if front else 0.0)

    def _pad_idf(self, idf, front, front_value):
        back = max(0, self._depth() - front - len(idf)) if self.pad_to_max_tokens else 0
        return np.pad(idf, (front, back), constant_values=(front_value, 0)).astype(np.float32)

    def adapt(self, data, steps=None):
        self._adapt_documents([list(_texts(d).reshape(-1)) for d in _rows(data)])

    def _adapt_documents(self, documents):
        special = {self.mask_token, self.oov_token} - {None}
        counts, doc_counts = {}, {}
        for doc in documents:
            for token in doc:
                counts[token] = counts.get(token, 0) + 1
            for token in set(doc):
                doc_counts[token] = doc_counts.get(token, 0) + 1
        tokens = np.array([t for t in counts if t not in special], dtype=object)
        if not len(tokens):
            raise GraphcError(f"{type(self).__name__}: adapt found no tokens")
        order = np.lexsort((tokens.astype(str), [counts[t] for t in tokens]))[::-1]
        if self.max_tokens:
            order = order[:self.max_tokens - self._token_start()]
        self.vocabulary = list(tokens[order])
        if self.output_mode == "tf_idf":
            df = np.array([doc_counts[t] for t in self.vocabulary], np.float64)
            idf = np.log(1 + len(documents) / (1 + df)).astype(np.float32)
            self.idf_weights = self._pad_idf(idf, self._token_start(), idf.mean())

    def get_vocabulary(self, include_special_tokens=True):
        return (self._special() if include_special_tokens else []) + list(self.vocabulary or [])

    def vocabulary_size(self):
        return len(self.get_vocabulary())

    def lookup(self, tokens):
        """Indices of the strings `tokens` (an array of Python strings), before encoding."""
        index = {t: i + self._token_start() for i, t in enumerate(self.vocabulary)}
        start = int(self._mask_slot())

        def one(t):
            if self.mask_token is not None and t == self.mask_token:
                return 0 if start else -1
            if t in index:
                return index[t]
            if self.num_oov_indices == 0:
                raise GraphcError(f"{type(self).__name__} '{self.name}': {t!r} is not in the "
                                  "vocabulary and num_oov_indices=0")
            return start + (hash_bucket(t, self.num_oov_indices)
                            if self.num_oov_indices > 1 else 0)
        return np.vectorize(one, otypes=[np.int64])(tokens) if tokens.size else \
            np.zeros(tokens.shape, np.int64)

    def call(self, inputs):
        if self.vocabulary is None:
            raise GraphcError(f"{type(self).__name__} '{self.name}' has no vocabulary: pass one "
                              "or call adapt(data) first")
        if self.invert:
            words = np.array(self.get_vocabulary(), dtype=object)
            idx = np.asarray(inputs, np.int64)
            return np.where((idx >= 0) & (idx < len(words)),
                            words[np.clip(idx, 0, len(words) - 1)], self.oov_token)
        return encode(self.lookup(_texts(inputs)), self._depth(), self.output_mode,
                      self.idf_weights)

    def get_config(self):
        return {**super().get_config(), "max_tokens": self.max_tokens,
                "num_oov_indices": self.num_oov_indices, "mask_token": self.mask_token,
                "oov_token": self.oov_token, "vocabulary": self.vocabulary,
                "idf_weights": None if self.idf_weights is None else self.idf_weights.tolist(),
                "invert": self.invert, "output_mode": self.output_mode,
                "pad_to_max_tokens": self.pad_to_max_tokens}


def _rows(data):
    """The documents of adapt's data: the rows of an array or list (one if it is a string)."""
    arr = np.asarray(data, dtype=object)
    return [arr] if arr.ndim == 0 else list(arr)


def _ngrams(tokens, widths):
    """tf.strings.ngrams with separator " ": all the n-grams of each width, width by width."""
    return [" ".join(tokens[i:i + n]) for n in widths for i in range(len(tokens) - n + 1)]


class TextVectorization(StringLookup):
    """Strings to token indices or token counts, as Keras's TextVectorization: standardize
    ("lower_and_strip_punctuation", "lower", "strip_punctuation", None or a function of one
    string; lowering is ASCII's, as TensorFlow's), split ("whitespace", "character", None or a
    function of one string), ngrams (n: all of 1..n; a tuple: those), then a StringLookup with
    mask "" and one OOV index "[UNK]". output_mode "int" pads with 0 to the longest sequence
    or to output_sequence_length (truncating); "multi_hot", "count", "tf_idf" count per
    string."""

    def __init__(self, max_tokens=None, standardize="lower_and_strip_punctuation",
                 split="whitespace", ngrams=None, output_mode="int", output_sequence_length=None,
                 pad_to_max_tokens=False, vocabulary=None, idf_weights=None, sparse=False,
                 ragged=False, encoding="utf-8", **kwargs):
        if output_mode == "one_hot" or ragged:
            raise GraphcError("TextVectorization: output_mode must be int, multi_hot, count or "
                              "tf_idf (dense)")
        if output_sequence_length is not None and output_mode != "int":
            raise GraphcError("TextVectorization: output_sequence_length needs output_mode='int'")
        if not (ngrams is None or isinstance(ngrams, int) or isinstance(ngrams, tuple)
                and all(isinstance(n, int) for n in ngrams)):
            raise GraphcError(f"TextVectorization: ngrams must be None, an int or a tuple of "
                              f"ints, got {ngrams!r}")
        self.standardize, self.split, self.ngrams = standardize, split, ngrams
        self.output_sequence_length = output_sequence_length
        super().__init__(max_tokens=max_tokens, mask_token="", output_mode=output_mode,
                         pad_to_max_tokens=pad_to_max_tokens, vocabulary=vocabulary,
                         idf_weights=idf_weights, sparse=sparse, encoding=encoding, **kwargs)

    def _standardize(self, text):
        if self.standardize in ("lower", "lower_and_strip_punctuation"):
            text = text.translate(ASCII_LOWER)
        if self.standardize in ("strip_punctuation", "lower_and_strip_punctuation"):
            text = PUNCTUATION.sub("", text)
        return self.standardize(text) if callable(self.standardize) else text

    def _tokens(self, text):
        text = self._standardize(text)
        if self.split is None:
            tokens = [text]
        elif self.split == "whitespace":
            tokens = [t.decode("utf-8") for t in text.encode("utf-8").split()]
        elif self.split == "character":
            tokens = list(text)
        else:
            tokens = list(self.split(text))
        if self.ngrams is not None:
            widths = range(1, self.ngrams + 1) if isinstance(self.ngrams, int) else self.ngrams
            tokens = _ngrams(tokens, widths)
        return tokens

    def _documents(self, data):
        texts = _texts(data)
        if texts.ndim == 2 and texts.shape[-1] == 1:
            texts = texts[:, 0]
        if texts.ndim > 1:
            raise GraphcError(f"TextVectorization: takes strings of shape (batch,) or (batch, "
                              f"1), got {texts.shape}")
        return [self._tokens(t) for t in texts.reshape(-1)], texts.ndim == 0

    def adapt(self, data, steps=None):
        self._adapt_documents(self._documents(data)[0])

    def call(self, inputs):
        if self.vocabulary is None:
            raise GraphcError(f"TextVectorization '{self.name}' has no vocabulary: pass one or "
                              "call adapt(data) first")
        docs, scalar = self._documents(inputs)
        if self.output_mode == "int":
            length = self.output_sequence_length or max([len(d) for d in docs] + [0])
            out = np.zeros((len(docs), length), np.int64)
            for row, doc in enumerate(docs):
                ids = self.lookup(np.array(doc[:length], dtype=object))
                out[row, :len(ids)] = ids
        else:
            out = np.stack([encode(self.lookup(np.array(d, dtype=object)), self._depth(),
                                   self.output_mode, self.idf_weights) for d in docs])
        return out[0] if scalar else out

    def get_config(self):
        config = super().get_config()
        for key in ("num_oov_indices", "mask_token", "oov_token", "invert"):
            config.pop(key)
        return {**config, "standardize": self.standardize, "split": self.split,
                "ngrams": self.ngrams, "output_sequence_length": self.output_sequence_length}


LAYERS = (Hashing, StringLookup, TextVectorization)
