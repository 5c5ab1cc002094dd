"""Carried sums of products become one product after the loop.

A carry j of a "loop" node (graphc/ops/control_flow.py) is an accumulator when its new value is
`acc + p`, acc (its argument) is read by nothing else in the body, and only its final value is
used (nobody reads its stacked per-step values). Its final value is then init + the sum of p
over the steps, and where p is a matrix product `a_t @ b_t` of two step values, that sum is one
product whose contraction runs over the steps too:

    sum_t a_t @ b_t = [a_0 a_1 ...] @ [b_0; b_1; ...]   (M x T*K) @ (T*K x N)

The backward loop of a gradient accumulates the gradient of every matrix it multiplies by this
way (`dU += h_{t-1}^T @ dz_t`, a product with a contraction as short as the batch at each step);
after this pass it runs one product over all steps and batch rows after the loop. A factor is
read from where its rows already are: a sequence of the loop's step count (the loop slices it at
t), or a value the body computes (it becomes one more per-step result, stacked; a value already
a result is not returned twice); a transposed factor is read through the transpose. A sequence
that may be longer than the steps (n_steps, or a length known only at run time, such as the
states before each step in a backward loop, one row more than the steps after zero steps) is
cut to the loop's stacked length first (resize_rows). A factor that is a carry or an
invariant, a product that is not of two matrices and a while loop (its condition reads the
carries) are left as they are. The order of the sum changes (one product instead of a running
sum).
"""
from ..ir.types import TensorType
from ..ops.registry import get_spec
from .rebuild import reachable, rewrite_nodes


def _key(t):
    return (t.node.id, t.index)


def _op(graph, op, inputs, **attrs):
    spec = get_spec(op)
    out = spec.infer(*[t.type for t in inputs], **attrs)
    types = [out] if isinstance(out, TensorType) else list(out)
    return graph.add_node(spec, list(inputs), attrs, types, op).outputs[0]


def _same_length(a, b):
    return a == b if isinstance(a, int) and isinstance(b, int) else a is b


def _steps_of(graph, rows, steps, stacked):
    """A sequence `rows` of a loop of `steps` steps (a length) cut to them: to the length of
    `stacked`, a stacked output the product reads (its other factor), which therefore has
    storage; None where rows may be longer and there is no such output."""
    if _same_length(rows.shape[0], steps):
        return rows
    if stacked is None:
        return None
    return _op(graph, "resize_rows", [rows, stacked])


def _factor(t):
    """(the value whose rows hold the factor, whether the factor is its transpose)."""
    node = t.node
    if node.op == "transpose" and node.attrs["perm"] == (1, 0) and t.rank == 2:
        return node.inputs[0], True
    return t, False


def _source(loop, value):
    """('seq', k) or ('body', value) for a factor's value, or None where it cannot be stacked."""
    body = loop.attrs["body"]
    n_seq = loop.attrs["counts"][0]
    for k, arg in enumerate(body.arguments):
        if _key(arg) == _key(value):
            return ("seq", k) if k < n_seq else None
    if value.node.op == "constant":
        return None
    return ("body", value)


def _consumers(body):
    uses = {}
    for node in body.nodes:
        for t in node.inputs:
            uses.setdefault(_key(t), []).append(node)
    for t in body.results:
        uses.setdefault(_key(t), []).append(None)
    return uses


def plan(loop, used):
    """[(carry j, (factor a's source, transposed), (b's, transposed))] for loop `loop`'s
    accumulators; `used` holds the outer (node id, output) keys something reads."""
    attrs = loop.attrs
    if attrs["cond"] is not None or loop.op != "loop":
        return []
    body = attrs["body"]
    n_seq, n_carry, _ = attrs["counts"]
    if not body.results:
        return []
    uses = _consumers(body)
    found = []
    for j in range(n_carry):
        acc, new = body.arguments[n_seq + j], body.results[j]
        if (loop.id, j) in used or not acc.dtype.is_float or new.node.op != "add" \
                or new.node.attrs or [_key(t) for t in body.results].count(_key(new)) != 1:
            continue
        ins = new.node.inputs
        if _key(acc) not in [_key(t) for t in ins] or len(uses.get(_key(acc), [])) != 1:
            continue
        p = ins[1] if _key(ins[0]) == _key(acc) else ins[0]
        if p.type != acc.type or acc.rank != 2 or p.node.op != "matmul" or p.node.attrs:
            continue
        a, b = p.node.inputs
        if a.rank != 2 or b.rank != 2:
            continue
        factors = []
        for t in (a, b):
            value, transposed = _factor(t)
            source = _source(loop, value)
            if source is None or (source[0] == "body" and _key(value) == _key(new)):
                break
            factors.append((source, transposed))
        if len(factors) == 2:
            found.append((j, factors[0], factors[1]))
    return found


def _rows(graph, stacked, transposed, contract_last):
    """The stacked factor (T, r, c) as one matrix whose contraction axis runs over T too:
    (rows, T*k) for the left factor (contract_last), (T*k, cols) for the right one; None
    where a dim it keeps is not static."""
    _, r, c = stacked.shape
    # per step the factor is (r, c), or (c, r) when it is read through a transpose
    if transposed:
        r, c = c, r
    if contract_last:  # a_t (M, K): want (M, T*K)
        keep = r
        if not isinstance(keep, int):
            return None
        if transposed:  # rows hold (K, M): (T*K, M), then transposed
            flat = _op(graph, "reshape", [stacked], shape=(-1, keep))
            return _op(graph, "transpose", [flat], perm=(1, 0))
        moved = _op(graph, "transpose", [stacked], perm=(1, 0, 2))
        return _op(graph, "reshape", [moved], shape=(keep, -1))
    keep = c  # b_t (K, N): want (T*K, N)
    if not isinstance(keep, int):
        return None
    if transposed:  # rows hold (N, K)
        stacked = _op(graph, "transpose", [stacked], perm=(0, 2, 1))
    return _op(graph, "reshape", [stacked], shape=(-1, keep))


def rewritten(loop, found):
    """Old output index -> new tensor for `loop` (a node of the graph being built) without
    the accumulators of `found`, each final value one product after the loop; None where a
    dim the products keep is not static."""
    graph, attrs = loop.graph, loop.attrs
    body = attrs["body"]
    n_seq, n_carry, n_ns = attrs["counts"]
    n_res = len(body.results)
    drop = {j for j, _, _ in found}
    keep = [j for j in range(n_carry) if j not in drop]
    results = [body.results[j] for j in keep] + list(body.results[n_carry:])
    added = {}
    for _, *factors in found:
        for (kind, what), _ in factors:
            if kind == "body":
                at = [_key(t) for t in results].index(_key(what)) if _key(what) in \
                    [_key(t) for t in results] else None
                if at is None:
                    results.append(what)
                    at = len(results) - 1
                added[_key(what)] = at
    from ..ir.subgraph import Body
    args = (list(body.arguments[:n_seq]) + [body.arguments[n_seq + j] for j in keep]
            + list(body.arguments[n_seq + n_carry:]))
    new_body = Body(body.graph, args, results, body.name)
    ins = list(loop.inputs)
    inits = ins[1 + n_seq:1 + n_seq + n_carry]
    inputs = (ins[:1 + n_seq] + [inits[j] for j in keep] + ins[1 + n_seq + n_carry:])
    new_attrs = {**attrs, "body": new_body, "counts": (n_seq, len(keep), n_ns)}
    types = list(loop.spec.infer(*[t.type for t in inputs], **new_attrs))
    new = graph.add_node(loop.spec, inputs, new_attrs, types, loop.name, loop.source)
    n_new = len(results)
    out = {}
    for position, j in enumerate(keep):
        out[j] = new.outputs[position]
        out[n_res + j] = new.outputs[n_new + position]
    for k in range(n_carry, n_res):
        out[k] = new.outputs[k - len(drop)]
    out[len(loop.outputs) - 1] = new.outputs[-1]
    for j, fa, fb in found:
        stacked = []
        read = [new.outputs[added[_key(what)]] for (kind, what), _ in (fa, fb) if kind == "body"]
        for ((kind, what), transposed), left in ((fa, True), (fb, False)):
            if kind == "seq":
                rows = _steps_of(graph, ins[1 + what], loop.outputs[0].shape[0],
                                 read[0] if read else None)
                if rows is None:
                    return None
            else:
                rows = new.outputs[added[_key(what)]]
            stacked.append(_rows(graph, rows, transposed, left))
        if None in stacked:
            return None
        product = _op(graph, "matmul", stacked)
        if product.type != inits[j].type:
            return None
        out[n_res + j] = _op(graph, "add", [inits[j], product])
    return out


def loop_accumulators(outputs):
    """Turn a loop's carried sum of per-step matrix products into one product after the loop."""
    needed = reachable(outputs)
    used = {_key(t) for n in needed for t in n.inputs} | {_key(t) for t in outputs}
    return rewrite_nodes(outputs, {
        n.id: (lambda node, p=p: rewritten(node, p))
        for n in needed if n.op == "loop" for p in [plan(n, used)] if p})
