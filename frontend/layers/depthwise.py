"""DepthwiseConv1D/2D and SeparableConv1D/2D (channels last), weights in Keras's shapes and
order: depthwise kernel (k..., channels, depth_multiplier), [pointwise kernel (1..., channels
* depth_multiplier, filters)], bias. graphc's conv2d has no groups, so a depthwise
convolution is the sum over kernel taps of strided slices of the (padded) input times that
tap's per-channel weights; each tap is one elementwise multiply, which fuses."""
import graphc as gc
from graphc.errors import GraphcError

from .. import activations, constraints, initializers, regularizers
from .base import Spatial
from .conv import pair


def _same_pads(size, k, stride, dilation):
    """TensorFlow's SAME padding (the extra one at the end) for one axis."""
    span = (k - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + span - size, 0)
    return total // 2, total - total // 2


def depthwise_conv2d(x, kernel, strides, padding, dilation):
    """x (b, h, w, c), kernel (kh, kw, c, m) -> (b, h', w', c * m), channel c*m + j from
    input channel c and multiplier j."""
    _, h, w, c = x.shape
    kh, kw, _, m = kernel.shape
    (sh, sw), (dh, dw) = strides, dilation
    if padding == "same":
        pads = [_same_pads(h, kh, sh, dh), _same_pads(w, kw, sw, dw)]
        x = gc.pad(x, [(0, 0)] + pads + [(0, 0)])
        h, w = h + sum(pads[0]), w + sum(pads[1])
    oh, ow = (h - (kh - 1) * dh - 1) // sh + 1, (w - (kw - 1) * dw - 1) // sw + 1
    if oh < 1 or ow < 1:
        raise GraphcError(f"depthwise convolution: a {kh}x{kw} kernel does not fit inputs of "
                          f"{h}x{w}")
    xe = gc.expand_dims(x, -1)  # (b, h, w, c, 1)
    out = None
    for i in range(kh):
        for j in range(kw):
            patch = xe[:, i * dh:i * dh + (oh - 1) * sh + 1:sh,
                       j * dw:j * dw + (ow - 1) * sw + 1:sw]
            term = patch * kernel[i, j]  # (b, oh, ow, c, m)
            out = term if out is None else out + term
    return gc.reshape(out, (-1, oh, ow, c * m))


class _Depthwise(Spatial):
    """The shared part: argument handling, the depthwise kernel and the bias; rank 1 runs
    as rank 2 over a unit height."""
    rank = 2
    separable = False

    def __init__(self, kernel_size, strides=1, padding="valid", depth_multiplier=1,
                 data_format=None, dilation_rate=1, activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", bias_initializer="zeros",
                 depthwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 depthwise_constraint=None, bias_constraint=None, filters=None,
                 pointwise_initializer="glorot_uniform", pointwise_regularizer=None,
                 pointwise_constraint=None, **kwargs):
        super().__init__(**kwargs)
        self._data_format(data_format)
        one = self.rank == 1
        self.kernel_size = (1,) + _ints(kernel_size, 1) if one else pair(kernel_size,
                                                                         "kernel_size")
        self.strides = (1,) + _ints(strides, 1) if one else pair(strides, "strides")
        self.dilation_rate = (1,) + _ints(dilation_rate, 1) if one else \
            pair(dilation_rate, "dilation_rate")
        self.padding = str(padding).lower()
        if self.padding not in ("valid", "same"):
            raise GraphcError(f"padding must be 'valid' or 'same', got {padding!r}")
        self.depth_multiplier, self.filters = int(depth_multiplier), filters
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.options = {
            "depthwise": (depthwise_initializer, depthwise_regularizer, depthwise_constraint),
            "pointwise": (pointwise_initializer, pointwise_regularizer, pointwise_constraint),
            "bias": (bias_initializer, bias_regularizer, bias_constraint)}

    def _weight(self, name, shape, role):
        init, reg, con = self.options[role]
        return self.add_weight(name, shape, init, regularizer=reg, constraint=con)

    def build(self, input_shape):
        if len(input_shape) != self.rank + 2 or input_shape[-1] is None:
            raise GraphcError(f"{type(self).__name__} '{self.name}' expects inputs of rank "
                              f"{self.rank + 2} with known channels, got {input_shape}")
        c, m = input_shape[-1], self.depth_multiplier
        k = self.kernel_size[1:] if self.rank == 1 else self.kernel_size
        name = "depthwise_kernel" if self.separable else "kernel"
        self.depthwise_kernel = self._weight(name, tuple(k) + (c, m), "depthwise")
        if self.separable:
            self.pointwise_kernel = self._weight("pointwise_kernel", (1,) * self.rank +
                                                 (c * m, self.filters), "pointwise")
        out = self.filters if self.separable else c * m
        self.bias = self._weight("bias", (out,), "bias") if self.use_bias else None

    def call(self, inputs):
        x, k = inputs, self.depthwise_kernel
        if self.rank == 1:
            x, k = gc.expand_dims(x, 1), gc.expand_dims(k, 0)
        out = depthwise_conv2d(x, k, self.strides, self.padding, self.dilation_rate)
        if self.rank == 1:
            out = gc.squeeze(out, axis=1)
        if self.separable:
            pointwise = self.pointwise_kernel
            out = gc.matmul(out, gc.reshape(pointwise, tuple(pointwise.shape[-2:])))
        if self.bias is not None:
            out = out + self.bias
        return self.activation(out)

    def get_config(self):
        ks, st, dl = (v[1:] if self.rank == 1 else v for v in (self.kernel_size, self.strides,
                                                                self.dilation_rate))
        config = {**super().get_config(), "kernel_size": list(ks), "strides": list(st),
                  "padding": self.padding, "depth_multiplier": self.depth_multiplier,
                  "dilation_rate": list(dl), "activation": activations.name_of(self.activation),
                  "use_bias": self.use_bias}
        roles = ("depthwise", "pointwise", "bias") if self.separable else ("depthwise", "bias")
        for role in roles:
            init, reg, con = self.options[role]
            config[f"{role}_initializer"] = initializers.serialize(initializers.get(init))
            config[f"{role}_regularizer"] = regularizers.serialize(regularizers.get(reg))
            config[f"{role}_constraint"] = constraints.serialize(constraints.get(con))
        if self.separable:
            config["filters"] = self.filters
        return config


def _ints(value, n):
    return (value,) * n if isinstance(value, int) else tuple(value)


class DepthwiseConv2D(_Depthwise):
    pass


class DepthwiseConv1D(_Depthwise):
    rank = 1


class _Separable(_Depthwise):
    separable = True

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, depth_multiplier=1, **kwargs):
        super().__init__(kernel_size, strides, padding, depth_multiplier, data_format,
                         dilation_rate, filters=int(filters), **kwargs)


class SeparableConv2D(_Separable):
    pass


class SeparableConv1D(_Separable):
    rank = 1


LAYERS = (DepthwiseConv1D, DepthwiseConv2D, SeparableConv1D, SeparableConv2D)
