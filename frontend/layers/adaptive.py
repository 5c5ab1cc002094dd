"""Adaptive pooling: Keras's AdaptiveAveragePooling1D/2D/3D and AdaptiveMaxPooling1D/2D/3D,
which pool channels-last inputs down (or up) to a fixed output size per spatial axis, with
Keras's window edges (gk.ops.adaptive_average_pool / adaptive_max_pool)."""
from graphc.errors import GraphcError

from .. import ops_nn
from .base import Layer
from .extra import _channels_last


class _AdaptivePooling(Layer):
    rank, op = None, None

    def __init__(self, output_size, data_format=None, **kwargs):
        super().__init__(**kwargs)
        sizes = (output_size,) * self.rank if isinstance(output_size, int) else output_size
        if not (isinstance(sizes, (tuple, list)) and len(sizes) == self.rank
                and all(isinstance(n, int) and n >= 1 for n in sizes)):
            raise GraphcError(f"{type(self).__name__}: output_size must be a positive int or "
                              f"{self.rank} of them, got {output_size!r}")
        self.output_size = tuple(sizes)
        self.data_format = _channels_last(self, data_format)

    def call(self, inputs):
        if len(inputs.shape) != self.rank + 2:
            raise GraphcError(f"{type(self).__name__} '{self.name}' expects (batch, "
                              f"{self.rank} spatial axes, channels), got {tuple(inputs.shape)}")
        return type(self).op(inputs, self.output_size)

    def get_config(self):
        return {**super().get_config(), "output_size": list(self.output_size),
                "data_format": self.data_format}


_average = staticmethod(ops_nn.adaptive_average_pool)
_max = staticmethod(ops_nn.adaptive_max_pool)


class AdaptiveAveragePooling1D(_AdaptivePooling):
    rank, op = 1, _average


class AdaptiveAveragePooling2D(_AdaptivePooling):
    rank, op = 2, _average


class AdaptiveAveragePooling3D(_AdaptivePooling):
    rank, op = 3, _average


class AdaptiveMaxPooling1D(_AdaptivePooling):
    rank, op = 1, _max


class AdaptiveMaxPooling2D(_AdaptivePooling):
    rank, op = 2, _max


class AdaptiveMaxPooling3D(_AdaptivePooling):
    rank, op = 3, _max


LAYERS = (AdaptiveAveragePooling1D, AdaptiveAveragePooling2D, AdaptiveAveragePooling3D,
          AdaptiveMaxPooling1D, AdaptiveMaxPooling2D, AdaptiveMaxPooling3D)
