"""RandomErasing, as Keras 3.15 has it: while training, with a probability drawn per image in
factor's range, one rectangle of each image is overwritten by fill_value (by default normal
noise times value_range[1]), clipped to value_range; the identity at inference. The random
draws are graphc's own, from Keras's distributions (the normal noise by Box-Muller from two
uniform draws)."""
import math

import graphc as gc
from graphc.errors import GraphcError
from graphc.ops.state import random_uniform_like

from .. import ops_image
from .color import _unit_factor
from .preprocessing import _Augmentation


def _positions(x, axis):
    """(0, 1, 2, ... along axis of x, shaped to broadcast with x; x's length there); run-time
    sizes allowed."""
    ones = gc.ones_like(x[tuple(slice(None) if a == axis else 0 for a in range(x.ndim))])
    where = gc.cumsum(ones) - 1.0
    for _ in range(x.ndim - 1 - axis):
        where = gc.expand_dims(where, -1)
    for _ in range(axis):
        where = gc.expand_dims(where, 0)
    return where, gc.sum(ones)


def in_span(x, axis, ratio, u):
    """Whether each cell along axis lies in a span of ratio times the length there, starting
    at u times the room left (Keras's crop bounds; ratio and u per image)."""
    where, length = _positions(x, axis)
    start = u * (length - ratio * length)
    return gc.logical_and(where >= start, where < start + ratio * length)


class RandomErasing(_Augmentation):
    """(batch, h, w, c) images: per image, side ratios sqrt(u) with u drawn in scale's range
    for the width and the height, the rectangle's start drawn uniformly where it fits, and the
    cells inside replaced by fill_value when a uniform draw falls below another drawn in
    factor's range (f: [0, f])."""

    def __init__(self, factor=1.0, scale=(0.02, 0.33), fill_value=None, value_range=(0, 255),
                 seed=None, data_format=None, **kwargs):
        super().__init__(seed, **kwargs)
        self.factor = _unit_factor(factor, "RandomErasing")
        self.scale = _unit_factor(scale, "RandomErasing (scale)")
        if not (fill_value is None or isinstance(fill_value, (int, float))
                or (isinstance(fill_value, (tuple, list)) and len(fill_value) == 3)):
            raise GraphcError(f"RandomErasing: fill_value must be None, a number or a list of "
                              f"three numbers, got {fill_value!r}")
        self.fill_value = fill_value
        self.value_range = tuple(value_range)
        ops_image._channels_last(data_format, "RandomErasing")

    def _span(self, x, axis, seed_offset):
        """Whether each cell along axis lies in the image's rectangle."""
        ratio = gc.sqrt(self._per_image(x, seed_offset, *self.scale))
        return in_span(x, axis, ratio, self._per_image(x, seed_offset + 2))

    def _fill(self, x):
        if self.fill_value is None:
            u1, u2 = (random_uniform_like(x, seed=self.seed + k) for k in (6, 7))
            fill = gc.sqrt(-2.0 * gc.log(1.0 - u1)) * gc.cos(2.0 * math.pi * u2) \
                * self.value_range[1]
        else:
            fill = gc.zeros_like(x) + gc.cast(gc.constant(self.fill_value), x.dtype)
        return gc.clip(fill, *self.value_range)

    def transform(self, x):
        inside = gc.logical_and(self._span(x, 2, 0), self._span(x, 1, 1))
        chance = self._per_image(x, 4, *self.factor)
        erase = gc.logical_and(inside, self._per_image(x, 5) < chance)
        return gc.where(erase, self._fill(x), x)

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor), "scale": list(self.scale),
                "fill_value": self.fill_value, "value_range": list(self.value_range)}


LAYERS = (RandomErasing,)
