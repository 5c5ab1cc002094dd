"""The op registry: each op is declared once, with everything about it side by side.

`register(name, **fields)` declares an op as an OpSpec, a frozen record that every stage reads:
autodiff, the passes, fusion, lowering, the runtime and the dumps ask the spec, never a table
of op names of their own. Adding an op is one `register` call (plus a lowering rule where its
loop nest has a shape no rule builds yet). The fields:

What it computes
- `infer(*input_types, **attrs)`: output TensorType(s); raises ShapeError/DTypeError with a
  precise message. The same function checks shapes again at run time on concrete types.
- `ref(*arrays, **attrs)`: the numpy reference, the oracle of every test.
- `grad(node, *output_grads)`: input gradients built from other ops (None: no gradient flows
  to that input), or NOT_DIFFERENTIABLE for ops whose outputs carry no gradient; None: asking
  for one is a GradientError.
- `doc`: one line on what it computes; `tensor_class`: the class of its outputs (Variable for
  variables, else Tensor).

How it becomes kernels
- `kind`: what sort of computation it is, one of KINDS below. The kind fixes its `role` in
  fusion (a field derived from the kind, not declared) and which of the two lowering fields
  below the op declares (a check at registration holds every op to it).
- `lower(k, node, idx)`: the per-element rule (kernels/lowering_rules.py, pool_rules.py): the
  value of the output at index `idx`, built from its inputs' values at the indices it asks the
  emitter `k` for; multi-output ops (split) also get the output number.
- `lower_group(group, slots, name)`: the whole-group lowering of a contraction or scatter
  (kernels/matmul_rules.py, conv_rules.py, scatter.py): the kernels of its fusion group.
- `shape_only`: the input positions read only for their shape (broadcast_like's `like`): no
  data moves along those edges, so fusion gives no group such an input to read.
- `reduced_axes(node)`: the axes a reduction combines; by default its `axes` attr, else its
  `axis` attr, else every axis (sum_to_like and sparse_softmax_cross_entropy declare theirs).
- `view`: for a view, how its elements relate to its input's: "linear" (the same elements in
  the same order, as reshape), "broadcast" (its first input stretched by numpy broadcasting)
  or "reorder" (anything else: transpose, slices, gathers). Fusion computes whatever feeds a
  reordering view at any index, so no reduction or contraction may feed one in a group.
- `pieces(node)`: for a view that lays its inputs side by side (concat), the axis along which
  they lie where every input has one shape, else None. A group that starts at such a node runs
  over one input's shape and stores each input at its offset (lower.py), so the inputs' own
  computations fuse into it instead of ending in buffers that a select chain reads back.

What the passes, the runtime and the dumps must know
- `commutative`: its two operands may swap (canonicalization moves constants to the right).
- `permuted(node, perm)`: how the op commutes with a transpose: `(attrs, out_perm)` such that
  the op with `attrs` over its inputs permuted back (each input `t` as `transpose(t,
  argsort(perm))`), transposed by `out_perm`, equals the node over inputs transposed by `perm`;
  None where it does not commute. A third item, where given, is a transpose of the first
  input's permuted-back value that the op needs first (a reshape regroups axes that the
  transpose keeps together but reorders). The layout pass (passes/layout.py) moves
  transposes through such ops. Elementwise ops commute with every transpose unless they declare otherwise (see
  `through_transpose`).
- `uniform_value(node)`: the one value every element of its output has, when its attrs tell
  (a constant's uniform array, fill_like); None where they do not. Rewrite patterns match
  constants through it, and the dumps print such a node as a number.
- `stateful`: its value depends on or changes session state (placeholders, variables,
  assignments, random draws): it has a `uid` attr of its own, so it is never merged with an
  equal-looking node, and a graph file stores it as a fresh identity to give on loading.
- `random`: a stateful op that draws anew each run from the session's generator for the node.
- `fetch_none`: fetching it gives None (gc.group: it runs its inputs for their effect).
- `value_shaped`: the length of some output dim is known only once the op ran (a loop run
  until a condition, or for a number of steps held in a tensor): its inference gives such a
  dim as a Dim even on concrete inputs, and the runtime takes the size from the value.
"""
from dataclasses import dataclass, field
from typing import Callable, Container, NamedTuple, Optional

import numpy as np

from ..errors import GraphcError, GraphMismatchError
from ..ir.graph import Tensor, freeze, get_default_graph
from ..ir.subgraph import active_builder
from ..ir.source import user_source
from ..ir.types import TensorType


class Kind(NamedTuple):
    role: Optional[str]  # in fusion: "pointwise" (computed at any index of a loop nest),
    # "reduction" or "contraction" (the anchor of a group), "alone" (a group of its own) or
    # None (a buffer no kernel computes)
    lowering: Optional[str]  # the field that lowers it: "lower", "lower_group", or None (no
    # kernel: the runtime resolves it or runs its reference)


KINDS = {
    # each output element from its inputs' elements at its index (numpy broadcasting)
    "elementwise": Kind("pointwise", "lower"),
    # each output element is one input element (or a constant): see `view`
    "view": Kind("pointwise", "lower"),
    # combines elements along axes (sum, argmax; softmax, a row op)
    "reduction": Kind("reduction", "lower"),
    # sums products of two operands' elements (matmul, conv2d and its backprops): the group's
    # other nodes become its prologues (computed as operands) and its epilogue
    "contraction": Kind("contraction", "lower_group"),
    # each output element from a window of its input (pools): a loop nest of its own
    "window": Kind("alone", "lower"),
    # adds its input's elements at positions other tensors give (gather_grad)
    "scatter": Kind("alone", "lower_group"),
    # no kernel: runs through its numpy reference between native steps (prod_of_others)
    "host": Kind("alone", None),
    # reads or changes session state (assign, group, random draws)
    "stateful": Kind("alone", None),
    # a buffer: placeholder, constant, variable
    "source": Kind(None, None),
}
VIEWS = ("linear", "broadcast", "reorder")


def NOT_DIFFERENTIABLE(node, *grads):
    """Marker grad: the op's outputs are integer/boolean or piecewise constant."""
    return [None] * len(node.inputs)


def attr_axes(node):
    """The axes of a reduction's `axes` attr, else of its `axis` attr, else every axis."""
    if "axes" in node.attrs:
        return node.attrs["axes"]
    if "axis" in node.attrs:
        return (node.attrs["axis"],)
    return range(node.inputs[0].rank)


def pieces_axis(node):
    """The axis along which node lays inputs of one shape side by side (OpSpec.pieces), or
    None."""
    return node.spec.pieces(node) if node.spec.pieces is not None else None


def through_transpose(node, perm):
    """(attrs, out_perm) of node moved past a transpose of its inputs by `perm` (see
    OpSpec.permuted), or None where it does not commute."""
    if node.spec.permuted is not None:
        return node.spec.permuted(node, perm)
    return (node.attrs, tuple(perm)) if node.spec.kind == "elementwise" else None


def inverse_permutation(perm):
    return tuple(int(i) for i in np.argsort(perm))


def permuted_axes(axes, perm):
    """The axes of a tensor transposed by `perm` as axes of the tensor before it, in order."""
    return tuple(sorted(perm[a] for a in axes))


def does_not_commute(node, perm):
    """OpSpec.permuted of an elementwise op that moves axes (one_hot adds one)."""
    return None


@dataclass(frozen=True, eq=False, kw_only=True)
class OpSpec:
    name: str
    infer: Callable
    ref: Callable
    grad: Optional[Callable]
    doc: str = ""
    tensor_class: type = Tensor
    kind: str
    role: Optional[str] = field(init=False)
    lower: Optional[Callable] = None
    lower_group: Optional[Callable] = None
    shape_only: Container[int] = ()
    reduced_axes: Callable = attr_axes
    view: Optional[str] = None
    pieces: Optional[Callable] = None
    commutative: bool = False
    permuted: Optional[Callable] = None
    uniform_value: Optional[Callable] = None
    stateful: bool = False
    random: bool = False
    fetch_none: bool = False
    value_shaped: bool = False

    def __post_init__(self):
        kind = KINDS[self.kind]
        object.__setattr__(self, "role", kind.role)
        for lowering in ("lower", "lower_group"):
            assert (getattr(self, lowering) is not None) == (kind.lowering == lowering), (
                f"op {self.name!r} of kind {self.kind!r} declares "
                f"{kind.lowering or 'no lowering'}")
        assert (self.view in VIEWS) if self.kind == "view" else self.view is None, self.name
        assert self.stateful or not self.random, self.name


REGISTRY = {}


def register(name, **fields):
    """Declare op `name` with the OpSpec `fields` (see the module's doc)."""
    if name in REGISTRY:
        raise ValueError(f"op {name!r} declared twice")
    spec = OpSpec(name=name, **fields)
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
    builder = active_builder()
    if builder is not None:  # building a loop or branch body: outer tensors become arguments
        if spec.random and not attrs.get("window"):
            if builder.draws is not None:
                return builder.draw(op, inputs[0].shape if inputs else attrs["shape"], attrs)
            from .body_draws import draw_in_body
            return draw_in_body(builder, op, inputs, name, attrs)
        if spec.stateful:
            raise GraphcError(
                f"{op} cannot be used inside a loop or branch body (variables, placeholders, "
                "assignments and global-batch draws are not supported there); create it "
                "outside and use it inside",
                PendingNode(builder.graph, op, name, user_source()))
        inputs = [builder.capture(t) for t in inputs]
        graph = builder.graph
    else:
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
