"""Copies read where they are copied from (implicit GEMM): a kernel that only copies values into
a scratch buffer that nothing but matrix products reads (a convolution's patches,
kernels/conv_rules.py) is dropped, and those products compute the copied values as they read
them (ir.Gathered operands). A kernel pass of the CUDA target (graphc/targets/cuda.py), whose
Gemm loads its operands' tiles element by element: the patches come straight from the
convolution's input into shared memory, which saves the copy's writes and reads. The CPU's
GEMM packs its operands through vector paths and keeps the copy.

An operand is rewritten when the copy's position splits along the operand's matrix, so that
its element [r, c] is a cheap function of r and c: the copy stores at the row-major position
of its loop variables, and the product reads element [r, c] at r * S + c (or r + c * S), where
S, the product of the copy's innermost extents, is also the extent of c (or r). The outer loop
variables are then r's digits and the inner ones c's. A copy is kept unless every product
reading it can be rewritten so, nothing between the copy and its last reader writes what the
copy reads, and its value checks no index (a product's threads must not stop one by one).
"""
import dataclasses

from ...kernels import ir
from ...kernels.access import expressions, kernel_access, loads
from ...kernels.legalize import expression


def gather_copies(segments, slots):
    """Drop the copies that products can read in place from `segments` (the program's lists of
    kernels, in the order they run; changed in place), given the program's Slots. Returns the
    slots no kernel uses any more."""
    kernels = [k for segment in segments for k in segment]
    tensors = set(slots.buffers.values())
    loaded, writers = set(), {}
    for k in kernels:
        loaded.update(load.buffer for load in loads(k))
        for s in kernel_access(k)[1]:
            writers[s] = writers.get(s, 0) + 1
    gathered = {}  # slot -> (the copy's loop variables, their extents, the value copied)
    for at, kernel in enumerate(kernels):
        copy = _copy(kernel)
        if copy is None or copy[0] in tensors or copy[0] in loaded or writers[copy[0]] != 1:
            continue
        slot, copied = copy[0], copy[1:]
        readers = [(after, g) for after, k in enumerate(kernels[at + 1:], at + 1)
                   for g in _gemms(k) if slot in ir.operand_buffers(g)]
        reads = kernel_access(kernel)[0]
        last = max((after for after, _ in readers), default=at)
        if readers and not any(reads & kernel_access(k)[1] for k in kernels[at + 1:last + 1]) \
                and all(_rewritten(g, {slot: copied}) for _, g in readers):
            gathered[slot] = copied
    if not gathered:
        return set()
    for segment in segments:
        segment[:] = [_with_gathered(k, gathered) for k in segment
                      if (_copy(k) or (None,))[0] not in gathered]
    return set(gathered)


def _copy(kernel):
    """(slot, loop variables, extents, value) of a kernel that stores `value` at the row-major
    position of its loop variables in a perfect nest with fixed extents, or None."""
    body, loops = kernel.body, []
    while len(body) == 1 and isinstance(body[0], ir.Loop):
        loops.append(body[0])
        body = body[0].body
    if not loops or len(body) != 1 or not isinstance(body[0], ir.Store) or body[0].accumulate:
        return None
    store = body[0]
    variables, extents = [loop.var for loop in loops], [loop.extent for loop in loops]
    if any(ir.free_vars(e) for e in extents) or store.index != ir.linear(
            variables, ir.contiguous_strides(extents)):
        return None
    if any(isinstance(e, ir.Reduce) or isinstance(e, ir.Op) and e.name == "check_index"
           for e in expressions(ir.Kernel("", (store,), {}))):
        return None
    return store.buffer, variables, extents, store.value


def _gemms(kernel):
    return [s for s in ir.walk_statements(kernel.body) if isinstance(s, ir.Gemm)]


def _rewritten(g, gathered):
    """Gemm g with its operands in `gathered` slots read as Gathered operands, or None where
    one cannot be."""
    a = _operand(g.a, g.m, g.k, "a", gathered, g.dtype)
    b = _operand(g.b, g.k, g.n, "b", gathered, g.dtype)
    if a is None or b is None:
        return None
    return dataclasses.replace(g, a=a, b=b)


def _operand(o, rows, cols, name, gathered, dtype):
    """The operand o of a rows x cols matrix read through `gathered`, or None where its
    layout does not split the copy's position (see the module's doc)."""
    if not isinstance(o, ir.Operand) or o.buffer not in gathered:
        return o
    variables, extents, value = gathered[o.buffer]
    if o.offset != ir.const(0) or value.dtype != dtype:
        return None
    row, col = ir.Var(f"{name}_row"), ir.Var(f"{name}_col")
    if o.cols == ir.const(1):
        outer, inner, stride, inner_extent = row, col, o.rows, cols
    elif o.rows == ir.const(1):
        outer, inner, stride, inner_extent = col, row, o.cols, rows
    else:
        return None
    for split in range(1, len(extents)):
        if ir.product(extents[split:]) == stride == inner_extent:
            digits = map(expression, ir.unflatten(outer, extents[:split])
                         + ir.unflatten(inner, extents[split:]))
            values = {v.name: d for v, d in zip(variables, digits)}
            return ir.Gathered(row, col, ir.substitute(value, values),
                               "col" if inner is col else "row")
    return None


def _with_gathered(kernel, gathered):
    """The kernel with the products reading `gathered` slots rewritten."""
    if not any(set(ir.operand_buffers(g)) & set(gathered) for g in _gemms(kernel)):
        return kernel
    body = ir.map_gemms(kernel.body, lambda g: _rewritten(g, gathered))
    return dataclasses.replace(kernel, body=body)
