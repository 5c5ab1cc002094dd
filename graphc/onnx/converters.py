"""The one table of ONNX converters: op type -> (function of an importer.Node returning graphc
tensors, the attributes it understands). Each converter reads `node.opset` where the op changed
between opset versions (attributes that became inputs, Softmax's 2-D flattening before 13).
Every converter builds graphc ops; ops graphc lacked are declared in graphc/ops like the rest.
"""
import itertools
import math
from typing import Callable, NamedTuple

import numpy as np

import graphc.nn as gnn
from ..ir import dtypes
from ..ops import elementwise as E
from ..ops import indexing as I
from ..ops import reductions as R
from ..ops import shape as S
from ..ops.linalg import matmul
from ..ops.resize import nearest_index, resize_axis, source_coords
from ..ops.sources import constant
from . import shapes
from .proto import gc_dtype


class Converter(NamedTuple):
    fn: Callable
    attrs: frozenset


CONVERTERS = {}


def converter(*op_types, attrs=()):
    def deco(fn):
        for op in op_types:
            CONVERTERS[op] = Converter(fn, frozenset(attrs))
        return fn
    return deco


def _known(d):
    return isinstance(d, (int, np.integer))


def _axis(axis, rank):
    return axis + rank if axis < 0 else axis


def _const_like(value, t):
    return constant(np.asarray(value, dtype=t.dtype.np), dtype=t.dtype)


# ---- elementwise ------------------------------------------------------------------------------
_UNARY = {"Abs": E.abs, "Neg": E.neg, "Exp": E.exp, "Log": E.log, "Sqrt": E.sqrt, "Sin": E.sin,
          "Cos": E.cos, "Tanh": E.tanh, "Sigmoid": E.sigmoid, "Relu": E.relu, "Erf": E.erf,
          "Floor": E.floor, "Sign": E.sign, "IsNaN": E.isnan, "Softplus": E.softplus,
          "Not": E.logical_not, "BitwiseNot": E.invert}
for _op, _fn in _UNARY.items():
    converter(_op)(lambda node, _fn=_fn: _fn(node.inputs[0]))


@converter("Identity")
def _identity(node):
    return node.inputs[0]


@converter("Dropout", attrs=("seed", "ratio", "is_test"))
def _dropout(node):
    x = node.inputs[0]
    training = node.static(2) if node.input(2) is not None else None
    if training is not None and bool(training):
        raise node.unsupported("training mode (random drops) is not supported")
    outs = [x]
    if node.n_outputs > 1:
        outs.append(E.fill_like(x, True, dtypes.bool_))
    return outs


@converter("Reciprocal")
def _reciprocal(node):
    x = node.inputs[0]
    return _const_like(1, x) / x


@converter("Ceil")
def _ceil(node):
    return E.neg(E.floor(E.neg(node.inputs[0])))


@converter("Round")
def _round(node):
    x = node.inputs[0]  # half to even, as numpy
    r = E.floor(x + 0.5)
    tie = E.equal(r - x, _const_like(0.5, x))
    odd = E.not_equal(E.mod(r, _const_like(2, x)), _const_like(0, x))
    return E.where(E.logical_and(tie, odd), r - 1, r)


@converter("Tan")
def _tan(node):
    return E.sin(node.inputs[0]) / E.cos(node.inputs[0])


@converter("Sinh")
def _sinh(node):
    x = node.inputs[0]
    return (E.exp(x) - E.exp(E.neg(x))) * 0.5


@converter("Cosh")
def _cosh(node):
    x = node.inputs[0]
    return (E.exp(x) + E.exp(E.neg(x))) * 0.5


@converter("Asinh")
def _asinh(node):
    x = node.inputs[0]
    return E.log(x + E.sqrt(x * x + 1))


@converter("Acosh")
def _acosh(node):
    x = node.inputs[0]
    return E.log(x + E.sqrt(x * x - 1))


@converter("Atanh")
def _atanh(node):
    x = node.inputs[0]
    return E.log((1 + x) / (1 - x)) * 0.5


@converter("IsInf", attrs=("detect_negative", "detect_positive"))
def _isinf(node):
    x = node.inputs[0]
    pos, neg = node.attr("detect_positive", 1), node.attr("detect_negative", 1)
    inf = _const_like(np.inf, x)
    hits = []
    if pos:
        hits.append(E.equal(x, inf))
    if neg:
        hits.append(E.equal(x, E.neg(inf)))
    if not hits:
        return E.fill_like(x, False, dtypes.bool_)
    return hits[0] if len(hits) == 1 else E.logical_or(*hits)


@converter("Elu", attrs=("alpha",))
def _elu(node):
    x, a = node.inputs[0], node.attr("alpha", 1.0)
    return E.where(x > 0, x, (E.exp(x) - 1) * a)


@converter("Selu", attrs=("alpha", "gamma"))
def _selu(node):
    x = node.inputs[0]
    a, g = node.attr("alpha", 1.67326319217681884765625), node.attr("gamma",
                                                                     1.05070102214813232421875)
    return E.where(x > 0, x * g, (E.exp(x) * a - a) * g)


@converter("Celu", attrs=("alpha",))
def _celu(node):
    x, a = node.inputs[0], node.attr("alpha", 1.0)
    return E.maximum(x, _const_like(0, x)) + E.minimum(_const_like(0, x),
                                                       (E.exp(x / a) - 1) * a)


@converter("LeakyRelu", attrs=("alpha",))
def _leaky(node):
    x, a = node.inputs[0], node.attr("alpha", 0.01)
    return E.where(x >= 0, x, x * a)


@converter("ThresholdedRelu", attrs=("alpha",))
def _trelu(node):
    x, a = node.inputs[0], node.attr("alpha", 1.0)
    return E.where(x > a, x, _const_like(0, x))


@converter("PRelu")
def _prelu(node):
    x, slope = node.inputs
    return E.where(x < 0, x * slope, x)


def _hard_sigmoid(x, alpha, beta):
    return E.minimum(E.maximum(x * alpha + beta, _const_like(0, x)), _const_like(1, x))


@converter("HardSigmoid", attrs=("alpha", "beta"))
def _hsig(node):
    return _hard_sigmoid(node.inputs[0], node.attr("alpha", 0.2), node.attr("beta", 0.5))


@converter("HardSwish")
def _hswish(node):
    x = node.inputs[0]
    return x * _hard_sigmoid(x, 1 / 6, 0.5)


@converter("Softsign")
def _softsign(node):
    x = node.inputs[0]
    return x / (E.abs(x) + 1)


@converter("Mish")
def _mish(node):
    x = node.inputs[0]
    return x * E.tanh(E.softplus(x))


@converter("Swish", attrs=("alpha",))
def _swish(node):
    x = node.inputs[0]
    return x * E.sigmoid(x * node.attr("alpha", 1.0))


@converter("Gelu", attrs=("approximate",))
def _gelu(node):
    x = node.inputs[0]
    if node.attr("approximate", "none") == "tanh":
        inner = (x + x * x * x * 0.044715) * math.sqrt(2 / math.pi)
        return x * 0.5 * (E.tanh(inner) + 1)
    return x * 0.5 * (E.erf(x * (1 / math.sqrt(2))) + 1)


@converter("Shrink", attrs=("bias", "lambd"))
def _shrink(node):
    x = node.inputs[0]
    b, l = node.attr("bias", 0.0), node.attr("lambd", 0.5)
    zero = _const_like(0, x)
    return E.where(x < -l, x + _const_like(b, x), E.where(x > l, x - _const_like(b, x), zero))


_BINARY = {"Add": E.add, "Sub": E.sub, "Mul": E.mul, "Equal": E.equal, "Less": E.less,
           "LessOrEqual": E.less_equal, "Greater": E.greater,
           "GreaterOrEqual": E.greater_equal, "And": E.logical_and, "Or": E.logical_or,
           "Xor": E.logical_xor, "BitwiseAnd": E.bitwise_and, "BitwiseOr": E.bitwise_or,
           "BitwiseXor": E.bitwise_xor}


def _binary(fn):
    def convert(node):
        a, b = node.inputs[:2]
        return fn(a, b)
    return convert


for _op, _fn in _BINARY.items():
    converter(_op, attrs=("axis", "broadcast"))(_binary(_fn))


@converter("BitShift", attrs=("direction",))
def _bit_shift(node):
    a, b = node.inputs[:2]
    shift = {"LEFT": E.left_shift, "RIGHT": E.right_shift}.get(node.attr("direction", None))
    if shift is None:
        raise node.unsupported(f"BitShift direction {node.attr('direction', None)!r} "
                               f"(LEFT or RIGHT)")
    return shift(a, b)


@converter("Div", attrs=("axis", "broadcast"))
def _div(node):
    a, b = node.inputs[:2]
    if a.dtype.is_float:
        return E.div(a, b)
    q = E.floordiv(a, b)  # integers truncate toward zero
    inexact = E.not_equal(E.mod(a, b), _const_like(0, a))
    signs = E.not_equal(a < 0, b < 0)
    return E.where(E.logical_and(inexact, signs), q + 1, q)


@converter("Mod", attrs=("fmod",))
def _mod(node):
    a, b = node.inputs
    if not node.attr("fmod", 0):
        return E.mod(a, b)
    if a.dtype.is_float:
        q = a / b
        t = E.where(q < 0, E.neg(E.floor(E.neg(q))), E.floor(q))
        return a - b * t
    m = E.mod(a, b)  # C's fmod: the sign of the dividend
    fix = E.logical_and(E.not_equal(m, _const_like(0, m)), E.not_equal(a < 0, b < 0))
    return E.where(fix, m - b, m)


@converter("Pow")
def _pow(node):
    a, b = node.inputs
    if a.dtype is b.dtype:
        return E.pow(a, b)
    if a.dtype.is_float:
        return E.pow(a, E.cast(b, a.dtype))
    return E.cast(E.pow(E.cast(a, dtypes.float64), E.cast(b, dtypes.float64)), a.dtype)


def _variadic(fn):
    def convert(node):
        xs = [x for x in node.inputs if x is not None]
        out = xs[0]
        for x in xs[1:]:
            out = fn(out, x)
        return out
    return convert


converter("Sum")(_variadic(E.add))
converter("Max")(_variadic(E.maximum))
converter("Min")(_variadic(E.minimum))


@converter("Mean")
def _mean(node):
    xs = [x for x in node.inputs if x is not None]
    return _variadic(E.add)(node) / float(len(xs))


@converter("Where")
def _where(node):
    c, a, b = node.inputs
    return E.where(c, a, b)


@converter("Cast", attrs=("to", "saturate", "round_mode"))
def _cast(node):
    return E.cast(node.inputs[0], gc_dtype(node.attr("to"), "Cast's 'to'"))


@converter("CastLike", attrs=("saturate", "round_mode"))
def _castlike(node):
    return E.cast(node.inputs[0], node.inputs[1].dtype)


@converter("Clip", attrs=("min", "max"))
def _clip(node):
    x = node.inputs[0]
    if node.opset < 11:
        lo, hi = node.attr("min"), node.attr("max")
        lo = None if lo is None else _const_like(lo, x)
        hi = None if hi is None else _const_like(hi, x)
    else:
        lo, hi = node.input(1), node.input(2)
    if lo is not None:
        x = E.maximum(x, lo)
    if hi is not None:
        x = E.minimum(x, hi)
    return x


# ---- constants and shapes ------------------------------------------------------------------
@converter("Constant", attrs=("value", "value_float", "value_floats", "value_int",
                              "value_ints", "sparse_value", "value_string", "value_strings"))
def _constant(node):
    a = node.attrs
    if "value" in a:
        arr = a["value"]
    elif "value_float" in a:
        arr = np.float32(a["value_float"])
    elif "value_floats" in a:
        arr = np.asarray(a["value_floats"], np.float32)
    elif "value_int" in a:
        arr = np.int64(a["value_int"])
    elif "value_ints" in a:
        arr = np.asarray(a["value_ints"], np.int64)
    else:
        raise node.unsupported(f"Constant with {sorted(a)} is not supported")
    return constant(arr, dtype=dtypes.as_dtype(arr.dtype))


def _static_shape(node, x):
    if not all(_known(d) for d in x.shape):
        raise node.unsupported(f"the shape of a tensor of run-time shape {x.shape} is not "
                               "supported")
    return np.asarray(x.shape, np.int64)


@converter("Shape", attrs=("start", "end"))
def _shape(node):
    start, end = node.attr("start", 0), node.attr("end", None)
    return shapes.Dims(node.inputs[0].shape[start:end]).value()


@converter("Size")
def _size(node):
    return constant(np.int64(np.prod(_static_shape(node, node.inputs[0]))), dtype=dtypes.int64)


@converter("ConstantOfShape", attrs=("value",))
def _const_of_shape(node):
    shape = shapes.dims_of(node, 0) or [int(d) for d in node.need_static(0, "the shape")]
    value = node.attr("value")
    value = np.zeros(1, np.float32) if value is None else value
    if not all(_known(d) for d in shape):  # filled when it runs
        return S.broadcast_to(constant(value.reshape(-1)[0], dtype=dtypes.as_dtype(
            value.dtype)), tuple(shape))
    arr = np.full(tuple(shape), value.reshape(-1)[0], value.dtype)
    return constant(arr, dtype=dtypes.as_dtype(arr.dtype))


@converter("Range")
def _range(node):
    start, limit, delta = (node.need_static(i, "start, limit and delta") for i in range(3))
    arr = np.arange(start, limit, delta).astype(start.dtype)
    return constant(arr, dtype=dtypes.as_dtype(arr.dtype))


@converter("EyeLike", attrs=("dtype", "k"))
def _eyelike(node):
    x = node.inputs[0]
    dt = gc_dtype(node.attr("dtype")) if "dtype" in node.attrs else x.dtype
    arr = np.eye(x.shape[0], x.shape[1], k=node.attr("k", 0), dtype=dt.np)
    return constant(arr, dtype=dt)


@converter("Reshape", attrs=("allowzero", "shape"))
def _reshape(node):
    x = node.inputs[0]
    if node.opset < 5:
        shape = [int(d) for d in node.attr("shape")]
    else:
        shape = shapes.dims_of(node, 1) or [int(d) for d in node.need_static(1, "the shape")]
    return S.reshape(x, shapes.reshaped(x, shape, node.attr("allowzero", 0)))


@converter("Flatten", attrs=("axis",))
def _flatten(node):
    x = node.inputs[0]
    axis = _axis(node.attr("axis", 1), x.rank)
    head, tail = x.shape[:axis], x.shape[axis:]
    if all(_known(d) for d in tail):
        return S.reshape(x, (-1 if head else 1, int(np.prod(tail))))
    if all(_known(d) for d in head):
        return S.reshape(x, (int(np.prod(head)), -1))
    raise node.unsupported("Flatten with run-time dims on both sides of the axis")


@converter("Transpose", attrs=("perm",))
def _transpose(node):
    x = node.inputs[0]
    perm = node.attr("perm", list(range(x.rank))[::-1])
    return S.transpose(x, tuple(perm)) if x.rank else x


def _axes_of(node, attr_until, index=1):
    """Axes given as an attribute before opset `attr_until`, as input `index` from it."""
    if node.opset < attr_until:
        return node.attr("axes")
    if node.input(index) is None:
        return None
    return [int(a) for a in node.need_static(index, "the axes").reshape(-1)]


@converter("Squeeze", attrs=("axes",))
def _squeeze(node):
    x = node.inputs[0]
    axes = _axes_of(node, 13)
    if axes is None:
        axes = [i for i, d in enumerate(x.shape) if d == 1]
    axes = tuple(_axis(a, x.rank) for a in axes)
    if all(_known(x.shape[a]) for a in axes):
        return S.squeeze(x, axes)
    # a run-time dim that the model says is 1 (one step sliced off a run-time axis), which
    # squeeze cannot know: a reshape to the other dims
    return S.reshape(x, tuple(d for i, d in enumerate(x.shape) if i not in axes))


@converter("Unsqueeze", attrs=("axes",))
def _unsqueeze(node):
    x = node.inputs[0]
    axes = _axes_of(node, 13)
    rank = x.rank + len(axes)
    shape = list(x.shape)
    for a in sorted(_axis(a, rank) for a in axes):
        shape.insert(a, 1)
    return S.reshape(x, tuple(shape)) if all(_known(d) for d in shape) else _expand_all(
        x, sorted(_axis(a, rank) for a in axes))


def _expand_all(x, axes):
    for a in axes:
        x = S.expand_dims(x, a)
    return x


@converter("Concat", attrs=("axis",))
def _concat(node):
    xs = [x for x in node.inputs if x is not None]
    axis = _axis(node.attr("axis", 1 if node.opset < 4 else 0), xs[0].rank)
    xs = [x for x in xs if x.shape[axis] != 0] or xs[:1]
    return xs[0] if len(xs) == 1 else S.concat(xs, axis)


@converter("Split", attrs=("axis", "split", "num_outputs"))
def _split(node):
    x = node.inputs[0]
    axis = _axis(node.attr("axis", 0), x.rank)
    if node.opset < 13:
        sizes = node.attr("split")
    else:
        sizes = None if node.input(1) is None else [
            int(s) for s in node.need_static(1, "the split sizes")]
    n = node.n_outputs
    if sizes is None:
        dim = x.shape[axis]
        if dim % n:  # opset 18: the last part is smaller
            step = -(-dim // n)
            sizes = [step] * (n - 1) + [dim - step * (n - 1)]
        else:
            sizes = [dim // n] * n
    starts = np.cumsum([0] + list(sizes))
    outs = []
    for s, e in zip(starts[:-1], starts[1:]):
        index = [None] * x.rank
        index[axis] = (int(s), int(e), 1)
        outs.append(S.strided_slice(x, index))
    return outs


@converter("Slice", attrs=("starts", "ends", "axes"))
def _slice(node):
    x = node.inputs[0]
    if node.opset < 10:
        starts, ends, axes, steps = (node.attr("starts"), node.attr("ends"),
                                     node.attr("axes"), None)
    else:
        starts, ends = (list(node.need_static(i, "starts and ends")) for i in (1, 2))
        axes = None if node.input(3) is None else list(node.need_static(3, "the axes"))
        steps = None if node.input(4) is None else list(node.need_static(4, "the steps"))
    axes = list(range(len(starts))) if axes is None else [_axis(int(a), x.rank) for a in axes]
    steps = [1] * len(starts) if steps is None else steps
    items = [slice(None)] * x.rank
    big = 1 << 62
    for a, s, e, st in zip(axes, starts, ends, steps):
        s, e, st = int(s), int(e), int(st)
        s = max(min(s, big), -big)
        e = max(min(e, big), -big)
        items[a] = slice(s, e, st)
    return x[tuple(items)]


@converter("Gather", attrs=("axis",))
def _gather(node):
    x, idx = node.inputs
    axis = _axis(node.attr("axis", 0), x.rank)
    value = node.static(1)
    dim = x.shape[axis]
    if value is not None and _known(dim):
        value = np.where(value < 0, value + dim, value).astype(value.dtype)
        idx = constant(value, dtype=idx.dtype)
    elif _known(dim):
        idx = E.where(idx < 0, idx + _const_like(dim, idx), idx)
    return S.gather(x, idx, axis)


@converter("GatherElements", attrs=("axis",))
def _gather_elements(node):
    x, idx = node.inputs
    return I.gather_elements(x, idx, node.attr("axis", 0))


@converter("ScatterElements", "Scatter", attrs=("axis", "reduction"))
def _scatter_elements(node):
    x, idx, upd = node.inputs
    return I.scatter_elements(x, idx, upd, node.attr("axis", 0), node.attr("reduction", "none"))


@converter("ScatterND", attrs=("reduction",))
def _scatter_nd(node):
    x, idx, upd = node.inputs
    return I.scatter_nd(x, idx, upd, node.attr("reduction", "none"))


@converter("Expand")
def _expand(node):
    x = node.inputs[0]
    shape = shapes.dims_of(node, 1) or [int(d) for d in node.need_static(1, "the shape")]
    rank = max(len(shape), x.rank)
    have = [1] * (rank - x.rank) + list(x.shape)
    want = [1] * (rank - len(shape)) + list(shape)
    # a dim of 1 takes the other side's; np.broadcast_shapes checks the known ones
    known = np.broadcast_shapes(tuple(d if _known(d) else 1 for d in have),
                                tuple(d if _known(d) else 1 for d in want))
    target = [k if _known(a) and _known(b) else b if _known(a) and a == 1 else a
              for k, a, b in zip(known, have, want)]
    return S.broadcast_to(x, tuple(target))


@converter("Tile")
def _tile(node):
    x = node.inputs[0]
    reps = [int(r) for r in node.need_static(1, "the repeats")]
    shape = [d for d in x.shape]
    if not all(_known(d) for d in shape):
        raise node.unsupported("Tile of a tensor of run-time shape")
    y = S.reshape(x, tuple(v for d in shape for v in (1, d)))
    y = S.broadcast_to(y, tuple(v for r, d in zip(reps, shape) for v in (r, d)))
    return S.reshape(y, tuple(r * d for r, d in zip(reps, shape)))


@converter("Pad", attrs=("mode", "pads", "value"))
def _pad(node):
    x = node.inputs[0]
    mode = node.attr("mode", "constant")
    if node.opset < 11:
        pads, value, axes = node.attr("pads"), node.attr("value", 0.0), None
    else:
        pads = [int(p) for p in node.need_static(1, "the pads")]
        value = 0 if node.input(2) is None else node.need_static(2, "the value").item()
        axes = None if node.input(3) is None else [
            _axis(int(a), x.rank) for a in node.need_static(3, "the axes")]
    axes = list(range(x.rank)) if axes is None else axes
    n = len(axes)
    pairs = [[0, 0] for _ in range(x.rank)]
    for k, a in enumerate(axes):
        pairs[a] = [int(pads[k]), int(pads[k + n])]
    # negative pads crop
    items = [slice(-b if b < 0 else None, a if a < 0 else None) for b, a in pairs]
    if any(b < 0 or a < 0 for b, a in pairs):
        x = x[tuple(items)]
        pairs = [[max(b, 0), max(a, 0)] for b, a in pairs]
    if mode == "constant":
        return S.pad(x, pairs, value)
    if mode in ("edge", "reflect", "wrap"):
        for a, (b, e) in enumerate(pairs):
            x = _pad_axis(x, a, b, e, mode)
        return x
    raise node.unsupported(f"mode {mode!r}")


def _pad_axis(x, axis, before, after, mode):
    if before == after == 0:
        return x
    n = x.shape[axis]

    def take(i):
        items = [slice(None)] * x.rank
        items[axis] = slice(i, i + 1)
        return x[tuple(items)]
    if mode == "edge":
        left = [take(0)] * before
        right = [take(n - 1)] * after
    elif mode == "reflect":
        left = [take(i) for i in range(before, 0, -1)]
        right = [take(n - 2 - i) for i in range(after)]
    else:
        left = [take((n - before + i) % n) for i in range(before)]
        right = [take(i % n) for i in range(after)]
    return S.concat(left + [x] + right, axis)


@converter("DepthToSpace", attrs=("blocksize", "mode"))
def _d2s(node):
    x = node.inputs[0]
    b, mode = node.attr("blocksize"), node.attr("mode", "DCR")
    n, c, h, w = x.shape
    if mode == "DCR":
        y = S.reshape(x, (n, b, b, c // (b * b), h, w))
        y = S.transpose(y, (0, 3, 4, 1, 5, 2))
    else:
        y = S.reshape(x, (n, c // (b * b), b, b, h, w))
        y = S.transpose(y, (0, 1, 4, 2, 5, 3))
    return S.reshape(y, (n, c // (b * b), h * b, w * b))


@converter("SpaceToDepth", attrs=("blocksize",))
def _s2d(node):
    x = node.inputs[0]
    b = node.attr("blocksize")
    n, c, h, w = x.shape
    y = S.reshape(x, (n, c, h // b, b, w // b, b))
    y = S.transpose(y, (0, 3, 5, 1, 2, 4))
    return S.reshape(y, (n, c * b * b, h // b, w // b))


@converter("Trilu", attrs=("upper",))
def _trilu(node):
    x = node.inputs[0]
    k = 0 if node.input(1) is None else int(node.need_static(1, "k"))
    n, m = x.shape[-2:]
    mask = np.triu(np.ones((n, m), bool), k) if node.attr("upper", 1) else np.tril(
        np.ones((n, m), bool), k)
    return E.where(constant(mask, dtype=dtypes.bool_), x, _const_like(0, x))


@converter("OneHot", attrs=("axis",))
def _one_hot(node):
    idx, depth, values = node.inputs
    depth = int(node.need_static(1, "the depth").reshape(-1)[0])
    vals = node.need_static(2, "the values")
    idx = E.cast(idx, dtypes.int64) if idx.dtype.is_float else idx
    idx = E.where(idx < 0, idx + _const_like(depth, idx), idx)
    axis = node.attr("axis", -1)
    return S.one_hot(idx, depth, vals[1].item(), vals[0].item(), values.dtype, axis)


@converter("CumSum", attrs=("exclusive", "reverse"))
def _cumsum(node):
    x = node.inputs[0]
    axis = int(node.need_static(1, "the axis").reshape(-1)[0])
    return I.cumsum(x, axis, node.attr("exclusive", 0), node.attr("reverse", 0))


@converter("TopK", attrs=("axis", "largest", "sorted", "k"))
def _topk(node):
    x = node.inputs[0]
    k = node.attr("k") if node.opset < 10 else int(node.need_static(1, "k").reshape(-1)[0])
    return I.top_k(x, k, node.attr("axis", -1), bool(node.attr("largest", 1)))


@converter("Einsum", attrs=("equation",))
def _einsum(node):
    return I.einsum(node.attr("equation"), *node.inputs)


# ---- reductions ------------------------------------------------------------------------------
def _reduce(kind, inputs_from):
    def convert(node):
        x = node.inputs[0]
        axes = _axes_of(node, inputs_from)
        keep = bool(node.attr("keepdims", 1))
        if not axes:
            if node.attr("noop_with_empty_axes", 0):
                return x
            axes = list(range(x.rank))
        axes = tuple(sorted(_axis(a, x.rank) for a in axes))
        if kind == "sum":
            return R.sum(x, axes, keep) if x.rank else x
        if kind == "mean":
            return R.mean(x, axes, keep)
        if kind == "max":
            return R.max(x, axes, keep)
        if kind == "min":
            return R.min(x, axes, keep)
        if kind == "prod":
            return R.prod(x, axes, keep)
        if kind == "l1":
            return R.sum(E.abs(x), axes, keep)
        if kind == "l2":
            return E.sqrt(R.sum(x * x, axes, keep)) if x.dtype.is_float else E.cast(
                E.sqrt(E.cast(R.sum(x * x, axes, keep), dtypes.float64)), x.dtype)
        if kind == "sumsquare":
            return R.sum(x * x, axes, keep)
        if kind == "logsum":
            return E.log(R.sum(x, axes, keep))
        if kind == "logsumexp":
            return R.logsumexp(x, axes, keep)
        raise AssertionError(kind)
    return convert


for _op, _kind, _from in (("ReduceSum", "sum", 13), ("ReduceMean", "mean", 18),
                          ("ReduceMax", "max", 18), ("ReduceMin", "min", 18),
                          ("ReduceProd", "prod", 18), ("ReduceL1", "l1", 18),
                          ("ReduceL2", "l2", 18), ("ReduceSumSquare", "sumsquare", 18),
                          ("ReduceLogSum", "logsum", 18),
                          ("ReduceLogSumExp", "logsumexp", 18)):
    converter(_op, attrs=("axes", "keepdims", "noop_with_empty_axes"))(_reduce(_kind, _from))


def _arg(fn):
    def convert(node):
        x = node.inputs[0]
        axis = _axis(node.attr("axis", 0), x.rank)
        keep = node.attr("keepdims", 1)
        if node.attr("select_last_index", 0):
            n = x.shape[axis]
            items = [slice(None)] * x.rank
            items[axis] = slice(None, None, -1)
            out = _const_like(n - 1, constant(np.int64(0))) - fn(x[tuple(items)], axis)
        else:
            out = fn(x, axis)
        return S.expand_dims(out, axis) if keep else out
    return convert


converter("ArgMax", attrs=("axis", "keepdims", "select_last_index"))(_arg(R.argmax))
converter("ArgMin", attrs=("axis", "keepdims", "select_last_index"))(_arg(R.argmin))


# ---- softmax family ----------------------------------------------------------------------------
def _softmax(fn):
    def convert(node):
        x = node.inputs[0]
        if node.opset < 13:
            axis = _axis(node.attr("axis", 1), x.rank)
            head, tail = x.shape[:axis], x.shape[axis:]
            flat = S.reshape(x, (int(np.prod(head)), int(np.prod(tail))))
            return S.reshape(fn(flat, -1), x.shape)
        return fn(x, _axis(node.attr("axis", -1), x.rank))
    return convert


def _hardmax(x, axis):
    idx = R.argmax(x, axis)
    return S.one_hot(idx, x.shape[axis], 1, 0, x.dtype, axis)


converter("Softmax", attrs=("axis",))(_softmax(gnn.softmax))
converter("LogSoftmax", attrs=("axis",))(_softmax(gnn.log_softmax))
converter("Hardmax", attrs=("axis",))(_softmax(_hardmax))


# ---- linear algebra ----------------------------------------------------------------------------
@converter("MatMul")
def _matmul(node):
    a, b = node.inputs
    return matmul(a, b)


@converter("Gemm", attrs=("alpha", "beta", "transA", "transB", "broadcast"))
def _gemm(node):
    a, b, c = node.input(0), node.input(1), node.input(2)
    if node.attr("transA", 0):
        a = S.transpose(a, (1, 0))
    if node.attr("transB", 0):
        b = S.transpose(b, (1, 0))
    y = matmul(a, b)
    alpha, beta = node.attr("alpha", 1.0), node.attr("beta", 1.0)
    if alpha != 1.0:
        y = y * alpha
    if c is not None:
        y = y + (c * beta if beta != 1.0 else c)
    return y


# ---- convolution and pooling (NCHW, through graphc's NHWC ops) -------------------------------
def _nhwc(x):
    """Channels first to channels last, at any rank (NCHW -> NHWC, NCDHW -> NDHWC)."""
    return S.transpose(x, (0,) + tuple(range(2, x.rank)) + (1,))


def _nchw(x):
    return S.transpose(x, (0, x.rank - 1) + tuple(range(1, x.rank - 1)))


# graphc's channels-last ops by the number of spatial axes
CONVS = {2: gnn.conv2d, 3: gnn.conv3d}
TRANSPOSED = {2: gnn.conv2d_transpose, 3: gnn.conv3d_transpose}
POOLS = {("max", 2): gnn.max_pool2d, ("avg", 2): gnn.avg_pool2d,
         ("max", 3): gnn.max_pool3d, ("avg", 3): gnn.avg_pool3d}


def _spatial(node, x, default=1, key=None):
    n = x.rank - 2
    v = node.attr(key)
    return [default] * n if v is None else list(v)


def _explicit_pads(node, in_hw, kernel, strides, dilations):
    """[(before, after)] per spatial axis from pads or auto_pad."""
    auto = node.attr("auto_pad", "NOTSET")
    n = len(kernel)
    if auto in ("NOTSET", "") or auto is None:
        pads = node.attr("pads") or [0] * (2 * n)
        return [(pads[i], pads[i + n]) for i in range(n)]
    if auto == "VALID":
        return [(0, 0)] * n
    out = []
    for size, k, s, d in zip(in_hw, kernel, strides, dilations):
        target = -(-size // s)
        total = max((target - 1) * s + (k - 1) * d + 1 - size, 0)
        small, big = total // 2, total - total // 2
        out.append((small, big) if auto == "SAME_UPPER" else (big, small))
    return out


def _lift_1d(node, *tensors):
    """A 1-D convolution or pool as a 2-D one over a new axis of extent 1: its tensors with
    that axis, and the node's spatial attributes given a first entry for it."""
    attrs = dict(node.attrs)
    for key in ("kernel_shape", "strides", "dilations"):
        if attrs.get(key) is not None:
            attrs[key] = [1] + list(attrs[key])
    if attrs.get("pads"):
        attrs["pads"] = [0, attrs["pads"][0], 0, attrs["pads"][1]]
    node.attrs = attrs
    return [S.expand_dims(t, 2) for t in tensors]


@converter("Conv", attrs=("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"))
def _conv(node):
    x, w, b = node.input(0), node.input(1), node.input(2)
    one_d = x.rank == 3
    if x.rank not in (3, 4, 5):
        raise node.unsupported(f"{x.rank - 2}-D convolution (only 1-D to 3-D)")
    if one_d:
        x, w = _lift_1d(node, x, w)
    kernel = list(w.shape[2:])
    strides = _spatial(node, x, key="strides")
    dilations = _spatial(node, x, key="dilations")
    pads = _explicit_pads(node, x.shape[2:], kernel, strides, dilations)
    group = node.attr("group", 1)
    xh = _nhwc(x)
    if any(p for pair in pads for p in pair):
        xh = S.pad(xh, [(0, 0)] + [tuple(p) for p in pads] + [(0, 0)])
    # (M, C/g, kh, kw) -> HWIO, (M, C/g, kd, kh, kw) -> DHWIO
    wh = S.transpose(w, tuple(range(2, w.rank)) + (1, 0))
    conv = CONVS[x.rank - 2]
    if group == 1:
        y = conv(xh, wh, strides=tuple(strides), padding="VALID", dilations=tuple(dilations))
    elif (x.rank == 4 and group == x.shape[1] == w.shape[0]
          and all(isinstance(d, int) for d in xh.shape[1:3])):
        y = _depthwise(xh, wh, strides, dilations)
    elif (x.rank == 4 and kernel == [1, 1]
          and all(isinstance(d, int) for d in xh.shape[1:3])):
        y = _grouped_pointwise(xh, wh, group, strides)
    else:
        cin, m = x.shape[1] // group, w.shape[0] // group
        lead = (slice(None),) * (x.rank - 1)
        parts = [conv(xh[lead + (slice(g * cin, (g + 1) * cin),)],
                      wh[lead + (slice(g * m, (g + 1) * m),)],
                      strides=tuple(strides), padding="VALID", dilations=tuple(dilations))
                 for g in range(group)]
        y = S.concat(parts, x.rank - 1)
    if b is not None:
        y = y + b
    y = _nchw(y)
    return S.squeeze(y, (2,)) if one_d else y


def _grouped_pointwise(xh, wh, group, strides):
    """A grouped 1x1 convolution of padded NHWC xh by HWIO wh: one matrix product batched over
    the images and the groups, (N, G, HW, C/G) @ (G, C/G, M/G), instead of one convolution, with
    its own copies, per group."""
    if any(s != 1 for s in strides):
        xh = S.strided_slice(xh, [None, (0, None, strides[0]), (0, None, strides[1]), None])
    n, h, w, c = xh.shape
    cin, m = c // group, wh.shape[3] // group
    a = S.transpose(S.reshape(xh, (n, h * w, group, cin)), (0, 2, 1, 3))
    b = S.transpose(S.reshape(wh, (cin, group, m)), (1, 0, 2))
    y = S.transpose(matmul(a, b), (0, 2, 1, 3))
    return S.reshape(y, (n, h, w, group * m))


def _depthwise(xh, wh, strides, dilations):
    """A depthwise convolution (one filter per channel) of padded NHWC xh by HWIO wh (I = 1):
    the sum over the window's taps of strided slices times per-channel weights, one fused
    elementwise kernel instead of one convolution per channel."""
    y = None
    for tap, window in _taps(xh, wh.shape[:2], strides, dilations):
        term = window * wh[tap + (0, slice(None))]
        y = term if y is None else y + term
    return y


def _taps(xh, kernel, strides, dilations):
    """(tap, the strided slice of channels-last xh that it reads for every output position),
    for each tap of a window (its spatial sizes static), in row-major order."""
    out = [(size - (k - 1) * d - 1) // s + 1
           for size, k, s, d in zip(xh.shape[1:-1], kernel, strides, dilations)]
    for tap in itertools.product(*map(range, kernel)):
        index = [(t * d, t * d + (n - 1) * s + 1, s)
                 for t, d, n, s in zip(tap, dilations, out, strides)]
        yield tap, S.strided_slice(xh, [None] + index + [None])


def _dilated_pool(combine, dilations):
    """A pool of dilated windows as one fused elementwise kernel: `combine` (maximum, or add:
    the average's sum) over the window's taps (graphc's pools take no dilation)."""
    def pool(xh, kernel, strides, padding):
        y = None
        for _, window in _taps(xh, kernel, strides, dilations):
            y = window if y is None else combine(y, window)
        return y
    return pool


def _pool(node, kind):
    x = node.inputs[0]
    one_d = x.rank == 3
    if x.rank not in (3, 4, 5):
        raise node.unsupported(f"{x.rank - 2}-D pooling (only 1-D to 3-D)")
    if one_d:
        (x,) = _lift_1d(node, x)
    n = x.rank - 2
    pool = POOLS[kind, n]
    kernel = list(node.attr("kernel_shape"))
    strides = _spatial(node, x, key="strides")
    dilations = _spatial(node, x, key="dilations")
    dilated = any(d != 1 for d in dilations)
    if dilated and not all(isinstance(d, int) for d in x.shape[2:]):
        raise node.unsupported("dilated pooling over run-time spatial sizes")
    if dilated:
        pool = _dilated_pool(E.maximum if kind == "max" else E.add, dilations)
    if node.n_outputs > 1:
        raise node.unsupported("the Indices output of MaxPool")
    pads = _explicit_pads(node, x.shape[2:], kernel, strides, dilations)
    if node.attr("ceil_mode", 0):
        pads = [(b, e + _ceil_extra(size + b + e, (k - 1) * d + 1, s))
                for (b, e), size, k, s, d in zip(pads, x.shape[2:], kernel, strides, dilations)]
    xh = _nhwc(x)
    pairs = [(0, 0)] + [tuple(p) for p in pads] + [(0, 0)]
    padded = any(p for pair in pads for p in pair)
    if kind == "max":
        if padded:
            xh = S.pad(xh, pairs, -np.inf if x.dtype.is_float else
                       int(np.iinfo(x.dtype.np).min))
        y = pool(xh, tuple(kernel), tuple(strides), "VALID")
    else:
        if not padded and not dilated:
            y = pool(xh, tuple(kernel), tuple(strides), "VALID")
        else:  # a dilated pool sums: divided by its count of cells too
            total = pool(S.pad(xh, pairs, 0), tuple(kernel), tuple(strides), "VALID")
            # cells counted: every cell of explicit pads with count_include_pad, never the
            # cells ceil_mode adds beyond them
            real = [(0, 0)] + [tuple(p) for p in (node.attr("pads") and _explicit_pads(
                node, x.shape[2:], kernel, strides, dilations) or [(0, 0)] * n)] + [(0, 0)]
            ones = np.ones([1] + list(x.shape[2:]) + [1], x.dtype.np)
            if node.attr("count_include_pad", 0):
                ones = np.pad(ones, real, constant_values=1)
                rest = [(0, 0)] + [(b - r[0], e - r[1]) for (b, e), r in
                                   zip(pads, real[1:1 + n])] + [(0, 0)]
                ones = np.pad(ones, rest)
            else:
                ones = np.pad(ones, pairs)
            count = pool(constant(ones, dtype=x.dtype), tuple(kernel), tuple(strides),
                         "VALID")
            y = total / count
    y = _nchw(y)
    return S.squeeze(y, (2,)) if one_d else y


def _ceil_extra(padded, k, s):
    out_floor = (padded - k) // s + 1
    out_ceil = -(-(padded - k) // s) + 1
    if (out_ceil - 1) * s >= padded - 0:  # the last window must start inside
        out_ceil -= 1
    return max((out_ceil - 1) * s + k - padded, 0) if out_ceil > out_floor else 0


converter("MaxPool", attrs=("auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads",
                            "storage_order", "strides"))(lambda node: _pool(node, "max"))
converter("AveragePool", attrs=("auto_pad", "ceil_mode", "count_include_pad", "dilations",
                                "kernel_shape", "pads", "strides"))(
    lambda node: _pool(node, "avg"))


@converter("GlobalAveragePool")
def _gap(node):
    x = node.inputs[0]
    return R.mean(x, tuple(range(2, x.rank)), True)


@converter("GlobalMaxPool")
def _gmp(node):
    x = node.inputs[0]
    return R.max(x, tuple(range(2, x.rank)), True)


# ---- normalization ---------------------------------------------------------------------------
def _per_channel(v, rank):
    return S.reshape(v, (v.shape[0],) + (1,) * (rank - 2))


@converter("BatchNormalization", attrs=("epsilon", "momentum", "spatial", "is_test",
                                        "training_mode", "consumed_inputs"))
def _batchnorm(node):
    x, scale, bias, mean, var = node.inputs[:5]
    if node.attr("training_mode", 0) or node.n_outputs > 1:
        raise node.unsupported("training mode")
    eps = node.attr("epsilon", 1e-5)
    r = x.rank
    inv = E.rsqrt(var + eps) * scale
    shift = bias - mean * inv
    return x * _per_channel(inv, r) + _per_channel(shift, r)


@converter("InstanceNormalization", attrs=("epsilon",))
def _instnorm(node):
    x, scale, bias = node.inputs
    axes = tuple(range(2, x.rank))
    mean = R.mean(x, axes, True)
    d = x - mean
    var = R.mean(d * d, axes, True)
    y = d * E.rsqrt(var + node.attr("epsilon", 1e-5))
    return y * _per_channel(scale, x.rank) + _per_channel(bias, x.rank)


@converter("LayerNormalization", attrs=("axis", "epsilon", "stash_type"))
def _layernorm(node):
    x, scale, bias = node.input(0), node.input(1), node.input(2)
    axis = _axis(node.attr("axis", -1), x.rank)
    axes = tuple(range(axis, x.rank))
    xf = E.cast(x, dtypes.float32) if x.dtype is not dtypes.float64 else x
    mean = R.mean(xf, axes, True)
    d = xf - mean
    var = R.mean(d * d, axes, True)
    inv = E.rsqrt(var + node.attr("epsilon", 1e-5))
    y = E.cast(d * inv, x.dtype) * scale
    if bias is not None:
        y = y + bias
    outs = [y]
    if node.n_outputs > 1:
        outs.append(mean)
    if node.n_outputs > 2:
        outs.append(inv)
    return outs


@converter("GroupNormalization", attrs=("epsilon", "num_groups", "stash_type"))
def _groupnorm(node):
    x, scale, bias = node.inputs
    g = node.attr("num_groups")
    n, c = x.shape[:2]
    xg = S.reshape(x, (n, g, -1))
    mean = R.mean(xg, (2,), True)
    d = xg - mean
    var = R.mean(d * d, (2,), True)
    y = S.reshape(d * E.rsqrt(var + node.attr("epsilon", 1e-5)), x.shape)
    return y * _per_channel(scale, x.rank) + _per_channel(bias, x.rank)


@converter("LpNormalization", attrs=("axis", "p"))
def _lpnorm(node):
    x = node.inputs[0]
    axis = _axis(node.attr("axis", -1), x.rank)
    if node.attr("p", 2) == 1:
        norm = R.sum(E.abs(x), (axis,), True)
    else:
        norm = E.sqrt(R.sum(x * x, (axis,), True))
    return E.where(E.equal(norm, _const_like(0, norm)), _const_like(0, x), x / norm)


@converter("MeanVarianceNormalization", attrs=("axes",))
def _mvn(node):
    x = node.inputs[0]
    axes = tuple(node.attr("axes", [0, 2, 3]))
    mean = R.mean(x, axes, True)
    d = x - mean
    var = R.mean(d * d, axes, True)
    return d / (E.sqrt(var) + 1e-9)


@converter("LRN", attrs=("alpha", "beta", "bias", "size"))
def _lrn(node):
    x = node.inputs[0]
    size = node.attr("size")
    alpha, beta, bias = node.attr("alpha", 1e-4), node.attr("beta", 0.75), node.attr("bias",
                                                                                      1.0)
    c = x.shape[1]
    sq = x * x
    before, after = (size - 1) // 2, size // 2
    padded = S.pad(sq, [(0, 0), (before, after)] + [(0, 0)] * (x.rank - 2))
    total = None
    for i in range(size):
        items = [slice(None), slice(i, i + c)]
        part = padded[tuple(items)]
        total = part if total is None else total + part
    return x / E.pow(total * (alpha / size) + bias, _const_like(beta, x))


@converter("RMSNormalization", attrs=("axis", "epsilon", "stash_type"))
def _rmsnorm(node):
    x, scale = node.inputs[:2]
    axis = _axis(node.attr("axis", -1), x.rank)
    xf = E.cast(x, dtypes.float32) if x.dtype is not dtypes.float64 else x
    ms = R.mean(xf * xf, tuple(range(axis, x.rank)), True)
    return E.cast(xf * E.rsqrt(ms + node.attr("epsilon", 1e-5)), x.dtype) * scale


def _nll(node, logp, target, weight):
    """NegativeLogLikelihoodLoss of log-probabilities (N, C, ...) at int targets (N, ...)."""
    reduction = node.attr("reduction", "mean")
    ignore = node.attr("ignore_index")
    t = target
    mask = None
    if ignore is not None:
        mask = E.not_equal(t, _const_like(ignore, t))
        t = E.where(mask, t, _const_like(0, t))
    picked = S.squeeze(I.gather_elements(logp, S.expand_dims(t, 1), 1), (1,))
    w = S.gather(weight, t, 0) if weight is not None else None
    if mask is not None:
        m = E.cast(mask, logp.dtype)
        w = m if w is None else w * m
    loss = E.neg(picked) if w is None else E.neg(picked) * w
    if reduction == "none":
        return loss
    total = R.sum(loss, tuple(range(loss.rank)), False)
    if reduction == "sum":
        return total
    if reduction != "mean":
        raise node.unsupported(f"reduction {reduction!r}")
    if w is None:
        return total / float(np.prod(loss.shape))
    return total / R.sum(w, tuple(range(w.rank)), False)


@converter("NegativeLogLikelihoodLoss", attrs=("reduction", "ignore_index"))
def _nll_loss(node):
    return _nll(node, node.input(0), node.input(1), node.input(2))


@converter("SoftmaxCrossEntropyLoss", attrs=("reduction", "ignore_index"))
def _sce_loss(node):
    scores = node.input(0)
    logp = gnn.log_softmax(scores, 1)
    outs = [_nll(node, logp, node.input(1), node.input(2))]
    if node.n_outputs > 1:
        outs.append(logp)
    return outs


@converter("ConvTranspose", attrs=("auto_pad", "dilations", "group", "kernel_shape",
                                   "output_padding", "output_shape", "pads", "strides"))
def _conv_transpose(node):
    x, w, b = node.input(0), node.input(1), node.input(2)
    one_d = x.rank == 3
    if x.rank not in (3, 4, 5):
        raise node.unsupported(f"{x.rank - 2}-D ConvTranspose (only 1-D to 3-D)")
    n = x.rank - 2

    def spatial(key, default):
        v = node.attr(key)
        return [default] * n if v is None else list(v)
    strides, dil = spatial("strides", 1), spatial("dilations", 1)
    outpad = spatial("output_padding", 0)
    if one_d:
        x, w = S.expand_dims(x, 2), S.expand_dims(w, 2)
        strides, dil, outpad = [1] + strides, [1] + dil, [0] + outpad
    in_hw, k = list(x.shape[2:]), list(w.shape[2:])
    full = [(i - 1) * s + (kk - 1) * d + 1 + op
            for i, s, kk, d, op in zip(in_hw, strides, k, dil, outpad)]
    auto = node.attr("auto_pad", "NOTSET")
    out_shape = node.attr("output_shape")
    if out_shape is not None or auto in ("SAME_UPPER", "SAME_LOWER"):
        target = list(out_shape) if out_shape is not None else [i * s for i, s in
                                                                zip(in_hw[-n:], strides[-n:])]
        target = ([1] + target) if one_d else target
        # an output_shape past the input's reach takes zeros at the end, as output_padding
        outpad = [op + max(t - f, 0) for op, f, t in zip(outpad, full, target)]
        full = [max(f, t) for f, t in zip(full, target)]
        total = [f - t for f, t in zip(full, target)]
        pads = [(t - t // 2, t // 2) if auto == "SAME_LOWER" else (t // 2, t - t // 2)
                for t in total]
    else:
        p = node.attr("pads") or [0] * (2 * n)
        pads = [(p[i], p[i + n]) for i in range(n)]
        if one_d:
            pads = [(0, 0)] + pads
    y = _grouped_transposed(_nhwc(x), S.transpose(w, tuple(range(2, w.rank)) + (1, 0)),
                            node.attr("group", 1), strides, dil)
    # output_padding: cells past the input's reach, which only the bias reaches
    y = S.pad(y, [(0, 0)] + [(0, op) for op in outpad] + [(0, 0)])
    items = [slice(None)] + [slice(b0, f - e0) for (b0, e0), f in zip(pads, full)] + [
        slice(None)]
    y = y[tuple(items)]
    if b is not None:
        y = y + b
    y = _nchw(y)
    return S.squeeze(y, (2,)) if one_d else y


def _grouped_transposed(xh, wh, group, strides, dilations):
    """The uncropped transposed convolution of channels-last xh by wh (k..., out / group, in),
    one per group of input channels, their outputs concatenated along the channels."""
    transposed = TRANSPOSED[xh.rank - 2]
    cin, lead = xh.shape[-1] // group, (slice(None),) * (xh.rank - 1)
    parts = [transposed(xh[lead + (slice(g * cin, (g + 1) * cin),)],
                        wh[lead + (slice(g * cin, (g + 1) * cin),)], strides=tuple(strides),
                        padding="VALID", dilations=tuple(dilations), output_padding=0)
             for g in range(group)]
    return parts[0] if group == 1 else S.concat(parts, xh.rank - 1)


def _heads(x, n_heads):
    """(B, S, H*D) -> (B, H, S, D); 4-D stays."""
    if x.rank == 4:
        return x
    b, s, hd = x.shape
    return S.transpose(S.reshape(x, (b, s, n_heads, hd // n_heads)), (0, 2, 1, 3))


@converter("Attention", attrs=("is_causal", "kv_num_heads", "q_num_heads", "scale", "softcap",
                               "qk_matmul_output_mode", "softmax_precision"))
def _attention(node):
    q, k, v = node.inputs[:3]
    mask, past_k, past_v = node.input(3), node.input(4), node.input(5)
    if len(node.inputs) > 6 and node.input(6) is not None:
        raise node.unsupported("nonpad_kv_seqlen")
    three_d = q.rank == 3
    q = _heads(q, node.attr("q_num_heads"))
    k = _heads(k, node.attr("kv_num_heads"))
    v = _heads(v, node.attr("kv_num_heads"))
    past = 0
    if past_k is not None:
        past = past_k.shape[2]
        k = S.concat([past_k, k], 2)
        v = S.concat([past_v, v], 2)
    present_k, present_v = k, v
    hq, hk = q.shape[1], k.shape[1]
    if hq != hk:  # grouped-query attention: each kv head serves hq // hk query heads
        rep = hq // hk

        def repeat(t):
            b, h, s, d = t.shape
            t = S.broadcast_to(S.reshape(t, (b, h, 1, s, d)), (b, h, rep, s, d))
            return S.reshape(t, (b, h * rep, s, d))
        k, v = repeat(k), repeat(v)
    d = q.shape[-1]
    scale = node.attr("scale", 1 / math.sqrt(d))
    scores = matmul(q, S.transpose(k, (0, 1, 3, 2))) * scale
    qk = scores
    q_len, kv_len = q.shape[2], k.shape[2]
    if mask is not None:
        if mask.dtype.is_bool:
            scores = E.where(mask, scores, _const_like(-np.inf, scores))
        else:
            scores = scores + mask
    if node.attr("is_causal", 0):
        allowed = np.tril(np.ones((q_len, kv_len), bool), past)
        scores = E.where(constant(allowed, dtype=dtypes.bool_), scores,
                         _const_like(-np.inf, scores))
    qk_mode = node.attr("qk_matmul_output_mode", 0)
    after_mask = scores
    softcap = node.attr("softcap", 0.0)
    if softcap:
        scores = E.tanh(scores / softcap) * softcap
    after_cap = scores
    wide = scores.dtype is dtypes.float16
    probs = gnn.softmax(E.cast(scores, dtypes.float32) if wide else scores, -1)
    probs = E.where(E.isnan(probs), _const_like(0, probs), probs)  # rows masked everywhere
    probs = E.cast(probs, scores.dtype) if wide else probs
    y = matmul(probs, v)
    if three_d:
        b, h, s, dv = y.shape
        y = S.reshape(S.transpose(y, (0, 2, 1, 3)), (b, s, h * dv))
    outs = [y, present_k, present_v]
    if node.n_outputs > 3:
        outs.append([qk, after_mask, after_cap, probs][qk_mode])
    return outs[:node.n_outputs]


@converter("Resize", "Upsample", attrs=("mode", "coordinate_transformation_mode",
                                        "nearest_mode", "cubic_coeff_a", "exclude_outside",
                                        "extrapolation_value", "antialias", "axes",
                                        "keep_aspect_ratio_policy", "scales"))
def _resize(node):
    x = node.inputs[0]
    mode = node.attr("mode", "nearest")
    if mode not in ("nearest", "linear", "bilinear"):
        raise node.unsupported(f"mode {mode!r}")
    if node.attr("antialias", 0):
        raise node.unsupported("antialias")
    if node.attr("keep_aspect_ratio_policy", "stretch") != "stretch":
        raise node.unsupported("keep_aspect_ratio_policy other than stretch")
    if node.op_type == "Upsample" or node.opset < 11:
        coord, rule = "asymmetric", "floor"
        scales = node.attr("scales") if node.op_type == "Upsample" and node.opset < 9 else \
            list(node.need_static(1, "the scales"))
        sizes = None
    else:
        coord = node.attr("coordinate_transformation_mode", "half_pixel")
        rule = node.attr("nearest_mode", "round_prefer_floor")
        scales = None if node.input(2) is None or node.static(2) is not None and \
            node.static(2).size == 0 else list(node.need_static(2, "the scales"))
        sizes = None if node.input(3) is None else list(node.need_static(3, "the sizes"))
    axes = [_axis(a, x.rank) for a in node.attr("axes", list(range(x.rank)))]
    y = x
    for k, a in enumerate(axes):
        size = x.shape[a]
        if sizes is not None:
            out = int(sizes[k])
            scale = out / size
        else:
            scale = float(scales[k])
            out = int(np.floor(size * scale))
        if out == size and scale == 1.0:
            continue
        if source_coords(coord, out, size, scale) is None:
            raise node.unsupported(f"coordinate_transformation_mode {coord!r}")
        if mode == "nearest" and nearest_index(np.zeros(1), rule) is None:
            raise node.unsupported(f"nearest_mode {rule!r}")
        y = resize_axis(y, a, out, mode, coord, rule, scale)
    return y


from . import control  # noqa: E402,F401  (If, Loop, Scan, LSTM, GRU, RNN register here)
