"""Conv2D on NHWC inputs with HWIO kernels, grouped convolutions among them (Conv3D is the same
layer over three spatial axes)."""
import graphc as gc
from graphc.errors import GraphcError

from .base import Spatial, set_weight_options, weight_options_config


def pair(value, what):
    """An int or a pair of ints, as a pair."""
    pair_ = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair_) != 2 or not all(isinstance(v, int) and v >= 1 for v in pair_):
        raise GraphcError(f"{what} must be a positive int or a pair of them, got {value!r}")
    return pair_


def padding_mode(value):
    if str(value).lower() not in ("same", "valid"):
        raise GraphcError(f"padding must be 'same' or 'valid', got {value!r}")
    return str(value).lower()


def grouped_conv(conv, x, kernel, groups, strides, padding, dilations):
    """conv (gc.nn.conv2d or conv3d) of channels-last x by a (k..., channels // groups,
    filters) kernel in `groups` groups: group g's channels meet filters g * filters/groups
    onwards only (Keras's feature groups); graphc's convolutions have no groups, so each group
    is a convolution of its own and the outputs are concatenated."""
    if groups == 1:
        return conv(x, kernel, strides=strides, padding=padding.upper(), dilations=dilations)
    cin, fout = kernel.shape[-2], kernel.shape[-1] // groups
    return gc.concat([conv(x[..., g * cin:(g + 1) * cin], kernel[..., g * fout:(g + 1) * fout],
                           strides=strides, padding=padding.upper(), dilations=dilations)
                      for g in range(groups)], axis=-1)


def grouped_conv2d(x, kernel, groups, strides, padding, dilations):
    return grouped_conv(gc.nn.conv2d, x, kernel, groups, strides, padding, dilations)


def check_groups(layer, channels):
    """The kernel's input channels, channels // groups, after checking both divide evenly."""
    if channels % layer.groups or layer.filters % layer.groups:
        raise GraphcError(f"{type(layer).__name__} '{layer.name}': groups={layer.groups} must "
                          f"divide both the input channels ({channels}) and filters "
                          f"({layer.filters})")
    return channels // layer.groups


def positive_groups(groups):
    if not isinstance(groups, int) or groups < 1:
        raise GraphcError(f"groups must be a positive int, got {groups!r}")
    return groups


class Conv2D(Spatial):
    """2-D convolution: (batch, h, w, channels) -> (batch, h', w', filters); kernel (kh, kw,
    channels // groups, filters)."""
    rank, conv = 2, staticmethod(gc.nn.conv2d)  # spatial axes; the gc.nn convolution

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, groups=1, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = self._sizes(kernel_size, "kernel_size")
        self.strides = self._sizes(strides, "strides")
        self.padding = padding_mode(padding)
        self.dilation_rate = self._sizes(dilation_rate, "dilation_rate")
        self.groups = positive_groups(groups)
        self._data_format(data_format)
        set_weight_options(self, activation, use_bias, kernel_initializer, bias_initializer,
                           kernel_regularizer, bias_regularizer, kernel_constraint,
                           bias_constraint)

    def _sizes(self, value, what):
        return pair(value, what)

    def build(self, input_shape):
        if len(input_shape) != self.rank + 2 or input_shape[-1] is None:
            raise GraphcError(f"{type(self).__name__} '{self.name}' expects inputs (batch, "
                              f"{self.rank} spatial axes, channels) with known channels, got "
                              f"{input_shape}")
        self.kernel = self.add_weight("kernel", self.kernel_size + (
                                          check_groups(self, input_shape[-1]), self.filters),
                                      self.kernel_initializer,
                                      regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        self.bias = self.add_weight("bias", (self.filters,), self.bias_initializer,
                                    regularizer=self.bias_regularizer,
                                    constraint=self.bias_constraint) if self.use_bias else None

    def call(self, inputs):
        out = grouped_conv(type(self).conv, inputs, self.kernel, self.groups, self.strides,
                           self.padding, self.dilation_rate)
        if self.bias is not None:
            out = out + self.bias
        return self.activation(out)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": list(self.kernel_size), "strides": list(self.strides),
                "padding": self.padding, "dilation_rate": list(self.dilation_rate),
                "groups": self.groups, **weight_options_config(self)}
