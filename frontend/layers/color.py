"""Keras's colour augmentations of channels-last images: RandomGrayscale, RandomInvert,
Solarization, RandomPosterization, RandomColorDegeneration and RandomSharpness (drawn per image
while training, seeded; the identity at inference), and AutoContrast (deterministic, applied
at inference too, as in Keras).

Values are mapped from `value_range` to [0, 255] and back around the 0-255 arithmetic, as
Keras does; the random draws are graphc's own (not Keras's JAX stream), from the same
distributions."""
import numpy as np

import graphc as gc
from graphc.errors import GraphcError

from .. import ops_image
from .base import Layer
from .depthwise import depthwise_conv2d
from .preprocessing import _Augmentation


def _value_range(value_range, who):
    if not (isinstance(value_range, (tuple, list)) and len(value_range) == 2):
        raise GraphcError(f"{who}: value_range must be a list of two numbers, got "
                          f"{value_range!r}")
    return tuple(sorted(float(v) for v in value_range))


def _to_255(x, value_range):
    lo, hi = value_range
    return x if (lo, hi) == (0.0, 255.0) else (x - lo) / (hi - lo) * 255.0


def _from_255(x, value_range):
    lo, hi = value_range
    return x if (lo, hi) == (0.0, 255.0) else x / 255.0 * (hi - lo) + lo


def _unit_factor(factor, who, bounds=(0.0, 1.0)):
    """Keras's (lower, upper) of a factor given as one number f (-> (max(-f, low), f)) or a
    pair, inside bounds."""
    low, high = bounds
    if isinstance(factor, (tuple, list)) and len(factor) == 2:
        lower, upper = sorted(factor)
        if lower > high or upper < low:
            raise GraphcError(f"{who}: factor must lie in [{low}, {high}], got {factor!r}")
        return float(lower), float(upper)
    if isinstance(factor, (int, float)) and low <= factor <= high:
        return max(-abs(factor), low), abs(factor)
    raise GraphcError(f"{who}: factor must be a number or a pair of numbers in [{low}, "
                      f"{high}], got {factor!r}")


class AutoContrast(Layer):
    """Each image's channels stretched so that their minimum and maximum span value_range
    (a constant channel is kept as it is)."""

    def __init__(self, value_range=(0, 255), **kwargs):
        super().__init__(**kwargs)
        self.value_range = _value_range(value_range, "AutoContrast")

    def call(self, inputs):
        x = inputs if inputs.dtype.is_float else gc.cast(inputs, gc.float32)
        y = _to_255(x, self.value_range)
        low = gc.min(y, axis=(1, 2), keepdims=True)
        scale = 255.0 / (gc.max(y, axis=(1, 2), keepdims=True) - low)
        out = _from_255(gc.clip(y * scale - low * scale, 0.0, 255.0), self.value_range)
        return gc.where(gc.isnan(out), x, out)

    def get_config(self):
        return {**super().get_config(), "value_range": list(self.value_range)}


class RandomGrayscale(_Augmentation):
    """Each image replaced, with probability factor, by its luma (0.2989 R + 0.5870 G +
    0.1140 B) in every channel."""

    def __init__(self, factor=0.5, data_format=None, seed=None, **kwargs):
        super().__init__(seed, **kwargs)
        if not (isinstance(factor, (int, float)) and 0 <= factor <= 1):
            raise GraphcError(f"RandomGrayscale: factor should be between 0 and 1, got "
                              f"{factor!r}")
        self.factor = factor
        ops_image._channels_last(data_format, "RandomGrayscale")

    def transform(self, x):
        gray = ops_image.rgb_to_grayscale(x)
        return gc.where(self._per_image(x) < self.factor, gray + gc.zeros_like(x), x)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


class RandomInvert(_Augmentation):
    """Each image replaced by value_range[1] - image when a uniform draw falls below another
    drawn in factor's range (Keras's rule: factor f draws in [0, f], so 1.0, the default,
    inverts half of the images on average, (1, 1) every one, 0 none)."""

    def __init__(self, factor=1.0, value_range=(0, 255), seed=None, data_format=None,
                 **kwargs):
        super().__init__(seed, **kwargs)
        self.factor = _unit_factor(factor, "RandomInvert")
        self.value_range = _value_range(value_range, "RandomInvert")
        ops_image._channels_last(data_format, "RandomInvert")

    def transform(self, x):
        chance = self._per_image(x, 0, *self.factor)
        return gc.where(self._per_image(x, 1) < chance, self.value_range[1] - x, x)

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor),
                "value_range": list(self.value_range)}


class Solarization(_Augmentation):
    """Per image: on the 0-255 scale, add a value drawn in [addition_factor[0],
    addition_factor[1] * 255], clip, and invert (255 - v) the values at or above a threshold
    drawn in [threshold_factor[0], threshold_factor[1] * 255] (Keras's bounds; factors 0, the
    default, invert every value)."""

    def __init__(self, addition_factor=0.0, threshold_factor=0.0, value_range=(0, 255),
                 seed=None, **kwargs):
        super().__init__(seed, **kwargs)
        self.addition_factor = self._factor(addition_factor, "addition_factor")
        self.threshold_factor = self._factor(threshold_factor, "threshold_factor")
        self.value_range = _value_range(value_range, "Solarization")

    @staticmethod
    def _factor(factor, what):
        pair = tuple(sorted(factor)) if isinstance(factor, (tuple, list)) else (0.0, factor)
        if len(pair) != 2 or not all(isinstance(f, (int, float)) and 0 <= f <= 1
                                     for f in pair):
            raise GraphcError(f"Solarization: {what} must be a number or a pair of numbers "
                              f"in [0, 1], got {factor!r}")
        return float(pair[0]), float(pair[1])

    def transform(self, x):
        add = self._per_image(x, 0, self.addition_factor[0], self.addition_factor[1] * 255.0)
        threshold = self._per_image(x, 1, self.threshold_factor[0],
                                    self.threshold_factor[1] * 255.0)
        y = gc.clip(_to_255(x, self.value_range) + add, 0.0, 255.0)
        return _from_255(gc.where(y < threshold, y, 255.0 - y), self.value_range)

    def get_config(self):
        return {**super().get_config(), "addition_factor": list(self.addition_factor),
                "threshold_factor": list(self.threshold_factor),
                "value_range": list(self.value_range)}


class RandomPosterization(_Augmentation):
    """Each image's 0-255 values truncated to an integer and cut to their top b bits, b drawn
    per image among the integers in [factor[0], factor[1]) (factor f: [1, f); a pair of equal
    numbers: exactly that many bits), as Keras does."""

    def __init__(self, factor, value_range=(0, 255), data_format=None, seed=None, **kwargs):
        super().__init__(seed, **kwargs)
        self.factor = _unit_factor(factor, "RandomPosterization", (1.0, 8.0))
        self.value_range = _value_range(value_range, "RandomPosterization")
        ops_image._channels_last(data_format, "RandomPosterization")

    def transform(self, x):
        low, high = self.factor
        bits = gc.floor(self._per_image(x, 0, low, high)) if low != high else \
            gc.fill_like(x[:, :1, :1, :1], low)
        step = gc.pow(2.0, 8.0 - bits)
        y = gc.floor(gc.floor(_to_255(x, self.value_range)) / step) * step
        return _from_255(y, self.value_range)

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor),
                "value_range": list(self.value_range)}


class RandomColorDegeneration(_Augmentation):
    """Each image blended towards its luma by a factor drawn in factor's range (f: [-f, f]),
    image + factor * (luma - image), clipped to value_range."""

    def __init__(self, factor, value_range=(0, 255), data_format=None, seed=None, **kwargs):
        super().__init__(seed, **kwargs)
        self.factor = _unit_factor(factor, "RandomColorDegeneration", (-1.0, 1.0))
        self.value_range = _value_range(value_range, "RandomColorDegeneration")
        ops_image._channels_last(data_format, "RandomColorDegeneration")

    def transform(self, x):
        f = self._per_image(x, 0, *self.factor)
        return gc.clip(x + f * (ops_image.rgb_to_grayscale(x) - x), *self.value_range)

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor),
                "value_range": list(self.value_range)}


# Keras's smoothing filter for sharpness: 5/13 at the centre, 1/13 on the 8 neighbours
_SMOOTH = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]], np.float32) / 13.0


class RandomSharpness(_Augmentation):
    """Each image moved away from (or towards) its smoothing by a per-image factor f drawn in
    factor's range ([0, f] for a number): image + (1 - 2 f) * (smoothed - image), the
    smoothing a 3x3 filter over each channel, zero-padded at the border; clipped to
    value_range."""

    def __init__(self, factor, value_range=(0, 255), data_format=None, seed=None, **kwargs):
        super().__init__(seed, **kwargs)
        self.factor = _unit_factor(factor, "RandomSharpness")
        self.value_range = _value_range(value_range, "RandomSharpness")
        ops_image._channels_last(data_format, "RandomSharpness")

    def transform(self, x):
        channels = x.shape[-1]
        kernel = gc.cast(gc.constant(np.tile(_SMOOTH[:, :, None, None], (1, 1, channels, 1))),
                         x.dtype)
        smoothed = depthwise_conv2d(x, kernel, (1, 1), "same", (1, 1))
        f = self._per_image(x, 0, *self.factor) * 2.0
        return gc.clip(x + (1.0 - f) * (smoothed - x), *self.value_range)

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor),
                "value_range": list(self.value_range)}


LAYERS = (AutoContrast, RandomGrayscale, RandomInvert, Solarization, RandomPosterization,
          RandomColorDegeneration, RandomSharpness)
