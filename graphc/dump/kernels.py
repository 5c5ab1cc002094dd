"""What every dump says about a fusion group: its scalar expression, its colour, its edges.

A group prints as one expression over named values: `in0, in1, ...` are the tensors it reads,
`out` (or `out0, out1, ...`) those it writes, and constants of one element are inlined as
numbers. A value used twice inside the group, or long enough to hide the structure, is bound
to a temporary `t0, t1, ...` first, so the text stays linear in the group's size:

    out = tanh(in0) * sigmoid(in0) + 0.5 * in0 * in0 - exp(-abs(in0))
    t0 = exp(in0 - max[1](in0)); out = t0 / sum[1](t0)

An operand the group reads only for its shape (it is neither made in the group nor one of the
group's inputs, as with broadcast_like's second operand) prints as `shape(name)`.
"""
from dataclasses import dataclass
from typing import NamedTuple

# Binary ops written infix: symbol and precedence, in Python's order (higher binds tighter;
# as in Python, & | ^ bind tighter than comparisons), so a printed expression reads as Python.
INFIX = {
    "pow": ("**", 95),
    "mul": ("*", 80), "div": ("/", 80), "floordiv": ("//", 80), "mod": ("%", 80),
    "matmul": ("@", 80),
    "add": ("+", 70), "sub": ("-", 70),
    "left_shift": ("<<", 60), "right_shift": (">>", 60),
    "logical_and": ("&", 55), "logical_xor": ("^", 50), "logical_or": ("|", 45),
    "bitwise_and": ("&", 55), "bitwise_xor": ("^", 50), "bitwise_or": ("|", 45),
    "less": ("<", 40), "less_equal": ("<=", 40), "greater": (">", 40),
    "greater_equal": (">=", 40), "equal": ("==", 40), "not_equal": ("!=", 40),
}
PREFIX = {"neg": "-", "logical_not": "~", "invert": "~"}
UNARY = 90  # the precedence of a prefix op, and of a negative number
ATOM = 100
COMPARISON = 40  # comparisons do not chain: both operands get parentheses at this level
RIGHT_ASSOCIATIVE = {"pow"}
# The first of these attrs an op has is shown in brackets: sum[1](x), cast[float32](x).
BRACKETED_ATTRS = ("axes", "axis", "perm", "dtype")
LONGEST_INLINE = 160  # characters; a longer operand is bound to a temporary
MAX_LISTED_NODES = 8  # node names a kernel line lists

# Colours of fusion groups (light, so black text stays readable), indexed by group id.
PALETTE = ("#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
           "#f7b6d2", "#dbdb8d", "#9edae5", "#fdd0a2", "#c7e9c0", "#dadaeb")


def colour(kernel_id):
    return PALETTE[kernel_id % len(PALETTE)]


def number(value, dtype):
    """A scalar as the dtype prints it: 0.1 rather than 0.10000000149011612."""
    return str(dtype.np.type(value))


def literal(node):
    """The number a node is wherever it appears, as text (None: it is not one): its uniform
    value, except that an array stored in the graph (a source) of more than one element keeps
    its name, which says it is an array."""
    known = node.spec.uniform_value
    value = known(node) if known is not None else None
    if value is None or (node.spec.kind == "source"
                         and node.outputs[0].type.num_elements() != 1):
        return None
    return number(value, node.outputs[0].dtype)


def simple_term(text):
    """A name or a number as a term (a negative number binds as a prefix op does)."""
    return text, (UNARY if text.startswith("-") else ATOM)


def _wrap(term, needs_parens):
    text, _ = term
    return f"({text})" if needs_parens else text


def _bracket(node):
    for key in BRACKETED_ATTRS:
        if key in node.attrs:
            value = node.attrs[key]
            shown = ", ".join(map(str, value)) if isinstance(value, tuple) else \
                getattr(value, "name", value)
            return f"[{shown}]"
    return ""


def render_node(node, operands):
    """One node as a term (text, precedence) over its operands' terms."""
    return render_op(node.op, operands, _bracket(node))


def render_op(op, operands, bracket=""):
    """An operation named `op` (a graph op or a kernel IR Op) as a term over its operands'
    terms: infix, prefix, or a call with `bracket` after the name."""
    if op in INFIX and len(operands) == 2:
        symbol, prec = INFIX[op]
        (_, left), (_, right) = operands
        if op in RIGHT_ASSOCIATIVE:
            parens = (left <= prec, right < prec)
        else:
            parens = (left < prec or (prec == COMPARISON and left == prec), right <= prec)
        return (f"{_wrap(operands[0], parens[0])} {symbol} {_wrap(operands[1], parens[1])}",
                prec)
    if op in PREFIX:
        return f"{PREFIX[op]}{_wrap(operands[0], operands[0][1] <= UNARY)}", UNARY
    args = ", ".join(text for text, _ in operands)
    return f"{op}{bracket}({args})", ATOM


@dataclass
class KernelExpression:
    """A group as statements ("t0 = ...", "out = ..."), with what each name stands for."""

    statements: list
    inputs: list  # (tensor, how the expression refers to it: "in0" or an inlined number)
    outputs: list  # (tensor, "out" or "out0", "out1", ...)

    @property
    def text(self):
        return "; ".join(self.statements)

    @property
    def named_inputs(self):
        """The inputs called in0, in1, ...: all but the inlined numbers."""
        return [(t, ref) for t, ref in self.inputs if literal(t.node) is None]


class _Printer:
    def __init__(self, group):
        self.group = group
        self.terms = {}  # tensor -> term
        self.statements = []
        self.temps = 0
        named = 0
        self.inputs = []
        for t in group.inputs:
            ref = literal(t.node)
            if ref is None:
                ref, named = f"in{named}", named + 1
            self.inputs.append((t, ref))
            self.terms[t] = simple_term(ref)
        single = len(group.outputs) == 1
        self.outputs = [(t, "out" if single else f"out{i}") for i, t in enumerate(group.outputs)]
        self.out_names = dict(self.outputs)
        self.uses = {}
        for node in group.nodes:
            for t in node.inputs:
                self.uses[t] = self.uses.get(t, 0) + 1

    def operand(self, t):
        term = self.terms.get(t)
        return term if term is not None else (f"shape({t.name})", ATOM)

    def bind(self, name, term):
        self.statements.append(f"{name} = {term[0]}")
        return name, ATOM

    def temporary(self, term):
        name = f"t{self.temps}"
        self.temps += 1
        return self.bind(name, term)

    def visit(self, node):
        number_text = literal(node)
        if number_text is not None and not any(t in self.out_names for t in node.outputs):
            self.terms[node.outputs[0]] = simple_term(number_text)
            return
        term = render_node(node, [self.operand(t) for t in node.inputs])
        if len(node.outputs) > 1:
            whole = self.temporary(term)[0]
            for t in node.outputs:
                self.settle(t, (f"{whole}[{t.index}]", ATOM))
        else:
            self.settle(node.outputs[0], term)

    def settle(self, t, term):
        """Name the value when it is an output, used other than once, or long."""
        if t in self.out_names:
            term = self.bind(self.out_names[t], term)
        elif self.uses.get(t, 0) != 1 or len(term[0]) > LONGEST_INLINE:
            term = self.temporary(term)
        self.terms[t] = term

    def run(self):
        for node in self.group.nodes:
            self.visit(node)
        return KernelExpression(self.statements, self.inputs, self.outputs)


def expression(group):
    """The group's KernelExpression; `.text` is the one-line form."""
    return _Printer(group).run()



def kernel_line(group, expr=None):
    """`kernel k3 elementwise float32[n, 784]: out = ...  [in0=x; out=y; nodes: a, b, ...]`."""
    expr = expr or expression(group)
    types = ", ".join(str(t.type) for t in group.outputs)
    names = [n.name for n in group.nodes]
    listed = ", ".join(names[:MAX_LISTED_NODES])
    if len(names) > MAX_LISTED_NODES:
        listed += f", ... ({len(names) - MAX_LISTED_NODES} more)"
    refs = ", ".join(f"{ref}={t.name}" for t, ref in expr.named_inputs)
    outs = ", ".join(f"{name}={t.name}" for t, name in expr.outputs)
    bracket = "; ".join(part for part in (refs, outs, f"nodes: {listed}") if part)
    return f"kernel k{group.id} {group.kind} {types}: {expr.text}  [{bracket}]"


def boundaries_by_group(partition):
    """{group id: the partition's boundaries whose producer is in that group}."""
    group_of_name = {n.name: g for g in partition.groups for n in g.nodes}
    found = {g.id: [] for g in partition.groups}
    for b in partition.boundaries:
        found[group_of_name[b.producer].id].append(b)
    return found


def partition_nodes(partition):
    """The graph behind a partition and the tensors its groups write (for a full dump)."""
    outputs = [t for g in partition.groups for t in g.outputs]
    graph = partition.groups[0].root.graph if partition.groups else None
    return graph, outputs


class BodyKernels(NamedTuple):
    """The kernels stage of a loop's or cond's compiled body: `node` (of the enclosing graph)
    holds `body`, `partition` is the fusion groups it compiled to (None: none), `bodies` the
    BodyKernels of the loops and conds inside it. Every kernels dump nests them under their
    node."""
    node: object
    body: object
    partition: object
    bodies: tuple = ()

    @property
    def label(self):
        count = len(self.partition.groups) if self.partition is not None else 0
        return (f"body '{self.body.name}' of {self.node.op} '{self.node.name}': "
                f"{count} kernels")
