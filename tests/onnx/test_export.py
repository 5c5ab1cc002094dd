"""gc.onnx.export and model.export(format="onnx"): the written file passes onnx's full check,
and onnxruntime and gc.onnx.load give graphc's own outputs on fresh inputs (odd sizes, batch
sizes other than any used before exporting)."""
import os

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

import graphc as gc  # noqa: E402
import graphc.frontend as gk  # noqa: E402
from graphc.onnx.exporter import EXPORTERS, REFUSED  # noqa: E402

L = gk.layers
rng = np.random.default_rng(15)


def _ort_session(path):
    ort = pytest.importorskip("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def _check_file(path):
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    return model


def _round_trip(path, feeds, expected, rtol=1e-5, atol=1e-5, load=True):
    """onnxruntime and gc.onnx.load on the file give `expected` for `feeds` (name -> array)."""
    _check_file(path)
    got = _ort_session(path).run(None, feeds)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g.shape == e.shape and g.dtype == e.dtype
        np.testing.assert_allclose(g, e, rtol=rtol, atol=atol)
    if load:
        m = gc.onnx.load(path, device="cpu")
        for g, e in zip(m.run(feeds), expected):
            assert g.shape == e.shape
            np.testing.assert_allclose(g, e, rtol=rtol, atol=atol)


def _model_feeds(model, xs):
    return {t.name: x for t, x in zip(model.inputs, xs)}


# ---- TF1-style graphs -------------------------------------------------------------------------
def test_variables_export_their_session_values_not_their_initial_values(tmp_path):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 7), name="x")
        w = gc.Variable(np.zeros((7, 5), np.float32), name="w")
        b = gc.Variable(np.zeros(5, np.float32), name="b")
        h = gc.tanh(x @ w + b)
        y = gc.nn.log_softmax(h * 2.0, axis=-1)
        total = gc.sum(gc.square(h[:, 1:4]), axis=1, keepdims=True)
        sess = gc.Session(g)
        sess.run(gc.global_variables_initializer())
        sess.run(gc.group(gc.assign(w, gc.random.normal((7, 5), seed=3)),
                          gc.assign_add(b, np.full(5, 0.25, np.float32))))
    path = str(tmp_path / "tf1.onnx")
    model = gc.onnx.export(path, [y, total], session=sess)
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    np.testing.assert_array_equal(inits["w"], sess.get_value(w))
    np.testing.assert_array_equal(inits["b"], np.full(5, 0.25, np.float32))
    assert [i.name for i in model.graph.input] == ["x"]
    assert [o.name for o in model.graph.output] == [y.name, total.name]
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # dynamic batch
    assert model.opset_import[0].version == min(21, onnx.defs.onnx_opset_version())
    xv = rng.normal(size=(11, 7)).astype(np.float32)
    _round_trip(path, {"x": xv}, sess.run([y, total], {x: xv}))


def test_elementwise_shape_and_indexing_ops_round_trip(tmp_path):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 6), name="x")
        i = gc.placeholder(gc.int32, (None, 3), name="i")
        e = gc.Variable(rng.normal(size=(9, 4)).astype(np.float32), name="table")
        a = gc.abs(x) + 0.5
        outs = [
            gc.floordiv(x, gc.constant(0.7)), gc.mod(x, gc.constant(-0.8)),
            gc.rsqrt(a) + gc.log1p(a) - gc.expm1(x * 0.1) + gc.sqrt(a) * gc.sign(x),
            gc.where(x > 0, gc.sigmoid(x), gc.softplus(x)), gc.maximum(x, gc.minimum(x * 2, 1.0)),
            gc.cast(gc.logical_and(x > -0.5, gc.logical_not(x >= 0.5)), gc.float32),
            gc.reshape(x, (-1, 3, 2)), gc.transpose(gc.reshape(x, (-1, 2, 3)), (2, 0, 1)),
            gc.concat([x, x[:, ::-2]], axis=1), gc.pad(x, [[1, 0], [2, 3]], 1.5),
            gc.expand_dims(x, 1)[:, :, 2:5], x[:, -1], x[:, 4], x[::-1, 1:5:3],
            gc.split(x, [2, -1, 1], axis=1)[1],
            gc.gather(e, i), gc.one_hot(i, 5, dtype=gc.float32),
            gc.mean(x, axis=0), gc.max(x, axis=1), gc.min(x, axis=(0, 1)), gc.prod(a, axis=1),
            gc.argmax(x, axis=1), gc.argmin(x, axis=0),
            gc.nn.softmax(x, axis=0), gc.cumsum(x, axis=1, exclusive=True, reverse=True),
            gc.top_k(x, 2)[0], gc.top_k(x, 2)[1], gc.einsum("ij,kj->ik", e, e),
            gc.gather_elements(x, gc.cast(i % 6, gc.int64), axis=1),
            gc.floordiv(i, gc.constant(-2, gc.int32)), gc.mod(i, gc.constant(4, gc.int32)),
            i / gc.constant(2, gc.int32),
            gc.nn.sparse_softmax_cross_entropy(x, i[:, 0] % 6) if hasattr(
                gc.nn, "sparse_softmax_cross_entropy") else x,
        ]
        # shapes read at run time (ONNX Shape of a tensor with a run-time batch axis)
        runtime_shaped = [gc.ones_like(x) * gc.mean(x),
                          gc.broadcast_to(gc.reshape(x[:, 0], (-1, 1)), (x.shape[0], 4)),
                          gc.reshape_like(gc.reshape(x, (-1, 3, 2)),
                                          gc.expand_dims(x, 2)[..., :2])]
        sess = gc.Session(g)
    xv = rng.normal(size=(5, 6)).astype(np.float32)
    iv = rng.integers(0, 9, size=(5, 3)).astype(np.int32)
    path = str(tmp_path / "ops.onnx")
    gc.onnx.export(path, outs, session=sess, opset=17)
    _round_trip(path, {"x": xv, "i": iv}, sess.run(outs, {x: xv, i: iv}), rtol=1e-4,
                atol=1e-5)
    path = str(tmp_path / "shaped.onnx")
    gc.onnx.export(path, runtime_shaped, inputs=[x], session=sess)
    _round_trip(path, {"x": xv}, sess.run(runtime_shaped, {x: xv}))


@pytest.mark.parametrize("opset", [13, 15, 18, 21])
def test_every_opset_from_13_to_21(tmp_path, opset):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 4, 3), name="x")
        y = gc.max(gc.mean(x, axis=2), axis=1) + gc.sum(gc.squeeze(x[:, :1, :], 1), axis=1)
        parts_extra = [x[-1], x[1:-1:2]]  # int and strided indices on the run-time batch axis
        parts = gc.split(x, [1, 2], axis=2) + parts_extra
        sess = gc.Session(g)
    path = str(tmp_path / f"o{opset}.onnx")
    model = gc.onnx.export(path, [y] + parts, session=sess, opset=opset)
    assert model.opset_import[0].version == opset
    xv = rng.normal(size=(3, 4, 3)).astype(np.float32)
    _round_trip(path, {"x": xv}, sess.run([y] + parts, {x: xv}))


def test_errors_name_the_node_and_op(tmp_path):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 3), name="x")
        noisy = x + gc.random.normal((3,), name="noise")
        sess = gc.Session(g)
    with pytest.raises(gc.onnx.OnnxExportError, match=r"node 'noise' \[random_normal\]"):
        gc.onnx.export(str(tmp_path / "a.onnx"), noisy, session=sess)
    with pytest.raises(gc.onnx.OnnxError, match="opsets 13 to 21"):
        gc.onnx.export(str(tmp_path / "c.onnx"), x * 2, session=sess, opset=12)
    with g.as_default():
        y = gc.placeholder(gc.float32, (3,), name="y")
    with pytest.raises(gc.GraphcError, match=r"'y' \[placeholder\].*needed by the fetches"):
        gc.onnx.export(str(tmp_path / "d.onnx"), x + y, inputs=[x], session=sess)
    assert not [f for f in os.listdir(tmp_path)]  # nothing written, not even a temp file


def test_every_exported_op_is_a_graphc_op_and_refusals_are_distinct():
    from graphc.ops.registry import REGISTRY
    assert set(EXPORTERS) <= set(REGISTRY)
    assert set(REFUSED) <= set(REGISTRY) and not set(REFUSED) & set(EXPORTERS)


# ---- frontend models --------------------------------------------------------------------------
def test_mlp_model_export(tmp_path):
    inp = gk.Input((13,), name="features")
    h = L.Dense(17, activation="relu")(inp)
    h = L.Dropout(0.5)(h)
    out = L.Dense(3, activation="softmax", name="probs")(h)
    model = gk.Model(inp, out)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(rng.normal(size=(8, 13)), rng.integers(0, 3, 8), epochs=1, batch_size=4,
              verbose=0)
    path = str(tmp_path / "mlp.onnx")
    proto = model.export(path, format="onnx")
    assert [o.name for o in proto.graph.output] == ["probs"]
    xv = rng.normal(size=(9, 13)).astype(np.float32)
    _round_trip(path, {"features": xv}, [model.predict(xv, verbose=0)])
    with pytest.raises(gc.GraphcError, match="format 'tf_saved_model' is not supported"):
        model.export(path, format="tf_saved_model")


def test_cnn_with_batch_norm_and_dropout(tmp_path):
    model = gk.Sequential([
        L.Input((11, 9, 2)),
        L.Conv2D(5, 3, padding="same", activation="relu"),
        L.BatchNormalization(),
        L.MaxPooling2D(2),
        L.Conv2D(4, (2, 3), strides=2, padding="valid"),
        L.AveragePooling2D(2, padding="same"),
        L.Dropout(0.3),
        L.Flatten(),
        L.Dense(3),
    ])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(rng.normal(size=(6, 11, 9, 2)), rng.normal(size=(6, 3)), epochs=1, batch_size=3,
              verbose=0)  # moving statistics move away from their initial values
    path = str(tmp_path / "cnn.onnx")
    model.export(path)
    xv = rng.normal(size=(5, 11, 9, 2)).astype(np.float32)
    _round_trip(path, _model_feeds(model, [xv]), [model.predict(xv, verbose=0)], rtol=1e-4,
                atol=1e-5)


def test_embedding_and_lstm(tmp_path):
    tokens = gk.Input((7,), dtype="int32", name="tokens")
    emb = L.Embedding(20, 6)(tokens)
    pooled = L.Flatten()(emb)
    out = L.Dense(2)(pooled)
    model = gk.Model(tokens, out)
    path = str(tmp_path / "emb.onnx")
    model.export(path)
    xv = rng.integers(0, 20, size=(4, 7)).astype(np.int32)
    _round_trip(path, {"tokens": xv}, [model.predict(xv, verbose=0)])

    recurrent = gk.Sequential([L.Input((7,), dtype="int32"), L.Embedding(20, 6), L.LSTM(5),
                               L.Dense(2)])
    expected = recurrent.predict(xv, verbose=0)
    recurrent.export(str(tmp_path / "lstm.onnx"))  # the LSTM's loop: an ONNX Scan
    xv = rng.integers(0, 20, size=(5, 7)).astype(np.int32)
    _round_trip(str(tmp_path / "lstm.onnx"), _model_feeds(recurrent, [xv]),
                [recurrent.predict(xv, verbose=0)])
    assert expected.shape == (4, 2)


# ---- python -m graphc dump model.onnx ---------------------------------------------------------
def test_dump_command_shows_an_onnx_model(tmp_path, capsys):
    from graphc.__main__ import main
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 3), name="x")
        w = gc.Variable(np.ones((3, 2), np.float32), name="w")
        y = gc.relu(x @ w)
        sess = gc.Session(g)
    path = str(tmp_path / "d.onnx")
    gc.onnx.export(path, y, session=sess)
    assert main(["dump", path]) == 0
    text = capsys.readouterr().out
    assert "matmul" in text and "relu" in text
    assert main(["dump", path, "--stage", "optimized"]) == 0
    assert "relu" in capsys.readouterr().out
    assert main(["dump", path, "--format", "json"]) == 0
    assert capsys.readouterr().out.lstrip().startswith("{")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage")
    assert main(["dump", str(bad)]) == 2
    assert "graphc: error:" in capsys.readouterr().err


def test_scatters_and_a_gradient_graph(tmp_path):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 5), name="x")
        t = gc.placeholder(gc.float32, (4, 3), name="t")
        w = gc.Variable(rng.normal(size=(5, 3)).astype(np.float32), name="w")
        loss = gc.mean(gc.square(gc.tanh(x @ w) - 0.5))
        (dw,) = gc.grad(loss, [w])
        idx = gc.constant(np.array([[0, 2, 1], [3, 0, 2]], np.int64))
        outs = [gc.scatter_elements(t, idx, t[:2] * 10.0, axis=0, reduction="add"),
                gc.scatter_nd(t, gc.constant(np.array([[1], [3]], np.int64)), t[:2] + 1.0)]
        sess = gc.Session(g)
    path = str(tmp_path / "grad.onnx")
    gc.onnx.export(path, [loss, dw], inputs=[x], session=sess)
    xv = rng.normal(size=(7, 5)).astype(np.float32)
    # onnxruntime only: the gradient's mean divides by a product of run-time dims, which
    # gc.onnx.load does not compute
    _round_trip(path, {"x": xv}, sess.run([loss, dw], {x: xv}), load=False)
    path = str(tmp_path / "scatter.onnx")
    gc.onnx.export(path, outs, session=sess, opset=16)
    tv = rng.normal(size=(4, 3)).astype(np.float32)
    _round_trip(path, {"t": tv}, sess.run(outs, {t: tv}))


def test_integer_dtypes_export_and_run_in_onnxruntime(tmp_path):
    x = gc.placeholder(gc.uint8, (None, 3), name="x")
    y = gc.placeholder(gc.int16, (None, 3), name="y")
    outs = [x + 7, gc.cast(x, gc.int8), gc.maximum(gc.cast(x, gc.uint32), gc.cast(y, gc.uint32)),
            gc.cast(y, gc.uint64) * np.uint64(3), gc.floordiv(y, gc.constant(np.int16(-3)))]
    xs = np.array([[250, 0, 129], [3, 255, 1]], np.uint8)
    ys = np.array([[-32768, 32767, -1], [0, 5, -7]], np.int16)
    with gc.Session() as sess:
        expected = sess.run(outs, {x: xs, y: ys})
        path = str(tmp_path / "ints.onnx")
        gc.onnx.export(path, outs, inputs=[x, y], session=sess)
    assert [e.dtype for e in expected] == [np.uint8, np.int8, np.uint32, np.uint64, np.int16]
    np.testing.assert_array_equal(expected[0], xs + np.uint8(7))
    _round_trip(path, {"x": xs, "y": ys}, expected, rtol=0, atol=0)
