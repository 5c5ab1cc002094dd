"""What the CPU and CUDA devices share: an Executable whose program comes from the compiler
(graphc/compiler.py) for the device's target, and the skeleton of its memory plan.

Compiling runs the one pipeline for the target: a program of native segments (kernels entered
through one call) and host steps (fusion groups run through the numpy reference, with the
reason). Assignments and groups run no step where the target resolves them (the CPU): an
assignment's output is its value's buffer, handed to the variable after the run, or the
variable's own storage where the kernel computing the value may write over it
(memory_plan.Lifetimes.writes_over); a group's output is the constant True.

Running binds the symbolic dims from the fed shapes, once per distinct set of shapes: a plan
(`NativePlan`, which each device's plan extends with its allocator and launcher) holds the
concrete shapes, the dims, and the buffers, reused across runs. Intermediates share storage as
memory_plan.py lays them out by liveness, on both devices: buffers that outlive a run (feeds,
variables, constants, fetched outputs, new values of variables) keep storage of their own.
A kernel's bad index is diagnosed by the numpy reference run over its fusion group, which gives
the error its full message.

Loops and conds: the compiler compiled their bodies with the program (HostStep.bodies); each
body becomes an executable of the device's (`body_class`, a BodyExecutable) once, here. The
reference of a loop or cond then runs them through `_run_body` as its body runner (each step
one run of the body's executable); device cpu runs loops in its plan's buffers instead
(runtime/loops.py). A loop whose length only its run tells replans (Replan) on both devices.
"""
import math

import numpy as np

from graphc.compiler import HostStep, NativeStep, compile
from graphc.errors import FeedError, GraphcError, IndexError_, NumericsError
from graphc.ir import dtypes
from graphc.ir.types import TensorType, format_type
from graphc.ops.control_flow import interpret, using_body_runner

from .code_dump import write_code
from .executable import Executable
from .memory_plan import Lifetimes, pack
from .reference import check_allocation, check_finite, evaluate, memory_limit, random_draw


class NativeExecutable(Executable):
    target = None  # the graphc.targets target whose code the device runs
    outputs_owned = True  # run() returns arrays no one else holds
    body_class = None  # the device's executable of a compiled body (a BodyExecutable)
    _given_program = None  # a body's Program, compiled with the enclosing program

    def __init__(self, fetches, feeds, options, name="session", effects=()):
        super().__init__(fetches, feeds, options, name, effects)
        program = self.program
        self.slots, self.steps, self.assigned = program.slots, program.steps, program.assigned
        # the compiled bodies of loops and conds, each an executable of the device's, made
        # once here (their code loads through the kernel cache like the program's)
        self.bodies = {}
        self.loop_modes = {}  # loop node name -> how its last run went (runtime/loops.py)
        self.loop_packs = {}  # loop node name -> its Gemms' packings of B in its last run
        for step in self.steps:
            if isinstance(step, HostStep) and step.bodies:
                for body, body_program in step.bodies.items():
                    if body not in self.bodies:
                        self.bodies[body] = self.body_class(body, body_program, options)
        limit = memory_limit()
        self.constants = {slot: evaluate(node, [], limit)[0]
                          for slot, node in program.constants.items()}
        self.constants.update((slot, np.array(True)) for slot in program.true_slots)
        self._plans = {}  # fed shapes -> plan
        self._value_dims = {}  # fed shapes -> the lengths of value-shaped loops last run
        # whether a loop's step count comes from a value: then a plan may assume lengths
        self.value_shaped = any(n.spec.value_shaped for n in self.nodes)
        self.last_plan = None
        self._prepare_run()

    def _compile(self, level, name):
        o = self.options
        if self._given_program is not None:  # a body, compiled with its enclosing program
            self.program = self._given_program
            return self.program.compilation
        self.program = compile(list(self.fetches), self.target, level, o.excluding, o.including,
                               o.debug, name, o.allow_tf32)
        return self.program.compilation

    def stats(self):
        """The compilation's figures, and every group run through the numpy reference between
        native segments (`host_steps`: its nodes and the reason), where speed falls off."""
        return {**super().stats(), "host_steps": [
            {"nodes": [n.name for n in s.group.nodes], "ops": sorted({n.op for n in s.group.nodes}),
             "reason": _host_reason(s)} for s in self.steps
            if not isinstance(s, NativeStep) and _host_reason(s) is not None],
            # each loop and cond whose bodies compiled: its bodies' kernel counts and their
            # Gemms that keep B packed across steps, whether they run natively (no host step
            # inside), how its last run went and how many times it packed those Bs
            "loops": [{"node": s.node.name, "op": s.node.op,
                       "body_kernels": {b.name: sum(len(n.kernels) for n in p.native)
                                        for b, p in s.bodies.items()},
                       "packed_b": {b.name: len(p.slots.packed_b) for b, p in s.bodies.items()},
                       "native": _host_reason(s) is None,
                       "last_run": self.loop_modes.get(s.node.name),
                       "packs_of_b": self.loop_packs.get(s.node.name)}
                      for s in self.steps if isinstance(s, HostStep) and s.bodies]}

    # -- compiled bodies -----------------------------------------------------------------------
    def _run_body(self, body, arrays):
        """The body runner (graphc.ops.control_flow.using_body_runner) of this executable's
        loops and conds: the body's compiled executable run on `arrays` (a body it did not
        compile, as in a reference run of a nested body, is interpreted)."""
        exe = self.bodies.get(body)
        if exe is None:
            return interpret(body, arrays)
        outs, _ = exe.run([np.asarray(a) for a in arrays], _no_variable, _no_random)
        return outs

    def _run_on_reference(self, signature, feed_arrays, read_variable, rng_for):
        """A run through the ops' references (Executable.reference_values), which records the
        lengths that value-shaped loops had, for the plans of the next runs."""
        values, updates = self.reference_values(feed_arrays, read_variable, rng_for)
        found = {}
        for node in self.nodes:
            if node.spec.value_shaped:
                for t in node.outputs:
                    if (node.id, t.index) in values:
                        for d, n in zip(t.shape, np.shape(values[(node.id, t.index)])):
                            if not isinstance(d, int):
                                found[id(d)] = n
        self._value_dims[signature] = found
        outs = [None if none else np.array(values[(t.node.id, t.index)])
                for t, none in zip(self.outputs, self.fetch_none)]
        return outs, {uid: np.array(v) for uid, v in updates.items()}

    def reference_values(self, feed_arrays, read_variable, rng_for):
        """Executable.reference_values, its loops and conds running their compiled bodies."""
        with using_body_runner(self._run_body):
            return super().reference_values(feed_arrays, read_variable, rng_for)

    def source(self, kind=None):
        """The generated code as `kind` (the target's source_kinds; the first by default)."""
        kind = self.target.source_kinds[0] if kind is None else kind
        if self.program.code is None and kind in self.target.source_kinds:
            return ""  # no native step
        return self.target.source(self.program.code, kind)

    @property
    def plan_bytes(self):
        """(bytes of buffers the last run's plan holds, bytes it would hold with one buffer
        per tensor), feeds, variables and constants not counted; None before the first run."""
        plan = self.last_plan
        return None if plan is None else (plan.planned_bytes, plan.nbytes_unshared)

    # -- the plan's skeleton -------------------------------------------------------------------
    def _prepare_run(self):
        """What every run needs, found once: where feeds, variables and outputs go, and when
        each buffer is live."""
        self.feed_slots = [None if t is None else self.slots.buffer(t) for t in self.feed_targets]
        self.variable_slots = [(self.slots.buffer(n.outputs[0]), n.attrs["uid"])
                               for n in self.nodes if n.op == "variable"]
        self.variable_slot = {uid: slot for slot, uid in self.variable_slots}
        fed = set(self.feed_slots)
        self.unfed = [n for n in self.nodes if n.op == "placeholder"
                      and self.slots.buffer(n.outputs[0]) not in fed]
        self.output_slots = [self.slots.buffer(t) for t in self.outputs]
        nodes = self.outputs[0].graph.nodes
        self.slot_owners = {slot: nodes[node_id]  # the node whose output a slot holds
                            for (node_id, _), slot in self.slots.buffers.items()}
        self.assign_slots = {n.inputs[0].node.attrs["uid"]: self.slots.buffer(n.inputs[1])
                             for n in self.nodes if n.op == "assign"}
        self.fetched_slots = {slot for slot, none in zip(self.output_slots, self.fetch_none)
                              if not none}
        # what outlives a run keeps its own storage (all of it while checking numerics,
        # which reads every group's outputs after the run)
        given = set(self.feed_slots) | {s for s, _ in self.variable_slots} | set(self.constants)
        values = list(self.assign_slots.values())
        # (and the packed copies of B that Gemms keep from one step of a loop to the next)
        kept = given | self.fetched_slots | set(values) | set(self.slots.packed_b)
        if self.options.check_numerics:
            kept = range(len(self.slots.buffer_info))
        self.lifetimes = Lifetimes(
            [self._lifetime_step(s) for s in self.steps], kept,
            [np.dtype(dtypes.BY_NAME[dtype].np).itemsize for dtype, _ in self.slots.buffer_info])
        # new values computed in their variables' storage: values of one assignment each,
        # neither fed nor fetched, for variables that are neither fetched nor assigned
        candidates = [(value, var) for _, var, value in self.assigned
                      if value not in given | self.fetched_slots and values.count(value) == 1
                      and var not in self.fetched_slots and var not in values]
        direct = ({} if self.options.check_numerics else
                  dict(self.lifetimes.writes_over(candidates)))
        self.in_variables = [(uid, var, value) for uid, var, value in self.assigned
                             if direct.get(value) == var]
        write_code(self)  # the kernel IR and generated code, where GRAPHC_DUMP_DIR is set

    def _lifetime_step(self, step):
        """A step as memory_plan.Lifetimes takes it."""
        if isinstance(step, NativeStep):
            return ("native", step.access)
        # every output with a buffer, not only those read for their data: a loop writes its
        # stacked values into a buffer that a later host step reads only for its shape
        buffers = self.slots.buffers
        return ("host", self.program.slots_read(step.group),
                [buffers[n.id, i] for n in step.group.nodes for i in range(len(n.outputs))
                 if (n.id, i) in buffers])

    def _check_fed(self):
        if self.unfed:
            node = self.unfed[0]
            raise FeedError(f"placeholder '{node.name}' needs a value: add it to feed_dict "
                            f"(expected {format_type(node.outputs[0].type)})", node)

    # -- host steps and diagnoses ------------------------------------------------------------
    def _diagnose(self, step, plan):
        """A kernel reported a bad index: the reference, run over the failing group (whose
        inputs the kernels before it made), raises the error with its full message (the
        position of the bad index too). Not the groups before it: one may read the shape of
        a value that the failing group was to make."""
        what, value = int(plan.error[0]) - 1, int(plan.error[1])
        plan.error[:] = 0
        node, message = self.slots.errors[what]
        self._host(next(g for g in step.groups if node in g.nodes), plan, None, None, {})
        raise IndexError_(message.format(value=value), node)

    def _host(self, group, plan, read_variable, rng_for, updates, check=False):
        """Run a group through the reference on the plan's host arrays. A value-shaped
        output (a loop's stacked values) whose run-time length differs from the one the plan
        assumed raises Replan with the sizes found."""
        with using_body_runner(self._run_body):  # loops and conds run compiled bodies
            self._host_nodes(group, plan, rng_for, updates, check)

    def _host_nodes(self, group, plan, rng_for, updates, check):
        local = {}

        def value(t):
            key = (t.node.id, t.index)
            return local[key] if key in local else plan.arrays[self.slots.buffer(t)]
        limit = memory_limit()
        for node in group.nodes:
            inputs = [value(t) for t in node.inputs]
            if node.op == "assign":  # the value, broadcast to the variable's shape
                outs = (np.broadcast_to(inputs[1], inputs[0].shape),)
                updates[node.inputs[0].node.attrs["uid"]] = outs[0]
            elif node.spec.random:
                outs = (random_draw(node, rng_for(node.attrs["uid"], node.attrs["seed"]),
                                    inputs),)
            else:
                outs = evaluate(node, inputs, limit)
            if check:
                check_finite(node, outs)
            for i, out in enumerate(outs):
                local[(node.id, i)] = out
        found = {}
        for t in group.outputs:
            if t.node.spec.value_shaped:
                arr = np.asarray(local[(t.node.id, t.index)])
                for d, n in zip(t.shape, arr.shape):
                    if plan.value_dims.get(id(d), n) != n:
                        found[id(d)] = n
        if found:
            raise Replan(found)
        for t in group.outputs:
            target = plan.arrays[self.slots.buffer(t)]
            np.copyto(target, np.asarray(local[(t.node.id, t.index)]).reshape(target.shape))

    def _check_numerics(self, plan, read_variable, rng_for):
        """The first fusion group with a non-finite output is run again through the
        reference, node by node, to name the node where the value first appeared."""
        for step in self.steps:
            groups = step.groups if isinstance(step, NativeStep) else [step.group]
            for group in groups:
                for t in group.outputs:
                    try:
                        check_finite(t.node, [plan.arrays[self.slots.buffer(t)]])
                    except NumericsError:
                        self._host(group, plan, read_variable, rng_for, {}, check=True)
                        raise


def _host_reason(step):
    """Why a host step is one (None: a loop or cond whose bodies run natively)."""
    if step.bodies is None:
        return step.reason
    inner = step.body_host_steps()
    if not inner:
        return None
    return "its compiled body runs host steps: " + "; ".join(
        f"{name}: {', '.join(n.name for n in s.group.nodes)} ({s.reason})" for name, s in inner)


def _no_variable(uid):
    raise GraphcError("a compiled body reads no variable (captured ones are its arguments)")


def _no_random(uid, seed):
    raise GraphcError("a compiled body draws no random numbers")


class BodyExecutable:
    """What a device's executable of a compiled body adds (mixed in before the device's
    executable class): it is built from the body's Program, compiled with the enclosing
    program, and its feeds are the body's arguments, its fetches the body's results."""

    def __init__(self, body, program, options):
        self._given_program = program
        self.body = body
        super().__init__(body.results, body.arguments, options, body.name)


class Replan(GraphcError):
    """A loop ran a number of steps other than the plan assumed: `dims` ({id(Dim): size})
    are the sizes found; the run starts again on a plan for them (devices cpu and cuda)."""

    def __init__(self, dims):
        super().__init__("a loop ran another number of steps than the run was planned for "
                         "(the run starts again on a plan for the length found)")
        self.dims = dims


class NativePlan:
    """Concrete shapes, dims and the storage layout for one set of fed shapes. `arrays` are
    the caller's (feeds, variables, constants, by slot); `unallocated` the slots the plan
    gives no storage (bound to the caller's arrays, or scratch no kernel uses). Buffers at
    `offsets` share one arena of `arena_bytes` by liveness; the slots `owned` get storage of
    their own."""

    def __init__(self, exe, arrays, unallocated, value_dims=None):
        slots = exe.slots
        shapes = exe.program.bind_shapes({slot: arr.shape for slot, arr in arrays.items()},
                                         value_dims)
        self.value_dims = shapes.value_dims  # sizes assumed for dims that values tell
        self.dims = np.array([shapes.dims[id(d)] for d in slots.dim_objects] or [0], np.int64)
        self.shapes = [shapes.shape(shape) for _, shape in slots.buffer_info]
        self.storage = [np.dtype(dtypes.BY_NAME[dtype].np) for dtype, _ in slots.buffer_info]
        self.nbytes = [math.prod(shape) * s.itemsize for shape, s in zip(self.shapes, self.storage)]
        limit = memory_limit()
        for slot, (dtype, _) in enumerate(slots.buffer_info):
            if slot not in unallocated:
                check_allocation(exe.slot_owners.get(slot),
                                 [TensorType(dtype, self.shapes[slot])], limit)
        self.offsets, self.arena_bytes = pack(exe.lifetimes, self.nbytes)
        self.owned = [slot for slot in range(len(self.shapes))
                      if slot not in unallocated and slot not in self.offsets]
        # the plan's own buffers, in the arena or not, the caller's arrays not counted
        counted = set(range(len(self.shapes))) - set(unallocated) - set(arrays)
        self.nbytes_unshared = sum(self.nbytes[slot] for slot in counted)
        self.planned_bytes = self.arena_bytes + sum(self.nbytes[slot] for slot in self.owned
                                                    if slot in counted)
