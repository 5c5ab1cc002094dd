"""Reverse-mode automatic differentiation: gc.grad.

Gradients are ordinary graph nodes built by each op's `grad` rule, so they can be
differentiated again, optimized and compiled like the rest of the graph.
"""
from .errors import GradientError
from .ir.graph import Tensor
from .ir.types import format_shape
from .ops.elementwise import add, cast, ones_like, zeros_like


def _flatten(xs):
    if isinstance(xs, Tensor):
        return [xs], True
    return list(xs), False


def _check_differentiable(t, role):
    if not isinstance(t, Tensor):
        raise GradientError(f"gc.grad: {role} must be tensors, got {t!r}")
    if not t.dtype.is_float:
        raise GradientError(f"gc.grad: {role} '{t.name}' is {t.dtype.name}; integer and boolean "
                            "tensors have no gradient", t.node)


def _on_path(y_nodes, x_nodes):
    """Ids of nodes that lie on some path from an x to a y."""
    graph = next(iter(y_nodes)).graph
    nodes = graph.nodes
    from_x = set(n.id for n in x_nodes)
    limit = max(n.id for n in y_nodes)
    for node in nodes[min(from_x):limit + 1]:
        if node.id not in from_x and any(t.node.id in from_x for t in node.inputs):
            from_x.add(node.id)
    to_y = set(n.id for n in y_nodes)
    for node in reversed(nodes[:limit + 1]):
        if node.id in to_y:
            to_y.update(t.node.id for t in node.inputs)
    return from_x & to_y


def grad(y, xs, grad_ys=None, unconnected="raise"):
    """d(sum of y * grad_ys)/d(xs). y: a tensor or list; xs: a tensor or list of tensors.

    A non-scalar y needs `grad_ys`. An x that y does not depend on raises GradientError unless
    unconnected="zero", which gives zeros of x's shape.
    """
    if unconnected not in ("raise", "zero"):
        raise GradientError(f"unconnected must be 'raise' or 'zero', got {unconnected!r}")
    ys, _ = _flatten(y)
    xs_list, single = _flatten(xs)
    for t in ys:
        _check_differentiable(t, "y")
    for t in xs_list:
        _check_differentiable(t, "x")
    graph = ys[0].graph
    for t in ys + xs_list:
        if t.graph is not graph:
            from .errors import GraphMismatchError
            raise GraphMismatchError(f"gc.grad: '{t.name}' belongs to another graph")
    seeds = _seeds(ys, grad_ys)

    # grads[(node id, output index)] -> list of partial gradients to be summed
    grads = {}
    for t, g in zip(ys, seeds):
        grads.setdefault((t.node.id, t.index), []).append(g)
    on_path = _on_path({t.node for t in ys}, {t.node for t in xs_list})
    with graph.name_scope("gradients"):
        for node_id in sorted(on_path, reverse=True):
            node = graph.nodes[node_id]
            outs = []
            for i in range(len(node.outputs)):
                total = _total(grads.get((node_id, i)))
                if total is not None:
                    grads[(node_id, i)] = [total]
                outs.append(total)
            if all(g is None for g in outs) or not any(t.node.id in on_path for t in node.inputs):
                continue
            if node.spec.grad is None:
                raise GradientError(f"op '{node.op}' has no gradient defined", node)
            outs = [g if g is not None else zeros_like(o) if o.dtype.is_float else None
                    for g, o in zip(outs, node.outputs)]
            for t, g in zip(node.inputs, node.spec.grad(node, *outs)):
                if g is not None and t.node.id in on_path:
                    if g.dtype is not t.dtype:
                        g = cast(g, t.dtype)
                    grads.setdefault((t.node.id, t.index), []).append(g)
        result = []
        for x in xs_list:
            g = _total(grads.get((x.node.id, x.index)))
            if g is None:
                if unconnected == "raise":
                    raise GradientError(
                        f"gc.grad: '{ys[0].name}' does not depend on '{x.name}' (pass "
                        "unconnected='zero' to get zeros)", x.node)
                g = _zeros_of(x)
            result.append(g)
    return result[0] if single else result


def _seeds(ys, grad_ys):
    if grad_ys is None:
        for t in ys:
            if t.shape != ():
                raise GradientError(
                    f"gc.grad: y '{t.name}' has shape {format_shape(t.shape)}; differentiate a "
                    "scalar (e.g. gc.mean of it) or pass grad_ys", t.node)
        return [ones_like(t) for t in ys]
    seeds, _ = _flatten(grad_ys)
    if len(seeds) != len(ys):
        raise GradientError(f"gc.grad: {len(ys)} ys but {len(seeds)} grad_ys")
    out = []
    for t, g in zip(ys, seeds):
        if not isinstance(g, Tensor):
            from .ops.sources import constant
            g = constant(g, dtype=t.dtype, graph=t.graph)
        if g.shape != t.shape:
            from .ops.broadcast import broadcast_like
            g = broadcast_like(g, t)
        out.append(g)
    return out


def _zeros_of(x):
    """Zeros shaped like x; when x's shape is static they need no value of x (no feed)."""
    if x.type.is_static:
        from .ops.shape import broadcast_to
        from .ops.sources import constant
        return broadcast_to(constant(0, dtype=x.dtype, graph=x.graph), x.shape)
    return zeros_like(x)


def _total(parts):
    if not parts:
        return None
    total = parts[0]
    for p in parts[1:]:
        total = add(total, p)
    return total


