"""The kernel IR as text a person reads: each kernel's loop nest in Python-like lines.

    kernel k0_add_0  [nodes: mul, add]
      parallel for i0 in range(d0):
        for i1 in range(7):
          b2[t0] = tanh(b0[t0]) * b1[i1] + 1.0
            where t0 = i0 * 7 + i1

`b3` is the program's buffer 3 and `d0` its run-time dim 0 (the caller lists what they hold).
A value used twice in one statement, or long enough to hide the structure, is written once as
a temporary `t0, t1, ...` in the statement's `where` lines, which define names as a formula
does (a temporary may use the variables of a reduction it sits in). A reduction reads as a
generator: `sum(b0[i0 * 7 + r0] for r0 in range(7))`.
"""
from ..ir import dtypes
from ..kernels import ir
from ..kernels.numbering import ValueNumbering
from .kernels import ATOM, LONGEST_INLINE, number, render_op, simple_term

INDENT = "  "
LEAVES = (ir.Const, ir.Var, ir.Dim)  # never worth a temporary


def kernel_ir_text(kernels):
    """The kernels, one after the other, separated by blank lines."""
    return "\n\n".join(kernel_text(k) for k in kernels)


def kernel_text(kernel):
    nodes = f"  [nodes: {', '.join(kernel.nodes)}]" if kernel.nodes else ""
    lines = [f"kernel {kernel.name}{nodes}"]
    if kernel.comment:
        lines.append(f"{INDENT}# {kernel.comment}")
    _Printer(lines).statements(kernel.body, 1)
    return "\n".join(lines)


def operand_text(operand, terms):
    """A Gemm operand: element [r, c] of the matrix is at offset + r * rows + c * cols, or a
    gathered one's value at [row, col]."""
    if isinstance(operand, ir.Gathered):
        return f"[{operand.row.name}, {operand.col.name}: {terms[operand.value]}]"
    offset, rows, cols = (terms[e] for e in (operand.offset, operand.rows, operand.cols))
    return f"b{operand.buffer}(offset={offset}, rows={rows}, cols={cols})"


def _reduction(e, kids):
    loops = " ".join(f"for {v.name} in range({extent})"
                     for (v, _), (extent, _) in zip(e.loops, kids))
    return f"{e.op}({kids[-1][0]} {loops})", ATOM


# expression type -> its term (text, precedence) from its operands' terms (numbering.operands'
# order, then a Reduce's value)
RENDER = {
    ir.Const: lambda e, kids: simple_term(number(e.value, dtypes.BY_NAME[e.dtype])),
    ir.Var: lambda e, kids: (e.name, ATOM),
    ir.Dim: lambda e, kids: (f"d{e.slot}", ATOM),
    ir.Load: lambda e, kids: (f"b{e.buffer}[{kids[0][0]}]", ATOM),
    ir.Op: lambda e, kids: render_op(e.name, kids, f"[{e.dtype}]" if e.name == "cast" else ""),
    ir.Reduce: _reduction,
}


class _Printer:
    def __init__(self, lines):
        self.lines = lines
        self.temps = 0  # temporaries are numbered through the kernel

    def statements(self, stmts, depth):
        for s in stmts:
            pad = INDENT * depth
            if isinstance(s, ir.Loop):
                t = self.terms(s.extent)
                self.lines.append(f"{pad}{'parallel ' if s.parallel else ''}for {s.var.name} "
                                  f"in range({t[s.extent]}):")
                self.where(t, depth)
                self.statements(s.body, depth + 1)
            elif isinstance(s, ir.Store):
                t = self.terms(s.index, s.value)
                self.lines.append(f"{pad}b{s.buffer}[{t[s.index]}] "
                                  f"{'+=' if s.accumulate else '='} {t[s.value]}")
                self.where(t, depth)
            elif isinstance(s, ir.Gemm):
                t = self.terms(*ir.gemm_exprs(s))
                a, b, c = (operand_text(o, t) for o in (s.a, s.b, s.c))
                sign, value = "+=" if s.accumulate else "=", f"{a} @ {b}"
                if s.bias is not None or s.relu:  # C = relu((C +) A @ B + bias)
                    sign, value = "=", f"{c} + {value}" if s.accumulate else value
                    if s.bias is not None:
                        value = f"{value} + {operand_text(s.bias, t)}"
                    value = f"relu({value})" if s.relu else value
                self.lines.append(f"{pad}gemm {s.dtype} m={t[s.m]} n={t[s.n]} k={t[s.k]}: "
                                  f"{c} {sign} {value}")
                self.where(t, depth)
            else:  # ir.Check
                t = self.terms(s.ok, s.value)
                self.lines.append(f"{pad}check {t[s.ok]} else error {s.what} "
                                  f"(value {t[s.value]})")
                self.where(t, depth)

    def where(self, terms, depth):
        for name, text in terms.temporaries:
            self.lines.append(f"{INDENT * (depth + 1)}where {name} = {text}")

    def terms(self, *roots):
        """{root: its text} for the expressions of one statement, with `.temporaries`."""
        return _StatementTerms(self, roots)


class _StatementTerms(ValueNumbering):
    """The expressions of one statement, each distinct value rendered once (iteratively:
    chains of operations may be deeper than the recursion limit)."""

    def __init__(self, printer, roots):
        super().__init__()
        self.printer = printer
        self.order = []  # (expr, number, kids) in post-order
        self.uses = {}  # number -> how many operands and roots it is
        for root in roots:
            n = self(root)
            self.uses[n] = self.uses.get(n, 0) + 1
        self.temporaries = []  # (name, text)
        self.rendered = {}  # number -> term (text, precedence), a temporary's name if bound
        for e, n, kids in self.order:
            text = RENDER[type(e)](e, [self.rendered[self.number[id(k)]] for k in kids])
            bind = not isinstance(e, LEAVES) and (self.uses[n] > 1
                                                   or len(text[0]) > LONGEST_INLINE)
            if bind:
                name = f"t{printer.temps}"
                printer.temps += 1
                self.temporaries.append((name, text[0]))
                text = (name, ATOM)
            self.rendered[n] = text
        self.texts = {id(root): self.rendered[self.number[id(root)]][0] for root in roots}

    def __getitem__(self, root):
        return self.texts[id(root)]

    def first_seen(self, e, n, kids):
        self.order.append((e, n, kids))
        for k in kids:
            key = self.number[id(k)]
            self.uses[key] = self.uses.get(key, 0) + 1

