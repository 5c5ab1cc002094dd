"""Layers that combine several inputs: Add and Concatenate."""
from functools import reduce

import graphc as gc
from graphc.errors import GraphcError

from .base import Layer


def _several(layer, inputs):
    if not isinstance(inputs, (list, tuple)) or len(inputs) < 2:
        raise GraphcError(f"{type(layer).__name__} '{layer.name}' takes a list of at least "
                          "two tensors")
    return list(inputs)


class Add(Layer):
    supports_masking = True

    def call(self, inputs):
        return reduce(lambda a, b: a + b, _several(self, inputs))

    def compute_mask(self, inputs, mask):
        """The inputs' masks anded, as in Keras (None where no input has one)."""
        masks = [m for m in (mask or []) if m is not None]
        return reduce(gc.logical_and, masks) if masks else None


class Concatenate(Layer):
    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def call(self, inputs):
        return gc.concat(_several(self, inputs), axis=self.axis)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}
