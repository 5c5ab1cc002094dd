"""scan, while_loop, cond, map_fn and foldl against numpy, on every device (tests.helpers.run
checks each device against the reference), with run-time lengths and build-time errors."""
import inspect

import numpy as np
import pytest

import graphc as gc
from tests.helpers import run

rng = np.random.default_rng(14)


def line_of(marker):
    """The line of this file holding `marker` (a comment), as 'test_control_flow.py:N'."""
    lines = inspect.getsource(inspect.getmodule(line_of)).splitlines()
    return f"test_control_flow.py:{next(i for i, s in enumerate(lines, 1) if marker in s and 'line_of' not in s)}"


def rnn_numpy(x, h0, W, U, b):
    h, out = h0, []
    for t in range(len(x)):
        h = np.tanh(x[t] @ W + h @ U + b)
        out.append(h)
    return np.stack(out) if out else np.zeros((0,) + h0.shape)


def test_rnn_scan_with_run_time_lengths(graph):
    W, U, b = rng.normal(size=(5, 3)), rng.normal(size=(3, 3)) * 0.5, rng.normal(size=3)
    Wv = gc.Variable(W, name="W")  # captured by closure
    x = gc.placeholder(gc.float64, (None, 2, 5), name="x")
    h0 = gc.placeholder(gc.float64, (2, 3), name="h0")
    hs, updates = gc.scan(lambda xt, h, U_: gc.tanh(xt @ Wv + h @ U_ + b), sequences=x,
                          outputs_info=[h0], non_sequences=[gc.constant(U)])
    assert updates == {} and hs.shape[1:] == (2, 3)
    hv = rng.normal(size=(2, 3))
    for n in (0, 1, 7):
        xv = rng.normal(size=(n, 2, 5))
        np.testing.assert_allclose(run(hs, {x: xv, h0: hv}), rnn_numpy(xv, hv, W, U, b),
                                   rtol=1e-12)


def test_one_compiled_function_serves_every_length(graph):
    x = gc.placeholder(gc.float32, (None, 3), name="x")
    ys, _ = gc.scan(lambda xt, acc: acc + xt * 2.0, sequences=x,
                    outputs_info=gc.constant(np.zeros(3, np.float32)))
    for device in ("reference", "cpu"):
        f = gc.function([x], ys, session=gc.Session(device=device))
        for n in (4, 0, 1, 9):
            xv = rng.normal(size=(n, 3)).astype(np.float32)
            np.testing.assert_allclose(f(xv), np.cumsum(2 * xv, axis=0).reshape(n, 3),
                                       rtol=1e-5)


def test_polynomial_evaluation(graph):
    coefficients = gc.placeholder(gc.float64, (None,), name="coefficients")
    x = gc.placeholder(gc.float64, (), name="x")
    max_degree = 10000
    components, _ = gc.scan(lambda c, power, free_var: c * (free_var ** power),
                            sequences=[coefficients, gc.constant(np.arange(max_degree,
                                                                           dtype=np.float64))],
                            non_sequences=x)
    poly = gc.sum(components)
    c = rng.normal(size=7)
    got = run(poly, {coefficients: c, x: 1.3})
    np.testing.assert_allclose(got, sum(ci * 1.3 ** i for i, ci in enumerate(c)), rtol=1e-12)


def test_a_to_the_k(graph):
    A = gc.placeholder(gc.float64, (None,), name="A")
    k = gc.placeholder(gc.int32, (), name="k")
    result, _ = gc.scan(lambda prior, A: prior * A, outputs_info=gc.ones_like(A),
                        non_sequences=A, n_steps=k)
    final = result[-1]
    a = rng.uniform(0.5, 1.5, size=5)
    np.testing.assert_allclose(run(final, {A: a, k: 4}), a ** 4, rtol=1e-12)
    np.testing.assert_allclose(run(result, {A: a, k: 3}), np.stack([a, a ** 2, a ** 3]))
    assert run(result, {A: a, k: 0}).shape == (0, 5)


def test_several_outputs_some_not_fed_back_and_go_backwards(graph):
    x = gc.placeholder(gc.float64, (None, 2), name="x")
    s0 = gc.constant(np.zeros(2))

    def step(xt, s):
        return [s + xt, xt * 10.0]
    for backwards in (False, True):
        (sums, tens), _ = gc.scan(step, sequences=x, outputs_info=[s0, None],
                                  go_backwards=backwards)
        xv = rng.normal(size=(5, 2))
        order = xv[::-1] if backwards else xv
        got = run([sums, tens], {x: xv})
        np.testing.assert_allclose(got[0], np.cumsum(order, axis=0), rtol=1e-12)
        np.testing.assert_allclose(got[1], order * 10, rtol=1e-12)


def test_n_steps_with_sequences_and_too_many_steps(graph):
    x = gc.placeholder(gc.float64, (None,), name="x")
    n = gc.placeholder(gc.int64, (), name="n")
    ys, _ = gc.scan(lambda xt: xt * 3.0, sequences=x, n_steps=n)
    xv = rng.normal(size=6)
    np.testing.assert_allclose(run(ys, {x: xv, n: 4}), xv[:4] * 3)
    with pytest.raises(gc.GraphcError, match="n_steps is 9"):
        run(ys, {x: xv, n: 9})
    zs, _ = gc.scan(lambda xt: xt + 1.0, sequences=x, n_steps=2)
    np.testing.assert_allclose(run(zs, {x: xv}), xv[:2] + 1)


def test_sequences_of_different_lengths_use_the_shortest(graph):
    a = gc.constant(np.arange(5.0))
    b = gc.constant(np.arange(3.0) * 10)
    ys, _ = gc.scan(lambda u, v: u + v, sequences=[a, b])
    np.testing.assert_allclose(run(ys), [0, 11, 22])


def test_nested_scan_with_a_captured_variable(graph):
    M = rng.normal(size=(4, 3))
    V = gc.Variable(rng.normal(size=3), name="V")
    x = gc.placeholder(gc.float64, (None, 3), name="x")

    def row(r):  # an inner scan over a row's elements, reading V and the outer x
        inner, _ = gc.scan(lambda e, v, acc: acc + e * v + gc.sum(x[0]), sequences=[r, V],
                           outputs_info=gc.constant(0.0, gc.float64))
        return inner[-1]
    out, _ = gc.scan(row, sequences=x)
    sess = gc.Session(device="reference")
    v = sess.get_value(V)
    want = np.array([(r * v).sum() + 3 * M[0].sum() for r in M])
    np.testing.assert_allclose(run(out, {x: M}), want, rtol=1e-12)


def test_map_fn_and_foldl(graph):
    x = gc.placeholder(gc.float32, (None, 3), name="x")
    sq = gc.map_fn(lambda r: gc.sum(r * r), x)
    pair = gc.map_fn(lambda e: (e[0] + 1.0, e[1] * 2.0), (x, x))
    total = gc.foldl(lambda acc, r: acc * 0.5 + r, x, gc.constant(np.ones(3, np.float32)))
    first = gc.foldl(lambda acc, r: acc + r, x)  # the first element as the initializer
    xv = rng.normal(size=(6, 3)).astype(np.float32)
    got = run([sq, pair[0], pair[1], total, first], {x: xv})
    acc = np.ones(3, np.float32)
    for r in xv:
        acc = acc * 0.5 + r
    np.testing.assert_allclose(got[0], (xv * xv).sum(1), rtol=1e-5)
    np.testing.assert_allclose(got[1], xv + 1, rtol=1e-6)
    np.testing.assert_allclose(got[2], xv * 2, rtol=1e-6)
    np.testing.assert_allclose(got[3], acc, rtol=1e-5)
    np.testing.assert_allclose(got[4], xv.sum(0), rtol=1e-5)


def collatz_steps(n):
    c = 0
    while n > 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        c += 1
    return c


def test_while_loop_collatz_list_and_tuple(graph):
    n = gc.placeholder(gc.int64, (), name="n")
    out = gc.while_loop(lambda n, c: n > 1,
                        lambda n, c: [gc.where(n % 2 == 0, n // 2, 3 * n + 1), c + 1],
                        [n, gc.constant(0, gc.int64)])
    assert isinstance(out, list)
    tup = gc.while_loop(lambda i, s: i < 5, lambda i, s: (i + 1, s + gc.cast(i, gc.float64)),
                        (gc.constant(0), gc.constant(0.0, gc.float64)))
    assert isinstance(tup, tuple)
    single = gc.while_loop(lambda v: v < 1000.0, lambda v: v * 3.0, gc.constant(1.0))
    assert isinstance(single, gc.Tensor)
    for start in (1, 6, 27, 97):
        got = run(list(out) + list(tup) + [single], {n: start})
        assert int(got[0]) == 1 and int(got[1]) == collatz_steps(start)
        assert int(got[2]) == 5 and float(got[3]) == 10.0 and float(got[4]) == 2187.0


def test_while_loop_maximum_iterations(graph):
    limit = gc.placeholder(gc.int32, (), name="limit")
    i, s = gc.while_loop(lambda i, s: i < 100, lambda i, s: (i + 1, s * 2.0),
                         (gc.constant(0), gc.constant(1.0)), maximum_iterations=limit)
    for m in (0, 3, 7):
        got = run([i, s], {limit: m})
        assert int(got[0]) == m and float(got[1]) == 2.0 ** m
    j = gc.while_loop(lambda i: i < 100, lambda i: i + 1, gc.constant(0), maximum_iterations=4)
    assert int(run(j)) == 4


def test_cond_is_lazy(graph):
    p = gc.placeholder(gc.bool_, (), name="p")
    v = gc.placeholder(gc.float32, (None,), name="v")
    k = gc.placeholder(gc.int32, (), name="k")
    y = gc.cond(p, lambda: gc.gather(v, k) * 2.0, lambda: gc.constant(-1.0))
    vv = rng.normal(size=4).astype(np.float32)
    assert float(run(y, {p: True, v: vv, k: 2})) == pytest.approx(2 * vv[2])
    assert float(run(y, {p: False, v: vv, k: 17})) == -1.0  # the gather would be out of range
    with pytest.raises(gc.IndexError_):
        run(y, {p: True, v: vv, k: 17})
    pair = gc.cond(gc.sum(v) > 0.0, lambda: (v + 1.0, gc.sum(v)), lambda: (v - 1.0, gc.max(v)))
    assert isinstance(pair, tuple)
    got = run(list(pair), {v: vv})
    want = (vv + 1, vv.sum()) if vv.sum() > 0 else (vv - 1, vv.max())
    np.testing.assert_allclose(got[0], want[0], rtol=1e-6)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-6)


def test_cond_inside_scan(graph):
    x = gc.placeholder(gc.float64, (None,), name="x")
    ys, _ = gc.scan(lambda xt, s: gc.cond(xt > 0.0, lambda: s + xt, lambda: s * 0.5), sequences=x,
                    outputs_info=gc.constant(1.0, gc.float64))
    xv = rng.normal(size=9)
    s, want = 1.0, []
    for e in xv:
        s = s + e if e > 0 else s * 0.5
        want.append(s)
    np.testing.assert_allclose(run(ys, {x: xv}), want, rtol=1e-12)


def test_tensor_n_steps_stacked_outputs_on_every_device(graph):
    n = gc.placeholder(gc.int32, (), name="n")
    a = gc.placeholder(gc.float64, (2,), name="a")
    ys, _ = gc.scan(lambda h: h * 1.5, outputs_info=[a], n_steps=n)
    total = gc.sum(ys, axis=0)
    av = rng.normal(size=2)
    f_cpu = gc.function([n, a], [ys, total], session=gc.Session(device="cpu"))
    for steps in (3, 0, 5, 5, 1):
        want = np.stack([av * 1.5 ** (t + 1) for t in range(steps)]) if steps else np.zeros((0, 2))
        got = run([ys, total], {n: steps, a: av})
        np.testing.assert_allclose(got[0], want, rtol=1e-12)
        np.testing.assert_allclose(got[1], want.sum(0), rtol=1e-12)
        cpu = f_cpu(steps, av)
        np.testing.assert_allclose(cpu[0], want, rtol=1e-12)


def test_variables_and_global_batch_draws_inside_bodies_are_refused(graph):
    x = gc.constant(np.ones((3, 2)))
    with pytest.raises(gc.GraphcError, match="inside a loop") as err:
        gc.scan(lambda r: r + gc.Variable(np.ones(2)), sequences=x)  # variable-here
    assert line_of("# variable-here") in str(err.value)
    rows = gc.placeholder(gc.int32, (), name="rows")
    with gc.random.global_batch(rows, gc.constant(0), x):
        with pytest.raises(gc.GraphcError, match="global-batch draws") as err:
            gc.map_fn(lambda r: gc.nn.dropout(x, 0.5) + r, x)  # window-here
    assert line_of("# window-here") in str(err.value)


# ---- random draws in scan's fn ----------------------------------------------------------------
def scan_stream(seed, counter):
    """numpy's generator for a scan's draws of a node seeded `seed` whose draw counter is
    `counter` (what graphc.ops.state.scan_stream documents)."""
    return np.random.Generator(np.random.default_rng(seed).bit_generator.jumped(counter + 1))


def test_scan_draws_reproduce_numpys_stream_and_advance_through_updates(graph):
    x = gc.placeholder(gc.float32, (None, 3), name="x")

    def step(x_t, h, scale):
        noise = gc.random.normal((3,), mean=1.0, stddev=2.0, seed=11)
        return h * 0.5 + x_t * noise + scale * gc.random.uniform((2, 3), -1.0, 1.0, seed=12)[1]
    hs, updates = gc.scan(step, sequences=x, outputs_info=[gc.constant(np.zeros(3, "float32"))],
                          non_sequences=gc.constant(np.float32(0.25)))
    (counter, _), = updates.items()
    assert isinstance(counter, gc.Variable) and counter.dtype is gc.int64
    f = gc.function([x], hs, updates=updates, device="cpu")
    still = gc.function([x], hs, device="cpu", session=f.session)

    def want(xv, counter):
        normal = scan_stream(11, counter).normal(1.0, 2.0, size=(len(xv), 3))
        uniform = scan_stream(12, counter).uniform(-1.0, 1.0, size=(len(xv), 2, 3))
        h, out = np.zeros(3), []
        for t in range(len(xv)):
            h = h * 0.5 + xv[t] * normal.astype(np.float32)[t] \
                + 0.25 * uniform.astype(np.float32)[t, 1]
            out.append(h)
        return np.array(out, np.float32).reshape(len(xv), 3)
    for calls, steps in enumerate((7, 1, 0, 12)):  # lengths known at run time
        xv = rng.normal(size=(steps, 3)).astype(np.float32)
        if steps == 12:  # without the updates the counter stays: the same numbers again
            np.testing.assert_allclose(still(xv), want(xv, calls), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(f(xv), want(xv, calls), rtol=1e-5, atol=1e-6)
    assert f.session.get_value(counter) == 4
    assert list(f._exe.loop_modes.values()) == ["native driver"]  # the draws are sequences
    xv = rng.normal(size=(5, 3)).astype(np.float32)
    run(hs, {x: xv})  # every device draws what the reference draws


def test_dropout_in_a_scan_step_is_new_each_step_and_each_advanced_call(graph):
    x = gc.placeholder(gc.float64, (None, None, 4), name="x")  # (time, batch, features)
    rate = 0.3
    hs, updates = gc.scan(lambda x_t, h: gc.nn.dropout(x_t, rate) + h, sequences=x,
                          outputs_info=[gc.zeros_like(x[0])])
    f = gc.function([x], hs, updates=updates, device="cpu")
    xv = np.ones((50, 40, 4))
    first, second = f(xv), f(xv)
    for out in (first, second):
        kept = np.diff(np.concatenate([np.zeros((1, 40, 4)), out]), axis=0)
        assert set(np.unique(np.round(kept, 12))) <= {0.0, round(1 / (1 - rate), 12)}
        share = np.mean(kept == 0)
        assert abs(share - rate) < 0.03, share  # 8000 draws: 5 standard deviations
        assert not np.array_equal(kept[0], kept[1])  # each step its own mask
    assert not np.array_equal(first, second)
    sess = gc.Session(seed=3)  # a session seed makes the draws reproducible
    g = gc.function([x], hs, session=sess)
    again = gc.function([x], hs, session=gc.Session(seed=3))
    np.testing.assert_array_equal(g(xv), again(xv))


# ---- build-time errors name the user's line ---------------------------------------------------
def test_cond_branches_of_different_types(graph):
    p = gc.placeholder(gc.bool_, (), name="p")
    with pytest.raises(gc.DTypeError, match="true_fn") as err:
        gc.cond(p, lambda: gc.constant(1.0), lambda: gc.constant(1))  # cond-dtype
    assert line_of("# cond-dtype") in str(err.value)
    with pytest.raises(gc.ShapeError, match="true_fn") as err:
        gc.cond(p, lambda: gc.constant(np.ones(3)), lambda: gc.constant(np.ones(4)))  # cond-shape
    assert line_of("# cond-shape") in str(err.value)


def test_while_body_changing_a_loop_var(graph):
    with pytest.raises(gc.ShapeError, match="loop var 0") as err:
        gc.while_loop(lambda v: gc.sum(v) < 10.0, lambda v: gc.concat([v, v], 0),  # while-shape
                      [gc.constant(np.ones(2))])
    assert line_of("# while-shape") in str(err.value)
    with pytest.raises(gc.DTypeError, match="loop var 0") as err:
        gc.while_loop(lambda v: v < 10, lambda v: gc.cast(v, gc.float32),  # while-dtype
                      [gc.constant(1)])
    assert line_of("# while-dtype") in str(err.value)


def test_scan_output_count_and_type_errors(graph):
    x = gc.constant(np.ones((4, 2)))
    with pytest.raises(gc.GraphcError, match="returned 2 outputs but outputs_info has 1") as err:
        gc.scan(lambda xt, h: [h + xt, xt], sequences=x,  # scan-count
                outputs_info=[gc.constant(np.zeros(2))])
    assert line_of("# scan-count") in str(err.value)
    with pytest.raises(gc.ShapeError, match="fed-back output 0") as err:
        gc.scan(lambda xt, h: gc.concat([h, xt], 0), sequences=x,  # scan-shape
                outputs_info=[gc.constant(np.zeros(2))])
    assert line_of("# scan-shape") in str(err.value)
    with pytest.raises(gc.DTypeError, match="fed-back output 0") as err:
        gc.scan(lambda xt, h: gc.cast(h, gc.float32) + 1.0, sequences=x,  # scan-dtype
                outputs_info=[gc.constant(np.zeros(2))])
    assert line_of("# scan-dtype") in str(err.value)


def test_text_dump_nests_bodies_and_graph_files_keep_loops(graph, tmp_path):
    x = gc.placeholder(gc.float64, (None, 3), name="x")
    hs, _ = gc.scan(lambda xt, h: gc.tanh(xt + h), sequences=x,
                    outputs_info=gc.constant(np.zeros(3)))
    text = gc.dump(hs)
    lines = text.splitlines()
    at = next(i for i, s in enumerate(lines) if " = loop(" in s)
    assert lines[at + 1].startswith("  body: scan(")
    assert any(s.startswith("    ") and "= tanh(" in s for s in lines[at + 2:])
    f = gc.function([x], hs)
    assert "loop" in f.dump(stage="optimized")
    assert f.stats()["host_steps"] == []  # the body compiled natively
    gc.save(str(tmp_path / "g"), [hs])  # graph files keep loops (tests/runtime/test_loop_graph_files.py)
    loaded = gc.load(str(tmp_path / "g"))
    xv = rng.normal(size=(4, 3))
    np.testing.assert_allclose(run(loaded.tensors[0], {loaded.placeholders["x"]: xv},
                                   graph=loaded.graph), run(hs, {x: xv}), rtol=1e-12)
