"""Importing is safe: no code runs from a file, external data only from inside the model's
folder (onnx's CVE-2024-27318 and CVE-2024-5187), sizes checked before allocating, and every
refusal is a GraphcError naming the ONNX node, op, domain and opset."""
import os

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import graphc as gc  # noqa: E402
from graphc.onnx import OnnxFormatError, OnnxSecurityError, OnnxUnsupportedError  # noqa: E402


def _add_model(w_tensor, opset=17):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"], name="add")], "g",
                              [x], [y], [w_tensor])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _external(location, length=16, offset=0):
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4])
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", str(offset)), ("length", str(length))):
        e = t.external_data.add()
        e.key, e.value = k, v
    return t


def _save(model, folder):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.onnx"
    path.write_bytes(model.SerializeToString())
    return str(path)


def test_external_data_inside_the_folder_loads(tmp_path):
    w = np.arange(4, dtype=np.float32)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "w.bin").write_bytes(w.tobytes())
    m = gc.onnx.load(_save(_add_model(_external("w.bin")), tmp_path / "m"), device="reference")
    np.testing.assert_array_equal(m.run({"x": np.ones(4, np.float32)})[0], w + 1)


@pytest.mark.parametrize("location", ["/etc/passwd", "../secret.bin", "sub/../../secret.bin",
                                      "C:secret.bin"])
def test_external_data_outside_the_folder_is_refused(tmp_path, location):
    (tmp_path / "secret.bin").write_bytes(b"\0" * 16)
    path = _save(_add_model(_external(location)), tmp_path / "m")
    with pytest.raises(OnnxSecurityError, match="refused|leads out"):
        gc.onnx.load(path)


def test_a_symlink_leading_out_is_refused(tmp_path):
    (tmp_path / "secret.bin").write_bytes(b"\0" * 16)
    path = _save(_add_model(_external("link.bin")), tmp_path / "m")
    os.symlink(tmp_path / "secret.bin", tmp_path / "m" / "link.bin")
    with pytest.raises(OnnxSecurityError, match="symbolic link"):
        gc.onnx.load(path)


def test_external_data_from_bytes_has_no_folder():
    with pytest.raises(OnnxSecurityError, match="not loaded from a file"):
        gc.onnx.load(_add_model(_external("w.bin")).SerializeToString())


@pytest.mark.parametrize("length,offset", [(1 << 40, 0), (16, 1 << 40), (8, 0)])
def test_declared_external_sizes_are_checked_before_reading(tmp_path, length, offset):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "w.bin").write_bytes(b"\0" * 16)
    path = _save(_add_model(_external("w.bin", length, offset)), tmp_path / "m")
    with pytest.raises(OnnxFormatError, match="does not fit"):
        gc.onnx.load(path)


def test_declared_sizes_are_checked_before_allocating():
    huge = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1 << 20, 1 << 20, 1 << 10])
    with pytest.raises(OnnxFormatError, match="more than graphc accepts"):
        gc.onnx.load(_add_model(huge))
    short = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4], raw_data=b"\0" * 8)
    with pytest.raises(OnnxFormatError, match="holds 8 bytes"):
        gc.onnx.load(_add_model(short))
    negative = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[-4])
    with pytest.raises(OnnxFormatError, match="negative"):
        gc.onnx.load(_add_model(negative))


@pytest.mark.parametrize("data", [b"\xff\xff\xff\xff garbage", b"", b"\x0a\x05abc"])
def test_malformed_protobuf(data):
    with pytest.raises(OnnxFormatError, match="not a valid ONNX model"):
        gc.onnx.load(data)
    assert issubclass(OnnxFormatError, gc.GraphcError)


def test_no_code_runs_from_a_file(tmp_path):
    # a pickle that would create a file if unpickled: the loader only parses protobuf
    import pickle

    class Evil:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))
    with pytest.raises(OnnxFormatError):
        gc.onnx.load(pickle.dumps(Evil()))
    assert not (tmp_path / "pwned").exists()


def _one_node(node, opset=17, domain=""):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph([node], "g", [x], [y])
    ops = [helper.make_opsetid("", opset)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    return helper.make_model(graph, opset_imports=ops)


def test_unknown_op_names_node_op_domain_and_opset():
    model = _one_node(helper.make_node("NoSuchOp", ["x"], ["y"], name="mystery"), opset=15)
    with pytest.raises(OnnxUnsupportedError) as err:
        gc.onnx.load(model)
    text = str(err.value)
    assert "'mystery'" in text and "ai.onnx::NoSuchOp" in text and "opset 15" in text
    assert isinstance(err.value, gc.GraphcError)
    assert (err.value.onnx_node, err.value.op_type, err.value.opset) == ("mystery", "NoSuchOp",
                                                                         15)


def test_unknown_domain():
    model = _one_node(helper.make_node("Relu", ["x"], ["y"], name="r", domain="com.evil"),
                      domain="com.evil")
    with pytest.raises(OnnxUnsupportedError, match="com.evil::Relu.*domain 'com.evil'"):
        gc.onnx.load(model)


def test_unsupported_attribute_and_attribute_value():
    model = _one_node(helper.make_node("Relu", ["x"], ["y"], name="r", flavour=3))
    with pytest.raises(OnnxUnsupportedError, match=r"'r' \(ai.onnx::Relu, opset 17\): "
                                                   r"attribute 'flavour'"):
        gc.onnx.load(model)
    model = _one_node(helper.make_node("Pad", ["x", "p"], ["y"], name="p", mode="mirror"))
    model.graph.initializer.append(numpy_helper.from_array(np.zeros(4, np.int64), "p"))
    with pytest.raises(OnnxUnsupportedError, match=r"'p' \(ai.onnx::Pad.*mode 'mirror'"):
        gc.onnx.load(model)


def test_unsupported_dtype_is_named():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT8E4M3FN, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT8E4M3FN, [2])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    with pytest.raises(OnnxUnsupportedError, match="float8e4m3fn"):
        gc.onnx.load(model)
