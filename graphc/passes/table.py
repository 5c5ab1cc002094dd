"""The README's table of optimization levels, rendered from the pass database.

Every pass and rule says what it does (Pass.doc, Rule.doc), so the table cannot drift from
what the levels run. `python -m graphc.passes.table` prints it; `python -m graphc.passes.table
README.md` rewrites it in place, between BEGIN and END.
"""
import sys

from ..errors import GraphcError
from ..io.atomic import write_text
from .database import DEFAULT_LEVEL, FUSION_DOC, LEVELS, query

BEGIN = ("<!-- generated from graphc/passes; regenerate with: "
         "python -m graphc.passes.table README.md -->\n")
END = "<!-- end of the generated table -->\n"


def _describe(p):
    """`name` (doc: what its rules do), each distinct rule doc once, in rule order."""
    for rule in p.rules:
        if not rule.doc:
            raise GraphcError(f"rule {rule.name!r} of pass {p.name!r} has no doc")
    rule_docs = ", ".join(dict.fromkeys(rule.doc for rule in p.rules))
    doc = ": ".join(part for part in (p.doc, rule_docs) if part)
    return f"`{p.name}` ({doc})" if doc else f"`{p.name}`"


def _selection(level):
    passes, fuse = query(level)
    return [(p.name, _describe(p)) for p in passes] + (
        [("fusion", f"`fusion` ({FUSION_DOC})")] if fuse else [])


def levels_table():
    """The markdown table: each level's passes, as what it adds to the level before."""
    rows = ["| level | passes |", "|-------|--------|"]
    previous_level, previous = None, []
    for level in LEVELS:
        selection = _selection(level)
        names = {name for name, _ in previous}
        if previous and names <= {name for name, _ in selection}:
            added = [text for name, text in selection if name not in names]
            passes = f"{previous_level} + " + ", ".join(added)
        else:
            passes = ", ".join(text for _, text in selection) or "none: the graph runs as built"
        label = f"`{level}`" + (" (default)" if level == DEFAULT_LEVEL else "")
        rows.append(f"| {label} | {passes} |")
        previous_level, previous = level, selection
    return "\n".join(rows) + "\n"


def generated_block():
    return BEGIN + levels_table() + END


def update(path):
    """Replace the generated block in the file at `path` with the current one."""
    with open(path) as f:
        text = f.read()
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise GraphcError(f"{path} holds no generated table (a line {BEGIN.strip()!r}, the "
                          f"table, and a line {END.strip()!r})")
    write_text(path, text[:start] + generated_block() + text[end + len(END):])


if __name__ == "__main__":
    if len(sys.argv) > 1:
        update(sys.argv[1])
    else:
        sys.stdout.write(levels_table())
