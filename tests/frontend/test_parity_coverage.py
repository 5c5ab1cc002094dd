"""Every public class of gk.layers, gk.losses, gk.metrics and gk.optimizers has a case in the
Keras parity scripts (benchmarks/keras_*_parity.py and the tables they import), so that a new
class cannot ship unchecked against Keras. No Keras is needed: the scripts' code is read, its
comments left out, for the names it uses (identifiers, and the words of its strings, where
the case tables name classes as lib attributes)."""
import glob
import io
import os
import re
import sys
import tokenize

import graphc.frontend as gk
from graphc.errors import GraphcError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPTS = sorted(glob.glob(os.path.join(ROOT, "benchmarks", "keras_*_parity.py"))
                 + glob.glob(os.path.join(ROOT, "benchmarks", "_parity*.py")))

# (module, class name): why it has no parity case of its own
EXEMPT = {
    ("layers", "Layer"): "the base class every layer case exercises",
    ("layers", "InputSpec"): "a description of a layer's inputs, not a layer",
    ("layers", "Wrapper"): "the base of the wrappers (TimeDistributed, Bidirectional, ...)",
    ("losses", "Loss"): "the base class",
    ("metrics", "Metric"): "the base class",
    ("optimizers", "Optimizer"): "the base class",
    ("optimizers", "Slot"): "graphc.train's optimizer-slot spec, re-exported for custom rules",
}
# and graphc's error classes (GraphcError and its subclasses) that the modules import


def used_names():
    """The identifiers of the scripts' code and the words of their string literals."""
    names = set()
    for path in SCRIPTS:
        with open(path) as f:
            for tok in tokenize.generate_tokens(io.StringIO(f.read()).readline):
                if tok.type == tokenize.NAME:
                    names.add(tok.string)
                elif tok.type == tokenize.STRING:
                    names.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", tok.string))
    return names


def public_classes(module):
    """{class: its public names in module}, errors left out: aliases of one class are one
    entry."""
    classes = {}
    for name in dir(module):
        value = getattr(module, name)
        if name[:1].isupper() and isinstance(value, type) and not issubclass(value, GraphcError):
            classes.setdefault(value, []).append(name)
    return classes


def test_scripts_are_found():
    assert len(SCRIPTS) >= 5, SCRIPTS


def test_every_public_class_has_a_keras_parity_case():
    used = used_names()
    missing = []
    for module in ("layers", "losses", "metrics", "optimizers"):
        for cls, names in public_classes(getattr(gk, module)).items():
            if any((module, n) in EXEMPT for n in names) or used.intersection(names):
                continue
            missing.append(f"{module}.{'/'.join(sorted(names))}")
    assert not missing, ("classes without a Keras parity case in benchmarks/keras_*_parity.py "
                         f"(add one, or an EXEMPT entry with its reason): {missing}")


def test_the_exemptions_name_public_classes():
    """An exemption outlives no class: each names a class its module still has."""
    for module, name in EXEMPT:
        assert isinstance(getattr(getattr(gk, module), name, None), type), (module, name)


def test_the_breadth_cases_have_names_of_their_own():
    """peer_run and compare find a case by its name: a name in two tables would run one
    case twice and the other never."""
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    try:
        import keras_breadth_parity as breadth
    finally:
        sys.path.pop(0)
    names = breadth.CASE_NAMES
    assert len(names) == len(set(names)), sorted({n for n in names if names.count(n) > 1})
