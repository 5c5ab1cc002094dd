"""The regularizing layers that add noise while training and are the identity at inference:
GaussianNoise, GaussianDropout, AlphaDropout, SpatialDropout1D/2D/3D. Each draws its noise
from a seeded graphc random op, so a train step draws new noise on every run, the same
sequence for the same seed."""
import math
import numbers

import graphc as gc
from graphc.errors import GraphcError
from graphc.ops.state import random_uniform_like

from .. import backend
from .base import Layer


def _rate(rate, what):
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not 0 <= rate < 1:
        raise GraphcError(f"{what} rate must be in [0, 1), got {rate!r}")
    return float(rate)


def standard_normal_like(x, seed):
    """Standard normal draws of x's (run-time) shape, by Box and Muller's transform of two
    uniform draws."""
    u1 = random_uniform_like(x, 1e-12, 1.0, seed=seed)
    u2 = random_uniform_like(x, seed=seed + 1)
    return gc.sqrt(-2.0 * gc.log(u1)) * gc.cos((2.0 * math.pi) * u2)


class _Noise(Layer):
    supports_masking = True

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = backend.next_seed() if seed is None else seed

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


class GaussianNoise(_Noise):
    """inputs + N(0, stddev^2) noise while training."""

    def __init__(self, stddev, seed=None, **kwargs):
        super().__init__(seed, **kwargs)
        self.stddev = float(stddev)

    def call(self, inputs, training=False):
        if not training or self.stddev == 0:
            return inputs
        return inputs + self.stddev * standard_normal_like(inputs, self.seed)

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev}


class GaussianDropout(_Noise):
    """inputs * N(1, rate / (1 - rate)) noise while training."""

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(seed, **kwargs)
        self.rate = _rate(rate, "GaussianDropout")

    def call(self, inputs, training=False):
        if not training or self.rate == 0:
            return inputs
        stddev = math.sqrt(self.rate / (1.0 - self.rate))
        return inputs * (1.0 + stddev * standard_normal_like(inputs, self.seed))

    def get_config(self):
        return {**super().get_config(), "rate": self.rate}


def _noise_like(inputs, noise_shape):
    """A slice of inputs shaped like noise_shape (None: that axis of inputs, 1: one), so a
    random draw like it broadcasts over the axes of size 1."""
    if noise_shape is None:
        return inputs
    index = tuple(slice(None) if d is None or d == inputs.shape[i] else slice(0, 1)
                  for i, d in enumerate(noise_shape))
    return inputs[index]


class AlphaDropout(_Noise):
    """Dropout that keeps SELU's self-normalization: dropped values are set to SELU's
    negative saturation and the result is moved back to the input's mean and variance
    (Klambauer et al.), as Keras does."""

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(seed, **kwargs)
        self.rate = _rate(rate, "AlphaDropout")
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)

    def call(self, inputs, training=False):
        if not training or self.rate == 0:
            return inputs
        alpha_p = -1.6732632423543772848170429916717 * 1.0507009873554804934193349852946
        keep = gc.cast(random_uniform_like(_noise_like(inputs, self.noise_shape),
                                           seed=self.seed) >= self.rate, inputs.dtype)
        a = ((1 - self.rate) * (1 + self.rate * alpha_p ** 2)) ** -0.5
        b = -a * alpha_p * self.rate
        return a * (inputs * keep + (1.0 - keep) * alpha_p) + b

    def get_config(self):
        return {**super().get_config(), "rate": self.rate,
                "noise_shape": None if self.noise_shape is None else list(self.noise_shape)}


class _SpatialDropout(_Noise):
    """Dropout of whole feature maps: one keep/drop draw per (example, channel), the same at
    every step or pixel, the kept ones scaled by 1 / (1 - rate)."""
    rank = None

    def __init__(self, rate, data_format=None, seed=None, **kwargs):
        super().__init__(seed, **kwargs)
        self.rate = _rate(rate, type(self).__name__)
        self.data_format = data_format or "channels_last"
        if self.data_format not in ("channels_last", "channels_first"):
            raise GraphcError(f"{type(self).__name__}: data_format must be channels_last or "
                              f"channels_first, got {data_format!r}")

    def call(self, inputs, training=False):
        if inputs.ndim != self.rank + 2:
            raise GraphcError(f"{type(self).__name__} '{self.name}' expects inputs of rank "
                              f"{self.rank + 2}, got shape {tuple(inputs.shape)}")
        if not training or self.rate == 0:
            return inputs
        channel = 1 if self.data_format == "channels_first" else inputs.ndim - 1
        shape = [None if i in (0, channel) else 1 for i in range(inputs.ndim)]
        keep = gc.cast(random_uniform_like(_noise_like(inputs, shape), seed=self.seed)
                       >= self.rate, inputs.dtype)
        return inputs * keep / (1.0 - self.rate)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "data_format": self.data_format}


class SpatialDropout1D(_SpatialDropout):
    rank = 1

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(rate, None, seed, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.pop("data_format")
        return config


class SpatialDropout2D(_SpatialDropout):
    rank = 2


class SpatialDropout3D(_SpatialDropout):
    rank = 3


LAYERS = (GaussianNoise, GaussianDropout, AlphaDropout, SpatialDropout1D, SpatialDropout2D,
          SpatialDropout3D)
