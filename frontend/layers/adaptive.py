"""Adaptive pooling: Keras's AdaptiveAveragePooling1D/2D/3D and AdaptiveMaxPooling1D/2D/3D,
which pool channels-last (or, transposed, channels-first) inputs down (or up) to a fixed output size per spatial axis, with
Keras's window edges (gk.ops.adaptive_average_pool / adaptive_max_pool)."""
from graphc.errors import GraphcError

from .. import ops_nn
from .base import Spatial


class _AdaptivePooling(Spatial):
    rank, op = None, None

    def __init__(self, output_size, data_format=None, **kwargs):
        super().__init__(**kwargs)
        sizes = (output_size,) * self.rank if isinstance(output_size, int) else output_size
        if not (isinstance(sizes, (tuple, list)) and len(sizes) == self.rank
                and all(isinstance(n, int) and n >= 1 for n in sizes)):
            raise GraphcError(f"{type(self).__name__}: output_size must be a positive int or "
                              f"{self.rank} of them, got {output_size!r}")
        self.output_size = tuple(sizes)
        self._data_format(data_format)

    def call(self, inputs):
        if len(inputs.shape) != self.rank + 2:
            raise GraphcError(f"{type(self).__name__} '{self.name}' expects (batch, "
                              f"{self.rank} spatial axes, channels), got {tuple(inputs.shape)}")
        return type(self).op(inputs, self.output_size)

    def get_config(self):
        return {**super().get_config(), "output_size": list(self.output_size)}


def _layer(name, rank, op):
    """The adaptive pooling layer class of `rank` spatial axes that pools with op."""
    return type(name, (_AdaptivePooling,), {
        "rank": rank, "op": staticmethod(op), "__module__": __name__,
        "__doc__": f"{op.__name__} to output_size over {rank} spatial axes, channels last."})


AdaptiveAveragePooling1D = _layer("AdaptiveAveragePooling1D", 1, ops_nn.adaptive_average_pool)
AdaptiveAveragePooling2D = _layer("AdaptiveAveragePooling2D", 2, ops_nn.adaptive_average_pool)
AdaptiveAveragePooling3D = _layer("AdaptiveAveragePooling3D", 3, ops_nn.adaptive_average_pool)
AdaptiveMaxPooling1D = _layer("AdaptiveMaxPooling1D", 1, ops_nn.adaptive_max_pool)
AdaptiveMaxPooling2D = _layer("AdaptiveMaxPooling2D", 2, ops_nn.adaptive_max_pool)
AdaptiveMaxPooling3D = _layer("AdaptiveMaxPooling3D", 3, ops_nn.adaptive_max_pool)

LAYERS = (AdaptiveAveragePooling1D, AdaptiveAveragePooling2D, AdaptiveAveragePooling3D,
          AdaptiveMaxPooling1D, AdaptiveMaxPooling2D, AdaptiveMaxPooling3D)
