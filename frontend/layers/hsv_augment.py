"""Keras's augmentations in HSV space of channels-last RGB images: RandomSaturation and
RandomHue (drawn per image while training, seeded; the identity at inference). The random
draws are graphc's own (not Keras's JAX stream), from the same distributions."""
import graphc as gc

from .. import ops_image
from .color import _from_255, _to_255, _unit_factor, _value_range
from .preprocessing import _Augmentation

# Keras's backend epsilon, which keeps factor / (1 - factor) finite at factor 1
_EPSILON = 1e-7


def _with_planes(x, hue=None, saturation=None):
    """x's HSV planes with hue and/or saturation replaced by hue(h) / saturation(s), back in
    RGB."""
    hsv = ops_image.rgb_to_hsv(x)
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    h = hue(h) if hue else h
    s = saturation(s) if saturation else s
    return ops_image.hsv_to_rgb(gc.stack([h, s, v], axis=-1))


def _wrap(hue):
    """A hue turned by less than one turn either way, back into [0, 1]."""
    return gc.where(hue > 1.0, hue - 1.0, gc.where(hue < 0.0, hue + 1.0, hue))


class _HsvAugmentation(_Augmentation):
    """Keras's arguments of both: factor (a number f: [max(-f, low), f]; or a pair) within
    _BOUNDS, value_range, data_format (channels_last) and seed."""
    _BOUNDS = (0.0, 1.0)

    def __init__(self, factor, value_range=(0, 255), data_format=None, seed=None, **kwargs):
        super().__init__(seed, **kwargs)
        who = type(self).__name__
        self.factor = _unit_factor(factor, who, self._BOUNDS)
        self.value_range = _value_range(value_range, who)
        ops_image._channels_last(data_format, who)

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor),
                "value_range": list(self.value_range)}


class RandomSaturation(_HsvAugmentation):
    """Each image's saturation multiplied by u / (1 - u), u drawn per image in factor's range
    (f: [-f, f] inside [-1, 1]; u = 0.5 keeps the image, 0 makes it grey, 1 fully saturated),
    the product clipped to value_range as Keras does."""
    _BOUNDS = (-1.0, 1.0)

    def transform(self, x):
        u = self._per_image(x, 0, *self.factor)[..., 0]
        scale = u / (1.0 - u + _EPSILON)
        return _with_planes(x, saturation=lambda s: gc.clip(s * scale, *self.value_range))


class RandomHue(_HsvAugmentation):
    """Each image's hue turned by +-u / 2 of a full turn, u drawn per image in factor's range
    (f: [0, f] inside [0, 1]) and the sign by a fair coin, on values mapped from value_range
    to [0, 1] (clipped there after the turn)."""

    def transform(self, x):
        sign = gc.where(self._per_image(x, 0) > 0.5, -1.0, 1.0)
        turn = (sign * self._per_image(x, 1, *self.factor) * 0.5)[..., 0]
        unit = _to_255(x, self.value_range) / 255.0
        out = gc.clip(_with_planes(unit, hue=lambda h: _wrap(h + turn)), 0.0, 1.0)
        return _from_255(out * 255.0, self.value_range)


LAYERS = (RandomSaturation, RandomHue)
