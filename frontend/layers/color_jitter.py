"""RandomColorJitter, as Keras 3.15 has it: RandomBrightness, RandomContrast,
RandomSaturation and RandomHue applied in that order while training, each only where its
factor is given; the identity at inference."""
from .. import ops_image
from .hsv_augment import RandomHue, RandomSaturation
from .preprocessing import RandomBrightness, RandomContrast, _Augmentation

# (argument, layer) in the order Keras applies them; each draws from its own seed stream
_STAGES = (("brightness_factor", RandomBrightness), ("contrast_factor", RandomContrast),
           ("saturation_factor", RandomSaturation), ("hue_factor", RandomHue))
_SEED_STRIDE = 100


class RandomColorJitter(_Augmentation):
    """The chain of the given colour augmentations, each with value_range and a seed of its
    own derived from seed."""

    def __init__(self, value_range=(0, 255), brightness_factor=None, contrast_factor=None,
                 saturation_factor=None, hue_factor=None, seed=None, data_format=None,
                 **kwargs):
        super().__init__(seed, **kwargs)
        ops_image._channels_last(data_format, "RandomColorJitter")
        self.value_range = tuple(value_range)
        self.factors = dict(zip((name for name, _ in _STAGES),
                                (brightness_factor, contrast_factor, saturation_factor,
                                 hue_factor)))
        self.stages = [make(factor=self.factors[name], value_range=self.value_range,
                            seed=self.seed + _SEED_STRIDE * (k + 1))
                       for k, (name, make) in enumerate(_STAGES)
                       if self.factors[name] is not None]

    def transform(self, x):
        for stage in self.stages:
            x = stage.transform(x)
        return x

    def get_config(self):
        return {**super().get_config(), "value_range": list(self.value_range),
                **self.factors}


LAYERS = (RandomColorJitter,)
