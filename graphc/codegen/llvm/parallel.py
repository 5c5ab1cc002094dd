"""Fork-join dispatch of a kernel's outer loop over a pool of native worker threads.

A pool is a small block of shared memory (pool_bytes(nthreads), 64-byte aligned, zeroed,
`nthreads` and `spin_cycles` set by its owner) laid out by FIELDS below; the runtime allocates
it and starts nthreads - 1 worker threads, each running `graphc_worker(pool, tid)`. Generated
code splits a loop with

    graphc_parallel_for(pool, fn, arg, n)     fn(arg, lo, hi) runs the iterations [lo, hi)

which cuts [0, n) into `nthreads` contiguous chunks, publishes the job, works on it too and
returns once every chunk is done. The pool's module defines it (`pool_module`); a program only
declares it (`declare_parallel_for`) and is linked with the pool's object when loaded.

The protocol, in the order things happen:
- the caller takes `busy` (one job at a time; a caller that finds it taken, e.g. a second Python
  thread or a kernel nested inside a job, runs its loop inline instead of waiting), writes the
  job, clears `done` and the claim bits (release: a thread that claims a chunk sees the job) and
  bumps `generation`;
- a worker spins on `generation` for `spin_cycles`, then sleeps on it with the futex syscall
  (counted in `sleepers`, so the caller makes the wake-up syscall only when someone sleeps);
- every thread, the caller as thread 0 included, claims its own chunk (chunk tid: the same
  thread sees the same part of the data kernel after kernel), then any chunk nobody claimed
  yet, one atomic bit per chunk; a thread that is not scheduled in time therefore costs the
  others its chunk's work, not a wait. Each finished chunk increments `done` (release);
- the caller waits for `done == nthreads` (acquire), then frees `busy`.
A chunk is claimed once, and the next job is written only after every claimed chunk is done, so
the job never changes under a thread that runs a chunk of it. Closing sets `closing` (callers
stop taking the pool, so a caller dispatching back to back cannot starve the close), takes
`busy` for good once the job in flight is done, sets `shutdown` and bumps `generation`: the
workers return.

Linux on x86-64 only: the futex syscall number and the pause instruction are the target's.
"""
import llvmlite.ir as ir

from ...errors import DeviceError

I32 = ir.IntType(32)
I64 = ir.IntType(64)
BYTE_PTR = ir.IntType(8).as_pointer()
VOID = ir.VoidType()
JOB_TYPE = ir.FunctionType(VOID, [BYTE_PTR, I64, I64])  # fn(arg, lo, hi)
PARALLEL_FOR_TYPE = ir.FunctionType(VOID, [BYTE_PTR, JOB_TYPE.as_pointer(), BYTE_PTR, I64])

LINE = 64  # cache line: fields written by different threads never share one
FIELDS = {  # name: (byte offset, type)
    "generation": (0 * LINE, I32),       # job counter; the futex word idle workers sleep on
    "sleepers": (1 * LINE, I32),         # workers asleep in the futex
    "done": (2 * LINE, I64),             # chunks of the current job finished
    "fn": (3 * LINE, JOB_TYPE.as_pointer()),  # the current job, written by the caller holding busy
    "arg": (3 * LINE + 8, BYTE_PTR),
    "n": (3 * LINE + 16, I64),
    "nthreads": (4 * LINE, I64),         # set by the pool's owner before any thread sees the pool
    "spin_cycles": (4 * LINE + 8, I64),  # likewise
    "closing": (4 * LINE + 16, I32),     # no new jobs: calls run inline
    "shutdown": (4 * LINE + 20, I32),    # workers return; set only while holding busy
    "busy": (5 * LINE, I32),             # held while a job is in flight, and forever once closed
}
CLAIMS = 6 * LINE  # then one bit per chunk: bit c % 64 of the i64 word c // 64, set once claimed


def pool_bytes(nthreads):
    """The size of a pool of nthreads threads."""
    words = -(-nthreads // 64)
    return CLAIMS + -(-words * 8 // LINE) * LINE


# Waiting, in time-stamp counter cycles. A thread waits with the pause instruction for
# PAUSE_CYCLES (about a microsecond), then yields its core between checks, since the thread it
# waits for may need that core (a loaded machine, more threads than cores). A worker goes to
# sleep after the pool's spin_cycles: SPIN_CYCLES, long enough to catch the next kernel of a
# program without a futex round trip and short enough that an idle pool costs nothing, or 0
# when the pool has more threads than cores. The caller never sleeps: it waits only for chunks
# that other threads have claimed and are running.
PAUSE_CYCLES = 3_000
SPIN_CYCLES = 100_000

SYS_FUTEX = 202  # x86-64
FUTEX_WAIT_PRIVATE = 128
FUTEX_WAKE_PRIVATE = 129
WAKE_ALL = 2**31 - 1


def _declare(module, name, ftype):
    """The function `name` of `module`, declared on first use."""
    return module.globals.get(name) or ir.Function(module, ftype, name)


class _Emitter:
    """An IR builder with the pool's field accessors and the few runtime calls the protocol needs."""

    def __init__(self, function, pool):
        self.module = function.module
        arch, *rest = self.module.triple.split("-")
        if arch != "x86_64" or "linux" not in rest:
            raise DeviceError("graphc's thread pool runs on x86-64 Linux; this module targets "
                              f"{self.module.triple!r} (set module.triple = jit.host()[0])")
        self.b = ir.IRBuilder(function.append_basic_block("entry"))
        self.pool = pool

    def block(self, name):
        return self.b.append_basic_block(name)

    def field(self, name):
        offset, typ = FIELDS[name]
        at = self.b.gep(self.pool, [ir.Constant(I64, offset)], name=f"{name}.at")
        return self.b.bitcast(at, typ.as_pointer(), name=f"{name}.ptr")

    def load(self, name, ordering=None):
        ptr = self.field(name)
        if ordering is None:
            return self.b.load(ptr, name=name)
        return self.b.load_atomic(ptr, ordering, FIELDS[name][1].width // 8, name=name)

    def store(self, name, value, ordering=None):
        if ordering is None:
            self.b.store(value, self.field(name))
        else:
            self.b.store_atomic(value, self.field(name), ordering, FIELDS[name][1].width // 8)

    def add(self, name, delta, ordering):
        typ = FIELDS[name][1]
        return self.b.atomic_rmw("add", self.field(name), ir.Constant(typ, delta), ordering,
                                 name=f"{name}.old")

    def pause(self):
        self.b.call(_declare(self.module, "llvm.x86.sse2.pause", ir.FunctionType(VOID, [])), [])

    def cycles(self, name):
        counter = _declare(self.module, "llvm.readcyclecounter", ir.FunctionType(I64, []))
        return self.b.call(counter, [], name=name)

    def back_off(self, since, retry, give_up=None, limit=None):
        """One round of waiting that began at cycle `since`, then on to `retry`: a pause, and
        past PAUSE_CYCLES a sched_yield too; once `limit` cycles have passed, on to `give_up`."""
        b = self.b
        self.pause()
        waited = b.sub(self.cycles("now"), since, name="waited")
        if give_up is not None:
            go_on = self.block("wait.on")
            b.cbranch(b.icmp_unsigned(">", waited, limit, name="waited.enough"), give_up, go_on)
            b.position_at_end(go_on)
        polite = self.block("wait.yield")
        b.cbranch(b.icmp_unsigned(">", waited, ir.Constant(I64, PAUSE_CYCLES), name="waited.long"),
                  polite, retry)
        b.position_at_end(polite)
        self.sched_yield()
        b.branch(retry)

    def futex(self, op, value):
        syscall = _declare(self.module, "syscall", ir.FunctionType(I64, [I64], var_arg=True))
        word = self.b.ptrtoint(self.field("generation"), I64, name="futex.word")
        null = ir.Constant(I64, 0)
        self.b.call(syscall, [ir.Constant(I64, SYS_FUTEX), word, ir.Constant(I64, op), value,
                              null, null, null], name="futex")

    def sched_yield(self):
        self.b.call(_declare(self.module, "sched_yield", ir.FunctionType(I32, [])), [], name="yield")

    def chunk_start(self, n, nthreads, index):
        """Where chunk `index` of [0, n) starts: the first n % nthreads chunks get one extra."""
        b = self.b
        q = b.udiv(n, nthreads, name="chunk.size")
        r = b.urem(n, nthreads, name="chunk.extra")
        gets_extra = b.icmp_unsigned("<", index, r, name="gets.extra")
        extra = b.select(gets_extra, index, r, name="extras.before")
        return b.add(b.mul(index, q, name="whole.before"), extra, name="chunk.start")

    def call_job(self, fn, arg, lo, hi):
        """fn(arg, lo, hi) unless the range is empty."""
        run, after = self.block("job.run"), self.block("job.after")
        self.b.cbranch(self.b.icmp_signed("<", lo, hi, name="job.nonempty"), run, after)
        self.b.position_at_end(run)
        self.b.call(fn, [arg, lo, hi])
        self.b.branch(after)
        self.b.position_at_end(after)

    def claim_word(self, word):
        b = self.b
        offset = b.add(ir.Constant(I64, CLAIMS), b.shl(word, ir.Constant(I64, 3)), name="claims.offset")
        return b.bitcast(b.gep(self.pool, [offset], name="claims.at"), I64.as_pointer(), name="claims.ptr")

    def clear_claims(self, nthreads):
        """Zeroes the claim words (release: the job written before is seen by every claimer)."""
        b = self.b
        entry, loop, after = b.block, self.block("clear"), self.block("cleared")
        words = b.udiv(b.add(nthreads, ir.Constant(I64, 63)), ir.Constant(I64, 64), name="claim.words")
        b.branch(loop)
        b.position_at_end(loop)
        w = b.phi(I64, name="w")
        w.add_incoming(ir.Constant(I64, 0), entry)
        b.store_atomic(ir.Constant(I64, 0), self.claim_word(w), "release", 8)
        w_next = b.add(w, ir.Constant(I64, 1), name="w.next")
        w.add_incoming(w_next, loop)
        b.cbranch(b.icmp_unsigned("<", w_next, words, name="more.words"), loop, after)
        b.position_at_end(after)

    def work_off(self, nthreads, tid, after):
        """Claims and runs chunk `tid`, then every chunk still unclaimed; then on to `after`."""
        b = self.b
        own_run, steal_word, steal_scan, steal_claim, steal_run, steal_next = (self.block(x) for x in (
            "own.run", "steal.word", "steal.scan", "steal.claim", "steal.run", "steal.next"))
        own_claimed = self._claim(tid)
        entry = b.block
        b.cbranch(own_claimed, own_run, steal_word)
        b.position_at_end(own_run)
        self._run_chunk(nthreads, tid)
        own_done = b.block
        b.branch(steal_word)

        b.position_at_end(steal_word)
        w = b.phi(I64, name="steal.w")
        w.add_incoming(ir.Constant(I64, 0), entry)
        w.add_incoming(ir.Constant(I64, 0), own_done)
        first = b.shl(w, ir.Constant(I64, 6), name="word.first")
        b.cbranch(b.icmp_unsigned("<", first, nthreads, name="word.exists"), steal_scan, after)

        b.position_at_end(steal_scan)  # the chunks of this word: bits [0, min(64, nthreads - first))
        here = b.sub(nthreads, first, name="chunks.left")
        here = b.select(b.icmp_unsigned("<", here, ir.Constant(I64, 64)), here, ir.Constant(I64, 64),
                        name="chunks.here")
        valid = b.lshr(ir.Constant(I64, -1), b.sub(ir.Constant(I64, 64), here), name="valid.bits")
        claimed = b.load_atomic(self.claim_word(w), "monotonic", 8, name="claimed.bits")
        free = b.and_(b.not_(claimed), valid, name="free.bits")
        b.cbranch(b.icmp_unsigned("==", free, ir.Constant(I64, 0), name="none.free"), steal_next, steal_claim)

        b.position_at_end(steal_claim)
        cttz = _declare(self.module, "llvm.cttz.i64", ir.FunctionType(I64, [I64, ir.IntType(1)]))
        chunk = b.add(first, b.call(cttz, [free, ir.Constant(ir.IntType(1), 1)], name="free.bit"),
                      name="stolen")
        b.cbranch(self._claim(chunk), steal_run, steal_scan)
        b.position_at_end(steal_run)
        self._run_chunk(nthreads, chunk)
        b.branch(steal_scan)

        b.position_at_end(steal_next)
        w.add_incoming(b.add(w, ir.Constant(I64, 1), name="steal.w.next"), steal_next)
        b.branch(steal_word)

    def _claim(self, chunk):
        """Sets the claim bit of `chunk`: true when this thread set it (acquire: the job is seen)."""
        b = self.b
        bit = b.shl(ir.Constant(I64, 1), b.and_(chunk, ir.Constant(I64, 63)), name="claim.bit")
        word = self.claim_word(b.lshr(chunk, ir.Constant(I64, 6), name="claim.word"))
        before = b.atomic_rmw("or", word, bit, "acquire", name="claims.before")
        return b.icmp_unsigned("==", b.and_(before, bit), ir.Constant(I64, 0), name="claimed")

    def _run_chunk(self, nthreads, chunk):
        b = self.b
        n = self.load("n")
        lo = self.chunk_start(n, nthreads, chunk)
        hi = self.chunk_start(n, nthreads, b.add(chunk, ir.Constant(I64, 1), name="next.chunk"))
        self.call_job(self.load("fn"), self.load("arg"), lo, hi)
        self.add("done", 1, "release")


def declare_parallel_for(module):
    """`graphc_parallel_for` declared in `module`, for code linked with the pool's module."""
    return _declare(module, "graphc_parallel_for", PARALLEL_FOR_TYPE)


def define_parallel_for(module):
    """`void graphc_parallel_for(i8* pool, void (i8*, i64, i64)* fn, i8* arg, i64 n)` in `module`."""
    if "graphc_parallel_for" in module.globals:
        return module.globals["graphc_parallel_for"]
    func = ir.Function(module, PARALLEL_FOR_TYPE, "graphc_parallel_for")
    pool, fn, arg, n = func.args
    pool.name, fn.name, arg.name, n.name = "pool", "fn", "arg", "n"
    e = _Emitter(func, pool)
    b = e.b
    inline, threaded, locked, publish = (e.block(x) for x in ("inline", "threaded", "locked", "publish"))
    wake, work, worked, wait, wait_more, finish = (
        e.block(x) for x in ("wake", "work", "worked", "wait", "wait.more", "finish"))

    no_pool = b.icmp_unsigned("==", pool, ir.Constant(BYTE_PTR, None), name="no.pool")
    tiny = b.icmp_signed("<", n, ir.Constant(I64, 2), name="tiny")
    b.cbranch(b.or_(no_pool, tiny, name="serial"), inline, threaded)

    b.position_at_end(threaded)
    nthreads = e.load("nthreads")
    one_thread = b.icmp_signed("<", nthreads, ir.Constant(I64, 2), name="one.thread")
    closing = b.icmp_unsigned("!=", e.load("closing", "monotonic"), ir.Constant(I32, 0), name="closing")
    b.cbranch(b.or_(one_thread, closing, name="alone"), inline, locked)

    b.position_at_end(locked)  # try to take the pool; run inline if another job holds it
    taken = b.cmpxchg(e.field("busy"), ir.Constant(I32, 0), ir.Constant(I32, 1), "acquire",
                      "monotonic", name="busy.cas")
    b.cbranch(b.extract_value(taken, 1, name="busy.taken"), publish, inline)

    b.position_at_end(publish)
    e.store("fn", fn)
    e.store("arg", arg)
    e.store("n", n)
    e.store("done", ir.Constant(I64, 0), "monotonic")
    e.clear_claims(nthreads)
    e.add("generation", 1, "seq_cst")
    # seq_cst against the worker's sleepers increment then generation load: either it sees the
    # new generation or we see it asleep
    sleeping = e.load("sleepers", "seq_cst")
    b.cbranch(b.icmp_unsigned("!=", sleeping, ir.Constant(I32, 0), name="any.asleep"), wake, work)

    b.position_at_end(wake)
    e.futex(FUTEX_WAKE_PRIVATE, ir.Constant(I64, WAKE_ALL))
    b.branch(work)

    b.position_at_end(work)
    e.work_off(nthreads, ir.Constant(I64, 0), worked)

    b.position_at_end(worked)
    since = e.cycles("wait.since")
    b.branch(wait)

    b.position_at_end(wait)  # for the chunks other threads claimed
    done = e.load("done", "acquire")
    b.cbranch(b.icmp_unsigned("==", done, nthreads, name="all.done"), finish, wait_more)

    b.position_at_end(wait_more)
    e.back_off(since, wait)

    b.position_at_end(finish)
    e.store("busy", ir.Constant(I32, 0), "release")
    b.ret_void()

    b.position_at_end(inline)
    e.call_job(fn, arg, ir.Constant(I64, 0), n)
    b.ret_void()
    return func


def define_worker(module):
    """`void graphc_worker(i8* pool, i64 tid)`: works on every job (chunk tid first) until shutdown."""
    if "graphc_worker" in module.globals:
        return module.globals["graphc_worker"]
    func = ir.Function(module, ir.FunctionType(VOID, [BYTE_PTR, I64]), "graphc_worker")
    pool, tid = func.args
    pool.name, tid.name = "pool", "tid"
    e = _Emitter(func, pool)
    b = e.b
    spin_cycles = e.load("spin_cycles")
    nthreads = e.load("nthreads")
    entry = b.block
    loop, spin, spin_more, sleep, recheck, wait, woke, got, work, worked, exit_ = (e.block(x) for x in (
        "loop", "spin", "spin.more", "sleep", "recheck", "wait", "woke", "got", "work", "worked", "exit"))
    b.branch(loop)

    # the pool starts at generation 0, so a worker that starts late still sees the first job
    b.position_at_end(loop)
    seen = b.phi(I32, name="seen")
    seen.add_incoming(ir.Constant(I32, 0), entry)
    since = e.cycles("spin.since")
    b.branch(spin)

    b.position_at_end(spin)
    spun_gen = e.load("generation", "acquire")
    b.cbranch(b.icmp_unsigned("!=", spun_gen, seen, name="new.job"), got, spin_more)

    b.position_at_end(spin_more)
    e.back_off(since, spin, give_up=sleep, limit=spin_cycles)

    b.position_at_end(sleep)
    e.add("sleepers", 1, "seq_cst")
    b.branch(recheck)

    b.position_at_end(recheck)  # the futex sleeps only while generation still equals seen
    slept_gen = e.load("generation", "seq_cst")
    b.cbranch(b.icmp_unsigned("!=", slept_gen, seen, name="woken.by.job"), woke, wait)

    b.position_at_end(wait)
    e.futex(FUTEX_WAIT_PRIVATE, b.zext(seen, I64, name="futex.expect"))
    b.branch(recheck)

    b.position_at_end(woke)
    e.add("sleepers", -1, "seq_cst")
    b.branch(got)

    b.position_at_end(got)
    generation = b.phi(I32, name="generation")
    generation.add_incoming(spun_gen, spin)
    generation.add_incoming(slept_gen, woke)
    shutdown = e.load("shutdown", "monotonic")
    b.cbranch(b.icmp_unsigned("!=", shutdown, ir.Constant(I32, 0), name="closing"), exit_, work)

    b.position_at_end(work)
    e.work_off(nthreads, tid, worked)
    b.position_at_end(worked)
    seen.add_incoming(generation, worked)
    b.branch(loop)

    b.position_at_end(exit_)
    b.ret_void()
    return func


def define_pool_close(module):
    """`void graphc_pool_close(i8* pool)`: waits out the job in flight, then stops the workers."""
    if "graphc_pool_close" in module.globals:
        return module.globals["graphc_pool_close"]
    func = ir.Function(module, ir.FunctionType(VOID, [BYTE_PTR]), "graphc_pool_close")
    (pool,) = func.args
    pool.name = "pool"
    e = _Emitter(func, pool)
    b = e.b
    take, busy, closing = e.block("take"), e.block("busy"), e.block("closing")
    e.store("closing", ir.Constant(I32, 1), "seq_cst")
    b.branch(take)

    b.position_at_end(take)
    taken = b.cmpxchg(e.field("busy"), ir.Constant(I32, 0), ir.Constant(I32, 1), "acquire",
                      "monotonic", name="busy.cas")
    b.cbranch(b.extract_value(taken, 1, name="busy.taken"), closing, busy)

    b.position_at_end(busy)
    e.sched_yield()
    b.branch(take)

    b.position_at_end(closing)  # busy stays taken: from now on every call runs inline
    e.store("shutdown", ir.Constant(I32, 1), "seq_cst")
    e.add("generation", 1, "seq_cst")
    e.futex(FUTEX_WAKE_PRIVATE, ir.Constant(I64, WAKE_ALL))
    b.ret_void()
    return func


def pool_module(triple):
    """The module the runtime compiles once per process: workers, closing, and the dispatch."""
    module = ir.Module(name="graphc_pool")
    module.triple = triple
    define_worker(module)
    define_pool_close(module)
    define_parallel_for(module)
    return module
