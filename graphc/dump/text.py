"""The text dump: one line per node with name, op, type, inputs and source location."""


def nodes_for(graph, tensors):
    """The nodes the tensors depend on, in topological order (all nodes when none given)."""
    if not tensors:
        return list(graph.nodes)
    needed = set()
    stack = [t.node for t in tensors]
    while stack:
        node = stack.pop()
        if node.id not in needed:
            needed.add(node.id)
            stack.extend(t.node for t in node.inputs)
    return [graph.nodes[i] for i in sorted(needed)]


def shown_attrs(node):
    """The attrs a dump shows: not the uid, nor dtype and shape, which the output type says."""
    return {k: v for k, v in node.attrs.items() if k not in ("uid", "dtype", "shape")}


def to_text(graph, tensors=(), kernels=None):
    """One line per node; `kernels` (the kernel groups' summary lines) follow as comments."""
    lines = []
    for node in nodes_for(graph, tensors):
        types = ", ".join(str(t.type) for t in node.outputs)
        args = ", ".join(t.name for t in node.inputs)
        attrs = " ".join(f"{k}={v!r}" for k, v in shown_attrs(node).items())
        lines.append(f"%{node.id} {node.name} = {node.op}({args}){' ' + attrs if attrs else ''}"
                     f" : {types}  # {node.source}")
    if kernels is not None:
        lines += ["# kernels:"] + [f"#   {line}" for line in kernels]
    return "\n".join(lines)
