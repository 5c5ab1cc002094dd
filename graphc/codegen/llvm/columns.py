"""Column reductions: a parallel loop over kept positions j whose reductions read along another
axis (a sum over the batch axis, x[r, j] for r < R) would step through memory by whole rows in
its innermost loop. Such a loop is emitted in blocks of BLOCK positions, with the loop over j
moved inside: each reduction of the block runs `for r: for t < n: acc[t] = combine(acc[t],
value at j = start + t)`, acc an array on the stack (float32 and narrower sums in double, as
everywhere), then each statement of the loop's body runs for the whole block (`for t < n:
statement`, the body's inner loops around that loop), reading the reductions from acc. The
loops over t read memory in order and vectorize. The loop over r takes UNROLL rows per pass
over acc (one load and store of each accumulator for them all: float32[1024] @ [1024, 1024]
on one thread 91 -> 66 us), and acc sits on a cache line of its own (vectors straddling two
lines cost a tenth more).

This reorders the iterations of a parallel loop, which are independent (threads may run them
in any order), and keeps each iteration's statements in order.
"""
from ...kernels import ir
from .types import I64

BLOCK = 512  # positions a block reduces at once: 4 KiB of double accumulators per reduction
LINE = 64  # bytes: a cache line, and the widest vector
UNROLL = 4  # rows a column reduction takes in per load and store of its accumulators
FOLDABLE = ("sum", "prod", "max", "min")  # reductions whose accumulator is one value


def column_reductions(loop):
    """The Reduces of a parallel loop's body that depend on its variable alone, each after
    those it reads, when they are column reductions to compute a block at a time; else None."""
    name = loop.var.name
    found = [e for e in _post_order(ir.statement_exprs(loop.body))
             if isinstance(e, ir.Reduce) and ir.free_vars(e) == {name}]
    if not found or any(r.op not in FOLDABLE for r in found):
        return None
    return found if any(_reads_columns(r, name) for r in found) else None


def _post_order(roots):
    """The distinct expressions under roots, each after its children."""
    out, seen = [], set()
    for root in roots:
        stack = [(root, False)]
        while stack:
            e, ready = stack.pop()
            if ready:
                out.append(e)
            elif id(e) not in seen:
                seen.add(id(e))
                stack.append((e, True))
                stack.extend((c, False) for c in ir.children(e))
    return out


def _reads_columns(reduce, name):
    """Whether some load of the reduction steps by one element along `name` and not along the
    reduction's innermost loop."""
    inner = reduce.loops[-1][0].name
    return any(isinstance(e, ir.Load) and _coefficient(e.index, name) == 1
               and _coefficient(e.index, inner) != 1 for e in _post_order([reduce.value]))


def _coefficient(e, name):
    """d e / d name when e is affine in the variable with a constant coefficient, else None."""
    if name not in ir.free_vars(e):
        return 0
    if isinstance(e, ir.Var):
        return 1
    if isinstance(e, ir.Op) and e.name in ("add", "sub"):
        a, b = (_coefficient(x, name) for x in e.args)
        if a is None or b is None:
            return None
        return a + b if e.name == "add" else a - b
    if isinstance(e, ir.Op) and e.name == "mul":
        for x, y in (e.args, e.args[::-1]):
            if isinstance(y, ir.Const):
                c = _coefficient(x, name)
                return None if c is None else c * y.value
    return None


def _fold(k, r, array, var, rows, t):
    """acc[t] = combine(acc[t], r's value at var = each of rows in turn): one load and store
    of the accumulator for all of them."""
    from .emit import combine, reduction_type  # emit.py imports us

    b = k.b
    acc_type = reduction_type(r.op, r.value.dtype)
    slot = b.gep(array, [t])
    carried = {"value": b.load(slot, name="acc")}
    for row in rows:
        k.vars[var.name] = row
        k.bound[-1].add(var.name)
        k.scopes.append({})  # values at this row are not the next row's
        carried = combine(k, r.op, r.value.dtype, acc_type, carried, k.expr(r.value))
        k.scopes.pop()
    b.store(carried["value"], slot)


def _aligned(array):
    """array aligned to a cache line (the stack gives 8 bytes)."""
    array.align = LINE
    return array


def emit_column_loop(k, loop, start, stop, reduces):
    """The parallel loop over [start, stop) in blocks; k is the kernel's emitter."""
    from .emit import narrow, reduction_init, reduction_type  # emit.py imports us

    b, name = k.b, loop.var.name
    k.hoist(list(ir.statement_exprs(loop.body)), {name})
    accumulators = [(r, _aligned(k.stack_array(reduction_type(r.op, r.value.dtype), BLOCK)))
                    for r in reduces]
    blocks = b.sdiv(b.add(b.sub(stop, start), I64(BLOCK - 1)), I64(BLOCK), name="blocks")
    outer = k.open_loop(ir.Var(f"{name}.block"), I64(0), blocks, {})
    first = b.add(start, b.mul(k.vars[f"{name}.block"], I64(BLOCK)), name=f"{name}.first")
    left = b.sub(stop, first)
    n = b.select(b.icmp_signed("<", left, I64(BLOCK)), left, I64(BLOCK), name=f"{name}.n")
    done = []

    def over_block(body):
        """body(t) for t in [0, n), with the loop variable and the finished reductions bound."""
        handle = k.open_loop(ir.Var(f"{name}.t"), I64(0), n, {})
        t = k.vars[f"{name}.t"]
        k.vars[name] = b.add(first, t, name=name)
        k.bound[-1].add(name)
        for r, array in done:
            acc_type = reduction_type(r.op, r.value.dtype)
            value = b.load(b.gep(array, [t]), name=f"{r.op}.at")
            k.scopes[-1][id(r)] = (r, narrow(b, value, acc_type, r.dtype)
                                   if r.op in ("sum", "prod") else value)
        body(t)
        k.close_loop(handle, {})

    for r, array in accumulators:
        acc_type = reduction_type(r.op, r.value.dtype)
        init = reduction_init(r.op, r.value.dtype, acc_type)
        over_block(lambda t: b.store(init, b.gep(array, [t])))
        *outer_loops, (var, extent) = r.loops
        handles = [k.open_loop(v, I64(0), k.expr(e), {}) for v, e in outer_loops]
        rows = k.expr(extent)
        # the innermost loop UNROLL rows at a time, then the rows left one at a time
        steps = k.open_loop(ir.Var(f"{var.name}.by{UNROLL}"), I64(0),
                            b.sdiv(rows, I64(UNROLL)), {})
        first_row = b.mul(k.vars[f"{var.name}.by{UNROLL}"], I64(UNROLL), name=f"{var.name}.0")
        over_block(lambda t, r=r, array=array: _fold(k, r, array, var, [
            b.add(first_row, I64(u), name=var.name) for u in range(UNROLL)], t))
        k.close_loop(steps, {})
        rest = k.open_loop(var, b.mul(b.sdiv(rows, I64(UNROLL)), I64(UNROLL)), rows, {})
        over_block(lambda t, r=r, array=array: _fold(k, r, array, var, [k.vars[var.name]], t))
        k.close_loop(rest, {})
        for handle in reversed(handles):
            k.close_loop(handle, {})
        done.append((r, array))

    def statements(body):
        for s in body:
            if isinstance(s, ir.Loop):
                k.hoist(list(ir.statement_exprs(s.body)), {s.var.name})
                handle = k.open_loop(s.var, I64(0), k.expr(s.extent), {})
                statements(s.body)
                k.close_loop(handle, {})
            else:
                over_block(lambda t, s=s: k.stmt(s))
    statements(loop.body)
    k.close_loop(outer, {})
