"""The rewrite engine: local rewrites written as patterns, applied bottom-up to a fixed point.

A rule is `Rule(name, pattern, build, doc)`: the pattern is an op with input patterns and an
optional predicate; `build(match)` returns the replacement tensor, made with the ordinary op
functions; `doc` says what it does in a few words of markdown (the README's table of levels
is made of them). A sweep copies the graph node by node (inputs first, so rewrites see
rewritten inputs) and tries the rules on each copy until none applies. A replacement must have
the same type as what it replaces; a rule whose replacement differs is not applied.
"""
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Callable

from ..errors import GraphcError
from ..ir.source import source_of
from .rebuild import holds_only_needed, reachable, rebuild


class Var:
    """Matches any tensor and binds it to `name` (the same name twice must match one tensor)."""

    def __init__(self, name, where=None):
        self.name = name
        self.where = where

    def match(self, tensor, binding):
        if self.where is not None and not self.where(tensor):
            return False
        bound = binding.get(self.name)
        if bound is not None:
            return bound is tensor
        binding[self.name] = tensor
        return True


class Const:
    """Matches a tensor whose every element is known to equal `value` (any known value when
    value is None); binds the scalar to `name`."""

    def __init__(self, value=None, name=None):
        self.value = value
        self.name = name

    def match(self, tensor, binding):
        known = constant_value(tensor)
        if known is None or (self.value is not None and known != self.value):
            return False
        if self.name:
            binding[self.name] = known
        return True


class Op:
    """Matches a node of op `op` whose inputs match `inputs` and whose attrs satisfy `where`;
    binds the matched tensor to `name` when given."""

    def __init__(self, op, *inputs, where=None, name=None):
        self.op = op
        self.inputs = inputs
        self.where = where
        self.name = name

    def match(self, tensor, binding):
        node = tensor.node
        if node.op != self.op or len(node.inputs) != len(self.inputs):
            return False
        if self.where is not None and not self.where(node):
            return False
        if self.name:
            binding[self.name] = tensor
        return all(p.match(t, binding) for p, t in zip(self.inputs, node.inputs))


class AnyNode(Op):
    """Matches a node of any op and any inputs that satisfies `where` (a rule that holds for
    every op declaring some fact of its OpSpec)."""

    def __init__(self, where, name=None):
        super().__init__(None, where=where, name=name)

    def match(self, tensor, binding):
        if not self.where(tensor.node):
            return False
        if self.name:
            binding[self.name] = tensor
        return True


def constant_value(tensor):
    """The one value every element of `tensor` has, when the graph says so; else None."""
    known = tensor.node.spec.uniform_value
    return known(tensor.node) if known is not None else None


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: Op
    build: Callable
    doc: str = ""


class Match(dict):
    """The bindings of a successful match; also readable as attributes (m.x)."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None


def _same_type(a, b):
    return a.type == b.type


# A sweep rewrites each node until no rule applies to it, but not the nodes that a replacement
# creates under itself (log(sigmoid x) -> -softplus(-x) leaves a new neg for the next sweep).
# Normal graphs reach the fixed point in two sweeps, the second finding nothing to do (the
# tests, the frontend's train steps); rules still firing after this many rewrite in a circle.
MAX_SWEEPS = 32


def rewrite(rules, outputs, max_sweeps=MAX_SWEEPS, pass_name="rewrite"):
    """(graph, outputs) with `rules` applied in sweeps until none fires (the fixed point)."""
    graph = outputs[0].graph if outputs else None
    for _ in range(max_sweeps):
        graph, outputs, fired = apply_rules(rules, outputs)
        if not fired:
            return graph, outputs
    counts = ", ".join(f"{name} ({n}x)" for name, n in sorted(fired.items()))
    raise GraphcError(f"pass {pass_name!r} reaches no fixed point: its rules still fired after "
                      f"{max_sweeps} sweeps, in the last one {counts}. Rules that undo each "
                      f"other are a bug of graphc's rules; excluding=[{pass_name!r}] works "
                      "around it")


def apply_rules(rules, outputs, steps_per_node=64):
    """(graph, outputs, what fired) after one sweep: `rules` applied bottom-up, each node
    rewritten until none applies to it. Where no pattern matches anywhere, nothing can fire:
    the graph comes back as it is."""
    by_op = defaultdict(list)
    for rule in rules:
        by_op[rule.pattern.op].append(rule)
    any_op = by_op.pop(None, [])  # AnyNode patterns: tried on every node, after the others
    fired = Counter()
    if holds_only_needed(outputs) and not _matches_anywhere(by_op, any_op, outputs):
        return (outputs[0].graph if outputs else None), outputs, fired

    def replace(old_node, tensor):
        history = []
        while True:
            for rule in by_op.get(tensor.node.op, []) + any_op:
                binding = Match()
                if not rule.pattern.match(tensor, binding):
                    continue
                with tensor.graph.as_default(), source_of(old_node.source):
                    new = rule.build(binding)
                if new is None or new is tensor or not _same_type(new, tensor):
                    continue
                history.append(rule.name)
                fired[rule.name] += 1
                tensor = new
                break
            else:
                return tensor
            if len(history) > steps_per_node:
                loop = ", ".join(sorted(set(history[-8:])))
                raise GraphcError(f"rewrite rules loop on node '{old_node.name}' "
                                  f"({old_node.op}): {loop} kept firing", old_node)

    graph, new_outputs = rebuild(outputs, replace)
    return graph, new_outputs, fired


def _matches_anywhere(by_op, any_op, outputs):
    """Whether some rule's pattern matches some tensor the outputs need."""
    return any(rule.pattern.match(t, Match())
               for node in reachable(outputs) for t in node.outputs
               for rule in by_op.get(node.op, []) + any_op)
