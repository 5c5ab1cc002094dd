"""A canonical text of kernels, for cache keys: two kernel lists that a code generator turns
into the same code have the same text, and any difference in a name or a statement shows.

Keying a compiled program on this text, not on the code generated from it, lets a warm cache
hit skip code generation. Every distinct expression is written once, as a numbered line (see
numbering.py), so the text grows with the kernels' size, however often values are shared.
Statements are written field by field, whatever their type: a new kind of statement needs no
change here. A kernel's `nodes` and `comment` are for people reading dumps and are left out.
"""
import dataclasses

from . import ir
from .numbering import ValueNumbering, fields


def fingerprint(kernels):
    """The canonical text of a list of kernels."""
    writer = _Writer()
    for kernel in kernels:
        writer.lines.append(f"kernel {kernel.name} {writer.describe(kernel.body)}")
    return "\n".join(writer.lines)


class _Writer(ValueNumbering):
    def __init__(self):
        super().__init__()
        self.lines = []

    def first_seen(self, e, n, kids):
        operands = " ".join(f"%{self.number[id(k)]}" for k in kids)
        self.lines.append(f"%{n} = {type(e).__name__} {fields(e)!r} {operands}")

    def describe(self, value):
        """A statement, an operand or a field as text; expressions by their number (their
        lines are written first)."""
        if isinstance(value, ir.Expr):
            return f"%{self(value)}"
        if isinstance(value, tuple):
            return "(" + ", ".join(self.describe(v) for v in value) + ")"
        if dataclasses.is_dataclass(value):
            parts = (f"{f.name}={self.describe(getattr(value, f.name))}"
                     for f in dataclasses.fields(value))
            return f"{type(value).__name__}({', '.join(parts)})"
        return repr(value)
