"""Loops on device cpu: the compiled body run in the enclosing plan's buffers.

A loop node (graphc/ops/control_flow.py) whose body compiled (graphc.compiler: HostStep.bodies)
runs here instead of through its numpy reference. The body is an executable of its own
(cpu.CpuBody) with one plan per set of argument shapes, reused across steps, runs and lengths.
Each step points the body plan's buffer table at:

- each sequence's row t (an address into the enclosing plan's sequence buffer, no copy),
- each carry's current value: the initial value's buffer at the first step, then the row of
  the stacked output the previous step wrote,
- each non-sequence's buffer (bound once per loop run),
- for each result, the row t of its stacked output, which the body's last kernel writes
  directly (a result the body does not compute itself, such as an argument passed through or
  a constant, is copied there after the step).

Where a stacked output has no buffer (nothing reads it) or is shorter than the run (a while
loop that ran more steps than the plan assumed), carries alternate between two scratch buffers.
The final carries are copied out once, at the end. Where every step of the body is native,
the whole loop is one call of the body's driver (codegen/llvm/loop_driver.py), a while loop's
compiled condition included: it runs inside that call before each step. A while loop without
maximum_iterations runs as calls for 1, 2, 4, ... times the rows its stacked outputs have,
until its condition fails. Otherwise the body's steps run from here: native segments through
their entries (one ctypes call per segment per step), and any host step of the body on its
plan's arrays, the condition (a compiled body too) before each step, its bool result read
from its plan.

A stacked output whose length the enclosing plan assumed (a step count known only from values)
and that ran another number of steps raises native.Replan, as a host loop does.
"""
import ctypes

import numpy as np

from graphc.compiler import NativeStep
from graphc.errors import ShapeError
from graphc.ops.control_flow import step_count

from .native import Replan


def run_loop(exe, node, plan):
    """Run loop `node` of CPU executable `exe` on `plan`'s arrays; False (having done nothing)
    where its bodies cannot run in place (a body with a loop of its own whose length only its
    run tells, or while checking numerics): the caller then runs the loop's reference with
    the compiled bodies as its body runner (each step a run of the body's executable)."""
    attrs = node.attrs
    body, cond = attrs["body"], attrs["cond"]
    bexe = exe.bodies[body]
    cexe = exe.bodies.get(cond) if cond is not None else None
    if not bexe.runs_in_place or (cond is not None and (cexe is None or not cexe.runs_in_place)):
        return False
    buffers = exe.slots.buffers
    ins = [plan.arrays[buffers[t.node.id, t.index]] for t in node.inputs]
    n_seq, n_carry, n_nonseq = attrs["counts"]
    seqs = ins[1:1 + n_seq]
    carries = ins[1 + n_seq:1 + n_seq + n_carry]
    nonseqs = ins[1 + n_seq + n_carry:1 + n_seq + n_carry + n_nonseq]
    extras = ins[1 + n_seq + n_carry + n_nonseq:]
    reverse = attrs["reverse"]
    total = step_count(ins[0], [len(s) for s in seqs], attrs["bounded"], reverse, attrs["what"])
    n_res = len(body.results)
    outs = [plan.arrays[buffers[node.id, k]] if (node.id, k) in buffers else None
            for k in range(len(node.outputs))]
    stacked = outs[:n_res]
    current = list(carries)  # each carry's value now
    t = 0
    if total != 0:
        step = Stepper(bexe, [s[0 if not reverse else len(s) - 1, ...] if len(s) else
                              np.empty(s.shape[1:], s.dtype) for s in seqs]
                       + current + nonseqs)
        test = Stepper(cexe, current + extras) if cexe is not None else None
        if step.plan.value_dims or (test is not None and test.plan.value_dims):
            return False  # a loop inside the body whose length only its run tells
        scratch = [None] * n_res
        for k in range(n_res):
            shape = step.result_shape(k)
            if stacked[k] is not None and stacked[k].shape[1:] != shape:
                raise ShapeError(f"{attrs['what']}: step values of shape {shape} do not fit the "
                                 f"stacked output's {stacked[k].shape}", node)
            if k < n_carry and shape != carries[k].shape:
                raise ShapeError(f"{attrs['what']}: the loop changes a carried value's shape "
                                 f"from {carries[k].shape} to {shape} at run time", node)
        step.bind_fixed(range(n_seq + n_carry, n_seq + n_carry + n_nonseq), nonseqs)
        if test is not None:
            test.bind_fixed(range(n_carry, n_carry + len(extras)), extras)
        rows = [None if s is None else s.shape[0] for s in stacked]
        done = False
        if bexe.driver is not None and all(step.direct) and (test is None or test.native):
            finals = run_driven(step, test, seqs, current, stacked, total, reverse)
            if finals is not None:  # else a kernel failed: stepping again diagnoses it
                (current, t), done = finals, True
        exe.loop_modes[node.name] = "native driver" if done else "compiled body, stepped"
        while not done and (total is None or t < total):
            if test is not None:
                test.bind_args(range(n_carry), current)
                test.run()
                if not test.result(0):
                    break
            i = total - 1 - t if reverse else t
            step.bind_args(range(n_seq), [s[i, ...] for s in seqs])
            step.bind_args(range(n_seq, n_seq + n_carry), current)
            dests = []
            for k in range(n_res):
                if stacked[k] is not None and i < rows[k]:
                    dests.append(stacked[k][i, ...])
                    continue
                if scratch[k] is None:  # carries alternate between two
                    scratch[k] = [np.empty(step.result_shape(k), step.result_dtype(k))
                                  for _ in range(2 if k < n_carry else 1)]
                pair = scratch[k]
                dests.append(pair[1] if k < n_carry and current[k] is pair[0] else pair[0])
            step.bind_results(dests)
            step.run()
            step.copy_results(dests)
            current = dests[:n_carry]
            t += 1
    exe.loop_packs[node.name] = step.plan.packs_of_b() if total != 0 else 0
    for j in range(n_carry):
        final = outs[n_res + j]
        if final is not None and final is not current[j]:
            np.copyto(final, current[j])
    if outs[-1] is not None:
        outs[-1][...] = t
    found = {}
    for k, out in enumerate(node.outputs[:n_res]):
        d = out.shape[0]
        if stacked[k] is not None and not isinstance(d, int) and id(d) in plan.value_dims \
                and stacked[k].shape[0] != t:
            found[id(d)] = t
    if found:
        raise Replan(found)
    return True


class Stepper:
    """A compiled body's plan for arguments of the shapes of `first` (its arrays for one
    step), rebound each step: arguments and result destinations by address."""

    def __init__(self, exe, first):
        self.exe = exe
        self.arg_slots = exe.feed_slots  # None: an argument the body does not read
        self.plan = exe.plan_for([(s, a) for s, a in zip(self.arg_slots, first)
                                  if s is not None])
        plan = self.plan
        slots = exe.output_slots
        # results the body's kernels write (into wherever bind_results points them), and
        # results it only passes on (an argument, a constant, a tensor returned twice)
        self.direct = [slot not in plan.given and slots.count(slot) == 1 for slot in slots]
        self.result_slots = slots
        # a condition the body's driver may run (every step native, its result a kernel's)
        self.native = (all(isinstance(s, NativeStep) for s in exe.steps) and len(slots) == 1
                       and self.direct[0] and plan.arrays[slots[0]].itemsize == 1)

    def result_shape(self, k):
        return self.plan.shapes[self.result_slots[k]]

    def result_dtype(self, k):
        return self.plan.storage[self.result_slots[k]]

    def bind_fixed(self, positions, arrays):
        self.bind_args(positions, arrays)

    def bind_args(self, positions, arrays):
        plan, slots = self.plan, self.arg_slots
        for p, arr in zip(positions, arrays):
            slot = slots[p]
            if slot is not None:
                plan.arrays[slot] = arr
                plan.table[slot] = arr.ctypes.data

    def bind_results(self, dests):
        plan = self.plan
        for slot, direct, dest in zip(self.result_slots, self.direct, dests):
            if direct:
                plan.arrays[slot] = dest
                plan.table[slot] = dest.ctypes.data

    def copy_results(self, dests):
        plan = self.plan
        for slot, direct, dest in zip(self.result_slots, self.direct, dests):
            if not direct:
                np.copyto(dest, plan.arrays[slot])

    def run(self):
        self.exe._steps(self.plan, None, None, {})

    def result(self, k):
        return bool(self.plan.arrays[self.result_slots[k]])


def run_driven(step, test, seqs, carries, stacked, total, reverse):
    """The loop through its body's driver: (final carries, steps run), or None where a kernel
    reported an error. A while loop (`test`, its condition) runs in calls of growing length,
    each going on from the carries the last one left, the first as long as its stacked
    outputs (the length the plan assumed), which it writes in place, until the condition
    fails or maximum_iterations (`total`) is reached."""
    if test is None:
        return run_native(step, seqs, carries, stacked, total, reverse)
    t = 0
    chunk = max([s.shape[0] for s in stacked if s is not None] + [0]) or 16
    while True:
        n = chunk if total is None else min(chunk, total - t)
        if n == 0:
            return carries, t
        rows = [s[t:t + n] if s is not None and s.shape[0] >= t + n else None for s in stacked]
        done = run_native(step, [], carries, rows, n, False, test)
        if done is None:
            return None
        carries, ran = done
        t += ran
        if ran < n:
            return carries, t
        chunk *= 2


def run_native(step, seqs, carries, stacked, total, reverse, test=None):
    """At most `total` (> 0) steps in one call of the body's driver
    (codegen/llvm/loop_driver.py): each binding says by pointer arithmetic where an argument
    or result lies at step t; a while loop's condition `test` (a Stepper whose plan has its
    other arguments bound) runs before each step in the same call. Returns the final carries
    (views of the stacked outputs) and the number of steps run, or None where a kernel
    reported an error (then nothing of the run is kept: the caller steps through the loop
    again)."""
    plan = step.plan
    arg_slots = step.arg_slots
    records = []
    tests = []  # the condition's bindings: the carries, as the body's

    def rows(base, row):
        """(first, base, stride) of row t (row T-1-t in a reverse loop) of a buffer."""
        if reverse:
            start = base + row * (total - 1)
            return start, start, -row
        return base, base, row
    n_seq = len(seqs)
    for i, s in enumerate(seqs):
        if arg_slots[i] is not None:
            records.append((arg_slots[i],) + rows(s.ctypes.data, s.strides[0] if s.ndim else 0))
    dests = []
    for k, slot in enumerate(step.result_slots):
        shape, dtype = step.result_shape(k), step.result_dtype(k)
        out = stacked[k]
        if out is None or out.shape[0] < total:  # scratch: the carries' whole history, the
            out = np.empty((total if k < len(carries) else 1,) + shape, dtype)  # others' last
        dests.append(out)
        row = out.strides[0] if out.shape[0] > 1 else 0
        records.append((slot,) + rows(out.ctypes.data, row))
    for j, init in enumerate(carries):
        slot = arg_slots[n_seq + j]
        out, row = dests[j], dests[j].strides[0]
        # step t reads the row step t-1 wrote: row t-1 (forward) or T-t (reverse)
        base = out.ctypes.data + (row * total if reverse else -row)
        binding = (init.ctypes.data, base, -row if reverse else row)
        if slot is not None:
            records.append((slot,) + binding)
        if test is not None and test.arg_slots[j] is not None:
            tests.append((test.arg_slots[j],) + binding)
    desc = np.array([total, len(records)] + [w for r in records for w in r]
                    + condition(test, tests), np.int64)
    status = step.exe.driver(plan.ctx_address, plan.pool, desc.ctypes.data)
    if status:
        plan.error[:] = 0
        if test is not None:
            test.plan.error[:] = 0
        return None
    ran = int(desc[0])
    if ran == 0:
        return list(carries), 0
    last = total - ran if reverse else ran - 1
    return [dests[j][last if dests[j].shape[0] > 1 else 0, ...]
            for j in range(len(carries))], ran


def condition(test, records):
    """The words of a driver's desc that say how to run the condition `test` (none: [0])."""
    if test is None:
        return [0]
    cexe, plan = test.exe, test.plan
    entries = [ctypes.cast(cexe.entries[s.number], ctypes.c_void_p).value for s in cexe.steps]
    result = plan.arrays[test.result_slots[0]].ctypes.data
    return ([len(entries), plan.ctx_address, plan.pool, result, len(records)] + entries
            + [w for r in records for w in r])
