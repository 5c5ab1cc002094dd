"""Keras 3 layers built on graphc's existing ops: 1-D convolution and pooling (the 2-D ones over a
unit height), the transposed 2-D convolution (conv2d_backprop_input), up-sampling, global
pooling, padding and cropping, the activation layers, Rescaling, Lambda, TimeDistributed,
Permute, RepeatVector, and the merge layers beyond Add and Concatenate.

data_format="channels_first" runs as channels-last between transposes (base.Spatial).
"""
import base64
import marshal
import types
from functools import reduce

import numpy as np

import graphc as gc
from graphc.errors import CheckpointError, GraphcError

from .. import initializers, ops_image, regularizers
from .base import Layer, Spatial, set_weight_options, static_shape, weight_options_config
from .conv import check_groups, grouped_conv2d, pair, positive_groups
from .merge import _several


def _single(value, what):
    v = value[0] if isinstance(value, (list, tuple)) and len(value) == 1 else value
    if not isinstance(v, (int, np.integer)) or v < 1:
        raise GraphcError(f"{what} must be a positive int, got {value!r}")
    return int(v)


def _output_padding(value, rank):
    """None, or an int or `rank` ints >= 0 as a tuple of `rank` ints."""
    if value is None:
        return None
    values = (value,) * rank if isinstance(value, (int, np.integer)) else tuple(value)
    if len(values) != rank or not all(isinstance(v, (int, np.integer)) and v >= 0
                                      for v in values):
        raise GraphcError(f"output_padding must be a non-negative int or {rank} of them, got "
                          f"{value!r}")
    return tuple(int(v) for v in values)


def _padding(value, allowed=("valid", "same")):
    p = str(value).lower()
    if p not in allowed:
        raise GraphcError(f"padding must be one of {allowed}, got {value!r}")
    return p


# ---- convolutions ------------------------------------------------------------------------------
class Conv1D(Spatial):
    """(batch, steps, channels) -> (batch, new_steps, filters); kernel (kernel_size,
    channels // groups, filters). padding "causal" pads (kernel_size - 1) * dilation_rate steps
    on the left."""

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size = int(filters), _single(kernel_size, "kernel_size")
        self.strides, self.dilation_rate = _single(strides, "strides"), _single(dilation_rate,
                                                                                "dilation_rate")
        self.padding = _padding(padding, ("valid", "same", "causal"))
        self._data_format(data_format)
        self.groups = positive_groups(groups)
        set_weight_options(self, activation, use_bias, kernel_initializer, bias_initializer,
                           kernel_regularizer, bias_regularizer, kernel_constraint,
                           bias_constraint)

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise GraphcError(f"Conv1D '{self.name}' expects (batch, steps, channels) with "
                              f"known channels, got {input_shape}")
        self.kernel = self.add_weight("kernel", (self.kernel_size,
                                                 check_groups(self, input_shape[-1]),
                                                 self.filters), self.kernel_initializer,
                                      regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        self.bias = self.add_weight("bias", (self.filters,), self.bias_initializer,
                                    regularizer=self.bias_regularizer,
                                    constraint=self.bias_constraint) if self.use_bias else None

    def call(self, inputs):
        padding = self.padding
        if padding == "causal":
            inputs = gc.pad(inputs, [(0, 0), ((self.kernel_size - 1) * self.dilation_rate, 0),
                                     (0, 0)])
            padding = "valid"
        out = grouped_conv2d(gc.expand_dims(inputs, 1), gc.expand_dims(self.kernel, 0),
                             self.groups, (1, self.strides), padding, (1, self.dilation_rate))
        out = gc.squeeze(out, axis=1)
        if self.bias is not None:
            out = out + self.bias
        return self.activation(out)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": self.kernel_size, "strides": self.strides,
                "padding": self.padding, "dilation_rate": self.dilation_rate,
                "groups": self.groups, **weight_options_config(self)}


class Conv2DTranspose(Spatial):
    """The transposed 2-D convolution: (batch, h, w, c) -> (batch, h', w', filters); kernel
    (kh, kw, filters, c), sizes, output_padding and dilation_rate as in Keras
    (gc.nn.conv2d_transpose)."""
    rank = 2  # spatial axes; Conv1DTranspose runs as this over a unit height

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid",
                 output_padding=None, data_format=None, dilation_rate=(1, 1), activation=None,
                 use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size, self.strides = self._sizes(kernel_size, "kernel_size"), \
            self._sizes(strides, "strides")
        self.dilation_rate = self._sizes(dilation_rate, "dilation_rate")
        self.output_padding = _output_padding(output_padding, self.rank)
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise GraphcError(f"{type(self).__name__}: strides > 1 together with "
                              f"dilation_rate > 1 is not supported (as in Keras), got "
                              f"strides={self.strides}, dilation_rate={self.dilation_rate}")
        if self.output_padding is not None and any(
                p >= s for p, s in zip(self.output_padding, self.strides)):
            raise GraphcError(f"{type(self).__name__}: output_padding must be smaller than "
                              f"strides, got output_padding={self.output_padding}, "
                              f"strides={self.strides}")
        self.padding = _padding(padding)
        self._data_format(data_format)
        set_weight_options(self, activation, use_bias, kernel_initializer, bias_initializer,
                           kernel_regularizer, bias_regularizer, kernel_constraint,
                           bias_constraint)

    def _sizes(self, value, what):
        return pair(value, what)

    def build(self, input_shape):
        if len(input_shape) != self.rank + 2 or input_shape[-1] is None:
            raise GraphcError(f"{type(self).__name__} '{self.name}' expects (batch, "
                              f"{self.rank} spatial axes, channels) with known channels, got "
                              f"{input_shape}")
        self.kernel = self.add_weight("kernel", self.kernel_size + (self.filters,
                                                                    input_shape[-1]),
                                      self.kernel_initializer,
                                      regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        self.bias = self.add_weight("bias", (self.filters,), self.bias_initializer,
                                    regularizer=self.bias_regularizer,
                                    constraint=self.bias_constraint) if self.use_bias else None

    def call(self, inputs):
        out = self._transposed(inputs)
        if self.bias is not None:
            out = out + self.bias
        return self.activation(out)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": list(self.kernel_size), "strides": list(self.strides),
                "padding": self.padding, "dilation_rate": list(self.dilation_rate),
                "output_padding": (None if self.output_padding is None
                                   else list(self.output_padding)),
                **weight_options_config(self)}

    def _transposed(self, inputs):
        return gc.nn.conv2d_transpose(inputs, self.kernel, self.strides, self.padding,
                                      self.dilation_rate, self.output_padding)


class Conv1DTranspose(Conv2DTranspose):
    """The transposed 1-D convolution: (batch, steps, c) -> (batch, steps', filters), kernel
    (k, filters, c) as in Keras; Conv2DTranspose over a unit height."""
    rank = 1

    def __init__(self, filters, kernel_size, strides=1, padding="valid", output_padding=None,
                 data_format=None, dilation_rate=1, **kwargs):
        super().__init__(filters, kernel_size, strides, padding, output_padding, data_format,
                         dilation_rate, **kwargs)

    def _sizes(self, value, what):
        return (_single(value, what),)

    def _transposed(self, inputs):
        out = gc.nn.conv2d_transpose(
            gc.expand_dims(inputs, 1), gc.expand_dims(self.kernel, 0), (1,) + self.strides,
            self.padding, (1,) + self.dilation_rate,
            None if self.output_padding is None else (0,) + self.output_padding)
        return gc.squeeze(out, axis=1)


# ---- pooling and resampling --------------------------------------------------------------------
class _Pooling1D(Spatial):
    op = None

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = _single(pool_size, "pool_size")
        self.strides = self.pool_size if strides is None else _single(strides, "strides")
        self.padding = _padding(padding)
        self._data_format(data_format)

    def call(self, inputs):
        out = type(self).op(gc.expand_dims(inputs, 1), (1, self.pool_size), (1, self.strides),
                            padding=self.padding.upper())
        return gc.squeeze(out, axis=1)

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides,
                "padding": self.padding}


class MaxPooling1D(_Pooling1D):
    op = staticmethod(gc.nn.max_pool2d)


class AveragePooling1D(_Pooling1D):
    op = staticmethod(gc.nn.avg_pool2d)


class _GlobalPooling(Spatial):
    axes = None
    reduce = None

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self._data_format(data_format)
        self.keepdims = bool(keepdims)

    def call(self, inputs):
        return type(self).reduce(inputs, axis=self.axes, keepdims=self.keepdims)

    def get_config(self):
        return {**super().get_config(), "keepdims": self.keepdims}


class GlobalMaxPooling2D(_GlobalPooling):
    axes, reduce = (1, 2), staticmethod(gc.max)


class GlobalMaxPooling1D(_GlobalPooling):
    axes, reduce = (1,), staticmethod(gc.max)


class GlobalAveragePooling1D(_GlobalPooling):
    """The mean over steps; with a mask, over the unmasked steps only (as in Keras)."""
    axes, reduce = (1,), staticmethod(gc.mean)
    supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            return gc.mean(inputs, axis=1, keepdims=self.keepdims)
        m = gc.expand_dims(gc.cast(mask, inputs.dtype), -1)
        return gc.sum(inputs * m, axis=1, keepdims=self.keepdims) / \
            gc.sum(m, axis=1, keepdims=self.keepdims)

    def compute_mask(self, inputs, mask):
        return None


class UpSampling2D(Spatial):
    """Repeats rows and columns size times ("nearest"), or resamples the image to size times
    its height and width with ops.image.resize ("bilinear"), as Keras does."""

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kwargs):
        super().__init__(**kwargs)
        self.size = pair(size, "size")
        self._data_format(data_format)
        interpolation = interpolation.lower()
        if interpolation not in ("nearest", "bilinear"):
            raise GraphcError(f"UpSampling2D interpolation {interpolation!r} is not supported "
                              "(only 'nearest' and 'bilinear')")
        self.interpolation = interpolation

    def call(self, inputs):
        _, h, w, c = inputs.shape
        sh, sw = self.size
        if self.interpolation == "bilinear":
            return ops_image.resize(inputs, (h * sh, w * sw), interpolation="bilinear")
        x = gc.expand_dims(gc.expand_dims(inputs, 2), 4)  # (b, h, 1, w, 1, c)
        x = gc.broadcast_to(x, (inputs.shape[0], h, sh, w, sw, c))
        return gc.reshape(x, (-1, h * sh, w * sw, c))

    def get_config(self):
        return {**super().get_config(), "size": list(self.size),
                "interpolation": self.interpolation}


class UpSampling1D(Layer):
    def __init__(self, size=2, **kwargs):
        super().__init__(**kwargs)
        self.size = _single(size, "size")

    def call(self, inputs):
        _, t, c = inputs.shape
        x = gc.broadcast_to(gc.expand_dims(inputs, 2), (inputs.shape[0], t, self.size, c))
        return gc.reshape(x, (-1, t * self.size, c))

    def get_config(self):
        return {**super().get_config(), "size": self.size}


def _pad_pairs(value, rank, what):
    """Keras's padding/cropping forms: an int, `rank` ints (symmetric), or `rank` pairs."""
    if isinstance(value, int):
        return tuple((value, value) for _ in range(rank))
    value = tuple(value)
    if rank == 1 and len(value) == 2 and all(isinstance(v, int) for v in value):
        return (value,)
    if len(value) != rank:
        raise GraphcError(f"{what} must be an int, {rank} ints or {rank} pairs, got {value!r}")
    return tuple((v, v) if isinstance(v, int) else tuple(v) for v in value)


class _SpatialPadding(Spatial):
    """Zeros before and after each spatial axis of channels-last inputs (rank 2 or 3)."""
    rank = None

    def __init__(self, padding, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.padding = _pad_pairs(padding, self.rank, "padding")
        self._data_format(data_format)

    def call(self, inputs):
        return gc.pad(inputs, [(0, 0)] + list(self.padding) + [(0, 0)])

    def get_config(self):
        return {**super().get_config(), "padding": [list(p) for p in self.padding]}


class _SpatialCropping(Spatial):
    """Rows cut before and after each spatial axis of channels-last inputs (rank 2 or 3)."""
    rank = None

    def __init__(self, cropping, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.cropping = _pad_pairs(cropping, self.rank, "cropping")
        self._data_format(data_format)

    def call(self, inputs):
        index = tuple(slice(lo, inputs.shape[i + 1] - hi)
                      for i, (lo, hi) in enumerate(self.cropping))
        return inputs[(slice(None),) + index + (slice(None),)]

    def get_config(self):
        return {**super().get_config(), "cropping": [list(p) for p in self.cropping]}


class ZeroPadding2D(_SpatialPadding):
    rank = 2

    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(padding, data_format, **kwargs)


class ZeroPadding1D(Spatial):
    def __init__(self, padding=1, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self._data_format(data_format)
        self.padding = _pad_pairs(padding, 1, "padding")[0]

    def call(self, inputs):
        return gc.pad(inputs, [(0, 0), self.padding, (0, 0)])

    def get_config(self):
        return {**super().get_config(), "padding": list(self.padding)}


class Cropping2D(_SpatialCropping):
    rank = 2

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, **kwargs):
        super().__init__(cropping, data_format, **kwargs)


class Cropping1D(Layer):
    def __init__(self, cropping=(1, 1), **kwargs):
        super().__init__(**kwargs)
        self.cropping = _pad_pairs(cropping, 1, "cropping")[0]

    def call(self, inputs):
        return inputs[:, self.cropping[0]:inputs.shape[1] - self.cropping[1], :]

    def get_config(self):
        return {**super().get_config(), "cropping": list(self.cropping)}


# ---- activation layers ---------------------------------------------------------------------------
class ReLU(Layer):
    """max_value-capped ReLU with a slope below threshold, as Keras's ReLU layer."""
    supports_masking = True

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        if (max_value is not None and max_value < 0) or negative_slope < 0:
            raise GraphcError("ReLU's max_value and negative_slope must be >= 0")
        self.max_value = None if max_value is None else float(max_value)
        self.negative_slope, self.threshold = float(negative_slope), float(threshold)

    def call(self, inputs):
        x = inputs
        if self.threshold != 0:
            out = gc.where(x >= self.threshold, x, self.negative_slope * (x - self.threshold))
        elif self.negative_slope:
            out = gc.where(x >= 0, x, self.negative_slope * x)
        else:
            out = gc.relu(x)
        if self.max_value is not None:
            out = gc.minimum(out, self.max_value)
        return out

    def get_config(self):
        return {**super().get_config(), "max_value": self.max_value,
                "negative_slope": self.negative_slope, "threshold": self.threshold}


class LeakyReLU(Layer):
    supports_masking = True

    def __init__(self, negative_slope=0.3, **kwargs):
        if "alpha" in kwargs:  # Keras 2's name, which Keras 3 still takes
            negative_slope = kwargs.pop("alpha")
        super().__init__(**kwargs)
        self.negative_slope = float(negative_slope)

    def call(self, inputs):
        return gc.where(inputs >= 0, inputs, inputs * self.negative_slope)

    def get_config(self):
        return {**super().get_config(), "negative_slope": self.negative_slope}


class ELU(Layer):
    supports_masking = True

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = float(alpha)

    def call(self, inputs):
        return gc.where(inputs > 0, inputs, self.alpha * gc.expm1(gc.minimum(inputs, 0.0)))

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


class PReLU(Layer):
    """x where x >= 0, alpha * x below; alpha is a weight of the input's non-batch shape, of
    size 1 along shared_axes."""

    def __init__(self, alpha_initializer="Zeros", alpha_regularizer=None, alpha_constraint=None,
                 shared_axes=None, **kwargs):
        super().__init__(**kwargs)
        self.alpha_initializer = initializers.get(alpha_initializer)
        self.alpha_regularizer = regularizers.get(alpha_regularizer)
        self.shared_axes = None if shared_axes is None else (
            [shared_axes] if isinstance(shared_axes, int) else list(shared_axes))

    def build(self, input_shape):
        shape = list(input_shape[1:])
        for ax in self.shared_axes or ():
            shape[ax - 1] = 1
        self.alpha = self.add_weight("alpha", tuple(shape), self.alpha_initializer,
                                     regularizer=self.alpha_regularizer)

    def call(self, inputs):
        return gc.relu(inputs) - self.alpha * gc.relu(-inputs)

    def get_config(self):
        return {**super().get_config(),
                "alpha_initializer": initializers.serialize(self.alpha_initializer),
                "alpha_regularizer": regularizers.serialize(self.alpha_regularizer),
                "shared_axes": self.shared_axes}


class Softmax(Layer):
    """softmax along axis; masked positions (mask False) get -1e9 added first, as in Keras."""
    supports_masking = True

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def call(self, inputs, mask=None):
        if mask is not None:
            inputs = inputs + (1.0 - gc.cast(mask, inputs.dtype)) * -1e9
        axes = self.axis if isinstance(self.axis, (list, tuple)) else [self.axis]
        if len(axes) == 1:
            return gc.nn.softmax(inputs, axis=axes[0])
        return gc.exp(inputs - gc.logsumexp(inputs, axis=tuple(axes), keepdims=True))

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


# ---- elementwise and structural --------------------------------------------------------------
class Rescaling(Layer):
    """inputs * scale + offset (e.g. Rescaling(1 / 255) for pixel values)."""

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale, self.offset = scale, offset

    def call(self, inputs):
        if not inputs.dtype.is_float:
            inputs = gc.cast(inputs, gc.float32)
        scale = np.asarray(self.scale, np.float32)
        offset = np.asarray(self.offset, np.float32)
        return inputs * (float(scale) if scale.ndim == 0 else gc.constant(scale)) + \
            (float(offset) if offset.ndim == 0 else gc.constant(offset))

    def get_config(self):
        return {**super().get_config(), "scale": np.asarray(self.scale).tolist(),
                "offset": np.asarray(self.offset).tolist()}


class Identity(Layer):
    supports_masking = True

    def call(self, inputs):
        return inputs


class Lambda(Layer):
    """Wraps a function of graphc tensors as a layer. Saved as Python bytecode (marshal, as
    Keras does), which gk.load_model refuses to run unless safe_mode=False."""
    supports_masking = True

    def __init__(self, function, output_shape=None, mask=None, arguments=None, **kwargs):
        super().__init__(**kwargs)
        if not callable(function):
            raise GraphcError(f"Lambda takes a function, got {function!r}")
        self.function, self.output_shape_arg = function, output_shape
        self.mask, self.arguments = mask, dict(arguments or {})

    def call(self, inputs):
        return self.function(inputs, **self.arguments)

    def compute_mask(self, inputs, mask):
        return self.mask(inputs, mask) if callable(self.mask) else mask

    def get_config(self):
        fn = self.function
        if fn.__closure__:
            raise GraphcError(f"Lambda '{self.name}': a function with a closure cannot be "
                              "saved; use a module-level function or a custom layer")
        code = base64.b64encode(marshal.dumps(fn.__code__)).decode("ascii")
        return {**super().get_config(), "function": {"bytecode": code,
                                                     "defaults": fn.__defaults__},
                "arguments": self.arguments}

    @classmethod
    def from_config(cls, config):
        from .. import saving
        if saving.safe_mode():
            raise CheckpointError(
                f"Lambda layer '{config.get('name')}' holds Python bytecode, which loading "
                "would run: pass safe_mode=False to gk.load_model if you trust this file")
        config = dict(config)
        spec = config.pop("function")
        code = marshal.loads(base64.b64decode(spec["bytecode"]))
        fn = types.FunctionType(code, {"gc": gc, "np": np, "__builtins__": __builtins__},
                                code.co_name, tuple(spec["defaults"] or ()) or None)
        return cls(fn, **config)


class Wrapper(Layer):
    """Base of the layers that wrap another one (`self.layer`), saved with it."""

    def __init__(self, layer, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(layer, Layer):
            raise GraphcError(f"{type(self).__name__} wraps a layer, got {layer!r}")
        self.layer = layer

    def call(self, inputs, training=False):
        return self.layer(inputs, training=training)

    def get_config(self):
        from .. import saving
        return {**super().get_config(), "layer": saving.layer_config(self.layer)}

    @classmethod
    def from_config(cls, config):
        from .. import saving
        config = dict(config)
        return cls(saving.layer_from_config(config.pop("layer")), **config)


class TimeDistributed(Wrapper):
    """Applies `layer` to each step: (batch, steps, ...) -> (batch, steps, layer's output)."""

    def call(self, inputs, training=False):
        t = inputs.shape[1]
        if not isinstance(t, int) or any(not isinstance(d, int) for d in inputs.shape[2:]):
            raise GraphcError(f"TimeDistributed '{self.name}' needs known steps and features")
        flat = gc.reshape(inputs, (-1,) + tuple(inputs.shape[2:]))
        out = self.layer(flat, training=training)
        return gc.reshape(out, (-1, t) + tuple(static_shape(out)[1:]))


class Permute(Layer):
    """Permutes the non-batch axes by dims (1-based, as in Keras)."""

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        self.dims = tuple(int(d) for d in dims)
        if sorted(self.dims) != list(range(1, len(self.dims) + 1)):
            raise GraphcError(f"Permute dims must permute 1..{len(self.dims)}, got {dims!r}")

    def call(self, inputs):
        return gc.transpose(inputs, (0,) + self.dims)

    def get_config(self):
        return {**super().get_config(), "dims": list(self.dims)}


class RepeatVector(Layer):
    """(batch, features) -> (batch, n, features)."""

    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        self.n = int(n)

    def call(self, inputs):
        return gc.broadcast_to(gc.expand_dims(inputs, 1),
                               (inputs.shape[0], self.n, inputs.shape[1]))

    def get_config(self):
        return {**super().get_config(), "n": self.n}


class ActivityRegularization(Layer):
    """The identity, adding l1 * sum(|x|) + l2 * sum(x^2) of its inputs, divided by the batch
    size (as Keras 3 does), to the training loss."""

    def __init__(self, l1=0.0, l2=0.0, **kwargs):
        super().__init__(**kwargs)
        self.l1, self.l2 = float(l1), float(l2)

    def call(self, inputs):
        if self.l1 or self.l2:
            penalty = regularizers.L1L2(self.l1, self.l2)(inputs)
            batch = gc.cast(gc.sum(gc.ones_like(inputs[(slice(None),) + (0,) *
                                                       (inputs.ndim - 1)])), inputs.dtype)
            self.add_loss(penalty / batch)
        return inputs

    def get_config(self):
        return {**super().get_config(), "l1": self.l1, "l2": self.l2}


class _Merge(Layer):
    supports_masking = True

    def call(self, inputs):
        return self.merge(_several(self, inputs))

    def compute_mask(self, inputs, mask):
        masks = [m for m in (mask or []) if m is not None]
        return reduce(gc.logical_and, masks) if masks else None


class Average(_Merge):
    def merge(self, xs):
        return reduce(lambda a, b: a + b, xs) / float(len(xs))


class Maximum(_Merge):
    def merge(self, xs):
        return reduce(gc.maximum, xs)


class Minimum(_Merge):
    def merge(self, xs):
        return reduce(gc.minimum, xs)


class Multiply(_Merge):
    def merge(self, xs):
        return reduce(lambda a, b: a * b, xs)


class Subtract(_Merge):
    def merge(self, xs):
        if len(xs) != 2:
            raise GraphcError(f"Subtract '{self.name}' takes exactly two tensors")
        return xs[0] - xs[1]


class Dot(Layer):
    """The batched dot product of two tensors along axes (an int or a pair); normalize=True
    takes the cosine (each input L2-normalized along its axis first)."""

    def __init__(self, axes, normalize=False, **kwargs):
        super().__init__(**kwargs)
        self.axes, self.normalize = axes, bool(normalize)

    def call(self, inputs):
        a, b = _several(self, inputs)
        if len(inputs) != 2:
            raise GraphcError(f"Dot '{self.name}' takes exactly two tensors")
        axes = [self.axes, self.axes] if isinstance(self.axes, int) else list(self.axes)
        axes = [ax % t.ndim for ax, t in zip(axes, (a, b))]
        if self.normalize:
            a = a * gc.rsqrt(gc.maximum(gc.sum(gc.square(a), axis=axes[0], keepdims=True),
                                        1e-12))
            b = b * gc.rsqrt(gc.maximum(gc.sum(gc.square(b), axis=axes[1], keepdims=True),
                                        1e-12))
        if a.ndim > 3 or b.ndim > 3 or a.ndim < 2 or b.ndim < 2:
            raise GraphcError(f"Dot '{self.name}' takes inputs of rank 2 or 3")
        if a.ndim == 2:
            a = gc.expand_dims(a, 1)  # (b, 1, k)
        elif axes[0] == 1:
            a = gc.transpose(a, (0, 2, 1))  # the contracted axis last
        if b.ndim == 2:
            b = gc.expand_dims(b, 2)  # (b, k, 1)
        elif axes[1] == 2:
            b = gc.transpose(b, (0, 2, 1))  # the contracted axis second
        out = gc.matmul(a, b)  # (b, x, y)
        drop = [ax for ax, t in ((1, inputs[0]), (2, inputs[1])) if t.ndim == 2]
        if len(drop) == 2:
            return gc.reshape(out, (-1, 1))
        return gc.squeeze(out, axis=drop[0]) if drop else out

    def get_config(self):
        return {**super().get_config(), "axes": self.axes, "normalize": self.normalize}


def _functional_merge(cls):
    def merge(inputs, **kwargs):
        return cls(**kwargs)(inputs)
    merge.__name__ = cls.__name__.lower()
    merge.__doc__ = f"{cls.__name__}(**kwargs)(inputs)."
    return merge


LAYERS = (Conv1D, Conv2DTranspose, Conv1DTranspose, MaxPooling1D, AveragePooling1D, GlobalMaxPooling1D,
          GlobalMaxPooling2D, GlobalAveragePooling1D, UpSampling1D, UpSampling2D, ZeroPadding1D,
          ZeroPadding2D, Cropping1D, Cropping2D, ReLU, LeakyReLU, ELU, PReLU, Softmax, Rescaling,
          Identity, Lambda, TimeDistributed, Permute, RepeatVector, ActivityRegularization,
          Average, Maximum, Minimum, Multiply, Subtract, Dot)
