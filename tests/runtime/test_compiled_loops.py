"""Loop and cond bodies compiled natively (graphc.compiler compiles them with the enclosing
program; runtime/loops.py runs them): every construct on every device (tests.helpers.run:
reference, cpu, and cuda where CUDA code runs, e.g. GRAPHC_TEST_CUDA=host) against the
reference with fresh random inputs and run-time lengths 0, 1 and odd ones, gradients, nested
loops; on cpu no body node is interpreted, a loop without host steps runs in one native call,
and a body compiles once for any number of runs and lengths."""
import numpy as np
import pytest

import graphc as gc
import graphc.compiler
from graphc.runtime import native
from tests.helpers import check_grad, run

rng = np.random.default_rng(1414)
LENGTHS = (0, 1, 5)


def fresh(*shape):
    return rng.normal(size=shape)


@pytest.fixture
def no_interpretation(monkeypatch):
    """Interpreting a body node by node fails the test (devices other than reference)."""
    def refuse(body, arrays):
        raise AssertionError(f"body {body.name} interpreted")
    monkeypatch.setattr(native, "interpret", refuse)


def test_scan_forward_and_backwards_every_device(graph):
    x = gc.placeholder(gc.float64, (None, 3, 4), name="x")
    h0 = gc.placeholder(gc.float64, (3, 2), name="h0")
    W = gc.Variable(fresh(4, 2), name="W")
    U = gc.placeholder(gc.float64, (2, 2), name="U")
    for backwards in (False, True):
        hs, _ = gc.scan(lambda xt, h, u: gc.tanh(xt @ W + h @ u), sequences=x,
                        outputs_info=[h0], non_sequences=[U], go_backwards=backwards)
        for n in LENGTHS:
            run([hs, gc.sum(hs)], {x: fresh(n, 3, 4), h0: fresh(3, 2), U: fresh(2, 2)})


def test_several_outputs_map_fn_foldl_every_device(graph):
    x = gc.placeholder(gc.float32, (None, 4), name="x")
    a0 = gc.placeholder(gc.float32, (4,), name="a0")
    outs, _ = gc.scan(lambda xt, acc: [acc + xt, gc.sum(xt * xt), xt * 2.0], sequences=x,
                      outputs_info=[a0, None, None])
    squares = gc.map_fn(lambda r: r * r + 1.0, x)
    total = gc.foldl(lambda acc, r: acc * 0.5 + r, x, initializer=a0)
    for n in LENGTHS:
        run(outs + [squares, total], {x: fresh(n, 4).astype(np.float32),
                                      a0: fresh(4).astype(np.float32)})


def test_while_loop_and_tensor_n_steps_every_device(graph):
    limit = gc.placeholder(gc.float64, (), name="limit")
    v0 = gc.placeholder(gc.float64, (3,), name="v0")
    i, v = gc.while_loop(lambda i, v: gc.sum(v) < limit, lambda i, v: (i + 1, v * 1.5 + 0.25),
                         (gc.constant(0), v0))
    n = gc.placeholder(gc.int32, (), name="n")
    ys, _ = gc.scan(lambda h: h * 0.9 + 1.0, outputs_info=[v0], n_steps=n)
    for steps in (0, 1, 7, 3):
        start = np.abs(fresh(3)) + 0.1
        got = run([i, v, ys, gc.sum(ys, axis=0)], {limit: float(steps * 2 + 0.5), v0: start,
                                                    n: steps})
        assert got[2].shape == (steps, 3)


def test_cond_runs_the_taken_branch_every_device(graph):
    table = gc.placeholder(gc.float64, (None,), name="table")
    k = gc.placeholder(gc.int32, (), name="k")
    y = gc.cond(k < 3, lambda: gc.gather(table, k) * 2.0, lambda: gc.sum(table))
    for kv in (0, 2, 9):  # k = 9: the gather branch would be out of range
        run(y, {table: fresh(3), k: kv})


def test_nested_loops_and_cond_in_scan_every_device(graph):
    x = gc.placeholder(gc.float64, (None, 3), name="x")
    V = gc.Variable(fresh(3), name="V")

    def row(r, acc):
        inner, _ = gc.scan(lambda e, v, s: s * 0.5 + e * v, sequences=[r, V],
                           outputs_info=gc.constant(0.0, dtype=gc.float64))
        return gc.cond(gc.sum(r) > 0, lambda: acc + inner[-1], lambda: acc - 1.0)
    out, _ = gc.scan(row, sequences=x, outputs_info=gc.constant(0.0, dtype=gc.float64))
    for n in LENGTHS:
        run(out, {x: fresh(n, 3)})


@pytest.mark.parametrize("backwards", [False, True])
def test_gradients_through_compiled_scan(backwards):
    def build(x, h0, U):
        hs, _ = gc.scan(lambda xt, h: gc.tanh(xt + h @ U), sequences=x, outputs_info=[h0],
                        go_backwards=backwards)
        return hs
    check_grad(build, fresh(4, 2, 3), fresh(2, 3), fresh(3, 3) * 0.5)


def test_gradients_through_while_loop_and_nested_scan():
    def build(v, w):
        _, out = gc.while_loop(lambda i, u: i < 3, lambda i, u: (i + 1, gc.sin(u) * w),
                               (gc.constant(0), v))
        rows, _ = gc.scan(lambda r: gc.foldl(lambda a, e: a * e + 1.0, r,
                                             initializer=gc.constant(0.5, dtype=gc.float64)),
                          sequences=gc.reshape(out, (2, 2)))
        return rows
    check_grad(build, fresh(4), fresh(4))


def test_cpu_runs_bodies_natively_in_one_call(graph, no_interpretation):
    x = gc.placeholder(gc.float32, (None, 8, 16), name="x")
    h0 = gc.placeholder(gc.float32, (8, 16), name="h0")
    W = gc.Variable(fresh(16, 16).astype(np.float32) * 0.2, name="W")
    hs, _ = gc.scan(lambda xt, h: gc.tanh(xt @ W + h @ W), sequences=x, outputs_info=[h0])
    loss = gc.sum(hs ** 2)
    (gW,) = gc.grad(loss, [W])
    f = gc.function([x, h0], [hs, gW], session=gc.Session(device="cpu"))
    f(fresh(5, 8, 16).astype(np.float32), fresh(8, 16).astype(np.float32))
    stats = f.stats()
    assert stats["host_steps"] == []
    loops = {s["node"]: s for s in stats["loops"]}
    assert len(loops) == 2 and all(s["native"] for s in loops.values())
    forward = next(s for s in loops.values() if "scan" in s["body_kernels"])
    assert forward["last_run"] == "native driver"


@pytest.mark.parametrize("bounded", [False, True])
def test_cpu_while_loop_runs_in_one_native_call(graph, no_interpretation, monkeypatch, bounded):
    """The condition runs inside the body's driver: no Python per iteration (neither the
    stepping path, loops.Stepper.run, nor a body run per step from the loop's reference) once
    a shape of the feeds has run (the first run of new shapes goes through the references,
    which tell the loop's length), for counts only the run tells, also past the lengths the
    plan assumed (a while loop without maximum_iterations runs in calls of growing length),
    and the values kept per iteration give the gradient."""
    from graphc.runtime import loops
    steps = []
    stepping, body_run = loops.Stepper.run, native.NativeExecutable._run_body
    monkeypatch.setattr(loops.Stepper, "run", lambda self: steps.append(1) or stepping(self))
    monkeypatch.setattr(native.NativeExecutable, "_run_body",
                        lambda self, *a: steps.append(1) or body_run(self, *a))
    v0 = gc.placeholder(gc.float64, (None,), name="v0")
    limit = gc.placeholder(gc.float64, (), name="limit")
    cap = gc.placeholder(gc.int32, (), name="cap")
    i, v = gc.while_loop(lambda i, v: gc.sum(gc.abs(v)) < limit,
                         lambda i, v: (i + 1, v * 1.5 - gc.tanh(v)),
                         [gc.constant(0), v0], maximum_iterations=cap if bounded else None)
    gv = gc.grad(gc.sum(v * v), v0)
    f = gc.function([v0, limit, cap], [i, v, gv], session=gc.Session(device="cpu"))
    reference = gc.function([v0, limit, cap], [i, v, gv], session=gc.Session(device="reference"))

    def numpy_loop(v, limit, cap):
        n = 0
        while (not bounded or n < cap) and np.abs(v).sum() < limit:
            v, n = v * 1.5 - np.tanh(v), n + 1
        return n, v
    counts = set()
    for size, limit_value, cap_value in ((3, 1e3, 40), (1, 0.0, 5), (7, 1e30, 500), (0, -1.0, 3),
                                          (5, 1e100, 2000), (2, 50.0, 1)):
        start = fresh(size) + 2.0
        f(start[::-1].copy(), limit_value * 0.5, cap_value)  # the shapes' first run
        del steps[:]
        got, want = f(start, limit_value, cap_value), reference(start, limit_value, cap_value)
        assert steps == []
        n, value = numpy_loop(start, limit_value, cap_value)
        assert got[0] == want[0] == n
        np.testing.assert_allclose(got[1], value, rtol=1e-12)
        np.testing.assert_allclose(got[2], want[2], rtol=1e-10)
        counts.add(n)
    assert max(counts) > 100 and 0 in counts
    loops_run = {s["node"]: s["last_run"] for s in f.stats()["loops"]}
    assert set(loops_run.values()) == {"native driver"}, loops_run


def test_a_body_that_runs_host_steps_is_listed_with_its_reason(graph):
    x = gc.placeholder(gc.float64, (None, 3), name="x")
    ys = gc.map_fn(lambda r: gc.map_fn(lambda e: e * 2.0, r), x)  # a loop inside the body
    f = gc.function([x], ys, session=gc.Session(device="cpu"))
    np.testing.assert_allclose(f(np.ones((2, 3))), np.full((2, 3), 2.0))
    assert f.stats()["host_steps"] == []  # the inner loop's body compiled too


def test_a_body_compiles_once_for_many_runs_and_lengths(graph, monkeypatch):
    compiled = []
    real = graphc.compiler.compile

    def counting(outputs, target, *args, **kwargs):
        if target.name == "cpu":  # (the test suite builds every graph for cuda too)
            compiled.append(outputs[0].graph)
        return real(outputs, target, *args, **kwargs)
    monkeypatch.setattr(graphc.compiler, "compile", counting)
    x = gc.placeholder(gc.float32, (None, 3), name="x")
    ys, _ = gc.scan(lambda xt, acc: acc + xt * 2.0, sequences=x,
                    outputs_info=gc.constant(np.zeros(3, np.float32)))
    f = gc.function([x], ys, session=gc.Session(device="cpu"))
    assert len(compiled) == 1  # the body, compiled by the function's compile (not patched)
    exe = f._exe
    (body,) = exe.bodies  # (the passes may have rewritten the body the user built)
    body_exe = exe.bodies[body]
    for n in (4, 0, 1, 9, 4, 7, 1):
        xv = fresh(n, 3).astype(np.float32)
        np.testing.assert_allclose(f(xv), np.cumsum(2 * xv, axis=0).reshape(n, 3), rtol=1e-5)
    assert len(compiled) == 1 and exe.bodies[body] is body_exe
    assert len(body_exe._plans) == 1  # one plan: the body's argument shapes never change


def test_loop_bodies_render_for_cuda(graph):
    from graphc.runtime.cuda import CudaExecutable
    from graphc.runtime.executable import Options
    x = gc.placeholder(gc.float32, (None, 4), name="x")
    ys, _ = gc.scan(lambda xt, h: gc.tanh(xt + h), sequences=x,
                    outputs_info=gc.constant(np.zeros(4, np.float32)))
    exe = CudaExecutable([ys], [x], Options())
    (body_exe,) = exe.bodies.values()
    assert "tanhf" in body_exe.source("cuda") or "tanh" in body_exe.source("cuda")
    assert exe.stats()["host_steps"] == []


def test_kernels_dump_shows_body_kernels_under_their_loop(graph):
    x = gc.placeholder(gc.float32, (None, 4), name="x")
    ys, _ = gc.scan(lambda xt, h: gc.tanh(xt + h * 0.5), sequences=x,
                    outputs_info=gc.constant(np.zeros(4, np.float32)))
    f = gc.function([x], ys, session=gc.Session(device="cpu"))
    lines = f.dump(stage="kernels").splitlines()
    at = next(i for i, s in enumerate(lines) if s.startswith("# body 'scan' of loop"))
    assert lines[at + 1].startswith("  kernel k0") and "tanh" in lines[at + 1]


SHAPE_LENGTHS = (0, 1, 7, 100)


def test_a_stacked_output_read_only_for_its_shape_is_planned_from_the_loop_on(graph):
    # resize_rows (a host step) reads ys only for its shape, so ys has a buffer that no
    # kernel fills; the loop still writes every step into it, and the memory plan must not
    # let a buffer the loop reads (the computed sequence, dead after the loop) share it
    x = gc.placeholder(gc.float32, (None, 3), name="x")
    z = gc.placeholder(gc.float32, (None, 3), name="z")
    seq = x * 2.0 + 1.0
    (acc, ys), _ = gc.scan(lambda r, a: (a + r, gc.concat([r * 3.0, a], axis=0)), sequences=seq,
                           outputs_info=[gc.constant(np.zeros(3, np.float32)), None])
    rows = graphc.ops.control_flow.resize_rows(z * 1.0, ys)
    for n in SHAPE_LENGTHS:
        got = run([rows, acc], {x: fresh(n, 3).astype(np.float32),
                                z: fresh(4, 3).astype(np.float32)})
        assert got[0].shape == (n, 3)


@pytest.mark.parametrize("length", ["sequence", "n_steps"])
def test_stacked_outputs_used_only_through_their_size(graph, length):
    x = gc.placeholder(gc.float32, (None, 3), name="x")
    n = gc.placeholder(gc.int32, (), name="n")
    zero = gc.constant(np.zeros(3, np.float32))
    if length == "sequence":
        (acc, ys), _ = gc.scan(lambda r, a: (a + r, r * 2.0 + a), sequences=x,
                               outputs_info=[zero, None])
    else:
        (acc, ys), _ = gc.scan(lambda a: (a * 0.5 + 1.0, a * 2.0), outputs_info=[zero, None],
                               n_steps=n)
    steps = graphc.ops.reductions.reduced_size(ys, (0,))
    fetches = [gc.sum(acc) / gc.maximum(steps, 1.0), gc.sum(gc.ones_like(ys)),
               gc.reshape_like(x * 5.0, ys) if length == "sequence" else steps, x * 3.0 + 1.0]
    for size in SHAPE_LENGTHS:
        run(fetches, {x: fresh(size, 3).astype(np.float32), n: np.int32(size)})


@pytest.mark.parametrize("maximum_iterations", [None, 4])
def test_while_loop_whose_condition_is_a_captured_boolean(graph, maximum_iterations):
    go = gc.placeholder(gc.bool_, (), name="go")
    v0 = gc.placeholder(gc.float64, (None,), name="v0")
    i, v = gc.while_loop(lambda *_: go, lambda i, v: (i + 1, v * 0.5 + 1.0),
                         (gc.constant(0), v0), maximum_iterations=maximum_iterations)
    computed = gc.while_loop(lambda *_: gc.sum(v0) > 1e9, lambda i, v: (i + 1, v * 2.0),
                             (gc.constant(0), v0), maximum_iterations=maximum_iterations)
    fetches = [i, v, *gc.grad(gc.sum(v * v), [v0]), *computed]
    for value in ((False, True) if maximum_iterations else (False,)):
        for size in (0, 1, 5):
            run(fetches, {go: value, v0: fresh(size)})


def test_cpu_packs_a_loops_invariant_weights_once_per_run(graph):
    # the products h @ U (forward) and dz @ U^T (backward) read the loop's invariant U: their
    # Gemms pack it once per run of the loop, not at every step, and the values are the
    # reference's; new values of U in the same array (the same address) are packed again
    x = gc.placeholder(gc.float32, (None, 5, 6), name="x")
    h0 = gc.placeholder(gc.float32, (5, 37), name="h0")
    U = gc.placeholder(gc.float32, (37, 37), name="U")
    W = gc.Variable(fresh(6, 37).astype(np.float32) * 0.3, name="W")
    hs, _ = gc.scan(lambda xt, h: gc.tanh(xt @ W + h @ U), sequences=x, outputs_info=[h0])
    gU, gW = gc.grad(gc.sum(hs ** 2), [U, W])
    f = gc.function([x, h0, U], [hs, gU, gW], session=gc.Session(device="cpu"))
    ref = gc.function([x, h0, U], [hs, gU, gW], session=gc.Session(device="reference"))
    u = np.empty((37, 37), np.float32)
    for n in (7, 1, 0, 4):
        xs, h = fresh(n, 5, 6).astype(np.float32), fresh(5, 37).astype(np.float32)
        xs[0:1, 0, 0] = -0.0
        u[...] = fresh(37, 37) * 0.3
        for got, want in zip(f(xs, h, u), ref(xs, h, u)):
            np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-4)
        loops = f.stats()["loops"]
        assert [s["packed_b"] for s in loops] == [{"scan": 1}, {"scan_grad": 2}]
        # each Gemm of U packed once whatever the length (dz @ W^T: too narrow to), none
        # where the loop runs no step
        assert [s["packs_of_b"] for s in loops] == ([1, 1] if n else [0, 0])
