"""The pass database: every optimization pass, by name, tags and position.

An optimization level is a query over it: the passes whose tags meet the level's, in position
order, minus `excluding`, plus `including` (both by name or tag).
"""
from dataclasses import dataclass, field
from typing import Callable

from ..errors import GraphcError
from . import rules
from .constant_folding import constant_folding
from .rebuild import holds_only_needed, rebuild
from .rewrite import apply_rules


@dataclass(frozen=True)
class Pass:
    name: str
    position: int
    tags: frozenset
    run: Callable  # outputs -> (graph, outputs)
    doc: str = ""
    rules: tuple = field(default=())


# A replacement can expose new matches above it; a few sweeps reach the fixed point.
MAX_SWEEPS = 4


def _rule_pass(rule_list):
    def run(outputs):
        for _ in range(MAX_SWEEPS):
            graph, outputs, fired = apply_rules(rule_list, outputs)
            if not fired:
                break
        return graph, outputs
    return run


def dce(outputs):
    """Drop every node no output depends on."""
    if holds_only_needed(outputs):
        return outputs[0].graph, outputs
    return rebuild(outputs)


PASSES = [
    Pass("canonicalize", 10, frozenset({"O1", "O2", "O3", "canonicalize"}),
         _rule_pass(rules.CANONICALIZE), "constants to the right, x - c to x + (-c)",
         tuple(rules.CANONICALIZE)),
    Pass("constant_folding", 20, frozenset({"O1", "O2", "O3", "folding"}), constant_folding,
         "nodes of constants become constants"),
    Pass("algebraic", 30, frozenset({"O2", "O3", "algebraic"}), _rule_pass(rules.ALGEBRAIC),
         "x*1, x+0, x-x, neg(neg x), double transpose, reshape chains, x/c", tuple(rules.ALGEBRAIC)),
    Pass("stabilize", 40, frozenset({"O2", "O3", "stabilize", "numerics"}),
         _rule_pass(rules.STABILIZE), "log(softmax) -> log_softmax, log(1+x) -> log1p, ...",
         tuple(rules.STABILIZE)),
    Pass("fast_math", 50, frozenset({"O3", "fast_math"}), _rule_pass(rules.FAST_MATH),
         "rewrites exact only on part of the domain: x*0 -> 0 and x-x -> 0 (finite x), "
         "exp(log x) -> x (positive x), x/c -> x*(1/c) (within an ulp)",
         tuple(rules.FAST_MATH)),
    Pass("dce", 90, frozenset({"O1", "O2", "O3", "dce"}), dce, "drop dead nodes"),
]
BY_NAME = {p.name: p for p in PASSES}
LEVELS = ("O0", "O1", "O2", "O3")
# Fusion is the last stage: it partitions the optimized graph into kernel groups instead of
# rewriting it, so it is queried by name or tag like a pass but run by the pass manager.
FUSION_TAGS = frozenset({"O2", "O3", "fusion"})


def query(optimize="O2", excluding=(), including=()):
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
