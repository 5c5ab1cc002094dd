"""Lowering: one fusion group (graphc.passes.fusion.FusionGroup) -> kernel IR loop nests.

A group's outputs are stored from one loop nest over its space: the kept axes outside (the
first of them parallel), the reduction axes inside. Each stored value is built by asking for a
tensor's value at an index: a tensor computed outside the group is a load, one computed inside
is its op's `lower` rule (OpSpec.lower) applied at that index, which in turn asks for its
inputs' values at the indices it needs (views just move the index). A reduction becomes a
Reduce expression over new loop variables; the code generators compute it once per iteration
of the loops it depends on, so a softmax row kernel computes its max and its sum once per row.

Contractions (matrix products, convolutions) and scatters lower their whole group through the
op's own `lower_group` rule (matmul_rules.py, conv_rules.py, scatter.py): Gemm statements with
their prologues materialized or read through strides, and their epilogues as a loop nest over
the product. Groups the rules cannot lower, and ops with neither rule (host and stateful ops),
raise Unsupported; the runtime runs those through the numpy reference instead.
"""
import itertools
import sys
import math

from ..ir import dtypes
from ..ops.registry import pieces_axis
from . import ir
from .ir import Unsupported
from .index_ranges import simplify_indices
from .legalize import legalize

# what a Gemm statement takes (kernel IR); a target's code generator may take fewer
GEMM_DTYPES = ("float16", "bfloat16", "float32", "float64")


class Slots:
    """Where the kernels of one program find things: the runtime's numbering of buffers
    (one per tensor, plus scratch) and of run-time dims, and its table of run-time errors;
    and the dtypes the target's Gemm takes (products of others run in a wider dtype)."""

    def __init__(self, gemm_dtypes=GEMM_DTYPES):
        self.gemm_dtypes = tuple(gemm_dtypes)
        self.buffers = {}  # (node id, output index) -> slot
        self.buffer_info = []  # slot -> (dtype name, shape tuple) ; shape dims int or Dim
        self.dims = {}  # id(Dim) -> slot
        self.dim_objects = []
        self.errors = []  # what -> (node, message format with {value})
        # uids of the arguments of a loop's body that are the same at every step of a run of
        # the loop (the compiler sets them where its target keeps packed copies of B)
        self.invariant = frozenset()
        self.packed_b = []  # the slots of Gemms' packed copies of B (Gemm.packed_b)
        self.gemm_epilogue = False  # whether Gemms take bias and relu (the target says)

    def buffer(self, tensor):
        key = (tensor.node.id, tensor.index)
        if key not in self.buffers:
            self.buffers[key] = self._new(tensor.dtype.name, tensor.shape)
        return self.buffers[key]

    def share(self, tensor, other):
        """`tensor` is held in the buffer of `other` (a tensor of its type: an assignment's
        output is its value)."""
        self.buffers[tensor.node.id, tensor.index] = self.buffer(other)

    def scratch(self, dtype, shape):
        return self._new(dtype, tuple(shape))

    def packed_copy(self, dtype, k, n):
        """A new slot for a Gemm's packed copy of a k x n B (ints), kept across runs."""
        size = ir.packed_b_elements(k, n, dtypes.BY_NAME[dtype].itemsize)
        self.packed_b.append(self._new(dtype, (size,)))
        return self.packed_b[-1]

    def _new(self, dtype, shape):
        self.buffer_info.append((dtype, shape))
        return len(self.buffer_info) - 1

    def dim(self, d):
        if isinstance(d, int):
            return ir.const(d)
        if id(d) not in self.dims:
            self.dims[id(d)] = len(self.dim_objects)
            self.dim_objects.append(d)
        return ir.Dim(self.dims[id(d)])

    def error(self, node, message):
        self.errors.append((node, message))
        return len(self.errors) - 1

    def size(self, slot):
        return ir.product(self.dim(d) for d in self.buffer_info[slot][1])


class Emitter:
    """Values of a group's tensors at symbolic indices; what an op's `lower` rule talks to."""

    def __init__(self, group, slots, overrides=None):
        self.members = {n.id for n in group.nodes}
        self.slots = slots
        self.memo = {}
        self.overrides = overrides or {}  # (node id, output index) -> fn(idx) -> Expr
        self._names = itertools.count()

    # -- for the rules -----------------------------------------------------------------------
    def value(self, tensor, idx):
        key = (tensor.node.id, tensor.index, tuple(idx))
        if key not in self.memo:
            self.memo[key] = self._compute(tensor, tuple(idx))
        return self.memo[key]

    def input(self, node, i, idx):
        return self.value(node.inputs[i], idx)

    def broadcast_input(self, node, i, idx):
        """Input i of node at the index numpy broadcasting maps output index idx to."""
        t = node.inputs[i]
        return self.value(t, broadcast_index(t.shape, node.outputs[0].shape, idx, self.dim))

    def dim(self, d):
        return self.slots.dim(d)

    def dims(self, shape):
        return [self.slots.dim(d) for d in shape]

    def var(self, hint="r"):
        return ir.Var(f"{hint}{next(self._names)}")

    def reduce(self, op, shape, axes, value_at, dtype):
        """Reduce(op) over `axes` of a space of `shape`; value_at(vars) gives the value at the
        index whose reduced axes are `vars`."""
        if not axes:  # a reduction over no axes is its one value (code generators expect loops)
            return value_at([])
        loops = [(self.var(), self.dim(shape[a])) for a in axes]
        return ir.Reduce(op, tuple(loops), value_at([v for v, _ in loops]), dtype)

    def error(self, node, message):
        return self.slots.error(node, message)

    # -- internals ---------------------------------------------------------------------------
    def _compute(self, t, idx):
        key = (t.node.id, t.index)
        if key in self.overrides:
            return self.overrides[key](idx)
        if t.node.id not in self.members:
            return self.load(t, idx)
        rule = t.node.spec.lower
        if rule is None:
            raise Unsupported(f"no lowering rule for op '{t.node.op}'")
        out = rule(self, t.node, idx) if len(t.node.outputs) == 1 else rule(self, t.node, idx,
                                                                               t.index)
        if t.dtype.name == "bfloat16" and not isinstance(out, ir.Load):
            out = ir.op("round_bfloat16", out, dtype="bfloat16")
        return out

    def load(self, t, idx):
        slot = self.slots.buffer(t)
        return ir.Load(slot, ir.linear(idx, ir.contiguous_strides(self.dims(t.shape))),
                       t.dtype.name)


def broadcast_index(small, big, idx, dim):
    """The index into `small` that numpy broadcasting reads for index idx of `big`. A
    symbolic dim that is not big's own may be 1 at run time: min(i, d - 1) reads the right
    element either way (0 when d is 1, i when d equals big's dim)."""
    lead = len(big) - len(small)
    out = []
    for a, d in enumerate(small):
        i, full = idx[a + lead], big[a + lead]
        if d is full or (d == full and isinstance(d, int)):
            out.append(i)
        elif d == 1:
            out.append(ir.const(0))
        else:
            out.append(ir.op("minimum", i, ir.sub(dim(d), ir.const(1))))
    return tuple(out)


# ---- loop nests -------------------------------------------------------------------------------
def lower_group(group, slots, name):
    """The kernels that compute `group` (a FusionGroup), in order, legal (their compound
    scalar ops expanded: legalize.py)."""
    # values are built by recursion over the group's nodes: a fused chain of n ops nests
    # about 4n calls deep
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 8 * len(group.nodes) + 1000))
    try:
        return legalize(simplify_indices(_lower_group(group, slots, name)))
    finally:
        sys.setrecursionlimit(limit)


def _lower_group(group, slots, name):
    spec = group.root.spec
    if spec.lower_group is not None:
        return spec.lower_group(group, slots, name)
    if spec.lower is None:
        raise Unsupported(f"no kernel lowering for op '{group.root.op}'")
    emitter = Emitter(group, slots)
    fits = [t for t in group.outputs if (_same_size(_level_shape(group, t), t.shape)
                                         or _laid_over_space(group, t) is not None)
            and not _stored_in_a_loop_that_may_not_run(group, t)]
    nests = [(group.space, group.axes, fits, group.levels)] if fits else []
    # A multi-output node (split) gives its group its first output's space, and a scalar
    # output may not be stored there (above): those outputs loop over their own shapes.
    fitting = set(fits)  # not `in` a list, which would compare tensors with (elementwise) ==
    nests += [(t.shape, (), [t], {}) for t in group.outputs if t not in fitting]
    return [loop_nest(emitter, group, space, axes, outputs, f"{name}_{i}" if i else name, levels)
            for i, (space, axes, outputs, levels) in enumerate(nests)]


def _laid_over_space(group, t):
    """The axis along which t's node lays inputs of the group's space side by side (a group
    that fusion started at a concat of equal pieces), else None."""
    axis = pieces_axis(t.node)
    if axis is None or group.levels.get(t.node.id, "full") != "full" \
            or t.node.inputs[0].shape != tuple(group.space):
        return None
    return axis


def _stored_in_a_loop_that_may_not_run(group, t):
    """Whether t is computed at the scalar level of a space whose kept loops, which its store
    sits in (loop_nest), may have no iterations: an extent of 0, or one known only at run
    time (exp(x) fetched beside e + exp(x) for an empty e was never stored)."""
    kept = [d for a, d in enumerate(group.space) if a not in group.axes]
    return group.levels.get(t.node.id) == "scalar" and any(
        not (isinstance(d, int) and d > 0) for d in kept)


def _level_shape(group, t):
    """The shape of the part of group's space where t's node is computed."""
    level = group.levels.get(t.node.id, "full")
    if level == "scalar":
        return ()
    if level == "reduced":
        return tuple(d for a, d in enumerate(group.space) if a not in group.axes)
    return group.space


def _same_size(a, b):
    """Whether shapes a and b provably hold as many elements."""
    def size(shape):
        return (math.prod(d for d in shape if isinstance(d, int)),
                sorted(id(d) for d in shape if not isinstance(d, int)))
    return size(a) == size(b)


def loop_nest(emitter, group, space, axes, outputs, name, levels=None, split_two=False):
    """One kernel storing `outputs` from loops over `space` (reduction axes innermost);
    `levels` (default the group's) says where each output's node is computed. `split_two`:
    the parallel loop runs over the first two axes of a space without reduction axes as one
    (threads split images and their rows, however few images a run has)."""
    slots = emitter.slots
    extents = emitter.dims(space)
    # an axis of extent 1 is no loop (index 0), so the parallel loop is the first kept axis
    # with more than one position, and indices do not depend on a variable that never moves
    vars_ = [ir.const(0) if d == 1 and isinstance(d, int) else ir.Var(f"i{a}")
             for a, d in enumerate(space)]
    kept = [a for a in range(len(space)) if a not in axes]
    parallel = _moving(vars_, extents, kept)
    if split_two and not axes and len(space) > 2:
        row = ir.Var("row")
        vars_[:2] = ir.unflatten(row, extents[:2])
        parallel = [(row, ir.mul(*extents[:2]))] + _moving(vars_, extents, kept[2:])
    levels = group.levels if levels is None else levels
    outer, inner = [], []
    for t in outputs:
        level = levels.get(t.node.id, "full")
        if level == "scalar":
            at, where = [], outer
        elif level == "reduced" and axes:
            at, where = kept, outer
        else:
            at, where = range(len(space)), inner if axes else outer
        pieces = _laid_over_space(group, t)
        if pieces is not None:  # each input at its offset along the axis
            where.extend(_piece_stores(emitter, t, pieces, vars_))
            continue
        flat = ir.linear([vars_[a] for a in at],
                         ir.contiguous_strides([extents[a] for a in at]))
        idx = ir.unflatten(flat, emitter.dims(t.shape)) if tuple(
            space[a] for a in at) != t.shape else tuple(vars_[a] for a in at)
        where.append(ir.Store(slots.buffer(t), flat, emitter.value(t, tuple(idx))))
    body = tuple(outer)
    if inner:
        body += nest(_moving(vars_, extents, axes), tuple(inner))
    body = nest(parallel, body, parallel=True)
    return ir.Kernel(name, body, {}, tuple(n.name for n in group.nodes))


def _piece_stores(emitter, t, axis, vars_):
    """Stores of t (inputs of one shape side by side along `axis`) from a loop nest over one
    input's shape: input j at index idx goes to idx shifted by j pieces along the axis."""
    node, idx = t.node, tuple(vars_)
    strides = ir.contiguous_strides(emitter.dims(t.shape))
    size = emitter.dim(node.inputs[0].shape[axis])
    stores = []
    for j, piece in enumerate(node.inputs):
        at = idx[:axis] + (ir.add(idx[axis], ir.mul(ir.const(j), size)),) + idx[axis + 1:]
        stores.append(ir.Store(emitter.slots.buffer(t), ir.linear(at, strides),
                               emitter.value(piece, idx)))
    return stores


def _moving(vars_, extents, axes):
    """(variable, extent) of the axes among `axes` that are loops."""
    return [(vars_[a], extents[a]) for a in axes if isinstance(vars_[a], ir.Var)]


def nest(loops, body, parallel=False):
    for depth, (var, extent) in reversed(list(enumerate(loops))):
        body = (ir.Loop(var, extent, body, parallel and depth == 0),)
    return body
