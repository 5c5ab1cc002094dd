"""ONNX import and export: `gc.onnx.load(model)` gives an OnnxModel that runs an ONNX model
through graphc's compiler; `graphc.onnx.backend` is the onnx.backend Backend over it;
`gc.onnx.export(path, fetches)` writes a graphc graph as an ONNX model (exporter.py).

Like graphc/__init__.py, this entry point compiles through the runtime (gc.function); the
converter table and the importer (converters.py, importer.py, proto.py) are core modules.
"""
import os

from .errors import (OnnxError, OnnxExportError, OnnxFormatError, OnnxSecurityError,
                     OnnxUnsupportedError)
from . import exporter
from .importer import Importer, NeedsValue

__all__ = ["load", "export", "OnnxModel", "OnnxError", "OnnxExportError", "OnnxFormatError",
           "OnnxSecurityError", "OnnxUnsupportedError"]

def export(path, fetches, inputs=None, session=None, opset=None, input_names=None,
           output_names=None, graph_name="graphc"):
    """Write the ONNX model of `fetches` to `path` atomically (exporter.export); variables take
    `session`'s values, by default those of the fetches' graph's default session."""
    if session is None:
        from ..ir.graph import Tensor
        from ..runtime import get_default_session
        first = fetches if isinstance(fetches, Tensor) else next(iter(fetches), None)
        if isinstance(first, Tensor):
            session = get_default_session(first.graph)
    return exporter.export(path, fetches, inputs, session, opset, input_names, output_names,
                           graph_name)


MAX_FILE_BYTES = 1 << 31  # protobuf's own limit for one message


class OnnxModel:
    """An imported ONNX model: input_names, output_names, run({name: array}) -> [arrays],
    function (the compiled gc.function), graph (the graphc Graph).

    Where a shape, axes, pads or a count comes from a graph input (not an initializer), that
    input is bound at run time: the model compiles once per distinct value of such inputs
    (`bound_inputs` names them; `function` and `graph` are then those of the latest run)."""

    def __init__(self, model, base_dir=None, device=None, **options):
        self.model, self.base_dir, self.device, self.options = model, base_dir, device, options
        self.bound_inputs = set()
        self._compiled = {}  # values of the bound inputs -> (graph, inputs, outputs, function)
        try:
            compiled = self._compile({})
        except NeedsValue as err:
            if not err.names:
                raise
            self.bound_inputs = set(err.names)  # compiled at the first run
            self.input_names, self.output_names = self._declared_names()
            self.function = self.graph = None
        else:
            self._compiled[()] = compiled
            self._use(compiled)

    def _declared_names(self):
        g = self.model.graph
        inits = {i.name for i in g.initializer}
        return [i.name for i in g.input if i.name not in inits], [o.name for o in g.output]

    def _compile(self, known):
        from graphc.runtime import function
        graph, inputs, outputs = Importer(self.model, self.base_dir, known).build()
        fn = function([t for _, t in inputs], [t for _, t in outputs], device=self.device,
                      **self.options)
        return graph, inputs, outputs, fn

    def _use(self, compiled):
        self.graph, inputs, outputs, self.function = compiled
        if not self.bound_inputs:
            self.input_names = [name for name, _ in inputs]
            self.output_names = [name for name, _ in outputs]
        self._fed = [name for name, _ in inputs]

    def run(self, feeds):
        """Output arrays, in output order, for {input name: array} (a list in input order
        is accepted too)."""
        import numpy as np
        if not isinstance(feeds, dict):
            feeds = dict(zip(self.input_names, feeds))
        missing = [n for n in self.input_names if n not in feeds]
        if missing:
            raise OnnxError(f"missing inputs {missing}; the model takes {self.input_names}")
        if self.bound_inputs:
            while True:
                known = {n: np.asarray(feeds[n]) for n in sorted(self.bound_inputs)}
                key = tuple((n, a.dtype.str, a.shape, a.tobytes()) for n, a in known.items())
                try:
                    if key not in self._compiled:
                        self._compiled[key] = self._compile(known)
                    break
                except NeedsValue as err:
                    if not err.names or err.names <= self.bound_inputs:
                        raise
                    self.bound_inputs |= err.names
            self._use(self._compiled[key])
        return list(self.function(*[feeds[n] for n in self._fed]))


def read_model(source):
    """(ModelProto, the folder its external data may come from) from a path, bytes or
    ModelProto; the file is parsed as a protobuf, never unpickled or run."""
    from .proto import parse_model
    if isinstance(source, (bytes, bytearray, memoryview)):
        return parse_model(source), None
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        size = os.path.getsize(path)
        if size > MAX_FILE_BYTES:
            raise OnnxFormatError(f"{path}: {size} bytes is more than a protobuf may hold")
        with open(path, "rb") as f:
            return parse_model(f.read()), os.path.dirname(os.path.abspath(path))
    if type(source).__name__ == "ModelProto":
        return source, None
    raise OnnxError(f"gc.onnx.load takes a path, bytes or an onnx.ModelProto, got "
                    f"{type(source).__name__}")


def load(source, device=None, **options):
    """Import an ONNX model (path, bytes or ModelProto) and compile it for `device` (None:
    graphc's default). Options go to gc.function (optimize=..., ...)."""
    model, base_dir = read_model(source)
    return OnnxModel(model, base_dir, device=device, **options)
