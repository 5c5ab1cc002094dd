"""A program's runner: every segment in one call that takes no arguments.

`define_runner(module, tag, entries)` adds to a program's module a global `bound_symbol(tag)`,
{ctx*, pool*, i64 failed}, and `void runner_symbol(tag)()`, which calls the segments' entries
in order on the ctx and pool the global holds and sets `failed` to the number + 1 of the
segment whose entry failed (a kernel reported an error; the later ones do not run), else 0.

Why a call without arguments: a ctypes call converts each argument and its result, which
costs several times the call itself; a program of tiny kernels (x + 1 on one element) spends
more time there than in its code. The runtime writes the global once per memory plan it runs,
not per call.
"""
from llvmlite import ir as ll

from .types import I32, I64, PTR, VOID

BOUND = ll.LiteralStructType([PTR, PTR, I64])  # ctx, pool, failed


def runner_symbol(tag):
    return f"graphc_{tag}_run"


def bound_symbol(tag):
    return f"graphc_{tag}_bound"


def define_runner(module, tag, entries):
    bound = ll.GlobalVariable(module, BOUND, bound_symbol(tag))
    bound.initializer = ll.Constant(BOUND, None)
    fn = ll.Function(module, ll.FunctionType(VOID, []), runner_symbol(tag))
    b = ll.IRBuilder(fn.append_basic_block("entry"))
    ctx, pool, failed = (b.gep(bound, [I32(0), I32(i)]) for i in range(3))
    ctx, pool = b.load(ctx, name="ctx"), b.load(pool, name="pool")
    for number, entry in enumerate(entries):
        status = b.call(entry, [ctx, pool], name=f"status{number}")
        with b.if_then(b.icmp_signed("!=", status, I64(0)), likely=False):
            b.store(I64(number + 1), failed)
            b.ret_void()
    b.store(I64(0), failed)
    b.ret_void()
    return fn
