"""Lowering rules that ops name in their declarations (`register(..., lower=...)`).

A rule is `rule(k, node, idx) -> Expr` (multi-output ops also get the output number): the value
of node's output at index `idx` (a tuple of int64 expressions, one per axis), built from its
inputs' values at the indices it needs, which it asks the emitter `k` for.
"""
from . import ir


def _fill(template, values):
    """template with its None entries replaced, in order, by values."""
    values = iter(values)
    return tuple(next(values) if e is None else e for e in template)


def _clamp(i, size):
    """i moved into [0, size): in bounds only where size >= 1 (see _unless_empty)."""
    return ir.minimum(ir.maximum(i, ir.const(0)), ir.sub(size, ir.const(1)))


def _is_empty(size):
    return isinstance(size, ir.Const) and size.value == 0


def _unless_empty(k, sizes, value):
    """value, read at indices clamped into the extents `sizes`, computed only where
    none of them is 0. An extent of 0 leaves no index to clamp to, and `where` evaluates its
    untaken branch too, so where a run-time extent may be 0 the read goes under a Reduce of
    min(n1, n2, ..., 1) iterations (run-time extents are never negative): over no iteration
    a Reduce evaluates nothing (the kernel IR's one lazy construct), and the caller's select
    never takes its value then; over one, the max of one value is that value."""
    extent = ir.const(1)
    for n in sizes:
        if not isinstance(n, ir.Const):
            extent = ir.minimum(n, extent)
    if isinstance(extent, ir.Const):
        return value
    return ir.Reduce("max", ((k.var("nonempty"), extent),), value, value.dtype)


def _in_range(i, size):
    return ir.op("logical_and", ir.op("greater_equal", i, ir.const(0), dtype="bool"),
                 ir.op("less", i, size, dtype="bool"), dtype="bool")


def _all(conditions):
    """The conjunction of bool expressions, None for none."""
    out = None
    for c in conditions:
        out = c if out is None else ir.op("logical_and", out, c, dtype="bool")
    return out


def _select(cond, a, b):
    """where(cond, a, b): of the branches' dtype, not the condition's."""
    return ir.Op("where", (cond, a, b), a.dtype)


def _as_dtype(expr, dtype):
    return expr if expr.dtype == dtype else ir.Op("cast", (expr,), dtype)


# ---- elementwise ---------------------------------------------------------------------------
def scalar(k, node, idx):
    """The kernel IR scalar op of the op's own name, over its inputs broadcast to the output."""
    args = [k.broadcast_input(node, i, idx) for i in range(len(node.inputs))]
    return ir.Op(node.op, tuple(args), node.outputs[0].dtype.name)


def identity(k, node, idx):
    return k.input(node, 0, idx)


def fill_like(k, node, idx):
    return ir.const(node.attrs["value"], node.attrs["dtype"].name)


def reduced_size(k, node, idx):
    x = node.inputs[0]
    count = ir.product(k.dim(x.shape[a]) for a in node.attrs["axes"])
    return _as_dtype(count, node.outputs[0].dtype.name)


def one_hot(k, node, idx):
    axis, dtype = node.attrs["axis"], node.attrs["dtype"].name
    label = _as_dtype(k.input(node, 0, idx[:axis] + idx[axis + 1:]), ir.INDEX)
    hit = ir.op("equal", label, idx[axis], dtype="bool")
    return _select(hit, ir.const(node.attrs["on"], dtype), ir.const(node.attrs["off"], dtype))


# ---- reductions ----------------------------------------------------------------------------
def reduction(kind):
    """sum/mean/max/min/prod over attrs axes (keepdims or not)."""
    def rule(k, node, idx):
        x, axes = node.inputs[0], node.attrs["axes"]
        keep = node.attrs["keepdims"]
        kept = iter(idx)
        template = []
        for a in range(x.rank):
            if a in axes:
                template.append(None)
                if keep:
                    next(kept)
            else:
                template.append(next(kept))
        dtype = node.outputs[0].dtype.name
        total = k.reduce("sum" if kind == "mean" else kind, x.shape, axes,
                         lambda vs: k.value(x, _fill(template, vs)), dtype)
        if kind != "mean":
            return total
        return ir.op("div", total, _as_dtype(ir.product(k.dim(x.shape[a]) for a in axes), dtype))
    return rule


def arg_reduction(kind):
    def rule(k, node, idx):
        x, axis = node.inputs[0], node.attrs["axis"]
        template = idx[:axis] + (None,) + idx[axis:]
        return k.reduce(kind, x.shape, (axis,), lambda vs: k.value(x, _fill(template, vs)),
                        ir.INDEX)
    return rule


def sum_to_like(k, node, idx):
    x, like = node.inputs
    lead = x.rank - like.rank
    axes = node.spec.reduced_axes(node)
    template = tuple(None if a in axes else idx[a - lead] for a in range(x.rank))
    return k.reduce("sum", x.shape, axes, lambda vs: k.value(x, _fill(template, vs)),
                    node.outputs[0].dtype.name)


def _row_stats(k, x, idx, axis):
    """(value at idx, the row's max, sum of exp(x - max)) for the row through idx."""
    dtype = x.dtype.name

    def at(v):
        return k.value(x, idx[:axis] + (v[0],) + idx[axis + 1:])
    top = k.reduce("max", x.shape, (axis,), at, dtype)
    total = k.reduce("sum", x.shape, (axis,),
                     lambda v: ir.op("exp", ir.op("sub", at(v), top)), dtype)
    return k.value(x, idx), top, total


def softmax(k, node, idx):
    value, top, total = _row_stats(k, node.inputs[0], idx, node.attrs["axis"])
    return ir.op("div", ir.op("exp", ir.op("sub", value, top)), total)


def log_softmax(k, node, idx):
    value, top, total = _row_stats(k, node.inputs[0], idx, node.attrs["axis"])
    return ir.op("sub", ir.op("sub", value, top), ir.op("log", total))


def sparse_softmax_cross_entropy(k, node, idx):
    logits, labels = node.inputs
    classes = k.dim(logits.shape[-1])
    what = k.error(node, "label {value} is out of range [0, %s) for logits of shape %s"
                   % (logits.shape[-1], list(logits.shape)))
    label = ir.op("check_index", _as_dtype(k.input(node, 1, idx), ir.INDEX), classes,
                  ir.const(what))
    row = idx + (ir.const(0),)
    _, top, total = _row_stats(k, logits, row, logits.rank - 1)
    picked = k.value(logits, idx + (label,))
    # -log_softmax at the label, shifted first: log(total) + top - picked cancels for huge logits
    return ir.op("neg", ir.op("sub", ir.op("sub", picked, top), ir.op("log", total)))


# ---- views ---------------------------------------------------------------------------------
def reshape(k, node, idx):
    out, x = node.outputs[0], node.inputs[0]
    flat = ir.linear(idx, ir.contiguous_strides(k.dims(out.shape)))
    return k.value(x, ir.unflatten(flat, k.dims(x.shape)))


def transpose(k, node, idx):
    perm = node.attrs["perm"]
    src = [None] * len(perm)
    for j, p in enumerate(perm):
        src[p] = idx[j]
    return k.value(node.inputs[0], tuple(src))


def broadcast(k, node, idx):
    return k.broadcast_input(node, 0, idx)


def _piecewise(k, node, idx, axis, pieces):
    """The value along `axis` taken from consecutive pieces [(tensor, size)]: a select chain
    whose untaken branches read clamped, in-bounds indices (an empty piece is never taken)."""
    i = idx[axis]
    start, out = ir.const(0), None
    for t, size in pieces:
        local = ir.sub(i, start)
        start = ir.add(start, size)
        if _is_empty(size):
            continue
        value = _unless_empty(k, [size], k.value(t, idx[:axis] + (_clamp(local, size),)
                                                 + idx[axis + 1:]))
        out = value if out is None else _select(
            ir.op("less", local, ir.const(0), dtype="bool"), out, value)
    # pieces all empty: so is the output, whose value is never computed
    return ir.const(0, node.outputs[0].dtype.name) if out is None else out


def concat(k, node, idx):
    axis = node.attrs["axis"]
    return _piecewise(k, node, idx, axis, [(t, k.dim(t.shape[axis])) for t in node.inputs])


def split(k, node, idx, output=0):
    axis = node.attrs["axis"]
    offset = ir.const(0)
    for t in node.outputs[:output]:
        offset = ir.add(offset, k.dim(t.shape[axis]))
    return k.input(node, 0, idx[:axis] + (ir.add(idx[axis], offset),) + idx[axis + 1:])


def _slice_start(entry, n):
    """(first index, step) of a strided_slice entry along an axis of extent n: numpy's rules
    (slice.indices) as index arithmetic, a constant where n is one, so that negative and
    out-of-range bounds resolve against the extent at run time. An int entry out of range
    never gets here: the op's inference refuses it, and the runtimes run inference again on
    the fed shapes before any kernel."""
    if entry is None:
        return ir.const(0), 1
    if isinstance(entry, int):
        return (ir.const(entry) if entry >= 0 else ir.add(n, ir.const(entry))), 1
    start, _, step = entry
    last = n if step > 0 else ir.sub(n, ir.const(1))  # the furthest start numpy keeps
    if start is None:
        return (ir.const(0) if step > 0 else last), step
    if start < 0:
        return ir.maximum(ir.add(n, ir.const(start)), ir.const(0 if step > 0 else -1)), step
    return ir.minimum(ir.const(start), last), step


def strided_slice(k, node, idx):
    x = node.inputs[0]
    at = []
    for i, entry, n in zip(idx, node.attrs["index"], k.dims(x.shape)):
        start, step = _slice_start(entry, n)
        at.append(ir.add(start, ir.mul(i, ir.const(step))))
    return k.value(x, tuple(at))


def strided_slice_grad(k, node, idx):
    """g at the slice's position that took index idx of `like`, where one did, else 0."""
    g, like = node.inputs
    zero = ir.const(0, g.dtype.name)
    sizes = k.dims(g.shape)
    if any(map(_is_empty, sizes)):
        return zero
    conditions, src, may_be_empty = [], [], []
    for i, entry, m, n in zip(idx, node.attrs["index"], k.dims(like.shape), sizes):
        if entry is None:  # the whole axis
            src.append(i)
            continue
        start, step = _slice_start(entry, m)
        offset = ir.sub(i, start)
        j = ir.floordiv(offset, ir.const(step))
        conditions.append(_in_range(j, n))
        if abs(step) > 1:
            conditions.append(ir.op("equal", ir.mod(offset, ir.const(step)), ir.const(0),
                                    dtype="bool"))
        src.append(_clamp(j, n))
        may_be_empty.append(n)
    value = _unless_empty(k, may_be_empty, k.value(g, tuple(src)))
    inside = _all(conditions)
    return value if inside is None else _select(inside, value, zero)


def pad(k, node, idx):
    x = node.inputs[0]
    conditions, src, padded = [], [], []
    for i, (before, after), n in zip(idx, node.attrs["paddings"], k.dims(x.shape)):
        if not (before or after):
            src.append(i)
            continue
        j = ir.sub(i, ir.const(before))
        conditions.append(_in_range(j, n))
        src.append(_clamp(j, n))
        padded.append(n)
    fill = ir.const(node.attrs["value"], x.dtype.name)
    if any(map(_is_empty, padded)):
        return fill
    value = _unless_empty(k, padded, k.value(x, tuple(src)))
    inside = _all(conditions)
    return value if inside is None else _select(inside, value, fill)


def checked_index(k, node, index, shape, axis):
    """An index read from a tensor, as int64, checked to lie in [0, shape[axis]): outside, the
    kernel stops and the run raises IndexError_ (as gather and its gradient do)."""
    what = k.error(node, "%s: index {value} is out of range for axis %d of params with shape "
                   "%s: expected 0 <= index < %s" % (node.op, axis, list(shape), shape[axis]))
    return ir.op("check_index", _as_dtype(index, ir.INDEX), k.dim(shape[axis]), ir.const(what))


def gather(k, node, idx):
    params, indices = node.inputs
    axis = node.attrs["axis"]
    inner = idx[axis:axis + indices.rank]
    position = checked_index(k, node, k.value(indices, inner), params.shape, axis)
    return k.value(params, idx[:axis] + (position,) + idx[axis + indices.rank:])
