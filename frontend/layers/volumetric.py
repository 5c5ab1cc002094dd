"""The 3-D (volumetric, channels-last) versions of padding, cropping, up-sampling and global
pooling: inputs (batch, d1, d2, d3, channels)."""
import graphc as gc

from .base import Layer
from .extra import _channels_last, _GlobalPooling, _SpatialCropping, _SpatialPadding


class ZeroPadding3D(_SpatialPadding):
    rank = 3

    def __init__(self, padding=((1, 1), (1, 1), (1, 1)), data_format=None, **kwargs):
        super().__init__(padding, data_format, **kwargs)


class Cropping3D(_SpatialCropping):
    rank = 3

    def __init__(self, cropping=((1, 1), (1, 1), (1, 1)), data_format=None, **kwargs):
        super().__init__(cropping, data_format, **kwargs)


class UpSampling3D(Layer):
    """Repeats each of the three spatial axes size[i] times (nearest neighbour)."""

    def __init__(self, size=(2, 2, 2), data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.size = (size,) * 3 if isinstance(size, int) else tuple(size)
        self.data_format = _channels_last(self, data_format)

    def call(self, inputs):
        _, d1, d2, d3, c = inputs.shape
        x = inputs
        for axis in (2, 4, 6):  # a unit axis after each spatial one
            x = gc.expand_dims(x, axis)
        s1, s2, s3 = self.size
        x = gc.broadcast_to(x, (inputs.shape[0], d1, s1, d2, s2, d3, s3, c))
        return gc.reshape(x, (-1, d1 * s1, d2 * s2, d3 * s3, c))

    def get_config(self):
        return {**super().get_config(), "size": list(self.size)}


class GlobalAveragePooling3D(_GlobalPooling):
    axes, reduce = (1, 2, 3), staticmethod(gc.mean)


class GlobalMaxPooling3D(_GlobalPooling):
    axes, reduce = (1, 2, 3), staticmethod(gc.max)


LAYERS = (ZeroPadding3D, Cropping3D, UpSampling3D, GlobalAveragePooling3D, GlobalMaxPooling3D)
