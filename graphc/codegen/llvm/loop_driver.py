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

A while loop's condition, another compiled program, runs inside the same call: after the
records, desc holds k (the number of the condition's entries, 0 where there is none), then,
where k > 0, the condition program's ctx, its pool, the address of its bool result, c (its
bindings), the addresses of its k entries, and c records as above (binding the carries in the
condition's buffer table). Before each step the driver binds them and calls the entries; where
the result is false, desc[0] becomes the number of steps run and the driver returns 0.
"""
from llvmlite import ir as ll

from .emit import CTX
from .types import I8, I32, I64, PTR

RECORD = 4  # words per binding of desc
ENTRY = ll.FunctionType(I64, [PTR, PTR])  # a segment's entry: i64 (ctx*, pool*)


def _word(b, desc, index, name=""):
    return b.load(b.gep(desc, [index]), name=name)


def _bind(b, desc, at, t, buffers):
    """Store the address record `at` of desc gives for step t into buffers[slot]."""
    slot, first, base, stride = (_word(b, desc, b.add(at, I64(i)), name) for i, name in
                                 enumerate(("slot", "first", "base", "stride")))
    address = b.select(b.icmp_signed("==", t, I64(0)), first, b.add(base, b.mul(stride, t)))
    b.store(b.inttoptr(address, PTR), b.gep(buffers, [slot]))


def _buffers(b, ctx, name):
    typed = b.bitcast(ctx, CTX.as_pointer())
    return b.load(b.gep(typed, [I32(0), I32(0)]), name=name)


def _counted(fn, b, counter, limit, name, each):
    """for (counter = 0; counter < limit; counter++) each(b, i); leaves b after the loop."""
    head, body, after = (fn.append_basic_block(f"{name}.{part}")
                         for part in ("head", "body", "after"))
    b.store(I64(0), counter)
    b.branch(head)
    b.position_at_end(head)
    i = b.load(counter, name=name)
    b.cbranch(b.icmp_signed("<", i, limit), body, after)
    b.position_at_end(body)
    each(b, i)
    b.store(b.add(b.load(counter), I64(1)), counter)
    b.branch(head)
    b.position_at_end(after)


def define_loop_driver(module, symbol, entries):
    fn = ll.Function(module, ll.FunctionType(I64, [PTR, PTR, I64.as_pointer()]), symbol)
    ctx, pool, desc = fn.args
    ctx.name, pool.name, desc.name = "ctx", "pool", "desc"
    b = ll.IRBuilder(fn.append_basic_block("entry"))
    buffers = _buffers(b, ctx, "buffers")
    n = _word(b, desc, I64(0), "n")
    m = _word(b, desc, I64(1), "m")
    cond_at = b.add(I64(2), b.mul(m, I64(RECORD)), name="cond.at")
    k = _word(b, desc, cond_at, "k")
    t_slot, j_slot = b.alloca(I64, name="t.addr"), b.alloca(I64, name="j.addr")
    b.store(I64(0), t_slot)
    step_head = fn.append_basic_block("step")
    test = fn.append_basic_block("test")
    bind = fn.append_basic_block("bind")
    done = fn.append_basic_block("done")
    b.branch(step_head)

    b.position_at_end(step_head)
    t = b.load(t_slot, name="t")
    b.cbranch(b.icmp_signed("<", t, n), test, done)

    b.position_at_end(test)  # the condition, where there is one
    with b.if_then(b.icmp_signed("!=", k, I64(0))):
        cctx, cpool, result, c = (_word(b, desc, b.add(cond_at, I64(i)), name) for i, name in
                                  enumerate(("cond.ctx", "cond.pool", "cond.result", "c"), 1))
        cctx, cpool = b.inttoptr(cctx, PTR), b.inttoptr(cpool, PTR)
        table = _buffers(b, cctx, "cond.buffers")
        entries_at = b.add(cond_at, I64(5), name="cond.entries")
        records_at = b.add(entries_at, k, name="cond.records")
        _counted(fn, b, j_slot, c, "cond.bind", lambda b, j: _bind(
            b, desc, b.add(records_at, b.mul(j, I64(RECORD))), t, table))

        def call(b, e):
            entry = b.inttoptr(_word(b, desc, b.add(entries_at, e)), ENTRY.as_pointer())
            status = b.call(entry, [cctx, cpool], name="cond.status")
            with b.if_then(b.icmp_signed("!=", status, I64(0)), likely=False):
                b.store(t, desc)
                b.ret(status)
        _counted(fn, b, j_slot, k, "cond.call", call)
        holds = b.load(b.inttoptr(result, I8.as_pointer()), name="holds")
        with b.if_then(b.icmp_signed("==", holds, I8(0)), likely=False):
            b.store(t, desc)  # the steps run
            b.ret(I64(0))
    b.branch(bind)

    b.position_at_end(bind)
    _counted(fn, b, j_slot, m, "bind", lambda b, j: _bind(
        b, desc, b.add(I64(2), b.mul(j, I64(RECORD))), t, buffers))
    for number, entry in enumerate(entries):
        status = b.call(entry, [ctx, pool], name=f"status{number}")
        with b.if_then(b.icmp_signed("!=", status, I64(0)), likely=False):
            b.store(t, desc)
            b.ret(status)
    b.store(b.add(t, I64(1)), t_slot)
    b.branch(step_head)

    b.position_at_end(done)
    b.ret(I64(0))
    return fn
