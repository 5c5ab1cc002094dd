"""The pass database: every optimization pass, by name, tags and position.

An optimization level is a query over it: the passes whose tags meet the level's, in position
order, minus `excluding`, plus `including` (both by name or tag).
"""
from dataclasses import dataclass, field
from functools import partial
from typing import Callable

from ..errors import GraphcError
from . import rewrite_rules as rules
from .constant_folding import MAX_FOLDED_ELEMENTS, constant_folding
from .hoisting import loop_invariant_hoisting
from .layout import LAYOUT
from .rebuild import holds_only_needed, rebuild
from .rewrite import rewrite
from .accumulators import loop_accumulators
from .step_values import keep_step_values


@dataclass(frozen=True)
class Pass:
    name: str
    position: int
    tags: frozenset
    run: Callable  # outputs -> (graph, outputs)
    doc: str = ""  # markdown; a rule pass's rules say the rest (see table.py)
    rules: tuple = field(default=())


def _rule_pass(name, position, tags, rule_list, doc=""):
    """A pass that rewrites with `rule_list` to a fixed point."""
    rule_list = tuple(rule_list)
    return Pass(name, position, frozenset(tags), partial(rewrite, rule_list, pass_name=name),
                doc, rule_list)


def dce(outputs):
    """Drop every node no output depends on."""
    if holds_only_needed(outputs):
        return outputs[0].graph, outputs
    return rebuild(outputs)


PASSES = [
    _rule_pass("canonicalize", 10, {"O1", "O2", "O3", "canonicalize"}, rules.CANONICALIZE),
    Pass("constant_folding", 20, frozenset({"O1", "O2", "O3", "folding"}), constant_folding,
         f"nodes computed from constants alone become constants, up to "
         f"{MAX_FOLDED_ELEMENTS:,} elements"),
    Pass("loop_invariants", 25, frozenset({"O2", "O3", "loops"}), loop_invariant_hoisting,
         "work a loop body repeats on the same values moves before the loop, and per-step "
         "products and elementwise ops of sequence slices (`x_t @ W`) become one op over the "
         "whole sequence"),
    Pass("loop_step_values", 26, frozenset({"O2", "O3", "loops"}), keep_step_values,
         "a loop's sequence computed from an earlier loop's inputs and states (a gradient's "
         "recomputed forward values) becomes a per-step output of that earlier loop"),
    Pass("loop_accumulators", 27, frozenset({"O2", "O3", "loops"}), loop_accumulators,
         "a carry that only sums per-step matrix products (`dU += h^T @ dz`, a gradient's "
         "weight accumulator) becomes one product over all steps after the loop"),
    _rule_pass("algebraic", 30, {"O2", "O3", "algebraic"}, rules.ALGEBRAIC),
    _rule_pass("layout", 35, {"O2", "O3", "layout"}, LAYOUT,
               "transposes move below the ops that commute with them (elementwise ops, "
               "reductions, concat, pad) until they meet their inverse, so NCHW chains of "
               "convolutions run in NHWC between one transpose in and one out"),
    _rule_pass("stabilize", 40, {"O2", "O3", "stabilize", "numerics"}, rules.STABILIZE),
    _rule_pass("fast_math", 50, {"O3", "fast_math"}, rules.FAST_MATH,
               "rewrites exact only on part of the domain or within an ulp"),
    Pass("dce", 90, frozenset({"O1", "O2", "O3", "dce"}), dce, "drops nodes no output needs"),
]
BY_NAME = {p.name: p for p in PASSES}
LEVELS = ("O0", "O1", "O2", "O3")
DEFAULT_LEVEL = "O2"
# Fusion is the last stage: it partitions the optimized graph into fusion groups instead of
# rewriting it, so it is queried by name or tag like a pass but run by the pass manager.
FUSION_TAGS = frozenset({"O2", "O3", "fusion"})
FUSION_DOC = "nodes into fusion groups"


def query(optimize=DEFAULT_LEVEL, excluding=(), including=()):
    """(passes in order, whether fusion runs) for a level and name/tag filters."""
    if optimize not in LEVELS:
        raise GraphcError(f"unknown optimization level {optimize!r}; expected one of "
                          f"{', '.join(LEVELS)}")
    known = set(BY_NAME) | {"fusion"} | {t for p in PASSES for t in p.tags} | FUSION_TAGS
    for name in list(excluding) + list(including):
        if name not in known:
            raise GraphcError(f"unknown pass or tag {name!r}; known: {', '.join(sorted(known))}")

    def selected(name, tags):
        if name in excluding or tags & set(excluding):
            return False
        return optimize in tags or name in including or bool(tags & set(including))

    passes = [p for p in PASSES if selected(p.name, p.tags)]
    return passes, selected("fusion", FUSION_TAGS)
