"""The CPU device: an Executable whose kernels are native code generated through LLVM.

Compiling lowers each fusion group to kernel IR (graphc.kernels) and all kernels to one LLVM
module (graphc.codegen.llvm), cached on disk as object code. Groups with no kernel lowering yet
(random draws, ops without a lowering rule) run through the numpy reference between native segments; each native
segment is entered through one call. Assignments and groups run no step: an assignment's output
is its value's buffer, handed to the variable after the run (the two arrays swap places, no
copy), or the variable's own storage where the kernel computing the value may write over it
(memory_plan.Lifetimes.writes_over); a group's output is the constant True.

Running binds the symbolic dims from the fed shapes (once per distinct set of shapes: a `Plan`
holds the concrete shapes, the dims array and the intermediate buffers, reused across runs;
intermediates share storage as memory_plan.py lays them out), points the buffer table at the
feeds, variables and fresh output arrays, and calls the segments. A program of native calls
and random draws only is run again by `run_again` with no more than the checks that the
arrays fit the last plan.
"""
import ctypes
import functools
import math
import sys

import numpy as np

from graphc.codegen.llvm import gemm, jit
from graphc.codegen.llvm.program import PROGRAM_PIPELINE
from graphc.codegen.llvm.scalar import unsupported_ops
from graphc.errors import FeedError, GraphcError, IndexError_, NumericsError
from graphc.ir import dtypes
from graphc.ir.types import Dim, TensorType, format_type
from graphc.kernels.ir import Unsupported
from graphc.kernels.lower import Slots, lower_group
from graphc.kernels.shared_copies import share_copies
from graphc.kernels.split_reductions import split_reductions
from graphc.passes.fusion import singletons

from .code_dump import write_code
from .executable import Executable
from .llvm_objects import Program
from .memory_plan import ALIGN, Lifetimes, pack
from .reference import check_allocation, check_finite, evaluate, memory_limit, random_draw
from .threads import default_pool


class HostStep:
    """A fusion group run through the numpy reference, and why it has no native kernel."""

    def __init__(self, group, reason):
        self.group = group
        self.reason = reason


class NativeStep:
    """Consecutive kernels entered through one native call."""

    def __init__(self, number):
        self.number = number
        self.kernels = []
        self.groups = []
        self.entry = None


class CpuExecutable(Executable):
    device = "cpu"
    outputs_owned = True  # run() returns arrays no one else holds
    resolves_assignments = True  # assignments and groups run no step (see the module's doc)
    gemm_dtypes = gemm.DTYPES  # float16/bfloat16 products are computed in float32

    def __init__(self, fetches, feeds, options, name="session", effects=()):
        super().__init__(fetches, feeds, options, name, effects)
        self.slots = Slots(self.gemm_dtypes)
        self.assigned = []  # (variable uid, variable slot, value slot) of resolved assignments
        true_slots = []  # the outputs of groups
        comp = self.compilation
        self.steps = self._lower(comp.partition or singletons(comp.graph, self.outputs),
                                 true_slots)
        share_copies([s.kernels for s in self.steps if isinstance(s, NativeStep)], self.slots)
        for t in self.outputs:
            self.slots.buffer(t)
        self.program = None
        limit = memory_limit()
        self.constants = {self.slots.buffer(n.outputs[0]): evaluate(n, [], limit)[0]
                          for n in self.nodes if n.op == "constant"
                          and (n.id, 0) in self.slots.buffers}
        self.constants.update((slot, np.array(True)) for slot in true_slots)
        native = [s for s in self.steps if isinstance(s, NativeStep)]
        if native:
            self._compile(native)
        self._plans = {}
        self._prepare_run()
        write_code(self)  # the kernel IR and generated code, where GRAPHC_DUMP_DIR is set

    # -- compiling ---------------------------------------------------------------------------
    def _lower(self, partition, true_slots):
        steps = []
        for group in partition.groups:
            if self._resolve(group, true_slots):
                continue
            for t in list(group.inputs) + list(group.outputs):
                self.slots.buffer(t)
            try:
                kernels = split_reductions(lower_group(group, self.slots,
                                                       f"k{group.id}_{group.root.op}"), self.slots)
                missing = unsupported_ops(kernels)
                if missing:
                    raise Unsupported("no instructions for " + ", ".join(sorted(missing)))
            except Unsupported as why:
                # the references also read inputs only for their shapes: give those a buffer
                members = {n.id for n in group.nodes}
                for node in group.nodes:
                    for t in node.inputs:
                        if t.node.id not in members:
                            self.slots.buffer(t)
                steps.append(HostStep(group, str(why)))
                continue
            if not steps or not isinstance(steps[-1], NativeStep):
                steps.append(NativeStep(sum(isinstance(s, NativeStep) for s in steps)))
            steps[-1].kernels.extend(kernels)
            steps[-1].groups.append(group)
        return steps

    def _resolve(self, group, true_slots):
        """Whether `group` needs no step: it only assigns variables values of their own
        shapes, or groups other ops."""
        if not self.resolves_assignments or not all(
                n.op == "group" or (n.op == "assign" and n.inputs[1].shape == n.inputs[0].shape)
                for n in group.nodes):
            return False
        for node in group.nodes:
            if node.op == "group":
                true_slots.append(self.slots.buffer(node.outputs[0]))
                continue
            var, value = node.inputs
            self.slots.share(node.outputs[0], value)
            self.assigned.append((var.node.attrs["uid"], self.slots.buffer(var),
                                  self.slots.buffer(value)))
        return True

    def _compile(self, native):
        self.program = Program([s.kernels for s in native])
        for step in native:
            step.entry = self.program.entry(step.number)

    def stats(self):
        """The compilation's figures, and every group run through the numpy reference between
        native segments (`host_steps`: its nodes and the reason), where speed falls off."""
        return {**super().stats(), "host_steps": [
            {"nodes": [n.name for n in s.group.nodes], "ops": sorted({n.op for n in s.group.nodes}),
             "reason": s.reason} for s in self.steps if isinstance(s, HostStep)]}

    def source(self, kind="llvm"):
        """The generated code: "llvm" (as emitted), "llvm-opt" (after LLVM's pipeline) or "asm"."""
        if self.program is None:
            return ""
        if kind == "llvm":
            return self.program.text
        return {"llvm-opt": jit.optimize_ir, "asm": jit.assembly}[kind](self.program.text,
                                                                       **PROGRAM_PIPELINE)

    # -- running -----------------------------------------------------------------------------
    def _prepare_run(self):
        """What every run needs, found once: where feeds, variables and placeholders go."""
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
        kept = given | self.fetched_slots | set(values)
        if self.options.check_numerics:
            kept = range(len(self.slots.buffer_info))
        self.lifetimes = Lifetimes(
            [("native", s.kernels) if isinstance(s, NativeStep) else
             ("host", self._slots_read(s.group), [self.slots.buffer(t) for t in s.group.outputs])
             for s in self.steps], kept,
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
        # native calls and random draws only: a run whose feeds fit the last plan as they are
        # can go straight to them (run_again)
        self.repeatable = (all(isinstance(s, NativeStep) or all(
                               n.spec.random for n in s.group.nodes) for s in self.steps)
                           and None not in self.feed_slots and not self.options.check_numerics)
        self.last_plan = None

    @property
    def plan_bytes(self):
        """(bytes of buffers the last run's plan holds, bytes it would hold with one buffer
        per tensor), feeds, variables and constants not counted; None before the first run."""
        plan = self.last_plan
        return None if plan is None else (plan.nbytes, plan.nbytes_unshared)

    def _slots_read(self, group):
        """The slots a host step (or a diagnosis) reads: its nodes' inputs from outside."""
        members = {n.id for n in group.nodes}
        return {self.slots.buffers[t.node.id, t.index] for n in group.nodes for t in n.inputs
                if t.node.id not in members and (t.node.id, t.index) in self.slots.buffers}

    def run(self, feed_arrays, read_variable, rng_for):
        if self.unfed:
            node = self.unfed[0]
            raise FeedError(f"placeholder '{node.name}' needs a value: add it to feed_dict "
                            f"(expected {format_type(node.outputs[0].type)})", node)
        given = [(slot, arr) for slot, arr in zip(self.feed_slots, feed_arrays)
                 if slot is not None]
        given += [(slot, read_variable(uid)) for slot, uid in self.variable_slots]
        signature = tuple(arr.shape for _, arr in given)
        plan = self._plans.get(signature)
        if plan is None:
            plan = self._plans[signature] = Plan(self, dict(given) | self.constants)
        plan.bind(given)
        for uid, _, value in self.in_variables:
            plan.bind_in_place(value, read_variable(uid))
        return self._call(plan, read_variable, rng_for)

    def run_again(self, args, read_variable, rng_for):
        """run() for arguments that fit the last run's plan as they are (ndarrays of its
        shapes and storage dtypes, C-contiguous) when the variables it read are the same
        arrays: (outputs, new variable values), or None where anything differs and run()
        must check the feeds. Only programs of native calls and random draws qualify
        (self.repeatable)."""
        plan = self.last_plan
        if plan is None or not self.repeatable:
            return None
        arrays, table = plan.arrays, plan.table
        for arg, (slot, dtype, shape) in zip(args, plan.feed_types):
            if (type(arg) is not np.ndarray or arg.dtype is not dtype or arg.shape != shape
                    or not arg.flags.c_contiguous):
                return None
            if arg is not arrays[slot]:
                arrays[slot] = arg
                table[slot] = address(arg)
        for slot, uid in self.variable_slots:
            if read_variable(uid) is not arrays[slot]:
                return None
        return self._call(plan, read_variable, rng_for)

    def _call(self, plan, read_variable, rng_for):
        """Run the steps on a bound plan: (outputs, new variable values)."""
        plan.renew_outputs()
        updates = {}
        for step, call in plan.calls:
            if call is None:
                self._host(step.group, plan, read_variable, rng_for, updates)
            elif call():
                self._diagnose(step, plan)
        if self.options.check_numerics:
            self._check_numerics(plan, read_variable, rng_for)
        self.last_plan = plan
        if not updates and not self.assigned:  # the common case of functions, kept short
            return plan.outputs(), updates
        for uid, _, value in self.assigned:
            updates[uid] = plan.arrays[value]
        return plan.outputs(), self._hand_over(plan, updates, read_variable)

    def _hand_over(self, plan, updates, read_variable):
        """New variable values without copies where possible: a value computed in the
        variable's storage stays there; one computed into a plan's own buffer becomes the
        variable's array, and the variable's old array (owned by the session, which lets go
        of it now) becomes that buffer for the next run. The caller's arrays and the arrays
        of variables are never one another's."""
        out, taken = {}, set()
        for uid, new in updates.items():
            old = read_variable(uid)
            if new is old:
                continue  # written in place (bind_in_place)
            slot = self.assign_slots.get(uid)
            if (slot is None or slot in taken or plan.arrays[slot] is not new
                    or slot in plan.given or slot in plan.fresh or slot in plan.in_place
                    or old.shape != new.shape or old.dtype != new.dtype
                    or not old.flags.c_contiguous or not old.flags.writeable):
                out[uid] = np.array(new)
                continue
            taken.add(slot)
            plan.arrays[slot] = old
            plan.table[slot] = address(old)
            var = self.variable_slot[uid]  # holds the new array, as the next run binds it
            plan.arrays[var] = new
            plan.table[var] = address(new)
            out[uid] = new
        return out

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
        for t in group.outputs:
            target = plan.arrays[self.slots.buffer(t)]
            np.copyto(target, np.asarray(local[(t.node.id, t.index)]).reshape(target.shape))

    def _check_numerics(self, plan, read_variable, rng_for):
        """The first kernel group with a non-finite output is run again through the
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


class Plan:
    """Concrete shapes, dims and buffers for one set of fed shapes. Buffers that the memory
    plan lets share storage are views into one arena; the others have arrays of their own."""

    def __init__(self, exe, arrays):
        slots = exe.slots
        shapes = bind_shapes(exe, arrays)
        self.dims = np.array([shapes.dims[id(d)] for d in slots.dim_objects] or [0], np.int64)
        self.shapes = [tuple(shapes.resolve(d) for d in shape)
                       for _, shape in slots.buffer_info]
        self.given = set(arrays)
        self.in_place = {value for _, _, value in exe.in_variables}  # bound per run
        self.fresh = exe.fetched_slots - self.given
        self.fresh_slots = sorted(self.fresh)
        self.storage = [np.dtype(dtypes.BY_NAME[dtype].np) for dtype, _ in slots.buffer_info]
        self.arrays = [None] * len(self.shapes)
        self.spares = {}  # in-place slots' own buffers, for variables they cannot write over
        self._allocate(exe)
        self.table = np.zeros(max(len(self.shapes), 1), np.uintp)
        self.error = np.zeros(2, np.int64)
        self.ctx = (ctypes.c_void_p * 3)(self.table.ctypes.data, self.dims.ctypes.data,
                                         self.error.ctypes.data)
        self.ctx_address = ctypes.addressof(self.ctx)
        self.pool = default_pool().address
        self.bind(arrays.items())  # constants stay bound; feeds and variables bind per run
        for slot, arr in enumerate(self.arrays):
            if arr is not None:
                self.table[slot] = arr.ctypes.data
        self.output_kinds = [(slot, slot in self.fresh, none)
                             for slot, none in zip(exe.output_slots, exe.fetch_none)]
        # each step with what runs it: a native call, or None for the reference
        self.calls = [(step, functools.partial(step.entry, self.ctx_address, self.pool)
                       if isinstance(step, NativeStep) else None) for step in exe.steps]
        if exe.repeatable:  # what run_again checks: the feeds' types
            self.feed_types = [(slot, _unchecked_dtype(slots.buffer_info[slot][0]),
                                self.shapes[slot]) for slot in exe.feed_slots]

    def _allocate(self, exe):
        limit = memory_limit()
        info, storage = exe.slots.buffer_info, self.storage
        nbytes = [math.prod(shape) * s.itemsize for shape, s in zip(self.shapes, storage)]
        elsewhere = self.given | self.in_place  # storage the plan does not own
        for slot, (dtype, _) in enumerate(info):
            if slot not in elsewhere:
                check_allocation(exe.slot_owners.get(slot),
                                 [TensorType(dtype, self.shapes[slot])], limit)
        offsets, arena_bytes = pack(exe.lifetimes, nbytes)
        arena = aligned_bytes(arena_bytes)
        for slot, shape in enumerate(self.shapes):
            if slot in elsewhere:
                continue
            if slot in offsets:
                start = offsets[slot]
                self.arrays[slot] = arena[start:start + nbytes[slot]].view(
                    storage[slot]).reshape(shape)
            else:
                self.arrays[slot] = np.empty(shape, storage[slot])
        owned = [n for slot, n in enumerate(nbytes) if slot not in elsewhere]
        self.nbytes_unshared = sum(owned)
        self.nbytes = arena_bytes + sum(n for slot, n in enumerate(nbytes)
                                        if slot not in elsewhere and slot not in offsets)

    def bind(self, given):
        """Point the buffer table at this run's feeds and variables."""
        arrays, table = self.arrays, self.table
        for slot, arr in given:
            if not arr.flags.c_contiguous:
                arr = np.ascontiguousarray(arr)
            arrays[slot] = arr
            table[slot] = address(arr)

    def bind_in_place(self, slot, variable):
        """Point an in-place slot (a new value computed over its variable) at the variable's
        array, or where that array is not one the kernels may write (read-only, strided, in
        another dtype), at a spare buffer of the slot's own."""
        if not (variable.flags.writeable and variable.flags.c_contiguous
                and variable.dtype == self.storage[slot]):
            if slot not in self.spares:
                self.spares[slot] = np.empty(self.shapes[slot], self.storage[slot])
            variable = self.spares[slot]
        self.arrays[slot] = variable
        self.table[slot] = address(variable)

    def renew_outputs(self):
        """Last run's outputs, where the caller has let go of them (no reference, no view),
        are reused: a new large array would cost its page faults on every run."""
        arrays, table = self.arrays, self.table
        for slot in self.fresh_slots:
            if sys.getrefcount(arrays[slot]) > 2:
                arrays[slot] = np.empty(self.shapes[slot], arrays[slot].dtype)
                table[slot] = address(arrays[slot])

    def outputs(self):
        """Fresh outputs go to the caller; anything else (a fed or stored array) is copied;
        what is fetched for its effect alone gives None."""
        arrays = self.arrays
        return [None if none else arrays[slot] if fresh else np.array(arrays[slot])
                for slot, fresh, none in self.output_kinds]


def _unchecked_dtype(name):
    """The numpy dtype an array fed for a tensor of dtype `name` is used as it is in (None
    for bfloat16, whose feeds are always rounded)."""
    return None if name == "bfloat16" else np.dtype(dtypes.BY_NAME[name].np)


def aligned_bytes(n):
    """n bytes, the first at an address that is a multiple of 64."""
    raw = np.empty(n + ALIGN, np.uint8)
    start = -raw.ctypes.data % ALIGN
    return raw[start:start + n]


def address(arr):
    """The address of an array's data. ctypes' from_buffer takes a third of the time of
    arr.ctypes.data (which matters per call), but only for writable, non-empty arrays."""
    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(arr))
    except (TypeError, ValueError, BufferError):
        return arr.ctypes.data


class BoundShapes:
    def __init__(self):
        self.dims = {}

    def bind(self, symbolic, concrete, node):
        for d, n in zip(symbolic, concrete):
            if isinstance(d, Dim):
                if self.dims.setdefault(id(d), n) != n:
                    raise FeedError(f"dimension {d} is {self.dims[id(d)]} in one place and {n} "
                                    f"in another", node)

    def resolve(self, d):
        return self.dims[id(d)] if isinstance(d, Dim) else d


def bind_shapes(exe, arrays):
    """Every symbolic dim's value, by running shape inference over the scheduled nodes."""
    shapes = BoundShapes()
    concrete = {}
    by_slot = {slot: arr.shape for slot, arr in arrays.items()}
    for node in exe.nodes:
        slot = exe.slots.buffers.get((node.id, 0))
        if slot in by_slot:
            outs = [TensorType(node.outputs[0].dtype, by_slot[slot])]
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
        for i, (t, c) in enumerate(zip(node.outputs, outs)):
            shapes.bind(t.shape, c.shape, node)
            concrete[(node.id, i)] = c
    return shapes
