"""ONNX ModelProto -> graphc Graph: placeholders for the inputs, constants for the
initializers, and each node through its converter (converters.py, one table keyed by op type).

Values known at load time (initializers, Constant nodes, Shape of a tensor of static shape and
whatever is computed from those only) are folded with graphc's own numpy references, so shape
computations (Shape -> Gather -> Concat -> Reshape) become plain attributes.
"""
import collections
import re

import numpy as np

from ..ir.graph import Graph, Tensor
from ..ops.registry import call_reference
from ..ops.sources import constant, placeholder
from .errors import OnnxError, OnnxFormatError, OnnxUnsupportedError
from . import shapes
from .proto import gc_dtype, to_array

DEFAULT_DOMAINS = ("", "ai.onnx")
FOLD_LIMIT = 1 << 16  # results of constants alone up to this many elements become constants
MAX_DEPTH = 16  # subgraphs (If/Loop/Scan bodies) nested deeper than this are refused


def _attr_value(attr, base_dir, where):
    import onnx
    t = attr.type
    A = onnx.AttributeProto
    if t == A.FLOAT:
        return float(attr.f)
    if t == A.INT:
        return int(attr.i)
    if t == A.STRING:
        return attr.s.decode("utf-8", "replace")
    if t == A.FLOATS:
        return [float(v) for v in attr.floats]
    if t == A.INTS:
        return [int(v) for v in attr.ints]
    if t == A.STRINGS:
        return [s.decode("utf-8", "replace") for s in attr.strings]
    if t == A.TENSOR:
        return to_array(attr.t, base_dir, f"{where} attribute {attr.name!r}")
    if t == A.GRAPH:  # a body: converted by its op's converter (Importer.subgraph)
        return attr.g
    raise OnnxUnsupportedError(f"attribute {attr.name!r} of type "
                               f"{A.AttributeType.Name(t)} is not supported")


def _safe_name(name, fallback):
    cleaned = re.sub(r"[^A-Za-z0-9_.]", "_", name or "")
    return cleaned or fallback


class Node:
    """What a converter sees of one ONNX node: its inputs as graphc tensors (None where
    omitted), its attributes, the opset of its domain, and folding of static values."""

    def __init__(self, importer, proto, opset, attrs):
        self.importer, self.proto, self.opset, self.attrs = importer, proto, opset, attrs
        self.op_type, self.name = proto.op_type, proto.name or proto.output[0]
        self.inputs = [importer.values[n] if n else None for n in proto.input]
        self.n_outputs = len(proto.output)

    def input(self, i):
        return self.inputs[i] if i < len(self.inputs) else None

    def attr(self, name, default=None):
        return self.attrs.get(name, default)

    def static(self, i):
        """The value of input i if it is known at load time, else None."""
        t = self.input(i)
        return None if t is None or isinstance(t, shapes.Dims) else self.importer.fold(t)

    def need_static(self, i, what):
        if isinstance(self.input(i), shapes.Dims):
            raise self.unsupported(f"{what} (input {i}) must be known at load time; it holds "
                                   "run-time dims")
        value = self.static(i)
        if value is None:
            raise NeedsValue(self.importer.inputs_behind(self.input(i)),
                             f"{what} (input {i}) must be known at load time; a value "
                             "computed at run time is not supported", self.name, self.op_type,
                             self.proto.domain, self.opset)
        return value

    def unsupported(self, message):
        return OnnxUnsupportedError(message, self.name, self.op_type, self.proto.domain,
                                    self.opset)


def _on_dims(node):
    """What computes `node` where some of its inputs are run-time dims (shapes.py): the
    op's function on Dims, or None for its converter (which reads them, or sees no Dims)."""
    held = [i for i, x in enumerate(node.inputs) if isinstance(x, shapes.Dims)]
    if not held:
        return None
    accepts, fn = shapes.USES.get(node.op_type, ((), None))
    if accepts is not None and not set(held) <= set(accepts):
        raise node.unsupported(f"input {held[0]} is a shape of run-time dims, which this op "
                               "does not take")
    return fn


class NeedsValue(OnnxUnsupportedError):
    """A converter needs at load time a value computed from graph inputs (`names`)."""

    def __init__(self, names, *args):
        self.names = names
        super().__init__(*args)


class Importer:
    """known: {graph input name: array} of graph inputs to bind as constants."""

    def __init__(self, model, base_dir=None, known=None):
        self.model, self.base_dir = model, base_dir
        self.known = known or {}
        self._input_names = {}  # placeholder node -> ONNX input name
        self.opsets = {}
        for imp in model.opset_import:
            self.opsets[imp.domain or ""] = imp.version
        self.values = {}  # ONNX value name -> graphc Tensor
        self._folded = {}  # tensor -> numpy value or None
        self.depth = 0  # how many bodies (subgraphs) enclose the graph being converted

    def subgraph(self, graph_proto, bindings, where):
        """Convert an If/Loop/Scan body (a GraphProto) inside the body being built: its inputs
        are `bindings` (graphc tensors, in order), its names see the enclosing scopes' values
        (outer tensors the body uses become captures of the body being built), its nodes go
        through the same converters and checks as the top graph. Returns its output tensors.
        Errors inside it name the body node and say which outer node holds it (`where`)."""
        from . import converters
        if self.depth + 1 > MAX_DEPTH:
            raise OnnxFormatError(f"{where}: subgraphs are nested more than {MAX_DEPTH} deep")
        if len(graph_proto.input) != len(bindings):
            raise OnnxFormatError(f"{where}: the body declares {len(graph_proto.input)} inputs "
                                  f"but the op gives it {len(bindings)}")
        child = Importer.__new__(Importer)
        child.__dict__.update(self.__dict__)
        child.depth = self.depth + 1
        child.values = collections.ChainMap({}, self.values)
        try:
            for init in graph_proto.initializer:
                arr = to_array(init, self.base_dir, f"{where}: initializer {init.name!r}")
                child.values.maps[0][init.name] = constant(arr, dtype=gc_dtype(init.data_type))
            for vi, t in zip(graph_proto.input, bindings):
                tt = vi.type.tensor_type if vi.type.HasField("tensor_type") else None
                if vi.type.ListFields() and tt is None:
                    raise OnnxUnsupportedError(f"body input {vi.name!r} is not a tensor "
                                               "(sequences, maps and optionals are not "
                                               "supported)")
                if not vi.name:
                    raise OnnxFormatError("a body input has no name")
                child.values.maps[0][vi.name] = t
            for proto in graph_proto.node:
                child.convert(proto, converters)
            outs = []
            for vi in graph_proto.output:
                if vi.name not in child.values:
                    raise OnnxFormatError(f"body output {vi.name!r} is computed by no node")
                outs.append(child.values[vi.name])
        except NeedsValue:
            raise
        except OnnxError as err:
            raise type(err)(f"{where}: {err}") from None
        return outs

    def inputs_behind(self, t):
        """The ONNX names of the graph inputs that t is computed from."""
        seen, stack, names = set(), [t.node], set()
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            if node in self._input_names:
                names.add(self._input_names[node])
            stack.extend(i.node for i in node.inputs)
        return names

    def fold(self, t):
        """t's value at load time, from constants through the ops' references; None when it
        depends on an input, a variable or random draws."""
        key = (id(t.node), t.index)
        if key in self._folded:
            return self._folded[key]
        node = t.node
        value = None
        if node.op == "constant":
            value = node.attrs["value"].array
        elif not node.spec.stateful and node.op not in ("loop", "cond") and node.inputs:
            arrays = [self.fold(i) for i in node.inputs]
            if all(a is not None for a in arrays):
                out = call_reference(node, arrays)
                value = np.asarray(out[t.index] if len(node.outputs) > 1 else out)
        self._folded[key] = value
        return value

    def build(self):
        from . import converters
        g = self.model.graph
        graph = Graph()
        with graph.as_default():
            for init in g.initializer:
                arr = to_array(init, self.base_dir, f"initializer {init.name!r}")
                self.values[init.name] = constant(arr, dtype=gc_dtype(init.data_type))
            init_names = {i.name for i in g.initializer}
            inputs = []
            for k, vi in enumerate(g.input):
                if vi.name in init_names:
                    continue
                tt = vi.type.tensor_type if vi.type.HasField("tensor_type") else None
                if tt is None:
                    raise OnnxUnsupportedError(f"graph input {vi.name!r} is not a tensor "
                                               "(sequences, maps and optionals are not "
                                               "supported)")
                if vi.name in self.known:
                    arr = np.asarray(self.known[vi.name])
                    self.values[vi.name] = constant(arr, dtype=gc_dtype(tt.elem_type))
                    continue
                shape = []
                for d in tt.shape.dim:
                    shape.append(d.dim_value if d.HasField("dim_value") else None)
                ph = placeholder(gc_dtype(tt.elem_type, f"graph input {vi.name!r}"), shape,
                                 name=_safe_name(vi.name, f"input{k}"))
                self.values[vi.name] = ph
                self._input_names[ph.node] = vi.name
                inputs.append((vi.name, ph))
            for proto in g.node:
                self.convert(proto, converters)
            outputs = []
            for vi in g.output:
                if vi.name not in self.values:
                    raise OnnxFormatError(f"graph output {vi.name!r} is computed by no node")
                if isinstance(self.values[vi.name], shapes.Dims):
                    raise OnnxUnsupportedError(f"graph output {vi.name!r} is a shape of "
                                               "run-time dims, which graphc cannot output")
                outputs.append((vi.name, self.values[vi.name]))
        return graph, inputs, outputs

    def convert(self, proto, converters):
        domain = proto.domain or ""
        where = f"ONNX node {proto.name or proto.output[0]!r}"
        if domain not in DEFAULT_DOMAINS:
            raise OnnxUnsupportedError(f"domain {domain!r} is not supported", proto.name,
                                       proto.op_type, domain, self.opsets.get(domain))
        opset = self.opsets.get("", self.opsets.get("ai.onnx", 0))
        entry = converters.CONVERTERS.get(proto.op_type)
        if entry is None:
            raise OnnxUnsupportedError("op type is not supported", proto.name or
                                       proto.output[0], proto.op_type, domain, opset)
        for name in proto.input:
            if name and name not in self.values:
                raise OnnxFormatError(f"input {name!r} is computed by no earlier node",
                                      proto.name, proto.op_type, domain, opset)
        attrs = {}
        for a in proto.attribute:
            if a.name not in entry.attrs:
                raise OnnxUnsupportedError(f"attribute {a.name!r} is not supported",
                                           proto.name or proto.output[0], proto.op_type,
                                           domain, opset)
            try:
                attrs[a.name] = _attr_value(a, self.base_dir, where)
            except OnnxError as err:
                raise type(err)(err.detail, proto.name or proto.output[0], proto.op_type,
                                domain, opset) from None
        node = Node(self, proto, opset, attrs)
        fn = _on_dims(node) or entry.fn
        try:
            outs = fn(node)
        except NeedsValue:
            raise
        except OnnxError as err:
            if err.op_type is None:
                raise type(err)(err.detail, node.name, node.op_type, domain, opset) from None
            raise
        except Exception as err:  # a graphc error building the node: say which ONNX node
            raise OnnxUnsupportedError(f"{type(err).__name__}: {err}", node.name, node.op_type,
                                       domain, opset) from err
        if isinstance(outs, (Tensor, shapes.Dims)):
            outs = [outs]
        for name, t in zip(proto.output, outs):
            if name:
                self.values[name] = t.value() if isinstance(t, shapes.Dims) else \
                    self._folded_constant(t)

    def _folded_constant(self, t):
        """t as a constant when its value is known now and small (a shape, axes, an index)."""
        if t.node.op == "constant" or not all(i.node.op == "constant" for i in t.node.inputs):
            return t
        if not all(isinstance(d, int) for d in t.shape) or np.prod(t.shape) > FOLD_LIMIT:
            return t
        value = self.fold(t)
        return t if value is None else constant(value.astype(t.dtype.np), dtype=t.dtype)
