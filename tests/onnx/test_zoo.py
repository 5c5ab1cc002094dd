"""The nine "light" model-zoo networks inside the onnx package import, run and match their
stored outputs (inputs as onnx's runner makes them: arange(n)/n). The cheap ones run in the
suite on device reference; GRAPHC_ONNX_ZOO=1 runs all nine (GRAPHC_ONNX_ZOO=cpu: on cpu)."""
import collections
import os

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import numpy_helper  # noqa: E402

import graphc as gc  # noqa: E402

LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
CHEAP = ["squeezenet", "bvlc_alexnet", "inception_v1"]
ALL = ["bvlc_alexnet", "densenet121", "inception_v1", "inception_v2", "resnet50", "shufflenet",
       "squeezenet", "vgg19", "zfnet512"]
ZOO = os.environ.get("GRAPHC_ONNX_ZOO", "")


def _input(model, name):
    (vi,) = [i for i in model.graph.input if i.name == name]
    shape = tuple(d.dim_value or 1 for d in vi.type.tensor_type.shape.dim)
    n = int(np.prod(shape))
    return (np.arange(n).reshape(shape) / n).astype(np.float32)


@pytest.mark.parametrize("name", ALL)
def test_light_network_matches_its_stored_output(name):
    if name not in CHEAP and not ZOO:
        pytest.skip("set GRAPHC_ONNX_ZOO=1 to run every light network")
    device = "cpu" if ZOO == "cpu" else "reference"
    path = os.path.join(LIGHT, f"light_{name}.onnx")
    m = gc.onnx.load(path, device=device)
    (out,) = m.run({m.input_names[0]: _input(onnx.load(path), m.input_names[0])})
    want = numpy_helper.to_array(onnx.load_tensor(
        os.path.join(LIGHT, f"light_{name}_output_0.pb")))
    assert out.shape == want.shape and out.dtype == want.dtype
    np.testing.assert_allclose(out, want, rtol=1e-3, atol=1e-7)


# How many transposes each network's optimized graph keeps: the image into NHWC, and where
# the network flattens an NCHW feature map into a matrix product, one back to NCHW before it.
TRANSPOSES_LEFT = {"resnet50": 1, "densenet121": 1, "inception_v1": 1, "inception_v2": 1,
                   "squeezenet": 1,
                   "bvlc_alexnet": 2, "vgg19": 2, "zfnet512": 2}


@pytest.mark.parametrize("name", sorted(TRANSPOSES_LEFT))
def test_the_layout_pass_leaves_no_transpose_between_convolutions(name):
    from graphc.passes import optimize
    from tests.passes.test_layout import transposes, transposes_between_convolutions
    m = gc.onnx.load(os.path.join(LIGHT, f"light_{name}.onnx"), device="reference")
    assert len(transposes_between_convolutions(m.function.outputs)) > 0
    optimized = optimize(m.function.outputs).outputs
    assert transposes_between_convolutions(optimized) == []
    assert len(transposes(optimized)) == TRANSPOSES_LEFT[name]


def test_shufflenets_channel_shuffles_become_one_nhwc_transpose_each():
    from graphc.passes import optimize
    from tests.passes.test_layout import transposes
    m = gc.onnx.load(os.path.join(LIGHT, "light_shufflenet.onnx"), device="reference")
    perms = collections.Counter(n.attrs["perm"] for n in transposes(
        optimize(m.function.outputs).outputs))
    # the image into NHWC, one NHWC transpose per channel shuffle, and the groups' axis
    # moved before and after each of the 32 grouped 1x1 convolutions' batched products
    assert perms == {(0, 2, 3, 1): 1, (0, 1, 2, 4, 3): 16, (0, 2, 1, 3): 64}
