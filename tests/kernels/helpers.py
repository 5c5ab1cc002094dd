"""Running a graph as kernels: compile it through the one pipeline (graphc.compiler), by default
for the kernel IR's own target (no target passes, every Gemm dtype, no code), allocate a flat
buffer per slot, bind the run-time dims from the feeds as the runtime does, and run the steps
in order: kernels through `run_kernel`, groups that do not lower through the ops' numpy
references, as the runtime does.

`execute` takes the function that runs one kernel, so a code generator's tests run the same
programs through their compiled kernels and compare with `run_reference`.
"""
import numpy as np

import graphc as gc
from graphc.compiler import HostStep, NativeStep, compile
from graphc.ir import dtypes
from graphc.kernels import interpret
from graphc.ops.registry import call_reference
from graphc.targets import KERNEL_IR

# Stored into every buffer before a run, so an element no kernel writes shows up in results.
# (integers: -777777 wrapped to the type's width)
POISON = {"f": np.nan, "i": -777_777, "u": -777_777, "b": True}


class Program:
    """The compiled program (graphc.compiler.Program) of one set of outputs for `target`.
    `steps` are its steps; `unsupported` the groups of its host steps."""

    def __init__(self, outputs, level="O2", target=KERNEL_IR):
        self.fetches = list(outputs)
        self.program = compile(self.fetches, target, level)
        self.compilation = self.program.compilation
        self.slots = self.program.slots
        self.steps = self.program.steps
        self.unsupported = [s.group for s in self.steps if isinstance(s, HostStep)]

    @property
    def kernels(self):
        return [k for s in self.steps if isinstance(s, NativeStep) for k in s.kernels]

    def sources(self, feed):
        """Values of the optimized graph's sources: fed placeholders (matched by uid),
        constants, and variables' initial values."""
        fed = {t.node.attrs["uid"]: np.asarray(v) for t, v in feed.items()}
        values = {}
        for node in self.compilation.graph.nodes:
            t = node.outputs[0] if node.outputs else None
            if node.op == "placeholder" and node.attrs["uid"] in fed:
                values[node.id, 0] = dtypes.to_storage(fed[node.attrs["uid"]], t.dtype)
            elif node.op == "constant":
                values[node.id, 0] = node.attrs["value"].array
            elif node.op == "variable" and node.attrs["init"] is not None:
                values[node.id, 0] = node.attrs["init"].array
        return values

    def dims(self, values):
        """(each run-time dim's value, in slot order; the BoundShapes), bound from the sources'
        values as the runtime binds them."""
        buffers_of = self.slots.buffers
        shapes = self.program.bind_shapes({buffers_of[key]: v.shape for key, v in values.items()
                                           if key in buffers_of})
        return [shapes.dims[id(d)] for d in self.slots.dim_objects], shapes

    def execute(self, feed, run_kernel=interpret.run_kernel):
        """The fetched values for `feed` ({placeholder tensor of the original graph: array})."""
        values = self.sources(feed)
        buffers_of = self.slots.buffers
        dims, shapes = self.dims(values)
        buffers = []
        for dtype, dshape in self.slots.buffer_info:
            buf = np.empty(int(np.prod(shapes.shape(dshape), dtype=np.int64)),
                           dtypes.BY_NAME[dtype].np)
            buf[...] = np.asarray(POISON[buf.dtype.kind]).astype(buf.dtype)
            buffers.append(buf)
        for key, slot in buffers_of.items():
            if key in values:
                buffers[slot][...] = values[key].reshape(-1)

        def read(t):
            key = (t.node.id, t.index)
            if key in values:
                return values[key]
            return buffers[buffers_of[key]].reshape(shapes.shape(t.shape))

        for step in self.steps:
            if isinstance(step, HostStep):
                for t, value in zip(step.group.outputs, run_group(step.group, read)):
                    buffers[buffers_of[t.node.id, t.index]][...] = value.reshape(-1)
            else:
                for kernel in step.kernels:
                    run_kernel(kernel, buffers, dims)
        return [np.array(read(t)) for t in self.compilation.outputs]


def run_group(group, read):
    """A group's outputs computed node by node through the references."""
    local = {}
    for node in group.nodes:
        assert not node.spec.stateful, f"{node.op} is stateful: no reference run here"
        arrays = [local[t.node.id, t.index] if (t.node.id, t.index) in local else read(t)
                  for t in node.inputs]
        outs = call_reference(node, arrays)
        for t, out in zip(node.outputs, outs if isinstance(outs, tuple) else (outs,)):
            local[node.id, t.index] = dtypes.to_storage(out, t.dtype)
    return [local[t.node.id, t.index] for t in group.outputs]


def assert_matches_reference(outputs, feed, rtol=1e-5, atol=1e-6, unsupported=0,
                             run_kernel=interpret.run_kernel):
    """Run outputs as kernels and compare every fetched value with the reference device;
    `unsupported` is how many groups are expected not to lower. Returns the Program."""
    program = Program(outputs)
    got = program.execute(feed, run_kernel)
    want = run_reference(outputs, feed)
    assert len(got) == len(want) == len(outputs)
    assert len(program.unsupported) == unsupported, \
        [g.describe() for g in program.unsupported]
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.dtype == w.dtype and g.shape == w.shape, (i, g.dtype, g.shape, w.dtype, w.shape)
        if g.dtype.kind == "f":
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=f"output {i}")
        else:
            np.testing.assert_array_equal(g, w, err_msg=f"output {i}")
    return program


def run_reference(outputs, feed):
    """The reference device's values of outputs (on their original graph)."""
    sess = gc.Session(graph=outputs[0].graph, device="reference")
    return sess.run(list(outputs), feed)
