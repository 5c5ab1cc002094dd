"""A program: kernels in order, entered through one native call per segment.

`build_module(segments, tag)` puts every kernel of every segment into one LLVM module and adds,
per segment, an exported entry `i64 graphc_<tag>_<n>(ctx*, i8* pool)` that calls the segment's
kernels in order (and a runner that calls every entry without arguments: runner.py): a kernel with a parallel loop and enough work goes through the thread pool
(`graphc_parallel_for`, which a program declares and the pool's module defines), a small one
runs inline. After each kernel the entry checks the error slot and returns 1 if a kernel
reported an error (a bad gather index), else it returns 0.

Matrix products call `graphc_gemm_<dtype>`, which a program only declares: `gemm_module(dtype)`
defines it, compiled once (GEMM_PIPELINE) and linked beside every program that needs it
(`gemm_dtypes`), since compiling the GEMM costs more than most programs.
"""
from llvmlite import ir as ll

from ...kernels import ir
from . import jit, mathlib
from .emit import FunctionEmitter, KernelEmitter
from .gemm import define_gemm
from .loop_driver import define_loop_driver
from .parallel import declare_parallel_for
from .runner import define_runner
from .types import I64, PTR

PARALLEL_MIN_WORK = 1 << 15  # element operations below which a dispatch costs more than it saves
# element operations one call of a polynomial math function (exp, tanh, sigmoid: mathlib) counts
# as: an LSTM step's gates (64 x 256 elements, six such calls each) measured 95 us on one thread
MATH_CALL_WORK = 8
# arithmetic ops per element that count as one element operation: a long fused chain (1,000 ops
# on 1,000 elements) is worth the threads though it has few elements
OPS_PER_WORK = 8


def entry_symbol(tag, segment):
    return f"graphc_{tag}_{segment}"


def driver_symbol(tag):
    return f"graphc_{tag}_loop"


def build_module(segments, tag, loop_driver=False):
    """segments: lists of ir.Kernel. Returns the llvmlite module and how to compile it
    (PROGRAM_PIPELINE, or VECTOR_PIPELINE where no loop is left to LLVM's optimizer).
    loop_driver: the program is a loop's body; add its driver (loop_driver.py), which runs
    every step in one call."""
    module = ll.Module(name=f"graphc_{tag}")
    module.triple = jit.host()[0]
    entries, llvm_loops = [], loop_driver
    for number, kernels in enumerate(segments):
        emitters = [KernelEmitter(module, k, f"{k.name}_{tag}") for k in kernels]
        functions = [e.emit() for e in emitters]
        llvm_loops = llvm_loops or any(e.llvm_loops for e in emitters)
        entries.append(EntryEmitter(module, entry_symbol(tag, number), kernels,
                                    functions).emit())
    define_runner(module, tag, entries)
    if loop_driver:
        define_loop_driver(module, driver_symbol(tag), entries)
    return module, PROGRAM_PIPELINE if llvm_loops else VECTOR_PIPELINE


def gemm_dtypes(segments):
    """The dtypes of the matrix products in these segments' kernels, sorted."""
    found = set()
    todo = [s for kernels in segments for k in kernels for s in k.body]
    while todo:
        s = todo.pop()
        if isinstance(s, ir.Gemm):
            found.add(s.dtype)
        elif isinstance(s, ir.Loop):
            todo.extend(s.body)
    return sorted(found)


# How a program is compiled (jit.compile_ir's options). Its kernels are loops the vectorizer
# widens (reductions also interleaved: several sums in flight; emit.one_vector_per_iteration).
# Unrolling stays on although W4's train step compiles in 0.39 s with it and 0.25 s without:
# the short fixed loops of pooling windows and convolution taps need it (W5's max-pool
# gradient ran 14x slower without it, 4.0 ms instead of 0.28).
PROGRAM_PIPELINE = {"level": 3, "unroll": True}
# How a program whose loops are all vector code already (vector.py) is compiled: LLVM's fast
# code generator, 4x faster on a 10,000-op fused chain (whose code generation was two thirds
# of its compile time) and as fast to run: straight-line vector code needs no better one.
VECTOR_PIPELINE = {"level": 3, "unroll": True, "codegen": 0}

# How the GEMM is compiled. It is vectorized by hand: O2 without loop unrolling runs it as fast
# as O3 (W3's shapes, 1024^3, N = 10) and compiles it in 0.15 s instead of 0.35.
GEMM_PIPELINE = {"level": 2, "unroll": False}


def gemm_module(dtype):
    """A module that holds only the GEMM of `dtype`, for the programs that call it."""
    module = ll.Module(name=f"graphc_gemm_{dtype}")
    module.triple = jit.host()[0]
    define_gemm(module, dtype)
    return module


class EntryEmitter(FunctionEmitter):
    """`i64 entry(ctx*, pool*)`: the segment's kernels, in order."""

    def __init__(self, module, symbol, kernels, functions):
        fn = ll.Function(module, ll.FunctionType(I64, [PTR, PTR]), symbol)
        ctx, self.pool = fn.args
        ctx.name, self.pool.name = "ctx", "pool"
        super().__init__(module, fn, ctx)
        self.kernels = kernels
        self.functions = functions

    def emit(self):
        b = self.b
        parallel_for = declare_parallel_for(self.module)
        status = self.b.gep(self.error, [I64(0)], name="status")
        for kernel, fn in zip(self.kernels, self.functions):
            extent, work = parallel_extent(kernel)
            if extent is None:
                b.call(fn, [self.ctx, I64(0), I64(1)])
            else:
                n = self.expr(extent)
                big = b.icmp_signed(">=", self.expr(work), I64(PARALLEL_MIN_WORK), name="big")
                with b.if_else(big) as (threaded, inline):
                    with threaded:
                        b.call(parallel_for, [self.pool, fn, self.ctx, n])
                    with inline:
                        b.call(fn, [self.ctx, I64(0), n])
            failed = b.icmp_signed("!=", b.load(status), I64(0), name="failed")
            with b.if_then(failed, likely=False):
                b.ret(I64(1))
        b.ret(I64(0))
        return self.fn


def parallel_extent(kernel):
    """(extent of the loop threads split, an estimate of the element operations) or (None,
    None) for a kernel that runs on one thread."""
    body = kernel.body
    if len(body) == 1 and isinstance(body[0], ir.Gemm):
        g = body[0]
        return g.m, ir.product([g.m, g.n, g.k])
    loop = kernel.parallel_loop
    if loop is None:
        return None, None
    if ir.accumulates(loop.body):  # threads would add to one element at once: one runs it all
        return loop.extent, ir.const(0)
    ops, calls = _op_counts(loop.body)
    per_element = ir.const(1 + MATH_CALL_WORK * calls + ops // OPS_PER_WORK)
    return loop.extent, ir.product([loop.extent, _work(loop.body), per_element])


def _op_counts(stmts):
    """(ops, calls of polynomial math functions) the expressions of stmts compute per element
    (each distinct expression counted once, as LLVM computes it once)."""
    seen, todo, ops, calls = set(), list(ir.statement_exprs(stmts)), 0, 0
    while todo:
        e = todo.pop()
        if e in seen:
            continue
        seen.add(e)
        ops += isinstance(e, ir.Op)
        calls += isinstance(e, ir.Op) and e.name in mathlib.POLYNOMIALS
        todo.extend(ir.children(e))
    return ops, calls


def _work(stmts):
    """Operations per iteration of the loop around stmts: nested extents, reductions included."""
    best = ir.const(1)
    for s in stmts:
        if isinstance(s, ir.Loop):
            best = ir.mul(s.extent, _work(s.body))
        elif isinstance(s, ir.Store) and isinstance(s.value, ir.Reduce):
            best = ir.product(e for _, e in s.value.loops)
        elif isinstance(s, ir.Gemm):
            best = ir.product([s.m, s.n, s.k])
    return best
