"""The layout pass: transposes sink through the ops that commute with them and cancel.

ONNX's NCHW convolutions and pools import as graphc's NHWC ops between two transposes, so a
chain conv -> batch norm -> relu -> pool -> conv holds a transpose back to NCHW after each op
and one to NHWC before the next. Moving every transpose below the ops that commute with it
(OpSpec.permuted: elementwise ops, whose other operands are permuted too, reductions, concat,
pad, strided slices, reshapes that keep the transpose's runs of axes together) brings it next
to the next one, its inverse, and the pair cancels: the chain runs in NHWC with one transpose
where it starts and one where it ends. A transpose moves only where the op's other operands
need no transpose of their own: each is the same transpose, a constant (permuted here once),
or a tensor with at most one axis longer than 1 (a reshape moves it). A reshape that regroups
axes the transpose reorders (a channel shuffle) keeps a transpose above it, of the reordered
run only.
"""
import numpy as np

from ..ir.graph import FrozenArray
from ..ops import shape as S
from ..ops.registry import apply, inverse_permutation, through_transpose
from .rewrite import AnyNode, Op, Rule, Var


def _transposed_perm(node):
    """The perm of node's first transposed input, if the node has one and one output."""
    if len(node.outputs) != 1 or not node.inputs:
        return None
    for t in node.inputs:
        if t.node.op == "transpose":
            return t.node.attrs["perm"]
    return None


def _moves(node):
    perm = _transposed_perm(node)
    return perm is not None and through_transpose(node, perm) is not None


def _undone(t, perm, inverse):
    """t, an operand of an op over tensors transposed by `perm`, as the op needs it once the
    transpose moved below it (numpy broadcasting lines the ranks up on the right); None where
    that would cost a transpose of its own."""
    rank = len(perm)
    if t.node.op == "transpose" and t.node.attrs["perm"] == perm:
        return t.node.inputs[0]
    if t.rank == 0:
        return t
    if t.rank > rank:
        return None
    full = (1,) * (rank - t.rank) + tuple(t.shape)
    if _constant_array(t) is not None:
        return _transposed_constant(t, full, inverse)
    long_axes = [d for d in full if d != 1]
    if len(long_axes) <= 1 and all(isinstance(d, int) for d in full):
        return S.reshape(t, tuple(full[i] for i in inverse))
    return None


def _constant_array(t):
    """t's value where t is a constant or a reshape of one (too large for constant folding,
    as imported weights are); else None."""
    if t.node.op == "reshape":
        t = t.node.inputs[0]
    return t.node.attrs["value"].array if t.node.op == "constant" else None


def _transposed_constant(c, shape, perm):
    """Constant c, reshaped to `shape`, transposed by `perm`: a constant computed here."""
    value = np.transpose(_constant_array(c).reshape(shape), perm)
    return apply("constant", [], value=FrozenArray(value), dtype=c.dtype)


def _sink(m):
    """The matched op over its inputs' values before the transpose, transposed after it."""
    node = m.y.node
    perm = _transposed_perm(node)
    inverse = inverse_permutation(perm)
    inputs = [_undone(t, perm, inverse) for t in node.inputs]
    if any(t is None for t in inputs):
        return None
    attrs, out_perm, *first = through_transpose(node, perm)
    if first:
        inputs[0] = S.transpose(inputs[0], first[0])
    return S.transpose(apply(node.op, inputs, **attrs), out_perm)


def _only_unit_axes_move(node):
    """Whether the transpose keeps the order of the axes longer than 1 (a reshape then; one
    that reshape can express: at most one run-time dim)."""
    x = node.inputs[0]
    kept = [p for p in node.attrs["perm"] if x.shape[p] != 1]
    return kept == sorted(kept) and sum(not isinstance(d, int) for d in x.shape) <= 1


x = Var("x")

LAYOUT = [
    Rule("op_below_transpose", AnyNode(_moves, name="y"), _sink,
         "`op(transpose x)` to `transpose(op x)` where op commutes with it"),
    Rule("transpose_transpose", Op("transpose", Op("transpose", x, name="t"), name="outer"),
         lambda m: S.transpose(m.x, [m.t.node.attrs["perm"][p]
                                     for p in m.outer.node.attrs["perm"]]),
         "`transpose(transpose x)` to one transpose (none for the identity)"),
    Rule("transpose_of_constant",
         Op("transpose", Var("c", lambda t: _constant_array(t) is not None), name="t"),
         lambda m: _transposed_constant(m.c, m.c.shape, m.t.node.attrs["perm"]),
         "a transpose of a constant (or of its reshape) to the transposed constant (imported "
         "weights)"),
    Rule("transpose_of_unit_axes", Op("transpose", x, where=_only_unit_axes_move,
                                      name="t"),
         lambda m: S.reshape(m.x, m.t.shape), "a transpose moving only axes of length 1 to a "
         "reshape"),
]
