"""Keeping a loop's step values: a later loop reads what an earlier one computed at each step.

The backward loop of a gradient (graphc/ops/control_flow.py) runs the forward body again, and
`loop_invariants` (hoisting.py) turns the part of it that reads only the sequences, the saved
states and invariants into whole-sequence ops before the backward loop: in an LSTM, the gate
pre-activations `z = xproj + h_{t-1} @ U` over all steps, one product as large as the forward
loop's. The forward loop computed each row of it already. This pass finds, for a sequence S of
a loop B, a loop F that B depends on and a value v of F's body such that row t of S is v at
step t of F, and makes v one more per-step result of F (its stacked output replaces S as B's
input; nothing else changes).

S matches when it is built, by elementwise ops and matrix products (the per-step rules of
hoisting), from:
- a sequence of F of F's step count: F's slice argument;
- a non-sequence of F: F's invariant argument;
- the value of F's carry j before each step (the initial value then the stack but its last, in
  a forward loop; the stack but its first then the initial value, in a reverse one, as the
  gradient builds it): F's carry argument j;
and F's body computes the same op on the matched values (same attrs). S must have F's step
count (the same int or the same symbolic dim), so a scan with n_steps shorter than its
sequences, whose hoisted values cover the whole sequence, is left as it is.
"""
from ..ir.graph import Graph
from ..ir.subgraph import Body
from .hoisting import SHAPED
from .rebuild import _carry_variables, copy_node, reachable

SLICE, INVARIANT = "slice", "invariant"
SAMPLE_LENGTHS = (1, 2, 3, 7)


def _key(t):
    return (t.node.id, t.index)


def _same_length(a, b):
    return a == b if isinstance(a, int) and isinstance(b, int) else a is b


def _rows(entry, n):
    """The rows a strided_slice entry of axis 0 keeps of n, or None for an int entry."""
    if entry is None:
        return list(range(n))
    if isinstance(entry, int):
        return None
    return list(range(*slice(*entry).indices(n)))


def _drops_one(entry, length, last):
    """Whether `entry` keeps every row but the last (last=True) or but the first."""
    lengths = [length] if isinstance(length, int) else SAMPLE_LENGTHS
    return all(_rows(entry, n) == (list(range(n - 1)) if last else list(range(1, n)))
               for n in lengths)


class _Forward:
    """Which values of loop F's body give, step by step, the rows of outer tensors."""

    def __init__(self, loop):
        self.loop = loop
        body = loop.attrs["body"]
        self.body = body
        self.n_seq, self.n_carry, n_ns = loop.attrs["counts"]
        self.reverse = loop.attrs["reverse"]
        ins = loop.inputs
        self.length = loop.outputs[0].shape[0] if body.results else None
        self.seqs = {}
        for k in range(self.n_seq):
            self.seqs.setdefault(_key(ins[1 + k]), (ins[1 + k], body.arguments[k]))
        self.inits = ins[1 + self.n_seq:1 + self.n_seq + self.n_carry]
        base = 1 + self.n_seq + self.n_carry
        self.invariants = {}
        for k in range(n_ns):
            self.invariants.setdefault(_key(ins[base + k]),
                                       body.arguments[self.n_seq + self.n_carry + k])
        self.by_inputs = {}
        for node in body.nodes:
            if node.op not in ("argument", "constant"):
                self.by_inputs.setdefault((node.op, tuple(_key(t) for t in node.inputs)),
                                          []).append(node)
        self.memo = {}

    def match(self, tensor):
        """(SLICE or INVARIANT, the body tensor) or None."""
        key = _key(tensor)
        if key not in self.memo:
            self.memo[key] = None  # no cycles in a DAG, but keep recursion finite
            self.memo[key] = self._match(tensor)
        return self.memo[key]

    def _match(self, tensor):
        key = _key(tensor)
        if key in self.seqs:
            outer, arg = self.seqs[key]
            if _same_length(outer.shape[0], self.length):
                return SLICE, arg
        if key in self.invariants:
            return INVARIANT, self.invariants[key]
        carry = self._carry_before(tensor)
        if carry is not None:
            return SLICE, self.body.arguments[self.n_seq + carry]
        node = tensor.node
        spec = node.spec
        elementwise = (spec.kind == "elementwise" and node.op not in SHAPED
                       and not spec.shape_only)
        if not elementwise and node.op != "matmul":
            return None
        found = [self.match(t) for t in node.inputs]
        if any(f is None for f in found) or all(kind == INVARIANT for kind, _ in found):
            return None
        kinds = [(kind, t.rank) for (kind, _), t in zip(found, node.inputs)]
        if elementwise:
            if any(kind == SLICE and r != tensor.rank for kind, r in kinds) or any(
                    kind == INVARIANT and r >= tensor.rank for kind, r in kinds):
                return None
        else:
            (ka, ra), (kb, rb) = kinds
            if not ((ka == SLICE and kb == INVARIANT and rb == 2)
                    or (ka == INVARIANT and kb == SLICE and ra == 2 and rb >= 3)
                    or (ka == kb == SLICE and ra == rb >= 3)):
                return None
        for inner in self.by_inputs.get((node.op, tuple(_key(t) for _, t in found)), ()):
            if _same_attrs(inner.attrs, node.attrs):
                return SLICE, inner.outputs[tensor.index]
        return None

    def _carry_before(self, tensor):
        """j where `tensor` is carry j's value before each step of F, else None."""
        node = tensor.node
        if node.op != "concat" or node.attrs.get("axis") != 0 or len(node.inputs) != 2:
            return None
        head, tail = (node.inputs[1], node.inputs[0]) if self.reverse else node.inputs
        sliced = tail.node
        if sliced.op != "strided_slice" or sliced.inputs[0].node is not self.loop:
            return None
        j = sliced.inputs[0].index
        index = sliced.attrs["index"]
        if j >= self.n_carry or any(e is not None for e in index[1:]) \
                or not _drops_one(index[0], self.length, last=not self.reverse):
            return None
        init = self.inits[j]
        if head.node.op not in ("reshape", "expand_dims") or head.rank != init.rank + 1 \
                or head.shape[0] != 1 or _key(head.node.inputs[0]) != _key(init):
            return None
        return j


def _same_attrs(a, b):
    try:
        return a.keys() == b.keys() and all(bool(a[k] == b[k]) for k in a)
    except (TypeError, ValueError):
        return False


def _plan(outputs):
    """({loop B id: {sequence position: (loop F id, body tensor of F)}},
    {loop F id: [body tensors to add as results]}), or None."""
    loops = [n for n in reachable(outputs) if n.op == "loop"]
    if len(loops) < 2:
        return None
    forwards = {}
    reads, extra = {}, {}
    for b in loops:
        n_seq = b.attrs["counts"][0]
        ancestors = None
        for k in range(n_seq):
            s = b.inputs[1 + k]
            if s.node.spec.kind not in ("elementwise", "contraction"):
                continue
            for f in loops:
                if f is b or not f.attrs["body"].results:
                    continue
                if ancestors is None:
                    ancestors = {n.id for n in reachable(list(b.inputs))}
                if f.id not in ancestors:
                    continue
                fw = forwards.setdefault(f.id, _Forward(f))
                m = fw.match(s)
                if m is None or m[0] != SLICE or m[1].node.op == "argument" \
                        or m[1].dtype is not s.dtype or m[1].shape != s.shape[1:]:
                    continue
                if not _keeps_types(b, k, m[1], fw.length):
                    continue
                reads.setdefault(b.id, {})[k] = (f.id, m[1])
                wanted = extra.setdefault(f.id, [])
                if all(_key(m[1]) != _key(t) for t in list(fw.body.results) + wanted):
                    wanted.append(m[1])
                break
    return (reads, extra) if reads else None


def _keeps_types(loop, k, value, length):
    """Whether `loop` over the stack of `value` as its sequence k gives the same types."""
    from ..ir.types import TensorType
    types = [t.type for t in loop.inputs]
    types[1 + k] = TensorType(value.dtype, (length,) + tuple(value.shape))
    out = loop.spec.infer(*types, **loop.attrs)
    return list(out) == [t.type for t in loop.outputs]


def keep_step_values(outputs):
    """A loop's sequence that an earlier loop computed step by step becomes that loop's output."""
    plan = _plan(outputs)
    if plan is None:
        return (outputs[0].graph if outputs else None), outputs
    reads, extra = plan
    graph = Graph()
    mapping = {}
    kept = {}  # (F id, body tensor key) -> the new F's stacked output
    for node in reachable(outputs):
        inputs = [mapping[_key(t)] for t in node.inputs]
        for k, (fid, value) in reads.get(node.id, {}).items():
            inputs[1 + k] = kept[fid, _key(value)]
        if node.id not in extra:
            copy = copy_node(graph, node, inputs, check_types=node.id in reads)
            for old, new in zip(node.outputs, copy.outputs):
                mapping[_key(old)] = new
            continue
        body = node.attrs["body"]
        n_res = len(body.results)
        added = list(extra[node.id])
        new_body = Body(body.graph, body.arguments, list(body.results) + added, body.name)
        attrs = {**node.attrs, "body": new_body}
        types = list(node.spec.infer(*[t.type for t in inputs], **attrs))
        copy = graph.add_node(node.spec, inputs, attrs, types, node.name, node.source)
        for old in node.outputs:
            i = old.index
            mapping[_key(old)] = copy.outputs[i if i < n_res else i + len(added)]
        for position, t in enumerate(body.results):
            kept[node.id, _key(t)] = copy.outputs[position]
        for e, t in enumerate(added):
            kept[node.id, _key(t)] = copy.outputs[n_res + e]
    _carry_variables(outputs, graph, mapping)
    return graph, [mapping[_key(t)] for t in outputs]
