"""The errors of ONNX import: each names the ONNX node, its op, domain and opset."""
from ..errors import GraphcError


class OnnxError(GraphcError, ValueError):
    """A model graphc cannot import: a malformed or unsafe file, or a node it cannot convert."""

    def __init__(self, message, onnx_node=None, op=None, domain=None, opset=None):
        self.onnx_node, self.op_type, self.domain, self.opset = onnx_node, op, domain, opset
        if op is not None:
            where = f"ONNX node {onnx_node!r} ({domain or 'ai.onnx'}::{op}, opset {opset})"
            message = f"{where}: {message}"
        super().__init__(message)


class OnnxFormatError(OnnxError):
    """The bytes are not a valid ONNX model, or one that declares impossible sizes."""


class OnnxSecurityError(OnnxError):
    """External data that would be read from outside the model's own folder."""


class OnnxUnsupportedError(OnnxError):
    """An op, domain, attribute, attribute value or dtype that graphc does not import."""


class OnnxExportError(OnnxError):
    """A graphc graph that cannot be exported to ONNX: names the graphc node and op."""

    def __init__(self, message, node=None):
        self.onnx_node = self.op_type = self.domain = self.opset = None
        GraphcError.__init__(self, message, node)
