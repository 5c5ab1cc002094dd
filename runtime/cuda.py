"""The CUDA device: a native executable whose program is CUDA C (graphc/targets/cuda.py), run
on the GPU.

Building needs neither a GPU nor pycuda: it compiles the graph and renders the CUDA C, so
`source("cuda")` works anywhere. The first run compiles the CUDA C for the GPU it finds (see
cuda_driver.py); without pycuda or a GPU the run raises a DeviceError.

A plan's buffers are device memory: the ones the memory plan lets share storage are parts of
one arena allocation, the others allocations of their own; scratch that no kernel uses once
the target's passes have run (convolutions' patches read in place) gets none. A run uploads
the feeds, and the variables whose device copies do not hold the session's values already.
Variables stay on the GPU between runs: an assignment's new value is copied into a spare
buffer of the variable's, which becomes the variable's buffer once the run has succeeded (a
failed run leaves every variable's buffer as it was), and the session holds a `Resident`
value that names that buffer; it comes to the host only when asked for (get_value, save). A
run queues the native steps' kernels and the assignments' copies on the stream, then the
fetched outputs' copies to the host, and waits once, at the end. Data moves to the host
mid-run only where it must: the inputs of a host step (whose outputs go back up) and what a
diagnosis reads. A kernel's bad index is read from the error slot at those points and at the
end, and diagnosed on the host as on the CPU device.
"""
import numpy as np

from graphc.compiler import NativeStep
from graphc.targets.cuda import CUDA

from graphc.errors import GraphcError

from . import cuda_driver
from .executable import DeviceValue
from .native import BodyExecutable, NativeExecutable, NativePlan, Replan


class CudaExecutable(NativeExecutable):
    device = "cuda"
    target = CUDA
    reads_device_values = True  # variables' values may be Resident (kept on the GPU)
    _module = None  # loaded on the first run

    @property
    def unused_slots(self):
        """Scratch that no kernel uses once copies are read in place: no buffer on the GPU."""
        return self.program.unused_slots

    def _lifetime_step(self, step):
        # assignments copy on the GPU, where they read no error report (_assigns_on_device)
        if not isinstance(step, NativeStep) and all(n.op == "assign" for n in step.group.nodes):
            return ("copy",) + super()._lifetime_step(step)[1:]
        return super()._lifetime_step(step)

    def run(self, feed_arrays, read_variable, rng_for):
        self._check_fed()
        gpu = cuda_driver.gpu()
        fed = [(slot, arr) for slot, arr in zip(self.feed_slots, feed_arrays)
               if slot is not None]
        variables = [(slot, read_variable(uid)) for slot, uid in self.variable_slots]
        signature = tuple(arr.shape for _, arr in fed + variables)
        # a loop whose step count comes from a value: planned for the last run's length, run
        # again on a plan for the length found where it ran another (as on the CPU device)
        value_dims = self._value_dims.get(signature)
        with gpu.current():
            code = self.program.code
            if self._module is None and code is not None:
                self._module = gpu.load(code.text)
            for _ in range(len(self.steps) + 2):
                key = (signature, tuple(sorted((value_dims or {}).items())))
                plan = self._plans.get(key)
                if plan is None:
                    try:
                        plan = CudaPlan(self, gpu, dict(fed + variables) | self.constants,
                                        value_dims)
                    except GraphcError:
                        if value_dims is not None or not self.value_shaped:
                            raise  # out of memory, say: only an assumed length may be wrong
                        plan = None  # an assumed length of 0 may not fit what follows
                    if plan is None or (plan.value_dims and value_dims is None):
                        # lengths not known yet for these shapes: the references tell them
                        return self._run_on_reference(signature, feed_arrays,
                                                      _on_host(read_variable), rng_for)
                    self._plans[key] = plan
                try:
                    return self._run_plan(plan, gpu, fed, variables, read_variable, rng_for)
                except Replan as found:
                    value_dims = self._value_dims[signature] = {**(value_dims or {}),
                                                                **found.dims}
        raise GraphcError("the lengths of loops whose step counts come from values did not "
                          "settle after running the program again")

    def _run_plan(self, plan, gpu, fed, variables, read_variable, rng_for):
        """One run on a plan (inside gpu.current()): (outputs, new variable values)."""
        for slot, arr in fed:
            plan.upload(slot, arr)
        for slot, arr in variables:
            plan.upload_variable(slot, arr)
        updates, assigned = {}, []
        for step in self.steps:
            if isinstance(step, NativeStep):
                plan.launch(step)
            elif self._assigns_on_device(step.group, plan):
                assigned += self._assign_on_device(step.group, plan)
            else:
                self._run_on_host(step.group, plan, read_variable, rng_for, updates)
        for _, var, value, _ in assigned:
            plan.copy_to_spare(var, value)
        outs = [None if none else plan.fetch(slot)  # what the session hands back
                for slot, none in zip(self.output_slots, self.fetch_none)]
        plan.finish()  # the run's one wait for the GPU
        self._check_errors(plan)
        if self.options.check_numerics:
            plan.download(s for s, d in enumerate(plan.device) if d is not None)
            self._check_numerics(plan, read_variable, rng_for)
        updates = {uid: np.array(value) for uid, value in updates.items()}
        updates.update(plan.take_spares([(uid, var) for uid, var, _, _ in assigned]))
        self.last_plan = plan
        return [out and out.value() for out in outs], updates

    def _assigns_on_device(self, group, plan):
        """Whether a host step only assigns variables their values' whole buffers."""
        return all(node.op == "assign" and plan.shapes[self.slots.buffer(node.inputs[0])]
                   == plan.shapes[self.slots.buffer(node.inputs[1])] for node in group.nodes)

    def _assign_on_device(self, group, plan):
        """An assignment step without the host: its outputs copied on the GPU; (variable uid,
        variable slot, value slot, output slots) of each assignment, whose value the variable
        takes at the end."""
        out = []
        for node in group.nodes:
            value = self.slots.buffer(node.inputs[1])
            outputs = [self.slots.buffer(t) for t in group.outputs if t.node is node]
            for slot in outputs:
                plan.copy(slot, value)
            out.append((node.inputs[0].node.attrs["uid"], self.slots.buffer(node.inputs[0]),
                        value, outputs))
        return out

    def _run_on_host(self, group, plan, read_variable, rng_for, updates):
        """A host step: its inputs come down, the reference runs, its outputs go up."""
        plan.download(self.program.slots_read(group))
        self._check_errors(plan)
        outputs = [self.slots.buffer(t) for t in group.outputs]
        plan.mirror(outputs)
        self._host(group, plan, read_variable, rng_for, updates)
        for slot in outputs:
            plan.upload(slot, plan.arrays[slot])

    def _check_errors(self, plan):
        """Raise the error a kernel reported, diagnosed on the host as on the CPU device."""
        if not plan.read_error():
            return
        node = self.slots.errors[int(plan.error[0]) - 1][0]
        step = next(s for s in self.steps if isinstance(s, NativeStep)
                    and any(node in g.nodes for g in s.groups))
        plan.download(set().union(*(self.program.slots_read(g) for g in step.groups)))
        plan.mirror(self.slots.buffer(t) for g in step.groups for t in g.outputs)
        self._diagnose(step, plan)


def _on_host(read_variable):
    """read_variable giving host arrays (a Resident value's host copy)."""
    def read(uid):
        value = read_variable(uid)
        return value.host() if isinstance(value, DeviceValue) else value
    return read


class CudaBody(BodyExecutable, CudaExecutable):
    """A compiled loop or cond body on the GPU: each step it runs is one run of it (its
    arguments uploaded, its kernels launched, its results fetched)."""


CudaExecutable.body_class = CudaBody


class CudaPlan(NativePlan):
    """Device buffers, dims and launches for one set of fed shapes. `device[slot]` is the
    slot's device memory (None for scratch no kernel uses); `arrays` mirrors on the host the
    slots that host steps, diagnoses and numerics checks read (None elsewhere); `resident`
    maps a variable's slot to the session's array that its device copy holds."""

    def __init__(self, exe, gpu, arrays, value_dims=None):
        super().__init__(exe, arrays, exe.unused_slots, value_dims)
        self.gpu = gpu
        self.device = [None] * len(self.shapes)
        # the buffers of their own first: a feed too large for the GPU is named in the error
        for slot in self.owned:
            node = exe.slot_owners.get(slot)
            dtype = exe.slots.buffer_info[slot][0]
            what = (f"buffer {slot} ({dtype}{list(self.shapes[slot])}"
                    + (f", '{node.name}')" if node else ")"))
            self.device[slot] = gpu.allocate(self.nbytes[slot], what)
        if self.offsets:
            arena = gpu.allocate(self.arena_bytes, f"the arena of {len(self.offsets)} "
                                                   f"intermediate buffers")
            for slot, offset in self.offsets.items():
                self.device[slot] = cuda_driver.Part(arena, offset)
        self.arrays = [None] * len(self.shapes)
        self.resident = {}
        code = exe.program.code
        self.error = np.zeros(code.work_words if code else 2, np.int64)  # and the work area
        self.table = np.array([int(d or 0) for d in self.device] or [0], np.uint64)
        self.spares = {}  # variable slot -> the buffer its next value is copied into
        self.args = []  # on the GPU: the kernels' buffer table, dims, error words
        for array in (self.table, self.dims, self.error):
            self.args.append(gpu.allocate(array.nbytes, "the kernels' tables"))
            gpu.upload(self.args[-1], array)
        # buffer tables by content: assignments swap buffers (take_spares), between two tables
        self.tables = {self.table.tobytes(): self.args[0]}
        self.launches = {}
        for step in exe.steps:
            if isinstance(step, NativeStep):
                self.launches[step.number] = [
                    (exe._module.kernel(k.symbol, k.shape),) + k.grid(self.dims)
                    for k in code.launches[step.number]]
        for slot, value in exe.constants.items():
            self.upload(slot, value)
        self.errors = None  # the error words' fetch of the current run

    def launch(self, step):
        table, dims, error = (int(a) for a in self.args)
        for kernel, blocks, threads, hi in self.launches[step.number]:
            if blocks:
                kernel(blocks, threads, table, dims, error, 0, hi)

    def upload(self, slot, array):
        self.gpu.upload(self.device[slot], np.ascontiguousarray(array, self.storage[slot]))

    def upload_variable(self, slot, value):
        """A variable's value (an array, or Resident in this or another plan's buffer), unless
        its buffer holds it already."""
        if self.resident.get(slot) is value:
            return
        if not isinstance(value, Resident):
            self.upload(slot, value)
        elif value.allocation is not self.device[slot]:
            self.gpu.copy(self.device[slot], value.allocation, self.nbytes[slot])
        self.resident[slot] = value

    def copy_to_spare(self, var, value):
        """Queue the copy of an assignment's value (slot) into the variable's spare buffer;
        its own buffer keeps the value the run's kernels read."""
        if var not in self.spares:
            self.spares[var] = self.gpu.allocate(self.nbytes[var], f"the next value of buffer "
                                                                   f"{var}")
        self.gpu.copy(self.spares[var], self.device[value], self.nbytes[var])

    def take_spares(self, assigned):
        """After a run that succeeded: each assigned variable's spare, holding its new value,
        becomes its buffer (the old one its spare). {variable uid: Resident new value}."""
        news = {}
        for uid, var in assigned:
            self.device[var], self.spares[var] = self.spares[var], self.device[var]
            self.table[var] = int(self.device[var])
            news[uid] = self.resident[var] = Resident(self, var)
        key = self.table.tobytes()
        if key not in self.tables:
            self.tables[key] = self.gpu.allocate(self.table.nbytes, "the kernels' tables")
            self.gpu.upload(self.tables[key], self.table)
        self.args[0] = self.tables[key]
        return news

    def copy(self, slot, source):
        """Queue a copy of one slot's buffer into another's."""
        self.gpu.copy(self.device[slot], self.device[source], self.nbytes[slot])

    def mirror(self, slots):
        """Host arrays for these slots (their contents as they were)."""
        for slot in slots:
            if self.arrays[slot] is None:
                self.arrays[slot] = np.empty(self.shapes[slot], self.storage[slot])

    def download(self, slots):
        """Copy these slots to their host mirrors now (waiting for the kernels before)."""
        slots = list(slots)
        self.mirror(slots)
        for slot in slots:
            self.gpu.download(self.arrays[slot], self.device[slot])

    def fetch(self, slot):
        """Queue the slot's value's copy to the host: a Fetch, whose value() is a new array
        once finish() has waited for the GPU."""
        return Fetch(self, slot, self.gpu.fetch(self.device[slot], self.nbytes[slot]))

    def finish(self):
        """Queue the error words' copy, then wait for everything queued."""
        self.errors = self.gpu.fetch(self.args[2], 16)
        self.gpu.synchronize()

    def read_error(self):
        """Whether a kernel reported an error (then in self.error; the device's is cleared).
        After finish(), the error words it fetched; else they are read now."""
        if self.errors is not None:
            self.error[:2] = self.errors.view(np.int64)
            self.errors = None
        else:
            self.gpu.download(self.error[:2], self.args[2])
        if self.error[0]:
            self.gpu.upload(self.args[2], np.zeros(2, np.int64))
        return bool(self.error[0])


class Fetch:
    """A slot's value on its way to the host (in a staging buffer of the GPU's)."""

    def __init__(self, plan, slot, staged):
        self.plan, self.slot, self.staged = plan, slot, staged

    def value(self):
        plan, slot = self.plan, self.slot
        return self.staged.view(plan.storage[slot]).reshape(plan.shapes[slot]).copy()


class Resident(DeviceValue):
    """A variable's value in a plan's buffer on the GPU: the session's value of the variable
    until another replaces it; the buffer keeps it that long (see the module's doc)."""

    def __init__(self, plan, slot):
        self.gpu, self.allocation = plan.gpu, plan.device[slot]
        self.shape, self.dtype = plan.shapes[slot], plan.storage[slot]
        self._host = None

    def host(self):
        if self._host is None:
            array = np.empty(self.shape, self.dtype)
            with self.gpu.current():
                self.gpu.download(array, self.allocation)
            array.flags.writeable = False
            self._host = array
        return self._host
