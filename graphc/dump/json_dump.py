"""The JSON dump: the graph as data, for tools and tests.

Schema (format "graphc-dump", version 1):

  {"format": "graphc-dump", "version": 1,
   "nodes": [{"id": 3,                       the node's position in its graph
              "name": "dense/matmul",
              "op": "matmul",
              "inputs": ["x:0", "dense/W:0"],  "node name:output index" of each input
              "attrs": {"perm": [1, 0]},       printable values, see below
              "outputs": [{"dtype": "float32", "shape": ["x.0", 10]}],
              "source": "train.py:12"}, ...],  the user's line that created the node
   "kernels": ["..."]}                 the optimized stage only: which nodes fused into which
                                       kernel, one line of the fusion summary per item

Nodes come in topological order. Attr values print as JSON: numbers, bools, null and strings
as they are (NaN and infinities as the strings "nan", "inf", "-inf"), tuples as lists, dtypes
and symbolic dims by name, arrays as a short description (the values when there are at most
six). The uid, dtype and shape attrs are left out: the outputs say the dtype and shape. A
symbolic dim in a shape is its name, a string.
"""
import json
import math

from ..ir.dtypes import DType
from ..ir.types import Dim
from .text import nodes_for, shown_attrs

FORMAT = "graphc-dump"
VERSION = 1

_PRINTABLE = {
    float: lambda v: v if math.isfinite(v) else repr(v),
    tuple: lambda v: [printable(x) for x in v],
    DType: lambda v: v.name,
    Dim: lambda v: v.name,
}


def printable(value):
    """An attr value as JSON data (anything without a rule prints as its repr)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    rule = _PRINTABLE.get(type(value), repr)
    return rule(value)


def node_record(node):
    return {"id": node.id, "name": node.name, "op": node.op,
            "inputs": [f"{t.node.name}:{t.index}" for t in node.inputs],
            "attrs": {k: printable(v) for k, v in shown_attrs(node).items()},
            "outputs": [{"dtype": t.dtype.name, "shape": [printable(d) for d in t.shape]}
                        for t in node.outputs],
            "source": node.source}


def to_json(graph, tensors=(), kernels=None):
    doc = {"format": FORMAT, "version": VERSION,
           "nodes": [node_record(node) for node in nodes_for(graph, tensors)]}
    if kernels is not None:
        doc["kernels"] = list(kernels)
    return json.dumps(doc, indent=1, allow_nan=False)


def kernels_json(lines):
    """The kernels stage alone: {"format": "graphc-kernels", "version": 1, "kernels": [...]}."""
    return json.dumps({"format": "graphc-kernels", "version": VERSION, "kernels": list(lines)},
                      indent=1)
