"""Keras's geometric augmentations over one shared transform: RandomRotation,
RandomTranslation, RandomZoom and RandomShear (drawn per image while training, seeded; the identity at
inference), resampled by ops.image.affine_transform.
The random draws are graphc's own, from Keras's distributions."""
import math

import graphc as gc
from graphc.errors import GraphcError

from .. import ops_image
from .color import _unit_factor
from .preprocessing import _Augmentation

_FILL_MODES = ("reflect", "wrap", "constant", "nearest")
_INTERPOLATIONS = ("nearest", "bilinear")


def affine_matrix(height, width, angle=0.0, translate_x=0.0, translate_y=0.0, scale_x=1.0,
                  scale_y=1.0, shear_x=0.0, shear_y=0.0):
    """Keras's (batch, 8) transforms of per-image tensors (batch,) or numbers: a rotation by
    angle degrees, shears (degrees), scales about the image's centre, then a translation in
    pixels, as the output-to-input map affine_transform reads (angle a tensor)."""
    angle, shear_x, shear_y = (v * (math.pi / 180.0) for v in (angle, shear_x, shear_y))
    cx, cy = 0.5 * (width - 1), 0.5 * (height - 1)
    cos, sin = gc.cos(angle), gc.sin(angle)
    tan_x, tan_y = (gc.sin(s) / gc.cos(s) for s in (shear_x, shear_y))
    a0, a1 = scale_x * (cos + tan_x * sin), scale_x * (-sin + tan_x * cos)
    b0, b1 = scale_y * (tan_y * cos + sin), scale_y * (tan_y * -sin + cos)
    a2 = translate_x + cx - cx * a0 - cy * a1
    b2 = translate_y + cy - cx * b0 - cy * b1
    zero = a0 * 0.0
    return gc.stack([a0, a1, a2, b0, b1, b2, zero, zero], axis=-1)


class _Geometric(_Augmentation):
    """Keras's resampling arguments: fill_mode, interpolation, fill_value."""

    def __init__(self, fill_mode="reflect", interpolation="bilinear", fill_value=0.0,
                 data_format=None, seed=None, **kwargs):
        super().__init__(seed, **kwargs)
        who = type(self).__name__
        if fill_mode not in _FILL_MODES or interpolation not in _INTERPOLATIONS:
            raise GraphcError(f"{who}: fill_mode must be one of {_FILL_MODES} and "
                              f"interpolation one of {_INTERPOLATIONS}, got {fill_mode!r}, "
                              f"{interpolation!r}")
        self.fill_mode, self.interpolation, self.fill_value = fill_mode, interpolation, fill_value
        ops_image._channels_last(data_format, who)

    def _resample(self, x, transforms):
        return ops_image.affine_transform(x, transforms, self.interpolation, self.fill_mode,
                                          self.fill_value)

    def _draw(self, x, seed_offset, low, high):
        """One uniform draw per image, shaped (batch,)."""
        return self._per_image(x, seed_offset, low, high)[:, 0, 0, 0]

    def get_config(self):
        return {**super().get_config(), "fill_mode": self.fill_mode,
                "interpolation": self.interpolation, "fill_value": self.fill_value}


class RandomRotation(_Geometric):
    """Each image rotated about its centre by an angle drawn per image in factor's range,
    given in fractions of a full turn (f: [-f, f])."""

    def __init__(self, factor, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, data_format=None, **kwargs):
        super().__init__(fill_mode, interpolation, fill_value, data_format, seed, **kwargs)
        self.factor = _unit_factor(factor, "RandomRotation", (-1.0, 1.0))

    def transform(self, x):
        h, w = ops_image._hw(x)
        angle = self._draw(x, 0, self.factor[0] * 360.0, self.factor[1] * 360.0)
        return self._resample(x, affine_matrix(float(h), float(w), angle=angle))

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor)}


class RandomTranslation(_Geometric):
    """Each image shifted by fractions of its height and width drawn per image in
    height_factor's and width_factor's ranges (f: [-f, f]; positive: down and right)."""

    def __init__(self, height_factor, width_factor, fill_mode="reflect",
                 interpolation="bilinear", seed=None, fill_value=0.0, data_format=None,
                 **kwargs):
        super().__init__(fill_mode, interpolation, fill_value, data_format, seed, **kwargs)
        self.height_factor = _unit_factor(height_factor, "RandomTranslation", (-1.0, 1.0))
        self.width_factor = _unit_factor(width_factor, "RandomTranslation", (-1.0, 1.0))

    def transform(self, x):
        h, w = ops_image._hw(x)
        down = self._draw(x, 0, *self.height_factor) * float(h)
        right = self._draw(x, 1, *self.width_factor) * float(w)
        return self._resample(x, affine_matrix(float(h), float(w), angle=gc.zeros_like(down),
                                               translate_x=-right, translate_y=-down))

    def get_config(self):
        return {**super().get_config(), "height_factor": list(self.height_factor),
                "width_factor": list(self.width_factor)}


class RandomZoom(_Geometric):
    """Each image zoomed about its centre: the source read at 1 + z times the distance from
    the centre, z drawn per image in height_factor's range (f: [-f, f]; positive zooms out)
    and in width_factor's (or the same z where width_factor is None)."""

    def __init__(self, height_factor, width_factor=None, fill_mode="reflect",
                 interpolation="bilinear", seed=None, fill_value=0.0, data_format=None,
                 **kwargs):
        super().__init__(fill_mode, interpolation, fill_value, data_format, seed, **kwargs)
        self.height_factor = _unit_factor(height_factor, "RandomZoom", (-1.0, 1.0))
        self.width_factor = None if width_factor is None else \
            _unit_factor(width_factor, "RandomZoom", (-1.0, 1.0))

    def transform(self, x):
        h, w = ops_image._hw(x)
        zoom_h = 1.0 + self._draw(x, 0, *self.height_factor)
        zoom_w = zoom_h if self.width_factor is None else \
            1.0 + self._draw(x, 1, *self.width_factor)
        return self._resample(x, affine_matrix(float(h), float(w), angle=gc.zeros_like(zoom_h),
                                               scale_x=zoom_w, scale_y=zoom_h))

    def get_config(self):
        return {**super().get_config(), "height_factor": list(self.height_factor),
                "width_factor": self.width_factor and list(self.width_factor)}


def _shear_factor(factor, what):
    """Keras's shear range: a number f in [0, 1] gives [-f, f]; a pair, numbers in [0, 1]."""
    values = factor if isinstance(factor, (tuple, list)) else [factor]
    if not all(isinstance(v, (int, float)) and 0 <= v <= 1 for v in values):
        raise GraphcError(f"RandomShear: {what} must be a number or a pair of numbers in "
                          f"[0, 1], got {factor!r}")
    return _unit_factor(factor, "RandomShear", (-1.0, 1.0))


class RandomShear(_Geometric):
    """Each image sheared, source (x + s_x y, y + s_y x), s_x and s_y drawn per image in
    x_factor's and y_factor's ranges and both negated when a fair coin says so (Keras's
    matrix, about the top-left corner)."""

    def __init__(self, x_factor=0.0, y_factor=0.0, interpolation="bilinear",
                 fill_mode="reflect", fill_value=0.0, data_format=None, seed=None, **kwargs):
        super().__init__(fill_mode, interpolation, fill_value, data_format, seed, **kwargs)
        self.x_factor = _shear_factor(x_factor, "x_factor")
        self.y_factor = _shear_factor(y_factor, "y_factor")

    def transform(self, x):
        sign = gc.where(self._draw(x, 0, 0.0, 1.0) > 0.5, -1.0, 1.0)
        shear_x = self._draw(x, 1, *self.x_factor) * sign
        shear_y = self._draw(x, 2, *self.y_factor) * sign
        one, zero = gc.ones_like(shear_x), gc.zeros_like(shear_x)
        return self._resample(x, gc.stack([one, shear_x, zero, shear_y, one, zero, zero, zero],
                                          axis=-1))

    def get_config(self):
        return {**super().get_config(), "x_factor": list(self.x_factor),
                "y_factor": list(self.y_factor)}


LAYERS = (RandomRotation, RandomTranslation, RandomZoom, RandomShear)
