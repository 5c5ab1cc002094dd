"""Shape and movement ops: reshape, transpose, expand_dims, squeeze, stop_gradient, and the
indexing, joining and gathering ops of DESIGN.md section 3."""
import builtins
import numbers
import operator
import sys

import numpy as np

from ..errors import DTypeError, GradientError, GraphcError, IndexError_, ShapeError
from ..ir import dtypes
from ..ir.graph import Tensor
from ..ir.types import Dim, TensorType, format_shape, normalize_axis
from .broadcast import unbroadcast
from .elementwise import _tensor, cast
from ..kernels import lowering_rules as rules
from ..kernels import scatter
from .registry import NOT_DIFFERENTIABLE, apply, does_not_commute, register
from .sources import as_tensor


def _prod(dims):
    n = 1
    for d in dims:
        n *= d
    return n


# ---- reshape ------------------------------------------------------------------------------
def _reshape_infer(x, *, shape):
    unknown = [i for i, d in enumerate(shape) if not isinstance(d, int) or d == -1]
    if len(unknown) > 1:
        raise ShapeError(f"reshape to {format_shape(shape)}: at most one dim may be -1 or "
                         "unknown; use gc.reshape_like for more")
    known_in = [d for d in x.shape if isinstance(d, int)]
    syms_in = [d for d in x.shape if not isinstance(d, int)]
    known_out = _prod(d for d in shape if isinstance(d, int) and d != -1)
    if not unknown:
        if not syms_in and _prod(known_in) != known_out:
            raise ShapeError(f"cannot reshape {format_shape(x.shape)} ({_prod(known_in)} "
                             f"elements) to {format_shape(shape)} ({known_out} elements)")
        return TensorType(x.dtype, shape)
    slot = unknown[0]
    if not syms_in:
        total = _prod(known_in)
        if known_out == 0 or total % known_out:
            raise ShapeError(f"cannot reshape {format_shape(x.shape)} ({total} elements) to "
                             f"{format_shape(shape)}")
        fill = total // known_out
    elif len(syms_in) == 1 and _prod(known_in) == known_out:
        fill = syms_in[0]  # (N, 28, 28) -> (-1, 784): the unknown dim is N again
    elif isinstance(shape[slot], Dim):
        fill = shape[slot]
    else:
        fill = Dim()
    return TensorType(x.dtype, shape[:slot] + (fill,) + shape[slot + 1:])


def _reshape_ref(x, *, shape):
    return x.reshape(tuple(d if isinstance(d, int) else -1 for d in shape))


def _reshape_segments(before, after):
    """[(axes of `before`, axes of `after`)]: the runs of axes whose sizes multiply to the
    same numbers, in order (a reshape splits or merges within each run); None for shapes with
    a zero or a run-time dim."""
    if not (builtins.all(isinstance(d, int) and d > 0 for d in before + after)):
        return None
    segments, i, j = [], 0, 0
    while i < len(before) and j < len(after):
        ins, outs, p, q = [i], [j], before[i], after[j]
        i, j = i + 1, j + 1
        while p != q:
            if p < q:
                ins.append(i)
                p, i = p * before[i], i + 1
            else:
                outs.append(j)
                q, j = q * after[j], j + 1
        segments.append((ins, outs))
    if not segments:
        return None
    segments[-1][0].extend(range(i, len(before)))  # trailing axes of length 1
    segments[-1][1].extend(range(j, len(after)))
    return segments


def _reshape_permuted(node, perm):
    """A reshape of a transposed tensor reshapes the tensor before the transpose where each
    run of axes it splits or merges lies side by side there too: first ordered as the
    transpose orders it (the third item, a transpose of the input; identity where none is
    needed), the runs themselves then move as blocks below the reshape."""
    segments = _reshape_segments(node.inputs[0].shape, node.outputs[0].shape)
    if segments is None:
        return None
    blocks = []  # (axes before the transpose, axes of the output), in their order before it
    for ins, outs in segments:
        axes = [perm[a] for a in ins]
        if sorted(axes) != list(range(min(axes), min(axes) + len(axes))):
            return None
        blocks.append((axes, outs))
    blocks.sort(key=lambda block: min(block[0]))
    after = node.outputs[0].shape
    new_order = [o for _, outs in blocks for o in outs]
    return (dict(shape=tuple(after[o] for o in new_order)),
            tuple(new_order.index(o) for o in range(len(after))),
            tuple(a for axes, _ in blocks for a in axes))


register("reshape", lower=rules.reshape, infer=_reshape_infer, ref=_reshape_ref,
         grad=lambda node, g: [reshape_like(g, node.inputs[0])], kind="view", view="linear",
         permuted=_reshape_permuted,
         doc="same elements, new shape (one dim may be -1)")

register("reshape_like", lower=rules.reshape, infer=lambda x, like: TensorType(x.dtype, like.shape),
         ref=lambda x, like: x.reshape(like.shape),
         grad=lambda node, g: [reshape_like(g, node.inputs[0]), None], kind="view", view="linear",
         shape_only={1},
         doc="x reshaped to the run-time shape of `like`")


def reshape(x, shape, name=None):
    """x with a new shape; one dim may be -1 (inferred)."""
    x = _tensor(x)
    shape = tuple(shape) if isinstance(shape, (list, tuple)) else (shape,)
    shape = tuple(int(d) if isinstance(d, (int, np.integer)) else d for d in shape)
    if shape == x.shape:
        return x
    return apply("reshape", [x], name=name, shape=shape)


def reshape_like(x, like, name=None):
    if x.shape == like.shape:
        return x
    return apply("reshape_like", [x, like], name=name)


# ---- transpose ----------------------------------------------------------------------------
def _transpose_infer(x, *, perm):
    if sorted(perm) != list(range(x.rank)):
        raise ShapeError(f"transpose perm {perm} is not a permutation of the {x.rank} axes")
    return TensorType(x.dtype, tuple(x.shape[p] for p in perm))


register("transpose", lower=rules.transpose, infer=_transpose_infer, ref=lambda x, *, perm: np.transpose(x, perm),
         grad=lambda node, g: [transpose(g, tuple(np.argsort(node.attrs["perm"])))],
         kind="view", view="reorder", doc="permute axes")


def transpose(x, perm=None, name=None):
    """Axes permuted by `perm` (default: reversed)."""
    x = _tensor(x)
    perm = tuple(reversed(range(x.rank))) if perm is None else tuple(
        normalize_axis(int(p), x.rank) for p in perm)
    if perm == tuple(range(x.rank)):
        return x
    return apply("transpose", [x], name=name, perm=perm)


def matrix_transpose(x):
    """Swap the last two axes."""
    perm = list(range(x.ndim))
    perm[-2], perm[-1] = perm[-1], perm[-2]
    return transpose(x, perm)


# ---- expand_dims / squeeze -----------------------------------------------------------------
def expand_dims(x, axis, name=None):
    """x with a new axis of size 1 at `axis`."""
    x = _tensor(x)
    axis = normalize_axis(axis, x.rank + 1)
    return reshape(x, x.shape[:axis] + (1,) + x.shape[axis:], name=name) if x.type.is_static \
        or builtins.sum(not isinstance(d, int) for d in x.shape) <= 1 \
        else apply("expand_dims", [x], name=name, axis=axis)


register("expand_dims", lower=rules.reshape,
         infer=lambda x, *, axis: TensorType(x.dtype, x.shape[:axis] + (1,) + x.shape[axis:]),
         ref=lambda x, *, axis: np.expand_dims(x, axis),
         grad=lambda node, g: [reshape_like(g, node.inputs[0])], kind="view", view="linear",
         doc="insert a size-1 axis")


def _squeeze_infer(x, *, axes):
    for a in axes:
        if x.shape[a] != 1:
            raise ShapeError(f"squeeze axis {a}: size is {x.shape[a]}, not 1")
    return TensorType(x.dtype, tuple(d for i, d in enumerate(x.shape) if i not in axes))


register("squeeze", lower=rules.reshape, infer=_squeeze_infer, ref=lambda x, *, axes: np.squeeze(x, axis=axes),
         grad=lambda node, g: [reshape_like(g, node.inputs[0])], kind="view", view="linear",
         doc="drop size-1 axes")


def squeeze(x, axis=None, name=None):
    """x without its size-1 axes (all of them, or those in `axis`)."""
    x = _tensor(x)
    if axis is None:
        axes = tuple(i for i, d in enumerate(x.shape) if d == 1)
    else:
        axes = tuple(sorted(normalize_axis(a, x.rank) for a in
                            ((axis,) if isinstance(axis, int) else axis)))
    if not axes:
        return x
    return apply("squeeze", [x], name=name, axes=axes)


def reshape_like_reduced(g, x, axes):
    """g, the result of reducing x over `axes` without keepdims, as if keepdims were set."""
    for a in sorted(axes):
        g = expand_dims(g, a)
    return g


# ---- stop_gradient ------------------------------------------------------------------------
register("stop_gradient", lower=rules.identity, infer=lambda x: x, ref=lambda x: x, grad=NOT_DIFFERENTIABLE,
         kind="elementwise", doc="identity that blocks gradients")


def stop_gradient(x, name=None):
    """x itself, seen by gc.grad as a constant."""
    return apply("stop_gradient", [_tensor(x)], name=name)




# ---- helpers shared by the ops below ----------------------------------------------------------
def _as_tensors(values, what):
    """A list of tensors of one graph and one (promoted) dtype."""
    values = list(values)
    if not values:
        raise ShapeError(f"{what} needs at least one tensor")
    first = next((v for v in values if isinstance(v, Tensor)), None)
    values = [_tensor(v, like=first) for v in values]
    common = values[0].dtype
    for v in values[1:]:
        common = dtypes.promote(common, v.dtype)
    return [cast(v, common) for v in values]


def _axis_of(x, axis, what):
    if x.rank == 0:
        raise ShapeError(f"{what} needs a tensor of rank >= 1, got a scalar '{x.name}'")
    return normalize_axis(int(axis), x.rank)


def _known(dim):
    return isinstance(dim, int)


def _conflict(a, b):
    """True when two dims that must be equal are both known and differ (symbols are checked
    at run time, when the op's inference runs again on concrete shapes)."""
    return _known(a) and _known(b) and a != b


# ---- broadcast_to -----------------------------------------------------------------------------
# The target shape is stored as `dims`: an int is a size known now; a pair (k, axis) is a size
# known at run time, read from `axis` of input k (0 is x itself, others are tensors holding a
# symbolic dim of the target), so the reference can find every size from its inputs.
def _target_shape(inputs, dims):
    return tuple(d if isinstance(d, int) else inputs[d[0]].shape[d[1]] for d in dims)


def _broadcast_to_infer(x, *holders, dims):
    shape = _target_shape((x,) + holders, dims)
    aligned = shape[len(shape) - x.rank:]
    if len(shape) < x.rank or builtins.any(_conflict(d, t) and d != 1
                                           for d, t in zip(x.shape, aligned)):
        raise ShapeError(f"broadcast_to: cannot broadcast {format_shape(x.shape)} to "
                         f"{format_shape(shape)}; each axis of x must be 1 or the target size, "
                         "aligned from the right")
    return TensorType(x.dtype, shape)


register("broadcast_to", lower=rules.broadcast, infer=_broadcast_to_infer,
         ref=lambda x, *holders, dims: np.broadcast_to(x, _target_shape((x,) + holders, dims)),
         grad=lambda node, g: [unbroadcast(g, node.inputs[0])] + [None] * (len(node.inputs) - 1),
         kind="view", view="broadcast", shape_only=range(1, sys.maxsize),  # all but x
         doc="x broadcast to a shape whose symbolic dims come from other tensors")


def _holder_of(x, dim):
    """A tensor of x's graph with the symbolic `dim` in its shape, and the axis where it is."""
    candidates = [x] + [t for node in x.graph.nodes for t in node.outputs]
    for t in candidates:
        for axis, d in enumerate(t.shape):
            if d is dim:
                return t, axis
    raise ShapeError(f"broadcast_to: the symbolic dim {dim} is not the dim of any tensor in "
                     f"the graph of '{x.name}'")


def broadcast_to(x, shape, name=None):
    """x broadcast to `shape` as numpy does. A dim may be a symbolic Dim taken from another
    tensor's shape, as in gc.broadcast_to(b, (x.shape[0], 10))."""
    x = _tensor(x)
    shape = tuple(shape) if isinstance(shape, (list, tuple)) else (shape,)
    position, dims = {x: 0}, []  # tensor -> its input position (a dict key is by identity)
    for d in shape:
        if isinstance(d, Dim):
            holder, axis = _holder_of(x, d)
            dims.append((position.setdefault(holder, len(position)), axis))
        elif isinstance(d, numbers.Integral) and d >= 0:
            dims.append(int(d))
        else:
            raise ShapeError(f"broadcast_to: a dim must be a non-negative int or a symbolic dim "
                             f"of another tensor, got {d!r} in {format_shape(shape)}")
    holders = list(position)
    if _target_shape(holders, dims) == x.shape:
        return x
    return apply("broadcast_to", holders, name=name, dims=tuple(dims))


# ---- concat and split -------------------------------------------------------------------------
def _concat_infer(*values, axis):
    first = values[0]
    shape = list(first.shape)
    for i, v in enumerate(values):
        if v.dtype is not first.dtype:
            raise DTypeError(f"concat needs tensors of one dtype, got {first.dtype.name} and "
                             f"{v.dtype.name} (input {i})")
        if v.rank != first.rank or builtins.any(
                _conflict(a, b) for k, (a, b) in enumerate(zip(shape, v.shape)) if k != axis):
            raise ShapeError(f"concat along axis {axis}: input {i} has shape "
                             f"{format_shape(v.shape)} but input 0 has "
                             f"{format_shape(first.shape)}; all axes but {axis} must agree")
        shape = [a if _known(a) or k == axis else b for k, (a, b) in enumerate(zip(shape, v.shape))]
    sizes = [v.shape[axis] for v in values]
    shape[axis] = builtins.sum(sizes) if builtins.all(map(_known, sizes)) else Dim()
    return TensorType(first.dtype, shape)


def _concat_grad(node, g):
    axis = node.attrs["axis"]
    sizes = tuple(v.shape[axis] for v in node.inputs)
    if builtins.all(map(_known, sizes)):
        return list(apply("split", [g], axis=axis, sizes=sizes))
    return list(apply("split", [g, *node.inputs], axis=axis, sizes=None))


def _concat_pieces(node):
    """The axis where the inputs (two or more) all have one shape, else None."""
    first = node.inputs[0].shape
    if len(node.inputs) < 2 or builtins.any(v.shape != first for v in node.inputs[1:]):
        return None
    return node.attrs["axis"]


register("concat", lower=rules.concat, infer=_concat_infer,
         ref=lambda *values, axis: np.concatenate(values, axis=axis), grad=_concat_grad,
         kind="view", view="reorder", pieces=_concat_pieces,
         permuted=lambda node, perm: (dict(axis=perm[node.attrs["axis"]]), tuple(perm)),
         doc="tensors joined along an existing axis")


# split cuts x along `axis` into pieces of the sizes in `sizes` (ints; one may be -1 for the
# rest), or, when sizes is None, as long along `axis` as the other inputs (concat's gradient
# uses that form when sizes are symbolic).
def _piece_sizes(x, others, axis, sizes):
    if sizes is None:
        return tuple(t.shape[axis] for t in others)
    dim = x.shape[axis]
    if -1 not in sizes:
        return sizes
    rest = dim - builtins.sum(s for s in sizes if s != -1) if _known(dim) else Dim()
    return tuple(rest if s == -1 else s for s in sizes)


def _split_infer(x, *others, axis, sizes):
    pieces = _piece_sizes(x, others, axis, sizes)
    dim = x.shape[axis]
    if _known(dim) and builtins.all(map(_known, pieces)) and (
            builtins.sum(pieces) != dim or builtins.any(p < 0 for p in pieces)):
        raise ShapeError(f"split of axis {axis} (size {dim}) into pieces of sizes {pieces}: "
                         f"the sizes must be non-negative and add up to {dim}")
    return tuple(TensorType(x.dtype, x.shape[:axis] + (p,) + x.shape[axis + 1:])
                 for p in pieces)


def _split_ref(x, *others, axis, sizes):
    offsets = np.cumsum(_piece_sizes(x, others, axis, sizes))[:-1]
    return tuple(np.split(x, offsets, axis=axis))


register("split", lower=rules.split, infer=_split_infer, ref=_split_ref,
         grad=lambda node, *gs: [apply("concat", gs, axis=node.attrs["axis"])]
         + [None] * (len(node.inputs) - 1),
         kind="view", view="reorder", doc="x cut along an axis into pieces (one output per piece)")


def concat(values, axis, name=None):
    """Tensors joined along an existing `axis`; their sizes along it may be symbolic."""
    values = _as_tensors(values, "concat")
    if len(values) == 1:
        return values[0]
    axis = _axis_of(values[0], axis, "concat")
    return apply("concat", values, name=name, axis=axis)


def stack(values, axis=0, name=None):
    """Tensors of one shape joined along a new `axis`."""
    values = _as_tensors(values, "stack")
    first = values[0]
    for v in values:
        if v.rank != first.rank or builtins.any(map(_conflict, first.shape, v.shape)):
            raise ShapeError(f"stack needs tensors of one shape, got {format_shape(first.shape)}"
                             f" and {format_shape(v.shape)}")
    axis = normalize_axis(int(axis), first.rank + 1)
    return concat([expand_dims(v, axis) for v in values], axis, name=name)


def split(x, num_or_size_splits, axis=0, name=None):
    """x cut along `axis` into a list of tensors: into `num` equal parts (the size along the
    axis must be known and divisible by num), or into parts of the given sizes, one of which
    may be -1 (the rest)."""
    x = _tensor(x)
    axis = _axis_of(x, axis, "split")
    dim = x.shape[axis]
    if isinstance(num_or_size_splits, numbers.Integral):
        num = int(num_or_size_splits)
        if num < 1 or not _known(dim) or dim % num:
            raise ShapeError(f"split into {num} equal parts needs a known size along axis "
                             f"{axis} that {num} divides, got {dim}; pass a list of sizes "
                             "(one may be -1) instead")
        sizes = (dim // num,) * num
    else:
        sizes = tuple(int(s) for s in num_or_size_splits)
        if not sizes or sizes.count(-1) > 1 or builtins.any(s < -1 for s in sizes):
            raise ShapeError(f"split sizes must be non-negative ints with at most one -1, got "
                             f"{list(num_or_size_splits)}")
    return list(apply("split", [x], name=name, axis=axis, sizes=sizes))


# ---- basic indexing ---------------------------------------------------------------------------
# strided_slice keeps every axis of x; its attr `index` holds one entry per axis:
#   None                 the whole axis
#   k (an int)           element k; the axis stays with size 1 (getitem squeezes it after)
#   (start, stop, step)  a Python slice, resolved against the dim's size at run time if the
#                        dim is symbolic
# On static dims getitem stores entries already resolved (in-range non-negative ints, slices
# with in-range bounds, None for the whole axis), so equal selections become equal nodes.
def _np_index(index):
    return tuple(slice(None) if e is None else slice(*e) if isinstance(e, tuple)
                 else slice(e, e + 1 or None) for e in index)


def _check_in_range(k, dim, axis):
    if not -dim <= k < dim:
        raise IndexError_(f"index {k} is out of range for axis {axis} with size {dim}: "
                          f"expected {-dim} <= index < {dim}")


def _sliced_dim(entry, dim, axis):
    if entry is None:
        return dim
    if isinstance(entry, int):
        if _known(dim):
            _check_in_range(entry, dim, axis)
        return 1
    if _known(dim):
        return len(range(*slice(*entry).indices(dim)))
    start, stop, step = entry
    # the whole axis reversed is as long as the axis, whatever its size
    return dim if (start, stop, step) in ((None, None, -1), (-1, None, -1)) else Dim()


def _per_axis_permuted(attr):
    """OpSpec.permuted of an op keeping every axis whose attr `attr` holds one entry per axis
    (pad's paddings, strided_slice's index): the entries move with their axes."""
    def permuted(node, perm):
        entries = [None] * len(perm)
        for axis, entry in enumerate(node.attrs[attr]):
            entries[perm[axis]] = entry
        return dict(node.attrs, **{attr: tuple(entries)}), tuple(perm)
    return permuted


def _strided_slice_infer(x, *, index):
    return TensorType(x.dtype, tuple(_sliced_dim(e, d, a)
                                     for a, (e, d) in enumerate(zip(index, x.shape))))


def _strided_slice_grad_ref(g, like, *, index):
    out = np.zeros(like.shape, g.dtype)
    out[_np_index(index)] = g
    return out


register("strided_slice", lower=rules.strided_slice, infer=_strided_slice_infer,
         ref=lambda x, *, index: x[_np_index(index)],
         grad=lambda node, g: [apply("strided_slice_grad", [g, node.inputs[0]],
                                     index=node.attrs["index"])],
         kind="view", view="reorder", permuted=_per_axis_permuted("index"),
         doc="a strided box of x (one int, slice or None entry per axis)")

register("strided_slice_grad", lower=rules.strided_slice_grad,
         infer=lambda g, like, *, index: TensorType(g.dtype, like.shape),
         ref=_strided_slice_grad_ref,
         grad=lambda node, gg: [strided_slice(gg, node.attrs["index"]), None],
         kind="view", view="reorder",
         doc="g placed where strided_slice took it from, zeros elsewhere")


def strided_slice(x, index):
    """x[index] for one strided_slice entry per axis (see above), every axis kept."""
    if builtins.all(e is None for e in index):
        return x
    return apply("strided_slice", [x], index=tuple(index))


def _resolved(entry, dim):
    """The entry in its canonical form for a known dim."""
    if isinstance(entry, int):
        # an out-of-range int stays as it is, for the op's inference to report
        return entry % dim if -dim <= entry < dim else entry
    start, stop, step = slice(*entry).indices(dim)
    count = len(range(start, stop, step))
    if (start, count, step) == (0, dim, 1):
        return None
    stop = start + count * step
    return (start, stop if stop >= 0 else None, step)


def _slice_entry(s):
    try:
        start, stop, step = (None if v is None else operator.index(v)
                             for v in (s.start, s.stop, s.step))
    except TypeError:
        raise GraphcError(f"slice bounds must be ints or None, got {s}; to pick positions "
                          "held in a tensor use gc.gather") from None
    if step == 0:
        raise ShapeError(f"slice step cannot be zero (in {s})")  # a ValueError, as in numpy
    step = 1 if step is None else step
    if start == 0 and step > 0:  # the same selection as from None, so the same node
        start = None
    return None if (start, stop, step) == (None, None, 1) else (start, stop, step)


def _index_item(item):
    if item is None or item is Ellipsis or isinstance(item, slice):
        return item
    if isinstance(item, numbers.Integral) and not isinstance(item, (bool, np.bool_)):
        return int(item)
    if isinstance(item, (Tensor, list, np.ndarray, bool, np.bool_)):
        raise GraphcError(f"indexing with a {type(item).__name__} is advanced indexing, which "
                          "graphc does not support; use gc.gather(x, indices, axis)")
    raise GraphcError(f"unsupported index {item!r}: expected an int, a slice, None or ...")


def _expand_ellipsis(items, x):
    """items with the Ellipsis (or the missing trailing axes) spelled out as whole slices."""
    ellipses = [i for i, item in enumerate(items) if item is Ellipsis]
    if len(ellipses) > 1:
        raise IndexError_("an index can only have a single ellipsis ('...')")
    used = builtins.sum(item is not None and item is not Ellipsis for item in items)
    if used > x.rank:
        raise IndexError_(f"too many indices for '{x.name}' of shape {format_shape(x.shape)}: "
                          f"{used} axes indexed, the tensor has {x.rank}")
    at = ellipses[0] if ellipses else len(items)
    return items[:at] + (slice(None),) * (x.rank - used) + items[at + 1:]


def getitem(x, index):
    """numpy basic indexing: ints (negative too), slices with steps, None and Ellipsis."""
    x = _tensor(x)
    items = tuple(map(_index_item, index if isinstance(index, tuple) else (index,)))
    entries, dropped, new_axes = [], [], []
    for item in _expand_ellipsis(items, x):
        if item is None:
            new_axes.append(len(entries) - len(dropped) + len(new_axes))
        elif isinstance(item, slice):
            entries.append(_slice_entry(item))
        else:
            dropped.append(len(entries))
            entries.append(item)
    out = strided_slice(x, [_resolved(e, d) if e is not None and _known(d) else e
                            for e, d in zip(entries, x.shape)])
    out = squeeze(out, dropped)
    for axis in new_axes:
        out = expand_dims(out, axis)
    return out


# ---- pad --------------------------------------------------------------------------------------
def _pad_infer(x, *, paddings, value):
    if len(paddings) != x.rank or builtins.any(
            len(p) != 2 or not builtins.all(isinstance(v, int) and v >= 0 for v in p)
            for p in paddings):
        raise ShapeError(f"pad expects one [before, after] pair of non-negative ints per axis "
                         f"({x.rank} pairs for shape {format_shape(x.shape)}), got "
                         f"{[list(p) for p in paddings]}")
    return TensorType(x.dtype, tuple(
        d if before + after == 0 else d + before + after if _known(d) else Dim()
        for d, (before, after) in zip(x.shape, paddings)))


def _unpadded(before, after):
    """The strided_slice entry that takes back an axis padded by (before, after)."""
    return None if before == after == 0 else (before, -after if after else None, 1)


register("pad", lower=rules.pad, infer=_pad_infer,
         ref=lambda x, *, paddings, value: np.pad(x, paddings, constant_values=value),
         grad=lambda node, g: [strided_slice(g, [_unpadded(*p) for p in node.attrs["paddings"]])],
         kind="view", view="reorder", permuted=_per_axis_permuted("paddings"),
         doc="x surrounded by a constant, numpy's pad in constant mode")


def pad(x, paddings, constant_values=0, name=None):
    """x padded with `constant_values`: paddings holds one [before, after] pair per axis, as in
    numpy and TF (constant mode only)."""
    x = _tensor(x)
    value = constant_values
    if not isinstance(value, numbers.Real) or (not x.dtype.is_float and value != int(value)):
        raise DTypeError(f"pad: constant_values must be a number that fits {x.dtype.name}, "
                         f"got {value!r}")
    paddings = tuple(tuple(p) for p in paddings)
    return apply("pad", [x], name=name, paddings=paddings, value=value)


# ---- gather -----------------------------------------------------------------------------------
def _gather_infer(params, indices, *, axis):
    if not indices.dtype.is_integer:
        raise DTypeError(f"gather expects int32 or int64 indices, got {indices.dtype.name}")
    return TensorType(params.dtype, params.shape[:axis] + indices.shape + params.shape[axis + 1:])


def _check_indices(op, indices, shape, axis):
    n = shape[axis]
    bad = (indices < 0) | (indices >= n)
    if bad.any():
        position = tuple(int(i) for i in np.argwhere(bad)[0])
        raise IndexError_(f"{op}: index {indices[position]} at position {position} of the "
                          f"indices is out of range for axis {axis} of params with shape "
                          f"{format_shape(shape)}: expected 0 <= index < {n}")


def _gather_ref(params, indices, *, axis):
    _check_indices("gather", indices, params.shape, axis)
    return np.take(params, indices, axis=axis)


def _gather_grad_ref(g, indices, like, *, axis):
    _check_indices("gather_grad", indices, like.shape, axis)
    out = np.zeros(like.shape, g.dtype)
    np.add.at(out, (slice(None),) * axis + (indices,), g)  # repeated indices accumulate
    return out


# gather loads through an index map that reads the indices; its gradient, onehot(indices)^T @ g
# along the axis, is a contraction computed as a scatter-add (scatter.gather_grad).
register("gather", lower=rules.gather, infer=_gather_infer, ref=_gather_ref,
         grad=lambda node, g: [apply("gather_grad", [g, node.inputs[1], node.inputs[0]],
                                     axis=node.attrs["axis"]), None],
         kind="view", view="reorder", doc="numpy's take along an axis; indices must lie in [0, n)")

register("gather_grad",
         infer=lambda g, indices, like, *, axis: TensorType(g.dtype, like.shape),
         ref=_gather_grad_ref,
         grad=lambda node, gg: [gather(gg, node.inputs[1], node.attrs["axis"]), None, None],
         kind="scatter", lower_group=scatter.gather_grad,
         doc="g added into zeros of params' shape at the gathered positions")


def gather(params, indices, axis=0, name=None):
    """params[..., indices, ...] along `axis` (numpy's take) for int32/int64 indices of any
    rank. Indices must lie in [0, n): negative ones are not wrapped, as in TF, and any index
    out of range raises IndexError_ at run time."""
    params = _tensor(params)
    indices = as_tensor(indices, graph=params.graph)
    axis = _axis_of(params, axis, "gather")
    return apply("gather", [params, indices], name=name, axis=axis)


# ---- one_hot ----------------------------------------------------------------------------------
def _one_hot_infer(indices, *, depth, on, off, dtype, axis):
    if not indices.dtype.is_integer:
        raise DTypeError(f"one_hot expects int32 or int64 indices, got {indices.dtype.name}")
    return TensorType(dtype, indices.shape[:axis] + (depth,) + indices.shape[axis:])


def _one_hot_ref(indices, *, depth, on, off, dtype, axis):
    positions = np.arange(depth).reshape((depth,) + (1,) * (indices.ndim - axis))
    return np.where(np.expand_dims(indices, axis) == positions, on, off).astype(dtype.np)


register("one_hot", lower=rules.one_hot, infer=_one_hot_infer, ref=_one_hot_ref, grad=NOT_DIFFERENTIABLE,
         kind="elementwise", permuted=does_not_commute, doc="on_value where the position along axis equals the index")


def one_hot(indices, depth, on_value=1, off_value=0, dtype=dtypes.float32, axis=-1, name=None):
    """A new axis of size `depth` at `axis` holding on_value at each index, off_value elsewhere.
    As in TF, an index outside [0, depth) (negative ones included) gives a row of off_value
    only, not an error."""
    indices = as_tensor(indices)
    if not isinstance(depth, numbers.Integral) or depth < 0:
        raise ShapeError(f"one_hot depth must be a non-negative int, got {depth!r}")
    return apply("one_hot", [indices], name=name, depth=int(depth), on=on_value, off=off_value,
                 dtype=dtypes.as_dtype(dtype), axis=normalize_axis(axis, indices.rank + 1))


# ---- prod_of_others (the gradient of prod) ----------------------------------------------------
def _prod_of_others_ref(x, *, axes):
    # Exclusive products from the left and from the right, multiplied: no division, so zeros
    # in x give exact results.
    rest = [a for a in range(x.ndim) if a not in axes]
    moved = np.transpose(x, rest + list(axes))
    flat = moved.reshape(moved.shape[:len(rest)] + (int(np.prod([x.shape[a] for a in axes])),))
    ones = np.ones_like(flat[..., :1])
    before = np.cumprod(np.concatenate([ones, flat[..., :-1]], axis=-1), axis=-1)
    after = np.cumprod(np.concatenate([ones, flat[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
    return np.transpose((before * after).reshape(moved.shape), np.argsort(rest + list(axes)))


def _prod_of_others_grad(node, g):
    raise GradientError("second-order gradient of prod is not supported", node)


register("prod_of_others", infer=lambda x, *, axes: x, ref=_prod_of_others_ref,
         grad=_prod_of_others_grad, kind="host",
         doc="for each element, the product of the other elements along axes")


def prod_of_others(x, axes):
    """For each element of x, the product of all other elements in its group along `axes`."""
    return apply("prod_of_others", [x], axes=tuple(axes))
