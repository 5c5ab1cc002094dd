"""Streaming row stores: the rows of a large output written past the caches.

A row kernel (softmax, a layer norm: a parallel loop over rows whose body computes the row's
reductions, then stores the row in a loop of its own) that writes an output larger than the
caches pays for every line it stores with a read of that line first (the cache fetches a line
before taking a write into it): a third of its memory traffic. And the row's first pass (its
first reduction) waits for the row to come from memory while the other passes compute from the
cache without asking memory for anything.

Where the kernel's output holds at least STREAM_BYTES, the store loop writes the row into a
stack array instead (the loop vectorizer widens it as before), and the row is copied out by
non-temporal stores of whole aligned vectors, which write their lines without reading them
(the row's first and last elements outside whole aligned vectors are stored as usual); each
step of that copy also prefetches the next row's line of every input its reductions read
along the row, so that the next row's first pass finds it in the cache. A fence after each row
orders its streaming stores before the threads' results are read.

Smaller outputs, and loops whose row is not of a length known when compiling or exceeds
row_cache.MAX_BYTES, keep their plain stores: their value read soon after from the cache is
worth more.
"""
from llvmlite import ir as ll

from ...kernels import ir
from . import jit
from .row_cache import BYTES, MAX_BYTES
from .types import I32, I64, PTR, TYPES, VOID
from .vector import unit_step, vectorized_loop

# outputs below it are likely still in the last-level cache when the next kernel reads them
STREAM_BYTES = 8 << 20
COPY = ir.Var("stream.j")  # the copy loop's position in the row


def streamed_store(loop, rows):
    """The one store of the row loop `loop`, inside the parallel loop `rows`, to write by
    streaming, or None."""
    if rows is None or len(loop.body) != 1 or not isinstance(loop.extent, ir.Const):
        return None
    store = loop.body[0]
    if (not isinstance(store, ir.Store) or store.accumulate
            or store.value.dtype not in BYTES  # the float dtypes of a row cache
            or loop.extent.value * BYTES[store.value.dtype] > MAX_BYTES
            or not unit_step(store.index, loop.var.name, {})):
        return None
    return store


def emit_streamed_loop(k, loop, store, rows, roots):
    """The row loop `for var in range(extent): buffer[index] = value` with emitter k: through
    a stack row and streaming stores where the output is large, else as usual."""
    b, extent, dtype = k.b, loop.extent.value, store.value.dtype
    var = loop.var.name
    k.hoist(roots, {var})  # in front of both branches, which share the reductions
    out = b.gep(k.pointer(store.buffer, dtype),
                [k.expr(ir.substitute(store.index, {var: ir.Const(0, ir.INDEX)}))])
    large = b.icmp_signed(">=", b.mul(k.expr(rows.extent), I64(extent * BYTES[dtype])),
                          I64(STREAM_BYTES), name="large")
    with b.if_else(large) as (streamed, plain):
        with streamed:
            row = k.stack_array(TYPES[dtype][0], extent)
            row.align = 64
            k.scopes.append({})  # values computed here do not dominate the other branch
            k.loop([(loop.var, I64(0), I64(extent))],
                   lambda: b.store(k.expr(store.value), b.gep(row, [k.vars[var]])), [])
            _stream_copy(k, row, out, extent, dtype, store.buffer,
                         _next_rows(roots, rows, loop))
            k.scopes.pop()
        with plain:
            k.scopes.append({})
            k.loop([(loop.var, I64(0), I64(extent))], lambda: k.stmt(store), [])
            k.scopes.pop()


def _next_rows(roots, rows, loop):
    """The loads of the next row to prefetch, at position COPY: those that a reduction over
    the row (one loop of the row `loop`'s extent, computed once per row: not one per element
    of the row, whose loads depend on `loop`'s variable, unbound in the copy) makes along it,
    with the parallel loop's variable one further."""
    step = {rows.var.name: ir.Op("add", (rows.var, ir.Const(1, ir.INDEX)), ir.INDEX)}
    out = {}
    for r in ir.distinct(roots):
        if not (isinstance(r, ir.Reduce) and len(r.loops) == 1
                and r.loops[0][1] == loop.extent and loop.var.name not in ir.free_vars(r)):
            continue
        inner = r.loops[0][0].name
        for e in ir.distinct([r.value]):
            if isinstance(e, ir.Load) and unit_step(e.index, inner, {}):
                at = ir.substitute(ir.substitute(e.index, {inner: COPY}), step)
                out.setdefault((e.buffer, e.dtype, at), None)
    return list(out)


def _stream_copy(k, row, out, extent, dtype, buffer, ahead):
    """out[0:extent] = row[0:extent]: whole vectors aligned in out by non-temporal stores, the
    elements before and after them by plain ones; each vector's step prefetches `ahead`."""
    b, size = k.b, BYTES[dtype]
    vector_bytes = jit.vector_bits() // 8
    lanes = vector_bytes // size
    misaligned = b.and_(b.ptrtoint(out, I64), I64(vector_bytes - 1))
    # elements up to out's first aligned vector: (vector_bytes - misaligned) % vector_bytes / size
    head = b.udiv(b.and_(b.sub(I64(vector_bytes), misaligned), I64(vector_bytes - 1)), I64(size))
    head = b.select(b.icmp_signed("<", head, I64(extent)), head, I64(extent), name="head")
    body_end = b.add(head, b.mul(b.udiv(b.sub(I64(extent), head), I64(lanes)), I64(lanes)),
                     name="body.end")
    _copy_loop(k, (row, out, buffer, size), (I64(0), head), 1)
    _copy_loop(k, (row, out, buffer, size), (head, body_end), lanes, ahead)
    _copy_loop(k, (row, out, buffer, size), (body_end, I64(extent)), 1)
    b.fence("seq_cst")


def _copy_loop(k, arrays, span, lanes, ahead=()):
    """for j in range(*span, lanes): out[j:j+lanes] = row[j:j+lanes] (arrays: row, out,
    out's buffer slot, the element's bytes); with lanes > 1 one vector stored non-temporally
    at its own alignment, after prefetching `ahead` at j."""
    b = k.b
    row, out, buffer, size = arrays
    element = row.type.pointee
    ty = element if lanes == 1 else ll.VectorType(element, lanes)
    pre = b.block
    head = k.fn.append_basic_block("stream.body")
    done = k.fn.append_basic_block("stream.done")
    b.cbranch(b.icmp_signed("<", span[0], span[1]), head, done)
    b.position_at_end(head)
    j = b.phi(I64, name=COPY.name)
    j.add_incoming(span[0], pre)
    if ahead:
        _prefetch(k, j, ahead)
    value = b.load(b.bitcast(b.gep(row, [j]), ty.as_pointer()), name="row", align=size)
    stored = k.access(b.store(value, b.bitcast(b.gep(out, [j]), ty.as_pointer()),
                              align=size * lanes), buffer, True)
    if lanes > 1:
        stored.set_metadata("nontemporal", k.module.add_metadata([I32(1)]))
    nxt = b.add(j, I64(lanes), name="stream.next")
    j.add_incoming(nxt, b.block)
    latch = b.cbranch(b.icmp_signed("<", nxt, span[1]), head, done)
    if lanes > 1:
        latch.set_metadata("llvm.loop", vectorized_loop(k.module))
    b.position_at_end(done)


def _prefetch(k, j, ahead):
    """Prefetch each (buffer, dtype, index) of `ahead` at COPY = j into the cache."""
    b = k.b
    fn = k.module.globals.get("llvm.prefetch.p0") or ll.Function(
        k.module, ll.FunctionType(VOID, [PTR, I32, I32, I32]), "llvm.prefetch.p0")
    k.vars[COPY.name] = j
    k.scopes.append({})
    for buffer, dtype, index in ahead:
        address = b.gep(k.pointer(buffer, dtype), [k.expr(index)])
        # read, keep in all cache levels, data
        b.call(fn, [b.bitcast(address, PTR), I32(0), I32(3), I32(1)])
    k.scopes.pop()
