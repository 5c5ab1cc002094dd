"""The CPU device: a native executable whose program is LLVM code for the host
(graphc/targets/cpu.py), loaded through the disk cache as object code (llvm_objects.py).

A plan's buffers are host arrays: the ones the memory plan lets share storage are views into
one 64-byte aligned arena, the others arrays of their own. Running points the plan's buffer
table at the feeds, variables and fresh output arrays and calls the segments' entries, each
through one native call; host steps run the numpy reference on the plan's arrays in between.
New values of variables are handed to the session without copies where possible
(`_hand_over`). A program of native calls and random draws only is run again by `run_again`
with no more than the checks that the arrays fit the last plan.
"""
import ctypes
import functools
import operator
import types
from sys import getrefcount

import numpy as np

from graphc.compiler import CollectiveStep, NativeStep
from graphc.errors import GraphcError
from graphc.ir import dtypes
from graphc.targets.cpu import CPU

from .llvm_objects import LoadedProgram
from .memory_plan import ALIGN
from .loops import run_loop
from .native import BodyExecutable, NativeExecutable, NativePlan, Replan
from .threads import default_pool

NO_UPDATES = types.MappingProxyType({})  # what a run that assigns no variable gives back


class CpuExecutable(NativeExecutable):
    device = "cpu"
    target = CPU

    def __init__(self, fetches, feeds, options, name="session", effects=()):
        super().__init__(fetches, feeds, options, name, effects)
        code = self.program.code
        self.library = None if code is None else LoadedProgram(code)
        self._take_code()
        # native calls and random draws only: a run whose feeds fit the last plan as they are
        # can go straight to them (run_again)
        self.collective = any(isinstance(s, CollectiveStep) for s in self.steps)
        self.repeatable = (all(isinstance(s, (NativeStep, CollectiveStep)) or all(
                               n.spec.random for n in s.group.nodes) for s in self.steps)
                           and None not in self.feed_slots and not self.options.check_numerics)

    def _take_code(self):
        """The entries (and driver) of the library's code, as it now is."""
        self.entries = {step.number: self.library.entry(step.number)
                        for step in self.steps if isinstance(step, NativeStep)}
        # a loop body's driver, which runs all its steps in one call (loops.run_loop); only
        # where every step of the body is native
        self.driver = (self.library.loop_driver() if self.library is not None and all(
            isinstance(s, NativeStep) for s in self.steps) else None)

    def _swapped(self):
        """The library swapped in its chosen code: the plans' calls and run_again are the quick
        code's, so new plans take the new code's."""
        self._take_code()
        self._plans.clear()
        self.__dict__.pop("run_again", None)

    def settle(self):
        """Wait for the chosen code where the quick tier's runs, and take it (a profile times
        the code that stays, and its plan must not change under it)."""
        if self.library is not None and self.library.upgrade(wait=True):
            self._swapped()

    def _checking_for_chosen_code(self, again):
        """`again` (a plan's run_again) that first swaps in the chosen code where it is ready
        (then None: run() makes the new plans). Installed only while the quick code runs."""
        def checked(args, read_variable, rng_for):
            if self.library.upgrade():
                self._swapped()
                return None
            return again(args, read_variable, rng_for)
        return checked

    def run(self, feed_arrays, read_variable, rng_for):
        self._check_fed()
        if self.library is not None and self.library.upgrade():
            self._swapped()
        given = [(slot, arr) for slot, arr in zip(self.feed_slots, feed_arrays)
                 if slot is not None]
        given += [(slot, read_variable(uid)) for slot, uid in self.variable_slots]
        signature = tuple(arr.shape for _, arr in given)
        # a loop whose step count comes from a value: its stacked outputs' length is assumed
        # to be the last run's (0 at first); where the loop ran another number of steps, the
        # run starts again on a plan for the lengths found (Replan)
        value_dims = self._value_dims.get(signature)
        for _ in range(len(self.steps) + 2):
            key = (signature, tuple(sorted((value_dims or {}).items())))
            plan = self._plans.get(key)
            if plan is None:
                try:
                    plan = Plan(self, dict(given) | self.constants, value_dims)
                except GraphcError:
                    if value_dims is not None or not self.value_shaped:
                        raise  # out of memory, say: only an assumed length may be wrong
                    plan = None  # an assumed length of 0 may not fit what follows the loop
                if plan is None or (plan.value_dims and value_dims is None):
                    # lengths not known yet for these shapes: this run goes through the
                    # reference, which tells them
                    return self._run_on_reference(signature, feed_arrays, read_variable,
                                                  rng_for)
                self._plans[key] = plan
            plan.bind(given)
            plan.stale_packed_b()
            for uid, _, value in self.in_variables:
                plan.bind_in_place(value, read_variable(uid))
            try:
                return self._call(plan, read_variable, rng_for)
            except Replan as found:
                value_dims = self._value_dims[signature] = {**value_dims, **found.dims}
        raise GraphcError("the lengths of loops whose step counts come from values did not "
                          "settle after running the program again")

    def _call(self, plan, read_variable, rng_for):
        """Run the steps on a bound plan: (outputs, new variable values)."""
        plan.renew_outputs()
        updates = {}
        self._steps(plan, read_variable, rng_for, updates)
        if self.options.check_numerics:
            self._check_numerics(plan, read_variable, rng_for)
        self.last_plan = plan
        if self.repeatable:  # run_again (Executable's: None) is now this plan's shortcut
            quick = self.library is not None and self.library.quick
            self.run_again = self._checking_for_chosen_code(plan.again) if quick else plan.again
        if not updates and not self.assigned:  # the common case of functions, kept short
            return plan.outputs(), updates
        for uid, _, value in self.assigned:
            updates[uid] = plan.arrays[value]
        return plan.outputs(), self._hand_over(plan, updates, read_variable)

    def _steps(self, plan, read_variable, rng_for, updates):
        """The plan's calls in order: native segments, and host steps on its arrays."""
        if self.collective:
            return self._steps_collective(plan, read_variable, rng_for, updates)
        for step, call in plan.calls:
            if call is None:
                self._host(step.group, plan, read_variable, rng_for, updates)
            elif call():
                self._diagnose(step, plan)

    def _steps_collective(self, plan, read_variable, rng_for, updates):
        """_steps for a program with native collectives: while one is outstanding, MPI gets
        a call (MPI_Test) after every step to move it along; a step that raises waits for the
        outstanding ones first (MPI must not write into buffers no longer theirs)."""
        from graphc import distributed
        comm = distributed.communicator()
        try:
            for step, call in plan.calls:
                if call is None:
                    self._host(step.group, plan, read_variable, rng_for, updates)
                elif call():
                    self._diagnose(step, plan)
                if comm.outstanding:
                    comm.progress()
        except BaseException:
            for pending in plan.pending.values():
                comm.wait(pending)
            plan.pending.clear()
            raise

    def _host(self, group, plan, read_variable, rng_for, updates, check=False):
        """A loop whose body compiled runs it in the plan's buffers (loops.run_loop); other
        host steps (and a loop while checking numerics) as NativeExecutable's."""
        node = group.nodes[0]
        if (len(group.nodes) == 1 and node.op == "loop" and node.attrs["body"] in self.bodies
                and not check and run_loop(self, node, plan)):
            return
        super()._host(group, plan, read_variable, rng_for, updates, check)

    @property
    def runs_in_place(self):
        """Whether a loop may run this body in its plan's buffers (loops.run_loop): not while
        checking numerics (nor, as run_loop finds, where a loop inside it has a length only
        its run tells)."""
        return not self.options.check_numerics

    def plan_for(self, given):
        """The plan (made once per set of shapes) of a compiled body for its arguments
        `given` [(slot, array)], bound to them."""
        key = tuple(arr.shape for _, arr in given)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = Plan(self, dict(given) | self.constants)
        plan.bind(given)
        plan.stale_packed_b()  # a new run of the loop: its invariant arguments may be new
        return plan

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


class CpuBody(BodyExecutable, CpuExecutable):
    """A compiled loop or cond body on the CPU (see runtime/loops.py for how loops run it)."""


CpuExecutable.body_class = CpuBody


class Plan(NativePlan):
    """A CPU plan: host arrays for the buffers (views into one arena where they share
    storage), the table of their addresses the kernels read, and the calls of the steps."""

    def __init__(self, exe, arrays, value_dims=None):
        self.given = set(arrays)
        self.in_place = {value for _, _, value in exe.in_variables}  # bound per run
        super().__init__(exe, arrays, self.given | self.in_place, value_dims)
        self.fresh = exe.fetched_slots - self.given
        self.fresh_slots = sorted(self.fresh)
        self.arrays = [None] * len(self.shapes)
        self.spares = {}  # in-place slots' own buffers, for variables they cannot write over
        self.packed_b = exe.slots.packed_b
        arena = aligned_bytes(self.arena_bytes)
        for slot, start in self.offsets.items():
            self.arrays[slot] = arena[start:start + self.nbytes[slot]].view(
                self.storage[slot]).reshape(self.shapes[slot])
        for slot in self.owned:
            self.arrays[slot] = np.empty(self.shapes[slot], self.storage[slot])
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
        # each step with what runs it: a native call, a collective's start or wait, or None
        # for the reference
        self.pending = {}  # group id -> the started collective (distributed.Pending)
        self.calls = [(step, functools.partial(exe.entries[step.number], self.ctx_address,
                                               self.pool) if isinstance(step, NativeStep)
                       else self._collective(exe, step) if isinstance(step, CollectiveStep)
                       else None) for step in exe.steps]
        if exe.repeatable:  # what run_again checks: the feeds' types and C-contiguous strides
            self.feed_types = []
            for slot in exe.feed_slots:
                dtype = _unchecked_dtype(exe.slots.buffer_info[slot][0])
                # a new array's strides, as this numpy makes them (an empty one's vary by
                # version); np.empty touches none of its pages
                strides = dtype and np.empty(self.shapes[slot], dtype).strides
                self.feed_types.append((slot, dtype, self.shapes[slot], strides))
        # run_again's shortest way, where a run is its native calls alone and hands back its
        # fresh outputs as they are: the calls, and what picks the outputs from the arrays
        direct = (exe.repeatable and not exe.collective and not exe.assigned
                  and exe.library is not None and exe.output_slots
                  and all(fresh and not none for _, fresh, none in self.output_kinds)
                  and all(call is not None for _, call in self.calls))
        self.direct = self.calls if direct else None
        if exe.repeatable:
            self.again = _again(exe, self)

    def _collective(self, exe, step):
        """The call of a collective's start or wait: the job's communicator on the addresses
        the buffer table holds when it runs (MPI reads the input buffer and writes the output
        buffer where they are: no copy, no Python object in between)."""
        from graphc import distributed
        node, key = step.group.nodes[0], step.group.id
        source, target = exe.slots.buffer(node.inputs[0]), exe.slots.buffer(node.outputs[0])
        table, arrays, pending = self.table, self.arrays, self.pending
        comm = distributed.communicator()
        if step.phase == "start":
            uid, op = node.attrs["uid"], node.attrs["reduce"]
            static = node.inputs[0].type.is_static  # its size cannot change from call to call

            def start():
                pending[key] = comm.start_allreduce(uid, op, arrays[target],
                                                    int(table[source]), int(table[target]),
                                                    static)
                return 0
            return start

        def wait():
            comm.wait(pending.pop(key))
            return 0
        return wait

    def stale_packed_b(self):
        """Mark the Gemms' packed copies of B stale (their first word zero), so that their
        next calls pack B again, and zero their counts of packings (the second word): before
        each run (of a loop, for a loop's body)."""
        for words in self._packed_b_headers():
            words[:] = 0

    def packs_of_b(self):
        """How many times the Gemms packed B into their kept copies since stale_packed_b."""
        return sum(int(words[1]) for words in self._packed_b_headers())

    def _packed_b_headers(self):
        """The first two words of each packed copy of B (codegen/llvm/gemm.py's header)."""
        return [self.arrays[slot].view(np.uint8)[:16].view(np.int64) for slot in self.packed_b
                if self.arrays[slot] is not None]  # (None: a kernel pass dropped its Gemm)

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
            if getrefcount(arrays[slot]) > 2:
                arrays[slot] = np.empty(self.shapes[slot], arrays[slot].dtype)
                table[slot] = address(arrays[slot])

    def outputs(self):
        """Fresh outputs go to the caller; anything else (a fed or stored array) is copied;
        what is fetched for its effect alone gives None."""
        arrays = self.arrays
        return [None if none else arrays[slot] if fresh else np.array(arrays[slot])
                for slot, fresh, none in self.output_kinds]


def _again(exe, plan):
    """exe.run_again once `plan` ran: run() for arguments that fit the plan as they are
    (ndarrays of its shapes and storage dtypes, C-contiguous) when the variables it read are
    the same arrays: (outputs, new variable values), or None where anything differs and run()
    must check the feeds. A function of its own per plan, whose closure holds what it reads:
    each attribute lookup or Python call costs a few percent of a small function's run."""
    arrays, table, feed_types, variable_slots = (plan.arrays, plan.table, plan.feed_types,
                                                 exe.variable_slots)
    if plan.direct is not None:  # its native calls alone, and its fresh outputs as they are
        library, renew_outputs = exe.library, plan.renew_outputs
        run, bound = library.run, library.bound  # every native call in one (cpu.CpuCode)
        pick = operator.itemgetter(*exe.output_slots)
        single = len(exe.output_slots) == 1  # itemgetter gives one item alone, not in a tuple

    def again(args, read_variable, rng_for):
        at = 0  # not zip(args, feed_types), which costs more than a small program runs
        for arg in args:
            slot, dtype, shape, strides = feed_types[at]
            at += 1
            # C-contiguous strides tell it faster than arg.flags (an array whose axes of
            # extent 1 have other strides takes the checked way)
            if (type(arg) is not np.ndarray or arg.dtype is not dtype or arg.shape != shape
                    or arg.strides != strides):
                return None
            if arg is not arrays[slot]:
                arrays[slot] = arg
                table[slot] = address(arg)
        if variable_slots:
            for slot, uid in variable_slots:
                if read_variable(uid) is not arrays[slot]:
                    return None
        if plan.direct is None:
            return exe._call(plan, read_variable, rng_for)
        renew_outputs()
        if library.bound_plan is not plan:
            bound.ctx, bound.pool = plan.ctx_address, plan.pool
            library.bound_plan = plan
        run()
        if bound.failed:
            exe._diagnose(plan.direct[bound.failed - 1][0], plan)
        outs = pick(arrays)
        return [outs] if single else list(outs), NO_UPDATES
    return again


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
