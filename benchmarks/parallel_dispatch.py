"""What graphc's native thread pool costs: dispatch latency, wake-up after idle, idle CPU, and
the speed-up of a compute-bound loop split over the pool.

Prints one JSON line per figure (medians; the load average says how busy the machine was):
- dispatch_native: an empty job dispatched 10,000 times from one native loop, each call timed
  with the cycle counter, next to the same loop calling the job with no pool. The caller takes
  the chunks no worker has claimed yet, so this is what a dispatch costs the caller;
- handoff_native: a job whose chunk 0 waits until chunk 1 has run, so that a worker must take
  part: the round trip publish -> a worker runs -> join, 10,000 times back to back;
- dispatch_ctypes: the empty job from Python, one ctypes call per dispatch
  (ThreadPool.parallel_for), next to a ctypes call of the empty job itself;
- wake_after_idle: the handoff job after the workers went to sleep (a 2 ms gap before each);
- idle_cpu: CPU time the whole process used while its pool sat idle for 1 s;
- horner: out[i] = a degree-16 polynomial of i/n over 2**22 float32, on one thread, on the pool,
  and in numpy.

Usage: python benchmarks/parallel_dispatch.py [nthreads]   (default 2)
"""
import ctypes
import functools
import json
import os
import sys
import time

import llvmlite.ir as ir
import numpy as np

from _common import interleaved
from graphc.codegen.llvm import jit, parallel
from graphc.runtime.threads import ThreadPool

I64, F32 = ir.IntType(64), ir.FloatType()
COEFFS = [1.0 / (k + 1) for k in range(17)]
HORNER_N = 1 << 22


def _empty_job(module):
    func = ir.Function(module, parallel.JOB_TYPE, "empty_job")
    ir.IRBuilder(func.append_basic_block("entry")).ret_void()
    return func


def _handoff_job(module):
    """arg: i64[2] {chunks past 0 run, chunk 0 runs}; chunk 0 waits for the other chunk."""
    func = ir.Function(module, parallel.JOB_TYPE, "handoff_job")
    arg, lo, _ = func.args
    b = ir.IRBuilder(func.append_basic_block("entry"))
    counts = b.bitcast(arg, I64.as_pointer(), name="counts")
    others, firsts = counts, b.gep(counts, [ir.Constant(I64, 1)], name="firsts")
    first, other, wait, done = (func.append_basic_block(x) for x in ("first", "other", "wait", "done"))
    b.cbranch(b.icmp_signed("==", lo, ir.Constant(I64, 0)), first, other)
    b.position_at_end(other)
    b.atomic_rmw("add", others, ir.Constant(I64, 1), "release")
    b.ret_void()
    b.position_at_end(first)
    target = b.add(b.load(firsts), ir.Constant(I64, 1), name="target")
    b.store(target, firsts)
    b.branch(wait)
    b.position_at_end(wait)  # pause (about 1 us in all), then yield: the worker may need this core
    k = b.phi(I64, name="k")
    k.add_incoming(ir.Constant(I64, 0), first)
    seen = b.load_atomic(others, "acquire", 8, name="seen")
    polite, give_way = func.append_basic_block("polite"), func.append_basic_block("give.way")
    b.cbranch(b.icmp_signed(">=", seen, target), done, polite)
    b.position_at_end(polite)
    b.call(ir.Function(module, ir.FunctionType(parallel.VOID, []), "llvm.x86.sse2.pause"), [])
    k_next = b.add(k, ir.Constant(I64, 1), name="k.next")
    k.add_incoming(k_next, polite)
    k.add_incoming(k_next, give_way)
    b.cbranch(b.icmp_signed(">", k, ir.Constant(I64, 20), name="long.wait"), give_way, wait)
    b.position_at_end(give_way)
    b.call(ir.Function(module, ir.FunctionType(ir.IntType(32), []), "sched_yield"), [])
    b.branch(wait)
    b.position_at_end(done)
    b.ret_void()
    return func


def _horner_job(module):
    """arg: float* out; out[i] = sum_k COEFFS[k] * x**(16-k), x = i / HORNER_N."""
    func = ir.Function(module, parallel.JOB_TYPE, "horner_job")
    arg, lo, hi = func.args
    b = ir.IRBuilder(func.append_basic_block("entry"))
    out = b.bitcast(arg, F32.as_pointer(), name="out")
    entry = b.block
    loop, body, done = (func.append_basic_block(x) for x in ("loop", "body", "done"))
    b.branch(loop)
    b.position_at_end(loop)
    i = b.phi(I64, name="i")
    i.add_incoming(lo, entry)
    b.cbranch(b.icmp_signed("<", i, hi), body, done)
    b.position_at_end(body)
    x = b.fmul(b.sitofp(i, F32), ir.Constant(F32, 1.0 / HORNER_N), name="x")
    y = ir.Constant(F32, COEFFS[0])
    for c in COEFFS[1:]:
        y = b.fadd(b.fmul(y, x), ir.Constant(F32, c), name="y")
    b.store(y, b.gep(out, [i]))
    i.add_incoming(b.add(i, ir.Constant(I64, 1)), body)
    b.branch(loop)
    b.position_at_end(done)
    b.ret_void()
    return func


def _timed(module):
    """timed(pool, fn, arg, n, reps, u64* cycles): cycles[r] = the cycle count of dispatch r."""
    byte_ptr = parallel.BYTE_PTR
    func = ir.Function(module, ir.FunctionType(parallel.VOID, [
        byte_ptr, parallel.JOB_TYPE.as_pointer(), byte_ptr, I64, I64, I64.as_pointer()]), "timed")
    pool, fn, arg, n, reps, cycles = func.args
    counter = ir.Function(module, ir.FunctionType(I64, []), "llvm.readcyclecounter")
    b = ir.IRBuilder(func.append_basic_block("entry"))
    entry = b.block
    loop, body, done = (func.append_basic_block(x) for x in ("loop", "body", "done"))
    b.branch(loop)
    b.position_at_end(loop)
    r = b.phi(I64, name="r")
    r.add_incoming(ir.Constant(I64, 0), entry)
    b.cbranch(b.icmp_signed("<", r, reps), body, done)
    b.position_at_end(body)
    start = b.call(counter, [], name="start")
    b.call(parallel.define_parallel_for(module), [pool, fn, arg, n])
    b.store(b.sub(b.call(counter, [], name="end"), start), b.gep(cycles, [r]))
    r.add_incoming(b.add(r, ir.Constant(I64, 1)), body)
    b.branch(loop)
    b.position_at_end(done)
    b.ret_void()
    cycles_now = ir.Function(module, ir.FunctionType(I64, []), "cycles_now")
    cb = ir.IRBuilder(cycles_now.append_basic_block("entry"))
    cb.ret(cb.call(counter, []))


@functools.lru_cache(maxsize=None)
def library():
    module = ir.Module(name="parallel_dispatch_bench")
    module.triple = jit.host()[0]
    _empty_job(module)
    _handoff_job(module)
    _horner_job(module)
    _timed(module)
    return jit.load_object(jit.compile_ir(str(module)))


def ns_per_cycle():
    """The cycle counter's period, from 0.2 s of wall clock."""
    now = library().function("cycles_now", ctypes.c_uint64)
    c0, t0 = now(), time.perf_counter()
    time.sleep(0.2)
    return (time.perf_counter() - t0) * 1e9 / (now() - c0)


@functools.lru_cache(maxsize=None)
def _timed_call():
    return library().function("timed", None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                              ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p)


def timed_ns(pool_address, job, arg, n, reps, scale):
    """Each of reps back-to-back dispatches of `job`, timed in native code (ns)."""
    cycles = np.zeros(reps, np.uint64)
    _timed_call()(pool_address, library().address(job), arg, n, reps, cycles.ctypes.data)
    return cycles.astype(np.float64) * scale


def summary(ns):
    return {"median_ns": round(float(np.median(ns)), 1), "p10_ns": round(float(np.percentile(ns, 10)), 1),
            "p99_ns": round(float(np.percentile(ns, 99)), 1)}


def emit(record, nthreads):
    record.update(nthreads=nthreads, cores=len(os.sched_getaffinity(0)),
                  load_avg=round(os.getloadavg()[0], 2))
    print(json.dumps(record), flush=True)


def main(nthreads):
    scale = ns_per_cycle()
    with ThreadPool(nthreads) as pool:
        timed_ns(pool.address, "empty_job", None, 1024, 1000, scale)  # warm up
        emit({"id": "dispatch_native", "calls": 10_000,
              "pool": summary(timed_ns(pool.address, "empty_job", None, 1024, 10_000, scale)),
              "no_pool": summary(timed_ns(0, "empty_job", None, 1024, 10_000, scale))}, nthreads)
        counts = np.zeros(2, np.int64)
        handoff = summary(timed_ns(pool.address, "handoff_job", counts.ctypes.data, 2, 10_000, scale))
        emit({"id": "handoff_native", "calls": 10_000, **handoff}, nthreads)

        empty = library().address("empty_job")
        direct = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64)(empty)
        emit({"id": "dispatch_ctypes", "calls": 10_000,
              "pool": summary(_python_timed(lambda: pool.parallel_for(empty, None, 1024))),
              "direct_call": summary(_python_timed(lambda: direct(None, 0, 1024)))}, nthreads)

        woken = []
        for _ in range(200):
            time.sleep(0.002)
            woken.append(timed_ns(pool.address, "handoff_job", counts.ctypes.data, 2, 1, scale)[0])
        emit({"id": "wake_after_idle", "gap_ms": 2, "calls": 200, **summary(np.array(woken))}, nthreads)

        time.sleep(0.1)
        cpu, wall = time.process_time(), time.perf_counter()
        time.sleep(1.0)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        emit({"id": "idle_cpu", "idle_s": round(wall, 3), "cpu_s": round(cpu, 4),
              "cpu_percent": round(100 * cpu / wall, 2)}, nthreads)

        out = np.empty(HORNER_N, np.float32)
        x = np.arange(HORNER_N, dtype=np.float32) * np.float32(1.0 / HORNER_N)

        def numpy_horner():
            y = np.full_like(x, COEFFS[0])
            for c in COEFFS[1:]:
                y = y * x + np.float32(c)
            return y

        def horner_ms(pool_address):
            ns = timed_ns(pool_address, "horner_job", out.ctypes.data, HORNER_N, 21, scale)
            return float(np.median(ns)) / 1e6

        one, many = horner_ms(0), horner_ms(pool.address)
        np.testing.assert_allclose(out, numpy_horner(), rtol=1e-5)
        ref = interleaved({"numpy": numpy_horner}, 5, warmup=0)["numpy"] * 1e3
        emit({"id": "horner", "n": HORNER_N, "one_thread_ms": round(one, 3),
              "pool_ms": round(many, 3), "speedup": round(one / many, 2),
              "numpy_ms": round(ref, 3), "pool_vs_numpy": round(many / ref, 4)}, nthreads)


def _python_timed(call, calls=10_000):
    ns = np.empty(calls)
    for k in range(calls):
        t0 = time.perf_counter_ns()
        call()
        ns[k] = time.perf_counter_ns() - t0
    return ns


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
