"""gc.onnx.load and graphc.onnx.backend on small hand-built models."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import graphc as gc  # noqa: E402


def _model(nodes, inputs, outputs, inits=(), opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _flatten_model(opset=13):
    """x (N, 3, 2) -> Reshape(x, Concat(Shape(w)[0:1], [-1])) @ w + b, relu; batch dynamic."""
    w = np.arange(6 * 4, dtype=np.float32).reshape(6, 4) / 10
    b = np.array([1, -2, 3, -4], np.float32)
    nodes = [
        helper.make_node("Flatten", ["x"], ["f"], axis=1),
        helper.make_node("Shape", ["w"], ["ws"]),
        helper.make_node("Gather", ["ws", "zero"], ["k"], axis=0),
        helper.make_node("Unsqueeze", ["k", "ax0"], ["k1"]),
        helper.make_node("Concat", ["minus1", "k1"], ["shape"], axis=0),
        helper.make_node("Reshape", ["f", "shape"], ["f2"]),
        helper.make_node("MatMul", ["f2", "w"], ["m"]),
        helper.make_node("Add", ["m", "b"], ["a"]),
        helper.make_node("Relu", ["a"], ["y"]),
    ]
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b"),
             numpy_helper.from_array(np.array(0, np.int64), "zero"),
             numpy_helper.from_array(np.array([0], np.int64), "ax0"),
             numpy_helper.from_array(np.array([-1], np.int64), "minus1")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])
    return _model(nodes, [x], [y], inits, opset), w, b


def _expected(x, w, b):
    return np.maximum(x.reshape(len(x), -1) @ w + b, 0)


@pytest.mark.parametrize("device", ["reference", "cpu"])
def test_load_runs_with_a_dynamic_batch_compiled_once(device, tmp_path):
    model, w, b = _flatten_model()
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    m = gc.onnx.load(str(path), device=device)
    assert m.input_names == ["x"] and m.output_names == ["y"]
    assert isinstance(m.graph, gc.Graph)
    # the shape computation folded at load time: the reshape has its shape as an attribute
    # and no gather or concat is computed
    optimized = m.function.dump(stage="optimized")
    assert "gather" not in optimized and "concat" not in optimized
    for batch in (1, 5, 2):
        x = np.random.RandomState(batch).randn(batch, 3, 2).astype(np.float32)
        (y,) = m.run({"x": x})
        np.testing.assert_allclose(y, _expected(x, w, b), rtol=1e-5, atol=1e-5)
    assert m.function is not None
    assert len(m._compiled) == 1  # one compiled function for every batch size


def test_load_takes_bytes_and_modelproto():
    model, w, b = _flatten_model()
    x = np.ones((2, 3, 2), np.float32)
    for source in (model.SerializeToString(), model):
        (y,) = gc.onnx.load(source, device="reference").run({"x": x})
        np.testing.assert_allclose(y, _expected(x, w, b), rtol=1e-6)


def test_backend_prepare_run_model_run_node():
    from graphc.onnx import backend
    model, w, b = _flatten_model()
    x = np.ones((2, 3, 2), np.float32)
    assert backend.supports_device("CPU") and not backend.supports_device("TPU")
    rep = backend.prepare(model, "CPU")
    np.testing.assert_allclose(rep.run([x])[0], _expected(x, w, b), rtol=1e-6)
    np.testing.assert_allclose(backend.run_model(model, [x])[0], _expected(x, w, b), rtol=1e-6)
    node = helper.make_node("Softmax", ["a"], ["s"], axis=-1)
    a = np.random.RandomState(0).randn(3, 4).astype(np.float32)
    (s,) = backend.run_node(node, [a])
    np.testing.assert_allclose(s, np.exp(a) / np.exp(a).sum(-1, keepdims=True), rtol=1e-5)


def test_opset_versions_softmax_flattens_before_13_and_attrs_become_inputs():
    x = np.random.RandomState(1).randn(2, 3, 4).astype(np.float32)
    xi = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])
    yo = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    old = _model([helper.make_node("Softmax", ["x"], ["y"], axis=1)], [xi], [yo], opset=11)
    flat = x.reshape(2, 12)
    want = (np.exp(flat) / np.exp(flat).sum(1, keepdims=True)).reshape(x.shape)
    np.testing.assert_allclose(gc.onnx.load(old, device="reference").run([x])[0], want,
                               rtol=1e-5)
    new = _model([helper.make_node("Softmax", ["x"], ["y"], axis=1)], [xi], [yo], opset=13)
    want = np.exp(x) / np.exp(x).sum(1, keepdims=True)
    np.testing.assert_allclose(gc.onnx.load(new, device="reference").run([x])[0], want,
                               rtol=1e-5)
    # ReduceSum: axes attribute before 13, input from 13; an empty name = an omitted input
    r11 = _model([helper.make_node("ReduceSum", ["x"], ["y"], axes=[1], keepdims=0)], [xi],
                 [yo], opset=11)
    axes = numpy_helper.from_array(np.array([1], np.int64), "axes")
    r13 = _model([helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=0)], [xi], [yo],
                 [axes], opset=13)
    r13_all = _model([helper.make_node("ReduceSum", ["x", ""], ["y"], keepdims=0)], [xi], [yo],
                     opset=13)
    for m, want in ((r11, x.sum(1)), (r13, x.sum(1)), (r13_all, x.sum())):
        np.testing.assert_allclose(gc.onnx.load(m, device="reference").run([x])[0], want,
                                   rtol=1e-5)


def test_new_ops_from_graphcs_own_api():
    x = gc.constant(np.array([[3.0, 1.0, 2.0]], np.float32))
    v, i = gc.top_k(x, 2)
    idx = gc.constant(np.array([[2, 0]], np.int64))
    f = gc.function([], [v, i, gc.cumsum(x, 1), gc.gather_elements(x, idx, 1),
                         gc.einsum("ij,kj->ik", x, x)], device="reference")
    v, i, c, g, e = f()
    np.testing.assert_array_equal(v, [[3, 2]])
    np.testing.assert_array_equal(i, [[0, 2]])
    np.testing.assert_array_equal(c, [[3, 4, 6]])
    np.testing.assert_array_equal(g, [[2, 3]])
    np.testing.assert_array_equal(e, [[14]])


@pytest.mark.parametrize("device", ["reference", "cpu"])
def test_integer_dtypes_import_from_every_tensor_field(device):
    """uint8/int8/int16/uint32/uint64 inputs and initializers (raw bytes, int32_data,
    uint64_data), computed with wraparound, give what onnx's reference evaluator gives."""
    from onnx.reference import ReferenceEvaluator
    inits = [
        helper.make_tensor("c8", TensorProto.UINT8, [3], [250, 0, 7]),  # int32_data
        helper.make_tensor("c16", TensorProto.INT16, [3], [32767, -32768, -1]),
        helper.make_tensor("c64", TensorProto.UINT64, [3], [2 ** 64 - 1, 3, 2 ** 63]),
        numpy_helper.from_array(np.array([4000000000, 1, 0], np.uint32), "c32"),  # raw
    ]
    nodes = [
        helper.make_node("Add", ["x", "c8"], ["a"]),
        helper.make_node("Cast", ["y"], ["y16"], to=TensorProto.INT16),
        helper.make_node("Add", ["y16", "c16"], ["b"]),
        helper.make_node("Cast", ["x"], ["x64"], to=TensorProto.UINT64),
        helper.make_node("Mul", ["x64", "c64"], ["c"]),
        helper.make_node("Cast", ["y"], ["y32"], to=TensorProto.UINT32),
        helper.make_node("Max", ["y32", "c32"], ["d"]),
        helper.make_node("Less", ["y32", "c32"], ["e"]),
    ]
    inputs = [helper.make_tensor_value_info("x", TensorProto.UINT8, ["N", 3]),
              helper.make_tensor_value_info("y", TensorProto.INT8, ["N", 3])]
    outputs = [helper.make_tensor_value_info(n, t, None) for n, t in (
        ("a", TensorProto.UINT8), ("b", TensorProto.INT16), ("c", TensorProto.UINT64),
        ("d", TensorProto.UINT32), ("e", TensorProto.BOOL))]
    model = _model(nodes, inputs, outputs, inits)
    x = np.array([[255, 0, 9], [6, 128, 1]], np.uint8)
    y = np.array([[-128, 127, -1], [0, 5, -7]], np.int8)
    want = ReferenceEvaluator(model).run(None, {"x": x, "y": y})
    m = gc.onnx.load(model, device=device)
    for got, w in zip(m.run({"x": x, "y": y}), want):
        assert got.dtype == w.dtype
        np.testing.assert_array_equal(got, w)


def _run_time_shapes_model():
    """x (N, 3, 4): Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1])), x *
    ConstantOfShape(Shape(x)), Expand(b, Shape(x)), and Reshape(Transpose(x), Concat(
    Slice(Cast(Shape(x)), 1, 3), N)): every shape holds the run-time batch N."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "ax0"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus1"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["y"]),
        helper.make_node("ConstantOfShape", ["s"], ["twos"],
                         value=numpy_helper.from_array(np.array([2.0], np.float32))),
        helper.make_node("Mul", ["x", "twos"], ["z"]),
        helper.make_node("Expand", ["b", "s"], ["w"]),
        helper.make_node("Cast", ["s"], ["s64"], to=TensorProto.INT64),
        helper.make_node("Slice", ["s64", "one", "three"], ["tail"]),
        helper.make_node("Concat", ["tail", "n1"], ["shape2"], axis=0),
        helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 2, 0]),
        helper.make_node("Reshape", ["xt", "shape2"], ["v"]),
    ]
    inits = [numpy_helper.from_array(np.array(0, np.int64), "zero"),
             numpy_helper.from_array(np.array([0], np.int64), "ax0"),
             numpy_helper.from_array(np.array([-1], np.int64), "minus1"),
             numpy_helper.from_array(np.array([1], np.int64), "one"),
             numpy_helper.from_array(np.array([3], np.int64), "three"),
             numpy_helper.from_array(np.arange(4, dtype=np.float32).reshape(1, 4) - 1.5, "b")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 4])
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in "yzwv"]
    return _model(nodes, [x], outs, inits)


@pytest.mark.parametrize("device", ["reference", "cpu"])
def test_shapes_of_a_run_time_batch_are_computed_when_it_runs(device):
    from onnx.reference import ReferenceEvaluator
    model = _run_time_shapes_model()
    m = gc.onnx.load(model, device=device)
    for batch in (2, 7, 1):
        x = np.random.RandomState(batch).randn(batch, 3, 4).astype(np.float32)
        want = ReferenceEvaluator(model).run(None, {"x": x})
        for got, w in zip(m.run({"x": x}), want):
            assert got.shape == w.shape
            np.testing.assert_allclose(got, w, rtol=1e-6)
    assert len(m._compiled) == 1  # one compiled function for every batch size


def test_a_shape_of_run_time_dims_used_as_a_value_is_refused_naming_the_node():
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Add", ["s", "s"], ["y"], name="adds")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])
    y = helper.make_tensor_value_info("y", TensorProto.INT64, [2])
    with pytest.raises(gc.GraphcError, match=r"'adds' \(ai.onnx::Add.*run-time dims"):
        gc.onnx.load(_model(nodes, [x], [y]))
    nodes = [helper.make_node("Shape", ["x"], ["y"])]
    with pytest.raises(gc.GraphcError, match="run-time dims"):
        gc.onnx.load(_model(nodes, [x], [y]))


@pytest.mark.parametrize("device", ["reference", "cpu"])
def test_bit_shifts_and_bitwise_ops_import(device):
    """BitShift (unsigned, counts in range as ONNX defines them) and BitwiseAnd/Or/Xor/Not
    (signed too) give what onnx's reference evaluator gives, with a run-time batch."""
    from onnx.reference import ReferenceEvaluator
    nodes = [
        helper.make_node("BitShift", ["u", "k"], ["left"], direction="LEFT"),
        helper.make_node("BitShift", ["u", "k"], ["right"], direction="RIGHT"),
        helper.make_node("BitwiseAnd", ["s", "t"], ["and"]),
        helper.make_node("BitwiseOr", ["s", "t"], ["or"]),
        helper.make_node("BitwiseXor", ["s", "t"], ["xor"]),
        helper.make_node("BitwiseNot", ["s"], ["not"]),
    ]
    inputs = [helper.make_tensor_value_info("u", TensorProto.UINT16, ["N", 3]),
              helper.make_tensor_value_info("k", TensorProto.UINT16, [3]),
              helper.make_tensor_value_info("s", TensorProto.INT32, ["N", 3]),
              helper.make_tensor_value_info("t", TensorProto.INT32, [1, 3])]
    outputs = [helper.make_tensor_value_info(n, t, None) for n, t in (
        ("left", TensorProto.UINT16), ("right", TensorProto.UINT16), ("and", TensorProto.INT32),
        ("or", TensorProto.INT32), ("xor", TensorProto.INT32), ("not", TensorProto.INT32))]
    model = _model(nodes, inputs, outputs, opset=18)
    feed = {"u": np.array([[65535, 1, 0x8001], [7, 256, 3]], np.uint16),
            "k": np.array([15, 0, 1], np.uint16),
            "s": np.array([[-2 ** 31, -1, 5], [2 ** 31 - 1, 0, -6]], np.int32),
            "t": np.array([[0x0F0F0F0F, -1, 3]], np.int32)}
    want = ReferenceEvaluator(model).run(None, feed)
    got = gc.onnx.load(model, device=device).run(feed)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)


def _onnxruntime(model):
    """onnxruntime's outputs for a feed, as a function."""
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return lambda feed: session.run(None, feed)


def _assert_matches(model, device, shape, oracle, rng):
    """The model (input x of `shape` after a dynamic batch axis, one output) loaded on device
    gives the oracle's output on batches of 2 and 1, with inf and -0.0 in x."""
    m = gc.onnx.load(model, device=device)
    for batch in (2, 1):
        x = rng.normal(size=(batch, *shape)).astype(np.float32)
        x.reshape(-1)[[3, 11]] = np.inf, -0.0
        (got,) = m.run({"x": x})
        (want,) = oracle({"x": x})
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("device", ["reference", "cpu"])
@pytest.mark.parametrize("strides, dilations, pads, multiplier", [
    ([1, 1], [1, 1], [1, 1, 1, 1], 1), ([2, 1], [1, 2], [0, 2, 1, 1], 1),
    ([2, 2], [1, 1], [1, 0, 0, 1], 2)])
def test_depthwise_convolutions_import(device, strides, dilations, pads, multiplier):
    """group == channels: strided slices times per-channel weights (a channel multiplier of 2
    goes through one convolution per group); odd sizes, a dynamic batch, onnxruntime's
    values."""
    rng = np.random.default_rng(11)
    c = 5
    w = numpy_helper.from_array(rng.normal(size=(c * multiplier, 1, 3, 3)).astype(np.float32),
                                "w")
    b = numpy_helper.from_array(rng.normal(size=c * multiplier).astype(np.float32), "b")
    model = _model([helper.make_node("Conv", ["x", "w", "b"], ["y"], group=c, strides=strides,
                                     dilations=dilations, pads=pads, kernel_shape=[3, 3])],
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", c, 11, 8])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w, b])
    _assert_matches(model, device, (c, 11, 8), _onnxruntime(model), rng)


@pytest.mark.parametrize("device", ["reference", "cpu"])
@pytest.mark.parametrize("group, kernel, strides, pads, bias", [
    (4, [1, 1], [1, 1], [0, 0, 0, 0], True), (3, [1, 1], [2, 3], [0, 1, 1, 0], False),
    (2, [1, 1], [1, 1], [0, 0, 0, 0], True), (3, [3, 2], [2, 1], [1, 0, 1, 1], True)])
def test_grouped_convolutions_import(device, group, kernel, strides, pads, bias):
    """Grouped Conv (2 to 4 groups, fewer than the channels): 1x1 ones are one product
    batched over the groups, others one convolution per group; strides, pads, odd sizes, a
    dynamic batch, inf and -0.0 in the input, against onnxruntime."""
    rng = np.random.default_rng(17 + group)
    cin, m = 3, 5  # per group
    w = numpy_helper.from_array(
        rng.normal(size=(group * m, cin, *kernel)).astype(np.float32), "w")
    inits = [w] + ([numpy_helper.from_array(rng.normal(size=group * m).astype(np.float32),
                                            "b")] if bias else [])
    model = _model([helper.make_node("Conv", ["x", "w"] + ["b"] * bias, ["y"], group=group,
                                     strides=strides, pads=pads, kernel_shape=kernel)],
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                  ["N", group * cin, 9, 7])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    _assert_matches(model, device, (group * cin, 9, 7), _onnxruntime(model), rng)


@pytest.mark.parametrize("device", ["reference", "cpu"])
@pytest.mark.parametrize("op, attrs, spatial", [
    ("MaxPool", dict(kernel_shape=[3, 2], dilations=[2, 3], strides=[1, 2],
                     pads=[1, 2, 2, 0]), (11, 13)),
    ("MaxPool", dict(kernel_shape=[2, 2, 3], dilations=[2, 1, 2], ceil_mode=1,
                     strides=[2, 2, 1]), (7, 6, 9)),
    ("AveragePool", dict(kernel_shape=[3, 3], dilations=[2, 2], pads=[2, 1, 1, 2],
                         count_include_pad=1, strides=[2, 1]), (10, 9)),
    ("AveragePool", dict(kernel_shape=[2, 3], dilations=[3, 2], pads=[1, 0, 0, 2],
                         ceil_mode=1, strides=[2, 2]), (10, 9)),
    ("AveragePool", dict(kernel_shape=[3], dilations=[2]), (12,))])
def test_dilated_pools_import(device, op, attrs, spatial):
    """MaxPool and AveragePool with dilations (1-D to 3-D; pads, strides, ceil_mode,
    count_include_pad): one fused kernel over the window's taps, against onnx's reference
    evaluator on a dynamic batch with inf and -0.0 in the input."""
    from onnx.reference import ReferenceEvaluator
    rng = np.random.default_rng(len(spatial) + len(attrs))
    model = _model([helper.make_node(op, ["x"], ["y"], **attrs)],
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, *spatial])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                   opset=19)  # AveragePool's dilations came in opset 19
    evaluator = ReferenceEvaluator(model)
    _assert_matches(model, device, (3, *spatial), lambda feed: evaluator.run(None, feed), rng)


@pytest.mark.parametrize("device", ["reference", "cpu"])
@pytest.mark.parametrize("group, kernel, attrs", [
    (2, [3, 2], dict(strides=[2, 3], pads=[1, 0, 0, 1], output_padding=[1, 2])),
    (3, [2, 3], dict(dilations=[2, 1], output_shape=[12, 10], strides=[2, 2])),
    (1, [2, 3, 2], dict(strides=[2, 1, 3], pads=[0, 1, 1, 1, 0, 0], output_padding=[1, 0, 2])),
    (2, [3, 2, 2], dict(dilations=[1, 2, 1], auto_pad="SAME_UPPER", strides=[1, 2, 2]))])
def test_grouped_and_3d_conv_transposes_import(device, group, kernel, attrs):
    """ConvTranspose with groups (one transposed convolution per group) and in 3-D (through
    gc.nn.conv3d_transpose): strides, dilations, pads, output_padding, output_shape, auto_pad
    and a bias over a dynamic batch, odd sizes, inf and -0.0, against onnxruntime (onnx's
    reference evaluator slices grouped weights wrongly for more than one image)."""
    rng = np.random.default_rng(len(kernel) * 10 + group)
    c, m = 2 * group, 3  # input channels; output channels per group
    spatial = (5, 4, 3)[:len(kernel)]
    w = numpy_helper.from_array(rng.normal(size=(c, m, *kernel)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.normal(size=group * m).astype(np.float32), "b")
    model = _model([helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], group=group,
                                     kernel_shape=kernel, **attrs)],
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", c, *spatial])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w, b])
    _assert_matches(model, device, (c, *spatial), _onnxruntime(model), rng)


@pytest.mark.parametrize("device", ["reference", "cpu"])
@pytest.mark.parametrize("group, strides, dilations, pads", [
    (1, [1, 1, 1], [1, 1, 1], [0, 0, 0, 0, 0, 0]),
    (1, [2, 1, 2], [1, 2, 1], [1, 0, 2, 0, 1, 1]),
    (2, [1, 2, 1], [2, 1, 1], [1, 1, 0, 1, 0, 1])])
def test_three_d_convolutions_import(device, group, strides, dilations, pads):
    """NCDHW Conv with groups, strides, dilations, asymmetric pads and a bias over a dynamic
    batch, against onnx's own reference evaluator; odd sizes, inf and -0.0 in the input (no
    inf where dilated: the evaluator's dilated kernel multiplies it by its inserted zeros)."""
    from onnx.reference import ReferenceEvaluator
    rng = np.random.default_rng(13)
    c, m = 4, 6
    w = numpy_helper.from_array(rng.normal(size=(m, c // group, 3, 2, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.normal(size=m).astype(np.float32), "b")
    model = _model([helper.make_node("Conv", ["x", "w", "b"], ["y"], group=group,
                                     strides=strides, dilations=dilations, pads=pads)],
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", c, 7, 6, 9])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w, b])
    m_ = gc.onnx.load(model, device=device)
    for batch in (2, 1):
        x = rng.normal(size=(batch, c, 7, 6, 9)).astype(np.float32)
        x[0, 1, 3, 4, 2] = np.inf if dilations == [1, 1, 1] else 1e30
        x[0, 2, 0, 0, 0] = -0.0
        (got,) = m_.run({"x": x})
        (want,) = ReferenceEvaluator(model).run(None, {"x": x})
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("device", ["reference", "cpu"])
@pytest.mark.parametrize("op, attrs", [
    ("MaxPool", dict(kernel_shape=[2, 3, 2], strides=[2, 1, 2])),
    ("MaxPool", dict(kernel_shape=[3, 2, 3], strides=[1, 2, 2], pads=[1, 0, 1, 1, 1, 0])),
    ("AveragePool", dict(kernel_shape=[2, 2, 3], strides=[1, 2, 1])),
    ("AveragePool", dict(kernel_shape=[3, 3, 2], strides=[2, 1, 1], pads=[1, 1, 0, 1, 0, 1])),
    ("AveragePool", dict(kernel_shape=[3, 3, 2], strides=[2, 1, 1], pads=[1, 1, 0, 1, 0, 1],
                         count_include_pad=1)),
    ("AveragePool", dict(kernel_shape=[2, 2, 2], strides=[2, 2, 2], ceil_mode=1))])
def test_three_d_pools_import(device, op, attrs):
    """NCDHW MaxPool and AveragePool (pads, count_include_pad, ceil_mode) against onnx's
    reference evaluator, with -inf, inf and -0.0 among odd-sized inputs."""
    from onnx.reference import ReferenceEvaluator
    rng = np.random.default_rng(17)
    model = _model([helper.make_node(op, ["x"], ["y"], **attrs)],
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 5, 7, 6])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    m = gc.onnx.load(model, device=device)
    x = rng.normal(size=(2, 3, 5, 7, 6)).astype(np.float32)
    x[0, 0, 0, 0, 0], x[1, 2, 4, 6, 5], x[0, 1, 2, 3, 4] = -np.inf, np.inf, -0.0
    (got,) = m.run({"x": x})
    (want,) = ReferenceEvaluator(model).run(None, {"x": x})
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("device", ["reference", "cpu"])
@pytest.mark.parametrize("op, attrs", [
    ("MaxPool", dict(kernel_shape=[3], strides=[2], pads=[1, 2])),
    ("MaxPool", dict(kernel_shape=[2], strides=[1])),
    ("AveragePool", dict(kernel_shape=[3], strides=[1], pads=[2, 1], count_include_pad=1)),
    ("AveragePool", dict(kernel_shape=[4], strides=[3], pads=[1, 1]))])
def test_one_d_pools_import(device, op, attrs):
    """NCL pools as 2-D ones over an axis of extent 1, against onnx's reference evaluator."""
    from onnx.reference import ReferenceEvaluator
    rng = np.random.default_rng(19)
    model = _model([helper.make_node(op, ["x"], ["y"], **attrs)],
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 11])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    m = gc.onnx.load(model, device=device)
    x = rng.normal(size=(2, 3, 11)).astype(np.float32)
    x[0, 0, 0], x[1, 2, 10], x[0, 1, 4] = -np.inf, np.inf, -0.0
    (got,) = m.run({"x": x})
    (want,) = ReferenceEvaluator(model).run(None, {"x": x})
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
