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
    assert spans[0][0] >= 0 and spans[-1][1] <= parallel.POOL_BYTES
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


def _pool_memory(**fields):
    """Pool memory with the given int fields set, for a pool that has no worker threads."""
    words = np.zeros(parallel.POOL_BYTES // 8 + 8, np.int64)
    start = (-words.ctypes.data) % parallel.LINE // 8
    pool = words[start:start + parallel.POOL_BYTES // 8]
    for name, value in fields.items():
        offset, typ = parallel.FIELDS[name]
        pool.view(np.int8)[offset:offset + typ.width // 8].view(f"i{typ.width // 8}")[0] = value
    return pool


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
