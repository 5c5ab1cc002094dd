"""A loop body's native driver: the whole loop in one call of a body program.

`define_loop_driver(module, symbol, entries)` adds `i64 symbol(ctx*, i8* pool, i64* desc)` to
a body program's module (`entries`: its segments' entry functions, in order). `desc` is

    desc[0] = n (steps), desc[1] = m (bindings), then m records of 4 words:
    (slot, first, base, stride): before step t, buffers[slot] = t == 0 ? first : base + stride*t

which says, by pointer arithmetic, where each argument and result of the body lies at every
step: a sequence's row t (or T-1-t), a carry's initial value then the previous step's row of
its stacked output, a result's row of its stacked output. Each step rebinds the buffer table
and calls every segment's entry; a failed entry (a kernel reported an error) stops the loop:
desc[0] becomes the failing step and its status is returned. 0 when every step ran.
"""
from llvmlite import ir as ll

from .emit import CTX
from .types import I32, I64, PTR

RECORD = 4  # words per binding of desc


def define_loop_driver(module, symbol, entries):
    fn = ll.Function(module, ll.FunctionType(I64, [PTR, PTR, I64.as_pointer()]), symbol)
    ctx, pool, desc = fn.args
    ctx.name, pool.name, desc.name = "ctx", "pool", "desc"
    b = ll.IRBuilder(fn.append_basic_block("entry"))
    typed = b.bitcast(ctx, CTX.as_pointer(), name="context")
    buffers = b.load(b.gep(typed, [I32(0), I32(0)]), name="buffers")
    n = b.load(desc, name="n")
    m = b.load(b.gep(desc, [I64(1)]), name="m")
    t_slot, j_slot = b.alloca(I64, name="t.addr"), b.alloca(I64, name="j.addr")
    b.store(I64(0), t_slot)
    step_head = fn.append_basic_block("step")
    bind_head = fn.append_basic_block("bind")
    bind_body = fn.append_basic_block("bind.body")
    calls = fn.append_basic_block("calls")
    done = fn.append_basic_block("done")
    b.branch(step_head)

    b.position_at_end(step_head)
    t = b.load(t_slot, name="t")
    b.store(I64(0), j_slot)
    b.cbranch(b.icmp_signed("<", t, n), bind_head, done)

    b.position_at_end(bind_head)
    j = b.load(j_slot, name="j")
    b.cbranch(b.icmp_signed("<", j, m), bind_body, calls)

    b.position_at_end(bind_body)
    record = b.gep(desc, [b.add(I64(2), b.mul(j, I64(RECORD)))], name="record")
    slot, first, base, stride = (b.load(b.gep(record, [I64(i)]), name=name) for i, name in
                                 enumerate(("slot", "first", "base", "stride")))
    t = b.load(t_slot)
    address = b.select(b.icmp_signed("==", t, I64(0)), first, b.add(base, b.mul(stride, t)))
    b.store(b.inttoptr(address, PTR), b.gep(buffers, [slot]))
    b.store(b.add(j, I64(1)), j_slot)
    b.branch(bind_head)

    b.position_at_end(calls)
    for number, entry in enumerate(entries):
        status = b.call(entry, [ctx, pool], name=f"status{number}")
        with b.if_then(b.icmp_signed("!=", status, I64(0)), likely=False):
            b.store(b.load(t_slot), desc)
            b.ret(status)
    b.store(b.add(b.load(t_slot), I64(1)), t_slot)
    b.branch(step_head)

    b.position_at_end(done)
    b.ret(I64(0))
    return fn
