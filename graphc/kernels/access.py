"""What a kernel touches: the buffers it reads and writes, and which of its inputs its output
may overwrite in place. The runtime's memory plan (graphc.runtime.memory_plan) shares storage
by these rules, read from each kernel's `Access` (the compiler makes them), and the LLVM code
generator tells LLVM which buffers can never overlap by the same rules.
"""
from typing import NamedTuple

from . import ir


class Access(NamedTuple):
    """What the memory plan needs to know of a kernel: the slots it reads and writes, the
    output it may store over inputs it reads in place (None) and those inputs, and whether it
    can stop with an error."""
    reads: frozenset
    writes: frozenset
    output: object
    in_place: tuple
    may_fail: bool


def access(kernel, in_place=True):
    """The kernel's Access; `in_place=False` for a target whose kernels never store over an
    input (the CUDA C's buffer pointers are __restrict__)."""
    reads, writes = kernel_access(kernel)
    output, inputs = in_place_candidates(kernel) if in_place else (None, [])
    return Access(frozenset(reads), frozenset(writes), output, tuple(inputs), may_fail(kernel))


def kernel_access(kernel):
    """(slots the kernel reads, slots it writes)."""
    reads, writes = set(), set()
    for load in loads(kernel):
        reads.add(load.buffer)
    for s in ir.walk_statements(kernel.body):
        if isinstance(s, ir.Store):
            writes.add(s.buffer)
            if s.accumulate:
                reads.add(s.buffer)
        elif isinstance(s, ir.Gemm):
            reads.update(ir.operand_buffers(s))
            writes.add(s.c.buffer)
            if s.accumulate:
                reads.add(s.c.buffer)
    return reads, writes


def in_place_candidates(kernel):
    """(output slot, [input slots it may overwrite]) for a kernel that is one perfect loop
    nest around one plain Store at the row-major position of its loop variables, where every
    load of those inputs reads that same position; (None, []) for any other kernel."""
    body, loops = kernel.body, []
    while len(body) == 1 and isinstance(body[0], ir.Loop):
        loops.append(body[0])
        body = body[0].body
    if len(body) != 1 or not isinstance(body[0], ir.Store) or body[0].accumulate:
        return None, []
    store = body[0]
    position = ir.linear([loop.var for loop in loops],
                         ir.contiguous_strides([loop.extent for loop in loops]))
    if store.index != position:
        return None, []
    indices = {}
    for load in loads(kernel):
        indices.setdefault(load.buffer, set()).add(load.index)
    return store.buffer, sorted(slot for slot, seen in indices.items()
                                if slot != store.buffer and seen == {position})


def loads(kernel):
    """Every distinct Load expression in the kernel."""
    return (e for e in expressions(kernel) if isinstance(e, ir.Load))


def may_fail(kernel):
    """Whether the kernel can stop with an error (a Check, or an index it checks)."""
    return (any(isinstance(s, ir.Check) for s in ir.walk_statements(kernel.body))
            or any(isinstance(e, ir.Op) and e.name == "check_index" for e in expressions(kernel)))


def expressions(kernel):
    """Every distinct expression in the kernel (walked without recursion: fused chains nest
    deeper than Python's stack)."""
    todo = []
    for s in ir.walk_statements(kernel.body):
        if isinstance(s, ir.Loop):
            todo.append(s.extent)
        elif isinstance(s, ir.Store):
            todo += [s.index, s.value]
        elif isinstance(s, ir.Check):
            todo += [s.ok, s.value]
        elif isinstance(s, ir.Gemm):
            todo += list(ir.gemm_exprs(s))
    return ir.distinct(todo)
