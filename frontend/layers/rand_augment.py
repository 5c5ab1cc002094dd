"""Keras's RandAugment: num_ops augmentations picked at random, one after another, while
training (seeded; the identity at inference). The random draws are graphc's own, from Keras's
distributions; the picks are drawn per batch, as Keras's are per call."""
import graphc as gc
from graphc.errors import GraphcError

from .. import ops_image
from .aug_mix import OPERATIONS, apply_picked
from .color import _unit_factor
from .preprocessing import _Augmentation

# Keras's operations in its order
_OPS = ("random_shear", "random_translation", "random_rotation", "random_brightness",
        "random_color_degeneration", "random_contrast", "random_sharpness",
        "random_posterization", "solarization", "auto_contrast", "equalization")
_SEED_STRIDE = 100


class RandAugment(_Augmentation):
    """num_ops rounds, each applying one of the 11 operations picked uniformly per batch; an
    operation picked twice draws the same values both times, as in Keras."""

    def __init__(self, value_range=(0, 255), num_ops=2, factor=0.5, interpolation="bilinear",
                 seed=None, data_format=None, **kwargs):
        super().__init__(seed, **kwargs)
        if isinstance(num_ops, bool) or not isinstance(num_ops, int) or num_ops < 0:
            raise GraphcError(f"RandAugment: num_ops must be an int >= 0, got {num_ops!r}")
        ops_image._channels_last(data_format, "RandAugment")
        self.value_range = tuple(float(v) for v in value_range)
        self.num_ops, self.interpolation = num_ops, interpolation
        self.factor = _unit_factor(factor, "RandAugment")
        self.operations = [OPERATIONS[name](self.factor, self.value_range, interpolation,
                                            self.seed + _SEED_STRIDE * (k + 1))
                           for k, name in enumerate(_OPS)]

    def choices(self, x):
        """Each round's pick per batch: an operation's index."""
        n = len(self.operations)
        return [gc.floor(self._per_image(x, r, 0.0, float(n))[0, 0, 0, 0])
                for r in range(self.num_ops)]

    def transform(self, x):
        for pick in self.choices(x):
            x = apply_picked(self.operations, pick, x)
        return x

    def get_config(self):
        return {**super().get_config(), "value_range": list(self.value_range),
                "num_ops": self.num_ops, "factor": list(self.factor),
                "interpolation": self.interpolation}


LAYERS = (RandAugment,)
