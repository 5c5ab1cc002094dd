"""3-D convolutions and pools, and transposed convolutions with dilation and output padding,
composed from the 2-D ops (conv2d, conv2d_backprop_input, max_pool2d, avg_pool2d).

The depth axis folds into the batch so that a 2-D op sees each depth slice as an image; the
window along depth is then finished by a sum (convolutions) or a max or mean (pools) over its
taps, each tap a strided slice. Being compositions, they differentiate through the 2-D ops'
gradients and run on every target with no op or kernel of their own.

Inputs are NDHWC, filters DHWIO; padding "SAME" or "VALID" as TensorFlow pads (the odd padded
cell after). Transposed convolutions take filters (k..., out_channels, in_channels) and follow
Keras 3's output size rule (output_padding included).
"""
from functools import reduce

import numpy as np

from ..errors import GraphcError, ShapeError
from ..ir.types import format_shape
from .elementwise import _tensor, maximum
from .nn import PADDINGS, _axis_geometry, avg_pool2d, conv2d, conv2d_backprop_input, max_pool2d
from .shape import broadcast_to, expand_dims, pad, reshape
from .sources import constant

__all__ = ["conv3d", "conv3d_transpose", "conv2d_transpose", "max_pool3d", "avg_pool3d"]


def _ints(value, rank, what, op):
    """An int or `rank` positive ints, as a tuple of `rank` ints."""
    values = (value,) * rank if isinstance(value, (int, np.integer)) else tuple(value)
    if len(values) != rank or not all(isinstance(v, (int, np.integer)) and
                                      not isinstance(v, bool) and v >= 1 for v in values):
        raise GraphcError(f"{op}: {what} must be a positive int or {rank} of them, got "
                          f"{value!r}")
    return tuple(int(v) for v in values)


def _checked(op, x, rank, padding):
    """(x as a tensor, padding upper-cased) after checking x is (batch, spatial..., channels)
    with `rank` spatial axes of known size."""
    x = _tensor(x)
    if x.ndim != rank + 2 or not all(isinstance(d, int) for d in x.shape[1:]):
        raise ShapeError(f"{op}: expects an input (batch, {rank} spatial axes, channels) of "
                         f"known spatial sizes and channels, got shape {format_shape(x.shape)}")
    padding = padding.upper() if isinstance(padding, str) else padding
    if padding not in PADDINGS:
        raise GraphcError(f'{op}: padding must be "SAME" or "VALID", got {padding!r}')
    return x, padding


def _filters(op, filters, rank):
    filters = _tensor(filters)
    if filters.ndim != rank + 2 or not all(isinstance(d, int) for d in filters.shape):
        raise ShapeError(f"{op}: filters must have rank {rank + 2} and known sizes, got "
                         f"{format_shape(filters.shape)}")
    return filters


def _fold_depth(x):
    """(n, d, h, w, c) -> (n * d, h, w, c): each depth slice an image of the batch."""
    return reshape(x, (-1,) + tuple(x.shape[2:]))


def _unfold_depth(y, depth):
    return reshape(y, (-1, depth) + tuple(y.shape[1:]))


def _depth_taps(op, x, k, stride, dilation, padding, fill):
    """(slices, out): for each tap of a depth window, the (n, out, h, w, c) slice of x (padded
    with `fill` where `padding` asks) that it reads for all `out` output depths."""
    depth = x.shape[1]
    out, (before, after) = _axis_geometry(depth, k, stride, dilation, padding)
    if out <= 0:
        raise ShapeError(f"{op}: input depth {depth} with a window of {k} (dilation "
                         f"{dilation}), stride {stride} and {padding} padding leaves no output")
    if before or after:
        x = pad(x, [(0, 0), (before, after)] + [(0, 0)] * 3, constant_values=fill)
    return [x[:, i * dilation:i * dilation + (out - 1) * stride + 1:stride]
            for i in range(k)], out


def conv3d(x, filters, strides=1, padding="VALID", dilations=1):
    """3-D convolution of an NDHWC input with DHWIO filters (TensorFlow's conv3d): the sum
    over the depth taps of conv2d on each tap's depth slices, folded into the batch."""
    x, padding = _checked("conv3d", x, 3, padding)
    filters = _filters("conv3d", filters, 3)
    (sd, *s_hw), (dd, *d_hw) = (_ints(strides, 3, "strides", "conv3d"),
                                _ints(dilations, 3, "dilations", "conv3d"))
    slices, out = _depth_taps("conv3d", x, filters.shape[0], sd, dd, padding, 0)
    terms = [conv2d(_fold_depth(s), filters[i], tuple(s_hw), padding, tuple(d_hw))
             for i, s in enumerate(slices)]
    return _unfold_depth(reduce(lambda a, b: a + b, terms), out)


def _pool3d(op, pool2d, x, ksize, strides, padding, fill):
    """(the depth slices of each depth tap, padded with `fill`; x; the depth window (kd, sd);
    padding) of the 2-D pool of every depth slice of x."""
    x, padding = _checked(op, x, 3, padding)
    (kd, *k_hw), (sd, *s_hw) = _ints(ksize, 3, "ksize", op), _ints(strides, 3, "strides", op)
    pooled = _unfold_depth(pool2d(_fold_depth(x), tuple(k_hw), tuple(s_hw), padding),
                           x.shape[1])
    return _depth_taps(op, pooled, kd, sd, 1, padding, fill)[0], x, (kd, sd), padding


def max_pool3d(x, ksize, strides, padding="VALID"):
    """Max over ksize (depth, height, width) windows of an NDHWC input, moved by strides;
    padded cells never win."""
    return reduce(maximum, _pool3d("max_pool3d", max_pool2d, x, ksize, strides, padding,
                                   -np.inf)[0])


def avg_pool3d(x, ksize, strides, padding="VALID"):
    """Mean over ksize windows of an NDHWC input; with SAME padding a window at the border
    averages only its cells inside the input."""
    slices, x, (kd, sd), padding = _pool3d("avg_pool3d", avg_pool2d, x, ksize, strides,
                                           padding, 0)
    # the 2-D pool already averaged each slice over its real cells; along depth the real
    # cells of window o are those of [o * sd - before, o * sd - before + kd) in the input
    depth = x.shape[1]
    out, (before, _) = _axis_geometry(depth, kd, sd, 1, padding)
    starts = np.arange(out) * sd - before
    real = np.minimum(starts + kd, depth) - np.maximum(starts, 0)
    scale = constant((1.0 / real).reshape(1, out, 1, 1, 1), dtype=x.dtype)
    return reduce(lambda a, b: a + b, slices) * scale


# ---- transposed convolutions -------------------------------------------------------------
def _transpose_crops(k, stride, dilation, padding, output_padding, op):
    """(crop before, crop after) of the full transposed convolution along one axis, whose
    length is (size - 1) * stride + span, to give Keras 3's output: a negative crop after
    means that many zeros appended (a stride larger than the kernel, or output padding)."""
    span = (k - 1) * dilation + 1
    if output_padding is not None and not 0 <= output_padding < stride:
        raise GraphcError(f"{op}: output_padding must be smaller than the stride along each "
                          f"axis, got {output_padding} with a stride of {stride}")
    if padding == "VALID":
        extra = max(span, stride) - span if output_padding is None else output_padding
        left, right = span - 1, span - 1 + extra
    else:
        total = (stride + span - 2 if output_padding is None
                 else span + span % 2 - 2 + output_padding)
        left = min(total // 2 + total % 2, span - 1)
        right = total - left
    return span - 1 - left, span - 1 - right


def _full_transpose2d(x, filters, strides, dilations):
    """Every output cell the 2-D transposed convolution reaches (no cropping): the gradient of
    a VALID conv2d over an input just large enough for x's height and width."""
    full = [(n - 1) * s + (k - 1) * d + 1
            for n, k, s, d in zip(x.shape[1:3], filters.shape[:2], strides, dilations)]
    like = broadcast_to(constant(0, dtype=x.dtype), (x.shape[0], *full, filters.shape[2]))
    return conv2d_backprop_input(like, filters, x, strides, "VALID", dilations)


def _crop(y, crops):
    """y cropped by (before, after) per spatial axis, a negative `after` padding zeros."""
    index = (slice(None),) + tuple(slice(b, n - max(a, 0))
                                   for (b, a), n in zip(crops, y.shape[1:-1]))
    y = y[index]
    zeros = [(0, max(-a, 0)) for _, a in crops]
    return pad(y, [(0, 0)] + zeros + [(0, 0)]) if any(z for _, z in zeros) else y


def _transpose_args(op, x, filters, rank, strides, padding, dilations, output_padding):
    x, padding = _checked(op, x, rank, padding)
    filters = _filters(op, filters, rank)
    if filters.shape[-1] != x.shape[-1]:
        raise ShapeError(f"{op}: filters (k..., out, in) take {filters.shape[-1]} input "
                         f"channels, the input has {x.shape[-1]}")
    strides, dilations = (_ints(strides, rank, "strides", op),
                          _ints(dilations, rank, "dilations", op))
    pads = ((None,) * rank if output_padding is None else
            tuple(int(p) for p in ((output_padding,) * rank
                                   if isinstance(output_padding, (int, np.integer))
                                   else output_padding)))
    crops = [_transpose_crops(k, s, d, padding, p, op) for k, s, d, p in
             zip(filters.shape[:rank], strides, dilations, pads)]
    return x, filters, strides, dilations, crops


def conv2d_transpose(x, filters, strides=1, padding="VALID", dilations=1, output_padding=None):
    """The transposed 2-D convolution of an NHWC input by filters (kh, kw, out, in), as Keras
    3's conv_transpose: the gradient of conv2d w.r.t. its input, cropped or zero-extended to
    h' = (h - 1) * stride + span - 2 * pad + output_padding (pad span // 2 for SAME, 0 for
    VALID; without output_padding h * stride for SAME, (h - 1) * stride + max(span, stride)
    for VALID), span = (k - 1) * dilation + 1."""
    x, filters, strides, dilations, crops = _transpose_args(
        "conv2d_transpose", x, filters, 2, strides, padding, dilations, output_padding)
    return _crop(_full_transpose2d(x, filters, strides, dilations), crops)


def conv3d_transpose(x, filters, strides=1, padding="VALID", dilations=1, output_padding=None):
    """The transposed 3-D convolution of an NDHWC input by filters (kd, kh, kw, out, in),
    sizes as conv2d_transpose: each depth tap's 2-D transposed convolution of every depth
    slice, spread `stride` apart along depth and shifted by the tap's offset, summed."""
    x, filters, strides, dilations, crops = _transpose_args(
        "conv3d_transpose", x, filters, 3, strides, padding, dilations, output_padding)
    depth, (sd, *s_hw), (dd, *d_hw) = x.shape[1], strides, dilations
    kd = filters.shape[0]
    terms = []
    for i in range(kd):
        z = _unfold_depth(_full_transpose2d(_fold_depth(x), filters[i], s_hw, d_hw), depth)
        if sd > 1:  # stride - 1 zero slices after each input slice
            z = pad(expand_dims(z, 2), [(0, 0), (0, 0), (0, sd - 1)] + [(0, 0)] * 3)
            z = reshape(z, (-1, depth * sd) + tuple(z.shape[3:]))[:, :(depth - 1) * sd + 1]
        terms.append(pad(z, [(0, 0), (i * dd, (kd - 1 - i) * dd)] + [(0, 0)] * 3))
    return _crop(reduce(lambda a, b: a + b, terms), crops)
