"""Optimizer steps against numpy, clipping, and schedules."""
import numpy as np
import pytest

import graphc as gc
import graphc.frontend as gk

rng = np.random.default_rng(5)


def run_steps(opt, grads_seq, w0):
    """Apply the optimizer to a variable with the given gradients, one run each."""
    w = gc.Variable(w0.copy(), name="w")
    g = gc.placeholder(gc.float32, w0.shape)
    f = gc.function([g], [], updates=opt.apply([g], [w]))
    for grad in grads_seq:
        f(grad)
    return f.session.get_value(w)


W0 = rng.normal(size=(3, 7)).astype("float32")
GRADS = [rng.normal(size=(3, 7)).astype("float32") for _ in range(4)]


def numpy_steps(kind, **h):
    w, lr = W0.astype(np.float64), h.get("learning_rate", 0.01)
    state = {"m": 0.0, "v": 0.0, "acc": h.get("initial_accumulator_value", 0.1), "mom": 0.0}
    for t, g in enumerate(GRADS, 1):
        if kind == "sgd":
            w = w - lr * g
        elif kind == "momentum":
            state["m"] = h["momentum"] * state["m"] + g
            step = g + h["momentum"] * state["m"] if h.get("nesterov") else state["m"]
            w = w - lr * step
        elif kind in ("adam", "adamw"):
            if kind == "adamw":
                w = w - lr * h["weight_decay"] * w
            state["m"] = 0.9 * state["m"] + 0.1 * g
            state["v"] = 0.999 * state["v"] + 0.001 * g * g
            w = w - lr * np.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t) * state["m"] / (
                np.sqrt(state["v"]) + 1e-7)
        elif kind == "rmsprop":
            state["v"] = 0.9 * state["v"] + 0.1 * g * g
            state["mom"] = h.get("momentum", 0.0) * state["mom"] + lr * g / np.sqrt(
                state["v"] + 1e-7)
            w = w - state["mom"]
        elif kind == "adagrad":
            state["acc"] = state["acc"] + g * g
            w = w - lr * g / np.sqrt(state["acc"] + 1e-7)
    return w


@pytest.mark.parametrize("opt,kind,hyper", [
    (gk.optimizers.SGD(0.1), "sgd", {"learning_rate": 0.1}),
    (gk.optimizers.SGD(0.1, momentum=0.9), "momentum", {"learning_rate": 0.1, "momentum": 0.9}),
    (gk.optimizers.SGD(0.1, momentum=0.9, nesterov=True), "momentum",
     {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True}),
    (gk.optimizers.Adam(0.01), "adam", {}),
    (gk.optimizers.AdamW(0.01, weight_decay=0.1), "adamw", {"weight_decay": 0.1}),
    (gk.optimizers.RMSprop(0.01), "rmsprop", {}),
    (gk.optimizers.RMSprop(0.01, momentum=0.5), "rmsprop", {"momentum": 0.5}),
    (gk.optimizers.Adagrad(0.05), "adagrad", {"learning_rate": 0.05}),
])
def test_update_rules_match_numpy(opt, kind, hyper):
    np.testing.assert_allclose(run_steps(opt, GRADS, W0), numpy_steps(kind, **hyper),
                               rtol=1e-5, atol=1e-6)


def test_gradient_clipping():
    big = [np.full((3, 7), 10.0, "float32")]
    w = run_steps(gk.optimizers.SGD(1.0, clipvalue=0.5), big, W0)
    np.testing.assert_allclose(w, W0 - 0.5, rtol=1e-6)
    w = run_steps(gk.optimizers.SGD(1.0, clipnorm=2.0), big, W0)
    np.testing.assert_allclose(w, W0 - 2.0 * big[0] / np.linalg.norm(big[0]), rtol=1e-5)
    w = run_steps(gk.optimizers.SGD(1.0, clipnorm=1e6), GRADS[:1], W0)
    np.testing.assert_allclose(w, W0 - GRADS[0], rtol=1e-6)
    with pytest.raises(gc.GraphcError, match="at most one"):
        gk.optimizers.SGD(clipnorm=1.0, clipvalue=1.0)


def test_global_clipnorm_scales_all_gradients_together():
    a, b = gc.Variable(np.zeros(2, "float32")), gc.Variable(np.zeros(3, "float32"))
    ga, gb = np.array([3.0, 0.0], "float32"), np.array([0.0, 4.0, 0.0], "float32")
    opt = gk.optimizers.SGD(1.0, global_clipnorm=1.0)
    f = gc.function([], [], updates=opt.apply([gc.constant(ga), gc.constant(gb)], [a, b]))
    f()
    np.testing.assert_allclose(f.session.get_value(a), -ga / 5, rtol=1e-6)
    np.testing.assert_allclose(f.session.get_value(b), -gb / 5, rtol=1e-6)


@pytest.mark.parametrize("schedule,expect", [
    (gk.schedules.ExponentialDecay(0.1, 10, 0.5), lambda s: 0.1 * 0.5 ** (s / 10)),
    (gk.schedules.ExponentialDecay(0.1, 10, 0.5, staircase=True),
     lambda s: 0.1 * 0.5 ** np.floor(s / 10)),
    (gk.schedules.CosineDecay(0.1, 20, alpha=0.1),
     lambda s: 0.1 * (0.9 * 0.5 * (1 + np.cos(np.pi * min(s, 20) / 20)) + 0.1)),
    (gk.schedules.PiecewiseConstantDecay([5, 12], [1.0, 0.5, 0.1]),
     lambda s: 1.0 if s <= 5 else 0.5 if s <= 12 else 0.1),
])
def test_schedules_in_numpy_and_in_the_graph(schedule, expect):
    step = gc.placeholder(gc.float32, ())
    f = gc.function([step], schedule.tensor(step))
    for s in (0, 1, 5, 6, 12, 13, 25):
        assert schedule(s) == pytest.approx(expect(s), rel=1e-6)
        assert float(f(np.float32(s))) == pytest.approx(expect(s), rel=1e-5)


def test_a_scheduled_optimizer_follows_its_iterations():
    sched = gk.schedules.PiecewiseConstantDecay([1], [1.0, 0.1])
    opt = gk.optimizers.SGD(sched)
    w = run_steps(opt, [np.ones((3, 7), "float32")] * 3, W0)
    np.testing.assert_allclose(w, W0 - 1.0 - 1.0 - 0.1, rtol=1e-6)
    with pytest.raises(gc.GraphcError, match="follows a schedule"):
        opt.learning_rate = 0.5
