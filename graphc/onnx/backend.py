"""graphc as an onnx.backend.base.Backend: prepare(model, device) -> a BackendRep whose
run(inputs) returns the outputs; run_node runs one NodeProto. Devices: "CPU" (graphc's "cpu"),
"CUDA" (graphc's "cuda"); graphc's own names ("cpu", "cuda", "reference") are accepted too."""
import numpy as np
from onnx import helper
from onnx.backend.base import Backend, BackendRep, namedtupledict

from . import OnnxModel, read_model

DEVICES = {"CPU": "cpu", "CUDA": "cuda"}


def _device(device):
    return DEVICES.get(str(device).upper().split(":")[0], device) if device else "cpu"


class GraphcRep(BackendRep):
    def __init__(self, model):
        self.model = model

    def run(self, inputs, **kwargs):
        if isinstance(inputs, dict):
            feeds = inputs
        else:
            if isinstance(inputs, np.ndarray):
                inputs = [inputs]
            feeds = dict(zip(self.model.input_names, inputs))
        outs = self.model.run(feeds)
        return namedtupledict("Outputs", self.model.output_names)(*outs)


class GraphcBackend(Backend):
    @classmethod
    def is_compatible(cls, model, device="CPU", **kwargs):
        return True

    @classmethod
    def prepare(cls, model, device="CPU", **kwargs):
        proto, base_dir = read_model(model)
        return GraphcRep(OnnxModel(proto, base_dir, device=_device(device), **kwargs))

    @classmethod
    def run_model(cls, model, inputs, device="CPU", **kwargs):
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(cls, node, inputs, device="CPU", outputs_info=None, **kwargs):
        from .proto import ONNX_OF
        inputs = [np.asarray(x) for x in inputs]
        names = [n for n in node.input if n]
        graph_inputs = [helper.make_tensor_value_info(n, ONNX_OF[np.dtype(x.dtype).name],
                                                      x.shape)
                        for n, x in zip(names, inputs)]
        graph_outputs = [helper.make_empty_tensor_value_info(n) for n in node.output if n]
        graph = helper.make_graph([node], "run_node", graph_inputs, graph_outputs)
        opset = kwargs.pop("opset_version", None)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid(
            node.domain or "", opset or helper.VERSION_TABLE[-1][2])])
        return cls.run_model(model, inputs, device, **kwargs)

    @classmethod
    def supports_device(cls, device):
        return str(device).upper().split(":")[0] in ("CPU", "CUDA", "REFERENCE")


prepare = GraphcBackend.prepare
run_model = GraphcBackend.run_model
run_node = GraphcBackend.run_node
supports_device = GraphcBackend.supports_device
