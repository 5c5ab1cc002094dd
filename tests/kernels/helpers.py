"""Running a graph as kernels: optimize it, lower every fusion group with one Slots, bind the
run-time dims from the feeds, allocate a flat buffer per slot, and run the kernels in partition
order. Groups that do not lower run through the ops' numpy references, as the runtime does.

`execute` takes the function that runs one kernel, so a code generator's tests run the same
programs through their compiled kernels and compare with `run_reference`.
"""
import numpy as np

import graphc as gc
from graphc.ir import dtypes
from graphc.ir.graph import nodes_needed
from graphc.ir.types import TensorType
from graphc.kernels import interpret
from graphc.kernels.ir import Unsupported
from graphc.kernels.lower import Slots, lower_group
from graphc.ops.registry import call_reference
from graphc.passes import optimize

# Stored into every buffer before a run, so an element no kernel writes shows up in results.
POISON = {"f": np.nan, "i": -777_777, "b": True}


class Program:
    """The kernels of one set of outputs. `steps` lists (group, kernels), kernels None for a
    group that runs through the references; `unsupported` those groups."""

    def __init__(self, outputs, level="O2"):
        self.fetches = list(outputs)
        self.compilation = optimize(self.fetches, level)
        self.slots = Slots()
        self.steps, self.unsupported = [], []
        for group in self.compilation.partition.groups:
            try:
                kernels = lower_group(group, self.slots, f"k{group.id}")
            except Unsupported:
                kernels = None
                self.unsupported.append(group)
                for t in group.inputs + group.outputs:
                    self.slots.buffer(t)
            self.steps.append((group, kernels))

    @property
    def kernels(self):
        return [k for _, kernels in self.steps for k in kernels or ()]

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
        """Each run-time dim's value, bound by shape inference from the sources' shapes (the
        dims of reshapes, concats and pads are new symbols that only inference relates)."""
        bound, concrete = {}, {}
        for node in nodes_needed(self.compilation.outputs):
            if (node.id, 0) in values:
                types = [values[node.id, 0]]
            else:
                assert node.spec.kind != "source", f"{node.op} '{node.name}' needs a value"
                out = node.spec.infer(*[concrete[t.node.id, t.index] for t in node.inputs],
                                      **node.attrs)
                types = [out] if isinstance(out, TensorType) else list(out)
            for t, c in zip(node.outputs, types):
                concrete[node.id, t.index] = TensorType(t.dtype, c.shape)
                for d, n in zip(t.shape, c.shape):
                    if not isinstance(d, int):
                        assert bound.setdefault(id(d), n) == n, f"dim {d} is two sizes"
        return [bound[id(d)] for d in self.slots.dim_objects], bound

    def execute(self, feed, run_kernel=interpret.run_kernel):
        """The fetched values for `feed` ({placeholder tensor of the original graph: array})."""
        values = self.sources(feed)
        dims, bound = self.dims(values)

        def shape(t):
            return tuple(d if isinstance(d, int) else bound[id(d)] for d in t)

        buffers = []
        for dtype, dshape in self.slots.buffer_info:
            buf = np.empty(int(np.prod(shape(dshape), dtype=np.int64)), dtypes.BY_NAME[dtype].np)
            buf.fill(POISON[buf.dtype.kind])
            buffers.append(buf)
        for key, slot in self.slots.buffers.items():
            if key in values:
                buffers[slot][...] = values[key].reshape(-1)

        def read(t):
            key = (t.node.id, t.index)
            if key in values:
                return values[key]
            return buffers[self.slots.buffers[key]].reshape(shape(t.shape))

        for group, kernels in self.steps:
            if kernels is None:
                for t, value in zip(group.outputs, run_group(group, read)):
                    buffers[self.slots.buffers[t.node.id, t.index]][...] = value.reshape(-1)
            else:
                for kernel in kernels:
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
