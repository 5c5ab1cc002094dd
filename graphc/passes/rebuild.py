"""Copying the part of a graph that outputs need into a new graph, node by node.

Every pass that changes a graph builds a new one this way: nodes are immutable, and copying
only what the outputs reach removes dead code on the way. A hook may replace each copied tensor
(the rewrite engine). A pass with nothing to change returns the graph it was given (see
`holds_only_needed`): copying 20,000 nodes costs a tenth of a second.
"""
from ..errors import GraphcError
from ..ir.graph import Graph, nodes_needed
from ..ir.types import TensorType


reachable = nodes_needed


def holds_only_needed(outputs):
    """Whether the outputs' graph holds nothing but what they need: copying it as it is would
    give the same graph, so a pass that finds nothing to change may return it instead."""
    return not outputs or len(reachable(outputs)) == len(outputs[0].graph.nodes)


def copy_node(new_graph, node, inputs, check_types=False, attrs=None):
    """`node` re-created in `new_graph` over `inputs`, keeping its name, attrs (or taking
    `attrs`, which must give it the same output types: a loop over an optimized body) and
    source."""
    same_inputs = all(a.type == b.type for a, b in zip(inputs, node.inputs))
    attrs = node.attrs if attrs is None else attrs
    if same_inputs and not check_types:
        out_types = [t.type for t in node.outputs]
    else:
        out = node.spec.infer(*[t.type for t in inputs], **attrs)
        out_types = [out] if isinstance(out, TensorType) else list(out)
        if check_types and same_inputs and out_types != [t.type for t in node.outputs]:
            raise GraphcError(f"type check: recorded {[t.type for t in node.outputs]}, "
                              f"inferred {out_types}", node)
    return new_graph.add_node(node.spec, inputs, attrs, out_types, node.name, node.source)


def rebuild(outputs, replace=None, check_types=False, new_attrs=None):
    """(new graph, new outputs): the outputs' subgraph copied, each copied tensor passed
    through `replace(old_node, new_tensor) -> tensor` when given. `new_attrs`, a dict
    {node id: attrs}, gives those nodes other attrs of the same output types."""
    new_graph = Graph()
    mapping = {}
    new_attrs = new_attrs or {}
    for node in reachable(outputs):
        inputs = [mapping[(t.node.id, t.index)] for t in node.inputs]
        copy = copy_node(new_graph, node, inputs, check_types, new_attrs.get(node.id))
        for old, new in zip(node.outputs, copy.outputs):
            mapping[(node.id, old.index)] = replace(node, new) if replace else new
    _carry_variables(outputs, new_graph, mapping)
    return new_graph, [mapping[(t.node.id, t.index)] for t in outputs]


def rewrite_nodes(outputs, rewrites):
    """(new graph, new outputs): the outputs' subgraph copied, each node whose id is a key of
    `rewrites` passed, once copied, through rewrites[id](copy), which gives {output index: new
    tensor} for the outputs it replaces, or None to keep the copy."""
    if not rewrites:
        return (outputs[0].graph if outputs else None), outputs
    made = {}

    def replace(old, tensor):
        if old.id not in rewrites:
            return tensor
        node = tensor.node
        if id(node) not in made:
            made[id(node)] = rewrites[old.id](node) or {}
        return made[id(node)].get(tensor.index, tensor)
    return rebuild(outputs, replace)


def _carry_variables(outputs, new_graph, mapping):
    if not outputs:
        return
    old_graph = outputs[0].graph
    for var in old_graph.variables:
        new = mapping.get((var.node.id, 0))
        if new is not None:
            new_graph.variables.append(new)
            uid = var.node.attrs["uid"]
            if uid in old_graph.initializers:
                new_graph.initializers[uid] = old_graph.initializers[uid]
