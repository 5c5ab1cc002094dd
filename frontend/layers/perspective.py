"""Keras's RandomPerspective: each image's corners moved by random fractions of their
coordinates and the image warped to match (per image with a drawn probability, while training,
seeded; the identity at inference). The random draws are graphc's own, from Keras's
distributions."""
import graphc as gc
from graphc.errors import GraphcError

from .. import ops_image
from .color import _unit_factor
from .preprocessing import _Augmentation


class RandomPerspective(_Augmentation):
    """Each image, with probability p drawn per image in factor's range (f: [0, f]), warped so
    that corner (x, y) moves to (x (1 + u), y (1 + v)), u and v drawn per corner in
    [-scale / 2, scale / 2]; outside points read fill_value."""

    def __init__(self, factor=1.0, scale=1.0, interpolation="bilinear", fill_value=0.0,
                 seed=None, data_format=None, **kwargs):
        super().__init__(seed, **kwargs)
        if not 0.0 <= scale <= 1.0 or interpolation not in ("nearest", "bilinear"):
            raise GraphcError(f"RandomPerspective: scale must lie in [0, 1] and interpolation "
                              f"be nearest or bilinear, got {scale!r}, {interpolation!r}")
        self.factor = _unit_factor(factor, "RandomPerspective")
        self.scale, self.interpolation, self.fill_value = scale, interpolation, fill_value
        ops_image._channels_last(data_format, "RandomPerspective")

    def _draw(self, x, seed_offset, low, high):
        return self._per_image(x, seed_offset, low, high)[:, 0, 0, 0]

    def transform(self, x):
        h, w = ops_image._hw(x)
        chance = self._draw(x, 0, *self.factor)
        apply = self._draw(x, 1, 0.0, 1.0) < chance
        zero = gc.zeros_like(chance)
        corners = [(0.0, 0.0), (w - 1.0, 0.0), (0.0, h - 1.0), (w - 1.0, h - 1.0)]
        start = gc.stack([gc.stack([zero + cx, zero + cy], -1) for cx, cy in corners], 1)
        moved = [gc.stack([(1.0 + self._draw(x, 2 + 2 * i, -0.5 * self.scale, 0.5 * self.scale))
                           * cx,
                           (1.0 + self._draw(x, 3 + 2 * i, -0.5 * self.scale, 0.5 * self.scale))
                           * cy], -1)
                 for i, (cx, cy) in enumerate(corners)]
        out = ops_image.perspective_transform(x, start, gc.stack(moved, 1), self.interpolation,
                                              self.fill_value)
        return gc.where(gc.reshape(apply, (-1, 1, 1, 1)), out, x)

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor), "scale": self.scale,
                "interpolation": self.interpolation, "fill_value": self.fill_value}


LAYERS = (RandomPerspective,)
