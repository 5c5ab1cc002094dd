"""Preprocessing layers on numbers and images: Normalization and Discretization (with adapt),
CategoryEncoding, IntegerLookup, CenterCrop, Resizing, and the random augmentations RandomFlip,
RandomContrast and RandomBrightness (active in training only, seeded; the identity at
inference, as in Keras)."""
import itertools

import numpy as np

import graphc as gc
from graphc.errors import ArgumentError, GraphcError
from graphc.ops.state import random_uniform_like

from .. import backend, initializers, ops_image, quantiles
from .base import Layer


class _Array(initializers.Initializer):
    """Starts a weight at a given array (adapt's statistics, a given vocabulary)."""

    def __init__(self, array):
        self.array = np.asarray(array)

    def draw(self, shape):
        return np.broadcast_to(self.array, shape)


def _along(v, axes, ndim):
    """A statistic of the kept axes shaped to broadcast against a rank-ndim input."""
    shape = [1] * ndim
    for i, a in enumerate(axes):
        shape[a] = v.shape[i] if v.ndim else 1
    return gc.reshape(v, tuple(shape)) if v.ndim else v


class Normalization(Layer):
    """(x - mean) / max(sqrt(variance), epsilon) per index of the kept `axis` (default the
    last); mean and variance are given, or computed by adapt(data) (then they are the
    layer's non-trainable weights mean, variance and count, as in Keras). invert=True maps
    normalized values back."""

    def __init__(self, axis=-1, mean=None, variance=None, invert=False, **kwargs):
        super().__init__(**kwargs)
        self.axis = tuple(axis) if isinstance(axis, (list, tuple)) else \
            (() if axis is None else (axis,))
        if (mean is None) != (variance is None):
            raise GraphcError("Normalization takes both mean and variance, or neither")
        self.given = None if mean is None else (np.asarray(mean, np.float32),
                                                np.asarray(variance, np.float32))
        self.invert = bool(invert)
        self._adapted = None

    def adapt(self, data, batch_size=None, steps=None):
        """Set mean and variance to those of data (an array) over the axes not kept."""
        data = np.asarray(data, np.float64)
        axes = tuple(a % data.ndim for a in self.axis)
        reduce = tuple(i for i in range(data.ndim) if i not in axes)
        stats = (data.mean(axis=reduce).astype(np.float32),
                 data.var(axis=reduce).astype(np.float32),
                 np.asarray(int(np.prod([data.shape[i] for i in reduce])), np.int64))
        self._adapted = stats
        if self.built:
            sess = backend.session(self._graph)
            for var, value in zip((self.mean, self.variance, self.count), stats):
                sess.set_value(var, value)

    def build(self, input_shape):
        self._axes = tuple(a % len(input_shape) for a in self.axis)
        shape = tuple(input_shape[a] for a in self._axes)
        if self.given is not None:
            self.mean = gc.constant(np.broadcast_to(self.given[0], shape).astype(np.float32))
            self.variance = gc.constant(np.broadcast_to(self.given[1], shape)
                                        .astype(np.float32))
            return
        mean, variance, count = self._adapted or (np.zeros(shape), np.ones(shape), 0)
        self.mean = self.add_weight("mean", shape, _Array(mean), trainable=False)
        self.variance = self.add_weight("variance", shape, _Array(variance), trainable=False)
        self.count = self.add_weight("count", (), _Array(count), trainable=False,
                                     dtype="int64")

    def call(self, inputs):
        x = inputs if inputs.dtype.is_float else gc.cast(inputs, gc.float32)
        mean = _along(self.mean, self._axes, x.ndim)
        std = gc.maximum(gc.sqrt(_along(self.variance, self._axes, x.ndim)),
                         backend.epsilon())
        return mean + x * std if self.invert else (x - mean) / std

    def get_config(self):
        given = {} if self.given is None else {"mean": self.given[0].tolist(),
                                               "variance": self.given[1].tolist()}
        return {**super().get_config(), "axis": list(self.axis), "invert": self.invert,
                **given}


def _encode(indices, depth, output_mode, dtype="float32"):
    """Integer indices (batch, ...) as Keras's output modes: "int" (as they are),
    "one_hot" (a trailing axis of size 1 replaced), "multi_hot" and "count" (over the
    last axis)."""
    if output_mode == "int":
        return indices
    if output_mode == "one_hot":
        if indices.ndim > 1 and indices.shape[-1] == 1:
            indices = gc.squeeze(indices, axis=-1)
        return gc.one_hot(indices, depth, dtype=gc.as_dtype(dtype))
    if indices.ndim == 1:
        indices = gc.expand_dims(indices, -1)
    hot = gc.one_hot(indices, depth, dtype=gc.as_dtype(dtype))
    reduce = gc.max if output_mode == "multi_hot" else gc.sum
    if output_mode not in ("multi_hot", "count"):
        raise GraphcError(f"output_mode must be int, one_hot, multi_hot or count, got "
                          f"{output_mode!r}")
    return reduce(hot, axis=-2)


class Discretization(Layer):
    """The index of each value's bin: i where bin_boundaries[i-1] <= x < bin_boundaries[i]
    (0 below the first, len(boundaries) from the last on), then output_mode. The
    boundaries are given, or learnt by adapt(data) for num_bins bins from Keras's
    approximate quantiles of precision epsilon."""

    def __init__(self, bin_boundaries=None, num_bins=None, epsilon=0.01, output_mode="int",
                 sparse=False, dtype=None, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        if (bin_boundaries is None) == (num_bins is None) or (num_bins or 0) < 0:
            raise ArgumentError(f"Discretization '{self.name}' takes bin_boundaries or "
                                f"num_bins >= 0, one of them; got bin_boundaries="
                                f"{bin_boundaries!r}, num_bins={num_bins!r}")
        self.bin_boundaries = None if bin_boundaries is None else \
            [float(b) for b in bin_boundaries]
        self.num_bins, self.epsilon = num_bins, epsilon
        self.output_mode, self.out_dtype = output_mode, dtype
        self.summary = quantiles.empty()  # adapt's: sorted points and their weights

    def adapt(self, data, steps=None):
        """Learn num_bins bins from data: an array (one batch) or an iterable of batches
        (at most `steps` of them)."""
        if self.num_bins is None:
            raise GraphcError(f"Discretization '{self.name}' was given bin_boundaries: "
                              "construct it with num_bins to adapt it")
        self.reset_state()
        batches = [data] if isinstance(data, np.ndarray) or not hasattr(data, "__iter__") \
            else itertools.islice(data, steps)
        for batch in batches:
            self.update_state(batch)
        self.finalize_state()

    # adapt's steps, public as in Keras
    def update_state(self, data):
        """Merge a batch into the quantile summary."""
        summary = quantiles.summarize(np.array(data).astype("float32"), self.epsilon)
        self.summary = quantiles.merge(summary, self.summary, self.epsilon)

    def finalize_state(self):
        """Set the boundaries from the summary."""
        if self.num_bins is None:
            return
        if self.built:
            raise GraphcError(f"Discretization '{self.name}' is already in a graph with its "
                              "boundaries: adapt it before calling it")
        self.bin_boundaries = quantiles.bin_boundaries(self.summary, self.num_bins)

    def reset_state(self):
        """Start the quantile summary afresh."""
        self.summary = quantiles.empty()

    def call(self, inputs):
        if self.bin_boundaries is None:
            raise GraphcError(f"Discretization '{self.name}' has no bin boundaries: pass "
                              "bin_boundaries or call adapt(data) first")
        x = inputs if inputs.dtype.is_float else gc.cast(inputs, gc.float32)
        bounds = gc.constant(np.asarray(self.bin_boundaries, np.float32))
        index = gc.sum(gc.cast(gc.greater_equal(gc.expand_dims(x, -1), bounds), gc.int64),
                       axis=-1)
        return _encode(index, len(self.bin_boundaries) + 1, self.output_mode,
                       self.out_dtype or "float32")

    def get_config(self):
        return {**super().get_config(), "bin_boundaries": self.bin_boundaries,
                "num_bins": self.num_bins, "output_mode": self.output_mode,
                "epsilon": self.epsilon}

    @classmethod
    def from_config(cls, config):
        """An adapted layer's config holds both its num_bins and the boundaries it learnt."""
        config = dict(config)
        boundaries = config.pop("bin_boundaries") if config.get("num_bins") is not None \
            else None
        layer = cls(**config)
        layer.bin_boundaries = boundaries
        return layer


class CategoryEncoding(Layer):
    """Integer category ids in [0, num_tokens) as one_hot, multi_hot or count vectors."""

    def __init__(self, num_tokens=None, output_mode="multi_hot", sparse=False, **kwargs):
        super().__init__(**kwargs)
        if num_tokens is None or output_mode not in ("one_hot", "multi_hot", "count"):
            raise GraphcError(f"CategoryEncoding needs num_tokens and an output_mode of "
                              f"one_hot, multi_hot or count, got {num_tokens!r}, "
                              f"{output_mode!r}")
        self.num_tokens, self.output_mode = int(num_tokens), output_mode

    def call(self, inputs):
        return _encode(gc.cast(inputs, gc.int64), self.num_tokens, self.output_mode)

    def get_config(self):
        return {**super().get_config(), "num_tokens": self.num_tokens,
                "output_mode": self.output_mode}


class IntegerLookup(Layer):
    """Integers to vocabulary indices: the mask token (if any) to 0, out-of-vocabulary
    values to the num_oov_indices indices after it (value floormod num_oov_indices), and
    vocabulary[i] to the index after those; invert=True maps indices back. The vocabulary
    is given, or set by adapt(data) (the values by decreasing frequency, ties by decreasing
    value, as Keras orders them)."""

    def __init__(self, max_tokens=None, num_oov_indices=1, mask_token=None, oov_token=-1,
                 vocabulary=None, vocabulary_dtype="int64", idf_weights=None, invert=False,
                 output_mode="int", sparse=False, pad_to_max_tokens=False,
                 oov_method="floormod", salt=None, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        if oov_method != "floormod" or idf_weights is not None:
            raise GraphcError("IntegerLookup: only oov_method='floormod' and no idf_weights "
                              "are supported")
        self.max_tokens, self.num_oov_indices = max_tokens, int(num_oov_indices)
        self.mask_token, self.oov_token = mask_token, oov_token
        self.invert, self.output_mode = bool(invert), output_mode
        self.vocabulary = None
        if vocabulary is not None:
            self.set_vocabulary(vocabulary)

    def set_vocabulary(self, vocabulary, idf_weights=None):
        vocab = [int(v) for v in np.asarray(vocabulary).reshape(-1)]
        if len(set(vocab)) != len(vocab):
            raise GraphcError("IntegerLookup: the vocabulary has repeated values")
        self.vocabulary = vocab

    def adapt(self, data, steps=None):
        values, counts = np.unique(np.asarray(data).reshape(-1), return_counts=True)
        keep = values != self.mask_token if self.mask_token is not None else slice(None)
        values, counts = values[keep], counts[keep]
        order = np.lexsort((-values, -counts))  # Keras's order: by count, ties larger first
        vocab = values[order]
        if self.max_tokens is not None:
            vocab = vocab[:max(0, self.max_tokens - self.num_oov_indices
                               - (self.mask_token is not None))]
        self.set_vocabulary(vocab)

    def get_vocabulary(self, include_special_tokens=True):
        head = ([self.mask_token] if self.mask_token is not None else []) + \
            [self.oov_token] * self.num_oov_indices
        return (head if include_special_tokens else []) + list(self.vocabulary or [])

    def vocabulary_size(self):
        return len(self.get_vocabulary())

    def call(self, inputs):
        if self.vocabulary is None:
            raise GraphcError(f"IntegerLookup '{self.name}' has no vocabulary: pass one or "
                              "call adapt(data) first")
        offset = (self.mask_token is not None) + self.num_oov_indices
        if self.invert:
            table = gc.constant(np.asarray(self.get_vocabulary(), np.int64))
            return gc.gather(table, gc.cast(inputs, gc.int32))
        x = gc.cast(inputs, gc.int64)
        vocab = gc.constant(np.asarray(self.vocabulary, np.int64))
        hits = gc.equal(gc.expand_dims(x, -1), vocab)
        found = gc.cast(gc.argmax(gc.cast(hits, gc.int32), axis=-1), gc.int64) + offset
        known = gc.max(gc.cast(hits, gc.int32), axis=-1) > 0
        start = int(self.mask_token is not None)
        oov = (gc.mod(x, self.num_oov_indices) + start) if self.num_oov_indices else \
            gc.fill_like(x, -1)
        index = gc.where(known, found, oov)
        if self.mask_token is not None:
            index = gc.where(gc.equal(x, int(self.mask_token)), gc.zeros_like(index), index)
        return _encode(index, self.vocabulary_size(), self.output_mode)

    def get_config(self):
        return {**super().get_config(), "max_tokens": self.max_tokens,
                "num_oov_indices": self.num_oov_indices, "mask_token": self.mask_token,
                "oov_token": self.oov_token, "vocabulary": self.vocabulary,
                "invert": self.invert, "output_mode": self.output_mode}


class CenterCrop(Layer):
    """The central height x width window of each image (channels last), as floats; an image
    smaller than the window along either axis is first cut to the largest central window of
    the target's aspect ratio, then resized (bilinear) to height x width, as Keras's
    smart_resize does."""

    def __init__(self, height, width, data_format=None, **kwargs):
        super().__init__(**kwargs)
        ops_image._channels_last(data_format, "CenterCrop")
        self.height, self.width = int(height), int(width)

    def call(self, inputs):
        x = inputs if inputs.dtype.is_float else gc.cast(inputs, gc.float32)
        h, w = x.shape[-3], x.shape[-2]
        if not (isinstance(h, int) and isinstance(w, int)):
            raise GraphcError(f"CenterCrop '{self.name}' needs a known height and width, got "
                              f"shape {tuple(x.shape)}")
        if h < self.height or w < self.width:
            return ops_image.resize(x, (self.height, self.width), crop_to_aspect_ratio=True)
        top, left = (h - self.height) // 2, (w - self.width) // 2
        return x[..., top:top + self.height, left:left + self.width, :]

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width}


class Resizing(Layer):
    """Images (channels last) resampled to height x width by gk.ops.image.resize, with
    Keras's arguments and defaults; the output is float."""

    def __init__(self, height, width, interpolation="bilinear", crop_to_aspect_ratio=False,
                 pad_to_aspect_ratio=False, fill_mode="constant", fill_value=0.0,
                 antialias=False, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.height, self.width = int(height), int(width)
        self.options = dict(interpolation=interpolation, antialias=antialias,
                            crop_to_aspect_ratio=crop_to_aspect_ratio,
                            pad_to_aspect_ratio=pad_to_aspect_ratio, fill_mode=fill_mode,
                            fill_value=fill_value, data_format=data_format)

    def call(self, inputs):
        x = inputs if inputs.dtype.is_float else gc.cast(inputs, gc.float32)
        return ops_image.resize(x, (self.height, self.width), **self.options)

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width,
                **self.options}


class _Augmentation(Layer):
    """A random image transformation drawn per image while training; the identity (cast to
    float) at inference."""

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = backend.next_seed() if seed is None else seed

    def _per_image(self, images, seed_offset=0, low=0.0, high=1.0):
        """One uniform draw per image, shaped (batch, 1, 1, 1) (static ones, which broadcast
        against run-time heights and widths, where slices [:1] of them would not)."""
        draws = random_uniform_like(images[:, 0, 0, 0], low, high, seed=self.seed + seed_offset)
        return gc.reshape(draws, (-1, 1, 1, 1))

    def call(self, inputs, training=False):
        x = inputs if inputs.dtype.is_float else gc.cast(inputs, gc.float32)
        return self.transform(x) if training else x

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


class RandomFlip(_Augmentation):
    """Each image flipped left-right and/or upside down, each with probability 1/2."""

    def __init__(self, mode="horizontal_and_vertical", seed=None, data_format=None,
                 **kwargs):
        super().__init__(seed, **kwargs)
        if mode not in ("horizontal", "vertical", "horizontal_and_vertical"):
            raise GraphcError(f"RandomFlip mode must be horizontal, vertical or "
                              f"horizontal_and_vertical, got {mode!r}")
        self.mode = mode

    def transform(self, x):
        if "horizontal" in self.mode:
            x = gc.where(self._per_image(x) < 0.5, x[:, :, ::-1, :], x)
        if "vertical" in self.mode:
            x = gc.where(self._per_image(x, 1) < 0.5, x[:, ::-1, :, :], x)
        return x

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


def _factor_range(factor, what, low_limit=None):
    low, high = (-factor, factor) if np.ndim(factor) == 0 else tuple(factor)
    if low_limit is not None and low < low_limit:
        raise GraphcError(f"{what} factor must not go below {low_limit}, got {factor!r}")
    return float(low), float(high)


class RandomContrast(_Augmentation):
    """Each image's contrast scaled by a factor drawn in [1 - lower, 1 + upper] around its
    per-channel mean, then clipped to value_range."""

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed, **kwargs)
        self.factor = factor
        low, high = _factor_range(factor, "RandomContrast")
        self.lower, self.upper = abs(low), high
        self.value_range = tuple(float(v) for v in value_range)

    def transform(self, x):
        f = self._per_image(x, 0, 1.0 - self.lower, 1.0 + self.upper)
        mean = gc.mean(x, axis=(1, 2), keepdims=True)
        return gc.clip((x - mean) * f + mean, *self.value_range)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor,
                "value_range": list(self.value_range)}


class RandomBrightness(_Augmentation):
    """Each image shifted by a delta drawn in [lower, upper] times the value range's width,
    then clipped to value_range."""

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed, **kwargs)
        self.factor = factor
        self.lower, self.upper = _factor_range(factor, "RandomBrightness", -1.0)
        self.value_range = tuple(float(v) for v in value_range)

    def transform(self, x):
        lo, hi = self.value_range
        delta = self._per_image(x, 0, self.lower, self.upper) * (hi - lo)
        return gc.clip(x + delta, lo, hi)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor,
                "value_range": list(self.value_range)}


LAYERS = (Normalization, Discretization, CategoryEncoding, IntegerLookup, CenterCrop, Resizing,
          RandomFlip, RandomContrast, RandomBrightness)
