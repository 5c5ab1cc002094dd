"""Loop-invariant code motion: work a loop body repeats on the same values moves before it.

In a "loop" node's body (graphc/ops/control_flow.py) each value is one of:

- invariant: computed from the non-sequence arguments (captured tensors included) and
  constants alone, so every step computes the same value;
- per-slice: computed from the sequences' t-th slices and invariants, not from a carry, by
  ops that give slice t of their result when run on whole sequences: elementwise ops (numpy
  broadcasting against invariants of no higher rank) and matmul against an invariant matrix
  (`x_t @ W`: `X @ W` over the whole sequence is one product, batched over time and batch);
- varying: anything else (it reads a carry, or its op is one of the others).

The invariant and per-slice values that a varying one reads, or that the body gives as a
result, are computed once before the loop: an invariant one becomes a new non-sequence, a
per-slice one a new sequence of the same length as the one it is computed from (an empty
sequence gives an empty one). Only ops that cannot fail on any value move (no gather, no
sparse cross entropy, no views of shapes known only at run time, no host or stateful op, no
nested loop or cond), since a loop that runs zero steps would otherwise raise where it did
not; nothing moves out of a cond's branches, which may not run. The body keeps its other
arguments and its results in order; the new arguments follow the sequences' and the
non-sequences' ones.
"""
from ..ir.graph import Graph, nodes_needed
from ..ir.subgraph import Body
from ..ir.types import TensorType
from ..ops.registry import get_spec
from ..ir.graph import new_uid
from .rebuild import copy_node, reachable, rewrite_nodes

INVARIANT, PER_SLICE, VARYING = "invariant", "per-slice", "varying"
MOVABLE_KINDS = ("elementwise", "view", "reduction", "contraction")
# ops that raise on some values (an index out of range): they stay where they may not run
MAY_FAIL = frozenset({"gather", "sparse_softmax_cross_entropy"})
# elementwise ops whose result depends on their inputs' shapes beyond broadcasting
SHAPED = frozenset({"one_hot", "reduced_size", "fill_like"})


def _key(t):
    return (t.node.id, t.index)


def _movable(node):
    spec = node.spec
    if spec.stateful or spec.kind not in MOVABLE_KINDS or node.op in MAY_FAIL:
        return False
    # a view of a shape known only at run time may find its index out of range
    return spec.kind != "view" or all(t.type.is_static for t in node.inputs)


def _length_key(seq):
    n = seq.shape[0]
    return ("n", n) if isinstance(n, int) else ("dim", id(n))


def _per_slice(node, kinds):
    """(length key, rank of the slice) when `node` over whole sequences gives, at t, its
    value over the t-th slices; else None. `kinds` are its inputs' (kind, length, rank)."""
    seq = [(length, rank) for kind, length, rank in kinds if kind == PER_SLICE]
    lengths = {length for length, _ in seq}
    ranks = {rank for _, rank in seq}
    if len(lengths) != 1:
        return None
    length = lengths.pop()
    if node.spec.kind == "elementwise" and node.op not in SHAPED and not node.spec.shape_only:
        # numpy broadcasting lines up trailing dims: the time axis leads every sequence
        if len(ranks) != 1:
            return None
        rank = ranks.pop()
        if any(kind == INVARIANT and r > rank for kind, _, r in kinds):
            return None
        return length, node.outputs[0].rank
    if node.op == "matmul":
        (ka, _, ra), (kb, _, rb) = kinds
        if ka == PER_SLICE and kb == INVARIANT and rb == 2:
            return length, node.outputs[0].rank
        if ka == INVARIANT and kb == PER_SLICE and ra == 2 and rb >= 2:
            return length, node.outputs[0].rank
        if ka == kb == PER_SLICE and ra == rb >= 2:
            return length, node.outputs[0].rank
    return None


def classify(body, counts, seqs):
    """{(node id, output): (kind, length key, rank)} for every value of a loop body whose
    sequences (outer tensors) are `seqs`."""
    n_seq, n_carry, _ = counts
    kinds = {}
    for k, arg in enumerate(body.arguments):
        if k < n_seq:
            kinds[_key(arg)] = (PER_SLICE, _length_key(seqs[k]), arg.rank)
        elif k < n_seq + n_carry:
            kinds[_key(arg)] = (VARYING, None, arg.rank)
        else:
            kinds[_key(arg)] = (INVARIANT, None, arg.rank)
    for node in body.nodes:
        if (node.id, 0) in kinds:
            continue
        if node.op == "constant":
            kind = (INVARIANT, None)
        elif node.op == "argument" or not node.inputs or not _movable(node):
            kind = (VARYING, None)
        else:
            ins = [kinds[_key(t)] for t in node.inputs]
            if all(k == INVARIANT for k, _, _ in ins):
                kind = (INVARIANT, None)
            elif any(k == VARYING for k, _, _ in ins):
                kind = (VARYING, None)
            else:
                found = _per_slice(node, ins)
                kind = (PER_SLICE, found[0]) if found else (VARYING, None)
        for t in node.outputs:
            kinds[_key(t)] = kind + (t.rank,)
    return kinds


def plan(node):
    """The body values of loop `node` to compute before it (invariant ones, per-slice ones),
    or None when there are none."""
    body, counts = node.attrs["body"], node.attrs["counts"]
    n_seq = counts[0]
    kinds = classify(body, counts, node.inputs[1:1 + n_seq])
    wanted = []
    seen = set()

    def want(t):
        kind = kinds[_key(t)][0]
        if kind != VARYING and t.node.op not in ("argument", "constant") \
                and _key(t) not in seen:
            seen.add(_key(t))
            wanted.append(t)
    for inner in body.nodes:
        if inner.op != "argument" and kinds[(inner.id, 0)][0] == VARYING:
            for t in inner.inputs:
                want(t)
    for t in body.results:
        want(t)
    if not wanted:
        return None
    invariant = [t for t in wanted if kinds[_key(t)][0] == INVARIANT]
    per_slice = [t for t in wanted if kinds[_key(t)][0] == PER_SLICE]
    return invariant, per_slice


def _add(graph, node, inputs):
    """node's op, attrs, name and source over `inputs` in `graph` (types inferred anew)."""
    out = node.spec.infer(*[t.type for t in inputs], **node.attrs)
    types = [out] if isinstance(out, TensorType) else list(out)
    return graph.add_node(node.spec, inputs, node.attrs, types, node.name, node.source)


def _argument(graph, type_, name):
    return graph.add_node(get_spec("argument"), [],
                          {"uid": new_uid(), "dtype": type_.dtype, "shape": tuple(type_.shape)},
                          [TensorType(type_.dtype, type_.shape)], name).outputs[0]


def hoisted(loop, invariant, per_slice):
    """A loop node in `loop`'s graph computing what `loop` does, with the body values
    `invariant` and `per_slice` computed before it; None if its types would differ."""
    graph, attrs = loop.graph, loop.attrs
    body = attrs["body"]
    n_seq, n_carry, n_nonseq = attrs["counts"]
    ins = list(loop.inputs)
    seqs = ins[1:1 + n_seq]
    inits = ins[1 + n_seq:1 + n_seq + n_carry]
    nonseqs = ins[1 + n_seq + n_carry:1 + n_seq + n_carry + n_nonseq]
    extras = ins[1 + n_seq + n_carry + n_nonseq:]
    # the moved values, computed in the outer graph from the loop's own inputs
    outer = {}
    for k, arg in enumerate(body.arguments):
        if k < n_seq:
            outer[_key(arg)] = seqs[k]
        elif k >= n_seq + n_carry:
            outer[_key(arg)] = nonseqs[k - n_seq - n_carry]
    for inner in nodes_needed(list(invariant) + list(per_slice)):
        if (inner.id, 0) in outer:
            continue
        if inner.op == "constant":
            made = graph.add_node(inner.spec, [], inner.attrs,
                                  [t.type for t in inner.outputs], inner.name, inner.source)
        else:
            made = _add(graph, inner, [outer[_key(t)] for t in inner.inputs])
        for t, o in zip(inner.outputs, made.outputs):
            outer[_key(t)] = o
    # the new body: the old arguments, the new ones, the nodes that still run per step
    new = Graph()
    args = [_argument(new, a.type, a.node.name) for a in body.arguments]
    slice_args = [_argument(new, t.type, "slice_" + _safe(t.name)) for t in per_slice]
    inv_args = [_argument(new, t.type, "invariant_" + _safe(t.name)) for t in invariant]
    subst = {_key(a): b for a, b in zip(body.arguments, args)}
    subst.update((_key(t), a) for t, a in zip(per_slice, slice_args))
    subst.update((_key(t), a) for t, a in zip(invariant, inv_args))
    for inner in _still_needed(body, subst):
        copy = copy_node(new, inner, [subst[_key(t)] for t in inner.inputs])
        for t, o in zip(inner.outputs, copy.outputs):
            subst[_key(t)] = o
    args = (args[:n_seq] + slice_args + args[n_seq:n_seq + n_carry] + args[n_seq + n_carry:]
            + inv_args)
    new_body = Body(new, args, [subst[_key(t)] for t in body.results], body.name)
    new_attrs = {**attrs, "body": new_body,
                 "counts": (n_seq + len(per_slice), n_carry, n_nonseq + len(invariant))}
    inputs = ([ins[0]] + seqs + [outer[_key(t)] for t in per_slice] + inits + nonseqs
              + [outer[_key(t)] for t in invariant] + extras)
    out = loop.spec.infer(*[t.type for t in inputs], **new_attrs)
    if list(out) != [t.type for t in loop.outputs]:
        return None
    return graph.add_node(loop.spec, inputs, new_attrs, list(out), loop.name, loop.source)


def _safe(name):
    return name.replace("/", "_").replace(":", "_")


def _still_needed(body, stop):
    """The body's nodes its results need, not looking past the values in `stop`, in order."""
    seen = set()
    stack = [t for t in body.results if _key(t) not in stop]
    while stack:
        t = stack.pop()
        if t.node.id in seen:
            continue
        seen.add(t.node.id)
        stack.extend(i for i in t.node.inputs if _key(i) not in stop)
    return [body.graph.nodes[i] for i in sorted(seen)]


def loop_invariant_hoisting(outputs):
    """Move loop-invariant and per-sequence-slice work out of loop bodies, before the loop."""
    def rewrite(node, p):
        new = hoisted(node, *p)
        return None if new is None else dict(enumerate(new.outputs))
    return rewrite_nodes(outputs, {n.id: (lambda node, p=p: rewrite(node, p))
                                   for n in reachable(outputs) if n.op == "loop"
                                   for p in [plan(n)] if p is not None})
