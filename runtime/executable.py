"""Executable: the compiled form of one (graph, fetches, feeds) triple.

It holds the nodes to run in order and runs them on the reference device; sources (feeds,
variables, random draws) and assignments are resolved here, everything else through the ops'
references. Assignments are collected and handed back, so the session applies them only after
the whole run has succeeded.
"""
from graphc.errors import FeedError, GraphcError

from .reference import check_finite, evaluate, memory_limit, random_draw


class Executable:
    def __init__(self, graph, fetches, feeds, device="reference", check_numerics=False):
        self.graph = graph
        self.fetches = tuple(fetches)
        self.feeds = tuple(feeds)
        self.device = device
        self.check_numerics = check_numerics
        self.nodes = self._schedule()
        self.variables = [n for n in self.nodes if n.op == "variable"]
        self._check_assignments()

    def _schedule(self):
        fed = {(t.node.id, t.index) for t in self.feeds}
        needed = set()
        stack = [t.node for t in self.fetches]
        while stack:
            node = stack.pop()
            if node.id in needed:
                continue
            needed.add(node.id)
            if all((node.id, i) in fed for i in range(len(node.outputs))):
                continue
            stack.extend(t.node for t in node.inputs)
        return [self.graph.nodes[i] for i in sorted(needed)]

    def _check_assignments(self):
        targets = {}
        for node in self.nodes:
            if node.op == "assign":
                var = node.inputs[0].node
                if var.id in targets:
                    raise GraphcError(f"variable '{var.name}' is assigned twice in one run (by "
                                      f"'{targets[var.id].name}' and '{node.name}')", node)
                targets[var.id] = node
        self.assigned = targets

    def run(self, feed_arrays, read_variable, rng_for):
        """Evaluate; returns (fetched arrays, {variable node id: new value})."""
        values = {}
        for t, arr in zip(self.feeds, feed_arrays):
            values[(t.node.id, t.index)] = arr
        updates = {}
        limit = memory_limit()
        for node in self.nodes:
            if (node.id, 0) in values:
                continue
            inputs = [values[(t.node.id, t.index)] for t in node.inputs]
            if node.op == "placeholder":
                raise FeedError(f"placeholder '{node.name}' needs a value: add it to feed_dict "
                                f"(expected {node.outputs[0].type})", node)
            if node.op == "variable":
                outs = (read_variable(node.outputs[0]),)
            elif node.op == "assign":
                var = node.inputs[0]
                new = evaluate(node, inputs, limit)[0]
                updates[var.node.id] = new
                outs = (new,)
            elif node.op in ("random_normal", "random_uniform"):
                outs = (random_draw(node, rng_for(node), inputs),)
            else:
                outs = evaluate(node, inputs, limit)
            if self.check_numerics:
                check_finite(node, outs)
            for i, out in enumerate(outs):
                values[(node.id, i)] = out
        return [values[(t.node.id, t.index)] for t in self.fetches], updates
