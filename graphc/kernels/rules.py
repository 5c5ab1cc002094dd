"""Lowering rules that ops name in their declarations (`register(..., lower=...)`).

A rule is `rule(k, node, idx) -> Expr` (multi-output ops also get the output number): the value
of node's output at index `idx` (a tuple of int64 expressions, one per axis), built from its
inputs' values at the indices it needs, which it asks the emitter `k` for. Elementwise ops whose
kernel IR scalar op has their name need no rule (graphc.kernels.lower.default_rule).
"""
from . import ir


def _fill(template, values):
    """template with its None entries replaced, in order, by values."""
    values = iter(values)
    return tuple(next(values) if e is None else e for e in template)


def _clamp(i, size):
    return ir.op("minimum", ir.op("maximum", i, ir.const(0)), ir.sub(size, ir.const(1)))


def _in_range(i, size):
    return ir.op("logical_and", ir.op("greater_equal", i, ir.const(0), dtype="bool"),
                 ir.op("less", i, size, dtype="bool"), dtype="bool")


def _select(cond, a, b):
    """where(cond, a, b): of the branches' dtype, not the condition's."""
    return ir.Op("where", (cond, a, b), a.dtype)


def _as_dtype(expr, dtype):
    return expr if expr.dtype == dtype else ir.Op("cast", (expr,), dtype)


# ---- elementwise ---------------------------------------------------------------------------
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
    axes = [a for a in range(x.rank)
            if a < lead or (like.shape[a - lead] == 1 and x.shape[a] != 1)]
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
    return ir.op("sub", ir.op("add", ir.op("log", total), top), picked)


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
    whose untaken branches read clamped, in-bounds indices."""
    i = idx[axis]
    start, out = ir.const(0), None
    for t, size in pieces:
        local = ir.sub(i, start)
        value = k.value(t, idx[:axis] + (_clamp(local, size),) + idx[axis + 1:])
        out = value if out is None else _select(
            ir.op("less", local, ir.const(0), dtype="bool"), out, value)
        start = ir.add(start, size)
    return out


def concat(k, node, idx):
    axis = node.attrs["axis"]
    return _piecewise(k, node, idx, axis, [(t, k.dim(t.shape[axis])) for t in node.inputs])


def split(k, node, idx, output=0):
    axis = node.attrs["axis"]
    offset = ir.const(0)
    for t in node.outputs[:output]:
        offset = ir.add(offset, k.dim(t.shape[axis]))
    return k.input(node, 0, idx[:axis] + (ir.add(idx[axis], offset),) + idx[axis + 1:])


def _slice_entries(k, node, shape):
    """(start, step) per axis of a strided_slice `index` attr on a static shape."""
    out = []
    for entry, d in zip(node.attrs["index"], shape):
        if entry is None:
            out.append((0, 1))
        elif isinstance(entry, int):
            out.append((entry % d if isinstance(d, int) else entry, 1))
        else:
            if not isinstance(d, int):
                raise ir.Unsupported("strided_slice on a symbolic dim")
            start, _, step = slice(*entry).indices(d)
            out.append((start, step))
    return out


def strided_slice(k, node, idx):
    x = node.inputs[0]
    entries = _slice_entries(k, node, x.shape)
    return k.value(x, tuple(ir.add(ir.const(s), ir.mul(i, ir.const(st)))
                            for i, (s, st) in zip(idx, entries)))


def strided_slice_grad(k, node, idx):
    g, like = node.inputs
    entries = _slice_entries(k, node, like.shape)
    inside, src = None, []
    for i, (s, st), n in zip(idx, entries, k.dims(g.shape)):
        offset = ir.sub(i, ir.const(s))
        j = ir.floordiv(offset, ir.const(st))
        ok = ir.op("logical_and", _in_range(j, n),
                   ir.op("equal", ir.mod(offset, ir.const(st)), ir.const(0), dtype="bool"),
                   dtype="bool")
        inside = ok if inside is None else ir.op("logical_and", inside, ok, dtype="bool")
        src.append(_clamp(j, n))
    value = k.value(g, tuple(src))
    return value if inside is None else _select(inside, value, ir.const(0, g.dtype.name))


def pad(k, node, idx):
    x = node.inputs[0]
    inside, src = None, []
    for i, (before, after), n in zip(idx, node.attrs["paddings"], k.dims(x.shape)):
        j = ir.sub(i, ir.const(before))
        if before or after:
            ok = _in_range(j, n)
            inside = ok if inside is None else ir.op("logical_and", inside, ok, dtype="bool")
        src.append(_clamp(j, n))
    value = k.value(x, tuple(src))
    if inside is None:
        return value
    return _select(inside, value, ir.const(node.attrs["value"], x.dtype.name))


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
