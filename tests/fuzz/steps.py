"""The steps that grow a fuzz case's graph: MAKERS names, for every op of the registry, one
that builds that op (and usually others); the elementwise ops of graphc/ops/elementwise.py get
theirs from its tables. A step picks operands from the pool (or makes fresh placeholders and
constants), builds, and adds what it built to the pool with a line of code that shows it."""
import math
import operator

import numpy as np
from hypothesis import strategies as st

import graphc as gc
from graphc.errors import GraphcError
from graphc.ir import dtypes
from graphc.ir.types import Dim
from graphc.ops import elementwise, shape as shape_ops
from graphc.ops.ctc import ctc_beam_search
from graphc.ops.registry import apply
from graphc.passes.database import PASSES
from graphc.passes.rewrite import AnyNode, Const, Var
from tests.passes.random_graphs import COMPOSITES, factor_shape, format_index

from . import values
from .builder import (ALL, FLOATS, INTS, MAX_RANK, NUMERIC, Skip, broadcast, resolve,
                      shape_text, show)


# ---- the steps: one per op of the registry ----------------------------------------------
def _call(name, *args):
    return f"{name}({', '.join(map(str, args))})"


def unary(name, accepts):
    among = {"float": FLOATS, "num": NUMERIC, "pred": ALL, "bool": (gc.bool_,),
             "bits": INTS + (gc.bool_,)}[accepts]

    def make(b):
        x = b.operand(among=among)
        if x is not None:
            b.add(getattr(gc, name)(x.tensor), _call(f"gc.{name}", x.name))
    return make


def _second_operand(b, a, among):
    """Something to combine with pool value a: another tensor (of a's dtype or another, that
    broadcasts with it), a Python scalar, a numpy scalar or a numpy array; with its text and,
    for numpy values, their dtype (they keep it: only Python scalars are weak)."""
    kind = b.choice(("tensor", "tensor", "fresh", "python", "numpy scalar", "numpy array"))
    if kind == "tensor":
        v = b.operand(lambda v: broadcast(v.shape, a.shape) is not None, among, fresh=0)
        if v is not None:
            return v.tensor, v.name, None
    dtype = b.dtype(among)
    if kind == "python":
        value = values.scalar(b.rng, a.dtype if a.dtype in among else dtype)
        if a.dtype.is_integer and isinstance(value, int):
            info = np.iinfo(a.dtype.np)
            value = int(np.clip(value, info.min, info.max))
        return value, repr(value), None
    if kind == "numpy scalar" and dtype is not gc.bfloat16:
        value = values.as_numpy_scalar(values.scalar(b.rng, dtype), dtype)
        return value, f"np.{dtype.name}({value!r})", dtype
    trailing = a.shape[len(a.shape) - b.integers(0, len(a.shape)):]
    shape = tuple(d if isinstance(d, int) and b.flip() else 1 for d in trailing)
    if kind == "numpy array" and dtype is not gc.bfloat16:
        value = values.array(b.rng, dtype, shape, b.profile())
        return value, show(value), dtype
    shape = tuple(b.choice((1, d)) for d in trailing)
    v = b.source(dtype, shape)
    return (v.tensor, v.name, None) if v is not None else (1, "1", None)


def _expected_dtype(a_dtype, numpy_dtype, result):
    """The documented dtype of a binary op of a tensor with a numpy value."""
    if result in ("pred", "logic"):
        return gc.bool_
    common = dtypes.promote(a_dtype, numpy_dtype)
    return gc.float32 if result == "float" and not common.is_float else common


# binary op -> its Python operator on tensors
OPERATORS = {"add": operator.add, "sub": operator.sub, "mul": operator.mul,
             "div": operator.truediv, "floordiv": operator.floordiv, "mod": operator.mod,
             "pow": operator.pow, "less": operator.lt, "less_equal": operator.le,
             "greater": operator.gt, "greater_equal": operator.ge, "equal": operator.eq,
             "not_equal": operator.ne, "logical_and": operator.and_,
             "logical_or": operator.or_, "logical_xor": operator.xor,
             "bitwise_and": operator.and_, "bitwise_or": operator.or_,
             "bitwise_xor": operator.xor, "left_shift": operator.lshift,
             "right_shift": operator.rshift}

# binary result kind -> the dtypes its operands take
OPERAND_DTYPES = {"logic": (gc.bool_,), "pred": ALL, "bits": INTS + (gc.bool_,), "int": INTS}


def binary(name, result):
    among = OPERAND_DTYPES.get(result, NUMERIC)

    def make(b):
        a = b.operand(among=among)
        other, text, numpy_dtype = _second_operand(b, a, among)
        left, right = (a.tensor, a.name), (other, text)
        if b.flip():
            left, right = right, left
        fn = getattr(gc, name)
        if name in OPERATORS and b.flip(0.4):  # x == 1.0 must be elementwise too
            fn = OPERATORS[name]
            name_text = f"operator.{fn.__name__}"
        else:
            name_text = f"gc.{name}"
        try:
            out = fn(left[0], right[0])
        except GraphcError:
            return  # e.g. a Python int that does not fit the tensor's dtype
        assert isinstance(out, gc.Tensor), f"{name_text}({left[1]}, {right[1]}) gave {out!r}"
        if numpy_dtype is not None:
            expected = _expected_dtype(a.dtype, numpy_dtype, result)
            assert out.dtype is expected, (
                f"gc.{name}({left[1]}, {right[1]}) with {a.name} of dtype {a.dtype.name}: "
                f"{out.dtype.name}, expected {expected.name} (numpy values keep their dtype)")
        b.add(out, _call(name_text, left[1], right[1]))
    return make


def make_where(b):
    cond = b.operand(among=(gc.bool_,))
    x = b.operand(lambda v: broadcast(v.shape, cond.shape) is not None)
    other, text, _ = _second_operand(b, x, (x.dtype,))
    if broadcast(cond.shape, x.shape, np.shape(other) if not isinstance(other, gc.Tensor)
                 else other.shape) is None:
        return
    b.add(gc.where(cond.tensor, x.tensor, other), _call("gc.where", cond.name, x.name, text))


def make_cast(b):
    x = b.operand()
    dtype = b.dtype([d for d in ALL if d is not x.dtype])
    b.add(gc.cast(x.tensor, dtype), _call("gc.cast", x.name, f"gc.{dtype.name}"))


def make_fill_like(b):
    x = b.operand()
    dtype = b.dtype()
    value = values.scalar(b.rng, dtype)
    b.add(gc.fill_like(x.tensor, value, dtype),
          _call("gc.fill_like", x.name, repr(value), f"gc.{dtype.name}"))


def make_stop_gradient(b):
    x = b.operand()
    b.add(gc.stop_gradient(x.tensor), _call("gc.stop_gradient", x.name))


def collective(kind):
    """allreduce (sum, or mean of a float) or broadcast: the identity in a one-process test."""
    def make(b):
        x = b.operand(among=(gc.float32, gc.float64, gc.int32, gc.int64))
        if x is None:
            return
        if kind == "broadcast":
            b.add(gc.distributed.broadcast(x.tensor), _call("gc.distributed.broadcast", x.name))
            return
        op = "mean" if x.tensor.dtype.is_float and b.draw(st.booleans()) else "sum"
        b.add(gc.distributed.allreduce(x.tensor, op=op),
              _call("gc.distributed.allreduce", x.name, f"op={op!r}"))
    return make


def scan_step(fewer_steps=False):
    """A scan over a pool value's rows: a carry mixing each row in (forward or backwards,
    sometimes fewer steps than rows), or a map without carry; now and then its gradient.
    fewer_steps: always fewer steps than rows, and the gradient, whose backward loop resizes
    the rows' gradient (resize_rows)."""
    def make(b):
        x = b.operand(lambda v: v.rank >= 1 and (not fewer_steps or (
            isinstance(v.shape[0], int) and v.shape[0] >= 1
            and v.tensor.node.op in ("placeholder", "variable"))), among=FLOATS)
        rows, backwards = x.shape[0], b.flip(0.3)
        n_steps = None
        if fewer_steps:
            n_steps = b.integers(0, rows - 1)
        elif isinstance(rows, int) and b.flip(0.3):
            n_steps = b.integers(0, rows)
        if b.flip(0.3):
            out, _ = gc.scan(lambda row: gc.tanh(row) * row, sequences=[x.tensor],
                             n_steps=n_steps, go_backwards=backwards)
            text = f"tanh(row) * row for each row of {x.name}"
        else:
            h0 = b.source(x.dtype, x.shape[1:])
            if h0 is None:
                return
            out, _ = gc.scan(lambda row, h: h * 0.5 + gc.tanh(row) * h + row,
                             sequences=[x.tensor], outputs_info=[h0.tensor], n_steps=n_steps,
                             go_backwards=backwards)
            text = f"h * 0.5 + tanh(row) * h + row over the rows of {x.name} from {h0.name}"
        made = b.add(out, f"gc.scan({text}, n_steps={n_steps}, go_backwards={backwards})")
        if made is not None and x.tensor.node.op in ("placeholder", "variable") and (
                fewer_steps or b.flip(0.3)):
            b.add(gc.grad(gc.sum(out), x.tensor),
                  _call("gc.grad", f"gc.sum({made.name})", x.name))
    return make


def make_cond(b):
    """A lazy conditional on a pool value's sign: each branch computes from pool values."""
    x = b.operand(among=FLOATS)
    y = b.operand(lambda v: v.shape == x.shape and v.dtype == x.dtype, among=FLOATS, fresh=0.5,
                  shape=x.shape)
    if x is None or y is None:
        return
    pred = gc.less(gc.sum(x.tensor), 0)
    b.add(gc.cond(pred, lambda: x.tensor * y.tensor, lambda: gc.exp(y.tensor)),
          f"gc.cond(sum({x.name}) < 0, {x.name} * {y.name}, exp({y.name}))")


def make_one_hot(b):
    indices = b.operand(among=INTS)
    if indices.rank >= MAX_RANK:
        return
    depth = b.integers(0, 5)
    dtype = b.dtype()
    on, off = values.scalar(b.rng, dtype), values.scalar(b.rng, dtype)
    axis = b.integers(-indices.rank - 1, indices.rank)
    try:
        out = gc.one_hot(indices.tensor, depth, on_value=on, off_value=off, dtype=dtype,
                         axis=axis)
    except GraphcError:
        return
    b.add(out, _call("gc.one_hot", indices.name, depth, f"on_value={on!r}", f"off_value={off!r}",
                     f"dtype=gc.{dtype.name}", f"axis={axis}"))


def _axes(b, v):
    """None, an int or a tuple of distinct axes of v (some negative)."""
    if not v.shape or b.flip(0.3):
        return None
    axes = b.draw(st.lists(st.integers(0, v.rank - 1), min_size=1, unique=True))
    axes = tuple(a - v.rank if b.flip() else a for a in axes)
    return axes[0] if len(axes) == 1 and b.flip() else axes


def make_reduced_size(b):
    x = b.operand()
    axes = tuple(range(x.rank)) if not x.shape else tuple(sorted(
        b.draw(st.lists(st.integers(0, x.rank - 1), unique=True))))
    b.add(apply("reduced_size", [x.tensor], axes=axes),
          _call("apply", "'reduced_size'", x.name, f"axes={axes}"))


def make_broadcast_like(b):
    a = b.operand()
    like = b.operand(lambda v: broadcast(v.shape, a.shape) is not None)
    if like is not None:
        b.add(apply("broadcast_like", [a.tensor, like.tensor]),
              _call("apply", "'broadcast_like'", a.name, like.name))


def make_sum_to_like(b):
    """g summed down to the shape of `like`, a tensor that broadcasts to g's shape (made from
    g by a sum with keepdims, maybe without its leading axes)."""
    g = b.operand(lambda v: v.rank >= 1, among=NUMERIC)
    axes = tuple(sorted(b.draw(st.lists(st.integers(0, g.rank - 1), unique=True))))
    like = gc.sum(g.tensor, axis=axes, keepdims=True) if axes else g.tensor
    for _ in range(b.integers(0, g.rank)):
        if like.shape and like.shape[0] == 1:
            like = gc.squeeze(like, 0)
    like_v = b.add(like, _call("sum+squeeze", g.name, f"axes={axes}"))
    if like_v is not None:
        b.add(apply("sum_to_like", [g.tensor, like]),
              _call("apply", "'sum_to_like'", g.name, like_v.name))


def make_matmul(b):
    a = b.operand(lambda v: 1 <= v.rank <= 3, among=NUMERIC)
    k = a.shape[-1]
    shape = (k,) if b.flip(0.25) else (
        b.shape(max_rank=1) + (k, b.dim()))
    other = b.operand(lambda v: v.rank >= 1 and v.shape[0 if v.rank == 1 else -2] == k,
                      among=(a.dtype,), shape=shape, fresh=0.5)
    left, right = (a, other) if b.flip(0.8) or other.rank == 1 else (other, a)
    try:
        out = gc.matmul(left.tensor, right.tensor)
    except GraphcError:
        return
    b.add(out, _call("gc.matmul", left.name, right.name))


def reduction(name):
    def make(b):
        x = b.operand(among=NUMERIC)
        axis, keepdims = _axes(b, x), b.flip()
        b.add(getattr(gc, name)(x.tensor, axis=axis, keepdims=keepdims),
              _call(f"gc.{name}", x.name, f"axis={axis}", f"keepdims={keepdims}"))
    return make


def arg_reduction(name):
    def make(b):
        x = b.operand(lambda v: v.rank >= 1, among=NUMERIC, shape=b.shape(min_rank=1))
        axis = b.integers(-x.rank, x.rank - 1)
        b.add(getattr(gc, name)(x.tensor, axis=axis), _call(f"gc.{name}", x.name, f"axis={axis}"))
    return make


def make_logsumexp(b):
    x = b.operand(among=FLOATS)
    axis, keepdims = _axes(b, x), b.flip()
    b.add(gc.logsumexp(x.tensor, axis=axis, keepdims=keepdims),
          _call("gc.logsumexp", x.name, f"axis={axis}", f"keepdims={keepdims}"))


def make_reshape(b):
    """A new shape for x: its static dims' product factored anew, its run-time dim (one at
    most) kept, as itself or as -1."""
    x = b.operand(lambda v: sum(isinstance(d, Dim) for d in v.shape) <= 1)
    static = math.prod(d for d in x.shape if isinstance(d, int))
    symbolic = [d for d in x.shape if isinstance(d, Dim)]
    if static == 0:
        shape = tuple(b.choice((0, 1, 2)) for _ in range(b.integers(1, 3)))
        if 0 not in shape:
            shape = shape + (0,)
        if not symbolic and b.flip():
            shape = shape + (-1,)
    else:
        shape = factor_shape(b, static)
        if symbolic:  # only one dim may be inferred: the factor -1 stood for is spelled out
            rest = static // math.prod(d for d in shape if d != -1)
            shape = tuple(rest if d == -1 else d for d in shape)
            at = b.integers(0, len(shape))
            shape = shape[:at] + (b.choice((-1, symbolic[0])),) + shape[at:]
    if len(shape) > MAX_RANK:
        return
    try:
        out = gc.reshape(x.tensor, shape)
    except GraphcError:
        return
    b.add(out, _call("gc.reshape", x.name, shape_text(shape)))


def make_reshape_like(b):
    x = b.operand(lambda v: v.static and v.rank >= 1)
    if math.prod(x.shape) == 0:
        return
    like = gc.reshape(x.tensor, factor_shape(b, math.prod(x.shape)))
    other = b.operand(lambda v: v.shape == x.shape, among=(x.dtype,), shape=x.shape, fresh=0.3)
    like_v = b.add(like, _call("gc.reshape", x.name, shape_text(like.shape)))
    if like_v is not None and like.shape != x.shape:
        b.add(gc.reshape_like(other.tensor, like), _call("gc.reshape_like", other.name,
                                                           like_v.name))


def make_transpose(b):
    x = b.operand(lambda v: v.rank >= 2, shape=b.shape(min_rank=2))
    perm = tuple(b.draw(st.permutations(range(x.rank))))
    b.add(gc.transpose(x.tensor, perm), _call("gc.transpose", x.name, perm))


def make_expand_dims(b):
    """gc.expand_dims (a reshape where it can be) or the expand_dims op itself."""
    x = b.operand(lambda v: v.rank < MAX_RANK)
    axis = b.integers(-x.rank - 1, x.rank)
    if b.flip():
        b.add(gc.expand_dims(x.tensor, axis), _call("gc.expand_dims", x.name, axis))
    else:
        axis %= x.rank + 1
        b.add(apply("expand_dims", [x.tensor], axis=axis),
              _call("apply", "'expand_dims'", x.name, f"axis={axis}"))


def make_squeeze(b):
    x = b.operand(lambda v: 1 in v.shape, shape=b.shape(min_rank=1) + (1,))
    ones = [i for i, d in enumerate(x.shape) if d == 1]
    axis = b.choice([None] + ones + [i - x.rank for i in ones])
    b.add(gc.squeeze(x.tensor, axis), _call("gc.squeeze", x.name, axis))


def make_broadcast_to(b):
    x = b.operand(lambda v: v.rank < MAX_RANK)
    lead = b.shape(max_rank=MAX_RANK - x.rank)
    shape = lead + tuple(b.dim() if d == 1 else d for d in x.shape)
    try:
        out = gc.broadcast_to(x.tensor, shape)
    except GraphcError:
        return
    b.add(out, _call("gc.broadcast_to", x.name, shape_text(shape)))


def _same_but(x, axis):
    """Whether pool value v has x's shape on every axis but `axis`."""
    return lambda v: v.rank == x.rank and all(
        d == e for i, (d, e) in enumerate(zip(v.shape, x.shape)) if i != axis)


def make_concat(b):
    x = b.operand(lambda v: v.rank >= 1, shape=b.shape(min_rank=1))
    axis = b.integers(-x.rank, x.rank - 1)
    parts = [x]
    for _ in range(b.integers(1, 2)):
        shape = x.shape[:axis % x.rank] + (b.dim(),) + x.shape[axis % x.rank + 1:]
        parts.append(b.operand(_same_but(x, axis % x.rank), among=(x.dtype,), shape=shape))
    parts = [p for p in parts if p is not None]
    b.add(gc.concat([p.tensor for p in parts], axis),
          _call("gc.concat", "[" + ", ".join(p.name for p in parts) + "]", axis))


def make_stack(b):
    x = b.operand(lambda v: v.rank < MAX_RANK)
    other = b.operand(lambda v: v.shape == x.shape, shape=x.shape)
    axis = b.integers(-x.rank - 1, x.rank)
    try:
        out = gc.stack([x.tensor, other.tensor], axis)
    except GraphcError:
        return
    b.add(out, _call("gc.stack", f"[{x.name}, {other.name}]", axis))


def make_split(b):
    """gc.split into sizes (one may be -1) along a static axis, or the split op's other form,
    which takes the sizes from tensors (concat's gradient)."""
    if b.flip(0.7):
        x = b.operand(lambda v: any(isinstance(d, int) for d in v.shape),
                      shape=b.shape(min_rank=1) + (b.integers(0, 7),))
        axis = b.choice([i for i, d in enumerate(x.shape) if isinstance(d, int)])
        n = x.shape[axis]
        cuts = sorted(b.draw(st.lists(st.integers(0, n), max_size=3)))
        sizes = [stop - start for start, stop in zip([0] + cuts, cuts + [n])]
        if b.flip(0.3):
            sizes[b.integers(0, len(sizes) - 1)] = -1
        pieces = gc.split(x.tensor, sizes, axis - x.rank if b.flip() else axis)
        text = _call("gc.split", x.name, sizes, axis)
    else:
        x = b.operand(lambda v: v.rank >= 1, shape=b.shape(min_rank=1))
        axis = b.integers(0, x.rank - 1)
        parts = [b.operand(_same_but(x, axis), shape=x.shape[:axis] + (b.dim(),)
                           + x.shape[axis + 1:]) for _ in range(b.integers(1, 3))]
        parts = [p for p in parts if p is not None]
        whole = gc.concat([p.tensor for p in parts], axis) if len(parts) > 1 else parts[0].tensor
        whole = gc.cast(whole, x.dtype)
        pieces = apply("split", [whole] + [p.tensor for p in parts], axis=axis, sizes=None)
        text = _call("apply", "'split'", "concat(" + ", ".join(p.name for p in parts) + ")",
                     "sizes from them", f"axis={axis}")
    for i, piece in enumerate(pieces):
        b.add(piece, f"{text}[{i}]")


def _index_entry(b, dim):
    """One entry of a numpy index for an axis of size `dim` (maybe a run-time dim): an int
    (negative ones too), a slice with any bounds and steps, or the whole axis."""
    n = dim if isinstance(dim, int) else 3
    kind = b.choice(("all", "int", "int", "slice", "slice", "slice"))
    if kind == "int":
        return b.integers(-n - (1 if b.flip(0.05) else 0), max(n - 1, 0))
    if kind == "slice":
        def bound():
            return None if b.flip(0.3) else b.integers(-n - 2, n + 2)
        step = None if b.flip(0.3) else b.choice((1, 2, 3, -1, -2, -3))
        return slice(bound(), bound(), step)
    return slice(None)


def _index(b, x):
    """A numpy basic index for x: entries for leading axes, maybe `...` and entries for the
    last axes, and maybe a None (a new axis)."""
    rank = x.rank
    lead = b.integers(0, rank)
    index = [_index_entry(b, d) for d in x.shape[:lead]]
    if b.flip():
        tail = b.integers(0, rank - lead)
        index += [Ellipsis] + [_index_entry(b, d) for d in x.shape[rank - tail:]]
    if rank < MAX_RANK and b.flip(0.3):
        index.insert(b.integers(0, len(index)), None)
    return tuple(index)


def make_getitem(b):
    x = b.operand(lambda v: v.rank >= 1, shape=b.shape(min_rank=1))
    index = _index(b, x)
    try:
        out = x.tensor[index]
    except GraphcError:
        return  # an int out of a static axis's range
    b.add(out, f"{x.name}[{format_index(index)}]")


def _raw_entry(b, dim):
    """An entry of strided_slice's own index as a user cannot write it: ints and bounds not
    resolved against static sizes (getitem resolves them)."""
    e = _index_entry(b, dim)
    if isinstance(e, slice):
        entry = (e.start, e.stop, e.step or 1)
        return None if entry == (None, None, 1) else entry
    return e


def make_strided_slice_grad(b):
    """A strided_slice with unresolved entries, then g (something of its shape) put back in
    place by strided_slice_grad."""
    x = b.operand(lambda v: v.rank >= 1, among=NUMERIC, shape=b.shape(min_rank=1))
    index = tuple(_raw_entry(b, d) for d in x.shape)
    try:
        sliced = shape_ops.strided_slice(x.tensor, index)
    except GraphcError:
        return
    s = b.add(sliced, _call("strided_slice", x.name, index))
    if s is None or sliced is x.tensor:
        return
    g = b.operand(lambda v: v.shape == s.shape, among=(x.dtype,), shape=s.shape, fresh=0.3)
    b.add(apply("strided_slice_grad", [g.tensor, x.tensor], index=sliced.node.attrs["index"]),
          _call("apply", "'strided_slice_grad'", g.name, x.name, f"index={index}"))


def make_pad(b):
    x = b.operand(lambda v: v.rank >= 1, shape=b.shape(min_rank=1))
    paddings = [[b.integers(0, 3), b.integers(0, 3)] for _ in x.shape]
    value = values.scalar(b.rng, x.dtype)
    try:
        out = gc.pad(x.tensor, paddings, value)
    except GraphcError:
        return
    b.add(out, _call("gc.pad", x.name, paddings, repr(value)))


def make_gather(b):
    params = b.operand(lambda v: v.rank >= 1, shape=b.shape(min_rank=1))
    axis = b.integers(0, params.rank - 1)
    shape = b.shape(max_rank=MAX_RANK + 1 - params.rank)
    indices = b.index_placeholder(shape, params.shape[axis], f"axis {axis} of {params.name}")
    if indices is None:
        return
    out = gc.gather(params.tensor, indices.tensor, axis=axis - params.rank if b.flip() else axis)
    b.add(out, _call("gc.gather", params.name, indices.name, f"axis={axis}"))


def make_gather_elements(b):
    x = b.operand(lambda v: v.rank >= 1, shape=b.shape(min_rank=1))
    axis = b.integers(0, x.rank - 1)
    shape = tuple(b.dim() if i == axis else d for i, d in enumerate(x.shape))
    indices = b.index_placeholder(shape, x.shape[axis], f"axis {axis} of {x.name}")
    if indices is not None:
        b.add(gc.gather_elements(x.tensor, indices.tensor, axis=axis),
              _call("gc.gather_elements", x.name, indices.name, f"axis={axis}"))


def make_scatter_elements(b):
    x = b.operand(lambda v: v.rank >= 1, among=NUMERIC, shape=b.shape(min_rank=1))
    axis = b.integers(0, x.rank - 1)
    indices = b.index_placeholder(x.shape, x.shape[axis], f"axis {axis} of {x.name}")
    updates = b.source(x.dtype, x.shape)
    if indices is None or updates is None:
        return
    reduction = b.choice(("none", "add", "mul", "max", "min"))
    b.add(gc.scatter_elements(x.tensor, indices.tensor, updates.tensor, axis, reduction),
          _call("gc.scatter_elements", x.name, indices.name, updates.name, f"axis={axis}",
                f"reduction={reduction!r}"))


def make_scatter_nd(b):
    x = b.operand(lambda v: v.rank >= 1, among=NUMERIC, shape=b.shape(min_rank=1))
    n = b.integers(0, 4)
    indices = b.index_placeholder((n, 1), x.shape[0], f"axis 0 of {x.name}")
    updates = b.source(x.dtype, (n,) + x.shape[1:])
    if indices is None or updates is None:
        return
    reduction = b.choice(("none", "add", "mul", "max", "min"))
    b.add(gc.scatter_nd(x.tensor, indices.tensor, updates.tensor, reduction),
          _call("gc.scatter_nd", x.name, indices.name, updates.name, f"reduction={reduction!r}"))


def make_cumsum(b):
    x = b.operand(lambda v: v.rank >= 1, among=NUMERIC, shape=b.shape(min_rank=1))
    axis, exclusive, reverse = b.integers(0, x.rank - 1), b.flip(), b.flip()
    b.add(gc.cumsum(x.tensor, axis, exclusive, reverse),
          _call("gc.cumsum", x.name, f"axis={axis}", f"exclusive={exclusive}",
                f"reverse={reverse}"))


def make_top_k(b):
    x = b.operand(lambda v: v.rank >= 1 and isinstance(v.shape[-1], int), among=NUMERIC,
                  shape=b.shape(min_rank=1) + (b.integers(0, 5),))
    k, largest = b.integers(0, x.shape[-1]), b.flip()
    values, indices = gc.top_k(x.tensor, k, largest=largest)
    b.add(values, _call("gc.top_k", x.name, k, f"largest={largest}") + "[0]")
    b.add(indices, _call("gc.top_k", x.name, k, f"largest={largest}") + "[1]")


def make_ctc_beam_search(b):
    # fresh logits: a search's choices may flip on another device's last-bit rounding
    logits = b.source(b.dtype((gc.float32, gc.float64)), (b.dim(), b.dim(), b.integers(1, 4)))
    if logits is None:
        return
    lengths = b.index_placeholder((logits.shape[0],), logits.shape[1], "sequence lengths")
    if lengths is None:
        return
    width = b.integers(1, 3)
    top = b.integers(1, width)
    blank = b.integers(0, logits.shape[2] - 1)
    text = _call("gc.ops.ctc.ctc_beam_search", logits.name, lengths.name, width, top,
                 f"mask_index={blank}")
    paths, scores = ctc_beam_search(logits.tensor, lengths.tensor, width, top, blank)
    b.add(paths, text + "[0]")
    b.add(scores, text + "[1]")


def make_einsum(b):
    a = b.operand(lambda v: v.rank == 2 and v.static, among=FLOATS,
                  shape=(b.integers(0, 4), b.integers(1, 4)))
    if b.flip():
        b.add(gc.einsum("ij->ji", a.tensor), _call("gc.einsum", "'ij->ji'", a.name))
        return
    c = b.source(a.dtype, (a.shape[1], b.integers(1, 4)))
    if c is not None:
        b.add(gc.einsum("ij,jk->ik", a.tensor, c.tensor),
              _call("gc.einsum", "'ij,jk->ik'", a.name, c.name))


def make_gather_grad(b):
    params = b.operand(lambda v: v.rank >= 1, among=NUMERIC, shape=b.shape(min_rank=1))
    axis = b.integers(0, params.rank - 1)
    indices = b.index_placeholder(b.shape(max_rank=2), params.shape[axis],
                                  f"axis {axis} of {params.name}")
    if indices is None:
        return
    gathered = b.add(gc.gather(params.tensor, indices.tensor, axis=axis),
                     _call("gc.gather", params.name, indices.name, f"axis={axis}"))
    if gathered is None:
        return
    g = b.operand(lambda v: v.shape == gathered.shape, among=(params.dtype,),
                  shape=gathered.shape, fresh=0.3)
    b.add(apply("gather_grad", [g.tensor, indices.tensor, params.tensor], axis=axis),
          _call("apply", "'gather_grad'", g.name, indices.name, params.name, f"axis={axis}"))


def make_prod_of_others(b):
    x = b.operand(lambda v: v.rank >= 1, among=NUMERIC, shape=b.shape(min_rank=1))
    axes = tuple(sorted(b.draw(st.lists(st.integers(0, x.rank - 1), min_size=1, unique=True))))
    b.add(apply("prod_of_others", [x.tensor], axes=axes),
          _call("apply", "'prod_of_others'", x.name, f"axes={axes}"))


def make_constant(b):
    """gc.constant of a Python scalar, a numpy scalar or a numpy array of any dtype, with or
    without a dtype; without one, numpy values keep theirs."""
    dtype = b.dtype()
    kind = b.choice(("python", "numpy scalar", "numpy array", "numpy array"))
    if kind == "python":
        value = values.scalar(b.rng, dtype)
        if not dtype.is_float and not dtype.is_bool:
            value = int(value)
        implied = dtypes.default_dtype(value)
        text = repr(value)
    elif dtype is gc.bfloat16:
        return
    else:
        shape = () if kind == "numpy scalar" else tuple(
            d for d in b.shape() if isinstance(d, int))
        value = values.array(b.rng, dtype, shape, b.profile())
        value = value[()] if kind == "numpy scalar" else value
        implied, text = dtype, (f"np.{dtype.name}({value!r})" if kind == "numpy scalar"
                                else show(value))
    if b.flip():
        try:
            tensor = gc.constant(value)
        except GraphcError:
            return
        assert tensor.dtype is implied, (
            f"gc.constant({text}) is {tensor.dtype.name}, expected {implied.name}")
        b.add(tensor, _call("gc.constant", text))
    else:
        given = b.dtype()
        try:
            tensor = gc.constant(value, dtype=given)
        except GraphcError:
            return
        b.add(tensor, _call("gc.constant", text, f"dtype=gc.{given.name}"))


def make_placeholder(b):
    """A placeholder fed in any of the ways feed_dict takes: an array of its dtype or of one
    that casts to it without loss, and for a scalar also a Python or numpy scalar."""
    dtype = b.dtype()
    shape = b.shape()
    profile = b.profile()
    form = b.choice(("array", "array", "other dtype", "scalar"))

    def feed(rng, sizes):
        arr = values.array(rng, dtype, resolve(shape, sizes), profile)
        if form == "other dtype":
            wider = {gc.float16: np.float32, gc.bfloat16: np.float64, gc.float32: np.float64,
                     gc.int32: np.int64, gc.int64: np.int32, gc.float64: np.float32}
            if dtype in wider and (dtype is not gc.int64 or np.all(np.abs(arr) < 2 ** 31)):
                return arr.astype(wider[dtype])
        if form == "scalar" and arr.ndim == 0:
            return arr.item() if rng.random() < 0.5 else arr[()]
        return arr
    b.placeholder(dtype, shape, feed, f"{profile} values as {form}")


def make_variable(b):
    dtype = b.dtype()
    shape = tuple(d for d in b.shape() if isinstance(d, int))
    initial = values.array(b.rng, dtype, shape, b.profile())
    var = b.add(gc.Variable(initial, dtype=dtype),
                _call("gc.Variable", show(initial), f"dtype=gc.{dtype.name}"))
    if var is None:
        raise Skip("too big a variable")
    return var


def _unassigned_variable(b):
    """A variable of the pool that nothing assigns yet (one assignment per run), or a new one."""
    options = [v for v in b.pool
               if v.tensor.node.op == "variable" and v.tensor.node.id not in b.assigned]
    return b.choice(options) if options and b.flip(0.7) else make_variable(b)


def make_assign(b):
    var = _unassigned_variable(b)
    value = b.operand(lambda v: broadcast(v.shape, var.shape) == var.shape
                      and all(isinstance(d, int) for d in v.shape),
                      among=(var.dtype,), shape=var.shape)
    b.assigned.add(var.tensor.node.id)
    return b.add(gc.assign(var.tensor, value.tensor), _call("gc.assign", var.name, value.name))


def make_group(b):
    assigned = make_assign(b)
    if assigned is not None:
        b.effects.append(gc.group(assigned.tensor))
        b.lines.append(f"gc.group({assigned.name})  # fetched too (gives None)")


HUGE = (200000, 200000, 50)  # 2e12 draws: no device can hold them, each must say so


def random_draw(kind):
    def make(b):
        dtype = b.dtype(FLOATS)
        shape = tuple(d for d in b.shape() if isinstance(d, int))
        seed = None if b.flip() else b.integers(0, 100)
        if b.flip(0.05):  # a ResourceError on every device, never a crash
            draw = getattr(gc.random, kind)(HUGE, dtype=dtype, seed=seed)
            b.add(gc.sum(draw), _call("gc.sum", _call(f"gc.random.{kind}", HUGE)))
            return
        if kind == "normal":
            out = gc.random.normal(shape, 1.0, 2.0, dtype=dtype, seed=seed)
        elif b.flip():
            out = gc.random.uniform(shape, -1.0, 3.0, dtype=dtype, seed=seed)
        else:  # a draw of another tensor's shape, run-time dims too
            x = b.operand(among=FLOATS)
            rate = b.choice((0.25, 0.5, 0.9))
            out = gc.nn.dropout(x.tensor, rate, seed=seed)
            b.add(out, _call("gc.nn.dropout", x.name, rate, f"seed={seed}"))
            return
        b.add(out, _call(f"gc.random.{kind}", shape_text(shape), f"gc.{dtype.name}",
                         f"seed={seed}"))
    return make


def make_keyed_random(b):
    """A map over a pool value's rows that drops out each row with a mask of its own (the
    loop's body draws: graphc.ops.body_draws)."""
    x = b.operand(lambda v: v.rank >= 1, among=FLOATS)
    if x is None:
        return
    seed = None if b.flip() else b.integers(0, 100)
    rate = b.choice((0.25, 0.5, 0.9))
    b.add(gc.map_fn(lambda row: gc.nn.dropout(row, rate, seed=seed), x.tensor),
          f"gc.map_fn(lambda row: gc.nn.dropout(row, {rate}, seed={seed}), {x.name})")


def softmax(name):
    def make(b):
        x = b.operand(lambda v: v.rank >= 1, among=FLOATS, shape=b.shape(min_rank=1))
        axis = b.integers(-x.rank, x.rank - 1)
        b.add(getattr(gc.nn, name)(x.tensor, axis=axis),
              _call(f"gc.nn.{name}", x.name, f"axis={axis}"))
    return make


def make_sparse_xent(b):
    logits = b.operand(lambda v: v.rank >= 1 and v.shape[-1] != 0, among=FLOATS,
                       shape=b.shape(min_rank=1) + (b.integers(1, 5),))
    labels = b.index_placeholder(logits.shape[:-1], logits.shape[-1], f"classes of {logits.name}")
    if labels is not None:
        b.add(gc.nn.sparse_softmax_cross_entropy(logits.tensor, labels.tensor),
              _call("gc.nn.sparse_softmax_cross_entropy", logits.name, labels.name))


def _image(b, dtype=None):
    """A pool value or fresh source of rank 4 (NHWC) with static height, width, channels."""
    shape = (b.choice([1, 2, 3] + b.symbols), b.integers(1, 6), b.integers(1, 6),
             b.integers(1, 3))
    return b.operand(lambda v: v.rank == 4 and all(isinstance(d, int) for d in v.shape[1:])
                     and 0 not in v.shape[1:], among=(dtype,) if dtype else FLOATS, shape=shape)


def _window(b, x, largest=3):
    kh, kw = b.integers(1, largest), b.integers(1, largest)
    strides = (b.integers(1, 2), b.integers(1, 2))
    padding = b.choice(("SAME", "VALID", "same"))
    return kh, kw, strides, padding


def _conv(b):
    x = _image(b)
    # filters up to 4x4x3x4: sums of taps on both sides of conv_rules.DIRECT_PATCH (in place
    # below it, a Gemm above)
    kh, kw, strides, padding = _window(b, x, largest=4)
    dilations = (b.integers(1, 2), b.integers(1, 2))
    filters = b.operand(lambda v: v.rank == 4 and v.static and v.shape[2] == x.shape[3]
                        and 0 not in v.shape, among=(x.dtype,),
                        shape=(kh, kw, x.shape[3], b.integers(1, 4)), fresh=0.7)
    args = dict(strides=strides, padding=padding, dilations=dilations)
    try:
        y = gc.nn.conv2d(x.tensor, filters.tensor, **args)
    except GraphcError:
        return None
    text = ", ".join(f"{k}={v!r}" for k, v in args.items())
    return x, filters, b.add(y, _call("gc.nn.conv2d", x.name, filters.name, text)), args, text


def conv_gradient(name):
    def make(b):
        made = _conv(b)
        if made is None or made[2] is None:
            return
        x, filters, y, args, text = made
        g = b.operand(lambda v: v.shape == y.shape, among=(x.dtype,), shape=y.shape, fresh=0.5)
        if g is not None:
            b.add(getattr(gc.nn, name)(x.tensor, filters.tensor, g.tensor, **args),
                  _call(f"gc.nn.{name}", x.name, filters.name, g.name, text))
    return make


def make_conv2d(b):
    _conv(b)


def pool(name, with_gradient):
    def make(b):
        x = _image(b)
        kh, kw, strides, padding = _window(b, x)
        try:
            y = getattr(gc.nn, name)(x.tensor, (kh, kw), strides, padding)
        except GraphcError:
            return
        text = f"({kh}, {kw}), {strides}, {padding!r}"
        y = b.add(y, _call(f"gc.nn.{name}", x.name, text))
        if y is None or not with_gradient:
            return
        g = b.operand(lambda v: v.shape == y.shape, among=(x.dtype,), shape=y.shape, fresh=0.5)
        if g is not None:
            b.add(getattr(gc.nn, f"{name}_grad")(x.tensor, g.tensor, (kh, kw), strides, padding),
                  _call(f"gc.nn.{name}_grad", x.name, g.name, text))
    return make


def make_grad(b):
    """The gradient of a sum of a pool value w.r.t. a float placeholder or variable it may
    depend on (zeros where it does not)."""
    x = b.operand(lambda v: v.tensor.node.op in ("placeholder", "variable"), among=FLOATS,
                  fresh=0)
    y = b.operand(lambda v: v.dtype.is_float, among=FLOATS, fresh=0)
    try:
        dx = gc.grad(gc.sum(y.tensor), x.tensor, unconnected="zero")
    except GraphcError:
        return  # not differentiable (second order of max_pool2d, ...)
    b.add(dx, _call("gc.grad", f"gc.sum({y.name})", x.name))


def make_composite(b):
    """A pattern that a rewrite rule looks for (random_graphs.COMPOSITES), on any values."""
    rank, _, make = COMPOSITES[b.choice(sorted(COMPOSITES))]
    x = b.operand(lambda v: v.rank >= rank and v.static and 0 not in v.shape, among=FLOATS,
                  shape=tuple(b.integers(1, 5) for _ in range(max(rank, b.integers(0, 3)))))
    if x is not None:
        try:
            tensor, text, _, _ = make(b, x)
        except GraphcError:
            return
        b.add(tensor, text)


# ---- the rewrite rules' patterns -------------------------------------------------------------
RULES = [rule for p in PASSES for rule in p.rules]
# how a pattern's op that takes attrs gets them, from its input
PATTERN_ATTRS = {
    "transpose": lambda b, x: {"perm": tuple(b.draw(st.permutations(range(x.rank))))},
    "reshape": lambda b, x: {"shape": factor_shape(b, math.prod(x.shape))},
    "softmax": lambda b, x: {"axis": b.integers(0, x.rank - 1)},
    "cast": lambda b, x: {"dtype": b.dtype(FLOATS)},
}


def _static_ones(shape, b):
    """A shape that broadcasts against `shape`: some of its static dims, 1 elsewhere."""
    return tuple(d if isinstance(d, int) and b.flip(0.5) else 1 for d in shape)


# what an op that commutes with a transpose does to a transposed tensor t (an AnyNode
# pattern's instance: the layout pass's op_below_transpose), given the tensor x it transposes
OVER_A_TRANSPOSE = {
    "unary": lambda b, t, x, perm: gc.tanh(t),
    "constant": lambda b, t, x, perm: t * b.constant_array(
        t.dtype, values.array(b.rng, t.dtype, _static_ones(t.shape, b), "special")).tensor,
    "same transpose": lambda b, t, x, perm: gc.maximum(t, gc.transpose(gc.neg(x), perm)),
    "reduction": lambda b, t, x, perm: gc.sum(t, axis=_axes(b, t), keepdims=b.flip(0.5)),
    "concat": lambda b, t, x, perm: gc.concat([t, gc.abs(t)], b.integers(0, t.rank - 1)),
    "pad": lambda b, t, x, perm: gc.pad(t, [(b.integers(0, 2), b.integers(0, 1))
                                            for _ in range(t.rank)]),
    "slice": lambda b, t, x, perm: t[tuple(b.choice([slice(None), slice(None, None, -1),
                                                     slice(1, None, 2), slice(-1, 0, -2)])
                                           for _ in range(t.rank))],
}


def _over_a_transpose(b, among):
    x = b.operand(lambda v: v.rank >= 2 and 0 not in v.shape, among=among,
                  shape=(b.integers(1, 5), b.dim(), b.integers(1, 4)), fresh=0.5,
                  profile="special").tensor
    perm = tuple(b.draw(st.permutations(range(x.rank))))
    return OVER_A_TRANSPOSE[b.choice(sorted(OVER_A_TRANSPOSE))](
        b, gc.transpose(x, perm), x, perm)


def _instance(b, pattern, bound, among=FLOATS):
    """A tensor (or, for a constant, a Python number) that `pattern` of a rewrite rule
    matches, made of pool values (of static non-empty shapes, dtypes in `among`) and the
    dtypes' specials."""
    if isinstance(pattern, AnyNode):
        return _over_a_transpose(b, among)
    if isinstance(pattern, Var):
        if pattern.name not in bound:
            first = next(iter(bound.values()), None)  # a second variable broadcasts with it
            bound[pattern.name] = b.operand(
                lambda v: v.rank >= 1 and v.static and 0 not in v.shape
                and (first is None or broadcast(v.shape, first.shape) is not None)
                and (pattern.where is None or pattern.where(v.tensor)), among=among,
                shape=first.shape if first else (b.integers(1, 5), b.integers(1, 4)),
                fresh=0.5, profile="special")
        return bound[pattern.name].tensor
    if isinstance(pattern, Const):
        return values.scalar(b.rng, among[0]) if pattern.value is None else pattern.value
    logic = elementwise.BINARY.get(pattern.op, (None, None, ""))[2] == "logic"
    args = [_instance(b, p, bound, (gc.bool_,) if logic else FLOATS) for p in pattern.inputs]
    if pattern.op in PATTERN_ATTRS:
        return apply(pattern.op, args, **PATTERN_ATTRS[pattern.op](b, args[0]))
    if b.flip(0.3):
        args.reverse()  # constants on the left too, for canonicalize
    return getattr(gc, pattern.op)(*args)


def make_rewrite_pattern(b):
    """What a rewrite rule of any level looks for (random_graphs' COMPOSITES, made from the
    rules themselves), on any values: a rule added to the database is fuzzed too."""
    rule = RULES[b.rng.integers(len(RULES))]
    bound = {}
    b.add(_instance(b, rule.pattern, bound),
          f"pattern of {rule.name} on " + ", ".join(v.name for v in bound.values()))


# op -> a step that builds it. The elementwise tables' ops get theirs from the tables.
MAKERS = {
    **{name: unary(name, accepts) for name, (_, _, accepts) in elementwise.UNARY.items()},
    **{name: binary(name, result) for name, (_, _, result) in elementwise.BINARY.items()},
    "where": make_where, "cast": make_cast, "fill_like": make_fill_like,
    "stop_gradient": make_stop_gradient, "one_hot": make_one_hot,
    "reduced_size": make_reduced_size, "broadcast_like": make_broadcast_like,
    "sum_to_like": make_sum_to_like, "matmul": make_matmul,
    **{name: reduction(name) for name in ("sum", "mean", "max", "min", "prod")},
    "argmax": arg_reduction("argmax"), "argmin": arg_reduction("argmin"),
    "reshape": make_reshape, "reshape_like": make_reshape_like, "transpose": make_transpose,
    "expand_dims": make_expand_dims, "squeeze": make_squeeze, "broadcast_to": make_broadcast_to,
    "concat": make_concat, "split": make_split, "strided_slice": make_getitem,
    "strided_slice_grad": make_strided_slice_grad, "pad": make_pad, "gather": make_gather,
    "gather_grad": make_gather_grad, "gather_elements": make_gather_elements,
    "scatter_elements": make_scatter_elements, "scatter_nd": make_scatter_nd,
    "cumsum": make_cumsum, "top_k": make_top_k, "einsum": make_einsum, "prod_of_others": make_prod_of_others,
    "ctc_beam_search": make_ctc_beam_search,
    "constant": make_constant, "placeholder": make_placeholder, "variable": make_variable,
    "assign": make_assign, "group": make_group,
    "loop": scan_step(), "argument": scan_step(), "resize_rows": scan_step(fewer_steps=True),
    "cond": make_cond,
    "allreduce": collective("allreduce"), "broadcast": collective("broadcast"),
    "random_normal": random_draw("normal"), "random_uniform": random_draw("uniform"),
    "keyed_random": make_keyed_random,
    "softmax": softmax("softmax"), "log_softmax": softmax("log_softmax"),
    "sparse_softmax_cross_entropy": make_sparse_xent, "conv2d": make_conv2d,
    "conv2d_backprop_input": conv_gradient("conv2d_backprop_input"),
    "conv2d_backprop_filter": conv_gradient("conv2d_backprop_filter"),
    "max_pool2d": pool("max_pool2d", False), "max_pool2d_grad": pool("max_pool2d", True),
    "avg_pool2d": pool("avg_pool2d", False), "avg_pool2d_grad": pool("avg_pool2d", True),
}
# steps that build no op of their own but reach rewrites and paths the others do not
MORE_STEPS = (make_stack, make_logsumexp, make_grad, make_composite, make_rewrite_pattern)
ALL_STEPS = list(MAKERS.values()) + list(MORE_STEPS)
