"""Lowering: one fusion group (graphc.passes.fusion.KernelGroup) -> kernel IR loop nests.

A group's outputs are stored from one loop nest over its space: the kept axes outside (the
first of them parallel), the reduction axes inside. Each stored value is built by asking for a
tensor's value at an index: a tensor computed outside the group is a load, one computed inside
is its op's `lower` rule applied at that index, which in turn asks for its inputs' values at the
indices it needs (views just move the index). A reduction becomes a Reduce expression over new
loop variables; the code generators compute it once per iteration of the loops it depends on,
so a softmax row kernel computes its max and its sum once per row.

Matrix products become Gemm statements (float32/float64) with their prologues materialized
or read through strides, and their epilogues as a loop nest over the product. Groups the rules
cannot lower raise Unsupported; the runtime runs those through the numpy reference instead.
"""
import itertools
import sys
import math

from . import ir
from .ir import Unsupported

GEMM_DTYPES = ("float32", "float64")


class Slots:
    """Where the kernels of one program find things: the runtime's numbering of buffers
    (one per tensor, plus scratch) and of run-time dims, and its table of run-time errors."""

    def __init__(self):
        self.buffers = {}  # (node id, output index) -> slot
        self.buffer_info = []  # slot -> (dtype name, shape tuple) ; shape dims int or Dim
        self.dims = {}  # id(Dim) -> slot
        self.dim_objects = []
        self.errors = []  # what -> (node, message format with {value})

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
        rule = t.node.spec.extra.get("lower") or default_rule(t.node)
        if rule is None:
            raise Unsupported(t.node.op)
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


def default_rule(node):
    """Elementwise ops whose kernel IR scalar op has their name lower to it directly."""
    if node.spec.kind != "elementwise" or node.op not in ir.ARITY:
        return None

    def rule(k, node, idx):
        args = [k.broadcast_input(node, i, idx) for i in range(len(node.inputs))]
        return ir.Op(node.op, tuple(args), node.outputs[0].dtype.name)
    return rule


# ---- loop nests -------------------------------------------------------------------------------
def lower_group(group, slots, name):
    """The kernels that compute `group` (a fusion KernelGroup), in order."""
    # values are built by recursion over the group's nodes: a fused chain of n ops nests
    # about 4n calls deep
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 8 * len(group.nodes) + 1000))
    try:
        return _lower_group(group, slots, name)
    finally:
        sys.setrecursionlimit(limit)


def _lower_group(group, slots, name):
    # an opaque op with a `lower` rule (a pool) is a loop nest over its output, like the rest
    own_rule = "lower" in group.root.spec.extra
    if group.kind in ("stateful", "opaque", "contraction") and not own_rule:
        # an op declares its own as `register(..., contraction=fn(group, slots, name))`
        lower = CONTRACTIONS.get(group.root.op) or group.root.spec.extra.get("contraction")
        if lower is None:
            raise Unsupported(group.root.op)
        return lower(group, slots, name)
    emitter = Emitter(group, slots)
    fits = [t for t in group.outputs if _same_size(_level_shape(group, t), t.shape)]
    nests = [(group.space, group.axes, fits, group.levels)] if fits else []
    # A multi-output node (split) gives its group its first output's space: its other
    # outputs loop over their own shapes.
    nests += [(t.shape, (), [t], {}) for t in group.outputs if t not in fits]
    return [loop_nest(emitter, group, space, axes, outputs, f"{name}_{i}" if i else name, levels)
            for i, (space, axes, outputs, levels) in enumerate(nests)]


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


def loop_nest(emitter, group, space, axes, outputs, name, levels=None):
    """One kernel storing `outputs` from loops over `space` (reduction axes innermost);
    `levels` (default the group's) says where each output's node is computed."""
    slots = emitter.slots
    extents = emitter.dims(space)
    vars_ = [ir.Var(f"i{a}") for a in range(len(space))]
    kept = [a for a in range(len(space)) if a not in axes]
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
        flat = ir.linear([vars_[a] for a in at],
                         ir.contiguous_strides([extents[a] for a in at]))
        idx = ir.unflatten(flat, emitter.dims(t.shape)) if tuple(
            space[a] for a in at) != t.shape else tuple(vars_[a] for a in at)
        where.append(ir.Store(slots.buffer(t), flat, emitter.value(t, tuple(idx))))
    body = tuple(outer)
    if inner:
        body += nest([(vars_[a], extents[a]) for a in axes], tuple(inner))
    body = nest([(vars_[a], extents[a]) for a in kept], body, parallel=True)
    return ir.Kernel(name, body, {}, tuple(n.name for n in group.nodes))


def nest(loops, body, parallel=False):
    for depth, (var, extent) in reversed(list(enumerate(loops))):
        body = (ir.Loop(var, extent, body, parallel and depth == 0),)
    return body


# ---- matrix products ---------------------------------------------------------------------------
def _strided(emitter, t):
    """(slot, offset, strides) when tensor t can be read in place through strides: it is
    computed outside the group, or is a transpose of such a tensor. Else None."""
    node = t.node
    if node.id not in emitter.members:
        dims = emitter.dims(t.shape)
        return emitter.slots.buffer(t), ir.const(0), ir.contiguous_strides(dims)
    if node.op == "transpose":
        inner = _strided(emitter, node.inputs[0])
        if inner:
            slot, offset, strides = inner
            return slot, offset, [strides[p] for p in node.attrs["perm"]]
    return None


def _operand(emitter, t, name, kernels, group):
    """t readable through strides, materializing it into scratch first if it must be."""
    found = _strided(emitter, t)
    if found:
        return found
    slot = emitter.slots.scratch(t.dtype.name, t.shape)
    dims = emitter.dims(t.shape)
    vars_ = [ir.Var(f"i{a}") for a in range(len(t.shape))]
    store = ir.Store(slot, ir.linear(vars_, ir.contiguous_strides(dims)),
                     emitter.value(t, tuple(vars_)))
    kernels.append(ir.Kernel(f"{name}_{len(kernels)}", nest(list(zip(vars_, dims)), (store,),
                                                             parallel=True), {},
                             tuple(n.name for n in group.nodes)))
    return slot, ir.const(0), ir.contiguous_strides(dims)


def lower_matmul(group, slots, name):
    node = group.root
    a, b = node.inputs
    out = node.outputs[0]
    if a.rank < 2 or b.rank < 2 or out.dtype.name not in GEMM_DTYPES:
        emitter = Emitter(group, slots)
        return [loop_nest(emitter, group, group.space, group.axes, group.outputs, name)]
    emitter = Emitter(group, slots)
    kernels = []
    a_slot, a_off, a_str = _operand(emitter, a, name, kernels, group)
    b_slot, b_off, b_str = _operand(emitter, b, name, kernels, group)
    c_slot = slots.buffer(out) if out in group.outputs else slots.scratch(out.dtype.name,
                                                                            out.shape)
    dims = emitter.dims(out.shape)
    c_str = ir.contiguous_strides(dims)
    batch = out.shape[:-2]
    bvars = [ir.Var(f"b{i}") for i in range(len(batch))]
    a_b = broadcast_index(a.shape[:-2], batch, bvars, emitter.dim)
    b_b = broadcast_index(b.shape[:-2], batch, bvars, emitter.dim)
    m, n, kk = dims[-2], dims[-1], emitter.dim(a.shape[-1])
    gemm = ir.Gemm(out.dtype.name, m, n, kk,
                   ir.Operand(a_slot, ir.add(a_off, ir.linear(a_b, a_str[:-2])), a_str[-2],
                              a_str[-1]),
                   ir.Operand(b_slot, ir.add(b_off, ir.linear(b_b, b_str[:-2])), b_str[-2],
                              b_str[-1]),
                   ir.Operand(c_slot, ir.linear(bvars, c_str[:-2]), c_str[-2], ir.const(1)))
    body = nest(list(zip(bvars, dims[:-2])), (gemm,))
    kernels.append(ir.Kernel(f"{name}_{len(kernels)}", body, {}, (node.name,)))
    rest = [t for t in group.outputs if t is not out]
    if rest:
        def product(idx):
            return ir.Load(c_slot, ir.linear(idx, c_str), out.dtype.name)
        epilogue = Emitter(group, slots, {(node.id, 0): product})
        kernels.append(loop_nest(epilogue, group, out.shape, (), rest,
                                 f"{name}_{len(kernels)}"))
    return kernels


CONTRACTIONS = {"matmul": lower_matmul}
