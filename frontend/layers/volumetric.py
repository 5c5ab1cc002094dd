"""The 3-D (volumetric, channels-last) layers: convolutions, transposed convolutions,
pooling, padding, cropping, up-sampling and global pooling over inputs (batch, d1, d2, d3,
channels) (or channels first), each the 2-D layer over three spatial axes where one exists."""
import graphc as gc
from graphc.errors import GraphcError

from .base import Spatial
from .conv import Conv2D
from .extra import _GlobalPooling, _SpatialCropping, _SpatialPadding, Conv2DTranspose
from .pooling import _Pooling2D


def triple(value, what):
    """An int or three positive ints, as a triple."""
    values = (value,) * 3 if isinstance(value, int) else tuple(value)
    if len(values) != 3 or not all(isinstance(v, int) and v >= 1 for v in values):
        raise GraphcError(f"{what} must be a positive int or three of them, got {value!r}")
    return values


class Conv3D(Conv2D):
    """3-D convolution: (batch, d, h, w, channels) -> (batch, d', h', w', filters); kernel
    (kd, kh, kw, channels // groups, filters) (gc.nn.conv3d)."""
    rank, conv = 3, staticmethod(gc.nn.conv3d)

    def __init__(self, filters, kernel_size, strides=(1, 1, 1), padding="valid",
                 data_format=None, dilation_rate=(1, 1, 1), groups=1, **kwargs):
        super().__init__(filters, kernel_size, strides, padding, data_format, dilation_rate,
                         groups, **kwargs)

    def _sizes(self, value, what):
        return triple(value, what)


class Conv3DTranspose(Conv2DTranspose):
    """The transposed 3-D convolution: (batch, d, h, w, c) -> (batch, d', h', w', filters);
    kernel (kd, kh, kw, filters, c), sizes as Keras's (gc.nn.conv3d_transpose)."""
    rank = 3

    def __init__(self, filters, kernel_size, strides=(1, 1, 1), padding="valid",
                 output_padding=None, data_format=None, dilation_rate=(1, 1, 1), **kwargs):
        super().__init__(filters, kernel_size, strides, padding, output_padding, data_format,
                         dilation_rate, **kwargs)

    def _sizes(self, value, what):
        return triple(value, what)

    def _transposed(self, inputs):
        return gc.nn.conv3d_transpose(inputs, self.kernel, self.strides, self.padding,
                                      self.dilation_rate, self.output_padding)


class _Pooling3D(_Pooling2D):
    def __init__(self, pool_size=(2, 2, 2), strides=None, padding="valid", data_format=None,
                 **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)

    def _sizes(self, value, what):
        return triple(value, what)


class MaxPooling3D(_Pooling3D):
    op = staticmethod(gc.nn.max_pool3d)


class AveragePooling3D(_Pooling3D):
    op = staticmethod(gc.nn.avg_pool3d)


class ZeroPadding3D(_SpatialPadding):
    rank = 3

    def __init__(self, padding=((1, 1), (1, 1), (1, 1)), data_format=None, **kwargs):
        super().__init__(padding, data_format, **kwargs)


class Cropping3D(_SpatialCropping):
    rank = 3

    def __init__(self, cropping=((1, 1), (1, 1), (1, 1)), data_format=None, **kwargs):
        super().__init__(cropping, data_format, **kwargs)


class UpSampling3D(Spatial):
    """Repeats each of the three spatial axes size[i] times (nearest neighbour)."""

    def __init__(self, size=(2, 2, 2), data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.size = (size,) * 3 if isinstance(size, int) else tuple(size)
        self._data_format(data_format)

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


LAYERS = (Conv3D, Conv3DTranspose, MaxPooling3D, AveragePooling3D, ZeroPadding3D, Cropping3D, UpSampling3D, GlobalAveragePooling3D, GlobalMaxPooling3D)
