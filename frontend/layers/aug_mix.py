"""Keras's AugMix: num_chains chains of up to chain_depth augmentations picked at random,
mixed by Dirichlet(alpha) weights and blended with the input by a Beta(alpha, alpha) weight,
clipped to value_range, while training (seeded; the identity at inference). The random draws
are graphc's own, from Keras's distributions; the pick of each step is drawn per batch, as
Keras's is per call."""
import graphc as gc
from graphc.errors import GraphcError

from .. import ops_image
from ..random import _standard_gamma, beta_like
from .affine import RandomRotation, RandomShear, RandomTranslation
from .color import (AutoContrast, RandomColorDegeneration, RandomPosterization, RandomSharpness,
                    Solarization, _unit_factor)
from .equalization import Equalization
from .preprocessing import RandomBrightness, RandomContrast, _Augmentation

# Keras's operations by name: (factor (low, high), value_range, interpolation, seed) -> layer
OPERATIONS = {
    "random_shear": lambda f, vr, i, s: RandomShear(f, f, interpolation=i, seed=s),
    "random_translation": lambda f, vr, i, s: RandomTranslation(f, f, interpolation=i, seed=s),
    "random_rotation": lambda f, vr, i, s: RandomRotation(f, interpolation=i, seed=s),
    "random_posterization": lambda f, vr, i, s: RandomPosterization(max(1, int(8 * f[1])), vr,
                                                                    seed=s),
    "solarization": lambda f, vr, i, s: Solarization(f, f, vr, seed=s),
    "auto_contrast": lambda f, vr, i, s: AutoContrast(vr),
    "equalization": lambda f, vr, i, s: Equalization(vr),
    "random_brightness": lambda f, vr, i, s: RandomBrightness(f, vr, seed=s),
    "random_color_degeneration": lambda f, vr, i, s: RandomColorDegeneration(f, vr, seed=s),
    "random_contrast": lambda f, vr, i, s: RandomContrast(f, vr, seed=s),
    "random_sharpness": lambda f, vr, i, s: RandomSharpness(f, vr, seed=s),
}
# AugMix's operations in Keras's order; the last four only with all_ops
_ALL_OPS = tuple(OPERATIONS)
_BASIC_OPS = 7
_SEED_STRIDE = 100


def _apply(layer, x):
    """An operation's training transform (AutoContrast's call)."""
    return layer.transform(x) if isinstance(layer, _Augmentation) else layer.call(x)


def apply_picked(layers, pick, x):
    """x through layers[pick] (pick a scalar tensor; x itself where it names none of them)."""
    picked = x
    for k, layer in enumerate(layers):
        picked = gc.where(pick == float(k), _apply(layer, x), picked)
    return picked


class AugMix(_Augmentation):
    """Each chain step picks one of the operations or none, uniformly, per batch; the chains'
    outputs are summed with Dirichlet(alpha) weights w_c and the output is
    clip(b x + (1 - b) sum_c w_c chain_c(x), value_range), b ~ Beta(alpha, alpha) per batch."""

    def __init__(self, value_range=(0, 255), num_chains=3, chain_depth=3, factor=0.3,
                 alpha=1.0, all_ops=True, interpolation="bilinear", seed=None,
                 data_format=None, **kwargs):
        super().__init__(seed, **kwargs)
        for what, v in (("num_chains", num_chains), ("chain_depth", chain_depth)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise GraphcError(f"AugMix: {what} must be a positive int, got {v!r}")
        if not alpha > 0:
            raise GraphcError(f"AugMix: alpha must be positive, got {alpha!r}")
        ops_image._channels_last(data_format, "AugMix")
        self.value_range = tuple(float(v) for v in value_range)
        self.num_chains, self.chain_depth, self.alpha = num_chains, chain_depth, float(alpha)
        self.factor = _unit_factor(factor, "AugMix")
        self.all_ops, self.interpolation = bool(all_ops), interpolation
        names = _ALL_OPS if self.all_ops else _ALL_OPS[:_BASIC_OPS]
        # every step of every chain has layers of its own, so that each draws its own values
        self.steps = [[OPERATIONS[name](self.factor, self.value_range, interpolation,
                                        self.seed + _SEED_STRIDE * (step * len(names) + k + 1))
                       for k, name in enumerate(names)]
                      for step in range(num_chains * chain_depth)]

    def choices(self, x):
        """Each step's pick per batch: an operation's index, or len(operations) for none."""
        n = len(self.steps[0])
        return [gc.floor(self._per_image(x, step, 0.0, n + 1.0)[0, 0, 0, 0])
                for step in range(len(self.steps))]

    def mix_weights(self, x):
        """(the chains' Dirichlet(alpha) weights, the Beta(alpha, alpha) blend), per batch."""
        like = x[:, 0, 0, 0]
        base = self.seed + len(self.steps)
        gammas = [_standard_gamma((), self.alpha, base + 10 * c, like)[0]
                  for c in range(self.num_chains)]
        total = sum(gammas)
        blend = beta_like(like, self.alpha, self.alpha, base + 10 * self.num_chains)[0]
        return [g / total for g in gammas], blend

    def transform(self, x):
        picks = self.choices(x)
        chain_weights, blend = self.mix_weights(x)
        mixed = 0.0
        for c, weight in enumerate(chain_weights):
            y = x
            for step in range(c * self.chain_depth, (c + 1) * self.chain_depth):
                y = apply_picked(self.steps[step], picks[step], y)
            mixed = mixed + weight * y
        return gc.clip(blend * x + (1.0 - blend) * mixed, *self.value_range)

    def get_config(self):
        return {**super().get_config(), "value_range": list(self.value_range),
                "num_chains": self.num_chains, "chain_depth": self.chain_depth,
                "factor": list(self.factor), "alpha": self.alpha, "all_ops": self.all_ops,
                "interpolation": self.interpolation}


LAYERS = (AugMix,)
