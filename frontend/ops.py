"""gk.ops: Keras 3's backend-neutral op names over graphc tensors, so that a custom layer's
call() written with keras.ops runs on graphc. Each is a thin mapping onto a graphc op or a
small composition of them; numpy arrays and Python numbers are taken as constants.

Here: elementwise math, comparisons, reductions, shapes, matmul/einsum, softmax and
the activations, convolutions and pools, top_k; ops_numpy and ops_nn add the rest of the
numpy-like and nn names (their __all__ lists are re-exported at the bottom).
"""
import math

import numpy as np

import graphc as gc
from graphc.errors import GraphcError
from graphc.ir.graph import Tensor

from . import activations as _act
from .data_format import channels_first_op


def convert_to_tensor(x, dtype=None, sparse=None):
    if isinstance(x, Tensor):
        return x if dtype is None else cast(x, dtype)
    return gc.constant(np.asarray(x, dtype=dtype or (np.float32 if np.asarray(x).dtype
                                                     == np.float64 else None)))


def _t(x):
    return x if isinstance(x, Tensor) else convert_to_tensor(x)


def convert_to_numpy(x):
    if isinstance(x, Tensor):
        return gc.Session(x.graph).run(x)
    return np.asarray(x)


def is_tensor(x):
    return isinstance(x, Tensor)


def cast(x, dtype):
    return gc.cast(_t(x), gc.as_dtype(getattr(dtype, "name", dtype)))


def dtype(x):
    return _t(x).dtype.name


def shape(x):
    return tuple(_t(x).shape)


def ndim(x):
    return _t(x).ndim


def size(x):
    return int(np.prod([d for d in shape(x)]))


# ---- elementwise -------------------------------------------------------------------------------
def _unary(fn):
    return lambda x: fn(_t(x))


abs = absolute = _unary(gc.abs)  # noqa: A001
exp, log, sqrt, square = _unary(gc.exp), _unary(gc.log), _unary(gc.sqrt), _unary(gc.square)
sin, cos, tanh, sign = _unary(gc.sin), _unary(gc.cos), _unary(gc.tanh), _unary(gc.sign)
floor, negative, erf = _unary(gc.floor), _unary(gc.neg), _unary(gc.erf)
expm1, log1p, rsqrt = _unary(gc.expm1), _unary(gc.log1p), _unary(gc.rsqrt)
isnan, isfinite = _unary(gc.isnan), _unary(gc.isfinite)
logical_not = _unary(gc.logical_not)


def tan(x):
    return sin(x) / cos(x)


def sinh(x):
    return (exp(x) - exp(-_t(x))) / 2.0


def cosh(x):
    return (exp(x) + exp(-_t(x))) / 2.0


def ceil(x):
    return -gc.floor(-_t(x))


def round(x, decimals=0):  # noqa: A001 - Keras's name; half to even, as numpy
    x = _t(x) * (10.0 ** decimals)
    f = gc.floor(x)
    diff = x - f
    even = gc.equal(gc.mod(f, 2.0), 0.0)
    up = gc.logical_or(diff > 0.5, gc.logical_and(gc.equal(diff, 0.5), gc.logical_not(even)))
    return gc.where(up, f + 1.0, f) / (10.0 ** decimals)


def log2(x):
    return gc.log(_t(x)) / math.log(2.0)


def log10(x):
    return gc.log(_t(x)) / math.log(10.0)


def exp2(x):
    return gc.exp(_t(x) * math.log(2.0))


def reciprocal(x):
    return 1.0 / _t(x)


def isinf(x):
    x = _t(x)
    return gc.logical_and(gc.logical_not(gc.isfinite(x)), gc.logical_not(gc.isnan(x)))


def _binary(fn):
    def op(x1, x2):
        a, b = x1, x2
        if not isinstance(a, Tensor) and not isinstance(b, Tensor):
            a = _t(a)
        return fn(a, b)
    return op


add, subtract, multiply = _binary(gc.add), _binary(gc.sub), _binary(gc.mul)
divide = true_divide = _binary(gc.div)
power = _binary(gc.pow)
maximum, minimum = _binary(gc.maximum), _binary(gc.minimum)
equal, not_equal = _binary(gc.equal), _binary(gc.not_equal)
greater, greater_equal = _binary(gc.greater), _binary(gc.greater_equal)
less, less_equal = _binary(gc.less), _binary(gc.less_equal)
logical_and, logical_or = _binary(gc.logical_and), _binary(gc.logical_or)
logical_xor = _binary(gc.logical_xor)
floor_divide, mod = _binary(gc.floordiv), _binary(gc.mod)
bitwise_and, bitwise_or = _binary(gc.bitwise_and), _binary(gc.bitwise_or)
bitwise_xor = _binary(gc.bitwise_xor)
left_shift = bitwise_left_shift = _binary(gc.left_shift)
right_shift = bitwise_right_shift = _binary(gc.right_shift)


def bitwise_invert(x):
    return gc.invert(_t(x))


bitwise_not = bitwise_invert


def divide_no_nan(x1, x2):
    x2 = _t(x2)
    safe = gc.where(gc.equal(x2, 0.0), gc.ones_like(x2), x2)
    return gc.where(gc.equal(x2, 0.0), gc.zeros_like(safe), _t(x1) / safe)


def clip(x, x_min, x_max):
    return gc.clip(_t(x), x_min, x_max)


def where(condition, x1=None, x2=None):
    if x1 is None and x2 is None:
        raise NotImplementedError("gk.ops.where(condition) (nonzero indices) is not supported")
    return gc.where(_t(condition), x1, x2)


def square_difference(x1, x2):
    return gc.square(_t(x1) - x2)


# ---- reductions --------------------------------------------------------------------------------
def _reduce(fn):
    def op(x, axis=None, keepdims=False):
        return fn(_t(x), axis=tuple(axis) if isinstance(axis, list) else axis,
                  keepdims=keepdims)
    return op


sum, mean, prod = _reduce(gc.sum), _reduce(gc.mean), _reduce(gc.prod)  # noqa: A001
max = amax = _reduce(gc.max)  # noqa: A001
min = amin = _reduce(gc.min)  # noqa: A001
logsumexp = _reduce(gc.logsumexp)


def var(x, axis=None, keepdims=False):
    x = _t(x)
    return gc.mean(gc.square(x - gc.mean(x, axis=axis, keepdims=True)), axis=axis,
                   keepdims=keepdims)


def std(x, axis=None, keepdims=False):
    return gc.sqrt(var(x, axis, keepdims))


def all(x, axis=None, keepdims=False):  # noqa: A001
    return gc.min(gc.cast(_t(x), gc.int32), axis=axis, keepdims=keepdims) > 0


def any(x, axis=None, keepdims=False):  # noqa: A001
    return gc.max(gc.cast(_t(x), gc.int32), axis=axis, keepdims=keepdims) > 0


def count_nonzero(x, axis=None):
    return gc.sum(gc.cast(gc.not_equal(_t(x), 0), gc.int32), axis=axis)


def _along(x, axis):
    """(x, axis), x flattened and axis 0 where axis is None (numpy's reading)."""
    x = _t(x)
    return (gc.reshape(x, (-1,)), 0) if axis is None else (x, axis)


def argmax(x, axis=None, keepdims=False):
    x, axis = _along(x, axis)
    out = gc.argmax(x, axis=axis)
    return gc.expand_dims(out, axis) if keepdims else out


def argmin(x, axis=None, keepdims=False):
    x, axis = _along(x, axis)
    out = gc.argmin(x, axis=axis)
    return gc.expand_dims(out, axis) if keepdims else out


def cumsum(x, axis=None, dtype=None):
    x, axis = _along(x, axis)
    return gc.cumsum(x, axis=axis)


def norm(x, ord=None, axis=None, keepdims=False):
    if ord not in (None, 2, "fro", "euclidean"):
        raise NotImplementedError(f"gk.ops.norm(ord={ord!r}) is not supported yet")
    return gc.sqrt(gc.sum(gc.square(_t(x)), axis=axis, keepdims=keepdims))


# ---- shapes ------------------------------------------------------------------------------------
def reshape(x, newshape):
    return gc.reshape(_t(x), tuple(newshape) if isinstance(newshape, (list, tuple))
                      else (newshape,))


def transpose(x, axes=None):
    return gc.transpose(_t(x), axes)


def expand_dims(x, axis):
    return gc.expand_dims(_t(x), axis)


def squeeze(x, axis=None):
    return gc.squeeze(_t(x), axis=axis)


def concatenate(xs, axis=0):
    return gc.concat([_t(x) for x in xs], axis=axis)


def stack(x, axis=0):
    return gc.stack([_t(v) for v in x], axis=axis)


def split(x, indices_or_sections, axis=0):
    x = _t(x)
    if isinstance(indices_or_sections, int):
        return gc.split(x, indices_or_sections, axis=axis)
    bounds = [0] + list(indices_or_sections) + [x.shape[axis]]
    return gc.split(x, [b - a for a, b in zip(bounds[:-1], bounds[1:])], axis=axis)


def broadcast_to(x, shape):
    return gc.broadcast_to(_t(x), shape)


def flatten(x):
    return gc.reshape(_t(x), (-1,))


ravel = flatten


def swapaxes(x, axis1, axis2):
    x = _t(x)
    perm = list(range(x.ndim))
    perm[axis1], perm[axis2] = perm[axis2], perm[axis1]
    return gc.transpose(x, perm)


def moveaxis(x, source, destination):
    x = _t(x)
    perm = [a for a in range(x.ndim) if a != source % x.ndim]
    perm.insert(destination % x.ndim, source % x.ndim)
    return gc.transpose(x, perm)


def tile(x, repeats):
    x = _t(x)
    repeats = [repeats] if isinstance(repeats, int) else list(repeats)
    for axis, n in enumerate(repeats[-x.ndim:] if len(repeats) >= x.ndim else
                             [1] * (x.ndim - len(repeats)) + repeats):
        if n != 1:
            x = gc.concat([x] * n, axis=axis)
    return x


def repeat(x, repeats, axis=None):
    x = _t(x)
    if axis is None:
        x, axis = gc.reshape(x, (-1,)), 0
    axis %= x.ndim
    expanded = gc.expand_dims(x, axis + 1)
    target = tuple(x.shape[:axis + 1]) + (repeats,) + tuple(x.shape[axis + 1:])
    out = gc.broadcast_to(expanded, target)
    dims = [d for d in x.shape]
    dims[axis] = dims[axis] * repeats
    return gc.reshape(out, (-1,) + tuple(dims[1:])) if axis != 0 else \
        gc.reshape(out, (dims[0],) + tuple(dims[1:]))


def pad(x, pad_width, mode="constant", constant_values=None):
    if mode != "constant":
        raise NotImplementedError(f"gk.ops.pad(mode={mode!r}) is not supported yet")
    return gc.pad(_t(x), [tuple(p) for p in pad_width], constant_values=constant_values or 0)


def take(x, indices, axis=None):
    x = _t(x)
    if axis is None:
        x, axis = gc.reshape(x, (-1,)), 0
    return gc.gather(x, _t(indices), axis=axis)


def take_along_axis(x, indices, axis=None):
    return gc.gather_elements(_t(x), _t(indices), axis=axis)


def one_hot(x, num_classes, axis=-1, dtype=None, sparse=False):
    return gc.one_hot(_t(x), num_classes, axis=axis,
                      dtype=gc.as_dtype(dtype) if dtype else gc.float32)


def zeros_like(x, dtype=None):
    return gc.zeros_like(_t(x))


def ones_like(x, dtype=None):
    return gc.ones_like(_t(x))


def zeros(shape, dtype="float32"):
    return gc.constant(np.zeros(shape, dtype))


def ones(shape, dtype="float32"):
    return gc.constant(np.ones(shape, dtype))


def full(shape, fill_value, dtype=None):
    return gc.constant(np.full(shape, fill_value, dtype or "float32"))


def eye(N, M=None, k=0, dtype="float32"):
    return gc.constant(np.eye(N, M, k, dtype=dtype))


def arange(start, stop=None, step=1, dtype=None):
    return gc.constant(np.arange(start, stop, step, dtype=dtype))


def linspace(start, stop, num=50, endpoint=True, dtype=None, axis=0):
    return gc.constant(np.linspace(start, stop, num, endpoint, dtype=dtype or "float32"))


def tril(x, k=0):
    x = _t(x)
    rows, cols = x.shape[-2:]
    return x * gc.constant(np.tril(np.ones((rows, cols), np.float32), k))


def triu(x, k=0):
    x = _t(x)
    rows, cols = x.shape[-2:]
    return x * gc.constant(np.triu(np.ones((rows, cols), np.float32), k))


def stop_gradient(variable):
    return gc.stop_gradient(_t(variable))


# ---- linear algebra and nn ------------------------------------------------------------------
def matmul(x1, x2):
    return gc.matmul(_t(x1), _t(x2))


def dot(x1, x2):
    return matmul(x1, x2)


def einsum(subscripts, *operands):
    return gc.einsum(subscripts, *[_t(o) for o in operands])


def outer(x1, x2):
    return gc.reshape(_t(x1), (-1, 1)) * gc.reshape(_t(x2), (1, -1))


def top_k(x, k, sorted=True):
    return gc.top_k(_t(x), k, sorted=sorted)


def softmax(x, axis=-1):
    return gc.nn.softmax(_t(x), axis=axis)


def log_softmax(x, axis=-1):
    return gc.nn.log_softmax(_t(x), axis=axis)


def relu(x):
    return gc.relu(_t(x))


def relu6(x):
    return gc.minimum(gc.relu(_t(x)), 6.0)


def sigmoid(x):
    return gc.sigmoid(_t(x))


def softplus(x):
    return gc.softplus(_t(x))


def softsign(x):
    x = _t(x)
    return x / (gc.abs(x) + 1.0)


def silu(x):
    x = _t(x)
    return x * gc.sigmoid(x)


swish = silu


def gelu(x, approximate=True):
    x = _t(x)
    if approximate:
        return 0.5 * x * (1.0 + gc.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x * x * x)))
    return _act.gelu(x)


def elu(x, alpha=1.0):
    x = _t(x)
    return gc.where(x > 0, x, alpha * gc.expm1(gc.minimum(x, 0.0)))


def selu(x):
    return 1.0507009873554804934193349852946 * elu(x, 1.6732632423543772848170429916717)


def leaky_relu(x, negative_slope=0.2):
    x = _t(x)
    return gc.where(x >= 0, x, x * negative_slope)


def hard_sigmoid(x):
    return gc.clip(_t(x) / 6.0 + 0.5, 0.0, 1.0)


def hard_silu(x):
    x = _t(x)
    return x * hard_sigmoid(x)


hard_swish = hard_silu


def log_sigmoid(x):
    return -gc.softplus(-_t(x))


def normalize(x, axis=-1, order=2, epsilon=None):
    if order != 2:
        raise NotImplementedError("gk.ops.normalize(order != 2) is not supported yet")
    x = _t(x)
    eps = 1e-7 if epsilon is None else epsilon
    return x * gc.minimum(gc.rsqrt(gc.sum(gc.square(x), axis=axis, keepdims=True)), 1.0 / eps)


def moments(x, axes, keepdims=False, synchronized=False):
    return mean(x, axes, keepdims), var(x, axes, keepdims)


def binary_crossentropy(target, output, from_logits=False):
    from .losses import BinaryCrossentropy
    return BinaryCrossentropy(from_logits=from_logits).per_example(_t(target), _t(output))


def categorical_crossentropy(target, output, from_logits=False, axis=-1):
    from .losses import CategoricalCrossentropy
    return CategoricalCrossentropy(from_logits=from_logits).per_example(_t(target), _t(output))


def sparse_categorical_crossentropy(target, output, from_logits=False, axis=-1):
    from .losses import SparseCategoricalCrossentropy
    return SparseCategoricalCrossentropy(from_logits=from_logits).per_example(_t(target),
                                                                           _t(output))


@channels_first_op
def conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
    """1-D (over a unit height), 2-D (NHWC inputs, HWIO kernels) and 3-D (NDHWC, DHWIO)
    convolutions."""
    x, k = _t(inputs), _t(kernel)
    if x.ndim == 3:
        s = strides if isinstance(strides, int) else strides[0]
        d = dilation_rate if isinstance(dilation_rate, int) else dilation_rate[0]
        out = gc.nn.conv2d(gc.expand_dims(x, 1), gc.expand_dims(k, 0), strides=(1, s),
                           padding=padding.upper(), dilations=(1, d))
        return gc.squeeze(out, axis=1)
    if x.ndim not in (4, 5):
        raise GraphcError(f"gk.ops.conv takes 1-D, 2-D and 3-D convolutions (inputs of rank "
                          f"3 to 5), got shape {tuple(x.shape)}")
    return (gc.nn.conv2d if x.ndim == 4 else gc.nn.conv3d)(
        x, k, strides=strides, padding=padding.upper(), dilations=dilation_rate)


def _pool(pool2d, pool3d, inputs, pool_size, strides, padding, who):
    """A 1-D (over a unit height), 2-D or 3-D channels-last pool; strides default to
    pool_size."""
    x = _t(inputs)
    strides = pool_size if strides is None else strides
    if x.ndim == 3:
        size, step = (v if isinstance(v, int) else v[0] for v in (pool_size, strides))
        return gc.squeeze(pool2d(gc.expand_dims(x, 1), (1, size), (1, step),
                                 padding=padding.upper()), axis=1)
    if x.ndim not in (4, 5):
        raise GraphcError(f"gk.ops.{who} takes 1-D, 2-D and 3-D pools (inputs of rank 3 to "
                          f"5), got shape {tuple(x.shape)}")
    return (pool2d if x.ndim == 4 else pool3d)(x, pool_size, strides, padding=padding.upper())


@channels_first_op
def max_pool(inputs, pool_size, strides=None, padding="valid", data_format=None):
    return _pool(gc.nn.max_pool2d, gc.nn.max_pool3d, inputs, pool_size, strides, padding,
                 "max_pool")


@channels_first_op
def average_pool(inputs, pool_size, strides=None, padding="valid", data_format=None):
    return _pool(gc.nn.avg_pool2d, gc.nn.avg_pool3d, inputs, pool_size, strides, padding,
                 "average_pool")


def cond(pred, true_fn, false_fn):
    return gc.cond(pred, true_fn, false_fn)


def scatter_update(inputs, indices, updates):
    return gc.scatter_nd(_t(inputs), _t(indices), _t(updates))


def _segments(data, segment_ids, num_segments, fill, reduce, who):
    """reduce over the rows of each segment: rows outside it replaced by fill (the
    reduction's identity, which an empty segment gets)."""
    if num_segments is None:
        raise NotImplementedError(f"gk.ops.{who} needs num_segments")
    data = _t(data)
    member = gc.one_hot(_t(segment_ids), num_segments, dtype=gc.bool_)  # (n, segs)
    member = gc.reshape(member, tuple(member.shape) + (1,) * (data.ndim - 1))
    rows = gc.expand_dims(data, 1)  # (n, 1, ...)
    return reduce(gc.where(member, rows, gc.fill_like(rows, fill)), axis=0)


def segment_max(data, segment_ids, num_segments=None, sorted=False):
    return _segments(data, segment_ids, num_segments, -np.inf, gc.max, "segment_max")


def segment_min(data, segment_ids, num_segments=None, sorted=False):
    return _segments(data, segment_ids, num_segments, np.inf, gc.min, "segment_min")


def segment_prod(data, segment_ids, num_segments=None, sorted=False):
    return _segments(data, segment_ids, num_segments, 1.0, gc.prod, "segment_prod")


def segment_sum(data, segment_ids, num_segments=None, sorted=False):
    """sum of data's rows per segment id (num_segments must be given)."""
    if num_segments is None:
        raise NotImplementedError("gk.ops.segment_sum needs num_segments")
    onehot = gc.one_hot(_t(segment_ids), num_segments, dtype=_t(data).dtype)  # (n, segs)
    data = _t(data)
    flat = gc.reshape(data, (data.shape[0], -1)) if data.ndim > 1 else gc.expand_dims(data, 1)
    out = gc.matmul(gc.transpose(onehot, (1, 0)), flat)
    return gc.reshape(out, (num_segments,) + tuple(data.shape[1:]))


# ---- the rest of Keras's op names, kept in modules of their own ---------------------------------
from . import ops_ctc, ops_image, ops_nn, ops_numpy  # noqa: E402  (they build on the helpers above)

image = ops_image  # keras.ops.image

globals().update({name: getattr(module, name) for module in (ops_numpy, ops_nn, ops_ctc)
                  for name in module.__all__})
