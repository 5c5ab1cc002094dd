"""Random draws inside while_loop, map_fn, foldl, cond and scans nested in other bodies: each
step draws new numbers, every device draws what the reference draws, a seed repeats them,
and gradients through the loops see the forward's numbers. The expected numbers are made here
from numpy's generators, as graphc/ops/body_draws.py documents them."""
import numpy as np
import pytest

import graphc as gc
from tests.helpers import numeric_grad, run

rng = np.random.default_rng(61)
DEVICES = ("reference", "cpu")


def keys(seed, runs):
    """The keys of a body's draw seeded `seed` in a session's first `runs` runs."""
    g = np.random.default_rng(seed)
    return [int(g.uniform(0.0, 2.0 ** 53)) for _ in range(runs)]


def stream(key, *steps):
    """The generator of a draw with key `key` at the loops' step indices `steps`."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([key, *steps])))


def test_while_loop_draws_new_numbers_each_step_and_each_run(graph):
    n = gc.placeholder(gc.int32, (), name="n")
    v0 = gc.placeholder(gc.float64, (3,), name="v0")
    _, v = gc.while_loop(lambda i, v: i < n,
                         lambda i, v: (i + 1, v * 0.5 + gc.random.normal(
                             (3,), 1.0, 2.0, dtype=gc.float64, seed=5)),
                         [gc.constant(0), v0])

    def want(key, steps, v):
        for t in range(steps):
            v = v * 0.5 + stream(key, t).normal(1.0, 2.0, size=3)
        return v
    for device in DEVICES:
        sess = gc.Session(device=device)
        for key, steps in zip(keys(5, 4), (4, 0, 7, 1)):
            vv = rng.normal(size=3)
            np.testing.assert_allclose(sess.run(v, {n: steps, v0: vv}), want(key, steps, vv),
                                       rtol=1e-12)


def test_a_while_loop_condition_that_draws_stops_at_random(graph):
    m = gc.placeholder(gc.int32, (), name="m")
    i, v = gc.while_loop(lambda i, v: gc.random.uniform((), dtype=gc.float64, seed=21) < 0.8,
                         lambda i, v: (i + 1, v + gc.random.uniform((), dtype=gc.float64,
                                                                    seed=22)),
                         [gc.constant(0), gc.constant(0.0, gc.float64)], maximum_iterations=m)

    def want(kc, kb, limit):
        t, v = 0, 0.0
        while t < limit and stream(kc, t).uniform() < 0.8:
            v += stream(kb, t).uniform()
            t += 1
        return t, v
    counts = set()
    for device in DEVICES:
        sess = gc.Session(device=device)
        for kc, kb in zip(keys(21, 6), keys(22, 6)):
            t, want_v = want(kc, kb, 40)
            got = sess.run([i, v], {m: 40})
            assert got[0] == t
            np.testing.assert_allclose(got[1], want_v, rtol=1e-12)
            counts.add(t)
    assert len(counts) > 1  # the runs stopped after different numbers of steps


def test_map_fn_dropout_masks_differ_between_rows_and_match_numpys(graph):
    x = gc.placeholder(gc.float32, (None, None), name="x")
    ys = gc.map_fn(lambda r: gc.nn.dropout(r, 0.5, seed=7), x)
    xv = rng.normal(size=(6, 41)).astype(np.float32)
    (key,) = keys(7, 1)
    masks = np.stack([stream(key, t).uniform(0.0, 1.0, size=41).astype(np.float32) >= 0.5
                      for t in range(6)])
    assert not (masks == masks[0]).all(axis=1)[1:].any()  # each row its own mask
    got = run(ys, {x: xv})
    np.testing.assert_allclose(got, xv * masks / np.float32(0.5), rtol=1e-6)
    assert run(ys, {x: np.zeros((0, 41), np.float32)}).shape == (0, 41)


def test_foldl_and_a_cond_in_map_fn_draw_per_step(graph):
    x = gc.placeholder(gc.float64, (None, 3), name="x")
    acc = gc.foldl(lambda a, r: a + r * gc.random.uniform((3,), dtype=gc.float64, seed=9), x,
                   gc.constant(np.zeros(3)))
    ys = gc.map_fn(lambda r: gc.cond(gc.sum(r) > 0,
                                     lambda: r + gc.random.normal((3,), dtype=gc.float64, seed=2),
                                     lambda: r - gc.random.uniform((3,), dtype=gc.float64,
                                                                   seed=3)), x)
    xv = rng.normal(size=(9, 3))
    (k9,), (k2,), (k3,) = keys(9, 1), keys(2, 1), keys(3, 1)
    want_acc = sum(xv[t] * stream(k9, t).uniform(size=3) for t in range(9))
    want_ys = np.stack([r + stream(k2, t).normal(size=3) if r.sum() > 0 else
                        r - stream(k3, t).uniform(size=3) for t, r in enumerate(xv)])
    got_acc, got_ys = run([acc, ys], {x: xv})
    np.testing.assert_allclose(got_acc, want_acc, rtol=1e-12)
    np.testing.assert_allclose(got_ys, want_ys, rtol=1e-12)


def test_cond_in_the_outermost_graph_draws_once_per_run(graph):
    p = gc.placeholder(gc.bool_, (), name="p")
    c = gc.cond(p, lambda: gc.random.uniform((2,), dtype=gc.float64, seed=1) * 3.0,
                lambda: gc.constant(np.full(2, -1.0)))
    for device in DEVICES:
        sess = gc.Session(device=device)
        first, _, third = keys(1, 3)  # the key is drawn each run, the branch taken or not
        np.testing.assert_allclose(sess.run(c, {p: True}), stream(first).uniform(size=2) * 3.0)
        np.testing.assert_allclose(sess.run(c, {p: False}), [-1.0, -1.0])
        np.testing.assert_allclose(sess.run(c, {p: True}), stream(third).uniform(size=2) * 3.0)


def test_a_scan_nested_in_a_while_loop_draws_per_inner_and_outer_step(graph):
    n = gc.placeholder(gc.int64, (), name="n")

    def outer(i, v):
        hs, updates = gc.scan(lambda h: h + gc.random.normal((2,), dtype=gc.float64, seed=6),
                              outputs_info=v, n_steps=3)
        assert updates == {}  # nested: new numbers with every run of the loop around it
        return i + 1, hs[-1] * 0.5
    _, v = gc.while_loop(lambda i, v: i < n, outer, [gc.constant(0, gc.int64),
                                                     gc.constant(np.ones(2))])
    (key,) = keys(6, 1)
    want = np.ones(2)
    for i in range(4):
        for t in range(3):
            want = want + stream(key, i, t).normal(size=2)
        want = want * 0.5
    np.testing.assert_allclose(run(v, {n: 4}), want, rtol=1e-12)


def test_a_scan_of_a_run_time_step_count_draws_in_its_body(graph):
    n = gc.placeholder(gc.int32, (), name="n")
    hs, updates = gc.scan(lambda h: h * 0.9 + gc.random.uniform((2,), dtype=gc.float64, seed=4),
                          outputs_info=[gc.constant(np.zeros(2))], n_steps=n)
    assert updates == {}  # nothing to draw before the loop: its steps draw, new each run
    (key,) = keys(4, 1)
    h, want = np.zeros(2), []
    for t in range(5):
        h = h * 0.9 + stream(key, t).uniform(size=2)
        want.append(h)
    np.testing.assert_allclose(run(hs, {n: 5}), np.stack(want), rtol=1e-12)


def test_a_cond_in_an_outermost_scan_takes_a_key_per_step_from_its_counter(graph):
    x = gc.placeholder(gc.float64, (None, 2), name="x")
    hs, updates = gc.scan(lambda r: gc.cond(gc.sum(r) > 0,
                                            lambda: r + gc.random.normal((2,), dtype=gc.float64,
                                                                         seed=12),
                                            lambda: r), sequences=x)
    f = gc.function([x], hs, updates=updates, device="cpu")
    xv = rng.normal(size=(7, 2))
    for counter in range(2):
        step_keys = np.random.Generator(np.random.default_rng(12).bit_generator.jumped(
            counter + 1)).uniform(0.0, 2.0 ** 53, size=7)
        want = np.stack([r + stream(int(k)).normal(size=2) if r.sum() > 0 else r
                         for r, k in zip(xv, step_keys)])
        np.testing.assert_allclose(f(xv), want, rtol=1e-12)
    run(hs, {x: xv})  # every device draws what the reference draws


def test_a_session_seed_repeats_unseeded_draws(graph):
    x = gc.placeholder(gc.float64, (None, 3), name="x")
    ys = gc.map_fn(lambda r: r * gc.random.normal((3,), dtype=gc.float64), x)
    xv = rng.normal(size=(4, 3))
    a = gc.Session(seed=8).run(ys, {x: xv})
    b = gc.Session(seed=8, device="reference").run(ys, {x: xv})
    np.testing.assert_allclose(a, b, rtol=1e-12)
    assert not np.allclose(a, gc.Session(seed=9).run(ys, {x: xv}))


def test_draws_in_bodies_graphc_does_not_index_are_refused(graph):
    from graphc.ir.subgraph import BodyBuilder
    with pytest.raises(gc.GraphcError, match="random draws are not supported in the body"):
        with BodyBuilder("imported"):
            gc.random.normal((2,))


# ---- gradients through the loops see the forward's draws ----------------------------------------
def check_grad_with_draws(build, *arrays):
    """gc.grad of the weighted sum of build(*placeholders) on every device, against central
    differences, each evaluated in a fresh session: a draw seeded in build gives every one the
    same numbers (the first run's), so the differences see the masks held fixed."""
    g = gc.Graph()
    with g.as_default():
        phs = [gc.placeholder(gc.float64, a.shape, name=f"in{i}") for i, a in enumerate(arrays)]
        out = build(*phs)
        weights = np.random.default_rng(3).uniform(0.5, 1.5, size=tuple(out.shape))
        y = gc.sum(out * weights)
        analytic = run(gc.grad(y, phs), dict(zip(phs, arrays)), graph=g)

    def value(*xs):
        return float(gc.Session(graph=g, device="reference").run(y, dict(zip(phs, xs))))
    for a, num in zip(analytic, numeric_grad(value, list(arrays))):
        np.testing.assert_allclose(a, num, rtol=1e-6, atol=1e-8)
    return analytic


def dropped_per_step(gx):
    """How many steps (axis 0) have an entry of zero gradient, and whether one has all."""
    zero = (gx == 0).reshape(len(gx), -1)
    return zero.any(axis=1).sum(), zero.all(axis=1).any()


@pytest.mark.parametrize("loop", ["while_loop", "map_fn", "foldl", "scan in map_fn"])
def test_gradient_of_dropout_in_a_loop_uses_the_forwards_masks(loop):
    def step(x_t, h, U):
        return gc.tanh(gc.nn.dropout(x_t, 0.4, seed=8) + h @ U)

    def build(x, h0, U):
        if loop == "while_loop":
            _, h = gc.while_loop(lambda i, h: i < 6, lambda i, h: (i + 1, step(gc.gather(x, i), h, U)),
                                 [gc.constant(0), h0])
            return h
        if loop == "map_fn":
            return gc.map_fn(lambda x_t: step(x_t, h0, U), x)
        if loop == "foldl":
            return gc.foldl(lambda h, x_t: step(x_t, h, U), x, h0)
        return gc.map_fn(lambda x_t: gc.scan(lambda r, h: step(r, h, U), sequences=x_t,
                                             outputs_info=h0)[0], x)
    shape = (3, 2, 2, 3) if loop == "scan in map_fn" else (6, 2, 3)
    x, h0, U = rng.normal(size=shape), rng.normal(size=(2, 3)), rng.normal(size=(3, 3)) * 0.5
    gx, _, _ = check_grad_with_draws(build, x, h0, U)
    steps, whole = dropped_per_step(gx.reshape((-1,) + shape[-2:]))
    assert steps >= 3 and not whole  # entries dropped in most steps, none dropped whole


def test_a_while_loop_that_draws_round_trips_through_a_graph_file(tmp_path):
    g = gc.Graph()
    with g.as_default():
        n = gc.placeholder(gc.int32, (), name="n")
        _, v = gc.while_loop(lambda i, v: i < n,
                             lambda i, v: (i + 1, v + gc.random.uniform((2,), seed=3)),
                             [gc.constant(0), gc.constant(np.zeros(2, np.float32))])
        gc.save(str(tmp_path / "g"), {"v": v})
    want = gc.Session(graph=g).run(v, {n: 5})
    loaded = gc.load(str(tmp_path / "g"))
    for device in DEVICES:
        got = gc.Session(graph=loaded.graph, device=device).run(loaded.fetches["v"],
                                                                {loaded.placeholders["n"]: 5})
        np.testing.assert_array_equal(got, want)
