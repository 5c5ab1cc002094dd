"""MixUp and CutMix, as Keras 3.15 applies them to a batch of images: while training each
image blended with, or given a rectangle of, another image of the batch (a random
permutation), by weights drawn per image from a Beta distribution; the identity at
inference. Called on a dict {"images": ..., "labels": ...}, as Keras's are, they mix each
image's labels with its partner's by the image's weight (MixUp's w, CutMix's share of the
image left outside the rectangle) and return the dict. The random draws are graphc's own,
from Keras's distributions."""
import graphc as gc
from graphc.errors import ArgumentError, GraphcError
from graphc.ops.state import random_uniform_like

from .. import ops_image
from ..random import beta_like
from .color import _unit_factor
from .preprocessing import _Augmentation
from .random_erasing import _positions, in_span


def random_permutation(batch_like, seed):
    """A uniformly random order of the batch's indices (run-time batch allowed): each index's
    rank among i.i.d. uniform keys."""
    keys = random_uniform_like(batch_like, seed=seed)
    below = gc.cast(gc.expand_dims(keys, 0) < gc.expand_dims(keys, 1), gc.int32)
    return gc.sum(below, axis=1)


class _Mixing(_Augmentation):
    """An augmentation that mixes each image with a partner of the batch; mix(x) gives the
    images, each image's label weight (batch,) and the partners (a permutation)."""

    def __call__(self, inputs, training=None, **kwargs):
        if not isinstance(inputs, dict):
            return super().__call__(inputs, training=training, **kwargs)
        if "images" not in inputs or set(inputs) - {"images", "labels"}:
            raise ArgumentError(f"{type(self).__name__} '{self.name}' takes images or a dict "
                                f"of 'images' and 'labels', got keys {sorted(inputs)}")
        if "labels" not in inputs:
            return {"images": super().__call__(inputs["images"], training=training, **kwargs)}
        labels = inputs["labels"]
        if labels.ndim < 2:
            raise ArgumentError(f"{type(self).__name__} '{self.name}' mixes labels of shape "
                                f"(batch, classes, ...), got shape {tuple(labels.shape)}: "
                                "one-hot encode them")
        images, labels = super().__call__([inputs["images"], labels], training=training,
                                          **kwargs)
        return {"images": images, "labels": labels}

    def call(self, inputs, training=False):
        images, labels = inputs if isinstance(inputs, list) else (inputs, None)
        x = images if images.dtype.is_float else gc.cast(images, gc.float32)
        if labels is not None and not labels.dtype.is_float:
            labels = gc.cast(labels, gc.float32)
        if not training:
            return x if labels is None else [x, labels]
        mixed, weight, partners = self.mix(x)
        if labels is None:
            return mixed
        weight = gc.reshape(weight, (-1,) + (1,) * (labels.ndim - 1))
        return [mixed, weight * labels + (1.0 - weight) * gc.gather(labels, partners, axis=0)]


class MixUp(_Mixing):
    """(batch, h, w, c) images: w * image + (1 - w) * another image of the batch, w drawn per
    image from Beta(alpha, alpha)."""

    def __init__(self, alpha=0.2, data_format=None, seed=None, **kwargs):
        super().__init__(seed, **kwargs)
        if not (isinstance(alpha, (int, float)) and alpha > 0):
            raise GraphcError(f"MixUp: alpha must be a positive number, got {alpha!r}")
        self.alpha = float(alpha)
        ops_image._channels_last(data_format, "MixUp")

    def mix(self, x):
        batch = x[:, 0, 0, 0]
        weight = beta_like(batch, self.alpha, self.alpha, self.seed)
        partners = random_permutation(batch, self.seed + 10000)
        w = gc.reshape(weight, (-1, 1, 1, 1))
        return w * x + (1.0 - w) * gc.gather(x, partners, axis=0), weight, partners

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


class CutMix(_Mixing):
    """(batch, h, w, c) images: in each image a rectangle replaced by the same cells of
    another image of the batch; its sides are sqrt(1 - m) of the height and width, m drawn per
    image from Beta(a, a) with a drawn once for the batch in factor's range (f: [0, f],
    +1e-6 as Keras adds), its corner uniformly where it fits. The labels' weight is the
    share of the image outside the rectangle, 1 - its area / the image's, as in Keras."""

    def __init__(self, factor=1.0, seed=None, data_format=None, **kwargs):
        super().__init__(seed, **kwargs)
        self.factor = _unit_factor(factor, "CutMix")
        ops_image._channels_last(data_format, "CutMix")

    def mix(self, x):
        batch = x[:, 0, 0, 0]
        alpha = random_uniform_like(x[0, 0, 0, 0], *self.factor, seed=self.seed) + 1e-6
        m = gc.reshape(beta_like(batch, alpha, alpha, self.seed + 20000), (-1, 1, 1, 1))
        ratio = gc.sqrt(1.0 - m)
        inside = gc.logical_and(in_span(x, 2, ratio, self._per_image(x, 2)),
                                in_span(x, 1, ratio, self._per_image(x, 3)))
        partners = random_permutation(batch, self.seed + 10000)
        height, width = _positions(x, 1)[1], _positions(x, 2)[1]
        weight = 1.0 - (ratio * width) * (ratio * height) / (width * height)
        return gc.where(inside, gc.gather(x, partners, axis=0), x), \
            gc.reshape(weight, (-1,)), partners

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor)}


LAYERS = (MixUp, CutMix)
