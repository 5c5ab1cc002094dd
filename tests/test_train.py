"""gc.train: each optimizer's steps, run by the session, against the same steps in numpy."""
import numpy as np
import pytest

import graphc as gc

N, D, K = 7, 5, 3  # batch, inputs, outputs: odd sizes


def least_squares_problem(rng):
    """A float64 linear model with loss mean((x @ W + b - y)**2); returns its pieces."""
    W0, b0 = rng.normal(size=(D, K)), rng.normal(size=(K,))
    W = gc.Variable(W0, name="W")
    b = gc.Variable(b0, name="b")
    x = gc.placeholder(gc.float64, (None, D), name="x")
    y = gc.placeholder(gc.float64, (None, K), name="y")
    loss = gc.mean(gc.square(x @ W + b - y))
    return W, b, x, y, loss, {"W": W0, "b": b0}


def least_squares_grads(params, xb, yb):
    r = xb @ params["W"] + params["b"] - yb
    scale = 2.0 / r.size
    return {"W": scale * xb.T @ r, "b": scale * r.sum(axis=0)}


# ---- the update rules, by hand in numpy: (init(param) -> state, update(p, g, state, lr)) ----
def np_sgd():
    return lambda p: {}, lambda p, g, s, lr: p - lr * g


def np_momentum(mu, nesterov):
    def update(p, g, s, lr):
        s["accum"] = mu * s["accum"] + g
        return p - lr * (g + mu * s["accum"] if nesterov else s["accum"])
    return lambda p: {"accum": np.zeros_like(p)}, update


def np_adam(b1, b2, eps):
    def update(p, g, s, lr):
        s["t"] += 1
        s["m"] = b1 * s["m"] + (1 - b1) * g
        s["v"] = b2 * s["v"] + (1 - b2) * g * g
        lr_t = lr * np.sqrt(1 - b2 ** s["t"]) / (1 - b1 ** s["t"])
        return p - lr_t * s["m"] / (np.sqrt(s["v"]) + eps)
    return lambda p: {"m": np.zeros_like(p), "v": np.zeros_like(p), "t": 0}, update


def np_rmsprop(decay, mu, eps, centered):
    def update(p, g, s, lr):
        s["rms"] = decay * s["rms"] + (1 - decay) * g * g
        s["mg"] = decay * s["mg"] + (1 - decay) * g
        denom = s["rms"] - s["mg"] ** 2 if centered else s["rms"]
        s["mom"] = mu * s["mom"] + lr * g / np.sqrt(denom + eps)
        return p - s["mom"]
    return (lambda p: {"rms": np.ones_like(p), "mom": np.zeros_like(p), "mg": np.zeros_like(p)},
            update)


CASES = {
    "sgd": (lambda lr: gc.train.GradientDescentOptimizer(lr), np_sgd()),
    "momentum": (lambda lr: gc.train.MomentumOptimizer(lr, 0.9), np_momentum(0.9, False)),
    "nesterov": (lambda lr: gc.train.MomentumOptimizer(lr, 0.7, use_nesterov=True),
                 np_momentum(0.7, True)),
    "adam": (lambda lr: gc.train.AdamOptimizer(lr), np_adam(0.9, 0.999, 1e-8)),
    "adam-custom": (lambda lr: gc.train.AdamOptimizer(lr, beta1=0.5, beta2=0.8, epsilon=1e-3),
                    np_adam(0.5, 0.8, 1e-3)),
    "rmsprop": (lambda lr: gc.train.RMSPropOptimizer(lr), np_rmsprop(0.9, 0.0, 1e-10, False)),
    "rmsprop-momentum": (lambda lr: gc.train.RMSPropOptimizer(lr, decay=0.8, momentum=0.6,
                                                              epsilon=1e-6),
                         np_rmsprop(0.8, 0.6, 1e-6, False)),
    "rmsprop-centered": (lambda lr: gc.train.RMSPropOptimizer(lr, momentum=0.5, centered=True),
                         np_rmsprop(0.9, 0.5, 1e-10, True)),
}


@pytest.mark.parametrize("lr_kind", ["float", "placeholder", "variable"])
@pytest.mark.parametrize("case", list(CASES))
def test_steps_match_numpy(case, lr_kind):
    make_optimizer, (np_init, np_update) = CASES[case]
    rng = np.random.default_rng()
    steps = 4
    lrs = [0.05 * 0.7 ** i for i in range(steps)] if lr_kind != "float" else [0.05] * steps
    g = gc.Graph()
    with g.as_default():
        W, b, x, y, loss, params = least_squares_problem(rng)
        lr = {"float": 0.05,
              "placeholder": gc.placeholder(gc.float64, (), name="lr"),
              "variable": gc.Variable(np.float32(lrs[0]), name="lr", trainable=False)}[lr_kind]
        train_op = make_optimizer(lr).minimize(loss)
        sess = gc.Session(graph=g)
    state = {k: np_init(v) for k, v in params.items()}
    for step in range(steps):
        xb, yb = rng.normal(size=(N, D)), rng.normal(size=(N, K))
        feed = {x: xb, y: yb}
        if lr_kind == "placeholder":
            feed[lr] = lrs[step]
        if lr_kind == "variable":
            sess.set_value(lr, lrs[step])
        got_loss, fetched = sess.run([loss, train_op], feed)
        assert fetched is None
        r = xb @ params["W"] + params["b"] - yb
        np.testing.assert_allclose(got_loss, np.mean(r * r), rtol=1e-12)
        # a float32 learning-rate variable is read in float32, then widened
        lr_np = float(np.float32(lrs[step])) if lr_kind == "variable" else lrs[step]
        grads = least_squares_grads(params, xb, yb)
        params = {k: np_update(params[k], grads[k], state[k], lr_np) for k in params}
        np.testing.assert_allclose(sess.get_value(W), params["W"], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(sess.get_value(b), params["b"], rtol=1e-10, atol=1e-12)


def test_one_sgd_step_of_a_two_layer_mlp_equals_numpy():
    """A one-step SGD update of a two-layer MLP computed by the session equals the same step
    written by hand in numpy."""
    rng = np.random.default_rng()
    n, d, h, c, lr = 9, 6, 7, 4, 0.3
    xb = rng.normal(size=(n, d))
    yb = rng.integers(0, c, size=n).astype(np.int32)
    init = {"W1": rng.normal(size=(d, h)), "b1": rng.normal(size=h),
            "W2": rng.normal(size=(h, c)), "b2": rng.normal(size=c)}
    g = gc.Graph()
    with g.as_default():
        v = {k: gc.Variable(a, name=k) for k, a in init.items()}
        x = gc.placeholder(gc.float64, (None, d), name="x")
        y = gc.placeholder(gc.int32, (None,), name="y")
        hidden = gc.relu(x @ v["W1"] + v["b1"])
        logits = hidden @ v["W2"] + v["b2"]
        loss = gc.mean(gc.nn.sparse_softmax_cross_entropy(logits, y))
        train_op = gc.train.GradientDescentOptimizer(lr).minimize(loss)
        sess = gc.Session(graph=g)
        got_loss, _ = sess.run([loss, train_op], {x: xb, y: yb})

    # forward
    pre = xb @ init["W1"] + init["b1"]
    act = np.maximum(pre, 0)
    z = act @ init["W2"] + init["b2"]
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    want_loss = -np.mean(np.log(p[np.arange(n), yb]))
    # backward: d(mean cross-entropy)/dlogits = (softmax - onehot) / n
    dz = p.copy()
    dz[np.arange(n), yb] -= 1
    dz /= n
    grads = {"W2": act.T @ dz, "b2": dz.sum(axis=0)}
    dpre = (dz @ init["W2"].T) * (pre > 0)
    grads.update(W1=xb.T @ dpre, b1=dpre.sum(axis=0))

    np.testing.assert_allclose(got_loss, want_loss, rtol=1e-12)
    for k in init:
        np.testing.assert_allclose(sess.get_value(v[k]), init[k] - lr * grads[k], rtol=1e-10,
                                   atol=1e-12, err_msg=k)


def build_adam_problem(seed):
    rng = np.random.default_rng(seed)
    W, b, x, y, loss, _ = least_squares_problem(rng)
    opt = gc.train.AdamOptimizer(0.1)
    return W, b, x, y, opt, opt.minimize(loss)


def test_slots_are_named_untrainable_variables():
    g = gc.Graph()
    with g.as_default(), gc.name_scope("model"):
        W = gc.Variable(np.zeros((2, 3)), name="W")
        v = gc.Variable(np.zeros(1, np.float32), name="v")
        loss = gc.sum(gc.square(W)) + gc.cast(gc.sum(v), gc.float64)
        opt = gc.train.RMSPropOptimizer(0.1, centered=True)
        opt.minimize(loss)
    names = {t.name: t for t in g.variables}
    assert set(names) == {"model/W", "model/v"} | {
        f"model/{var}/RMSProp/{slot}" for var in "Wv" for slot in ("rms", "momentum", "mg")}
    for name, t in names.items():
        assert t.trainable is (name in ("model/W", "model/v"))
    assert opt.get_slot_names() == ["rms", "momentum", "mg"]
    assert opt.get_slot(W, "mg") is names["model/W/RMSProp/mg"]
    assert opt.get_slot(v, "rms").dtype is gc.float32 and opt.get_slot(v, "rms").shape == (1,)
    sess = gc.Session(graph=g)
    np.testing.assert_array_equal(sess.get_value(opt.get_slot(W, "rms")), np.ones((2, 3)))


def test_slots_are_saved_and_restored(tmp_path):
    rng = np.random.default_rng()
    batches = [(rng.normal(size=(N, D)), rng.normal(size=(N, K))) for _ in range(4)]

    def train(sess, x, y, op, which):
        for xb, yb in (batches[i] for i in which):
            sess.run(op, {x: xb, y: yb})

    # the reference run: four steps in one session
    g1 = gc.Graph()
    with g1.as_default():
        W1, b1, x1, y1, opt1, op1 = build_adam_problem(1)
        sess1 = gc.Session(graph=g1)
        train(sess1, x1, y1, op1, range(4))

    # two steps, save, then a fresh graph and session restore and take the other two
    g2 = gc.Graph()
    with g2.as_default():
        W2, b2, x2, y2, opt2, op2 = build_adam_problem(1)
        sess2 = gc.Session(graph=g2)
        train(sess2, x2, y2, op2, range(2))
        sess2.save(tmp_path / "ckpt")
        step = sess2.get_value(opt2.get_slot(W2, "step"))
        assert step == 2 and step.dtype == np.int64
    g3 = gc.Graph()
    with g3.as_default():
        W3, b3, x3, y3, opt3, op3 = build_adam_problem(2)  # other initial values
        sess3 = gc.Session(graph=g3)
        sess3.restore(tmp_path / "ckpt")
        for slot in ("m", "v", "step"):
            np.testing.assert_array_equal(sess3.get_value(opt3.get_slot(b3, slot)),
                                          sess2.get_value(opt2.get_slot(b2, slot)))
        train(sess3, x3, y3, op3, range(2, 4))
    np.testing.assert_allclose(sess3.get_value(W3), sess1.get_value(W1), rtol=1e-12)
    np.testing.assert_allclose(sess3.get_value(b3), sess1.get_value(b1), rtol=1e-12)


def test_var_list_subset_leaves_other_variables_untouched():
    rng = np.random.default_rng()
    g = gc.Graph()
    with g.as_default():
        W, b, x, y, loss, params = least_squares_problem(rng)
        opt = gc.train.MomentumOptimizer(0.1, 0.9)
        op = opt.minimize(loss, var_list=[b])
        sess = gc.Session(graph=g)
    xb, yb = rng.normal(size=(N, D)), rng.normal(size=(N, K))
    for _ in range(2):
        sess.run(op, {x: xb, y: yb})
    np.testing.assert_array_equal(sess.get_value(W), params["W"])
    assert opt.get_slot(W, "momentum") is None
    assert not np.allclose(sess.get_value(b), params["b"])


def test_unconnected_variables_are_skipped_not_updated_with_zeros():
    rng = np.random.default_rng()
    g = gc.Graph()
    with g.as_default():
        W, b, x, y, loss, params = least_squares_problem(rng)
        unused = gc.Variable(rng.normal(size=(4,)), name="unused")
        counter = gc.Variable(np.int32(0), name="counter")  # trainable, but not float
        opt = gc.train.MomentumOptimizer(0.1, 0.9)
        grads_and_vars = opt.compute_gradients(loss, var_list=[W, unused])
        assert grads_and_vars[1] == (None, unused)
        assert grads_and_vars[0][1] is W and grads_and_vars[0][0].shape == (D, K)
        op = opt.minimize(loss)  # default var_list: W and b only
    assert {t.name for t in g.variables if not t.trainable} == {"W/Momentum/momentum",
                                                                "b/Momentum/momentum"}
    sess = gc.Session(graph=g)
    before = sess.get_value(unused)
    sess.run(op, {x: rng.normal(size=(N, D)), y: rng.normal(size=(N, K))})
    np.testing.assert_array_equal(sess.get_value(unused), before)
    assert sess.get_value(counter) == 0
    assert opt.get_slot(unused, "momentum") is None


def test_gradient_through_non_differentiable_op_is_zero():
    g = gc.Graph()
    with g.as_default():
        W = gc.Variable(np.array([1.0, -2.0, 3.0]), name="W")
        loss = gc.cast(gc.argmax(W), gc.float64) + gc.sum(gc.stop_gradient(W))
        (grad, var), = gc.train.GradientDescentOptimizer(0.5).compute_gradients(loss)
        assert var is W
        np.testing.assert_array_equal(gc.Session(graph=g).run(grad), np.zeros(3))


def test_global_step_and_apply_gradients_of_edited_gradients():
    g = gc.Graph()
    with g.as_default():
        W = gc.Variable(np.array([3.0, -4.0]), name="W")
        step = gc.Variable(np.int64(5), name="global_step", trainable=False)
        loss = gc.sum(gc.square(W))
        opt = gc.train.GradientDescentOptimizer(0.25)
        clipped = [(gc.clip(gv[0], -1.0, 1.0), gv[1]) for gv in opt.compute_gradients(loss)]
        op = opt.apply_gradients(clipped, global_step=step, name="train")
        assert op.name == "train"
        sess = gc.Session(graph=g)
        sess.run(op)
        sess.run(op)
    np.testing.assert_allclose(sess.get_value(W), [3.0 - 0.5, -4.0 + 0.5])
    assert sess.get_value(step) == 7


def test_one_optimizer_reuses_its_slots_across_minimize_calls():
    g = gc.Graph()
    with g.as_default():
        W = gc.Variable(np.ones(3), name="W")
        opt = gc.train.AdamOptimizer()
        opt.minimize(gc.sum(W))
        before = len(g.variables)
        opt.minimize(gc.sum(gc.square(W)))
        assert len(g.variables) == before == 4


def test_float32_variables_update_in_float32():
    g = gc.Graph()
    with g.as_default():
        W = gc.Variable(np.array([[1.5, -0.5]], np.float32), name="W")
        lr = gc.placeholder(gc.float64, (), name="lr")  # cast to the variable's dtype
        op = gc.train.AdamOptimizer(lr).minimize(gc.sum(gc.square(W)))
        sess = gc.Session(graph=g)
        sess.run(op, {lr: 0.1})
    # the update is computed in float32: only the fed learning rate is float64
    assert [n.name for n in g.nodes if n.outputs[0].dtype is gc.float64] == ["lr"]
    got = sess.get_value(W)
    assert got.dtype == np.float32
    # the first Adam step moves each weight by about lr * sign(grad)
    np.testing.assert_allclose(got, [[1.4, -0.4]], rtol=1e-5)


@pytest.mark.parametrize("bad, error, words", [
    ("vector", gc.ShapeError, ["learning_rate", "scalar", "(2,)"]),
    ("int", gc.DTypeError, ["learning_rate", "float", "int32"]),
    ("string", gc.GraphcError, ["learning_rate", "'fast'"]),
])
def test_bad_hyperparameters(bad, error, words):
    g = gc.Graph()
    with g.as_default():
        value = {"vector": gc.placeholder(gc.float32, (2,)),
                 "int": gc.placeholder(gc.int32, ()),
                 "string": "fast"}[bad]
        with pytest.raises(error) as info:
            gc.train.GradientDescentOptimizer(value)
    for word in words:
        assert word in str(info.value)


def test_misuse_of_minimize_and_apply_gradients():
    g = gc.Graph()
    with g.as_default():
        W = gc.Variable(np.ones((2, 2)), name="W")
        other = gc.Variable(np.ones(2), name="other")
        opt = gc.train.GradientDescentOptimizer(0.1)
        with pytest.raises(gc.GradientError, match="no trainable float variable"):
            opt.minimize(gc.sum(gc.constant([1.0, 2.0])))
        with pytest.raises(gc.GradientError, match="no gradients to apply"):
            opt.minimize(gc.sum(W), var_list=[other])
        with pytest.raises(gc.GraphcError, match="gc.Variables"):
            opt.minimize(gc.sum(W), var_list=[W * 2])
        with pytest.raises(gc.ShapeError, match=r"shape \(2,\).*'W', \(2, 2\)"):
            opt.apply_gradients([(gc.constant([1.0, 1.0]), W)])
        with pytest.raises(gc.GraphcError, match="appears twice"):
            opt.apply_gradients([(gc.ones_like(W), W), (gc.ones_like(W), W)])
        with pytest.raises(gc.GraphcError, match="scalar loss tensor"):
            opt.minimize(3.0)
    g2 = gc.Graph()
    with g2.as_default():
        with pytest.raises(gc.GraphMismatchError, match="'W' belongs to another graph"):
            opt.minimize(gc.sum(gc.Variable(np.ones(2))), var_list=[W])


def test_minimize_builds_in_the_loss_graph_not_the_default_one():
    g = gc.Graph()
    with g.as_default():
        W = gc.Variable(np.array([2.0, -1.0]), name="W")
        loss = gc.sum(gc.square(W))
    default = gc.get_default_graph()
    size = len(default)
    opt = gc.train.MomentumOptimizer(0.1, 0.5)
    op = opt.minimize(loss)
    assert len(default) == size
    assert op.graph is g and opt.get_slot(W, "momentum").graph is g
    sess = gc.Session(graph=g)
    sess.run(op)
    sess.run(op)
    # W1 = W0 - 0.1 * 2 W0 = 0.8 W0; accum = 0.5 * 2 W0 + 2 W1 = 2.6 W0; W2 = W1 - 0.26 W0
    np.testing.assert_allclose(sess.get_value(W), 0.54 * np.array([2.0, -1.0]))
