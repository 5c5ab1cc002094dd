"""The Keras 3 names added beside the first layers, against numpy references: the layers, losses, metrics and
optimizers, pad_sequences, the backend config, Lambda's safe_mode and LambdaCallback
(benchmarks/keras_breadth_parity.py checks the same names against Keras 3 itself)."""
import numpy as np
import pytest

import graphc as gc
import graphc.frontend as gk
from graphc.errors import CheckpointError

L = gk.layers
rng = np.random.default_rng(0)


def _run(layer_or_fn, *arrays):
    inputs = [gk.Input(a.shape[1:]) for a in arrays]
    out = layer_or_fn(inputs if len(inputs) > 1 else inputs[0])
    model = gk.Model(inputs if len(inputs) > 1 else inputs[0], out)
    return model.predict(list(arrays) if len(arrays) > 1 else arrays[0], verbose=0), model


def test_backend_config_names():
    assert gk.backend.image_data_format() == "channels_last"
    assert gk.backend.floatx() == "float32" and gk.backend.epsilon() == 1e-7
    assert gk.backend.result_type("int32", "float32") == "float32"


def test_conv1d_matches_numpy_causal_and_same():
    x = rng.normal(size=(2, 7, 3)).astype("float32")
    for padding in ("valid", "same", "causal"):
        layer = L.Conv1D(4, 3, padding=padding, dilation_rate=1 if padding != "causal" else 2)
        y, _ = _run(layer, x)
        k, b = layer.get_weights()
        assert k.shape == (3, 3, 4)
        d = layer.dilation_rate
        span = (3 - 1) * d
        xp = {"valid": x, "same": np.pad(x, [(0, 0), (span // 2, span - span // 2), (0, 0)]),
              "causal": np.pad(x, [(0, 0), (span, 0), (0, 0)])}[padding]
        steps = xp.shape[1] - span
        ref = np.stack([sum(xp[:, t + i * d] @ k[i] for i in range(3)) for t in range(steps)],
                       1) + b
        np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)


def test_conv2d_transpose_matches_scatter_reference():
    x = rng.normal(size=(2, 3, 4, 2)).astype("float32")
    layer = L.Conv2DTranspose(5, (2, 3), strides=2)
    y, _ = _run(layer, x)
    k, b = layer.get_weights()  # (kh, kw, filters, in)
    ref = np.zeros((2, (3 - 1) * 2 + 2, (4 - 1) * 2 + 3, 5), np.float32)
    for i in range(3):
        for j in range(4):
            ref[:, 2 * i:2 * i + 2, 2 * j:2 * j + 3] += np.einsum("bc,hwfc->bhwf", x[:, i, j], k)
    np.testing.assert_allclose(y, ref + b, rtol=1e-5, atol=1e-5)
    same, _ = _run(L.Conv2DTranspose(2, 3, strides=2, padding="same"), x)
    assert same.shape == (2, 6, 8, 2)


def test_resampling_padding_pooling_layers():
    x = rng.normal(size=(2, 4, 5, 3)).astype("float32")
    y, _ = _run(L.UpSampling2D((2, 3)), x)
    np.testing.assert_array_equal(y, x.repeat(2, 1).repeat(3, 2))
    # bilinear: half-pixel centres, each output row/column blends its two nearest inputs
    # (clamped at the edges)
    y, _ = _run(L.UpSampling2D((2, 3), interpolation="bilinear"), x)

    def blend(a, axis, factor):
        n = a.shape[axis]
        src = np.clip((np.arange(n * factor) + 0.5) / factor - 0.5, 0, n - 1)
        lo = np.floor(src).astype(int)
        hi, t = np.minimum(lo + 1, n - 1), src - np.floor(src)
        shape = [1] * a.ndim
        shape[axis] = -1
        return (np.take(a, lo, axis) * (1 - t).reshape(shape)
                + np.take(a, hi, axis) * t.reshape(shape))
    np.testing.assert_allclose(y, blend(blend(x, 1, 2), 2, 3), rtol=1e-5, atol=1e-6)
    y, _ = _run(L.ZeroPadding2D(((1, 2), (0, 1))), x)
    np.testing.assert_array_equal(y, np.pad(x, [(0, 0), (1, 2), (0, 1), (0, 0)]))
    y, _ = _run(L.Cropping2D(((1, 0), (2, 1))), x)
    np.testing.assert_array_equal(y, x[:, 1:, 2:4])
    y, _ = _run(L.GlobalMaxPooling2D(), x)
    np.testing.assert_array_equal(y, x.max((1, 2)))
    s = rng.normal(size=(2, 6, 3)).astype("float32")
    y, _ = _run(L.MaxPooling1D(2), s)
    np.testing.assert_array_equal(y, s.reshape(2, 3, 2, 3).max(2))
    y, _ = _run(L.AveragePooling1D(3), s)
    np.testing.assert_allclose(y, s.reshape(2, 2, 3, 3).mean(2), rtol=1e-6)
    y, _ = _run(L.GlobalAveragePooling1D(), s)
    np.testing.assert_allclose(y, s.mean(1), rtol=1e-6)


def test_activation_layers():
    x = rng.normal(size=(3, 6)).astype("float32")
    y, _ = _run(L.LeakyReLU(), x)
    np.testing.assert_allclose(y, np.where(x >= 0, x, 0.3 * x), rtol=1e-6)
    y, _ = _run(L.ReLU(max_value=0.5, negative_slope=0.1, threshold=0.2), x)
    np.testing.assert_allclose(y, np.minimum(np.where(x >= 0.2, x, 0.1 * (x - 0.2)), 0.5),
                               rtol=1e-6)
    y, _ = _run(L.ELU(0.5), x)
    np.testing.assert_allclose(y, np.where(x > 0, x, 0.5 * np.expm1(x)), rtol=1e-5, atol=1e-7)
    prelu = L.PReLU(alpha_initializer=gk.initializers.Constant(0.25))
    y, _ = _run(prelu, x)
    assert prelu.get_weights()[0].shape == (6,)
    np.testing.assert_allclose(y, np.where(x >= 0, x, 0.25 * x), rtol=1e-6)
    y, _ = _run(L.Softmax(), x)
    e = np.exp(x - x.max(-1, keepdims=True))
    np.testing.assert_allclose(y, e / e.sum(-1, keepdims=True), rtol=1e-5)
    y, _ = _run(L.Rescaling(1 / 255.0, offset=-1.0), x)
    np.testing.assert_allclose(y, x / 255.0 - 1.0, rtol=1e-6)


def test_structural_and_merge_layers():
    s = rng.normal(size=(2, 4, 3)).astype("float32")
    td = L.TimeDistributed(L.Dense(5))
    y, _ = _run(td, s)
    k, b = td.get_weights()
    np.testing.assert_allclose(y, s @ k + b, rtol=1e-5, atol=1e-6)
    y, _ = _run(L.Permute((2, 1)), s)
    np.testing.assert_array_equal(y, s.transpose(0, 2, 1))
    v = rng.normal(size=(2, 3)).astype("float32")
    w = rng.normal(size=(2, 3)).astype("float32")
    y, _ = _run(L.RepeatVector(4), v)
    np.testing.assert_array_equal(y, np.repeat(v[:, None], 4, 1))
    for layer, ref in ((L.Average(), (v + w) / 2), (L.Maximum(), np.maximum(v, w)),
                       (L.Minimum(), np.minimum(v, w)), (L.Multiply(), v * w),
                       (L.Subtract(), v - w), (L.Dot(axes=1), (v * w).sum(1, keepdims=True))):
        y, _ = _run(layer, v, w)
        np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-6)


def test_lambda_is_refused_by_load_model_unless_safe_mode_false(tmp_path):
    x = rng.normal(size=(2, 3)).astype("float32")
    y, model = _run(L.Lambda(lambda t: t * 3.0), x)
    np.testing.assert_allclose(y, 3 * x, rtol=1e-6)
    path = str(tmp_path / "lambda.keras")
    model.save(path)
    with pytest.raises(CheckpointError, match="safe_mode=False"):
        gk.load_model(path)
    with gc.Graph().as_default():
        again = gk.load_model(path, safe_mode=False)
        np.testing.assert_allclose(again.predict(x, verbose=0), 3 * x, rtol=1e-6)


def _loss_values(fn, t, p):
    yt, yp = gc.constant(t), gc.constant(p)
    return gc.Session(gc.get_default_graph()).run(fn(yt, yp))


def test_functional_losses_match_numpy():
    t = rng.uniform(0.1, 1, (4, 3)).astype("float32")
    p = rng.uniform(0.1, 1, (4, 3)).astype("float32")
    refs = {
        "mean_squared_error": ((p - t) ** 2).mean(-1),
        "hinge": np.maximum(1 - t * p, 0).mean(-1),
        "kl_divergence": (t * np.log(t / p)).sum(-1),
        "log_cosh": np.log(np.cosh(p - t)).mean(-1),
        "mean_absolute_percentage_error": 100 * np.abs((t - p) / t).mean(-1),
        "mean_squared_logarithmic_error": ((np.log1p(p) - np.log1p(t)) ** 2).mean(-1),
        "poisson": (p - t * np.log(p + 1e-7)).mean(-1),
        "cosine_similarity": -(t * p).sum(-1) / np.linalg.norm(t, axis=-1)
        / np.linalg.norm(p, axis=-1),
        "categorical_crossentropy": -(t * np.log(p / p.sum(-1, keepdims=True))).sum(-1),
    }
    for name, ref in refs.items():
        np.testing.assert_allclose(_loss_values(getattr(gk.losses, name), t, p), ref,
                                   rtol=1e-5, atol=1e-6, err_msg=name)


def test_auc_precision_recall_against_numpy():
    y = np.array([[0], [1], [1], [0], [1], [0], [1], [1]], np.float32)
    p = np.array([[0.1], [0.8], [0.35], [0.4], [0.9], [0.05], [0.6], [0.2]], np.float32)
    x = gk.Input((1,))
    model = gk.Model(x, L.Identity()(x))
    model.compile(optimizer="sgd", loss="mse", metrics=[gk.metrics.AUC(num_thresholds=1000),
                                                        gk.metrics.Precision(),
                                                        gk.metrics.Recall()])
    result = model.evaluate(p, y, verbose=0, return_dict=True) \
        if "return_dict" in model.evaluate.__code__.co_varnames else None
    if result is None:
        names = ["loss", "auc", "precision", "recall"]
        result = dict(zip(names, model.evaluate(p, y, verbose=0)))
    pos, neg = p[y == 1], p[y == 0]
    auc = np.mean([(a > b) + 0.5 * (a == b) for a in pos for b in neg])
    assert abs(result["auc"] - auc) < 1e-2
    hits = (p > 0.5) & (y == 1)
    assert result["precision"] == pytest.approx(hits.sum() / (p > 0.5).sum())
    assert result["recall"] == pytest.approx(hits.sum() / (y == 1).sum())


def test_new_optimizers_one_step_against_numpy():
    w0 = np.array([[0.5, -1.0], [2.0, 0.25]], np.float32)
    x = np.eye(2, dtype=np.float32)
    y = np.zeros((2, 2), np.float32)
    grad = 2 * w0 / 4  # d mean((x @ w)**2) / dw with x = I over 2 examples of 2 outputs
    refs = {
        "Lion": lambda lr: w0 - lr * np.sign(0.1 * grad),
        "Adadelta": lambda lr: w0 - lr * np.sqrt(1e-7) * grad / np.sqrt(0.05 * grad ** 2 + 1e-7),
        "Adamax": lambda lr: w0 - lr * 0.1 * grad / (0.1 * (np.abs(grad) + 1e-7)),
    }
    for name, ref in refs.items():
        with gc.Graph().as_default():
            inp = gk.Input((2,))
            dense = L.Dense(2, use_bias=False)
            model = gk.Model(inp, dense(inp))
            dense.set_weights([w0])
            model.compile(optimizer=getattr(gk.optimizers, name)(learning_rate=0.1), loss="mse")
            model.fit(x, y, batch_size=2, epochs=1, verbose=0, shuffle=False)
            np.testing.assert_allclose(dense.get_weights()[0], ref(0.1), rtol=1e-5,
                                       err_msg=name)


def test_pad_sequences_and_lambda_callback():
    out = gk.utils.pad_sequences([[1, 2, 3], [4], [5, 6, 7, 8, 9]], maxlen=4)
    np.testing.assert_array_equal(out, [[0, 1, 2, 3], [0, 0, 0, 4], [6, 7, 8, 9]])
    out = gk.utils.pad_sequences([[1, 2, 3], [4]], maxlen=2, padding="post", truncating="post")
    np.testing.assert_array_equal(out, [[1, 2], [4, 0]])
    seen = []
    x = gk.Input((2,))
    model = gk.Model(x, L.Dense(1)(x))
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.ones((4, 2), np.float32), np.ones((4, 1), np.float32), epochs=2, verbose=0,
              callbacks=[gk.callbacks.LambdaCallback(
                  on_epoch_end=lambda epoch, logs: seen.append((epoch, "loss" in logs)))])
    assert seen == [(0, True), (1, True)]


def test_keras_io_mnist_convnet_example_runs_unchanged():
    """examples/keras_mnist_convnet.py: keras.io's script with only its imports and data
    loading changed, at a tiny size."""
    import os
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    result = subprocess.run([sys.executable, os.path.join(root, "examples",
                                                          "keras_mnist_convnet.py")],
                            capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, GRAPHC_EXAMPLE_SAMPLES="24"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Epoch 15/15" in result.stdout and "Test accuracy:" in result.stdout


def test_keras_ops_against_numpy():
    ops = gk.ops
    x = rng.normal(size=(3, 4)).astype("float32")
    checks = {
        "matmul": (ops.matmul(x, x.T), x @ x.T), "einsum": (ops.einsum("ij,kj->ik", x, x), x @ x.T),
        "softmax": (ops.softmax(x), np.exp(x) / np.exp(x).sum(-1, keepdims=True)),
        "where": (ops.where(ops.greater(x, 0), x, 0.0), np.where(x > 0, x, 0)),
        "concatenate": (ops.concatenate([x, x], axis=1), np.concatenate([x, x], 1)),
        "stack": (ops.stack([x, x], axis=1), np.stack([x, x], 1)),
        "mean": (ops.mean(x, axis=1), x.mean(1)), "var": (ops.var(x, axis=0), x.var(0)),
        "tile": (ops.tile(x, (2, 1)), np.tile(x, (2, 1))),
        "repeat": (ops.repeat(x, 2, axis=1), np.repeat(x, 2, 1)),
        "round": (ops.round(x * 2), np.round(x * 2)), "ceil": (ops.ceil(x), np.ceil(x)),
        "moveaxis": (ops.moveaxis(x, 0, 1), np.moveaxis(x, 0, 1)),
        "segment_sum": (ops.segment_sum(x, np.array([0, 1, 0], "int32"), 2),
                        np.stack([x[0] + x[2], x[1]])),
        "tril": (ops.tril(x), np.tril(x)), "split": (ops.split(x, [1, 3], axis=1)[1], x[:, 1:3]),
        "argmax": (ops.argmax(x, axis=1), x.argmax(1)),
        "norm": (ops.norm(x, axis=-1), np.linalg.norm(x, axis=-1)),
        "top_k": (ops.top_k(x, 2)[0], -np.sort(-x, 1)[:, :2]),
        "silu": (ops.silu(x), x / (1 + np.exp(-x))),
        "transpose": (ops.transpose(x), x.T), "reshape": (ops.reshape(x, (2, 6)), x.reshape(2, 6)),
    }
    sess = gc.Session(gc.get_default_graph())
    for name, (t, ref) in checks.items():
        np.testing.assert_allclose(sess.run(t), ref, rtol=1e-5, atol=1e-6, err_msg=name)


def test_a_custom_layer_written_with_keras_ops_runs():
    ops = gk.ops

    class RMSScale(L.Layer):
        def build(self, input_shape):
            self.gain = self.add_weight("gain", (input_shape[-1],), "ones")

        def call(self, inputs):
            rms = ops.sqrt(ops.mean(ops.square(inputs), axis=-1, keepdims=True) + 1e-6)
            return ops.multiply(ops.divide(inputs, rms), self.gain)

    x = rng.normal(size=(2, 5)).astype("float32")
    y, _ = _run(RMSScale(), x)
    np.testing.assert_allclose(y, x / np.sqrt((x ** 2).mean(-1, keepdims=True) + 1e-6),
                               rtol=1e-5)
