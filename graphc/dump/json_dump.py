"""The JSON dump: the graph as data, for tools and tests.

Schema (format "graphc-dump", version 2):

  {"format": "graphc-dump", "version": 2,
   "title": null,                            what the dump shows, when the caller says
   "nodes": [{"id": 3,                       the node's position in its graph
              "name": "dense/matmul",
              "op": "matmul",
              "inputs": ["x:0", "dense/W:0"],  "node name:output index" of each input
              "attrs": {"perm": [1, 0]},       printable values, see below
              "outputs": [{"dtype": "float32", "shape": ["x.0", 10]}],
              "source": "train.py:12",         the user's line that created the node
              "kernel": 0,                     id of the kernel computing it; null when no
                                               kernel does (sources) or there are no kernels
              "bodies": {"body": {...}}}, ...]  only on a loop or cond: each body attr (whose
                                               "attrs" entry is the body's name) as
                                               {"name": "scan", "arguments": ["x0:0", ...],
                                                "results": ["tanh:0", ...], "nodes": [records
                                                of the body's nodes, as these, ids and names
                                                local to the body]}
   "kernels": null}                    the input stage; the optimized stage lists its kernel
                                       groups in an order where each comes after those it reads:
     [{"id": 0,
       "kind": "elementwise",          "elementwise", "reduction", "contraction", or the
                                       kind of an op alone in its kernel: "window",
                                       "scatter", "host" or "stateful"
       "nodes": [1, 2, 3],             ids of its nodes, in topological order
       "inputs": [{"tensor": "x:0", "as": "in0", "dtype": "float32", "shape": ["x.0", 784]}],
                                       "as": how the expression names it: in0, in1, ... or,
                                       for a one-element constant, its value ("0.5")
       "outputs": [{"tensor": "y:0", "as": "out", "dtype": ..., "shape": ...}],
                                       "as": out, or out0, out1, ... when it writes several
       "expression": "out = tanh(in0) * sigmoid(in0)",   statements joined by "; "
       "boundaries": [{"producer": "y", "consumer": "assign", "reason": "stateful op"}]},
                                       every edge out of the kernel that fusion stopped at,
                                       and why
      ...]

Nodes come in topological order. Attr values print as JSON: numbers, bools, null and strings
as they are (NaN and infinities as the strings "nan", "inf", "-inf"), tuples as lists, dtypes
and symbolic dims by name, arrays as a short description (the values when there are at most
six). The uid, dtype and shape attrs are left out: the outputs say the dtype and shape. A
symbolic dim in a shape is its name, a string.

The kernels stage alone (`f.dump(stage="kernels", format="json")`) is
{"format": "graphc-kernels", "version": 2, "title": ..., "kernels": [the records above],
 "bodies": [{"node": "loop", "op": "loop", "body": "scan", "kernel": 3, "kernels": [...],
             "bodies": [...]}]}: each compiled loop or cond body, with the node holding it,
the kernel running that node, the body's kernel records and, nested, its own bodies.
"""
import json
import math

from ..ir.dtypes import DType
from ..ir.graph import nodes_needed
from ..ir.subgraph import Body
from ..ir.types import Dim
from .kernels import boundaries_by_group, expression
from .text import nodes_for, shown_attrs

FORMAT = "graphc-dump"
KERNELS_FORMAT = "graphc-kernels"
VERSION = 2

_PRINTABLE = {
    float: lambda v: v if math.isfinite(v) else repr(v),
    tuple: lambda v: [printable(x) for x in v],
    DType: lambda v: v.name,
    Dim: lambda v: v.name,
    Body: lambda v: v.name,
}


def printable(value):
    """An attr value as JSON data (anything without a rule prints as its repr)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    rule = _PRINTABLE.get(type(value), repr)
    return rule(value)


def tensor_type(t):
    return {"dtype": t.dtype.name, "shape": [printable(d) for d in t.shape]}


def _ref(t):
    return f"{t.node.name}:{t.index}"


def node_record(node, partition=None):
    kernel = partition.group_of.get(node.id) if partition is not None else None
    record = {"id": node.id, "name": node.name, "op": node.op,
              "inputs": [_ref(t) for t in node.inputs],
              "attrs": {k: printable(v) for k, v in shown_attrs(node).items()},
              "outputs": [tensor_type(t) for t in node.outputs],
              "source": node.source,
              "kernel": kernel.id if kernel is not None else None}
    bodies = {k: body_record(v) for k, v in node.attrs.items() if isinstance(v, Body)}
    if bodies:
        record["bodies"] = bodies
    return record


def body_record(body):
    """A loop's or cond's body: its name, arguments, results and nodes (no kernels)."""
    return {"name": body.name, "arguments": [_ref(t) for t in body.arguments],
            "results": [_ref(t) for t in body.results],
            "nodes": [node_record(n) for n in
                      nodes_needed(list(body.results) + list(body.arguments))]}


def _tensor_ref(t, ref):
    return {"tensor": f"{t.node.name}:{t.index}", "as": ref, **tensor_type(t)}


def kernel_record(group, boundaries):
    """One fusion group as data; `boundaries` are those whose producer it computes."""
    expr = expression(group)
    return {"id": group.id, "kind": group.kind, "nodes": [n.id for n in group.nodes],
            "inputs": [_tensor_ref(t, ref) for t, ref in expr.inputs],
            "outputs": [_tensor_ref(t, name) for t, name in expr.outputs],
            "expression": expr.text,
            "boundaries": [{"producer": b.producer, "consumer": b.consumer,
                            "reason": b.reason} for b in boundaries]}


def kernel_records(partition, node_ids=None):
    """The records of the groups that compute any of `node_ids` (all groups when None)."""
    leaving = boundaries_by_group(partition)
    return [kernel_record(g, leaving[g.id]) for g in partition.groups
            if node_ids is None or any(n.id in node_ids for n in g.nodes)]


def to_json(graph, tensors=(), partition=None, title=None):
    nodes = nodes_for(graph, tensors)
    kernels = None
    if partition is not None:
        kernels = kernel_records(partition, {n.id for n in nodes})
    doc = {"format": FORMAT, "version": VERSION, "title": title,
           "nodes": [node_record(node, partition) for node in nodes],
           "kernels": kernels}
    return json.dumps(doc, indent=1, allow_nan=False)


def kernels_json(partition, title=None, bodies=()):
    """The kernels stage alone: the kernel records without the node records, and the
    compiled bodies' (body_kernels_record)."""
    return json.dumps({"format": KERNELS_FORMAT, "version": VERSION, "title": title,
                       "kernels": kernel_records(partition),
                       "bodies": [body_kernels_record(b, partition) for b in bodies]},
                      indent=1, allow_nan=False)


def body_kernels_record(b, partition):
    """A compiled body (kernels.BodyKernels) as data: the node holding it and the kernel of
    `partition` that runs that node, its kernel records, and its own bodies, nested."""
    group = partition.group_of.get(b.node.id)
    return {"node": b.node.name, "op": b.node.op, "body": b.body.name,
            "kernel": group.id if group is not None else None,
            "kernels": kernel_records(b.partition) if b.partition is not None else [],
            "bodies": [body_kernels_record(inner, b.partition) for inner in b.bodies]}
