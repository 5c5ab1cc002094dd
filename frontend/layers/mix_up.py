"""MixUp and CutMix, as Keras 3.15 applies them to a batch of images: while training each
image blended with, or given a rectangle of, another image of the batch (a random
permutation), by weights drawn per image from a Beta distribution; the identity at
inference. Labels given in a dict are not mixed here (images only). The random draws are
graphc's own, from Keras's distributions."""
import graphc as gc
from graphc.errors import GraphcError
from graphc.ops.state import random_uniform_like

from .. import ops_image
from ..random import beta_like
from .color import _unit_factor
from .preprocessing import _Augmentation
from .random_erasing import in_span


def random_permutation(batch_like, seed):
    """A uniformly random order of the batch's indices (run-time batch allowed): each index's
    rank among i.i.d. uniform keys."""
    keys = random_uniform_like(batch_like, seed=seed)
    below = gc.cast(gc.expand_dims(keys, 0) < gc.expand_dims(keys, 1), gc.int32)
    return gc.sum(below, axis=1)


class MixUp(_Augmentation):
    """(batch, h, w, c) images: w * image + (1 - w) * another image of the batch, w drawn per
    image from Beta(alpha, alpha)."""

    def __init__(self, alpha=0.2, data_format=None, seed=None, **kwargs):
        super().__init__(seed, **kwargs)
        if not (isinstance(alpha, (int, float)) and alpha > 0):
            raise GraphcError(f"MixUp: alpha must be a positive number, got {alpha!r}")
        self.alpha = float(alpha)
        ops_image._channels_last(data_format, "MixUp")

    def transform(self, x):
        batch = x[:, 0, 0, 0]
        weight = gc.reshape(beta_like(batch, self.alpha, self.alpha, self.seed),
                            (-1, 1, 1, 1))
        partner = gc.gather(x, random_permutation(batch, self.seed + 10000), axis=0)
        return weight * x + (1.0 - weight) * partner

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


class CutMix(_Augmentation):
    """(batch, h, w, c) images: in each image a rectangle replaced by the same cells of
    another image of the batch; its sides are sqrt(1 - m) of the height and width, m drawn per
    image from Beta(a, a) with a drawn once for the batch in factor's range (f: [0, f],
    +1e-6 as Keras adds), its corner uniformly where it fits."""

    def __init__(self, factor=1.0, seed=None, data_format=None, **kwargs):
        super().__init__(seed, **kwargs)
        self.factor = _unit_factor(factor, "CutMix")
        ops_image._channels_last(data_format, "CutMix")

    def transform(self, x):
        batch = x[:, 0, 0, 0]
        alpha = random_uniform_like(x[0, 0, 0, 0], *self.factor, seed=self.seed) + 1e-6
        m = gc.reshape(beta_like(batch, alpha, alpha, self.seed + 20000), (-1, 1, 1, 1))
        ratio = gc.sqrt(1.0 - m)
        inside = gc.logical_and(in_span(x, 2, ratio, self._per_image(x, 2)),
                                in_span(x, 1, ratio, self._per_image(x, 3)))
        partner = gc.gather(x, random_permutation(batch, self.seed + 10000), axis=0)
        return gc.where(inside, partner, x)

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor)}


LAYERS = (MixUp, CutMix)
