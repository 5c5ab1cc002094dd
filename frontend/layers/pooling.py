"""Max and average pooling over NHWC inputs, and global average pooling."""
import graphc as gc

from .base import Spatial
from .conv import pair, padding_mode
from .extra import _GlobalPooling


class _Pooling2D(Spatial):
    op = None  # the gc.nn pool function

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        self._data_format(data_format)
        self.pool_size = self._sizes(pool_size, "pool_size")
        self.strides = self.pool_size if strides is None else self._sizes(strides, "strides")
        self.padding = padding_mode(padding)

    def _sizes(self, value, what):
        return pair(value, what)

    def call(self, inputs):
        return type(self).op(inputs, self.pool_size, self.strides, padding=self.padding.upper())

    def get_config(self):
        return {**super().get_config(), "pool_size": list(self.pool_size),
                "strides": list(self.strides), "padding": self.padding}


class MaxPooling2D(_Pooling2D):
    op = staticmethod(gc.nn.max_pool2d)


class AveragePooling2D(_Pooling2D):
    op = staticmethod(gc.nn.avg_pool2d)


class GlobalAveragePooling2D(_GlobalPooling):
    """(batch, h, w, c) -> (batch, c) (keepdims: (batch, 1, 1, c)), the mean over height and
    width."""
    axes, reduce = (1, 2), staticmethod(gc.mean)
