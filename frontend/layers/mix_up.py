"""MixUp, as Keras 3.15 applies it to a batch of images: while training each image blended
with another of the batch (a random permutation), weights drawn per image from Beta(alpha,
alpha); the identity at inference. Labels given in a dict are not mixed here (images only).
The random draws are graphc's own, from Keras's distributions."""
import graphc as gc
from graphc.errors import GraphcError
from graphc.ops.state import random_uniform_like

from .. import ops_image
from ..random import beta_like
from .preprocessing import _Augmentation


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


LAYERS = (MixUp,)
