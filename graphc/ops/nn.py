"""Neural-network ops: softmax family, cross-entropies, conv2d, pooling, dropout.

softmax and log_softmax are ops rather than composites so that a rewrite can recognise
log(softmax(x)) and replace it with log_softmax(x). conv2d and the pools take NHWC tensors (conv
filters are HWIO) and pad as TensorFlow does. Their gradients are ops of their own, each with a
numpy reference; conv2d's three ops are each other's gradients, so they differentiate to any
order.
"""
import numbers
from dataclasses import dataclass

import numpy as np

from ..errors import DTypeError, GradientError, GraphcError, IndexError_, ShapeError
from ..ir.types import Dim, TensorType, format_shape, normalize_axis
from .elementwise import _tensor, cast, exp, log1p, relu
from .elementwise import abs as abs_
from .reductions import along_axis, sum as reduce_sum
from ..kernels import conv_rules, pool_rules
from ..kernels import lowering_rules as rules
from .registry import apply, register
from .shape import expand_dims, one_hot
from .sources import as_tensor
from .state import random_uniform_like

__all__ = ["softmax", "log_softmax", "sparse_softmax_cross_entropy", "softmax_cross_entropy",
           "sigmoid_cross_entropy", "conv2d", "conv2d_backprop_input", "conv2d_backprop_filter",
           "max_pool2d", "max_pool2d_grad", "avg_pool2d", "avg_pool2d_grad", "dropout"]


def _check_float(op, *types):
    """Every type is floating point, and all share one dtype."""
    for t in types:
        if not t.dtype.is_float:
            raise DTypeError(f"{op} expects floating-point tensors, got {t.dtype.name}; cast "
                             "it first (gc.cast(x, gc.float32))")
    if len({t.dtype.name for t in types}) > 1:
        raise DTypeError(f"{op} needs operands of one dtype, got "
                         f"{', '.join(t.dtype.name for t in types)}")


def _check_rank(op, what, t, rank):
    if t.rank != rank:
        raise ShapeError(f"{op} expects {what} of rank {rank}, got shape {format_shape(t.shape)}")


def _same_dims(op, what, got, expected):
    """got's dims where they fit expected's; a known size wins over a symbol."""
    if len(got) != len(expected):
        raise ShapeError(f"{op}: {what} has shape {format_shape(got)}, expected "
                         f"{format_shape(expected)}")
    dims = []
    for a, b in zip(got, expected):
        if isinstance(a, int) and isinstance(b, int) and a != b:
            raise ShapeError(f"{op}: {what} has shape {format_shape(got)}, expected "
                             f"{format_shape(expected)}")
        dims.append(b if isinstance(b, int) else a)
    return tuple(dims)


# ---- softmax, log_softmax -----------------------------------------------------------------
def _softmax_infer(op):
    def infer(x, *, axis):
        _check_float(op, x)
        if x.rank == 0:
            raise ShapeError(f"{op} expects a tensor of rank >= 1, got a scalar")
        return x
    return infer


def _shifted(x, axis):
    """x minus its max along axis, so that exp cannot overflow (an empty x has no max, and
    nothing to shift)."""
    if x.size == 0:
        return x
    return x - np.max(x, axis=axis, keepdims=True)


def _softmax_ref(x, *, axis):
    e = np.exp(_shifted(x, axis))
    return e / np.sum(e, axis=axis, keepdims=True)


def _log_softmax_ref(x, *, axis):
    s = _shifted(x, axis)
    return s - np.log(np.sum(np.exp(s), axis=axis, keepdims=True))


def _softmax_grad(node, g):
    y = node.outputs[0]
    return [y * (g - reduce_sum(g * y, axis=node.attrs["axis"], keepdims=True))]


def _log_softmax_grad(node, g):
    y = node.outputs[0]
    return [g - exp(y) * reduce_sum(g, axis=node.attrs["axis"], keepdims=True)]


register("softmax", lower=rules.softmax, infer=_softmax_infer("softmax"), ref=_softmax_ref, grad=_softmax_grad,
         kind="reduction", doc="exp(x) / sum(exp(x)) along one axis, computed stably")
register("log_softmax", lower=rules.log_softmax, infer=_softmax_infer("log_softmax"), ref=_log_softmax_ref,
         grad=_log_softmax_grad, kind="reduction",
         doc="x - logsumexp(x) along one axis, computed stably")


softmax = along_axis("softmax", "exp(x) normalised to sum to 1 along `axis`.")
log_softmax = along_axis("log_softmax", "log(softmax(x)) along `axis`, without its underflow.")


# ---- cross-entropies ------------------------------------------------------------------------
def _sparse_xent_infer(logits, labels):
    op = "sparse_softmax_cross_entropy"
    _check_float(op, logits)
    if not labels.dtype.is_integer:
        raise DTypeError(f"{op} expects int32 or int64 labels, got {labels.dtype.name}")
    if logits.rank == 0:
        raise ShapeError(f"{op} expects logits of shape [..., classes], got a scalar")
    if logits.shape[-1] == 0:
        raise ShapeError(f"{op}: logits of shape {format_shape(logits.shape)} have no classes")
    what = f"labels (for logits of shape {format_shape(logits.shape)})"
    return TensorType(logits.dtype, _same_dims(op, what, labels.shape, logits.shape[:-1]))


def _sparse_xent_ref(logits, labels):
    classes = logits.shape[-1]
    bad = (labels < 0) | (labels >= classes)
    if np.any(bad):
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise IndexError_(f"sparse_softmax_cross_entropy: label {int(labels[where])} at "
                          f"position {where} is out of range [0, {classes}) "
                          f"({int(bad.sum())} bad labels in all)")
    picked = np.take_along_axis(_log_softmax_ref(logits, axis=-1),
                                labels[..., None].astype(np.intp), axis=-1)
    return -picked[..., 0]


def _one_hot_like(labels, logits):
    """labels as rows of 0/1 in logits' dtype, one column per class."""
    classes = logits.shape[-1]
    if not isinstance(classes, int):
        raise GradientError("the gradient of sparse_softmax_cross_entropy needs a known number "
                            f"of classes, got logits of shape {format_shape(logits.shape)}",
                            logits.node)
    return one_hot(labels, classes, dtype=logits.dtype)


def _sparse_xent_grad(node, g):
    logits, labels = node.inputs
    return [(softmax(logits) - _one_hot_like(labels, logits)) * expand_dims(g, -1), None]


register("sparse_softmax_cross_entropy", lower=rules.sparse_softmax_cross_entropy, infer=_sparse_xent_infer, ref=_sparse_xent_ref,
         grad=_sparse_xent_grad, kind="reduction",
         reduced_axes=lambda node: (node.inputs[0].rank - 1,),  # the classes of the logits
         doc="-log softmax(logits)[label] per example; labels are class indices")


def sparse_softmax_cross_entropy(logits, labels, name=None):
    """Per-example loss -log(softmax(logits)[..., label]); logits [..., C], labels [...] int.

    A label outside [0, C) raises gc.IndexError_ when the graph runs.
    """
    logits = _tensor(logits)
    labels = as_tensor(labels, graph=logits.graph)
    return apply("sparse_softmax_cross_entropy", [logits, labels], name=name)


def softmax_cross_entropy(logits, labels):
    """Per-example -sum(labels * log_softmax(logits)) over the last axis; labels are
    probabilities of the same shape as logits."""
    logits = _tensor(logits)
    labels = as_tensor(labels, dtype=logits.dtype, graph=logits.graph)
    return -reduce_sum(labels * log_softmax(logits), axis=-1)


def sigmoid_cross_entropy(logits, labels):
    """Elementwise -z*log(sigmoid(x)) - (1-z)*log(1-sigmoid(x)) for logits x and labels z,
    written as max(x, 0) - x*z + log1p(exp(-|x|)) so no term overflows."""
    x = _tensor(logits)
    z = as_tensor(labels, dtype=x.dtype, graph=x.graph)
    return relu(x) - x * z + log1p(exp(-abs_(x)))


# ---- sliding windows ------------------------------------------------------------------------
PADDINGS = ("SAME", "VALID")


def _axis_geometry(size, k, stride, dilation, padding):
    """Output length and (before, after) padding along one spatial axis, as TensorFlow has them:
    SAME gives ceil(size / stride) outputs and puts the odd padded cell after."""
    span = (k - 1) * dilation + 1
    out = -(-size // stride) if padding == "SAME" else -(-(size - span + 1) // stride)
    total = max((out - 1) * stride + span - size, 0)
    return out, (total // 2, total - total // 2)


def _check_window_attrs(op, padding, pairs):
    if padding not in PADDINGS:
        raise GraphcError(f'{op}: padding must be "SAME" or "VALID", got {padding!r}')
    for what, pair in pairs.items():
        if not (isinstance(pair, tuple) and len(pair) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1
                        for v in pair)):
            raise GraphcError(f"{op}: {what} must be a positive int or a pair of them "
                              f"(height, width), got {pair!r}")


def _window_out_dims(op, in_hw, k_hw, strides, dilations, padding):
    """The output's (height, width): ints where sizes are known, else fresh symbols."""
    dims = []
    for axis, size, k, s, d in zip(("height", "width"), in_hw, k_hw, strides, dilations):
        if not (isinstance(size, int) and isinstance(k, int)):
            dims.append(Dim())
            continue
        out = _axis_geometry(size, k, s, d, padding)[0]
        if out <= 0:
            raise ShapeError(f"{op}: input {axis} {size} with a window of {k} (dilation {d}), "
                             f"stride {s} and {padding} padding leaves an output {axis} of "
                             f"{out}; the input must be at least as large as the window")
        dims.append(out)
    return tuple(dims)


@dataclass(frozen=True)
class _Windows:
    """A 2-D sliding window over concrete NHWC sizes: the output size, the padding, and the
    strided slice of the padded input that each kernel tap reads for all outputs at once."""
    out: tuple
    pads: tuple
    ksize: tuple
    strides: tuple
    dilations: tuple

    def pad(self, x, value=0):
        return np.pad(x, ((0, 0),) + self.pads + ((0, 0),), constant_values=value)

    def padded_shape(self, shape):
        (top, bottom), (left, right) = self.pads
        return (shape[0], shape[1] + top + bottom, shape[2] + left + right) + shape[3:]

    def crop(self, padded):
        (top, bottom), (left, right) = self.pads
        return padded[:, top:padded.shape[1] - bottom, left:padded.shape[2] - right]

    def taps(self):
        """((i, j), index): the padded-input cells tap (i, j) reads, one per output cell."""
        (kh, kw), (sh, sw), (dh, dw), (oh, ow) = (self.ksize, self.strides, self.dilations,
                                                  self.out)
        for i in range(kh):
            for j in range(kw):
                yield (i, j), (slice(None), slice(i * dh, i * dh + (oh - 1) * sh + 1, sh),
                               slice(j * dw, j * dw + (ow - 1) * sw + 1, sw))


def _windows(in_hw, ksize, strides, dilations, padding):
    geometry = [_axis_geometry(*args, padding) for args in zip(in_hw, ksize, strides, dilations)]
    return _Windows(tuple(out for out, _ in geometry), tuple(pad for _, pad in geometry),
                    tuple(ksize), tuple(strides), tuple(dilations))


def _pair(value):
    """An int as (int, int); anything else as given, for inference to check."""
    return (int(value),) * 2 if isinstance(value, (int, np.integer)) else value


def _padding(value):
    return value.upper() if isinstance(value, str) else value


# ---- conv2d and its two gradient ops --------------------------------------------------------
def _conv2d_type(op, x, filters, strides, padding, dilations):
    _check_float(op, x, filters)
    _check_rank(op, "an NHWC input", x, 4)
    _check_rank(op, "HWIO filters", filters, 4)
    _check_window_attrs(op, padding, {"strides": strides, "dilations": dilations})
    c_in, c_filter = x.shape[3], filters.shape[2]
    if isinstance(c_in, int) and isinstance(c_filter, int) and c_in != c_filter:
        raise ShapeError(f"{op}: the input has {c_in} channels but the filters of shape "
                         f"{format_shape(filters.shape)} expect {c_filter}")
    hw = _window_out_dims(op, x.shape[1:3], filters.shape[:2], strides, dilations, padding)
    return TensorType(x.dtype, (x.shape[0],) + hw + (filters.shape[3],))


def _conv2d_infer(x, filters, *, strides, padding, dilations):
    return _conv2d_type("conv2d", x, filters, strides, padding, dilations)


def _backprop_infer(op, result):
    """Inference of a gradient op: g must be shaped like conv2d(x, filters); the result is
    shaped like x (result 0) or like filters (result 1)."""
    def infer(x, filters, g, *, strides, padding, dilations):
        expected = _conv2d_type(op, x, filters, strides, padding, dilations)
        _check_float(op, x, g)
        _same_dims(op, "the output gradient", g.shape, expected.shape)
        return (x, filters)[result]
    return infer


def _conv2d_ref(x, filters, *, strides, padding, dilations):
    win = _windows(x.shape[1:3], filters.shape[:2], strides, dilations, padding)
    xp = win.pad(x)
    out = np.zeros((x.shape[0],) + win.out + (filters.shape[3],), np.result_type(x, filters))
    for (i, j), cells in win.taps():
        out += xp[cells] @ filters[i, j]
    return out


def _conv2d_backprop_input_ref(x, filters, g, *, strides, padding, dilations):
    win = _windows(x.shape[1:3], filters.shape[:2], strides, dilations, padding)
    dxp = np.zeros(win.padded_shape(x.shape), g.dtype)
    for (i, j), cells in win.taps():
        dxp[cells] += g @ filters[i, j].T
    return win.crop(dxp)


def _conv2d_backprop_filter_ref(x, filters, g, *, strides, padding, dilations):
    win = _windows(x.shape[1:3], filters.shape[:2], strides, dilations, padding)
    xp = win.pad(x)
    df = np.zeros(filters.shape, g.dtype)
    for (i, j), cells in win.taps():
        df[i, j] = np.tensordot(xp[cells], g, axes=([0, 1, 2], [0, 1, 2]))
    return df


# conv2d is bilinear in (x, filters), and the two gradient ops are its adjoints in each
# argument, so each op's gradient is another of the three with the roles swapped.
def _conv2d_grad(node, g):
    x, filters = node.inputs
    return [apply("conv2d_backprop_input", [x, filters, g], **node.attrs),
            apply("conv2d_backprop_filter", [x, filters, g], **node.attrs)]


def _backprop_input_grad(node, h):
    _, filters, g = node.inputs
    return [None, apply("conv2d_backprop_filter", [h, filters, g], **node.attrs),
            apply("conv2d", [h, filters], **node.attrs)]


def _backprop_filter_grad(node, h):
    x, _, g = node.inputs
    return [apply("conv2d_backprop_input", [x, h, g], **node.attrs), None,
            apply("conv2d", [x, h], **node.attrs)]


register("conv2d", infer=_conv2d_infer, ref=_conv2d_ref, grad=_conv2d_grad, kind="contraction",
         lower_group=conv_rules.conv2d,
         doc="2-D convolution (cross-correlation), NHWC input, HWIO filters")
register("conv2d_backprop_input", infer=_backprop_infer("conv2d_backprop_input", 0),
         ref=_conv2d_backprop_input_ref, grad=_backprop_input_grad, kind="contraction",
         lower_group=conv_rules.conv2d_backprop_input, shape_only={0},
         doc="gradient of conv2d w.r.t. its input; x gives only the shape")
register("conv2d_backprop_filter", infer=_backprop_infer("conv2d_backprop_filter", 1),
         ref=_conv2d_backprop_filter_ref, grad=_backprop_filter_grad, kind="contraction",
         lower_group=conv_rules.conv2d_backprop_filter, shape_only={1},
         doc="gradient of conv2d w.r.t. its filters; filters give only the shape")


def _conv_apply(op, inputs, strides, padding, dilations, name):
    inputs = [_tensor(t) for t in inputs]
    return apply(op, inputs, name=name, strides=_pair(strides), padding=_padding(padding),
                 dilations=_pair(dilations))


def conv2d(x, filters, strides=1, padding="VALID", dilations=1, name=None):
    """2-D convolution of an NHWC input with HWIO filters (TensorFlow's conv2d).

    strides and dilations: an int or a (height, width) pair; padding: "SAME" or "VALID"
    (either case), SAME putting the odd padded row or column at the bottom or right.
    """
    return _conv_apply("conv2d", [x, filters], strides, padding, dilations, name)


def conv2d_backprop_input(x, filters, g, strides=1, padding="VALID", dilations=1, name=None):
    """The gradient of sum(conv2d(x, filters) * g) w.r.t. x; x is read only for its shape."""
    return _conv_apply("conv2d_backprop_input", [x, filters, g], strides, padding, dilations,
                       name)


def conv2d_backprop_filter(x, filters, g, strides=1, padding="VALID", dilations=1, name=None):
    """The gradient of sum(conv2d(x, filters) * g) w.r.t. filters, read only for their shape."""
    return _conv_apply("conv2d_backprop_filter", [x, filters, g], strides, padding, dilations,
                       name)


# ---- pooling ---------------------------------------------------------------------------------
def _pool_type(op, x, ksize, strides, padding):
    _check_float(op, x)
    _check_rank(op, "an NHWC input", x, 4)
    _check_window_attrs(op, padding, {"ksize": ksize, "strides": strides})
    hw = _window_out_dims(op, x.shape[1:3], ksize, strides, (1, 1), padding)
    return TensorType(x.dtype, (x.shape[0],) + hw + (x.shape[3],))


def _pool_infer(op):
    def infer(x, *, ksize, strides, padding):
        return _pool_type(op, x, ksize, strides, padding)
    return infer


def _pool_grad_infer(op):
    """g must be shaped like the pool's output; the result is shaped like x."""
    def infer(x, g, *, ksize, strides, padding):
        expected = _pool_type(op, x, ksize, strides, padding)
        _check_float(op, x, g)
        _same_dims(op, "the output gradient", g.shape, expected.shape)
        return x
    return infer


def _pool_windows(x, ksize, strides, padding):
    return _windows(x.shape[1:3], ksize, strides, (1, 1), padding)


def _max_pool_ref(x, *, ksize, strides, padding):
    win = _pool_windows(x, ksize, strides, padding)
    xp = win.pad(x, -np.inf)  # padded cells never win
    return np.max([xp[cells] for _, cells in win.taps()], axis=0)


def _max_pool_grad_ref(x, g, *, ksize, strides, padding):
    win = _pool_windows(x, ksize, strides, padding)
    xp = win.pad(x, -np.inf)
    # argmax keeps the first of tied maxima, in row-major order within the window, as TF does
    winner = np.argmax([xp[cells] for _, cells in win.taps()], axis=0)
    dxp = np.zeros(xp.shape, g.dtype)
    for tap, (_, cells) in enumerate(win.taps()):
        dxp[cells] += np.where(winner == tap, g, 0)
    return win.crop(dxp)


def _real_cells(win, x):
    """How many cells of each window lie inside the unpadded input, shaped (1, OH, OW, 1)."""
    inside = win.pad(np.ones((1,) + x.shape[1:3] + (1,), x.dtype))
    return sum(inside[cells] for _, cells in win.taps())


def _avg_pool_ref(x, *, ksize, strides, padding):
    win = _pool_windows(x, ksize, strides, padding)
    xp = win.pad(x)
    return sum(xp[cells] for _, cells in win.taps()) / _real_cells(win, x)


def _avg_pool_grad_ref(x, g, *, ksize, strides, padding):
    win = _pool_windows(x, ksize, strides, padding)
    share = g / _real_cells(win, x)
    dxp = np.zeros(win.padded_shape(x.shape), g.dtype)
    for _, cells in win.taps():
        dxp[cells] += share
    return win.crop(dxp)


def _max_pool_grad_grad(node, h):
    raise GradientError("second derivatives of max_pool2d (the gradient of max_pool2d_grad) "
                        "are not implemented", node)


register("max_pool2d", infer=_pool_infer("max_pool2d"), ref=_max_pool_ref,
         grad=lambda node, g: [apply("max_pool2d_grad", [node.inputs[0], g], **node.attrs)],
         kind="window", lower=pool_rules.max_pool2d,
         doc="max over 2-D windows of an NHWC input; padding never wins")
register("max_pool2d_grad", infer=_pool_grad_infer("max_pool2d_grad"), ref=_max_pool_grad_ref,
         grad=_max_pool_grad_grad, kind="window", lower=pool_rules.max_pool2d_grad,
         doc="routes each window's gradient to its first maximal cell")
register("avg_pool2d", infer=_pool_infer("avg_pool2d"), ref=_avg_pool_ref,
         grad=lambda node, g: [apply("avg_pool2d_grad", [node.inputs[0], g], **node.attrs)],
         kind="window", lower=pool_rules.avg_pool2d,
         doc="mean over the real (unpadded) cells of 2-D windows of NHWC input")
# avg_pool2d is linear and avg_pool2d_grad is its adjoint, so the adjoint's gradient w.r.t. g
# is avg_pool2d again; x gives only the shape.
register("avg_pool2d_grad", infer=_pool_grad_infer("avg_pool2d_grad"), ref=_avg_pool_grad_ref,
         grad=lambda node, h: [None, apply("avg_pool2d", [h], **node.attrs)], kind="window",
         lower=pool_rules.avg_pool2d_grad,
         doc="spreads each window's gradient evenly over its real cells")


def _pool_apply(op, inputs, ksize, strides, padding, name):
    inputs = [_tensor(t) for t in inputs]
    return apply(op, inputs, name=name, ksize=_pair(ksize), strides=_pair(strides),
                 padding=_padding(padding))


def max_pool2d(x, ksize, strides, padding="VALID", name=None):
    """Max over ksize windows of an NHWC input, moved by strides; padded cells never win."""
    return _pool_apply("max_pool2d", [x], ksize, strides, padding, name)


def avg_pool2d(x, ksize, strides, padding="VALID", name=None):
    """Mean over ksize windows of an NHWC input; with SAME padding a window at the border
    averages only its cells inside the input."""
    return _pool_apply("avg_pool2d", [x], ksize, strides, padding, name)


def max_pool2d_grad(x, g, ksize, strides, padding="VALID", name=None):
    """The gradient of sum(max_pool2d(x) * g) w.r.t. x."""
    return _pool_apply("max_pool2d_grad", [x, g], ksize, strides, padding, name)


def avg_pool2d_grad(x, g, ksize, strides, padding="VALID", name=None):
    """The gradient of sum(avg_pool2d(x) * g) w.r.t. x; x is read only for its shape."""
    return _pool_apply("avg_pool2d_grad", [x, g], ksize, strides, padding, name)


# ---- dropout ---------------------------------------------------------------------------------
def dropout(x, rate, seed=None, training=True, name=None):
    """Inverted dropout: each entry is zeroed with probability `rate` and the survivors are
    scaled by 1 / (1 - rate), so the expected value is unchanged; a new mask every run.

    With rate 0 or training=False, x itself.
    """
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not 0 <= rate < 1:
        raise GraphcError(f"dropout rate must be a number in [0, 1), got {rate!r}")
    x = _tensor(x)
    if not x.dtype.is_float:
        raise DTypeError(f"dropout expects a floating-point tensor, got {x.dtype.name}", x.node)
    if rate == 0 or not training:
        return x
    keep = cast(random_uniform_like(x, seed=seed, name=name) >= float(rate), x.dtype)
    return x * keep / (1.0 - float(rate))
