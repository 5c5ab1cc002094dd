"""What the lowerings of matrix products (matmul, the convolutions) share: the kernels of one
group in order, which are copies of operands in the product's compute dtype, the Gemm, and a
last loop over the product that rounds it to the op's dtype and computes the fused epilogue.

A Gemm of float16 or bfloat16 sums its products in float32 and rounds once (kernel IR); where
the target's Gemm takes no such dtype (`Slots.gemm_dtypes`: the CPU's LLVM GEMM), the product
runs in float32 instead: its operands are cast while they are copied into float32 scratch, its
result is rounded once at the end, by the epilogue's loop. Either way the result is numpy's
(which sums 16-bit floats in float32) and the reference's (bfloat16: a float32 product,
rounded).
"""
from . import ir
from . import lowering_rules as rules
from .lower import Emitter, loop_nest, nest

WIDER = {"float16": "float32", "bfloat16": "float32"}  # where the target's Gemm has no dtype


def compute_dtype(dtype, slots):
    """The dtype a product of `dtype` runs in on the target of `slots`."""
    return dtype if dtype in slots.gemm_dtypes else WIDER.get(dtype, dtype)


class Products:
    """The kernels of one contraction group, in order (see the module's doc)."""

    def __init__(self, group, slots, name, dtype=None):
        """`dtype`: the compute dtype, by default compute_dtype's for the op's."""
        self.group, self.slots, self.name = group, slots, name
        self.node = group.root
        self.out = self.node.outputs[0]
        self.dtype = dtype or compute_dtype(self.out.dtype.name, slots)
        self.k = Emitter(group, slots)
        self.kernels = []

    def add(self, body, nodes=None):
        nodes = nodes or tuple(n.name for n in self.group.nodes)
        self.kernels.append(ir.Kernel(f"{self.name}_{len(self.kernels)}", body, {}, nodes))

    def cast(self, value):
        return rules._as_dtype(value, self.dtype)

    def contiguous(self, t):
        """A slot holding t row-major in the compute dtype: t's own buffer when it is computed
        outside the group in that dtype, else a scratch copy (prologue computed on the way)."""
        if t.node.id not in self.k.members and t.dtype.name == self.dtype:
            return self.slots.buffer(t)
        slot = self.slots.scratch(self.dtype, t.shape)
        dims = self.k.dims(t.shape)
        vars_ = [ir.Var(f"i{a}") for a in range(len(dims))]
        store = ir.Store(slot, ir.linear(vars_, ir.contiguous_strides(dims)),
                         self.cast(self.k.value(t, tuple(vars_))))
        self.add(nest(list(zip(vars_, dims)), (store,), parallel=True))
        return slot

    def strided(self, t):
        """(slot, offset, strides) of t in the compute dtype: read in place where t is
        computed outside the group in that dtype or is a transpose of such a tensor, else
        a row-major copy."""
        found = in_place(self.k, t) if t.dtype.name == self.dtype else None
        if found:
            return found
        return self.contiguous(t), ir.const(0), ir.contiguous_strides(self.k.dims(t.shape))

    def product_slot(self):
        """Where the product goes: the output itself when it is wanted as the Gemm makes it."""
        # a set: `in` a list would compare tensors with (elementwise) ==
        if self.out in set(self.group.outputs) and self.out.dtype.name == self.dtype:
            return self.slots.buffer(self.out)
        return self.slots.scratch(self.dtype, self.out.shape)

    def load(self, slot, shape):
        """idx -> the element at idx of a row-major `shape` in slot."""
        strides = ir.contiguous_strides(self.k.dims(shape))
        return lambda idx: ir.Load(slot, ir.linear(idx, strides), self.dtype)

    def finish(self, value_at, stored=None, split_two=False):
        """The kernels, with a last one storing the group's outputs (but the product already
        in its place, slot `stored`) from a loop over the op's output, whose value at idx is
        value_at(idx); `split_two`: threads split its first two axes (lower.loop_nest)."""
        dtype = self.out.dtype.name

        def value(idx):
            return rounded(value_at(idx), dtype)
        rest = [t for t in self.group.outputs
                if not (t is self.out and stored == self.slots.buffer(t))]
        if rest:
            emitter = Emitter(self.group, self.slots, {(self.node.id, 0): value})
            self.kernels.append(loop_nest(emitter, self.group, self.out.shape, (), rest,
                                          f"{self.name}_{len(self.kernels)}",
                                          split_two=split_two))
        return self.kernels


def rounded(value, dtype):
    """value (a product in its compute dtype) in dtype: bfloat16 rounded, others cast."""
    if value.dtype != dtype and dtype == "bfloat16":
        return ir.op("round_bfloat16", value, dtype="bfloat16")
    return rules._as_dtype(value, dtype)


def in_place(emitter, t):
    """(slot, offset, strides) when tensor t can be read in place through strides: it is
    computed outside the group, or is a reshape or a transpose of such a tensor (or of a
    reshape of one). Else None."""
    node = t.node
    slot = _row_major(emitter, t)
    if slot is not None:
        return slot, ir.const(0), ir.contiguous_strides(emitter.dims(t.shape))
    if node.op == "transpose":
        inner = in_place(emitter, node.inputs[0])
        if inner:
            slot, offset, strides = inner
            return slot, offset, [strides[p] for p in node.attrs["perm"]]
    return None


def _row_major(emitter, t):
    """The slot that holds t's elements in row-major order: t computed outside the group, or
    a view that keeps its input's elements in order (a reshape) of such a tensor. Else None.
    (A weight gradient reads the time-major steps of a loop reshaped into rows: no copy.)"""
    node = t.node
    if node.id not in emitter.members:
        return emitter.slots.buffer(t)
    if node.spec.view == "linear":
        return _row_major(emitter, node.inputs[0])
    return None
