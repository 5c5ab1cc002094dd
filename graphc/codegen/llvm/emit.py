"""Kernel IR -> LLVM IR: one function per kernel, `void kernel(ctx*, i64 lo, i64 hi)`.

`ctx` points at the program's context {buffers, dims, error}: the buffer pointers by slot, the
run-time dims by slot, and two i64s where a kernel reports an error (what + 1, the bad value).
A kernel with a parallel outermost loop runs the iterations [lo, hi) of that loop, so the thread
pool can hand ranges to threads; other kernels ignore lo and hi.

Values live in registers in their compute type (bool as i1, bfloat16 as float) and in memory in
their storage type (bool as i8). Reductions accumulate as kernels/ir.py's REDUCTIONS say (float
sums in double, so a sum is at least as accurate as numpy's pairwise one); the add carries
`reassoc` so the loop vectorizer may still split it across lanes. A Reduce is computed in
front of the innermost loop it does not depend on, once per iteration of the loops it does; a
parallel loop whose reductions read down columns runs in blocks with the loop moved inside them
(columns.py); an elementwise loop is emitted as vector code (vector.py).
"""
from llvmlite import ir as ll

from ...kernels import ir
from .aliasing import AliasScopes
from .columns import column_reductions, emit_column_loop
from .gemm import declare_gemm
from . import jit
from .row_cache import BYTES, row_caches
from .scalar import divide_by_invariant, divides_as_double, emit_scalar, narrow_float, table_for
from .streaming import emit_streamed_loop, streamed_store
from .types import F32, F64, FLOATS, I8, I32, I64, PTR, TYPES, UNSIGNED, VOID, constant, intrinsic
from .vector import VectorLoop, vector_lanes

CTX = ll.LiteralStructType([PTR.as_pointer(), I64.as_pointer(), I64.as_pointer()])
KERNEL_TYPE = ll.FunctionType(VOID, [PTR, I64, I64])


def loop_metadata(module, option, value):
    """Loop metadata that sets one of the loop vectorizer's options."""
    option = module.add_metadata([ll.MetaDataString(module, option), I32(value)])
    loop = module.add_metadata([ll.MetaDataString(module, f"loop{len(module.metadata)}"), option])
    loop.operands = (loop, option)  # LLVM takes a loop's metadata only if it names itself first
    return loop


def one_vector_per_iteration(module):
    """Loop metadata: the vectorizer widens the loop but does not interleave it. A loop that
    carries no value (it stores what each iteration computes) runs as fast with one vector per
    iteration, and LLVM's time grows with the code; reductions keep several sums in flight."""
    return loop_metadata(module, "llvm.loop.interleave.count", 1)


def full_vectors(module, dtype):
    """Loop metadata: the vectorizer takes a whole vector register of `dtype` values per
    iteration. A float32 sum accumulates in double, and LLVM's cost model then computes the
    float32 values (an exp, say) in half-width vectors, as many as the double accumulator
    holds: twice the instructions per value."""
    return loop_metadata(module, "llvm.loop.vectorize.width",
                         jit.vector_bits() // (8 * BYTES[dtype]))


class FunctionEmitter:
    """A function that reads the program context: buffers, dims, error slot, expressions."""

    def __init__(self, module, fn, ctx):
        self.module, self.fn, self.ctx = module, fn, ctx
        self.b = ll.IRBuilder(fn.append_basic_block("entry"))
        typed = self.b.bitcast(ctx, CTX.as_pointer(), name="context")
        self.buffers = self.b.load(self.b.gep(typed, [I32(0), I32(0)]), name="buffers")
        self.dims = self.b.load(self.b.gep(typed, [I32(0), I32(1)]), name="dims")
        self.error = self.b.load(self.b.gep(typed, [I32(0), I32(2)]), name="error")
        self.pointers = {}
        self.scopes = [{}]  # memo of computed values, one dict per open loop
        self.bound = [set()]  # loop variables bound at each depth
        self.vars = {}
        self.aliases = None  # AliasScopes of a kernel's buffers
        # row caches (row_cache.py): a reduction's terms to store, by the reduction; the
        # terms a loop loads instead, by value: (array, the loop's variable)
        self.row_stores = {}
        self.row_loads = {}
        self.llvm_loops = False  # whether it has loops that LLVM's optimizer is to widen
        self.free = {}  # ir.free_vars's memo


    def loop(self, loops, body, invariant_roots):
        """Nested counted loops [(var, start, stop)] around body(); Reduce subexpressions of
        `invariant_roots` that do not depend on these loops are computed in front of them."""
        self.hoist(invariant_roots, {v.name for v, _, _ in loops})
        opened = [self.open_loop(var, start, stop, {}) for var, start, stop in loops]
        body()
        for handle in reversed(opened):
            self.close_loop(handle, {})

    def open_loop(self, var, start, stop, carried):
        """Start `for var in [start, stop)`; carried: {name: initial value} of loop-carried
        values, whose phis the returned handle holds."""
        self.llvm_loops = True
        pre = self.b.block
        head = self.fn.append_basic_block(f"{var.name}.body")
        done = self.fn.append_basic_block(f"{var.name}.done")
        self.b.cbranch(self.b.icmp_signed("<", start, stop), head, done)
        self.b.position_at_end(head)
        iv = self.b.phi(I64, name=var.name)
        iv.add_incoming(start, pre)
        phis = {}
        for name, init in carried.items():
            phis[name] = self.b.phi(init.type, name=f"{var.name}.{name}")
            phis[name].add_incoming(init, pre)
        self.vars[var.name] = iv
        self.scopes.append({})
        self.bound.append({var.name})
        return iv, stop, head, done, pre, phis, carried

    def close_loop(self, handle, updated, metadata=None):
        """End the loop; updated: {name: value at the end of an iteration}; metadata: the
        loop's (else one_vector_per_iteration for a loop that carries nothing). Returns the
        carried values after the loop (the initial ones if it ran zero times)."""
        iv, stop, head, done, pre, phis, initial = handle
        nxt = self.b.add(iv, I64(1), name=f"{iv.name}.next")
        latch = self.b.block
        iv.add_incoming(nxt, latch)
        for name, phi in phis.items():
            phi.add_incoming(updated[name], latch)
        latch_branch = self.b.cbranch(self.b.icmp_signed("<", nxt, stop), head, done)
        if metadata is None and not phis:
            metadata = one_vector_per_iteration(self.module)
        if metadata is not None:
            latch_branch.set_metadata("llvm.loop", metadata)
        self.b.position_at_end(done)
        out = {}
        for name, phi in phis.items():
            out[name] = self.b.phi(phi.type, name=f"{iv.name}.{name}.out")
            out[name].add_incoming(initial[name], pre)
            out[name].add_incoming(updated[name], latch)
        self.scopes.pop()
        self.bound.pop()
        return out

    def hoist(self, roots, inner):
        """Compute now the Reduces under roots that depend on none of the `inner` loops."""
        seen = set()
        todo = list(roots)
        while todo:
            e = todo.pop()
            if id(e) in seen:
                continue
            seen.add(id(e))
            if isinstance(e, ir.Reduce):
                if not (ir.free_vars(e) & inner) and self.is_bound(ir.free_vars(e)):
                    self.expr(e)
                    continue
            todo.extend(ir.children(e))

    def is_bound(self, names):
        bound = set().union(*self.bound)
        return names <= bound

    # -- expressions -------------------------------------------------------------------------
    def lookup(self, e):
        for scope in reversed(self.scopes):
            if id(e) in scope:
                return scope[id(e)][1]
        return None

    def expr(self, e):
        found = self.lookup(e)
        if found is not None:
            return found
        # compute children first, iteratively, so deep chains do not recurse
        stack = [(e, False)]
        while stack:
            node, ready = stack.pop()
            if self.lookup(node) is not None:
                continue
            kids = [] if isinstance(node, ir.Reduce) or (
                self.row_loads and node in self.row_loads) else ir.children(node)
            if not ready and any(self.lookup(k) is None for k in kids):
                stack.append((node, True))
                stack.extend((k, False) for k in kids if self.lookup(k) is None)
                continue
            # a value dominates only the rest of the loop it is computed in; the node is kept
            # beside it so its id cannot be reused by another object meanwhile
            self.scopes[-1][id(node)] = (node, self.compute(node))
        return self.lookup(e)

    def compute(self, e):
        b = self.b
        if isinstance(e, ir.Const):
            return constant(e.value, e.dtype)
        if isinstance(e, ir.Var):
            return self.vars[e.name]
        if isinstance(e, ir.Dim):
            return b.load(b.gep(self.dims, [I64(e.slot)]), name=f"dim{e.slot}")
        if self.row_loads and e in self.row_loads:
            array, var = self.row_loads[e]
            return b.load(b.gep(array, [self.vars[var.name]]), name="cached")
        if isinstance(e, ir.Load):
            ptr = b.gep(self.pointer(e.buffer, e.dtype), [self.lookup(e.index)])
            return self.from_storage(self.access(b.load(ptr, name=f"b{e.buffer}"), e.buffer),
                                     e.dtype)
        if isinstance(e, ir.Op):
            args = [self.lookup(a) for a in e.args]
            if divides_as_double(e) and self.bound[-1].isdisjoint(
                    ir.free_vars(e.args[1], self.free)):
                return divide_by_invariant(b, *args)  # the innermost loop's divisor is fixed
            return emit_scalar(self, e, args)
        if isinstance(e, ir.Reduce):
            return self.reduce(e)
        raise ir.Unsupported(type(e).__name__)

    def pointer(self, slot, dtype):
        key = (slot, dtype)
        if key not in self.pointers:
            entry = self.fn.entry_basic_block
            with self.b.goto_block(entry):
                if entry.terminator is not None:
                    self.b.position_before(entry.terminator)
                raw = self.b.load(self.b.gep(self.buffers, [I64(slot)]))
                self.pointers[key] = self.b.bitcast(raw, TYPES[dtype][1].as_pointer(),
                                                    name=f"buf{slot}")
        return self.pointers[key]

    def access(self, instruction, slot, write=False):
        """A load or store of buffer `slot`, marked with the buffers it cannot touch."""
        return instruction if self.aliases is None else self.aliases.mark(instruction, slot, write)

    def stack_array(self, ty, count):
        """Room for `count` values of type ty on the stack, allocated once in the entry block."""
        entry = self.fn.entry_basic_block
        with self.b.goto_block(entry):
            if entry.terminator is not None:
                self.b.position_before(entry.terminator)
            return self.b.alloca(ty, size=I64(count), name="acc")

    def to_storage(self, value, dtype):
        return self.b.zext(value, I8) if dtype == "bool" else value

    def from_storage(self, value, dtype):
        return self.b.icmp_unsigned("!=", value, I8(0)) if dtype == "bool" else value

    # -- reductions --------------------------------------------------------------------------
    def reduce(self, r):
        """The reduction as loops carrying accumulators: the value (and for argmax/argmin
        the best position and a running position)."""
        acc_type = reduction_type(r.op, r.value.dtype)
        carried = {"value": reduction_init(r.op, r.value.dtype, acc_type)}
        if r.op in ("argmax", "argmin"):
            carried.update(index=I64(0), position=I64(0))
        tracked = r.op in NAN_TRACKED and acc_type in (F32, F64)
        if tracked:
            carried["nan"] = ll.Constant(ll.IntType(1), 0)
        loops = [(var, I64(0), self.expr(extent)) for var, extent in r.loops]
        self.hoist([r.value], {v.name for v, _ in r.loops})
        handles = []
        for var, start, stop in loops:
            handles.append(self.open_loop(var, start, stop, carried))
            carried = handles[-1][5]
        value = self.expr(r.value)
        updated = (nan_tracked(self, r.op, carried, value) if tracked
                   else combine(self, r.op, r.value.dtype, acc_type, carried, value))
        for term, array in self.row_stores.pop(r, ()):
            self.b.store(self.lookup(term), self.b.gep(array, [self.vars[r.loops[0][0].name]]))
        widened = r.value.dtype in BYTES and acc_type != TYPES[r.value.dtype][0]
        for depth, handle in reversed(list(enumerate(handles))):
            innermost = depth == len(handles) - 1
            updated = self.close_loop(handle, updated, full_vectors(self.module, r.value.dtype)
                                      if widened and innermost else None)
        if r.op in ("argmax", "argmin"):
            return updated["index"]
        if tracked:
            return self.b.select(updated["nan"], ll.Constant(acc_type, float("nan")),
                                 updated["value"], name=r.op)
        if r.op in ("sum", "prod"):
            return narrow(self.b, updated["value"], acc_type, r.dtype)
        return updated["value"]


class KernelEmitter(FunctionEmitter):
    """One kernel: `void kernel(ctx*, i64 lo, i64 hi)`, private to its module."""

    def __init__(self, module, kernel, symbol):
        fn = ll.Function(module, KERNEL_TYPE, symbol)
        fn.linkage = "internal"
        ctx, self.lo, self.hi = fn.args
        ctx.name, self.lo.name, self.hi.name = "ctx", "lo", "hi"
        super().__init__(module, fn, ctx)
        self.kernel = kernel
        self.aliases = AliasScopes(module, symbol, kernel)
        self.rows = None  # the parallel loop whose body is being emitted

    def emit(self):
        for stmt in self.kernel.body:
            self.stmt(stmt, outermost=True)
        self.b.ret_void()
        return self.fn

    # -- statements --------------------------------------------------------------------------
    def stmt(self, s, outermost=False):
        if isinstance(s, ir.Loop):
            parallel = outermost and s.parallel
            start = self.lo if parallel else I64(0)
            stop = self.hi if parallel else self.expr(s.extent)
            columns = parallel and column_reductions(s)
            lanes = not columns and vector_lanes(s)
            if columns:
                emit_column_loop(self, s, start, stop, columns)
            elif lanes:
                VectorLoop(self, s, lanes).emit(start, stop)
            else:
                roots = list(ir.statement_exprs(s.body))
                loads = [] if parallel else self.cache_rows(s, roots)
                streamed = not parallel and streamed_store(s, self.rows)
                if streamed:
                    emit_streamed_loop(self, s, streamed, self.rows, roots)
                else:
                    self.rows = s if parallel else self.rows
                    self.loop([(s.var, start, stop)], lambda: [self.stmt(x) for x in s.body],
                              roots)
                    self.rows = None if parallel else self.rows
                for again in loads:
                    del self.row_loads[again]
        elif isinstance(s, ir.Store):
            value = self.expr(s.value)
            ptr = self.b.gep(self.pointer(s.buffer, s.value.dtype), [self.expr(s.index)])
            if s.accumulate:  # one thread runs such a kernel (program.py): no atomics
                value = self.accumulated(s, ptr, value)
            self.access(self.b.store(self.to_storage(value, s.value.dtype), ptr), s.buffer, True)
        elif isinstance(s, ir.Gemm):
            self.gemm(s, outermost)
        else:
            raise ir.Unsupported(f"statement {type(s).__name__}")

    def cache_rows(self, loop, roots):
        """Sets up the row caches of a loop that is not parallel (row_cache.py): the
        reductions in front of it store the terms it loads. Returns those terms."""
        loads = []
        def hoisted(r):  # computed in front of the loop from now on (self.loop's hoist)
            return self.lookup(r) is None and self.is_bound(ir.free_vars(r))
        for c in row_caches(roots, loop.var, loop.extent, hoisted):
            if c.again in self.row_loads:
                continue  # another reduction stores it already
            array = self.stack_array(TYPES[c.dtype][0], loop.extent.value)
            array.align = 64  # whole vectors never straddle two cache lines
            self.row_stores.setdefault(c.reduce, []).append((c.term, array))
            self.row_loads[c.again] = (array, loop.var)
            loads.append(c.again)
        return loads

    def accumulated(self, s, ptr, value):
        """What accumulating store s (its value computed as `value`) writes at ptr: the add
        of the value's dtype (bool: or)."""
        e = s.value
        old = self.from_storage(self.access(self.b.load(ptr, name="old"), s.buffer), e.dtype)
        if e.dtype == "bool":
            return self.b.or_(old, value, name="any")
        return emit_scalar(self, ir.Op("add", (e, e), e.dtype), [old, value])

    def gemm(self, g, outermost):
        self.llvm_loops = True  # its operands' and epilogue's loops around it
        # defined in a module of its own; the full entry keeps B packed across runs and
        # computes the epilogue
        full = g.packed_b is not None or g.bias is not None or g.relu
        fn = declare_gemm(self.module, g.dtype, full=full)
        m = self.expr(g.m)
        rows = (self.lo, self.hi) if outermost else (I64(0), m)

        def at(operand):
            base = self.pointer(operand.buffer, g.dtype)
            return self.b.gep(base, [self.expr(operand.offset)])
        self.b.call(fn, [m, self.expr(g.n), self.expr(g.k),
                         at(g.a), self.expr(g.a.rows), self.expr(g.a.cols),
                         at(g.b), self.expr(g.b.rows), self.expr(g.b.cols),
                         at(g.c), self.expr(g.c.rows), I32(int(g.accumulate)), *rows]
                    + ([self.pointer(g.packed_b, g.dtype) if g.packed_b is not None
                         else ll.Constant(PTR, None),
                         at(g.bias) if g.bias is not None else ll.Constant(PTR, None),
                         I32(int(g.relu))] if full else []))

# ---- reductions: accumulators (dtypes, first values: kernels/ir.py), combine, result ---------
def reduction_type(op, dtype):
    return TYPES[ir.accumulator(op, dtype)][0]


def reduction_init(op, dtype, acc_type):
    return constant(ir.reduction_start(op, dtype), ir.accumulator(op, dtype))


def combine(k, op, dtype, acc_type, carried, v):
    """The accumulators after taking in value v."""
    b = k.b
    acc = carried["value"]
    how = ir.REDUCTIONS[op].combine
    if how is not None:
        accumulator = ir.accumulator(op, dtype)
        out = table_for(accumulator)[how](k, acc, widen(b, v, dtype, acc_type))
        if accumulator in FLOATS and how in ("add", "mul"):
            out.flags.append("reassoc")  # so the loop vectorizer may split it across lanes
        return {"value": out}
    # argmax/argmin: the first extreme; a NaN counts as the extreme (numpy's rule)
    if dtype in FLOATS:
        better = b.fcmp_ordered(">" if op == "argmax" else "<", v, acc)
        better = b.and_(b.or_(better, b.fcmp_unordered("uno", v, v)),
                        b.fcmp_ordered("ord", acc, acc))
    elif dtype == "bool":
        better = b.and_(v, b.not_(acc)) if op == "argmax" else b.and_(b.not_(v), acc)
    else:
        compare = b.icmp_unsigned if dtype in UNSIGNED else b.icmp_signed
        better = compare(">" if op == "argmax" else "<", v, acc)
    position = carried["position"]
    return {"value": b.select(better, v, acc, name="best"),
            "index": b.select(better, position, carried["index"], name="best.at"),
            "position": b.add(position, I64(1), name="position")}


# A float max or min reduction: one machine max per vector where llvm.maximum, which keeps a
# NaN and orders -0.0 below 0.0, takes six; the NaN is tracked apart and wins at the end, and
# equal zeros give either of them (as numpy's, whose result depends on their order).
NAN_TRACKED = {"max": "llvm.maxnum", "min": "llvm.minnum"}


def nan_tracked(k, op, carried, v):
    """The accumulators of a NAN_TRACKED reduction after taking in v: the max or min of the
    values seen, poison once one is NaN (nnan), and whether one was."""
    b = k.b
    best = b.call(intrinsic(k.module, NAN_TRACKED[op], v.type, 2), [carried["value"], v],
                  fastmath=("nnan", "nsz"), name=op)
    return {"value": best, "nan": b.or_(carried["nan"], b.fcmp_unordered("uno", v, v))}


def widen(b, v, dtype, acc_type):
    if v.type == acc_type:
        return v
    if dtype in FLOATS:
        return b.fpext(v, acc_type)
    return b.zext(v, acc_type) if dtype == "bool" or dtype in UNSIGNED else b.sext(v, acc_type)


def narrow(b, v, acc_type, dtype):
    target = TYPES[dtype][0]
    if target == acc_type:
        return v
    if dtype in FLOATS:
        return narrow_float(b, v, target)
    return b.trunc(v, target)
