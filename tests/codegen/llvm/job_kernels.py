"""Jobs for testing graphc_parallel_for, compiled the way a generated program is.

`count_job(ctl, lo, hi)` adds f(i) = i*i + 3 to out[i] for i in [lo, hi) (atomically, so a
chunk run twice shows up as a doubled value rather than a lost race), counts its calls, and
counts the calls whose range is empty or outside [0, n). `meet_job` checks that the caller's
chunk and a worker's chunk really run at the same time: chunk 0 waits (boundedly) for chunk 1.
`dispatch(pool, job, ctl, n, reps)` calls graphc_parallel_for reps times in a native loop.
"""
import ctypes
import functools

import llvmlite.ir as ir
import numpy as np

from graphc.codegen.llvm import jit, parallel

I64 = ir.IntType(64)
CTL_OUT, CTL_CALLS, CTL_BAD, CTL_N = range(4)  # count_job's control words
MEET_FLAG, MEET_SEEN = range(2)                # meet_job's
MEET_SPIN_LIMIT = 1 << 27


def _const(v):
    return ir.Constant(I64, v)


def _job(module, name):
    func = ir.Function(module, parallel.JOB_TYPE, name)
    arg, lo, hi = func.args
    arg.name, lo.name, hi.name = "arg", "lo", "hi"
    b = ir.IRBuilder(func.append_basic_block("entry"))
    ctl = b.bitcast(arg, I64.as_pointer(), name="ctl")
    return func, b, ctl, lo, hi


def _word(b, ctl, index):
    return b.gep(ctl, [_const(index)], name=f"ctl{index}")


def _count_job(module):
    func, b, ctl, lo, hi = _job(module, "count_job")
    n = b.load(_word(b, ctl, CTL_N), name="n")
    bad = b.or_(b.or_(b.icmp_signed(">=", lo, hi), b.icmp_signed("<", lo, _const(0))),
                b.icmp_signed(">", hi, n), name="bad")
    b.atomic_rmw("add", _word(b, ctl, CTL_BAD), b.zext(bad, I64), "monotonic")
    b.atomic_rmw("add", _word(b, ctl, CTL_CALLS), _const(1), "monotonic")
    out = b.inttoptr(b.load(_word(b, ctl, CTL_OUT)), I64.as_pointer(), name="out")
    entry = b.block
    loop, body, done = (func.append_basic_block(x) for x in ("loop", "body", "done"))
    b.cbranch(bad, done, loop)
    b.position_at_end(loop)
    i = b.phi(I64, name="i")
    i.add_incoming(lo, entry)
    b.cbranch(b.icmp_signed("<", i, hi), body, done)
    b.position_at_end(body)
    value = b.add(b.mul(i, i), _const(3), name="f")
    b.atomic_rmw("add", b.gep(out, [i]), value, "monotonic")
    i.add_incoming(b.add(i, _const(1), name="next"), body)
    b.branch(loop)
    b.position_at_end(done)
    b.ret_void()
    return func


def _meet_job(module):
    func, b, ctl, lo, hi = _job(module, "meet_job")
    flag = _word(b, ctl, MEET_FLAG)
    first, other, wait, waited = (func.append_basic_block(x) for x in ("first", "other", "wait", "waited"))
    b.cbranch(b.icmp_signed("==", lo, _const(0)), first, other)
    b.position_at_end(other)
    b.store_atomic(_const(1), flag, "release", 8)
    b.ret_void()
    b.position_at_end(first)
    b.branch(wait)
    b.position_at_end(wait)
    k = b.phi(I64, name="k")
    k.add_incoming(_const(0), first)
    seen = b.load_atomic(flag, "acquire", 8, name="seen")
    k.add_incoming(b.add(k, _const(1)), wait)
    give_up = b.icmp_signed(">=", k, _const(MEET_SPIN_LIMIT))
    b.cbranch(b.or_(b.icmp_signed("!=", seen, _const(0)), give_up), waited, wait)
    b.position_at_end(waited)
    b.store(seen, _word(b, ctl, MEET_SEEN))
    b.ret_void()
    return func


def _dispatch(module, jobs):
    """dispatch(pool, job index, ctl, n, reps)."""
    byte_ptr = parallel.BYTE_PTR
    func = ir.Function(module, ir.FunctionType(parallel.VOID, [byte_ptr, I64, byte_ptr, I64, I64]),
                       "dispatch")
    pool, which, ctl, n, reps = func.args
    b = ir.IRBuilder(func.append_basic_block("entry"))
    entry = b.block
    job = b.select(b.icmp_signed("==", which, _const(0)), jobs[0], jobs[1], name="job")
    loop, body, done = (func.append_basic_block(x) for x in ("loop", "body", "done"))
    b.branch(loop)
    b.position_at_end(loop)
    r = b.phi(I64, name="r")
    r.add_incoming(_const(0), entry)
    b.cbranch(b.icmp_signed("<", r, reps), body, done)
    b.position_at_end(body)
    b.call(parallel.define_parallel_for(module), [pool, job, ctl, n])
    r.add_incoming(b.add(r, _const(1)), body)
    b.branch(loop)
    b.position_at_end(done)
    b.ret_void()
    return func


def module():
    mod = ir.Module(name="parallel_test_jobs")
    mod.triple = jit.host()[0]
    _dispatch(mod, [_count_job(mod), _meet_job(mod)])
    return mod


@functools.lru_cache(maxsize=None)
def _library():
    return jit.load_object(jit.compile_ir(str(module())))


def dispatch(pool_address, job, ctl, n, reps):
    """Runs the native loop; `pool_address` may be 0 (no pool)."""
    fn = _library().function("dispatch", None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p,
                             ctypes.c_int64, ctypes.c_int64)
    fn(pool_address, job, ctl.ctypes.data, n, reps)


def job_address(name):
    return _library().address(name)


def count(pool_address, n, reps=1):
    """(out, calls, bad calls) after reps dispatches of count_job over [0, n)."""
    out = np.zeros(max(n, 1), np.int64)
    ctl = np.zeros(4, np.int64)
    ctl[CTL_OUT], ctl[CTL_N] = out.ctypes.data, n
    dispatch(pool_address, 0, ctl, n, reps)
    return out[:n], int(ctl[CTL_CALLS]), int(ctl[CTL_BAD])


def expected(n, reps=1):
    i = np.arange(n, dtype=np.int64)
    return (i * i + 3) * reps


def meet(pool_address):
    """True when chunk 0 saw chunk 1 start while it was still running."""
    ctl = np.zeros(2, np.int64)
    dispatch(pool_address, 1, ctl, 2, 1)
    return bool(ctl[MEET_SEEN])
