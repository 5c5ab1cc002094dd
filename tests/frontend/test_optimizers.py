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


# ---- ScheduleFreeAdamW, Muon, LossScaleOptimizer against numpy (Keras 3's rules) -------------
def test_schedule_free_adamw_matches_numpy():
    lr, b1, b2, eps, warm, wd = 0.02, 0.8, 0.99, 1e-8, 3, 0.1
    opt = gk.optimizers.ScheduleFreeAdamW(lr, beta_1=b1, beta_2=b2, warmup_steps=warm,
                                          weight_decay=wd)
    got = run_steps(opt, GRADS, W0)
    y = W0.astype(np.float64)
    z, v = y.copy(), 0.0  # z starts as the weight
    for t, g in enumerate(GRADS, 1):
        rate = lr * min(t / warm, 1.0)
        y = y - y * wd * lr  # decoupled decay at the full rate, before the step
        v = v + (g * g - v) * (1 - b2)
        z_new = z - rate * g / (np.sqrt(v / (1 - b2 ** t)) + eps)
        x = (y - (1 - b1) * z) / b1
        x = (1 - 1 / t) * x + z_new / t
        y, z = (1 - b1) * z_new + b1 * x, z_new
    np.testing.assert_allclose(got, y, rtol=2e-5, atol=1e-6)


def newton_schulz(x, steps, a=3.4445, b=-4.7750, c=2.0315):
    tall = x.shape[0] > x.shape[1]
    x = x.T if tall else x
    x = x / (np.linalg.norm(x) + 1e-7)
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if tall else x


@pytest.mark.parametrize("shape,name,nesterov", [((3, 7), "w", True), ((7, 3), "w", False),
                                                 ((7,), "w", True),
                                                 ((3, 7), "embedding/embeddings", True)])
def test_muon_matches_numpy(shape, name, nesterov):
    lr, mom, wd, awd = 0.02, 0.9, 0.05, 0.1
    w0 = rng.normal(size=shape).astype("float32")
    grads = [rng.normal(size=shape).astype("float32") for _ in range(3)]
    opt = gk.optimizers.Muon(lr, momentum=mom, nesterov=nesterov, weight_decay=wd,
                             adam_weight_decay=awd, ns_steps=4, adam_lr_ratio=0.5)
    w = gc.Variable(w0.copy(), name=name)
    g = gc.placeholder(gc.float32, shape)
    f = gc.function([g], [], updates=opt.apply([g], [w]))
    for grad in grads:
        f(grad)
    want, m, v = w0.astype(np.float64), 0.0, 0.0
    adam = len(shape) != 2 or "embedding" in name
    for t, grad in enumerate(grads, 1):
        want = want - want * (awd if adam else wd) * lr
        if adam:
            m = m + (grad - m) * 0.1
            v = v + (grad * grad - v) * 0.001
            alpha = lr * 0.5 * np.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
            want = want - m * alpha / (np.sqrt(v) + 1e-7)
        else:
            m = grad + mom * m
            step = newton_schulz(grad + mom * m if nesterov else m, 4)
            want = want - lr * step * np.sqrt(max(shape)) * 0.2
    np.testing.assert_allclose(f.session.get_value(w), want, rtol=2e-5, atol=1e-6)


def test_loss_scale_optimizer_skips_non_finite_steps_and_adapts_its_scale():
    inner = gk.optimizers.SGD(0.1)
    opt = gk.optimizers.LossScaleOptimizer(inner, initial_scale=8.0, dynamic_growth_steps=2)
    w = gc.Variable(W0.copy(), name="w")
    g = gc.placeholder(gc.float32, W0.shape)
    scaled = opt.scale_loss(gc.constant(1.5))
    f = gc.function([g], scaled, updates=opt.apply([g], [w]))
    assert f(np.zeros_like(W0)) == 1.5 * 8.0
    want, scale = W0.astype(np.float64), 8.0
    bad = GRADS[0].copy()
    bad[1, 2] = np.nan
    feeds = [GRADS[1], np.full_like(W0, np.inf), bad, GRADS[2], GRADS[3]]
    # steps: the probe above (finite, counter 1) then: finite -> scale 16 (grows after 2);
    # inf and NaN halve it and skip; finite, finite -> 16 again
    expected_scales = [16.0, 8.0, 4.0, 4.0, 8.0]
    for grad, next_scale in zip(feeds, expected_scales):
        f(grad * scale)
        if np.all(np.isfinite(grad)):
            want = want - 0.1 * grad
        scale = next_scale
        assert f.session.get_value(opt.dynamic_scale) == scale
        np.testing.assert_allclose(f.session.get_value(w), want, rtol=1e-5, atol=1e-6)
    assert f.session.get_value(inner.iterations) == 4  # the skipped steps do not count
    assert [v.name for v in opt.variables[:2]] == ["loss_scale_optimizer/step_counter",
                                                   "loss_scale_optimizer/dynamic_scale"]
    with pytest.raises(gc.GraphcError, match="dynamic=False"):
        gk.optimizers.LossScaleOptimizer(inner, dynamic=False)
    with pytest.raises(gc.GraphcError, match="clipnorm"):
        gk.optimizers.LossScaleOptimizer(inner, clipnorm=1.0)


@pytest.mark.parametrize("make", [
    lambda: gk.optimizers.LossScaleOptimizer(gk.optimizers.Adam(0.01), dynamic_growth_steps=3),
    lambda: gk.optimizers.Muon(0.01), lambda: gk.optimizers.ScheduleFreeAdamW()])
def test_new_optimizers_train_save_and_resume(make, tmp_path):
    x, y = rng.random((32, 4)).astype("float32"), rng.random((32, 2)).astype("float32")
    model = gk.Sequential([gk.layers.Input((4,)), gk.layers.Dense(3), gk.layers.Dense(2)])
    model.compile(optimizer=make(), loss="mse")
    history = model.fit(x, y, epochs=3, batch_size=8, verbose=0, shuffle=False)
    assert history.history["loss"][-1] < history.history["loss"][0]
    model.save(tmp_path / "m.gck")
    loaded = gk.load_model(tmp_path / "m.gck")
    assert type(loaded.optimizer) is type(model.optimizer)
    again = [m.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False).history["loss"]
             for m in (model, loaded)]
    np.testing.assert_allclose(again[0], again[1], rtol=1e-6)


def test_use_ema_keeps_keras_moving_average_and_overwrites_every_n_steps():
    opt = gk.optimizers.SGD(0.1, use_ema=True, ema_momentum=0.8, ema_overwrite_frequency=3)
    w = gc.Variable(W0.copy(), name="w")
    g = gc.placeholder(gc.float32, W0.shape)
    f = gc.function([g], [], updates=opt.apply([g], [w]))
    want, average = W0.astype(np.float64), None
    for t, grad in enumerate(GRADS):
        f(grad)
        want = want - 0.1 * grad
        average = want if t == 0 else 0.8 * average + 0.2 * want  # the first: the weight
        if (t + 1) % 3 == 0:
            want = average
        np.testing.assert_allclose(f.session.get_value(w), want, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(f.session.get_value(opt.averages[w]), average, rtol=1e-5,
                                   atol=1e-6)
    assert opt.variables[-1] is opt.averages[w]
    with pytest.raises(gc.GraphcError, match="ema_momentum"):
        gk.optimizers.Adam(use_ema=True, ema_momentum=1.5)
