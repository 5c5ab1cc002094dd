"""gk.constraints, gk.regularizers, gk.initializers, gk.random and the gk.ops compositions
against numpy references (benchmarks/keras_ops_parity.py checks them against Keras 3)."""
import numpy as np
import pytest

import graphc as gc
import graphc.frontend as gk

rng = np.random.default_rng(0)


def _run(*tensors):
    return gc.Session().run(list(tensors))


# ---- constraints -------------------------------------------------------------------------------
def test_max_norm_constraint_is_applied_after_each_update():
    x = rng.normal(size=(16, 3)).astype("float32") * 10
    y = rng.normal(size=(16, 2)).astype("float32") * 10
    inputs = gk.Input((3,))
    dense = gk.layers.Dense(2, kernel_constraint=gk.constraints.MaxNorm(0.5),
                            bias_constraint="non_neg")
    model = gk.Model(inputs, dense(inputs))
    model.compile(optimizer=gk.optimizers.SGD(1.0), loss="mse")
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    kernel, bias = dense.get_weights()
    assert np.all(np.linalg.norm(kernel, axis=0) <= 0.5 + 1e-5)
    assert np.all(bias >= 0)
    assert dense.get_config()["kernel_constraint"] == {"class_name": "MaxNorm",
                                                      "config": {"max_value": 0.5, "axis": 0}}


@pytest.mark.parametrize("make,ref", [
    (lambda: gk.constraints.MaxNorm(1.0, axis=1),
     lambda w: w * np.clip(n := np.linalg.norm(w, axis=1, keepdims=True), 0, 1.0) / (1e-7 + n)),
    (lambda: gk.constraints.UnitNorm(axis=0),
     lambda w: w / (1e-7 + np.linalg.norm(w, axis=0, keepdims=True))),
    (lambda: gk.constraints.NonNeg(), lambda w: w * (w >= 0)),
    (lambda: gk.constraints.MinMaxNorm(0.5, 0.8, rate=0.5),
     lambda w: w * (0.5 * np.clip(n := np.linalg.norm(w, axis=0, keepdims=True), 0.5, 0.8)
                    + 0.5 * n) / (1e-7 + n)),
])
def test_constraints_match_numpy(make, ref):
    w = np.concatenate([rng.normal(size=(3, 5)), np.zeros((1, 5))]).astype("float32")
    w[0, 0] = -0.0
    out, = _run(make()(gc.constant(w)))
    np.testing.assert_allclose(out, ref(w), rtol=1e-5, atol=1e-6)


def test_constraint_lookup_and_errors():
    assert isinstance(gk.constraints.get("NonNeg"), gk.constraints.NonNeg)
    config = gk.constraints.serialize(gk.constraints.UnitNorm(1))
    assert gk.constraints.deserialize(config).axis == 1
    with pytest.raises(gc.GraphcError, match="unknown constraint"):
        gk.constraints.get("positive")


# ---- regularizers ------------------------------------------------------------------------------
def test_orthogonal_regularizer_matches_numpy():
    w = rng.normal(size=(4, 6)).astype("float32")
    for mode, axis in (("rows", 1), ("columns", 0)):
        n = w / np.linalg.norm(w, axis=axis, keepdims=True)
        prod = n @ n.T if mode == "rows" else n.T @ n
        size = prod.shape[0]
        ref = 0.2 * 0.5 * np.abs(prod * (1 - np.eye(size))).sum() / (size * (size - 1) / 2)
        out, = _run(gk.regularizers.OrthogonalRegularizer(0.2, mode)(gc.constant(w)))
        np.testing.assert_allclose(out, ref, rtol=1e-5)
    with pytest.raises(gc.GraphcError, match="rank-2"):
        gk.regularizers.OrthogonalRegularizer()(gc.constant(np.ones((2, 2, 2), "float32")))
    reg = gk.regularizers.deserialize(gk.regularizers.serialize(
        gk.regularizers.orthogonal_regularizer(0.3, "columns")))
    assert (reg.factor, reg.mode) == (0.3, "columns")


# ---- initializers ------------------------------------------------------------------------------
@pytest.mark.parametrize("init,limit,std", [
    (gk.initializers.LecunUniform(seed=1), np.sqrt(3 / 300), None),
    (gk.initializers.VarianceScaling(2.0, "fan_out", "uniform", seed=1), np.sqrt(6 / 200), None),
    (gk.initializers.VarianceScaling(1.0, "fan_avg", "untruncated_normal", seed=1), None,
     np.sqrt(1 / 250)),
    (gk.initializers.TruncatedNormal(0.0, 0.5, seed=1), 1.0, 0.5 * 0.8796),
    (gk.initializers.he_normal(seed=1), 2 * np.sqrt(2 / 300) / 0.8796, np.sqrt(2 / 300)),
])
def test_variance_scaling_family(init, limit, std):
    w = init((300, 200))
    assert w.shape == (300, 200) and w.dtype == np.float32
    if limit is not None:
        assert np.abs(w).max() <= limit * (1 + 1e-6)
    if std is not None:
        assert abs(w.std() / std - 1) < 0.02
    again = type(init)(**init.get_config())((300, 200))
    np.testing.assert_array_equal(w, again)  # the seed makes it reproducible


def test_identity_initializer_and_names():
    np.testing.assert_array_equal(gk.initializers.Identity(3.0)((2, 4)), 3 * np.eye(2, 4))
    with pytest.raises(gc.GraphcError, match="2-D"):
        gk.initializers.identity()((2, 2, 2))
    with pytest.raises(gc.GraphcError, match="distribution"):
        gk.initializers.VarianceScaling(distribution="cauchy")
    assert gk.initializers.glorot_uniform is gk.initializers.GlorotUniform
    init = gk.initializers.deserialize({"class_name": "VarianceScaling",
                                        "config": {"scale": 3.0, "mode": "fan_out"}})
    assert (init.scale, init.mode, init.distribution) == (3.0, "fan_out", "truncated_normal")


# ---- random ------------------------------------------------------------------------------------
def test_random_draws_have_their_distributions_and_repeat_with_a_seed():
    s = gc.Session()
    g = s.run(gk.random.gamma((40000,), 0.5, seed=3))
    assert abs(g.mean() - 0.5) < 0.02 and abs(g.var() - 0.5) < 0.03 and g.min() > 0
    b = s.run(gk.random.beta((40000,), 2.0, 5.0, seed=3))
    assert abs(b.mean() - 2 / 7) < 0.01 and 0 < b.min() and b.max() < 1
    t = s.run(gk.random.truncated_normal((40000,), 1.0, 2.0, seed=3))
    assert t.min() >= -3.0 and t.max() <= 5.0 and abs(t.std() - 2 * 0.8796) < 0.03
    c = s.run(gk.random.categorical(np.log([[0.1, 0.2, 0.7], [1.0, 1e-9, 1e-9]]), 20000,
                                    seed=3))
    np.testing.assert_allclose(np.bincount(c[0], minlength=3) / 20000, [0.1, 0.2, 0.7],
                               atol=0.015)
    assert np.all(c[1] == 0)
    n = s.run(gk.random.binomial((40000,), np.array([0, 10]).repeat(20000), 0.3, seed=3))
    assert np.all(n[:20000] == 0) and abs(n[20000:].mean() - 3.0) < 0.05
    r = s.run(gk.random.randint((40000,), -3, 4, seed=3))
    assert r.min() == -3 and r.max() == 3 and r.dtype == np.int32
    perm = s.run(gk.random.shuffle(np.arange(10), seed=2))
    assert sorted(perm) == list(range(10))
    x = np.ones((4, 6), "float32")
    d = s.run(gk.random.dropout(x, 0.5, noise_shape=(None, 1), seed=4))
    assert set(np.unique(d)) <= {0.0, 2.0} and np.all(d == d[:, :1])
    first, second = s.run(gk.random.normal((3,), seed=7)), gc.Session().run(
        gk.random.normal((3,), seed=7))
    np.testing.assert_array_equal(first, second)
    gen = gk.random.SeedGenerator(5)
    assert not np.array_equal(s.run(gk.random.uniform((3,), seed=gen)),
                              s.run(gk.random.uniform((3,), seed=gen)))


# ---- gk.ops compositions: gradients and extreme values -----------------------------------------
def test_inverse_trig_gradients_match_numpy():
    x = gc.placeholder(gc.float32, (None,))
    v = np.array([-0.9, -0.3, 0.0, 0.4, 0.8], "float32")
    fns = {"arctan": (gk.ops.arctan, lambda t: 1 / (1 + t * t)),
           "arcsin": (gk.ops.arcsin, lambda t: 1 / np.sqrt(1 - t * t)),
           "arccos": (gk.ops.arccos, lambda t: -1 / np.sqrt(1 - t * t)),
           "arctanh": (gk.ops.arctanh, lambda t: 1 / (1 - t * t)),
           "arcsinh": (gk.ops.arcsinh, lambda t: 1 / np.sqrt(1 + t * t))}
    for name, (fn, deriv) in fns.items():
        y = fn(x)
        value, grad = gc.Session().run([y, gc.grad(gc.sum(y), [x])[0]], {x: v})
        np.testing.assert_allclose(value, getattr(np, name)(v), rtol=1e-6, atol=1e-7,
                                   err_msg=name)
        np.testing.assert_allclose(grad, deriv(v), rtol=1e-5, err_msg=name)


def test_ops_on_extreme_values_and_run_time_sizes():
    x = gc.placeholder(gc.float32, (None,))
    v = np.array([np.inf, -np.inf, np.nan, -0.0, 0.0, 1e30, -1e-30], "float32")
    outs = gc.Session().run([gk.ops.arctan(x), gk.ops.signbit(x), gk.ops.cbrt(x),
                             gk.ops.nan_to_num(x), gk.ops.logaddexp(x, x), gk.ops.hypot(x, x),
                             gk.ops.trunc(x), gk.ops.erfinv(gk.ops.tanh(x))], {x: v})
    with np.errstate(all="ignore"):
        refs = [np.arctan(v), np.signbit(v), np.cbrt(v), np.nan_to_num(v),
                np.logaddexp(v, v), np.hypot(v, v), np.trunc(v)]
    for out, ref in zip(outs, refs):
        np.testing.assert_allclose(out, ref, rtol=1e-6)
    assert list(outs[-1][:2]) == [np.inf, -np.inf] and np.isnan(outs[-1][2])
    empty = gc.Session().run(gk.ops.nansum(x), {x: np.zeros((0,), "float32")})
    assert empty == 0.0


def test_sort_quantile_and_cumprod_on_odd_sizes():
    a = rng.normal(size=(5, 7)).astype("float32")
    a[1, 2] = a[3, 3] = 0.0
    x = gc.constant(a)
    s, arg, q, cp, med = _run(gk.ops.sort(x, axis=0), gk.ops.argsort(x, axis=1),
                              gk.ops.quantile(x, [0.1, 0.75], axis=1),
                              gk.ops.cumprod(x, axis=1), gk.ops.median(x))
    np.testing.assert_array_equal(s, np.sort(a, axis=0))
    np.testing.assert_array_equal(arg, np.argsort(a, axis=1, kind="stable"))
    np.testing.assert_allclose(q, np.quantile(a, [0.1, 0.75], axis=1), rtol=1e-6)
    np.testing.assert_allclose(cp, np.cumprod(a, axis=1), rtol=1e-5)
    np.testing.assert_allclose(med, np.median(a), rtol=1e-6)


def test_bitwise_ops_and_shifts_match_numpy():
    x = gc.placeholder(gc.int16, (None,))
    n = gc.placeholder(gc.int16, (None,))
    v = np.array([-32768, -1, 0, 1, 32767, -300, 77], "int16")
    k = np.array([0, 15, 16, -1, 3, 40, 1], "int16")
    o = gk.ops
    outs = gc.Session().run([o.bitwise_and(x, n), o.bitwise_or(x, 5), o.bitwise_xor(x, n),
                             o.bitwise_invert(x), o.bitwise_not(x), o.left_shift(x, n),
                             o.bitwise_left_shift(x, n), o.right_shift(x, n),
                             o.bitwise_right_shift(x, 2)], {x: v, n: k})
    refs = [v & k, v | np.int16(5), v ^ k, ~v, ~v, np.left_shift(v, k), np.left_shift(v, k),
            np.right_shift(v, k), v >> 2]
    for out, ref in zip(outs, refs):
        assert out.dtype == np.int16
        np.testing.assert_array_equal(out, ref)
