"""Keras's GroupedQueryAttention (also GroupQueryAttention): MultiHeadAttention whose
num_query_heads query heads share num_key_value_heads key and value heads (query head i reads
key-value head i // (num_query_heads / num_key_value_heads), as Keras's ops.repeat does), with
Keras's weights in its shapes and order (query, key, gate where use_gate, value,
attention_output), an optional sigmoid gate on the context and a sliding-window mask."""
import numbers

import numpy as np

import graphc as gc
from graphc.errors import GraphcError

from .attention import MultiHeadAttention


class GroupedQueryAttention(MultiHeadAttention):

    def __init__(self, head_dim, num_query_heads, num_key_value_heads, dropout=0.0,
                 use_bias=True, sliding_window=None, flash_attention=None,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, use_gate=False, seed=None,
                 **kwargs):
        super().__init__(num_query_heads, head_dim, dropout=dropout, use_bias=use_bias,
                         kernel_initializer=kernel_initializer,
                         bias_initializer=bias_initializer,
                         kernel_regularizer=kernel_regularizer,
                         bias_regularizer=bias_regularizer, seed=seed, **kwargs)
        who = f"GroupedQueryAttention '{self.name}'"
        if isinstance(num_key_value_heads, bool) or not isinstance(
                num_key_value_heads, numbers.Integral) or num_key_value_heads <= 0 \
                or num_query_heads % num_key_value_heads:
            raise GraphcError(f"{who}: num_query_heads ({num_query_heads}) must be a multiple "
                              f"of num_key_value_heads, got {num_key_value_heads!r}")
        if sliding_window is not None and (isinstance(sliding_window, bool) or not isinstance(
                sliding_window, numbers.Integral) or sliding_window <= 0):
            raise GraphcError(f"{who}: sliding_window must be None or a positive integer, got "
                              f"{sliding_window!r}")
        if flash_attention and dropout > 0:
            raise GraphcError(f"{who}: flash attention takes no dropout, got {dropout}")
        self.num_key_value_heads = int(num_key_value_heads)
        self.sliding_window, self.use_gate = sliding_window, bool(use_gate)
        # flash attention only changes how Keras computes the same values
        self.flash_attention = flash_attention

    def build(self, input_shape):
        query, value, key = self._shapes(input_shape)
        if not query[-1] == value[-1] == key[-1]:
            raise GraphcError(f"GroupedQueryAttention '{self.name}': query, value and key must "
                              f"have the same features (last dim), got {query[-1]}, "
                              f"{value[-1]}, {key[-1]}")
        h, kv, d = self.num_heads, self.num_key_value_heads, self.key_dim
        self.query_kernel, self.query_bias = self._projection("query", query[-1], h, d)
        self.key_kernel, self.key_bias = self._projection("key", key[-1], kv, d)
        if self.use_gate:
            self.gate_kernel, self.gate_bias = self._projection("gate", query[-1], h, d)
        self.value_kernel, self.value_bias = self._projection("value", value[-1], kv, d)
        self.output_kernel, self.output_bias = self._projection(
            "attention_output", None, None, query[-1])

    def _shared(self, heads):
        repeats = self.num_heads // self.num_key_value_heads
        return [heads[i // repeats] for i in range(self.num_heads)]

    def _gated(self, query, context):
        if not self.use_gate:
            return context
        gate = self._project(query, self.gate_kernel, self.gate_bias, self.key_dim)
        return context * gc.sigmoid(gc.concat(gate, axis=-1) if len(gate) > 1 else gate[0])

    def _attention_mask(self, query, value, *masks):
        combined = super()._attention_mask(query, value, *masks)
        if self.sliding_window is None:
            return combined
        tq, tk = query.shape[1], value.shape[1]
        if not (isinstance(tq, int) and isinstance(tk, int)):
            raise GraphcError(f"GroupedQueryAttention '{self.name}': sliding_window needs query "
                              f"and value lengths known when the model is built, got {tq} and "
                              f"{tk}")
        rows, cols = np.arange(tq)[:, None], np.arange(tk)[None, :]
        band = gc.constant((np.abs(rows - cols) < self.sliding_window)[None])
        return band if combined is None else gc.logical_and(combined, band)

    def get_config(self):
        config = super().get_config()
        for k in ("num_heads", "key_dim", "value_dim", "output_shape", "attention_axes"):
            config.pop(k)
        return {**config, "head_dim": self.key_dim, "num_query_heads": self.num_heads,
                "num_key_value_heads": self.num_key_value_heads,
                "sliding_window": self.sliding_window, "use_gate": self.use_gate,
                "flash_attention": self.flash_attention}


GroupQueryAttention = GroupedQueryAttention  # Keras's other name for the class

LAYERS = (GroupedQueryAttention,)
