"""MultiHeadAttention as Keras 3 has it: its arguments, its call
`mha(query, value, key=None, attention_mask=None, return_attention_scores=False,
use_causal_mask=False)`, and its weights in Keras's shapes and order (query, key, value and
attention_output kernels and biases), so that `set_weights(keras_mha.get_weights())` gives
Keras's outputs.

Inputs are (batch, time, features); attention runs over the time axis (Keras's default
`attention_axes=None` for such inputs). Masks: a boolean `attention_mask` (batch, Tq, Tk),
the masks that Embedding(mask_zero=True) or Masking attached to query, value and key, and the
causal mask are combined with a logical and, as in Keras; a masked score becomes -1e9 before
the softmax. The output carries the query's mask.
"""
import math
import numbers

import numpy as np

import graphc as gc
from graphc.errors import GraphcError

from .. import backend, initializers, regularizers
from .base import Layer

_NEG = -1e9  # Keras's large negative number for masked scores (float32)


class MultiHeadAttention(Layer):
    supports_masking = True

    def __init__(self, num_heads, key_dim, value_dim=None, dropout=0.0, use_bias=True,
                 output_shape=None, attention_axes=None, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 seed=None, **kwargs):
        super().__init__(**kwargs)
        for what, v in (("num_heads", num_heads), ("key_dim", key_dim)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v <= 0:
                raise GraphcError(f"MultiHeadAttention {what} must be a positive integer, got "
                                  f"{v!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) \
                or not 0 <= dropout < 1:
            raise GraphcError(f"MultiHeadAttention dropout must be in [0, 1), got {dropout!r}")
        if attention_axes is not None:
            axes = (attention_axes,) if isinstance(attention_axes, numbers.Integral) \
                else tuple(attention_axes)
            if axes not in ((1,), (-2,)):
                raise GraphcError("MultiHeadAttention supports attention over the time axis of "
                                  "(batch, time, features) inputs only: attention_axes None, 1 "
                                  f"or -2, got {attention_axes!r}")
        if output_shape is not None:
            dims = (output_shape,) if isinstance(output_shape, numbers.Integral) \
                else tuple(output_shape)
            if len(dims) != 1:
                raise GraphcError("MultiHeadAttention output_shape must be one size (the "
                                  f"output's last dim), got {output_shape!r}")
            output_shape = int(dims[0])
        self.num_heads, self.key_dim = int(num_heads), int(key_dim)
        self.value_dim = int(value_dim) if value_dim else self.key_dim
        self.dropout, self.use_bias = float(dropout), bool(use_bias)
        self.output_shape_arg = output_shape
        self.attention_axes = attention_axes
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.seed = backend.next_seed() if seed is None else int(seed)
        self._roles, self._returns_scores = None, False

    # -- calling -------------------------------------------------------------------------------
    def __call__(self, query, value=None, key=None, attention_mask=None,
                 return_attention_scores=False, use_causal_mask=False, training=None,
                 has_key=None, has_attention_mask=None):
        """Keras's call. Internally the tensors travel as one list [query, value, key?,
        attention_mask?] with has_key / has_attention_mask saying which are there, which is
        how a functional model records and replays (and saves) the call."""
        if isinstance(query, (list, tuple)):  # the packed form a functional model replays
            tensors = list(query)
            has_key, has_attention_mask = bool(has_key), bool(has_attention_mask)
        else:
            if value is None:
                raise GraphcError(f"MultiHeadAttention '{self.name}' is called as "
                                  "mha(query, value, key=None, attention_mask=None, ...)")
            has_key, has_attention_mask = key is not None, attention_mask is not None
            tensors = [query, value] + ([key] if has_key else []) + \
                ([attention_mask] if has_attention_mask else [])
        self._roles = (has_key, has_attention_mask)
        self._returns_scores = bool(return_attention_scores)
        return super().__call__(tensors, training=training, has_key=has_key,
                                has_attention_mask=has_attention_mask,
                                return_attention_scores=bool(return_attention_scores),
                                use_causal_mask=bool(use_causal_mask))

    def _unpack(self, items, has_key, has_attention_mask):
        query, value = items[0], items[1]
        rest = list(items[2:])
        key = rest.pop(0) if has_key else None
        attention_mask = rest.pop(0) if has_attention_mask else None
        return query, value, key, attention_mask

    # -- weights -------------------------------------------------------------------------------
    def build(self, input_shape):
        query, value, key = self._shapes(input_shape)
        h, out = self.num_heads, self.output_shape_arg or query[-1]
        self.query_kernel, self.query_bias = self._projection("query", query[-1], h,
                                                              self.key_dim)
        self.key_kernel, self.key_bias = self._projection("key", key[-1], h, self.key_dim)
        self.value_kernel, self.value_bias = self._projection("value", value[-1], h,
                                                              self.value_dim)
        self.output_kernel, self.output_bias = self._projection(
            "attention_output", None, None, out)

    def _shapes(self, input_shape):
        """query, value and key shapes (key: value's where absent), each (batch, time,
        features)."""
        query, value, key, _ = self._unpack(input_shape, *self._roles)
        key = value if key is None else key
        for what, shape in (("query", query), ("value", value), ("key", key)):
            if len(shape) != 3 or shape[-1] is None:
                raise GraphcError(f"{type(self).__name__} '{self.name}' takes {what} of shape "
                                  f"(batch, time, features) with known features, got {shape}")
        return query, value, key

    def _projection(self, name, fan_in, heads, size):
        """A (fan_in, heads, size) kernel and (heads, size) bias, or for attention_output a
        (num_heads, value_dim, size) kernel and (size,) bias."""
        output = name == "attention_output"
        kernel = self.add_weight(f"{name}/kernel", (self.num_heads, self.value_dim, size)
                                 if output else (fan_in, heads, size), self.kernel_initializer,
                                 regularizer=self.kernel_regularizer)
        bias = None
        if self.use_bias:
            bias = self.add_weight(f"{name}/bias", (size,) if output else (heads, size),
                                   self.bias_initializer, regularizer=self.bias_regularizer)
        return kernel, bias

    def _project(self, x, kernel, bias, size):
        """x (B, T, D) through a (D, heads, size) kernel: a list of heads (B, T, size)."""
        heads = kernel.shape[1]
        flat = x @ gc.reshape(kernel, (kernel.shape[0], heads * size))
        if bias is not None:
            flat = flat + gc.reshape(bias, (heads * size,))
        return gc.split(flat, heads, axis=-1) if heads > 1 else [flat]

    def call(self, inputs, mask=None, training=False, has_key=False, has_attention_mask=False,
             return_attention_scores=False, use_causal_mask=False):
        query, value, key, attention_mask = self._unpack(inputs, has_key, has_attention_mask)
        masks = list(mask) if isinstance(mask, (list, tuple)) else [None] * len(inputs)
        query_mask, value_mask, key_mask, _ = self._unpack(masks, has_key, has_attention_mask)
        if key is None:
            key, key_mask = value, None
        combined = self._attention_mask(query, value, query_mask, value_mask, key_mask,
                                        attention_mask, use_causal_mask)

        qs = self._project(query, self.query_kernel, self.query_bias, self.key_dim)
        ks = self._shared(self._project(key, self.key_kernel, self.key_bias, self.key_dim))
        vs = self._shared(self._project(value, self.value_kernel, self.value_bias,
                                        self.value_dim))
        scale = 1.0 / math.sqrt(float(self.key_dim))
        contexts, probs_all = [], []
        for h, (q, k, v) in enumerate(zip(qs, ks, vs)):
            scores = (q * scale) @ gc.transpose(k, (0, 2, 1))  # (B, Tq, Tk)
            if combined is not None:
                scores = gc.where(combined, scores, gc.constant(_NEG, dtype=scores.dtype))
            probs = gc.nn.softmax(scores, axis=-1)
            probs_all.append(probs)
            if training and self.dropout > 0:
                probs = gc.nn.dropout(probs, self.dropout, seed=self.seed + h, training=True)
            contexts.append(probs @ v)  # (B, Tq, value_dim)
        context = self._gated(query, gc.concat(contexts, axis=-1) if len(contexts) > 1
                              else contexts[0])
        kernel = self.output_kernel
        output = context @ gc.reshape(kernel, (self.num_heads * self.value_dim,
                                               kernel.shape[-1]))
        if self.output_bias is not None:
            output = output + self.output_bias
        if return_attention_scores:
            return [output, gc.stack(probs_all, axis=1)]  # scores (B, heads, Tq, Tk)
        return output

    def _shared(self, heads):
        """The key or value heads each query head reads (one each here)."""
        return heads

    def _gated(self, query, context):
        """The context (B, Tq, heads * value_dim) the output projection reads."""
        return context

    def _attention_mask(self, query, value, query_mask, value_mask, key_mask, attention_mask,
                        use_causal_mask):
        """Keras's _compute_attention_mask: every mask given, as (B, Tq, Tk) booleans anded."""
        parts = []
        if query_mask is not None:
            parts.append(gc.expand_dims(_as_bool(query_mask), -1))
        for m in (value_mask, key_mask):
            if m is not None:
                parts.append(gc.expand_dims(_as_bool(m), -2))
        if use_causal_mask:
            tq, tk = query.shape[1], value.shape[1]
            if not (isinstance(tq, int) and isinstance(tk, int)):
                raise GraphcError(f"MultiHeadAttention '{self.name}': use_causal_mask needs "
                                  "query and value lengths known when the model is built, got "
                                  f"{tq} and {tk}")
            parts.append(gc.constant(np.tril(np.ones((1, tq, tk), bool))))
        if attention_mask is not None:
            parts.append(_as_bool(attention_mask))
        if not parts:
            return None
        combined = parts[0]
        for p in parts[1:]:
            combined = gc.logical_and(combined, p)
        return combined

    def compute_mask(self, inputs, mask):
        query_mask = mask[0] if isinstance(mask, (list, tuple)) else None
        return [query_mask, None] if self._returns_scores else query_mask

    # -- configuration -------------------------------------------------------------------------
    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "key_dim": self.key_dim,
                "value_dim": self.value_dim, "dropout": self.dropout,
                "use_bias": self.use_bias, "output_shape": self.output_shape_arg,
                "attention_axes": self.attention_axes,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer),
                "seed": self.seed}


def _as_bool(m):
    return m if m.dtype == gc.bool_ else gc.greater(m, 0.5)
