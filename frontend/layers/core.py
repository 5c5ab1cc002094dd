"""Input, InputLayer, Dense, Activation, Dropout, Flatten, Reshape, Embedding."""
import numbers

import graphc as gc
from graphc.errors import GraphcError, ShapeError
from graphc.ir.types import format_shape

from .. import activations, backend, initializers, regularizers
from .base import Layer, set_weight_options, static_shape, weight_options_config


def Input(shape=None, dtype="float32", name=None, batch_size=None, batch_shape=None):
    """A model input: a placeholder of shape (batch_size,) + shape, or batch_shape; the batch
    size None (the default) is known at run time. A fixed batch size is what stateful
    recurrent layers need."""
    if batch_shape is not None:
        batch_size, shape = batch_shape[0], tuple(batch_shape[1:])
    if shape is None:
        raise GraphcError("Input needs shape or batch_shape")
    shape = tuple(shape) if isinstance(shape, (list, tuple)) else (shape,)
    for d in shape + (() if batch_size is None else (batch_size,)):
        if d is not None and (not isinstance(d, numbers.Integral) or d < 0):
            raise GraphcError(f"Input shape must hold sizes or None, got "
                              f"{(batch_size,) + shape!r}")
    return gc.placeholder(dtype, shape=(batch_size,) + shape, name=name or "input")


class InputLayer(Layer):
    """Keras's explicit input layer: holds the Input tensor (`output`) that a Sequential
    model starts from, made from shape or batch_shape, or given as input_tensor."""

    def __init__(self, shape=None, batch_size=None, dtype=None, sparse=None, ragged=None,
                 batch_shape=None, input_tensor=None, optional=False, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        if input_tensor is not None:
            self.output = input_tensor
        else:
            if shape is None and batch_shape is None:
                raise GraphcError("InputLayer needs shape or batch_shape")
            self.output = Input(shape, dtype=dtype or "float32", name=self.name,
                                batch_size=batch_size, batch_shape=batch_shape)
        self.batch_shape = static_shape(self.output)[:1] + tuple(self.output.shape[1:])


class Dense(Layer):
    """activation(inputs @ kernel + bias) over the last axis."""
    supports_masking = True

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(units, numbers.Integral) or units < 1:
            raise GraphcError(f"Dense units must be a positive integer, got {units!r}")
        self.units = int(units)
        set_weight_options(self, activation, use_bias, kernel_initializer, bias_initializer,
                           kernel_regularizer, bias_regularizer, kernel_constraint,
                           bias_constraint)

    def build(self, input_shape):
        last = input_shape[-1]
        if last is None:
            raise GraphcError(f"Dense layer '{self.name}' needs a known last input dim, got "
                              f"{input_shape}")
        self.kernel = self.add_weight("kernel", (last, self.units), self.kernel_initializer,
                                      regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        self.bias = self.add_weight("bias", (self.units,), self.bias_initializer,
                                    regularizer=self.bias_regularizer,
                                    constraint=self.bias_constraint) if self.use_bias else None

    def call(self, inputs):
        out = inputs @ self.kernel
        if self.bias is not None:
            out = out + self.bias
        return self.activation(out)

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                **weight_options_config(self)}


class Activation(Layer):
    supports_masking = True

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def call(self, inputs):
        return self.activation(inputs)

    def get_config(self):
        return {**super().get_config(), "activation": activations.name_of(self.activation)}


class Dropout(Layer):
    """Zeroes a fraction `rate` of the inputs while training (scaling the rest by
    1 / (1 - rate)); the identity at inference."""
    supports_masking = True

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not 0 <= rate < 1:
            raise GraphcError(f"Dropout rate must be in [0, 1), got {rate!r}")
        self.rate = float(rate)
        self.seed = backend.next_seed() if seed is None else seed

    def call(self, inputs, training=False):
        return gc.nn.dropout(inputs, self.rate, seed=self.seed, training=training)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class Flatten(Layer):
    """(batch, d1, d2, ...) -> (batch, d1 * d2 * ...)."""

    def call(self, inputs):
        size = 1
        for d in inputs.shape[1:]:
            if not isinstance(d, int):
                raise ShapeError(f"Flatten '{self.name}' needs known non-batch dims, got "
                                 f"{format_shape(inputs.shape)}")
            size *= d
        return gc.reshape(inputs, (-1, size))


class Reshape(Layer):
    """Reshape the non-batch dims to `target_shape` (one entry may be -1)."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = tuple(int(d) for d in target_shape)

    def call(self, inputs):
        if -1 in self.target_shape:
            size = 1
            for d in inputs.shape[1:]:
                size *= d
            known = -1
            for d in self.target_shape:
                known *= d
            shape = tuple(size // known if d == -1 else d for d in self.target_shape)
        else:
            shape = self.target_shape
        return gc.reshape(inputs, (-1,) + shape)

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}


class Embedding(Layer):
    """Integer ids (batch, ...) -> vectors (batch, ..., output_dim).

    mask_zero=True: id 0 is padding; the output carries the mask `ids != 0`, which the
    recurrent layers and MultiHeadAttention honour (so the vocabulary holds input_dim ids,
    0 included, as in Keras)."""

    def __init__(self, input_dim, output_dim, embeddings_initializer="random_uniform",
                 embeddings_regularizer=None, mask_zero=False, **kwargs):
        super().__init__(**kwargs)
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        self.mask_zero = bool(mask_zero)
        self.supports_masking = self.mask_zero
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)

    def build(self, input_shape):
        self.embeddings = self.add_weight("embeddings", (self.input_dim, self.output_dim),
                                          self.embeddings_initializer,
                                          regularizer=self.embeddings_regularizer)

    def call(self, inputs):
        if not inputs.dtype.is_integer:
            inputs = gc.cast(inputs, gc.int32)
        return gc.gather(self.embeddings, inputs)

    def compute_mask(self, inputs, mask=None):
        return gc.not_equal(inputs, 0) if self.mask_zero else None

    def get_config(self):
        return {**super().get_config(), "input_dim": self.input_dim,
                "output_dim": self.output_dim, "mask_zero": self.mask_zero,
                "embeddings_initializer": initializers.serialize(self.embeddings_initializer),
                "embeddings_regularizer": regularizers.serialize(self.embeddings_regularizer)}


class Masking(Layer):
    """Marks the time steps whose features all equal `mask_value` as padding: the output is the
    input with those steps zeroed, carrying the mask `any(inputs != mask_value, axis=-1)` that
    the recurrent layers and MultiHeadAttention honour."""
    supports_masking = True

    def __init__(self, mask_value=0.0, **kwargs):
        super().__init__(**kwargs)
        self.mask_value = float(mask_value)

    def compute_mask(self, inputs, mask=None):
        return gc.max(gc.cast(gc.not_equal(inputs, self.mask_value), gc.int32), axis=-1) > 0

    def call(self, inputs):
        keep = self.compute_mask(inputs)
        return inputs * gc.cast(gc.expand_dims(keep, -1), inputs.dtype)

    def get_config(self):
        return {**super().get_config(), "mask_value": self.mask_value}
