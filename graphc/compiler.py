"""The compiler: one pipeline from a graph's outputs to a program that a device runs.

    outputs --passes (graphc/passes)--> optimized graph --fusion (passes/fusion.py)--> fusion
    groups --lowering (kernels/lower.py)--> kernel IR, group by group --the target's group
    passes--> --repeated copies dropped (kernels/shared_copies.py)--> --the target's program
    passes--> segments of kernels --the target's code generator--> code

`compile(outputs, target, ...)` runs all of it and returns a `Program`: its steps in the order
they run (native segments of kernels, each entered through one call, and host steps: fusion
groups the target cannot lower, with the reason, which run through the numpy reference), the
table of buffers, run-time dims and error messages (`slots`), what the memory plan needs to
know of each kernel, and the code. It keeps no state between calls: a sub-graph (a loop's or
cond's body) compiles through another call, made by this one for the same target, level and
options (the host step of a loop or cond holds its bodies' Programs: HostStep.bodies; a loop
body's code may have a driver running the whole loop, as the CPU target's does). The target (graphc/targets) says what differs between
machines; the runtime (graphc.runtime) allocates the buffers and runs the steps.
"""
import heapq

from .errors import FeedError, GraphcError
from .ir.graph import nodes_needed
from .ir.types import Dim, TensorType
from .kernels.access import access
from .kernels.ir import Unsupported
from .kernels.lower import Slots, lower_group
from .kernels.shared_copies import share_copies
from .passes import optimize
from .passes.fusion import singletons


CONTROL_FLOW = ("loop", "cond")  # host ops whose bodies compile through this pipeline


class HostStep:
    """A fusion group run through the numpy reference, and why it has no native kernel.
    A loop or cond (a group of one such node) has `bodies`: {Body: its Program}, each body
    compiled through `compile` for the same target, level and options (None elsewhere); the
    device runs the node by running those programs, not by interpreting the body."""

    def __init__(self, group, reason, bodies=None):
        self.group = group
        self.reason = reason
        self.bodies = bodies

    @property
    def node(self):
        return self.group.nodes[0]

    def body_host_steps(self):
        """The host steps of the compiled bodies, nested bodies' included: (body name,
        HostStep) pairs. None of them: the node runs natively."""
        found = []
        for body, program in (self.bodies or {}).items():
            for step in program.steps:
                if isinstance(step, HostStep):
                    if step.bodies is None:
                        found.append((body.name, step))
                    else:
                        found.extend((f"{body.name}/{name}", s)
                                     for name, s in step.body_host_steps())
        return found


def bodies_of(node):
    """The Bodies a loop or cond node runs (the loop's body, then its condition if any)."""
    if node.op == "loop":
        return [node.attrs["body"]] + ([node.attrs["cond"]] if node.attrs["cond"] else [])
    if node.op == "cond":
        return [node.attrs["true_body"], node.attrs["false_body"]]
    return []


class CollectiveStep(HostStep):
    """One half of a collective that the target runs natively (`Target.native_collectives`):
    phase "start" begins the allreduce of `group`'s input into its output buffer (a
    non-blocking call, placed as soon as the input is computed), phase "wait" completes it
    (placed just before the first step that reads the output, or at the end). Both name the
    same one-node group; `partner` is the other half. The memory plan keeps the input and
    output buffers live from the start to the wait: the collective owns them in between."""

    def __init__(self, group, phase, partner=None):
        super().__init__(group, None)
        self.phase = phase
        self.partner = partner


def native_collective(group):
    """Whether a group is an allreduce that a target with native collectives runs as a
    start and a wait."""
    return len(group.nodes) == 1 and group.nodes[0].op == "allreduce"


def schedule_collectives(groups):
    """The groups reordered (a topological order still) so that the collectives overlap the
    rest of the program: a collective, and the groups that only feed collectives (a bucket's
    concatenation), run as soon as their inputs are computed; groups that depend on a
    collective's result run as late as possible, after every other group. Unchanged without
    a native collective."""
    if not any(native_collective(g) for g in groups):
        return groups
    producer = {}
    for g in groups:
        for t in g.outputs:
            producer[t.node.id, t.index] = g.id
    deps = {g.id: {producer[t.node.id, t.index] for t in g.inputs
                   if (t.node.id, t.index) in producer} - {g.id} for g in groups}
    users = {g.id: set() for g in groups}
    for gid, ds in deps.items():
        for d in ds:
            users[d].add(gid)
    early = {g.id for g in groups if native_collective(g)}
    changed = True
    while changed:  # groups whose every user is a collective or feeds only collectives
        changed = False
        for g in groups:
            if g.id not in early and users[g.id] and users[g.id] <= early:
                early.add(g.id)
                changed = True
    collectives = {g.id for g in groups if native_collective(g)}
    late = set()
    for g in groups:  # in topological order: a collective's users, transitively
        if any(d in late or d in collectives for d in deps[g.id]):
            late.add(g.id)
    # the collectives in the order their inputs can be ready (fewest groups needed first);
    # other groups run in that order of the first collective they feed (the backward pass
    # computes the last layer's gradients, which the first bucket holds, first)
    ancestors = {}
    for g in groups:
        found = set(deps[g.id])
        for d in deps[g.id]:
            found |= ancestors[d]
        ancestors[g.id] = found
    first_need = {}
    for rank, c in enumerate(sorted(collectives, key=lambda c: len(ancestors[c]))):
        for a in ancestors[c]:
            first_need.setdefault(a, rank)
    order = {g.id: i for i, g in enumerate(groups)}
    waiting = {g.id: len(deps[g.id]) for g in groups}
    ready = [g.id for g in groups if not deps[g.id]]
    by_id = {g.id: g for g in groups}
    out = []

    def key(gid):
        return (0 if gid in collectives else 1 if gid in early else 3 if gid in late else 2,
                first_need.get(gid, len(collectives)), order[gid])
    heap = [(key(gid), gid) for gid in ready]
    heapq.heapify(heap)
    while heap:
        _, gid = heapq.heappop(heap)
        out.append(by_id[gid])
        for u in users[gid]:
            waiting[u] -= 1
            if not waiting[u]:
                heapq.heappush(heap, (key(u), u))
    return out if len(out) == len(groups) else groups


class NativeStep:
    """Consecutive kernels (of `groups`, in order) entered through one native call: segment
    `number` of the code. `access[i]` is what kernel i touches (kernels.access.Access)."""

    def __init__(self, number):
        self.number = number
        self.kernels = []
        self.groups = []
        self.access = []


class Program:
    """A compiled graph: see the module's doc. `assigned` lists the assignments that run no
    step (variable uid, variable's slot, new value's slot), `true_slots` the outputs of
    groups (the constant True), `constants` the constant nodes by slot, and `unused_slots`
    the scratch no kernel uses once the target's passes have run."""

    def __init__(self, compilation, target, slots):
        self.compilation = compilation
        self.target = target
        self.slots = slots
        self.outputs = compilation.outputs
        self.nodes = nodes_needed(self.outputs)  # in topological order
        self.steps = []
        self.assigned = []
        self.true_slots = []
        self.unused_slots = frozenset()
        self.code = None  # the target's code, where there are native steps
        self.constants = {}

    @property
    def native(self):
        return [s for s in self.steps if isinstance(s, NativeStep)]

    def slots_read(self, group):
        """The slots a host step (or a diagnosis) reads: its nodes' inputs from outside."""
        members = {n.id for n in group.nodes}
        return {self.slots.buffers[t.node.id, t.index] for n in group.nodes for t in n.inputs
                if t.node.id not in members and (t.node.id, t.index) in self.slots.buffers}

    def bind_shapes(self, given, value_dims=None):
        """Every symbolic dim's value (a BoundShapes), by running shape inference over the
        program's nodes from the concrete shapes of the slots in `given` ({slot: shape}: the
        fed, stored and constant arrays). A value-shaped op (a loop whose step count comes from
        a value) leaves dims that only its run tells: they take their values from
        `value_dims` ({id(Dim): size}), else 0, and `shapes.value_dims` lists them (id ->
        the size assumed), for the runtime to check once the op ran."""
        shapes = BoundShapes()
        value_dims = value_dims or {}
        concrete = {}
        for node in self.nodes:
            slot = self.slots.buffers.get((node.id, 0))
            if slot in given:
                outs = [TensorType(node.outputs[0].dtype, given[slot])]
            elif node.spec.kind == "source":
                outs = [TensorType(node.outputs[0].dtype, tuple(shapes.resolve(d)
                                                                for d in node.outputs[0].shape))]
            else:
                types = [concrete[(t.node.id, t.index)] for t in node.inputs]
                try:
                    out = node.spec.infer(*types, **node.attrs)
                except GraphcError as err:
                    raise type(err)(f"at run time: {err.detail}", node) from None
                outs = [out] if isinstance(out, TensorType) else list(out)
                if node.spec.value_shaped:  # only outputs with buffers need the sizes
                    outs = [TensorType(c.dtype, tuple(
                        shapes.assume(d, value_dims, (node.id, i) in self.slots.buffers)
                        for d in c.shape)) for i, c in enumerate(outs)]
            for i, (t, c) in enumerate(zip(node.outputs, outs)):
                shapes.bind(t.shape, c.shape, node)
                concrete[(node.id, i)] = c
        return shapes


class BoundShapes:
    """The run-time values of symbolic dims (by the Dim's identity)."""

    def __init__(self):
        self.dims = {}
        self.value_dims = {}  # id(Dim) -> the size assumed for a dim only a value tells

    def assume(self, d, value_dims, record=True):
        """A concrete size for dim d of a value-shaped op's output: d itself when an int,
        else its size in value_dims (0 where not known yet), recorded in value_dims (where
        `record`: the output has a buffer)."""
        if isinstance(d, int):
            return d
        n = value_dims.get(id(d), 0)
        if record:
            self.value_dims[id(d)] = n
        return n

    def bind(self, symbolic, concrete, node):
        for d, n in zip(symbolic, concrete):
            if isinstance(d, Dim):
                if self.dims.setdefault(id(d), n) != n:
                    raise FeedError(f"dimension {d} is {self.dims[id(d)]} in one place and {n} "
                                    f"in another", node)

    def resolve(self, d):
        return self.dims[id(d)] if isinstance(d, Dim) else d

    def shape(self, shape):
        return tuple(self.resolve(d) for d in shape)


def compile(outputs, target, level="O2", excluding=(), including=(), debug=False,
            name="function", allow_tf32=False, loop_body=False, in_body=False,
            invariant=frozenset()):
    """The Program of `outputs` for `target`: the passes that `level` and the pass filters
    select (graphc.passes.optimize), then `generate`. allow_tf32: float32 products may round
    their inputs to tf32 (CUDA). loop_body: the outputs are a loop body's results (the target
    may add a driver that runs the whole loop, as the CPU's does); `invariant`: the uids of
    its arguments that are the same at every step (loop_invariants)."""
    compilation = optimize(list(outputs), level, excluding, including, debug, name)
    programs = {}  # Body -> Program: a body met twice in this call compiles once

    def compile_body(body, invariant):
        if body not in programs:  # reentrant: the same pipeline, target and options
            programs[body] = compile(body.results, target, level, excluding, including, debug,
                                     f"{name}/{body.name}", allow_tf32, invariant is not None,
                                     in_body=True, invariant=invariant or frozenset())
        return programs[body]
    return generate(compilation, target, allow_tf32, compile_body, loop_body,
                    collectives=not in_body, invariant=invariant)


def loop_invariants(node, body):
    """The uids of the arguments of `body` that hold the same value at every step of a run of
    loop `node` (its non-sequences), or None where `body` is not the loop's step body."""
    if node.op != "loop" or body is not node.attrs["body"]:
        return None
    n_seq, n_carry, n_nonseq = node.attrs["counts"]
    fixed = body.arguments[n_seq + n_carry:n_seq + n_carry + n_nonseq]
    return frozenset(t.node.attrs["uid"] for t in fixed)


def generate(compilation, target, allow_tf32=False, compile_body=None, loop_body=False,
             collectives=True, invariant=frozenset()):
    """The Program of an optimized graph (a passes.Compilation) for `target`. compile_body:
    (Body, loop_invariants of it) -> Program, for the bodies of loops and conds (None:
    they stay interpreted). collectives: allreduces run natively (CollectiveStep) where the
    target can (not in the bodies of loops and conds, which run them as host steps).
    invariant: as compile's."""
    program = Program(compilation, target, Slots(target.gemm_dtypes))
    slots = program.slots
    if target.keeps_packed_b:
        slots.invariant = frozenset(invariant)
    slots.gemm_epilogue = target.fuses_gemm_epilogue
    groups = (compilation.partition or singletons(compilation.graph, compilation.outputs)).groups
    native_collectives = target.native_collectives and collectives
    if native_collectives:
        groups = schedule_collectives(groups)
    pending = {}  # (node id, output index) of a started collective's output -> its wait
    for group in groups:
        if native_collectives and native_collective(group):
            for t in list(group.inputs) + list(group.outputs):
                slots.buffer(t)
            start = CollectiveStep(group, "start")
            start.partner = CollectiveStep(group, "wait", start)
            program.steps.append(start)
            pending.update(((t.node.id, t.index), start.partner) for t in group.outputs)
            continue
        for t in group.inputs:  # the waits of the collectives whose results it reads
            wait = pending.pop((t.node.id, t.index), None)
            if wait is not None and wait not in program.steps:
                program.steps.append(wait)
        if not _resolves(program, group):
            _lower(program, group)
            step = program.steps[-1] if program.steps else None
            if (compile_body is not None and isinstance(step, HostStep) and step.group is group
                    and len(group.nodes) == 1 and group.nodes[0].op in CONTROL_FLOW):
                node = group.nodes[0]
                step.bodies = {body: compile_body(body, loop_invariants(node, body))
                               for body in bodies_of(node)}
    for wait in pending.values():  # results only fetched: completed at the end
        if wait not in program.steps:
            program.steps.append(wait)
    segments = [s.kernels for s in program.native]
    share_copies(segments, slots)
    for t in program.outputs:
        slots.buffer(t)
    program.constants = {slots.buffers[n.id, 0]: n for n in program.nodes
                         if n.op == "constant" and (n.id, 0) in slots.buffers}
    program.unused_slots = frozenset(target.program_passes(segments, slots))
    for step in program.native:
        step.access = [access(k, target.writes_in_place) for k in step.kernels]
    if segments:
        program.code = target.generate(segments, allow_tf32, loop_body)
    return program


def _lower(program, group):
    """Append the group's kernels to the program's last native segment (or a new one), or
    a host step where it does not lower."""
    slots, target, steps = program.slots, program.target, program.steps
    for t in list(group.inputs) + list(group.outputs):
        slots.buffer(t)
    try:
        kernels = target.group_passes(
            lower_group(group, slots, f"k{group.id}_{group.root.op}"), slots)
        missing = target.unsupported(kernels)
        if missing:
            raise Unsupported("no instructions for " + ", ".join(sorted(missing)))
    except Unsupported as why:
        # the references also read inputs only for their shapes: give those a buffer
        members = {n.id for n in group.nodes}
        for node in group.nodes:
            for t in node.inputs:
                if t.node.id not in members:
                    slots.buffer(t)
        steps.append(HostStep(group, str(why)))
        return
    if not steps or not isinstance(steps[-1], NativeStep):
        steps.append(NativeStep(len(program.native)))
    steps[-1].kernels.extend(kernels)
    steps[-1].groups.append(group)


def _resolves(program, group):
    """Whether `group` needs no step on a target that resolves assignments: it only assigns
    variables values of their own shapes, or groups other ops."""
    if not program.target.resolves_assignments or not all(
            n.op == "group" or (n.op == "assign" and n.inputs[1].shape == n.inputs[0].shape)
            for n in group.nodes):
        return False
    slots = program.slots
    for node in group.nodes:
        if node.op == "group":
            program.true_slots.append(slots.buffer(node.outputs[0]))
            continue
        var, value = node.inputs
        slots.share(node.outputs[0], value)
        program.assigned.append((var.node.attrs["uid"], slots.buffer(var), slots.buffer(value)))
    return True
