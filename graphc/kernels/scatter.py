"""gather_grad as kernels: a scatter-add, out = zeros(like); out[..., indices[j], ...] += g[..., j, ...].

Two kernels: one fills the output with zeros, one walks g adding each element into the row its
index names through an accumulating store, so repeated indices add up: O(size of g), where
computing each output row as a reduction over all indices would be O(rows * indices). Indices
are checked as gather checks them: one outside [0, n) stops the kernel and the run raises
IndexError_.
"""
from . import ir
from .lower import Emitter, nest
from .rules import checked_index


def gather_grad(group, slots, name):
    node = group.root
    g, indices, like = node.inputs
    axis, out = node.attrs["axis"], node.outputs[0]
    k = Emitter(group, slots)
    slot, dims = slots.buffer(out), k.dims(out.shape)
    strides = ir.contiguous_strides(dims)

    at = [ir.Var(f"i{a}") for a in range(out.rank)]
    zero = ir.Store(slot, ir.linear(at, strides), ir.const(0, out.dtype.name))
    zeros = ir.Kernel(name, nest(list(zip(at, dims)), (zero,), parallel=True), {}, (node.name,))

    at = [ir.Var(f"j{a}") for a in range(g.rank)]
    inner = tuple(at[axis:axis + indices.rank])
    row = checked_index(k, node, k.value(indices, inner), like.shape, axis)
    target = at[:axis] + [row] + at[axis + indices.rank:]
    add = ir.Store(slot, ir.linear(target, strides), k.value(g, tuple(at)), accumulate=True)
    adds = ir.Kernel(f"{name}_1", nest(list(zip(at, k.dims(g.shape))), (add,), parallel=True),
                     {}, (node.name,))
    return [zeros, adds]
