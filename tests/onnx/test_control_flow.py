"""ONNX If / Loop / Scan / LSTM / GRU / RNN: import onto graphc's loops and conds (checked
against onnx's reference evaluator), export of loop and cond nodes (Scan, Loop, If: onnx's full
check, onnxruntime and gc.onnx.load give graphc's outputs on fresh sizes), and the safety of
bodies (the same checks as the top graph, nesting bounded, errors naming the node)."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import graphc as gc  # noqa: E402
import graphc.frontend as gk  # noqa: E402
from graphc.onnx.importer import MAX_DEPTH  # noqa: E402

L = gk.layers
rng = np.random.default_rng(15)
F = TensorProto.FLOAT


def _vi(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def _model(nodes, inputs, outputs, opset=17, inits=()):
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def _reference(model, feeds):
    from onnx.reference import ReferenceEvaluator
    return ReferenceEvaluator(model).run(None, feeds)


def _same(model, feeds, device="cpu", rtol=1e-5, atol=1e-5, oracle=None):
    want = (oracle or _reference)(model, feeds)
    got = gc.onnx.load(model.SerializeToString(), device=device).run(feeds)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


# ---- import -----------------------------------------------------------------------------------
def test_if_with_outer_captures_runs_only_the_taken_branch():
    then_g = helper.make_graph([helper.make_node("Mul", ["x", "w"], ["t"])], "then", [],
                               [_vi("t", F, [None, 3])])
    else_g = helper.make_graph([helper.make_node("Sub", ["x", "w"], ["e"])], "else", [],
                               [_vi("e", F, [None, 3])])
    w = numpy_helper.from_array(np.arange(3, dtype=np.float32), "w")
    m = _model([helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)],
               [_vi("c", TensorProto.BOOL, []), _vi("x", F, ["n", 3])], [_vi("y", F, ["n", 3])],
               inits=[w])
    x = rng.normal(size=(5, 3)).astype(np.float32)
    model = gc.onnx.load(m.SerializeToString(), device="cpu")
    for c in (True, False):
        (y,) = model.run({"c": np.array(c), "x": x})
        np.testing.assert_allclose(y, x * np.arange(3) if c else x - np.arange(3), rtol=1e-6)


def _loop_body():
    # carried y += x[i] (x from the outer scope), scan output y * 2, stop when sum(y) > limit
    nodes = [helper.make_node("Gather", ["x", "i"], ["xi"], axis=0),
             helper.make_node("Add", ["y_in", "xi"], ["y_out"]),
             helper.make_node("Mul", ["y_out", "two"], ["scan"]),
             helper.make_node("ReduceSum", ["y_out"], ["s"], keepdims=0),
             helper.make_node("Less", ["s", "limit"], ["c_out"])]
    two = numpy_helper.from_array(np.array(2, np.float32), "two")
    return helper.make_graph(nodes, "body", [_vi("i", TensorProto.INT64, []),
                                             _vi("c_in", TensorProto.BOOL, []),
                                             _vi("y_in", F, [3])],
                             [_vi("c_out", TensorProto.BOOL, []), _vi("y_out", F, [3]),
                              _vi("scan", F, [3])], [two])


@pytest.mark.parametrize("with_cond", [True, False])
def test_loop_trip_count_condition_carried_and_scan_outputs(with_cond):
    inputs = [_vi("M", TensorProto.INT64, []), _vi("x", F, [6, 3]), _vi("y0", F, [3]),
              _vi("limit", F, [])]
    loop_in = ["M", "c0" if with_cond else "", "y0"]
    if with_cond:
        inputs.insert(1, _vi("c0", TensorProto.BOOL, []))
    m = _model([helper.make_node("Loop", loop_in, ["y", "ys"], body=_loop_body())], inputs,
               [_vi("y", F, [3]), _vi("ys", F, [None, 3])], opset=13)
    feeds = {"M": np.array(5, np.int64), "x": np.abs(rng.normal(size=(6, 3))).astype(np.float32),
             "y0": np.zeros(3, np.float32), "limit": np.array(3.0, np.float32)}
    if with_cond:
        feeds["c0"] = np.array(True)
    y, ys, go = feeds["y0"], [], True  # numpy: the body runs while go, at most M times
    for i in range(5):
        if not go:
            break
        y = y + feeds["x"][i]
        ys.append(y * 2)
        go = not with_cond or y.sum() < 3.0
    got = gc.onnx.load(m.SerializeToString(), device="reference").run(feeds)
    np.testing.assert_allclose(got[0], y, rtol=1e-6)
    np.testing.assert_allclose(got[1], np.stack(ys), rtol=1e-6)
    assert len(ys) < 5 if with_cond else len(ys) == 5


def test_scan_axes_and_directions():
    body = helper.make_graph(
        [helper.make_node("Add", ["s_in", "a"], ["s_out"]),
         helper.make_node("Mul", ["s_out", "b"], ["o"])], "body",
        [_vi("s_in", F, [2]), _vi("a", F, [2]), _vi("b", F, [2])],
        [_vi("s_out", F, [2]), _vi("o", F, [2])])
    m = _model([helper.make_node("Scan", ["s0", "A", "B"], ["s", "O"], body=body,
                                 num_scan_inputs=2, scan_input_axes=[1, 0],
                                 scan_input_directions=[0, 1], scan_output_axes=[1],
                                 scan_output_directions=[1])],
               [_vi("s0", F, [2]), _vi("A", F, [2, 4]), _vi("B", F, [4, 2])],
               [_vi("s", F, [2]), _vi("O", F, [2, 4])], opset=16)
    feeds = {"s0": np.ones(2, np.float32), "A": rng.normal(size=(2, 4)).astype(np.float32),
             "B": rng.normal(size=(4, 2)).astype(np.float32)}
    s, O = gc.onnx.load(m.SerializeToString(), device="reference").run(feeds)
    a, b, state, outs = feeds["A"].T, feeds["B"][::-1], feeds["s0"], []
    for t in range(4):  # numpy: A scanned along axis 1, B backwards, outputs stored backwards
        state = state + a[t]
        outs.append(state * b[t])
    np.testing.assert_allclose(s, state, rtol=1e-6)
    np.testing.assert_allclose(O, np.stack(outs[::-1]).T, rtol=1e-6)


@pytest.mark.parametrize("kind,extra", [
    ("LSTM", dict(direction="bidirectional")),
    ("GRU", dict(direction="reverse", linear_before_reset=1)),
    ("GRU", dict(direction="bidirectional", linear_before_reset=0)),
    ("RNN", dict(direction="bidirectional", activations=["Relu", "Tanh"])),
])
def test_recurrent_ops_with_sequence_lengths_and_initial_state(kind, extra):
    gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[kind]
    T, B, I, H = 5, 3, 4, 6
    D = 2 if extra["direction"] == "bidirectional" else 1
    arrays = {"X": rng.normal(size=(T, B, I)), "W": rng.normal(size=(D, gates * H, I)) * 0.5,
              "R": rng.normal(size=(D, gates * H, H)) * 0.5,
              "B": rng.normal(size=(D, 2 * gates * H)) * 0.5, "h0": rng.normal(size=(D, B, H))}
    feeds = {k: v.astype(np.float32) for k, v in arrays.items()}
    feeds["lens"] = np.array([5, 2, 4], np.int32)
    ins = ["X", "W", "R", "B", "lens", "h0"]
    outs = ["Y", "Yh"]
    if kind == "LSTM":
        feeds["c0"] = rng.normal(size=(D, B, H)).astype(np.float32)
        ins.append("c0")
        outs.append("Yc")
    inputs = [_vi(n, TensorProto.INT32 if n == "lens" else F, list(feeds[n].shape))
              for n in ins]
    m = _model([helper.make_node(kind, ins, outs, hidden_size=H, **extra)], inputs,
               [helper.make_empty_tensor_value_info(n) for n in outs], opset=14)
    _same(m, feeds, device="reference", rtol=1e-4, oracle=_ort_model)  # onnx's reference
    # evaluator ignores sequence_lens; onnxruntime reverses each row within its length


def _ort_model(model, feeds):
    import os
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.onnx")
        onnx.save(model, path)
        return _ort(path, feeds)


def test_lstm_on_device_cpu_batchwise_layout():
    T, B, I, H = 4, 3, 2, 5
    feeds = {"X": rng.normal(size=(B, T, I)).astype(np.float32),
             "W": (rng.normal(size=(1, 4 * H, I)) * 0.5).astype(np.float32),
             "R": (rng.normal(size=(1, 4 * H, H)) * 0.5).astype(np.float32)}
    m = _model([helper.make_node("LSTM", ["X", "W", "R"], ["Y", "Yh"], hidden_size=H,
                                 layout=1)],
               [_vi(n, F, list(v.shape)) for n, v in feeds.items()],
               [helper.make_empty_tensor_value_info(n) for n in ("Y", "Yh")], opset=14)
    _same(m, feeds, device="cpu", rtol=1e-4)


# ---- export -----------------------------------------------------------------------------------
def _ort(path, feeds):
    ort = pytest.importorskip("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"]).run(None,
                                                                                      feeds)


def _check(path, feeds, expected, load=True):
    onnx.checker.check_model(onnx.load(path), full_check=True)
    runs = [_ort(path, feeds)]
    if load:
        runs.append(gc.onnx.load(path, device="cpu").run(feeds))
    for got in runs:
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            assert g.shape == e.shape and g.dtype == e.dtype
            np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-5)


def test_scan_while_loop_foldl_and_cond_export(tmp_path):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 3, 3), name="x")  # time axis dynamic
        h0 = gc.placeholder(gc.float32, (3, 4), name="h0")
        k = gc.placeholder(gc.int32, (), name="k")
        W = gc.Variable(rng.normal(size=(3, 4)).astype(np.float32), name="W")
        U = gc.Variable(np.zeros((4, 4), np.float32), name="U")
        hs, _ = gc.scan(lambda x_t, h: gc.tanh(x_t @ W + h @ U), sequences=x, outputs_info=[h0])
        back, _ = gc.scan(lambda x_t, h: h + gc.sum(x_t, axis=1, keepdims=True), sequences=x,
                          outputs_info=[h0], go_backwards=True)
        total = gc.foldl(lambda acc, r: acc + r, x, initializer=gc.zeros_like(h0[:, :3]))
        i, v = gc.while_loop(lambda i, v: gc.sum(v) < 100.0,
                             lambda i, v: (i + 1, v * 2.0 + 1.0),
                             (gc.constant(0), gc.sum(h0, axis=0) ** 2 + 0.5))
        y = gc.cond(k < 3, lambda: gc.sum(x, axis=0) * 2.0, lambda: gc.sum(x, axis=0) - W[:, :3])
        sess = gc.Session(g)
    sess.set_value(U, rng.normal(size=(4, 4)).astype(np.float32) * 0.3)  # exported: this
    outs = [hs, back, total, i, v, y]
    path = str(tmp_path / "loops.onnx")
    model = gc.onnx.export(path, outs, session=sess)
    ops = {n.op_type for n in model.graph.node}
    assert {"Scan", "Loop", "If"} <= ops
    for T, kv in ((7, 1), (1, 5)):
        feeds = {"x": rng.normal(size=(T, 3, 3)).astype(np.float32),
                 "h0": rng.normal(size=(3, 4)).astype(np.float32), "k": np.array(kv, np.int32)}
        _check(path, feeds, sess.run(outs, {x: feeds["x"], h0: feeds["h0"], k: feeds["k"]}))


@pytest.mark.parametrize("layer", ["LSTM", "GRU", "SimpleRNN"])
def test_frontend_recurrent_layers_export(tmp_path, layer):
    model = gk.Sequential([L.Input((None, 5)),
                           getattr(L, layer)(6, return_sequences=True),
                           getattr(L, layer)(4), L.Dense(2)])
    model.predict(rng.normal(size=(2, 3, 5)).astype(np.float32), verbose=0)
    path = str(tmp_path / "rnn.onnx")
    model.export(path, format="onnx")
    name = onnx.load(path).graph.input[0].name
    xv = rng.normal(size=(5, 7, 5)).astype(np.float32)  # other batch and time sizes
    # the zero initial state is a broadcast to the run-time batch size (Shape -> Gather ->
    # Concat -> Expand), the last step a one-step slice of the run-time time axis
    _check(path, {name: xv}, [model.predict(xv, verbose=0)])


# ---- safety -----------------------------------------------------------------------------------
def _nested_if(depth):
    out = leaf = helper.make_graph([helper.make_node("Identity", ["x"], ["o0"])], "leaf", [],
                                   [_vi("o0", F, [1])])
    for d in range(1, depth + 1):
        node = helper.make_node("If", ["c"], [f"o{d}"], then_branch=out, else_branch=leaf)
        out = helper.make_graph([node], f"g{d}", [], [_vi(f"o{d}", F, [1])])
    return _model(list(out.node), [_vi("c", TensorProto.BOOL, []), _vi("x", F, [1])],
                  [_vi(f"o{depth}", F, [1])])


def test_bodies_are_checked_like_the_top_graph():
    feeds = {"c": np.array(True), "x": np.ones(1, np.float32)}
    np.testing.assert_array_equal(gc.onnx.load(_nested_if(3).SerializeToString(),
                                               device="reference").run(feeds)[0], [1])
    with pytest.raises(gc.onnx.OnnxFormatError, match=f"nested more than {MAX_DEPTH} deep"):
        gc.onnx.load(_nested_if(MAX_DEPTH + 2).SerializeToString())
    # an unknown op in a body: names the body's node and the If holding it
    bad = helper.make_graph([helper.make_node("NoSuchOp", ["x"], ["t"], name="inner")], "then",
                            [], [_vi("t", F, [1])])
    ok = helper.make_graph([helper.make_node("Identity", ["x"], ["e"])], "else", [],
                           [_vi("e", F, [1])])
    m = _model([helper.make_node("If", ["c"], ["y"], name="outer", then_branch=bad,
                                 else_branch=ok)],
               [_vi("c", TensorProto.BOOL, []), _vi("x", F, [1])], [_vi("y", F, [1])])
    with pytest.raises(gc.onnx.OnnxUnsupportedError,
                       match=r"'outer' \(ai.onnx::If.*then_branch.*'inner'.*NoSuchOp"):
        gc.onnx.load(m.SerializeToString())
    # a body initializer declaring more bytes than it holds, a body output nobody computes
    lying = TensorProto(name="w", data_type=F, dims=[1000, 1000], raw_data=b"\0" * 8)
    bad = helper.make_graph([helper.make_node("Add", ["x", "w"], ["t"])], "then", [],
                            [_vi("t", F, [1])], [lying])
    next(a for a in m.graph.node[0].attribute if a.name == "then_branch").g.CopyFrom(bad)
    with pytest.raises(gc.onnx.OnnxFormatError, match=r"'outer'.*initializer 'w'.*holds 8"):
        gc.onnx.load(m.SerializeToString())
    bad = helper.make_graph([], "then", [], [_vi("nowhere", F, [1])])
    next(a for a in m.graph.node[0].attribute if a.name == "then_branch").g.CopyFrom(bad)
    with pytest.raises(gc.onnx.OnnxFormatError, match=r"'outer'.*'nowhere' is computed by no"):
        gc.onnx.load(m.SerializeToString())
