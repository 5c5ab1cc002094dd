"""gk.ops' neural-network names beyond the first wave (gk.ops re-exports every name of
__all__): the newer activations, normalizations, attention, depth/space rearrangements,
multi-hot encoding and Keras's functional control flow, composed from graphc ops.
"""
import math

import numpy as np

import graphc as gc
from graphc.errors import GraphcError

from . import ops as _o
from .data_format import channels_first_op
from . import ops_numpy as _np

__all__ = [
    "celu", "glu", "hard_shrink", "hard_tanh", "soft_shrink", "sparse_plus", "sparse_sigmoid",
    "sparsemax", "squareplus", "tanh_shrink", "threshold", "mish", "psnr", "multi_hot",
    "in_top_k", "depth_to_space", "space_to_depth", "batch_normalization",
    "layer_normalization", "rms_normalization", "dot_product_attention",
    "extract_sequences", "fori_loop", "while_loop", "map", "vectorized_map", "switch",
    "depthwise_conv", "separable_conv", "conv_transpose", "adaptive_average_pool",
    "adaptive_max_pool",
]

_t = _o._t


# ---- activations -------------------------------------------------------------------------------
def celu(x, alpha=1.0):
    x = _t(x)
    return gc.relu(x) + gc.minimum(0.0, alpha * gc.expm1(gc.minimum(x, 0.0) / alpha))


def glu(x, axis=-1):
    a, b = gc.split(_t(x), 2, axis=axis)
    return a * gc.sigmoid(b)


def hard_shrink(x, threshold=0.5):
    x = _t(x)
    return gc.where(gc.abs(x) > threshold, x, gc.zeros_like(x))


def hard_tanh(x):
    return gc.clip(_t(x), -1.0, 1.0)


def soft_shrink(x, threshold=0.5):
    x = _t(x)
    return gc.where(x > threshold, x - threshold,
                    gc.where(x < -threshold, x + threshold, gc.zeros_like(x)))


def sparse_plus(x):
    x = _t(x)
    return gc.where(x <= -1.0, gc.zeros_like(x),
                    gc.where(x >= 1.0, x, 0.25 * gc.square(x + 1.0)))


def sparse_sigmoid(x):
    x = _t(x)
    return gc.where(x <= -1.0, gc.zeros_like(x),
                    gc.where(x >= 1.0, gc.ones_like(x), 0.5 * (x + 1.0)))


def sparsemax(x, axis=-1):
    """Keras 3's sparsemax: with z the values sorted down and k the support (the z_j above
    (cumsum_j - 1) / j), relu(x - tau) where tau = (sum over the support of cumsum_j - 1) / k.
    (Martins & Astudillo's tau takes the last running sum, not their sum; Keras's is kept so
    that models agree.)"""
    x, back = _np._last(x, axis)
    n = x.shape[-1]
    z = gc.top_k(x, n)[0]  # descending
    r = gc.cast(gc.constant(np.arange(1, n + 1, dtype=np.float32)), x.dtype)
    cum = gc.cumsum(z, axis=z.ndim - 1)
    support = z - (cum - 1.0) / r > 0
    k = gc.sum(gc.cast(support, x.dtype), axis=-1, keepdims=True)
    tau = (gc.sum(gc.where(support, cum, gc.zeros_like(cum)), axis=-1, keepdims=True) - 1.0) / k
    return back(gc.relu(x - tau))


def squareplus(x, b=4):
    x = _t(x)
    return 0.5 * (x + gc.sqrt(gc.square(x) + b))


def tanh_shrink(x):
    x = _t(x)
    return x - gc.tanh(x)


def threshold(x, threshold, default_value):
    x = _t(x)
    return gc.where(x > threshold, x, gc.fill_like(x, default_value))


def mish(x):
    x = _t(x)
    return x * gc.tanh(gc.softplus(x))


# ---- metrics and encodings ---------------------------------------------------------------------
def psnr(x1, x2, max_val):
    """Peak signal-to-noise ratio over the whole of x1 and x2, in dB."""
    mse = gc.mean(gc.square(_t(x1) - _t(x2)))
    return 20.0 * math.log10(max_val) - 10.0 * gc.log(mse) / math.log(10.0)


def multi_hot(inputs, num_classes=None, axis=-1, dtype=None, sparse=False, **kwargs):
    """1 at each class that a row's last axis names (a 1-D input is one row)."""
    x = _t(inputs)
    num_classes = kwargs.get("num_tokens", num_classes)
    out = gc.max(gc.one_hot(x, num_classes, dtype=gc.as_dtype(dtype or "float32")), axis=-2)
    return out if axis == -1 else _o.moveaxis(out, -1, axis)


def in_top_k(targets, predictions, k):
    """Whether each row's target class is among its k largest predictions (ties count in)."""
    p = _t(predictions)
    target = gc.gather_elements(p, gc.expand_dims(gc.cast(_t(targets), gc.int32), -1), axis=1)
    above = gc.sum(gc.cast(p > target, gc.int32), axis=1)
    return gc.logical_and(above < k, gc.logical_not(gc.isnan(gc.squeeze(target, axis=1))))


def depth_to_space(x, block_size, data_format="channels_last"):
    """Blocks of channels to space, in Keras's channel order for each data format (channels
    last: block row, block column, channel; channels first: channel, block row, block
    column)."""
    x, n = _t(x), block_size
    if data_format == "channels_last":
        _, h, w, c = x.shape
        y = gc.transpose(gc.reshape(x, (-1, h, w, n, n, c // (n * n))), (0, 1, 3, 2, 4, 5))
        return gc.reshape(y, (-1, h * n, w * n, c // (n * n)))
    _, c, h, w = x.shape
    y = gc.transpose(gc.reshape(x, (-1, c // (n * n), n, n, h, w)), (0, 1, 4, 2, 5, 3))
    return gc.reshape(y, (-1, c // (n * n), h * n, w * n))


def space_to_depth(x, block_size, data_format="channels_last"):
    x, n = _t(x), block_size
    if data_format == "channels_last":
        _, h, w, c = x.shape
        y = gc.transpose(gc.reshape(x, (-1, h // n, n, w // n, n, c)), (0, 1, 3, 2, 4, 5))
        return gc.reshape(y, (-1, h // n, w // n, c * n * n))
    _, c, h, w = x.shape
    y = gc.transpose(gc.reshape(x, (-1, c, h // n, n, w // n, n)), (0, 1, 3, 5, 2, 4))
    return gc.reshape(y, (-1, c * n * n, h // n, w // n))


# ---- normalization and attention ---------------------------------------------------------------
def _along(v, axis, ndim):
    """A per-channel vector shaped to broadcast along `axis` of a rank-`ndim` tensor."""
    v = _t(v)
    if v.ndim != 1:
        return v
    shape = [1] * ndim
    shape[axis % ndim] = v.shape[0]
    return gc.reshape(v, tuple(shape))


def batch_normalization(x, mean, variance, axis, offset=None, scale=None, epsilon=1e-3):
    x = _t(x)
    inv = gc.rsqrt(_along(variance, axis, x.ndim) + epsilon)
    if scale is not None:
        inv = inv * _along(scale, axis, x.ndim)
    out = (x - _along(mean, axis, x.ndim)) * inv
    return out + _along(offset, axis, x.ndim) if offset is not None else out


def layer_normalization(x, gamma=None, beta=None, axis=-1, epsilon=None, **kwargs):
    x = _t(x)
    eps = 1e-7 if epsilon is None else epsilon  # Keras's backend epsilon
    mean = gc.mean(x, axis=axis, keepdims=True)
    centered = x - mean
    out = centered * gc.rsqrt(gc.mean(gc.square(centered), axis=axis, keepdims=True) + eps)
    if gamma is not None:
        out = out * _along(gamma, axis, x.ndim)
    return out + _along(beta, axis, x.ndim) if beta is not None else out


def rms_normalization(x, scale=None, axis=-1, epsilon=None):
    x = _t(x)
    eps = 1e-7 if epsilon is None else epsilon  # Keras's backend epsilon
    out = x * gc.rsqrt(gc.mean(gc.square(x), axis=axis, keepdims=True) + eps)
    return out * _along(scale, axis, x.ndim) if scale is not None else out


def dot_product_attention(query, key, value, bias=None, mask=None, scale=None,
                          is_causal=False, flash_attention=None, attn_logits_soft_cap=None):
    """softmax(q k^T * scale + bias, masked) v over (batch, seq, heads, dim) tensors, as
    Keras's reference (non-flash) path computes it."""
    q, k, v = _t(query), _t(key), _t(value)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    logits = gc.einsum("bqhd,bkhd->bhqk", q, k) * scale
    if attn_logits_soft_cap is not None:
        logits = gc.tanh(logits / attn_logits_soft_cap) * attn_logits_soft_cap
    if bias is not None:
        logits = logits + _t(bias)
    keep = None if mask is None else gc.cast(_t(mask), gc.bool_)
    if is_causal:
        causal = gc.constant(np.tril(np.ones((q.shape[1], k.shape[1]), bool)))
        keep = causal if keep is None else gc.logical_and(keep, causal)
    if keep is not None:
        logits = gc.where(keep, logits, gc.fill_like(logits, float(np.finfo(np.float32).min)
                                                     * 0.7))
    weights = gc.nn.softmax(logits, axis=-1)
    return gc.einsum("bhqk,bkhd->bqhd", weights, v)


def extract_sequences(x, sequence_length, sequence_stride):
    """Frames of sequence_length along the last axis, every sequence_stride samples."""
    x = _t(x)
    n = x.shape[-1]
    frames = 1 + (n - sequence_length) // sequence_stride
    index = (np.arange(frames)[:, None] * sequence_stride
             + np.arange(sequence_length)[None, :]).astype(np.int32)
    return gc.gather(x, gc.constant(index), axis=x.ndim - 1)


# ---- convolutions beyond ops.conv (NHWC inputs; 1-D ones over a unit height) -----------------
def _spatial(x, kernel, strides, dilation_rate, who):
    """(x, kernel, strides, dilations) as 2-D ones: a 1-D input (batch, steps, channels) and
    its kernel get a unit height."""
    pair = (lambda v: (v, v)) if x.ndim == 4 else (lambda v: (1, v))
    s = strides if isinstance(strides, (tuple, list)) else pair(strides)
    d = dilation_rate if isinstance(dilation_rate, (tuple, list)) else pair(dilation_rate)
    if x.ndim == 3:
        s, d = (1,) + tuple(s)[-1:], (1,) + tuple(d)[-1:]
        return gc.expand_dims(x, 1), gc.expand_dims(kernel, 0), s, d
    if x.ndim != 4:
        raise GraphcError(f"gk.ops.{who} takes 1-D and 2-D convolutions (inputs of rank 3 or "
                          f"4), got shape {tuple(x.shape)}")
    return x, kernel, tuple(s), tuple(d)


@channels_first_op
def depthwise_conv(inputs, kernel, strides=1, padding="valid", data_format=None,
                   dilation_rate=1):
    """Each channel convolved by its own kernel (kernel (k..., channels, multiplier))."""
    from .layers.depthwise import depthwise_conv2d
    x, k = _t(inputs), _t(kernel)
    x2, k2, s, d = _spatial(x, k, strides, dilation_rate, "depthwise_conv")
    out = depthwise_conv2d(x2, k2, s, padding.lower(), d)
    return gc.squeeze(out, axis=1) if x.ndim == 3 else out


@channels_first_op
def separable_conv(inputs, depthwise_kernel, pointwise_kernel, strides=1, padding="valid",
                   data_format=None, dilation_rate=1):
    """depthwise_conv, then a 1x1 convolution by pointwise_kernel (1..., c * m, filters)."""
    out = depthwise_conv(inputs, depthwise_kernel, strides, padding, data_format,
                         dilation_rate)
    p = _t(pointwise_kernel)
    return gc.matmul(out, gc.reshape(p, tuple(p.shape[-2:])))


@channels_first_op
def conv_transpose(inputs, kernel, strides=1, padding="valid", output_padding=None,
                   data_format=None, dilation_rate=1):
    """The transposed convolution of 1-D, 2-D or 3-D inputs (kernel (k..., out, in)), sizes
    as Keras's (gc.nn.conv2d_transpose, conv3d_transpose)."""
    x, k = _t(inputs), _t(kernel)
    if x.ndim == 5:
        return gc.nn.conv3d_transpose(x, k, strides, padding, dilation_rate, output_padding)
    x2, k2, s, d = _spatial(x, k, strides, dilation_rate, "conv_transpose")
    if x.ndim == 3 and output_padding is not None:
        output_padding = (0, output_padding if isinstance(output_padding, int)
                          else output_padding[0])
    out = gc.nn.conv2d_transpose(x2, k2, s, padding, d, output_padding)
    return gc.squeeze(out, axis=1) if x.ndim == 3 else out


# ---- adaptive pooling ---------------------------------------------------------------------------
def adaptive_bins(size, out):
    """(starts, ends) of the `out` windows that split `size` cells, as Keras (and PyTorch)
    place them: window o is [floor(o * size / out), ceil((o + 1) * size / out))."""
    o = np.arange(out)
    return o * size // out, -(-(o + 1) * size // out)


def _adaptive_pool(reduce, inputs, output_size, who):
    """reduce (gc.mean or gc.max) over each adaptive window, one spatial axis after another
    (the windows are boxes, so the reduction separates)."""
    x = _t(inputs)
    rank = x.ndim - 2
    sizes = (output_size,) * rank if isinstance(output_size, int) else tuple(output_size)
    if rank not in (1, 2, 3) or len(sizes) != rank or not all(
            isinstance(n, int) for n in x.shape[1:-1]):
        raise GraphcError(f"gk.ops.{who}: expects (batch, 1 to 3 spatial axes of known size, "
                          f"channels) and one output size per spatial axis, got shape "
                          f"{tuple(x.shape)} and output_size={output_size!r}")
    for axis, out in enumerate(sizes, start=1):
        lead = (slice(None),) * axis
        x = gc.stack([reduce(x[lead + (slice(int(a), int(b)),)], axis=axis)
                      for a, b in zip(*adaptive_bins(x.shape[axis], out))], axis=axis)
    return x


@channels_first_op
def adaptive_average_pool(inputs, output_size, data_format=None):
    return _adaptive_pool(gc.mean, inputs, output_size, "adaptive_average_pool")


@channels_first_op
def adaptive_max_pool(inputs, output_size, data_format=None):
    return _adaptive_pool(gc.max, inputs, output_size, "adaptive_max_pool")


# ---- control flow ------------------------------------------------------------------------------
def fori_loop(lower, upper, body_fun, init_val):
    """body_fun(i, val) for i in [lower, upper), by gc.while_loop."""
    flat = isinstance(init_val, (list, tuple))
    state = [gc.constant(np.int32(lower))] + ([_t(v) for v in init_val] if flat
                                               else [_t(init_val)])

    def body(i, *vals):
        out = body_fun(i, list(vals) if flat else vals[0])
        return [i + 1] + (list(out) if flat else [out])

    out = gc.while_loop(lambda i, *vals: i < upper, body, state)
    return type(init_val)(out[1:]) if flat else out[1]


def while_loop(cond, body, loop_vars, maximum_iterations=None):
    flat = isinstance(loop_vars, (list, tuple))
    state = [_t(v) for v in loop_vars] if flat else [_t(loop_vars)]
    out = gc.while_loop(lambda *vs: cond(*vs), lambda *vs: _listed(body(*vs)), state,
                        maximum_iterations=maximum_iterations)
    return type(loop_vars)(out) if flat else out[0]


def _listed(out):
    return list(out) if isinstance(out, (list, tuple)) else [out]


def map(f, xs):  # noqa: A001 - Keras's name
    return gc.map_fn(f, _t(xs))


def vectorized_map(function, elements):
    return gc.map_fn(function, _t(elements))


def switch(index, branches, *operands):
    """branches[index](*operands), index clamped into range, as a chain of gc.cond."""
    index = gc.clip(gc.cast(_t(index), gc.int32), 0, len(branches) - 1)

    def pick(i):
        if i == len(branches) - 1:
            return branches[i](*operands)
        return gc.cond(gc.equal(index, i), lambda: branches[i](*operands), lambda: pick(i + 1))
    return pick(0)
