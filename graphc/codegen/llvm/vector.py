"""Elementwise loops emitted as vector code, whatever their size.

A loop whose body only stores (no accumulation, no inner loop), and whose every load and store
index moves by one with the loop's variable or not at all, runs `lanes` consecutive elements per
iteration as LLVM vectors: INTERLEAVE of the host's widest registers, so that several
independent dependence chains are in flight. The last iteration loads and stores under a mask.
A value that does not depend on the loop's variable is computed once as a scalar and splat.

LLVM's loop vectorizer would widen such a loop too, but its time grows faster than linearly with
the loop's size (0.07 s for 500 instructions, 0.25 s for 1,000); the loop is marked as
vectorized, so it skips it. Loops this module declines (reductions, gathers, polynomial math
functions, float16 and bfloat16) are left to the vectorizer as before.
"""
from llvmlite import ir as ll

from ...kernels import ir
from . import jit, mathlib
from .scalar import divide_by_invariant, divides_as_double, emit_scalar
from .types import I1, I8, I32, I64, TYPES, mangled

# registers per value: a chain of dependent ops has a latency of 3-4 cycles and two or more
# units start one such op each cycle; a 10,000-op chain ran 40% faster with 8 than with 4
INTERLEAVE = 8
VECTOR_DTYPES = ("bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
                 "float32", "float64")
SCALAR_ONLY = ("check_index", "round_bfloat16")  # emitted with branches or scalar constants


def vector_lanes(loop):
    """Elements per iteration where `loop` is emitted as vector code (module docstring), else
    None."""
    body = loop.body
    if not body or not all(isinstance(s, ir.Store) and not s.accumulate for s in body):
        return None
    var, memo = loop.var.name, {}
    if not all(unit_step(s.index, var, memo) for s in body):
        return None
    widest = 8
    # what the stores' values are computed from; a load's index is a scalar, not one of them
    for e in ir.distinct([s.value for s in body], opaque=(ir.Load, ir.Reduce)):
        if isinstance(e, ir.Reduce):  # the scalar emitter hoists these out of the loop
            return None
        if var not in ir.free_vars(e, memo):  # a scalar, computed as usual and splat
            continue
        if (e.dtype not in VECTOR_DTYPES
                or isinstance(e, ir.Load) and not unit_step(e.index, var, memo)
                or isinstance(e, ir.Op) and (e.name in mathlib.POLYNOMIALS
                                             or e.name in SCALAR_ONLY)):
            return None
        widest = max(widest, _bits(e.dtype))
    return jit.vector_bits() // widest * INTERLEAVE


def _bits(dtype):
    ty = TYPES[dtype][0]
    return ty.width if isinstance(ty, ll.IntType) else 32 if dtype == "float32" else 64


def unit_step(index, var, memo):
    """Whether index is var, or var plus something that does not depend on var (memo:
    ir.free_vars's)."""
    if index == ir.Var(var):
        return True
    return (isinstance(index, ir.Op) and index.name == "add"
            and sum(a == ir.Var(var) for a in index.args) == 1
            and all(a == ir.Var(var) or var not in ir.free_vars(a, memo) for a in index.args))


class VectorLoop:
    """Emits `for var in [start, stop) step lanes` over loop's stores with emitter k."""

    def __init__(self, k, loop, lanes):
        self.k, self.loop, self.lanes = k, loop, lanes
        self.var = loop.var.name
        self.values = {}  # id(expr) -> its vector in this iteration
        self.free = {}  # ir.free_vars's memo

    def emit(self, start, stop):
        k, b, lanes = self.k, self.k.b, self.lanes
        pre = b.block
        head = k.fn.append_basic_block(f"{self.var}.vector")
        done = k.fn.append_basic_block(f"{self.var}.vector.done")
        b.cbranch(b.icmp_signed("<", start, stop), head, done)
        b.position_at_end(head)
        iv = b.phi(I64, name=self.var)
        iv.add_incoming(start, pre)
        k.vars[self.var] = iv
        k.scopes.append({})
        k.bound.append({self.var})
        left = b.sub(stop, iv, name="left")
        left = b.select(b.icmp_signed("<", left, I64(lanes)), left, I64(lanes))
        self.iv = iv
        self.mask = b.icmp_signed("<", ll.Constant(ll.VectorType(I32, lanes), list(range(lanes))),
                                  self.splat(b.trunc(left, I32)), name="mask")
        for s in self.loop.body:
            self.store(s)
        nxt = b.add(iv, I64(lanes), name=f"{self.var}.next")
        iv.add_incoming(nxt, b.block)
        latch = b.cbranch(b.icmp_signed("<", nxt, stop), head, done)
        latch.set_metadata("llvm.loop", vectorized_loop(k.module))
        b.position_at_end(done)
        k.scopes.pop()
        k.bound.pop()

    def splat(self, scalar):
        vector_type = ll.VectorType(scalar.type, self.lanes)
        one = self.k.b.insert_element(ll.Constant(vector_type, ll.Undefined), scalar, I32(0))
        return self.k.b.shuffle_vector(one, ll.Constant(vector_type, ll.Undefined),
                                       ll.Constant(ll.VectorType(I32, self.lanes), 0))

    def value(self, e):
        """e's vector in this iteration."""
        for node in ir.bottom_up(e, lambda x: id(x) in self.values, self.operands):
            self.values[id(node)] = self.compute(node)
        return self.values[id(e)]

    def operands(self, e):
        """What e's vector is computed from: none for a scalar splat or a load."""
        return [] if self.uniform(e) or isinstance(e, ir.Load) else ir.children(e)

    def uniform(self, e):
        return self.var not in ir.free_vars(e, self.free)

    def compute(self, e):
        k, b = self.k, self.k.b
        if self.uniform(e):
            return self.splat(k.expr(e))
        if isinstance(e, ir.Var):  # the element's own index: iv + lane
            steps = ll.Constant(ll.VectorType(I64, self.lanes), list(range(self.lanes)))
            return b.add(self.splat(self.iv), steps, name=f"{e.name}.lanes")
        if isinstance(e, ir.Load):
            vector_type = ll.VectorType(TYPES[e.dtype][1], self.lanes)
            load = masked(k.module, "load", vector_type)
            loaded = b.call(load, [self.address(e.buffer, e.dtype, e.index),
                                   I32(alignment(e.dtype)), self.mask,
                                   ll.Constant(vector_type, ll.Undefined)], name=f"b{e.buffer}")
            k.access(loaded, e.buffer)
            if e.dtype == "bool":
                return b.icmp_unsigned("!=", loaded, ll.Constant(vector_type, 0))
            return loaded
        args = [self.values[id(a)] for a in e.args]
        if divides_as_double(e) and self.uniform(e.args[1]):
            return divide_by_invariant(b, *args)
        return emit_scalar(k, e, args)

    def address(self, buffer, dtype, index):
        """The vector pointer to the element at `index` with var = iv."""
        pointer = self.k.b.gep(self.k.pointer(buffer, dtype), [self.k.expr(index)])
        return self.k.b.bitcast(pointer, ll.VectorType(TYPES[dtype][1], self.lanes).as_pointer())

    def store(self, s):
        k, b = self.k, self.k.b
        dtype = s.value.dtype
        value = self.value(s.value)
        if dtype == "bool":
            value = b.zext(value, ll.VectorType(I8, self.lanes))
        call = b.call(masked(k.module, "store", value.type),
                      [value, self.address(s.buffer, dtype, s.index), I32(alignment(dtype)),
                       self.mask])
        k.access(call, s.buffer, True)


def alignment(dtype):
    return max(1, _bits(dtype) // 8)


def masked(module, what, vector_type):
    """The declaration of llvm.masked.load or llvm.masked.store for vector_type."""
    name = f"llvm.masked.{what}.{mangled(vector_type)}.p0"
    if name in module.globals:
        return module.globals[name]
    mask = ll.VectorType(I1, vector_type.count)
    pointer = vector_type.as_pointer()
    if what == "load":
        signature = ll.FunctionType(vector_type, [pointer, I32, mask, vector_type])
    else:
        signature = ll.FunctionType(ll.VoidType(), [vector_type, pointer, I32, mask])
    return ll.Function(module, signature, name)


def vectorized_loop(module):
    """Loop metadata: the loop is vector code already; LLVM neither widens nor unrolls it."""
    options = [module.add_metadata([ll.MetaDataString(module, "llvm.loop.isvectorized"), I32(1)]),
               module.add_metadata([ll.MetaDataString(module, "llvm.loop.unroll.disable")])]
    loop = module.add_metadata([ll.MetaDataString(module, f"loop{len(module.metadata)}"),
                                *options])
    loop.operands = (loop, *options)  # LLVM takes a loop's metadata only if it names itself first
    return loop
