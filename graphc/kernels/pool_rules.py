"""Lowering rules of the 2-D pools (NHWC) and their gradients, with the reference's semantics.

A pool's output cell (n, oh, ow, c) reduces the window of input rows oh*sh - top + i
(i < kh) and columns ow*sw - left + j (j < kw). Padded cells read a clamped, in-bounds cell
and are replaced: by -inf for max (padding never wins; NaN propagates), by 0 for avg, which
divides by the number of real cells of its window.

The gradients are gathers, not scatters: input cell (n, h, w, c) sums over the windows that
contain it, at most ceil(kh / sh) * ceil(kw / sw) of them, the nearest window o = (h + top) //
sh first and earlier ones after (o - t for t < ceil(kh / sh)), masked where out of range. A
max-pool window sends its gradient to its first maximal cell (argmax over the taps in
row-major order, padded cells -inf, the first NaN winning), as the reference does, so each
window's argmax is recomputed by every cell it covers: ceil(k / s) times per axis.

Sizes may be run-time dims (a symbolic batch, height or width): the padding before is then
an index expression, max((out - 1) * s + k - size, 0) // 2, as TensorFlow's SAME rule has it.
"""
from dataclasses import dataclass

from . import ir
from .lowering_rules import _clamp, _in_range, _select


@dataclass(frozen=True)
class _Axis:
    """One spatial axis of a pool: input size, output size, window, stride, padding before
    (int64 expressions or ints)."""
    size: ir.Expr
    out: ir.Expr
    k: int
    stride: int
    before: ir.Expr

    def start(self, o):
        """The input position of window o's first tap (possibly in the padding)."""
        return ir.sub(ir.mul(o, ir.const(self.stride)), self.before)

    def real_cells(self, o):
        """How many of window o's taps lie inside the input."""
        start = self.start(o)
        stop = ir.op("minimum", ir.add(start, ir.const(self.k)), self.size)
        return ir.sub(stop, ir.op("maximum", start, ir.const(0)))

    def covering(self, position, t):
        """(window, valid): the t-th window containing input `position`, counted back from
        the nearest, and whether that window exists and really contains it."""
        shifted = ir.add(position, self.before)
        o = ir.sub(ir.floordiv(shifted, ir.const(self.stride)), t)
        inside = ir.op("less", ir.sub(shifted, ir.mul(o, ir.const(self.stride))),
                       ir.const(self.k), dtype="bool")
        return o, _and(_in_range(o, self.out), inside)

    @property
    def windows_per_cell(self):
        return -(-self.k // self.stride)


def _and(a, b):
    return ir.op("logical_and", a, b, dtype="bool")


def _axes(k, node, x, out):
    """The two spatial _Axis of a pool node reading x (NHWC) into out (NHWC)."""
    axes = []
    for a, kk, s in zip((1, 2), node.attrs["ksize"], node.attrs["strides"]):
        size, n_out = x.shape[a], out.shape[a]
        if node.attrs["padding"] == "VALID":
            before = ir.const(0)
        elif isinstance(size, int) and isinstance(n_out, int):
            before = ir.const(max((n_out - 1) * s + kk - size, 0) // 2)
        else:
            total = ir.add(ir.sub(ir.mul(ir.sub(k.dim(n_out), ir.const(1)), ir.const(s)),
                                  k.dim(size)), ir.const(kk))
            before = ir.floordiv(ir.op("maximum", total, ir.const(0)), ir.const(2))
        axes.append(_Axis(k.dim(size), k.dim(n_out), kk, s, before))
    return axes


def _window_value(k, x, axes, n, oh, ow, c, i, j, padded):
    """x at tap (i, j) of window (oh, ow), `padded` (a constant) where that is padding."""
    rows, cols = axes
    h, w = ir.add(rows.start(oh), i), ir.add(cols.start(ow), j)
    value = k.value(x, (n, _clamp(h, rows.size), _clamp(w, cols.size), c))
    return _select(_and(_in_range(h, rows.size), _in_range(w, cols.size)), value, padded)


def _over_window(k, op, x, axes, window, padded, dtype):
    """Reduce(op) over the taps of `window` (n, oh, ow, c); positions row-major."""
    i, j = k.var("kh"), k.var("kw")
    n, oh, ow, c = window
    value = _window_value(k, x, axes, n, oh, ow, c, i, j, padded)
    return ir.Reduce(op, ((i, ir.const(axes[0].k)), (j, ir.const(axes[1].k))), value, dtype)


def _count(axes, oh, ow, dtype):
    cells = ir.mul(axes[0].real_cells(oh), axes[1].real_cells(ow))
    return ir.Op("cast", (cells,), dtype)


def _over_covering(k, axes, idx, contribution, dtype):
    """Sum over the windows (oh, ow) covering input cell idx of contribution(oh, ow), whose
    indices are clamped in range; windows that do not exist or contain it add 0."""
    rows, cols = axes
    th, tw = k.var("th"), k.var("tw")
    oh, ok_h = rows.covering(idx[1], th)
    ow, ok_w = cols.covering(idx[2], tw)
    value = contribution(_clamp(oh, rows.out), _clamp(ow, cols.out))
    value = _select(_and(ok_h, ok_w), value, ir.const(0, dtype))
    return ir.Reduce("sum", ((th, ir.const(rows.windows_per_cell)),
                             (tw, ir.const(cols.windows_per_cell))), value, dtype)


# ---- the rules --------------------------------------------------------------------------------
def max_pool2d(k, node, idx):
    x, dtype = node.inputs[0], node.outputs[0].dtype.name
    axes = _axes(k, node, x, node.outputs[0])
    return _over_window(k, "max", x, axes, idx, ir.const(float("-inf"), dtype), dtype)


def avg_pool2d(k, node, idx):
    x, dtype = node.inputs[0], node.outputs[0].dtype.name
    axes = _axes(k, node, x, node.outputs[0])
    total = _over_window(k, "sum", x, axes, idx, ir.const(0, dtype), dtype)
    return ir.op("div", total, _count(axes, idx[1], idx[2], dtype))


def max_pool2d_grad(k, node, idx):
    x, g = node.inputs
    dtype = node.outputs[0].dtype.name
    axes = _axes(k, node, x, g)
    rows, cols = axes
    n, h, w, c = idx

    def routed(oh, ow):
        winner = _over_window(k, "argmax", x, axes, (n, oh, ow, c),
                              ir.const(float("-inf"), x.dtype.name), ir.INDEX)
        mine = ir.add(ir.mul(ir.sub(h, rows.start(oh)), ir.const(cols.k)),
                      ir.sub(w, cols.start(ow)))
        return _select(ir.op("equal", winner, mine, dtype="bool"),
                       k.value(g, (n, oh, ow, c)), ir.const(0, dtype))
    return _over_covering(k, axes, idx, routed, dtype)


def avg_pool2d_grad(k, node, idx):
    x, g = node.inputs
    dtype = node.outputs[0].dtype.name
    axes = _axes(k, node, x, g)
    n, c = idx[0], idx[3]

    def share(oh, ow):
        return ir.op("div", k.value(g, (n, oh, ow, c)), _count(axes, oh, ow, dtype))
    return _over_covering(k, axes, idx, share, dtype)
