"""gather_grad as kernels: a scatter-add, out = zeros(like); out[.., i[j], ..] += g[.., j, ..].

One kernel fills the output with zeros, one walks g adding each element into the row its index
names through an accumulating store, so repeated indices add up: O(size of g), where computing
each output row as a reduction over all indices would be O(rows * indices). Indices are checked
as gather checks them: one outside [0, n) stops the kernel and the run raises IndexError_.
bfloat16 adds into a float32 scratch, rounded once by a third kernel, as the reference's
float32 storage adds.
"""
from . import ir
from .lower import Emitter, nest
from .lowering_rules import checked_index


def gather_grad(group, slots, name):
    node = group.root
    g, indices, like = node.inputs
    axis, out = node.attrs["axis"], node.outputs[0]
    k = Emitter(group, slots)
    dims = k.dims(out.shape)
    strides = ir.contiguous_strides(dims)
    rounded = out.dtype.name == "bfloat16"
    dtype = "float32" if rounded else out.dtype.name
    target = slots.scratch(dtype, out.shape) if rounded else slots.buffer(out)

    def over(shape, hint, body, number):
        at = [ir.Var(f"{hint}{a}") for a in range(len(shape))]
        stmt = body(at)
        return ir.Kernel(f"{name}_{number}" if number else name,
                         nest(list(zip(at, k.dims(shape))), (stmt,), parallel=True), {},
                         (node.name,))

    def zero(at):
        return ir.Store(target, ir.linear(at, strides), ir.const(0, dtype))

    def add(at):
        row = checked_index(k, node, k.value(indices, tuple(at[axis:axis + indices.rank])),
                            like.shape, axis)
        where = at[:axis] + [row] + at[axis + indices.rank:]
        value = k.value(g, tuple(at))
        if rounded:
            value = ir.Op("cast", (value,), dtype)
        return ir.Store(target, ir.linear(where, strides), value, accumulate=True)

    def round_out(at):
        flat = ir.linear(at, strides)
        return ir.Store(slots.buffer(out), flat, ir.op("round_bfloat16", ir.Load(
            target, flat, dtype), dtype="bfloat16"))

    kernels = [over(out.shape, "i", zero, 0), over(g.shape, "j", add, 1)]
    return kernels + [over(out.shape, "i", round_out, 2)] if rounded else kernels
