"""The op registry: each op is declared once, with everything about it side by side.

An OpSpec holds
- `infer(*input_types, **attrs)`: output TensorType(s); raises ShapeError/DTypeError with a
  precise message. The same function checks shapes again at run time on concrete types.
- `ref(*arrays, **attrs)`: the numpy reference, the oracle of every test.
- `grad(node, *output_grads)`: input gradients built from other ops (None: no gradient flows
  to that input), or NOT_DIFFERENTIABLE for ops whose outputs carry no gradient.
- `kind`: how the op lowers to kernels: "elementwise", "reduction", "view", "contraction",
  "opaque" (a library call such as conv2d), "source" (placeholder, constant, variable) or
  "stateful" (assign, random).
"""
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from ..errors import GraphcError, GraphMismatchError
from ..ir.graph import Tensor, freeze, get_default_graph
from ..ir.source import user_source
from ..ir.types import TensorType

KINDS = ("elementwise", "reduction", "view", "contraction", "opaque", "source", "stateful")


def NOT_DIFFERENTIABLE(node, *grads):
    """Marker grad: the op's outputs are integer/boolean or piecewise constant."""
    return [None] * len(node.inputs)


@dataclass(frozen=True, eq=False)
class OpSpec:
    name: str
    infer: Callable
    ref: Callable
    grad: Optional[Callable]
    kind: str
    stateful: bool = False
    random: bool = False
    fetch_none: bool = False
    tensor_class: type = Tensor
    doc: str = ""
    extra: dict = field(default_factory=dict)  # lowering details (e.g. scalar expression)

    def __post_init__(self):
        assert self.kind in KINDS, self.kind


REGISTRY = {}


def register(name, *, infer, ref, grad, kind, stateful=False, random=False, fetch_none=False,
             tensor_class=Tensor, doc="", **extra):
    if name in REGISTRY:
        raise ValueError(f"op {name!r} declared twice")
    spec = OpSpec(name, infer, ref, grad, kind, stateful, random, fetch_none, tensor_class, doc,
                  extra)
    REGISTRY[name] = spec
    return spec


def get_spec(name):
    try:
        return REGISTRY[name]
    except KeyError:
        raise GraphcError(f"unknown op {name!r}") from None


class PendingNode:
    """What an error says about a node that failed to build: its would-be name and source."""

    def __init__(self, graph, op, name, source):
        self.op = op
        self.name = "/".join(graph._scopes + [name or op]) if graph._scopes else (name or op)
        self.source = source


def graph_of(values):
    for v in values:
        if isinstance(v, Tensor):
            return v.node.graph
    return get_default_graph()


def call_reference(node, arrays):
    """The numpy reference of `node` on `arrays`; a GraphcError it raises names the node."""
    try:
        with np.errstate(all="ignore"):
            return node.spec.ref(*arrays, **node.attrs)
    except GraphcError as err:
        if err.node is None:
            raise type(err)(err.detail, node) from None
        raise


def apply(op, inputs, name=None, **attrs):
    """Add op(inputs, attrs) to the inputs' graph; returns its output tensor (or a tuple)."""
    spec = get_spec(op)
    graph = graph_of(inputs)
    attrs = {k: freeze(v) for k, v in attrs.items()}
    source = user_source()
    try:
        for t in inputs:
            if t.node.graph is not graph:
                raise GraphMismatchError(
                    f"input '{t.name}' belongs to another graph than '{inputs[0].name}'; "
                    "tensors of different graphs cannot be combined (build them under one "
                    "`with graph.as_default():`)")
        out = spec.infer(*[t.type for t in inputs], **attrs)
    except GraphcError as err:
        if err.node is None:
            raise type(err)(err.detail, PendingNode(graph, op, name, source)) from None
        raise
    out_types = (out,) if isinstance(out, TensorType) else tuple(out)
    node = graph.add_node(spec, inputs, attrs, out_types, name, source)
    return node.outputs[0] if isinstance(out, TensorType) else node.outputs
