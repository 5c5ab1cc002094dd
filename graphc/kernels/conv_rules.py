"""Lowering of conv2d and its two gradient ops (NHWC input, HWIO filters) to matrix products.

Each op becomes one Gemm over the *patches* of its input: the matrix whose row m = (n, oh, ow)
holds, at column k = (kh, kw, ci), the input at (n, oh*s + kh*d - pad, ow*s + kw*d - pad, ci),
or 0 where that falls in the padding (s, d: stride, dilation; pad as TensorFlow pads).
- conv2d:                 out (M x CO) = patches (M x K) @ filters (K x CO)
- conv2d_backprop_filter: df (K x CO)  = patches^T (K x M) @ g (M x CO)
- conv2d_backprop_input:  dpatches (M x K) = g (M x CO) @ filters^T (CO x K); dx[n, h, w, ci]
  then gathers, over the taps (kh, kw), the dpatches entry of the output cell that read (h, w)
  through that tap, if any (col2im as a gather: each input cell is written once, and no
  stride wastes work).
Products run in the op's dtype for float32 and float64; for float16 and bfloat16 in the
target's product dtype (products.compute_dtype: half Gemms on CUDA's tensor cores, float32
products of operands cast while copied on the CPU), but the input gradient's in float32 on
every target, since its gather sums the taps in the product's dtype. Prologues
fused into the group are computed while the patches are copied; epilogues in a loop over the
output, reading the product, as for matmul.

The patches are copied into a scratch buffer (im2col) by a loop nest whose innermost loop runs
along the channels, contiguous in both buffers (vector moves: the kernels' alias scopes tell
LLVM the two buffers are apart); the CPU's Gemm then packs the patches through its vector
paths. The copy costs about 0.3 ms (9 MB written, then read back) beside a 1 ms product at
W5's second convolution. On CUDA the copy is dropped and the product reads the patches from x
as it loads its tiles (implicit GEMM: codegen/cuda/implicit_operands.py rewrites the kernels).

A conv2d of small patches (at most DIRECT_PATCH entries: a first layer of one or two input
channels) copies nothing and calls no Gemm: each output element sums its taps' products, in
the loop over the output that also computes the epilogue (direct_conv2d). A Gemm would run
with a K of a few taps, and the copies of patches and product would cost more than the sums.
So does an input gradient whose taps times output channels are as few: its gather computes
each dpatches entry it reads, a sum over the output channels, in place.
"""
import itertools
import math
from dataclasses import dataclass

from . import ir
from . import lowering_rules as rules
from .lower import nest
from .products import WIDER, Products

# conv2d sums the taps of patches of at most this many entries (taps x input channels) in the
# loop over its output instead of copying patches for a Gemm. Measured with bias and relu,
# batch 64 of 28x28 images, 2 Zen 3 cores: patches of 3x3x1, 5x5x1 and 3x3x2 summed in place
# ran 2-4x faster than copy + Gemm, 2x2x4 as fast, 3x3x3 and 7x7x1 1.5-1.8x slower; input
# gradients of 3x3 taps x 1 or 2 output channels (of 8 or 16 input channels) 16-40x faster
# than Gemm + gather.
DIRECT_PATCH = 25


@dataclass(frozen=True)
class _Axis:
    """One spatial axis of a convolution, as index expressions."""
    size: ir.Expr  # of the input
    out: ir.Expr  # of the output
    stride: int
    dilation: int
    pad: ir.Expr  # padding before the input
    padded: bool  # whether any output reads padding

    def source(self, o, t):
        """The input position that output position o reads through tap t (may be outside)."""
        return ir.sub(ir.add(ir.mul(o, ir.const(self.stride)), ir.mul(t, ir.const(self.dilation))),
                      self.pad)


def _axes(k, node, out_shape):
    """The two spatial _Axis of node (any of the three ops; out_shape: conv2d's output's)."""
    x, filters = node.inputs[:2]
    a = node.attrs
    axes = []
    for i in range(2):
        size, out, taps = k.dim(x.shape[1 + i]), k.dim(out_shape[1 + i]), k.dim(filters.shape[i])
        s, d = a["strides"][i], a["dilations"][i]
        if a["padding"] == "VALID":
            axes.append(_Axis(size, out, s, d, ir.const(0), False))
            continue
        # SAME: (out - 1) * s + span - size cells of padding in all, the odd one after
        span = ir.add(ir.mul(ir.sub(taps, ir.const(1)), ir.const(d)), ir.const(1))
        total = ir.maximum(ir.sub(ir.add(ir.mul(ir.sub(out, ir.const(1)), ir.const(s)), span),
                                  size), ir.const(0))
        axes.append(_Axis(size, out, s, d, ir.floordiv(total, ir.const(2)),
                          total != ir.const(0)))
    return axes


def _both(a, b):
    if a is None:
        return b
    return ir.op("logical_and", a, b, dtype="bool")


class _Lowering(Products):
    """The kernels of one conv group, in order: copies of operands, the Gemm, the epilogue."""

    def __init__(self, group, slots, name, wider=False):
        """`wider`: float32 for 16-bit floats on every target (the input gradient and the
        direct conv2d sum taps in it), else the target's product dtype
        (products.compute_dtype)."""
        out = group.root.outputs[0].dtype.name
        super().__init__(group, slots, name, WIDER.get(out, out) if wider else None)
        # the tensor shaped like conv2d's output: g for the gradient ops
        inputs = self.node.inputs
        self.conv_out = inputs[2] if len(inputs) == 3 else self.out
        self.axes = _axes(self.k, self.node, self.conv_out.shape)

    def patch_shape(self):
        """(N, OH, OW, KH, KW, CI): the M x K matrix of patches."""
        return self.conv_out.shape[:3] + self.node.inputs[1].shape[:3]

    def tap(self, x, n, oh, ow, kh, kw, ci):
        """The patches' entry of x at output cell (n, oh, ow), tap (kh, kw), channel ci, in
        the compute dtype: x where that reads inside it, 0 in the padding."""
        inside, at = None, []
        for axis, o, t in zip(self.axes, (oh, ow), (kh, kw)):
            i = axis.source(o, t)
            if axis.padded:
                inside = _both(inside, rules._in_range(i, axis.size))
                i = rules._clamp(i, axis.size)
            at.append(i)
        value = self.cast(self.k.value(x, (n, *at, ci)))
        if inside is None:
            return value
        return rules._select(inside, value, ir.const(0, self.dtype))

    def patches(self, x):
        """A scratch copy of the patches of x."""
        shape = self.patch_shape()
        slot = self.slots.scratch(self.dtype, shape)
        dims = self.k.dims(shape)
        # threads split the output rows of all images (a batch of 1 uses them all too)
        row, rows = ir.Var("row"), ir.mul(dims[0], dims[1])
        n, oh = ir.unflatten(row, dims[:2])
        ow, kh, kw, ci = inner = [ir.Var(v) for v in ("ow", "kh", "kw", "ci")]
        store = ir.Store(slot, ir.linear([row, *inner], ir.contiguous_strides([rows, *dims[2:]])),
                         self.tap(x, n, oh, ow, kh, kw, ci))
        self.add((ir.Loop(row, rows, nest(list(zip(inner, dims[2:])), (store,)), parallel=True),))
        return slot

    def sizes(self):
        """(M, K, CO) of the op's matrices."""
        dims = self.k.dims(self.patch_shape())
        return (ir.product(dims[:3]), ir.product(dims[3:]),
                self.k.dim(self.node.inputs[1].shape[3]))

    def gemm(self, m, n, kk, a, b, c):
        """Gemm of operands given as (slot, row stride, column stride), C row-major."""
        def operand(slot, rows, cols):
            return ir.Operand(slot, ir.const(0), rows, cols)
        self.add((ir.Gemm(self.dtype, m, n, kk, operand(*a), operand(*b), operand(*c)),),
                 (self.node.name,))


def _small(sizes):
    """Whether a sum over `sizes` (the filters' dims it runs over) has at most DIRECT_PATCH
    terms, all known when compiling: summed in place, with no Gemm."""
    return all(isinstance(d, int) for d in sizes) and math.prod(sizes) <= DIRECT_PATCH


def _sum(terms):
    """terms added in order."""
    total = None
    for term in terms:
        total = term if total is None else ir.op("add", total, term)
    return total


def direct_conv2d(group, slots, name):
    """out[n, oh, ow, co] = the sum over the taps (kh, kw, ci) of patch entry * filter, taps
    unrolled in order, in one loop nest over the output that also computes the epilogue;
    threads split the output rows of all images (a batch of 1 uses them all too)."""
    low = _Lowering(group, slots, name, wider=True)
    x, filters = low.node.inputs
    taps = list(itertools.product(*map(range, filters.shape[:3])))

    def value_at(idx):
        n, oh, ow, co = idx
        at = [tuple(map(ir.const, t)) for t in taps]
        return _sum(ir.op("mul", low.tap(x, n, oh, ow, *t),
                          low.cast(low.k.value(filters, (*t, co)))) for t in at)
    return low.finish(value_at, split_two=True)


def conv2d(group, slots, name):
    """out (M x CO) = patches (M x K) @ filters (K x CO), or direct_conv2d for small patches."""
    if _small(group.root.inputs[1].shape[:3]):
        return direct_conv2d(group, slots, name)
    low = _Lowering(group, slots, name)
    x, filters = low.node.inputs
    m, k, co = low.sizes()
    a, b, c = low.patches(x), low.contiguous(filters), low.product_slot()
    low.gemm(m, co, k, (a, k, ir.const(1)), (b, co, ir.const(1)), (c, co, ir.const(1)))
    return low.finish(low.load(c, low.out.shape), stored=c)


def conv2d_backprop_filter(group, slots, name):
    """df (K x CO) = patches^T (K x M) @ g (M x CO)."""
    low = _Lowering(group, slots, name)
    x, filters, g = low.node.inputs
    m, k, co = low.sizes()
    a, b, c = low.patches(x), low.contiguous(g), low.product_slot()
    low.gemm(k, co, m, (a, ir.const(1), k), (b, co, ir.const(1)), (c, co, ir.const(1)))
    return low.finish(low.load(c, low.out.shape), stored=c)


def conv2d_backprop_input(group, slots, name):
    """dpatches (M x K) = g (M x CO) @ filters^T (CO x K), then dx gathered from dpatches;
    where the taps times the output channels are few (_small), no Gemm: each dpatches entry
    the gather reads is its sum over the output channels, computed there, and threads split
    the input rows of all images."""
    low = _Lowering(group, slots, name, wider=True)
    _, filters, g = low.node.inputs
    direct = _small((*filters.shape[:2], filters.shape[3]))
    if direct:
        def dpatch(at):
            n, oh, ow, kh, kw, ci = at
            return _sum(ir.op("mul", low.cast(low.k.value(g, (n, oh, ow, co))),
                              low.cast(low.k.value(filters, (kh, kw, ci, co))))
                        for co in map(ir.const, range(filters.shape[3])))
    else:
        m, k, co = low.sizes()
        a, b = low.contiguous(g), low.contiguous(filters)
        c = low.slots.scratch(low.dtype, low.patch_shape())
        low.gemm(m, k, co, (a, co, ir.const(1)), (b, ir.const(1), co), (c, k, ir.const(1)))
        dpatch = low.load(c, low.patch_shape())

    def tap(idx, kh, kw):
        """What input cell idx gets through tap (kh, kw): the dpatches entry of the output
        cell that reads it there, or 0 where no output cell does."""
        n, h, w, ci = idx
        ok, at = None, []
        for axis, i, t in zip(low.axes, (h, w), (kh, kw)):
            # o * stride = i + pad - t * dilation, for an output position o in range
            num = ir.sub(ir.add(i, axis.pad), ir.mul(t, ir.const(axis.dilation)))
            o = ir.floordiv(num, ir.const(axis.stride))
            if axis.stride > 1:
                ok = _both(ok, ir.op("equal", ir.mod(num, ir.const(axis.stride)), ir.const(0),
                                     dtype="bool"))
            ok = _both(ok, rules._in_range(o, axis.out))
            at.append(rules._clamp(o, axis.out))
        return rules._select(ok, dpatch((n, *at, kh, kw, ci)), ir.const(0, low.dtype))

    taps = filters.shape[:2]

    def gathered(idx):
        if all(isinstance(t, int) for t in taps):  # unrolled: taps added in order, in dtype
            return _sum(tap(idx, ir.const(kh), ir.const(kw))
                        for kh in range(taps[0]) for kw in range(taps[1]))
        return low.k.reduce("sum", filters.shape, (0, 1), lambda t: tap(idx, *t), low.dtype)
    return low.finish(gathered, split_two=direct)
