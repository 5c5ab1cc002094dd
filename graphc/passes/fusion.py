"""Fusion: partition an optimized graph into fusion groups, for the kernel IR to lower.

One walk over the live nodes in reverse topological order. When a node is visited, every
consumer already has a group, so the node either joins one of its consumers' groups or starts
a group of its own; no node lands in two groups, so no work is ever duplicated. What fusion
asks about an op, its OpSpec says (graphc/ops/registry.py): its role (computed pointwise, an
anchor, alone in a group, or a buffer: sources are buffers, not groups), the inputs it reads
for their shape only, the axes it reduces, and whether a view keeps elements in order.

A group is one loop nest over an iteration space with a few *levels*: "full" (the space),
"reduced" (one value per row: the space without the group's reduction axes), "scalar" (computed
once), and for a contraction one level per operand (its prologue). A node joins a group when
every edge from it into the group fits a level: an elementwise edge keeps its level, a size-1
value is scalar, a value broadcast back over the group's axes is reduced, and an anchor (a
reduction or contraction) moves from its inputs' level to its output's. Anchors must agree:
one contraction per group, or reductions over one input shape and one set of axes (a row
kernel such as softmax). Views that reorder elements (transpose, slices, gathers) make the
nodes before them "on demand": computed at any index, so no anchor may feed them. A group
that starts at a view laying inputs of one shape side by side (a concat of the four gate
gradients of an LSTM) runs over one input's shape instead of the output's, so its inputs join
it as elementwise nodes and lowering stores each at its offset.

A node whose consumers sit in several groups joins one of them and is written out for the
others, unless one of those others reaches the chosen group: that would make a cycle. The
exception is a view that keeps its input's elements in order (a reshape) read only by the
prologues of contractions: it joins each of them, since it computes nothing and a GEMM reads it
through strides where its input lies, where writing it out would copy the whole buffer (the
stacked gate gradients of an LSTM, reshaped into rows for both weight gradients). Groups
keep the list of groups they feed; the check walks that DAG from the readers, skipping groups
that start after the target ends, under a budget (a search that runs out counts as a cycle),
which keeps the pass near linear. Every edge left between two groups records why.

A group takes at most MAX_GROUP_NODES nodes: one huge kernel compiles slower than several of
its parts (LLVM's code generation grows faster than linearly in a basic block's size).
"""
import heapq
from dataclasses import dataclass, field
from typing import NamedTuple

from ..errors import ShapeError
from ..ir.types import broadcast_shapes
from ..ops.registry import KINDS, pieces_axis

# Why fusion stopped at an edge between two groups.
TWO_CONSUMERS = "two consumers"
BROADCAST = "reduction then broadcast to a different shape"
CONTRACTION_INPUT = "contraction input"
CYCLE = "would create a cycle"
SPACE = "different iteration space"
SIZE = "kernel size limit"
# an op whose kind's role is "alone" is a group of one node: fusion stops at it for its kind
ALONE = {kind: f"{kind} op" for kind, about in KINDS.items() if about.role == "alone"}
STATEFUL = ALONE["stateful"]
REASONS = (TWO_CONSUMERS, BROADCAST, CONTRACTION_INPUT, CYCLE, SPACE, SIZE, *ALONE.values())
CYCLE_CHECK_BUDGET = 256  # groups one cycle check may visit
# A chain of 20,000 ops in one kernel spent 20 us per instruction in code generation, one cut
# into kernels of 1,000 nodes 10 us.
MAX_GROUP_NODES = 1000


class Boundary(NamedTuple):
    producer: str
    consumer: str
    reason: str


@dataclass(eq=False)
class FusionGroup:
    """Nodes that become one kernel. `kind` is "elementwise", "reduction" or "contraction" (by
    its anchor), or the kind of the one op of a group that stands alone ("window", "scatter",
    "host" or "stateful"). `space` is the shape its loop nest runs over, `axes` the axes of
    that space its reductions (or row broadcasts) run along, and `levels` says where each node
    is computed: "full", "reduced" (once per row), "scalar" (once) or "operand<i>"
    (a contraction's prologue)."""

    id: int
    kind: str
    nodes: list
    inputs: list
    outputs: list
    root: object
    space: tuple
    axes: tuple = ()
    levels: dict = field(default_factory=dict, repr=False)

    def describe(self):
        ops = [n.op for n in self.nodes]
        shown = ", ".join(ops[:6]) + (", ..." if len(ops) > 6 else "")
        dtype = self.root.outputs[0].dtype.name if self.root.outputs else ""
        axes = f" axes {self.axes}" if self.axes else ""
        return (f"{self.kind}[{shown}] over {dtype}[{', '.join(map(str, self.space))}]"
                f"{axes}")


@dataclass
class Partition:
    groups: list  # topological order
    group_of: dict  # node id -> FusionGroup
    boundaries: list  # Boundary for every data edge between two groups

    def summary(self):
        return "\n".join(f"g{g.id} {g.describe()}: {len(g.nodes)} nodes, {len(g.inputs)} in, "
                         f"{len(g.outputs)} out" for g in self.groups)


def partition(graph, outputs):
    """Group the nodes that `outputs` (a tensor or a sequence of them) need into kernels."""
    outputs = [outputs] if not isinstance(outputs, (list, tuple)) else list(outputs)
    return _Partitioner(graph, outputs).run()


def singletons(graph, outputs):
    """One fusion group per node, for compiling without the fusion pass."""
    outputs = list(outputs)
    fetched = set(outputs)
    live = [n for n in _live(graph, outputs) if n.spec.role is not None]
    consumers = {}
    for node in live:
        for i, t in enumerate(node.inputs):
            if _reads_data(node, i):
                consumers.setdefault(t, []).append(node)
    groups, group_of = [], {}
    for number, node in enumerate(live):
        reduction = node.spec.role == "reduction"
        space = node.inputs[0].shape if reduction else (
            node.outputs[0].shape if node.outputs else ())
        axes = tuple(sorted(_row_axes(node))) if reduction else ()
        keeps_size = reduction and _size(node.outputs[0].shape) == _size(space)
        level = "reduced" if reduction and not keeps_size else "full"
        kind = "elementwise" if node.spec.role == "pointwise" else node.spec.kind
        outs = [t for t in node.outputs if t in consumers or t in fetched]
        inputs = [t for i, t in enumerate(node.inputs) if _reads_data(node, i)]
        group = FusionGroup(number, kind, [node], list(dict.fromkeys(inputs)), outs, node,
                            space, axes, {node.id: level})
        groups.append(group)
        group_of[node.id] = group
    return Partition(groups, group_of, [])


# ---- shapes -------------------------------------------------------------------------------
def _size(shape):
    """An element count that compares equal only when provably equal: (int part, symbols)."""
    n, symbols = 1, []
    for d in shape:
        if isinstance(d, int):
            n *= d
        else:
            symbols.append(id(d))
    return n, tuple(sorted(symbols))


ONE = (1, ())


def _broadcast_axes(small, big):
    """The axes of `big` along which numpy broadcasting stretches `small` (None: it cannot)."""
    lead = len(big) - len(small)
    if lead < 0:
        return None
    axes = set()
    for axis, d in enumerate(big):
        s = small[axis - lead] if axis >= lead else 1
        if d == 1 or s is d or (s == d and isinstance(s, int)):
            continue
        if s != 1 and isinstance(s, int) and isinstance(d, int):
            return None
        if s == 1:
            axes.add(axis)
    return frozenset(axes)


def _row_axes(node):
    """The effective axes a reduction runs along (axes of size 1 do not count)."""
    shape = node.inputs[0].shape
    return frozenset(a for a in node.spec.reduced_axes(node) if shape[a] != 1)


def _keepdims(shape, axes):
    return tuple(1 if i in axes else d for i, d in enumerate(shape))


def _reads_data(node, index):
    return index not in node.spec.shape_only


def _broadcasts(node):
    """Whether node reads its inputs with numpy broadcasting into its output shape."""
    if node.spec.view == "broadcast":
        return True
    if node.spec.kind != "elementwise":
        return False
    try:
        shapes = [t.shape for i, t in enumerate(node.inputs) if _reads_data(node, i)]
        return broadcast_shapes(*shapes) == node.outputs[0].shape
    except ShapeError:
        return False


def _reorders(node):
    """A view whose elements are not its input's in order (transpose, slice, gather...)."""
    return node.spec.view == "reorder"


def _takes_contraction(group, level):
    """Whether a contraction whose output feeds group at level can join it (as its anchor)."""
    return group.kind == "elementwise" and group.axes is None and level is group.full


# ---- groups under construction --------------------------------------------------------------
class _Level:
    """One index space of a group."""

    __slots__ = ("shape", "size")

    def __init__(self, shape):
        self.shape = tuple(shape)
        self.size = _size(self.shape)


class _Rows(NamedTuple):
    """Rows a group would gain: its consumers broadcast a value back over `axes` of `shape`."""

    shape: tuple
    axes: frozenset


class _Group:
    def __init__(self, seq, kind, shape, node):
        self.seq = seq
        self.kind = kind
        self.full, self.scalar = _Level(shape), _Level(())
        self.reduced = None  # exists once axes does
        self.axes = None  # frozenset: the row axes, once a reduction or a broadcast sets them;
        # until then full.shape may change to any shape of the same size (elements in order)
        self.operands = ()  # a contraction's operand levels
        self.members, self.anchors, self.succ = [], [], set()
        self.minid = self.maxid = node.id

    def level_name(self, level):
        if level in self.operands:
            return f"operand{self.operands.index(level)}"
        return next(name for name in ("full", "reduced", "scalar")
                    if getattr(self, name) is level)


class _Partitioner:
    def __init__(self, graph, outputs):
        self.graph = graph
        self.fetched = set(outputs)
        self.live = _live(graph, outputs)
        n = len(graph.nodes)
        self.consumers = [[] for _ in range(n)]  # node id -> [(consumer, input index)]
        self.reads = [()] * n  # node id -> [(input index, tensor)] that carry data
        for node in self.live:
            self.reads[node.id] = [(i, t) for i, t in enumerate(node.inputs)
                                   if _reads_data(node, i)]
            for i, t in self.reads[node.id]:
                self.consumers[t.node.id].append((node, i))
        self.group = [None] * n
        self.level = [None] * n
        self.copies = {}  # node id -> {group: level}: an in-order view in several prologues
        self.on_demand = set()
        self.groups = []
        self.boundaries = {}

    def run(self):
        for node in reversed(self.live):
            if node.spec.role is not None:
                self._visit(node, node.spec.role)
        return self._result()

    # -- one node ---------------------------------------------------------------------------
    def _visit(self, node, role):
        by_group = {}
        for consumer, index in self.consumers[node.id]:
            for group in self._groups_of(consumer):
                by_group.setdefault(group, []).append((consumer, index))
        if self._in_prologues(node, role, by_group):
            return
        if role == "alone":
            home = self._seed(node, role)
            reasons = dict.fromkeys(by_group, ALONE[node.spec.kind])
        else:
            home, reasons = self._fuse(node, role, by_group)
        for group, edges in by_group.items():
            if group is not home:
                for consumer, _ in edges:
                    self.boundaries[node.id, consumer.id] = reasons[group]

    def _fuse(self, node, role, by_group):
        verdicts = {g: self._place(node, role, g, edges) for g, edges in by_group.items()}
        written = len(by_group) > 1 or any(t in self.fetched for t in node.outputs)
        # written anyway, it had better stay where the contraction feeding it can follow it
        epilogue = written and role == "pointwise" and self._ends_contraction(node)
        home = None
        for group in sorted(by_group, key=lambda g: (-len(by_group[g]), g.seq)):
            level = verdicts[group]
            if isinstance(level, str):
                continue
            if written and not self._writable(node, group, level) or (
                    epilogue and not _takes_contraction(group, level)):
                verdicts[group] = TWO_CONSUMERS
            elif self._reaches([g for g in by_group if g is not group], group):
                verdicts[group] = CYCLE
            else:
                home = group
                self._join(node, role, group, level)
                break
        home = home or self._seed(node, role)
        return home, {g: v if isinstance(v, str) else TWO_CONSUMERS for g, v in verdicts.items()}

    def _in_prologues(self, node, role, by_group):
        """Join an in-order view read by several contractions' prologues to each of them;
        whether it did."""
        if (len(by_group) < 2 or node.spec.view != "linear"
                or any(t in self.fetched for t in node.outputs)):
            return False
        verdicts = {g: self._place(node, role, g, edges) for g, edges in by_group.items()}
        if not all(level in group.operands for group, level in verdicts.items()):
            return False
        self.copies[node.id] = verdicts
        for group, level in verdicts.items():
            self._join(node, role, group, level)
        return True

    def _groups_of(self, node):
        copies = self.copies.get(node.id)
        return list(copies) if copies else [self.group[node.id]]

    def _level_in(self, node, group):
        return self.copies.get(node.id, {}).get(group, self.level[node.id])

    def _place(self, node, role, group, edges):
        """The level node would have in group, or the reason it cannot join."""
        if group.kind in ALONE:
            return ALONE[group.kind]
        if len(group.members) >= MAX_GROUP_NODES:
            return SIZE
        levels, on_demand = set(), False
        for consumer, index in edges:
            level = self._edge_level(role, group, consumer, index)
            if isinstance(level, str):
                return level
            levels.add(level)
            on_demand = on_demand or consumer.id in self.on_demand
        if len(levels) > 1:
            return TWO_CONSUMERS  # needed at two levels: it would be computed twice
        level = levels.pop()
        if role == "pointwise":
            return SPACE if isinstance(level, _Rows) and group.kind == "contraction" else level
        if level in group.operands:
            return CONTRACTION_INPUT
        if on_demand:
            return SPACE
        if role == "contraction":
            return level if _takes_contraction(group, level) else SPACE
        return self._place_reduction(node, group, level)

    @staticmethod
    def _place_reduction(node, group, level):
        if group.kind == "contraction":
            return SPACE
        rows = _Rows(node.inputs[0].shape, _row_axes(node))
        if isinstance(level, _Rows):  # its consumers broadcast it back
            return level if level == rows else BROADCAST
        if level is group.scalar:
            return BROADCAST
        if group.axes is not None:
            return level if rows == (group.full.shape, group.axes) else SPACE
        return level  # a row op (softmax) at full, or the group so far is its epilogue

    def _edge_level(self, role, group, consumer, index):
        """The level a value needs to feed `consumer` (a group member) at input `index`: a
        level, the axes of a row broadcast the group does not have yet, or a reason."""
        consumer_role = consumer.spec.role
        if consumer_role == "contraction":
            return group.operands[index]
        if consumer_role == "reduction" and index == 0:
            return group.full
        here = self._level_in(consumer, group)
        size = _size(consumer.inputs[index].shape)
        if size == here.size:
            return here
        if here is group.full and (size != ONE or role == "reduction") and _broadcasts(consumer):
            rows = _Rows(consumer.outputs[0].shape,
                         _broadcast_axes(consumer.inputs[index].shape, consumer.outputs[0].shape))
            if rows.axes and group.axes is None:
                return rows
            if rows.axes and rows == (group.full.shape, group.axes):
                return group.reduced
        if size == ONE and role != "reduction":
            return group.scalar
        reduced = consumer.inputs[index].node.inputs[0].shape if role == "reduction" else None
        return BROADCAST if reduced not in (None, group.full.shape) else SPACE

    def _ends_contraction(self, node):
        """Whether node is the only reader of a contraction's output, of the same size."""
        return any(t.node.spec.role == "contraction" and self.consumers[t.node.id] == [(node, i)]
                   and _size(t.shape) == _size(node.outputs[0].shape)
                   for i, t in self.reads[node.id])

    def _writable(self, node, group, level):
        """Whether the group can write node's outputs for other groups: all of each one (a
        prologue is computed piecewise, as the contraction needs it)."""
        if level in group.operands:
            return False
        shape = _keepdims(*level) if isinstance(level, _Rows) else level.shape
        return all(_size(t.shape) == _size(shape) for t in node.outputs)

    def _reaches(self, sources, target):
        """Whether a path leads from a group in `sources` to `target`; a search past its budget
        says yes, which only forgoes a fusion."""
        seen, todo = set(), list(sources)
        while todo:
            group = todo.pop()
            if group is target:
                return True
            if group in seen or group.minid >= target.maxid:
                continue  # a group that starts after target ends cannot lead into it
            seen.add(group)
            if len(seen) > CYCLE_CHECK_BUDGET:
                return True
            todo.extend(group.succ)
        return False

    # -- building groups --------------------------------------------------------------------
    def _seed(self, node, role):
        kind = node.spec.kind if role == "alone" else "elementwise"  # until an anchor joins
        shape = node.outputs[0].shape if node.outputs else ()
        if pieces_axis(node) is not None:  # over one piece: its inputs fuse in (lower.py)
            shape = node.inputs[0].shape
        group = _Group(len(self.groups), kind, shape, node)
        self.groups.append(group)
        self._join(node, role, group, group.full)
        return group

    def _join(self, node, role, group, level):
        if isinstance(level, _Rows):  # the first row broadcast: the space takes its shape
            group.full.shape, group.axes = level
            group.reduced = _Level(_keepdims(*level))
            level = group.reduced
        if role == "contraction":
            group.kind = "contraction"
            group.full.shape = node.outputs[0].shape
            group.operands = tuple(_Level(t.shape) for t in node.inputs)
        elif role == "reduction":
            level = self._add_reduction(node, group, level)
        if role in ("contraction", "reduction"):
            group.anchors.append(node)
        self.group[node.id], self.level[node.id] = group, level
        group.members.append(node)
        group.minid = node.id
        consumers = [c for c, _ in self.consumers[node.id]]
        if _reorders(node) or any(group in self._groups_of(c) and c.id in self.on_demand
                                  for c in consumers):
            self.on_demand.add(node.id)
        if node.id not in self.copies:  # a prologue's copy feeds no other group
            group.succ.update(g for c in consumers for g in self._groups_of(c))
        group.succ.discard(group)

    @staticmethod
    def _add_reduction(node, group, level):
        group.kind = "reduction"
        if group.axes is not None:
            return level
        shape, axes = node.inputs[0].shape, _row_axes(node)
        group.axes = axes
        if _size(node.outputs[0].shape) == _size(shape):  # a row op: it stays at full
            group.full.shape, group.reduced = shape, _Level(_keepdims(shape, axes))
            return level
        group.reduced, group.full = group.full, _Level(shape)  # the group was its epilogue
        return group.reduced

    # -- the result -------------------------------------------------------------------------
    def _result(self):
        order = _topological(self.groups)
        group_of, kernels = {}, []
        for number, group in enumerate(order):
            kernel = self._kernel(number, group)
            kernels.append(kernel)
            group_of.update((n.id, kernel) for n in kernel.nodes)
        boundaries = [Boundary(self.graph.nodes[p].name, self.graph.nodes[c].name, reason)
                      for (p, c), reason in sorted(self.boundaries.items())]
        return Partition(kernels, group_of, boundaries)

    def _kernel(self, number, group):
        nodes = group.members[::-1]
        inputs, outputs = {}, {}
        for node in nodes:
            inputs.update((t, None) for _, t in self.reads[node.id]
                          if group not in self._groups_of(t.node))
            for consumer, i in self.consumers[node.id]:
                if group not in self._groups_of(consumer) and node.id not in self.copies:
                    outputs[consumer.inputs[i]] = None
            outputs.update((t, None) for t in node.outputs if t in self.fetched)
        root = max(group.anchors, key=lambda n: n.id) if group.anchors else nodes[-1]
        outputs = sorted(outputs, key=lambda t: (t.node.id, t.index))
        return FusionGroup(number, group.kind, nodes, list(inputs), outputs, root,
                           group.full.shape, tuple(sorted(group.axes or ())),
                           {n.id: group.level_name(self._level_in(n, group)) for n in nodes})


def _live(graph, outputs):
    """The nodes the outputs depend on, in topological (creation) order."""
    needed = [False] * len(graph.nodes)
    for t in outputs:
        needed[t.node.id] = True
    for node in reversed(graph.nodes):
        if needed[node.id]:
            for t in node.inputs:
                needed[t.node.id] = True
    return [node for node in graph.nodes if needed[node.id]]


def _topological(groups):
    """Groups in an order where every group comes after those it reads from (Kahn's)."""
    indegree = {g: 0 for g in groups}
    for g in groups:
        for h in g.succ:
            indegree[h] += 1
    ready = [(g.maxid, g.seq) for g in groups if indegree[g] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        group = groups[heapq.heappop(ready)[1]]
        order.append(group)
        for h in group.succ:
            indegree[h] -= 1
            if indegree[h] == 0:
                heapq.heappush(ready, (h.maxid, h.seq))
    assert len(order) == len(groups), "fusion built a cycle between groups"
    return order
