"""Keras's RandomElasticTransform: each image resampled along a smooth random displacement
field (per image with a drawn probability, while training, seeded; the identity at inference).
The random draws are graphc's own, from Keras's distributions."""
import numpy as np

import graphc as gc
from graphc.errors import GraphcError

from .. import ops_image
from .color import _unit_factor
from .noise import standard_normal_like
from .preprocessing import _Augmentation

_FILL_MODES = ("constant", "nearest", "wrap", "mirror", "reflect")


class RandomElasticTransform(_Augmentation):
    """Each image, with probability p drawn per image in factor's range (f: [0, f]), read at
    (x + alpha dx, y + alpha dy): dx and dy normal noise times sigma, blurred by a Gaussian of
    deviation sigma over int(6 sigma) | 1 taps, alpha = 0.1 s max(h, w) and sigma = 0.05 s
    min(h, w) for one s drawn per batch in scale's range (s: [0, s]); then clipped to
    value_range."""

    def __init__(self, factor=1.0, scale=1.0, interpolation="bilinear", fill_mode="reflect",
                 fill_value=0.0, value_range=(0, 255), seed=None, data_format=None,
                 **kwargs):
        super().__init__(seed, **kwargs)
        if interpolation not in ("nearest", "bilinear") or fill_mode not in _FILL_MODES:
            raise GraphcError(f"RandomElasticTransform: interpolation must be nearest or "
                              f"bilinear and fill_mode one of {_FILL_MODES}, got "
                              f"{interpolation!r}, {fill_mode!r}")
        self.factor = _unit_factor(factor, "RandomElasticTransform")
        self.scale = _unit_factor(scale, "RandomElasticTransform")
        self.interpolation, self.fill_mode, self.fill_value = interpolation, fill_mode, fill_value
        self.value_range = tuple(float(v) for v in value_range)
        ops_image._channels_last(data_format, "RandomElasticTransform")

    def _field(self, x, seed_offset, sigma, size):
        """One blurred noise plane per image, (batch, h, w)."""
        noise = standard_normal_like(x[..., :1], self.seed + seed_offset) * sigma
        # Keras's int(6 sigma) | 1 taps reach floor(int(6 sigma) / 2) from the centre
        reach = gc.floor(gc.floor(6.0 * sigma) / 2.0)
        for axis in (1, 2):
            noise = ops_image._blur_axis(noise, axis, size, sigma, reach)
        return noise[..., 0]

    def transform(self, x):
        if self.scale[1] == 0 or self.factor[1] == 0:
            return x
        h, w = ops_image._hw(x)
        chance = self._per_image(x, 0, *self.factor)
        apply = self._per_image(x, 1) < chance
        strength = self._per_image(x, 2, *self.scale)[0, 0, 0, 0]
        alpha, sigma = 0.1 * max(h, w) * strength, 0.05 * min(h, w) * strength
        size = int(6 * 0.05 * min(h, w) * self.scale[1]) | 1
        ys = gc.constant(np.arange(h, dtype=np.float32).reshape(1, h, 1))
        xs = gc.constant(np.arange(w, dtype=np.float32).reshape(1, 1, w))
        out = ops_image._sample(x, xs + alpha * self._field(x, 3, sigma, size),
                                ys + alpha * self._field(x, 5, sigma, size),
                                self.interpolation, self.fill_mode, self.fill_value)
        return gc.clip(gc.where(apply, out, x), *self.value_range)

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor), "scale": list(self.scale),
                "interpolation": self.interpolation, "fill_mode": self.fill_mode,
                "fill_value": self.fill_value, "value_range": list(self.value_range)}


LAYERS = (RandomElasticTransform,)
