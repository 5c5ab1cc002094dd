"""The layout pass on imported NCHW networks: a ResNet-like ONNX model (random weights, odd
sizes, a dynamic batch axis) keeps no transpose between its first and last convolution, and
computes what the graph without the pass, onnxruntime and numpy compute."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import graphc as gc  # noqa: E402
from graphc.ir.graph import nodes_needed  # noqa: E402
from graphc.passes import optimize  # noqa: E402

rng = np.random.default_rng(50)


class Net:
    """An ONNX graph built node by node, with random initializers."""

    def __init__(self):
        self.nodes, self.inits = [], []

    def init(self, name, *shape, low=-0.5, high=0.5):
        self.inits.append(numpy_helper.from_array(
            rng.uniform(low, high, shape).astype(np.float32), name))
        return name

    def node(self, op, inputs, name, **attrs):
        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def conv_bn(self, x, cin, cout, k, name, stride=1, pads=None, relu=True):
        w = self.init(f"{name}_w", cout, cin, k, k, low=-1 / k / cin ** 0.5, high=1 / k / cin ** 0.5)
        y = self.node("Conv", [x, w], f"{name}_conv", kernel_shape=[k, k], strides=[stride] * 2,
                      pads=pads or [k // 2] * 4)
        bn = [self.init(f"{name}_{p}", cout, low=lo, high=hi) for p, lo, hi in
              (("scale", 0.5, 1.5), ("bias", -0.2, 0.2), ("mean", -0.2, 0.2), ("var", 0.5, 2))]
        y = self.node("BatchNormalization", [y] + bn, f"{name}_bn", epsilon=1e-5)
        return self.node("Relu", [y], f"{name}_relu") if relu else y

    def bottleneck(self, x, cin, mid, cout, name, stride=1):
        y = self.conv_bn(x, cin, mid, 1, f"{name}_a", stride=stride)
        y = self.conv_bn(y, mid, mid, 3, f"{name}_b")
        y = self.conv_bn(y, mid, cout, 1, f"{name}_c", relu=False)
        skip = x if cin == cout and stride == 1 else self.conv_bn(
            x, cin, cout, 1, f"{name}_proj", stride=stride, relu=False)
        return self.node("Relu", [self.node("Add", [y, skip], f"{name}_add")], f"{name}_out")

    def model(self, out, classes):
        graph = helper.make_graph(
            self.nodes, "resnet_like",
            [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 19, 17])],
            [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["N", classes])], self.inits)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def resnet_like(classes=7):
    """Stem conv 7x7/2 (asymmetric pads) -> bn -> relu -> max pool 3/2 -> a projecting and an
    identity bottleneck, a strided one, a concat of two branches -> global average pool ->
    flatten -> Gemm."""
    n = Net()
    y = n.conv_bn("image", 3, 8, 7, "stem", stride=2, pads=[3, 2, 3, 2])
    y = n.node("MaxPool", [y], "pool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    y = n.bottleneck(y, 8, 4, 12, "block1")
    y = n.bottleneck(y, 12, 4, 12, "block2")
    y = n.bottleneck(y, 12, 6, 10, "block3", stride=2)
    branch = n.conv_bn(y, 10, 6, 3, "branch")
    y = n.node("Concat", [y, branch], "concat", axis=1)
    y = n.conv_bn(y, 16, 9, 1, "last", relu=False)
    y = n.node("Sigmoid", [y], "gate_sigmoid")
    y = n.node("GlobalAveragePool", [y], "gap")
    y = n.node("Flatten", [y], "flatten", axis=1)
    w, b = n.init("fc_w", classes, 9), n.init("fc_b", classes)
    return n.model(n.node("Gemm", [y, w, b], "fc", transB=1), classes)


def transposes_between_convolutions(outputs):
    """The transposes that some convolution feeds and that feed some convolution."""
    nodes = nodes_needed(outputs)
    after_conv, before_conv = set(), set()
    for node in nodes:  # inputs first
        if node.op == "conv2d" or any(t.node.id in after_conv for t in node.inputs):
            after_conv.add(node.id)
    for node in reversed(nodes):
        if node.op == "conv2d":
            before_conv.update(t.node.id for t in node.inputs)
        if node.id in before_conv:
            before_conv.update(t.node.id for t in node.inputs)
    return [n for n in nodes if n.op == "transpose" and n.id in after_conv & before_conv]


def transposes(outputs):
    return [n for n in nodes_needed(outputs) if n.op == "transpose"]


def test_the_imported_net_holds_transposes_between_convolutions_before_the_pass():
    m = gc.onnx.load(resnet_like(), device="reference")
    assert len(transposes_between_convolutions(
        optimize(m.function.outputs, excluding=["layout"]).outputs)) > 10


def test_the_optimized_net_keeps_no_transpose_between_its_first_and_last_convolution():
    m = gc.onnx.load(resnet_like(), device="reference")
    optimized = optimize(m.function.outputs).outputs
    assert transposes_between_convolutions(optimized) == []
    # one transpose is left: the image into NHWC (the exit is a reshape of (N, 1, 1, C))
    (entry,) = transposes(optimized)
    assert entry.attrs["perm"] == (0, 2, 3, 1)


@pytest.mark.parametrize("device", ["reference", "cpu"])
def test_the_net_computes_what_it_does_without_the_pass_and_what_onnxruntime_does(device):
    ort = pytest.importorskip("onnxruntime")
    model = resnet_like()
    with_pass = gc.onnx.load(model, device=device)
    without = gc.onnx.load(model, device=device, excluding=["layout"])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for batch in (3, 1):  # one compiled function for every batch size
        x = rng.normal(size=(batch, 3, 19, 17)).astype(np.float32)
        (got,) = with_pass.run({"image": x})
        (plain,) = without.run({"image": x})
        (want,) = session.run(None, {"image": x})
        assert got.shape == want.shape == (batch, 7) and got.dtype == np.float32
        np.testing.assert_allclose(got, plain, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
        assert np.ptp(got) > 1e-3  # random weights: outputs differ, the check means something


def test_extreme_values_pass_through_the_moved_transposes():
    """inf, NaN and -0.0 in the image reach the outputs as they do without the pass: an
    image holding inf or NaN gives NaN (inf meets weights of both signs), others numbers."""
    model = resnet_like()
    x = rng.normal(size=(4, 3, 19, 17)).astype(np.float32)
    x[0, 1, 4, 5], x[1, 2, 10, 3], x[2, 0, 0, 0], x[3, 1] = np.inf, np.nan, -0.0, 3e38
    (got,) = gc.onnx.load(model, device="reference").run({"image": x})
    (plain,) = gc.onnx.load(model, device="reference", excluding=["layout"]).run({"image": x})
    assert np.isnan(got[:2]).all() and np.isfinite(got[2:]).all()
    np.testing.assert_allclose(got, plain, rtol=1e-5, atol=1e-5)


def test_a_transpose_of_two_run_time_dims_and_a_unit_axis_stays_a_transpose(graph):
    """A reshape holds at most one run-time dim, so this transpose, which moves only an axis
    of length 1, is not rewritten to one; the mul still moves above it."""
    x = gc.placeholder(gc.float32, (None, None, 1, 3), name="x")
    y = gc.transpose(x, (2, 0, 1, 3)) * 2.0
    (out,) = optimize([y]).outputs
    assert out.node.op == "transpose" and out.node.inputs[0].node.op == "mul"
    a = rng.normal(size=(2, 5, 1, 3)).astype(np.float32)
    np.testing.assert_array_equal(gc.function([x], y)(a), np.transpose(a, (2, 0, 1, 3)) * 2)
