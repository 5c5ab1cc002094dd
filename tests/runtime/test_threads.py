"""The native thread pool: every element of a dispatched range is done exactly once, for any
thread count (more threads than cores included), back to back, from several Python threads,
across close, reopen and fork; idle workers sleep."""
import os
import threading
import time

import numpy as np
import pytest

from graphc.errors import ResourceError
from graphc.runtime import threads
from tests.codegen.llvm import job_kernels as jk

THREAD_COUNTS = [1, 2, 3, 8]


@pytest.fixture(params=THREAD_COUNTS, ids=lambda k: f"{k}threads")
def pool(request):
    with threads.ThreadPool(request.param) as p:
        yield p


def chunks(n, nthreads):
    """Calls a dispatch of n iterations makes: one per non-empty chunk, one in all if inline."""
    return min(n, 1) if n < 2 or nthreads == 1 else min(n, nthreads)


def check(pool_address, n, reps, calls_expected):
    out, calls, bad = jk.count(pool_address, n, reps)
    np.testing.assert_array_equal(out, jk.expected(n, reps))
    assert bad == 0
    if callable(calls_expected):
        assert calls_expected(calls), calls
    else:
        assert calls == calls_expected


@pytest.mark.parametrize("n", [0, 1, 7, 1023, 10**6])
def test_every_element_is_done_exactly_once(pool, n):
    check(pool.address, n, 1, chunks(n, pool.nthreads))


def test_ten_thousand_dispatches_back_to_back(pool):
    check(pool.address, 37, 10_000, 10_000 * chunks(37, pool.nthreads))


def test_more_threads_than_one_claim_word_holds():
    with threads.ThreadPool(70) as p:
        check(p.address, 1023, 50, 50 * 70)
        check(p.address, 37, 50, 50 * 37)


@pytest.mark.parametrize("nthreads", [2, 8])
def test_workers_run_at_the_same_time_as_the_caller(nthreads):
    with threads.ThreadPool(nthreads) as p:
        assert jk.meet(p.address)


def test_the_python_entry_point_dispatches_too():
    with threads.ThreadPool(3) as p:
        out = np.zeros(1023, np.int64)
        ctl = np.array([out.ctypes.data, 0, 0, 1023], np.int64)
        p.parallel_for(jk.job_address("count_job"), ctl.ctypes.data, 1023)
        np.testing.assert_array_equal(out, jk.expected(1023))
        assert ctl[jk.CTL_CALLS] == 3


def test_close_is_idempotent_joins_the_workers_and_leaves_the_address_usable():
    p = threads.ThreadPool(3)
    workers = list(p._threads)
    p.close()
    p.close()
    assert p.closed and not any(t.is_alive() for t in workers)
    check(p.address, 1023, 2, 2)  # inline: one call per dispatch
    with threads.ThreadPool(3) as again:
        check(again.address, 1023, 2, 6)


def in_threads(*calls):
    """Runs the calls at once, one Python thread each; their results, or the first error."""
    results, errors = [None] * len(calls), []

    def run(i, call):
        try:
            results[i] = call()
        except BaseException as err:  # re-raised in the test's thread
            errors.append(err)

    runners = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for t in runners:
        t.start()
    for t in runners:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in runners), "a dispatch hung"
    if errors:
        raise errors[0]
    return results


def test_two_pools_in_one_process_at_the_same_time():
    with threads.ThreadPool(2) as a, threads.ThreadPool(3) as b:
        in_threads(*(lambda p=p: check(p.address, 1023, 2000, 2000 * p.nthreads) for p in (a, b)))


@pytest.mark.parametrize("nthreads", [2, 8])
def test_one_pool_from_two_python_threads_at_once(nthreads):
    # one of them may find the pool busy and run a dispatch inline: one call instead of nthreads
    reps = 2000
    with threads.ThreadPool(nthreads) as p:
        in_threads(*[lambda: check(p.address, 1023, reps, lambda c: reps <= c <= reps * nthreads)] * 2)


def test_close_returns_while_another_thread_keeps_dispatching():
    # back-to-back dispatches must not starve the close; those after it run inline
    p = threads.ThreadPool(2)
    reps, n = 2000, 10**5
    dispatching = []

    def close_soon():
        time.sleep(0.05)
        p.close()
        return dispatching[0].is_alive()

    def dispatch():
        dispatching.append(threading.current_thread())
        check(p.address, n, reps, lambda c: reps <= c <= 2 * reps)

    _, closed_midway = in_threads(dispatch, close_soon)
    assert p.closed and closed_midway


def test_an_idle_pool_sleeps():
    with threads.ThreadPool(2) as p:
        check(p.address, 1023, 1, 2)
        time.sleep(0.05)  # past the spin
        cpu = time.process_time()
        time.sleep(0.5)
        # a spinning worker would burn 0.5 s of CPU here
        assert time.process_time() - cpu < 0.1


def test_a_forked_child_runs_old_pools_inline_and_gets_a_default_pool_of_its_own():
    p = threads.ThreadPool(2)
    parent_default = threads.default_pool()
    pid = os.fork()
    if pid == 0:  # the child: report through the exit status only
        status = 1
        try:
            check(p.address, 1023, 3, 3)
            fresh = threads.default_pool()
            assert fresh is not parent_default and not fresh.closed and p.closed
            check(fresh.address, 1023, 3, 3 * chunks(1023, fresh.nthreads))
            fresh.close()
            status = 0
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    check(p.address, 1023, 3, 6)
    p.close()


def test_default_pool_is_shared_until_closed():
    first = threads.default_pool()
    assert threads.default_pool() is first and first.nthreads == threads.default_nthreads()
    first.close()
    second = threads.default_pool()
    assert second is not first and not second.closed


def test_thread_count_from_the_environment(monkeypatch):
    monkeypatch.setenv("GRAPHC_NUM_THREADS", "3")
    with threads.ThreadPool() as p:
        assert p.nthreads == 3 and len(p._threads) == 2
    monkeypatch.delenv("GRAPHC_NUM_THREADS")
    assert threads.default_nthreads() == len(os.sched_getaffinity(0))


@pytest.mark.parametrize("text", ["0", "-2", "four", ""])
def test_a_bad_thread_count_in_the_environment_is_refused(monkeypatch, text):
    monkeypatch.setenv("GRAPHC_NUM_THREADS", text)
    with pytest.raises(ResourceError, match="GRAPHC_NUM_THREADS"):
        threads.ThreadPool()


@pytest.mark.parametrize("nthreads", [0, -1, 2.0, True])
def test_a_bad_thread_count_is_refused(nthreads):
    with pytest.raises(ResourceError, match="positive number of threads"):
        threads.ThreadPool(nthreads)
