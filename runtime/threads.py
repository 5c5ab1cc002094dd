"""The native thread pool that compiled kernels split their outer loops over.

A `ThreadPool` owns the pool memory, laid out as the CPU target says (graphc/targets/cpu.py),
and nthreads - 1 worker threads. Each worker is a Python thread that enters the native
`graphc_worker` through ctypes (which releases the GIL) and stays there until the pool closes,
so a dispatch runs no Python. Generated code receives `pool.address` and calls
`graphc_parallel_for` with it (the pool's module, which programs link).

Lifetime: a pool runs until `close()` (or the end of the process). Its memory outlives the
close, so code that still holds the address keeps working, single-threaded. After `os.fork()`
the child has the memory but not the threads: every pool is closed in the child (dispatches
run inline), and `default_pool()` makes the child a pool of its own.
"""
import atexit
import ctypes
import os
import threading

from graphc.errors import ResourceError
from graphc.targets import cpu

from .llvm_objects import link

_POINTER, _INT64 = ctypes.c_void_p, ctypes.c_int64


def _native(name, *argtypes):
    """A function of the pool module (workers, closing, dispatch), loaded once per process."""
    return link(cpu.POOL_CODE).function(name, None, *argtypes)


def default_nthreads():
    """$GRAPHC_NUM_THREADS, else the number of cores this process may run on."""
    text = os.environ.get("GRAPHC_NUM_THREADS")
    if text is None:
        return len(os.sched_getaffinity(0))
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ResourceError(f"GRAPHC_NUM_THREADS must be a positive integer, got {text!r}")
    return value


class ThreadPool:
    """nthreads native threads (the caller's included) for `graphc_parallel_for`."""

    def __init__(self, nthreads=None):
        nthreads = default_nthreads() if nthreads is None else nthreads
        if not isinstance(nthreads, int) or isinstance(nthreads, bool) or nthreads < 1:
            raise ResourceError(f"a thread pool needs a positive number of threads, got {nthreads!r}")
        self.nthreads = nthreads
        # zeroed, one line of slack for alignment
        self._memory = ctypes.create_string_buffer(cpu.pool_bytes(nthreads) + cpu.POOL_LINE)
        base = ctypes.addressof(self._memory)
        self.address = base + (-base) % cpu.POOL_LINE
        self._field("nthreads").value = nthreads
        oversubscribed = nthreads > len(os.sched_getaffinity(0))
        self._field("spin_cycles").value = 0 if oversubscribed else cpu.POOL_SPIN_CYCLES
        self._close_lock = threading.Lock()
        self._closed = False
        self._dispatch = _native("graphc_parallel_for", _POINTER, _POINTER, _POINTER, _INT64)
        worker = _native("graphc_worker", _POINTER, _INT64)
        self._threads = [threading.Thread(target=worker, args=(self.address, tid), daemon=True,
                                          name=f"graphc-worker-{tid}")
                         for tid in range(1, nthreads)]
        for thread in self._threads:
            thread.start()
        _open_pools.add(self)

    def _field(self, name):
        offset, bits = cpu.pool_field(name)
        ctype = {32: ctypes.c_int32, 64: ctypes.c_int64}[bits]
        return ctype.from_address(self.address + offset)

    @property
    def closed(self):
        return self._closed

    def parallel_for(self, fn, arg, n):
        """Runs the native fn(arg, lo, hi) over [0, n) on the pool (fn, arg: addresses)."""
        self._dispatch(self.address, fn, arg, n)

    def close(self):
        """Stops the workers once the job in flight is done; later dispatches run inline.

        The memory stays with this object: code may keep calling with the address while the
        pool object is alive."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            _open_pools.discard(self)
            _native("graphc_pool_close", _POINTER)(self.address)
            for thread in self._threads:
                thread.join()

    def _abandon_after_fork(self):
        """In a forked child: no workers exist, so every job runs inline."""
        self._field("closing").value = 1
        self._close_lock = threading.Lock()  # another thread of the parent may have held it
        self._closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        state = "closed" if self._closed else "open"
        return f"<ThreadPool nthreads={self.nthreads} {state} at {self.address:#x}>"


_open_pools = set()
_default = None
_default_lock = threading.Lock()


def default_pool():
    """The process-wide pool, made on first use (and again in a forked child)."""
    global _default
    with _default_lock:
        if _default is None or _default.closed:
            _default = ThreadPool()
        return _default


def _close_all():
    for pool in list(_open_pools):
        pool.close()


def _after_fork_in_child():
    global _default, _default_lock
    _default_lock = threading.Lock()  # the parent may have held it while forking
    _default = None
    for pool in list(_open_pools):
        pool._abandon_after_fork()
    _open_pools.clear()


atexit.register(_close_all)
os.register_at_fork(after_in_child=_after_fork_in_child)
