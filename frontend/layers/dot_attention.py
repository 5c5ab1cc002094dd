"""Attention (Luong's dot-product, or concat scores) and AdditiveAttention (Bahdanau's), as
Keras 3 has them: called on [query, value] or [query, value, key] (batch, T, dim) with
optional masks for query and value, use_causal_mask and return_attention_scores; weights
`scale` (and `concat_score_weight`) in Keras's shapes. A masked score gets -1e9 before the
softmax; the output carries the query's mask."""
import numpy as np

import graphc as gc
from graphc.errors import GraphcError

from .. import backend
from .base import Layer


class _BaseDenseAttention(Layer):
    supports_masking = True

    def __init__(self, dropout=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.dropout = float(dropout)
        self.seed = backend.next_seed() if seed is None else seed

    @staticmethod
    def _parts(inputs, mask):
        if not isinstance(inputs, (list, tuple)) or len(inputs) not in (2, 3):
            raise GraphcError("attention layers take [query, value] or [query, value, key]")
        q, v = inputs[0], inputs[1]
        k = inputs[2] if len(inputs) == 3 else v
        masks = list(mask) if isinstance(mask, (list, tuple)) else [None, None]
        return q, v, k, masks[0], masks[1] if len(masks) > 1 else None

    def call(self, inputs, mask=None, training=False, return_attention_scores=False,
             use_causal_mask=False):
        q, v, k, q_mask, v_mask = self._parts(inputs, mask)
        scores = self.scores(q, k)
        keep = None
        if v_mask is not None:
            keep = gc.expand_dims(_as_bool(v_mask), -2)  # (batch, 1, Tv)
        if use_causal_mask:
            tq, tv = scores.shape[-2], scores.shape[-1]
            causal = gc.constant(np.tril(np.ones((1, tq, tv), bool)))
            keep = causal if keep is None else gc.logical_and(keep, causal)
        if keep is not None:
            scores = scores - 1e9 * gc.cast(gc.logical_not(keep), scores.dtype)
        weights = gc.nn.softmax(scores, axis=-1)
        if training and self.dropout > 0:
            weights = gc.nn.dropout(weights, self.dropout, seed=self.seed)
        out = gc.matmul(weights, v)
        if q_mask is not None:
            out = out * gc.expand_dims(gc.cast(_as_bool(q_mask), out.dtype), -1)
        return (out, weights) if return_attention_scores else out

    def compute_mask(self, inputs, mask):
        if isinstance(mask, (list, tuple)) and mask and mask[0] is not None:
            return mask[0]
        return None

    def get_config(self):
        return {**super().get_config(), "dropout": self.dropout, "seed": self.seed}


def _as_bool(m):
    return m if m.dtype == gc.bool_ else gc.greater(m, 0.5)


class Attention(_BaseDenseAttention):
    """scores = query . key^T (times a learned scalar `scale` with use_scale), or with
    score_mode="concat": concat_score_weight * sum(tanh(scale * (query + key)))."""

    def __init__(self, use_scale=False, score_mode="dot", dropout=0.0, seed=None, **kwargs):
        super().__init__(dropout, seed, **kwargs)
        if score_mode not in ("dot", "concat"):
            raise GraphcError(f"Attention score_mode must be 'dot' or 'concat', got "
                              f"{score_mode!r}")
        self.use_scale, self.score_mode = bool(use_scale), score_mode

    def build(self, input_shape):
        self.scale = self.add_weight("scale", (), "ones") if self.use_scale else None
        self.concat_score_weight = self.add_weight("concat_score_weight", (), "ones") \
            if self.score_mode == "concat" else None

    def scores(self, q, k):
        if self.score_mode == "dot":
            s = gc.matmul(q, gc.transpose(k, (0, 2, 1)))
            return s * self.scale if self.scale is not None else s
        summed = gc.expand_dims(q, -2) + gc.expand_dims(k, -3)
        if self.scale is not None:
            summed = self.scale * summed
        return self.concat_score_weight * gc.sum(gc.tanh(summed), axis=-1)

    def get_config(self):
        return {**super().get_config(), "use_scale": self.use_scale,
                "score_mode": self.score_mode}


class AdditiveAttention(_BaseDenseAttention):
    """scores = sum(scale * tanh(query + key)) over features, scale a learned vector (with
    use_scale, else ones)."""

    def __init__(self, use_scale=True, dropout=0.0, **kwargs):
        super().__init__(dropout, **kwargs)
        self.use_scale = bool(use_scale)

    def build(self, input_shape):
        dim = input_shape[0][-1]
        self.scale = self.add_weight("scale", (dim,), "glorot_uniform") if self.use_scale \
            else None

    def scores(self, q, k):
        t = gc.tanh(gc.expand_dims(q, -2) + gc.expand_dims(k, -3))
        return gc.sum(self.scale * t if self.scale is not None else t, axis=-1)

    def get_config(self):
        return {**super().get_config(), "use_scale": self.use_scale}


LAYERS = (Attention, AdditiveAttention)
