"""graphc_parallel_for without worker threads: the pool layout, one definition per module, and
the paths that run a job inline (no pool, one thread, a pool that is busy or closed)."""
import llvmlite.ir as ir
import numpy as np
import pytest

from graphc.codegen.llvm import jit, parallel
from graphc.errors import DeviceError
from tests.codegen.llvm import job_kernels as jk


def test_fields_fit_the_pool_and_do_not_overlap():
    spans = sorted((offset, offset + (typ.width // 8 if isinstance(typ, ir.IntType) else 8))
                   for offset, typ in parallel.FIELDS.values())
    assert spans[0][0] >= 0 and spans[-1][1] <= parallel.CLAIMS
    assert all(end <= start for (_, end), (start, _) in zip(spans, spans[1:]))


def test_fields_written_by_different_threads_sit_on_their_own_cache_lines():
    line = {name: offset // parallel.LINE for name, (offset, _) in parallel.FIELDS.items()}
    hot = ["generation", "sleepers", "done", "fn", "busy", "nthreads"]
    assert len({line[name] for name in hot}) == len(hot)
    assert line["fn"] == line["arg"] == line["n"]


def test_each_function_is_defined_once_per_module():
    module = ir.Module()
    module.triple = jit.host()[0]
    for define in (parallel.define_parallel_for, parallel.define_worker, parallel.define_pool_close):
        assert define(module) is define(module)
    obj = jit.compile_ir(str(module))
    library = jit.load_object(obj)
    for name in ("graphc_parallel_for", "graphc_worker", "graphc_pool_close"):
        assert library.address(name)


def test_a_module_for_another_target_is_refused():
    module = ir.Module()
    module.triple = "aarch64-unknown-linux-gnu"
    with pytest.raises(DeviceError, match="x86-64 Linux"):
        parallel.define_parallel_for(module)


def test_pool_module_uses_the_futex_and_pause():
    asm = jit.assembly(str(parallel.pool_module(jit.host()[0])))
    assert "pause" in asm and "syscall" in asm and "lock" in asm


@pytest.mark.parametrize("nthreads, size", [(1, 7 * 64), (64, 7 * 64), (65, 7 * 64), (513, 8 * 64)])
def test_a_pool_has_a_claim_bit_per_thread_in_whole_cache_lines(nthreads, size):
    assert parallel.pool_bytes(nthreads) == size


def _pool_memory(**fields):
    """Pool memory with the given int fields set, for a pool that has no worker threads."""
    size = parallel.pool_bytes(fields["nthreads"]) // 8
    words = np.zeros(size + 8, np.int64)
    start = (-words.ctypes.data) % parallel.LINE // 8
    pool = words[start:start + size]
    for name, value in fields.items():
        _field(pool, name)[0] = value
    return pool


def _field(pool, name):
    offset, typ = parallel.FIELDS[name]
    return pool.view(np.int8)[offset:offset + typ.width // 8].view(f"i{typ.width // 8}")


@pytest.mark.parametrize("n", [0, 1, 7, 1023])
def test_no_pool_runs_the_whole_range_in_one_call(n):
    out, calls, bad = jk.count(0, n)
    np.testing.assert_array_equal(out, jk.expected(n))
    assert (calls, bad) == (min(n, 1), 0)


@pytest.mark.parametrize("fields", [dict(nthreads=1), dict(nthreads=4, busy=1),
                                    dict(nthreads=4, closing=1)], ids=["one-thread", "busy", "closing"])
def test_a_pool_of_one_thread_a_busy_pool_and_a_closing_pool_run_inline(fields):
    # none of these pools has workers: a call that did not run inline would never return
    pool = _pool_memory(**fields)
    before = pool.copy()
    out, calls, bad = jk.count(pool.ctypes.data, 1023, reps=3)
    np.testing.assert_array_equal(out, jk.expected(1023, reps=3))
    assert (calls, bad) == (3, 0)
    np.testing.assert_array_equal(pool, before)  # nothing published


@pytest.mark.parametrize("nthreads", [2, 4, 64, 130])
def test_the_caller_runs_the_chunks_no_worker_claims(nthreads):
    # pool memory with no worker threads behind it: every chunk is left for the caller to take
    pool = _pool_memory(nthreads=nthreads)
    n, reps = 1000, 3
    out, calls, bad = jk.count(pool.ctypes.data, n, reps=reps)
    np.testing.assert_array_equal(out, jk.expected(n, reps=reps))
    assert (calls, bad) == (reps * min(n, nthreads), 0)
    assert _field(pool, "done")[0] == nthreads and _field(pool, "generation")[0] == reps
    assert _field(pool, "busy")[0] == 0
    claims = pool[parallel.CLAIMS // 8:][:-(-nthreads // 64)].view(np.uint64)
    assert sum(bin(int(word)).count("1") for word in claims) == nthreads
