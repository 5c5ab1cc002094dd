"""f.profile: one row per kernel and host step of a compiled CPU function, timed while the
calls still compute what calls compute."""
import numpy as np
import pytest

import graphc as gc
from graphc.compiler import HostStep, NativeStep

rng = np.random.default_rng(11)


def uniform(*shape):
    return rng.uniform(-1, 1, shape).astype(np.float32)


def train_step(graph, batch, features):
    """A dense softmax layer's SGD step: (f, w, x, y, initial weights)."""
    x = gc.placeholder(gc.float32, (None, features), name="x")
    y = gc.placeholder(gc.int32, (None,), name="y")
    start = uniform(features, 10)
    w = gc.Variable(start.copy(), name="w")
    loss = gc.mean(gc.nn.sparse_softmax_cross_entropy(x @ w, y))
    [grad] = gc.grad(loss, [w])
    f = gc.function([x, y], loss, updates={w: w - 0.1 * grad},
                    session=gc.Session(graph, device="cpu"))
    return f, w, uniform(batch, features), rng.integers(0, 10, batch).astype(np.int32), start


def numpy_step(w, x, y):
    z = x @ w
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1
    return w - 0.1 * (x.T @ p) / len(y)


def test_a_function_of_native_calls_alone_is_timed_kernel_by_kernel(graph):
    """No variables, no updates: repeated calls take the shortest way, which profiling leaves."""
    x = gc.placeholder(gc.float32, (None, 301), name="x")
    w = uniform(301, 257)
    f = gc.function([x], gc.nn.softmax(gc.tanh(x) @ gc.constant(w)),
                    session=gc.Session(graph, device="cpu"))
    xb = uniform(65, 301)
    f(xb)
    assert f._exe.last_plan.direct is not None, "the case this test is about"
    prof = f.profile(xb, runs=5)
    kernel_rows = [r for r in prof.rows if r.name != "python"]
    assert kernel_rows and sum(r.seconds for r in kernel_rows) > 0
    assert f._exe.last_plan.direct is not None  # the shortest way is back
    z = np.tanh(xb) @ w
    p = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(f(xb), p / p.sum(axis=1, keepdims=True), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("batch", [1, 7, 130])
def test_rows_name_every_kernel_and_sum_to_the_call(graph, batch, capsys):
    f, w, xb, yb, start = train_step(graph, batch, 33)
    runs = 5
    prof = f.profile(xb, yb, runs=runs)
    kernels = [(k.name, k.nodes) for s in f._exe.steps if isinstance(s, NativeStep)
               for k in s.kernels]
    assert kernels, "the step compiled to native kernels"
    assert [(r.name, r.nodes) for r in prof.rows] == kernels + [("python", ())]
    assert all(r.seconds >= 0 for r in prof.rows[:-1])
    assert sum(r.share for r in prof.rows) == pytest.approx(1.0)
    # loosely: timers around each kernel change the call's time, never its order of magnitude
    assert prof.step_seconds / 10 < prof.total_seconds < prof.step_seconds * 10 + 1e-3
    printed = capsys.readouterr().out
    assert all(name in printed for name, _ in kernels)
    # the profiled calls were calls: 2 * runs + 1 updates (a first call, then timed and
    # untimed calls in turn), as numpy computes them
    expected = start
    for _ in range(2 * runs + 1):
        expected = numpy_step(expected, xb, yb)
    np.testing.assert_allclose(f.session.run(w), expected, rtol=1e-4, atol=1e-5)
    # and the normal path is back: a call after profiling is one more step
    f(xb, yb)
    np.testing.assert_allclose(f.session.run(w), numpy_step(expected, xb, yb), rtol=1e-4,
                               atol=1e-5)


def test_host_steps_get_rows_of_their_own(graph):
    x = gc.placeholder(gc.float32, (None, 5), name="x")
    noise = gc.random.uniform((3, 5), seed=1)  # a random draw runs on the host
    f = gc.function([x], gc.sum(gc.exp(x), axis=0) + noise,
                    session=gc.Session(graph, device="cpu"))
    prof = f.profile(uniform(7, 5), runs=3, show=False)
    hosts = [s for s in f._exe.steps if isinstance(s, HostStep)]
    assert hosts
    names = [r.name for r in prof.rows]
    for step in hosts:
        assert f"host {step.group.root.op}" in names
    assert len(names) == len(hosts) + sum(len(s.kernels) for s in f._exe.steps
                                          if isinstance(s, NativeStep)) + 1
    assert "host" in str(prof)


def test_stats_list_every_host_step_with_its_reason(graph):
    x = gc.placeholder(gc.float32, (None, 5), name="x")
    noise = gc.random.uniform((3, 5), seed=1, name="noise")
    f = gc.function([x], gc.sum(gc.exp(x), axis=0) + noise,
                    session=gc.Session(graph, device="cpu"))
    [host] = f.stats()["host_steps"]
    assert host["nodes"] == ["noise"] and host["ops"] == ["random_uniform"]
    assert host["reason"] == "no kernel lowering for op 'random_uniform'"
    plain = gc.function([x], gc.exp(x), session=gc.Session(graph, device="cpu"))
    assert plain.stats()["host_steps"] == []


def test_bad_indices_still_raise_while_profiling(graph):
    x = gc.placeholder(gc.float32, (4, 3), name="x")
    i = gc.placeholder(gc.int32, (None,), name="i")
    f = gc.function([x, i], gc.gather(x, i) * 2.0, session=gc.Session(graph, device="cpu"))
    xb = uniform(4, 3)
    good = np.array([0, 3, 1], np.int32)
    prof = f.profile(xb, good, runs=2, show=False)
    assert prof.rows
    timer_free = f(xb, good)  # the profile left the plan as it was
    np.testing.assert_allclose(timer_free, xb[good] * 2.0)
    with pytest.raises(gc.IndexError_):
        f.profile(xb, np.array([0, 9], np.int32), runs=2, show=False)


def test_profiling_needs_the_cpu_device_and_positive_runs(graph):
    x = gc.placeholder(gc.float32, (3,), name="x")
    f = gc.function([x], x + 1.0, session=gc.Session(graph, device="reference"))
    with pytest.raises(gc.GraphcError, match="device 'cpu'"):
        f.profile(uniform(3))
    g = gc.function([x], x + 1.0, session=gc.Session(graph, device="cpu"))
    with pytest.raises(gc.GraphcError, match="positive"):
        g.profile(uniform(3), runs=0)


def test_a_loops_body_kernels_are_timed_under_the_loops_row(graph, capsys):
    x = gc.placeholder(gc.float32, (None, 16, 33), name="x")
    U = uniform(33, 33)
    h0 = gc.constant(np.zeros((16, 33), np.float32))
    hs, _ = gc.scan(lambda xt, h: gc.tanh(xt * 2.0 + h @ gc.constant(U)), sequences=x,
                    outputs_info=h0)
    f = gc.function([x], hs, session=gc.Session(graph, device="cpu"))
    xb = uniform(9, 16, 33)
    prof = f.profile(xb, runs=1)  # one run: its rows are that run's times, not medians
    [loop] = [i for i, r in enumerate(prof.rows) if r.name == "host loop"]
    body = [r for r in prof.rows if r.within == loop]
    [bexe] = f._exe.bodies.values()
    kernels = [(k.name, k.nodes) for s in bexe.steps if isinstance(s, NativeStep)
               for k in s.kernels]
    assert len(kernels) >= 2 and [(r.name, r.nodes) for r in body] == kernels
    assert all(r.seconds > 0 for r in body)
    assert sum(r.seconds for r in body) <= prof.rows[loop].seconds
    assert sum(r.share for r in prof.rows if r.within is None) == pytest.approx(1.0)
    assert prof.total_seconds == pytest.approx(sum(r.seconds for r in prof.rows
                                                   if r.within is None))
    printed = capsys.readouterr().out
    assert all(f"\n  {name}" in printed for name, _ in kernels)  # indented under the loop
    h, want = np.zeros((16, 33), np.float32), []
    for t in range(9):
        h = np.tanh(xb[t] * 2.0 + h @ U)
        want.append(h)
    np.testing.assert_allclose(f(xb), np.stack(want), rtol=1e-4, atol=1e-5)
    assert list(f._exe.loop_modes.values()) == ["native driver"]  # the driver is back
    several = f.profile(xb, runs=3, show=False)
    assert [r.within for r in several.rows] == [r.within for r in prof.rows]
