"""Executable: the compiled form of one (graph, fetches, feeds) triple, the base of every
device's; ReferenceExecutable: device "reference".

Compiling runs the pass pipeline over the fetches' subgraph; the reference device runs by
evaluating the optimized graph node by node. Sources (feeds, variables, random draws) and assignments are
resolved here, everything else through the ops' references. Placeholders, variables and random
nodes are matched to the session's state by their `uid`, which every pass preserves.
Assignments are handed back, so the session applies them only after the whole run succeeded.
"""
from graphc.errors import FeedError, GraphcError
from graphc.ir.types import format_type
from graphc.passes import optimize

from .reference import check_finite, evaluate, memory_limit, random_draw

# the ops a run feeds by uid: placeholders, and the arguments of a compiled loop or cond body
# (whose executable's feeds are the body's arguments)
FED_OPS = ("placeholder", "argument")


class DeviceValue:
    """A variable's value that a device keeps in its own memory: the session holds it as the
    variable's value, so that the next run on that device finds it in place, and asks for a
    host copy (`host()`) only where one is needed (get_value, save, another device)."""
    shape = ()
    dtype = None

    def host(self):
        """The value as a host array (read-only: the device's copy stays the value)."""
        raise NotImplementedError


class Options:
    """How a session or function compiles: optimization level and pass filters; allow_tf32:
    float32 matrix products may round their inputs to tf32 on the GPU's tensor cores (devices
    without them ignore it)."""

    def __init__(self, optimize="O2", excluding=(), including=(), debug=False,
                 check_numerics=False, allow_tf32=False):
        self.optimize = optimize
        self.excluding = tuple(excluding)
        self.including = tuple(including)
        self.debug = bool(debug)
        self.check_numerics = bool(check_numerics)
        self.allow_tf32 = bool(allow_tf32)


class Executable:
    outputs_owned = False  # run() may return arrays it keeps (the session copies them)
    reads_device_values = False  # run() takes DeviceValues as variables' values as they are

    def __init__(self, fetches, feeds, options, name="session", effects=()):
        """effects: more tensors to compute (assignments) that are fetched as None."""
        self.fetches = tuple(fetches) + tuple(effects)
        self.feeds = tuple(feeds)
        self.options = options
        # Feeding an inner tensor replaces it; compile such runs unoptimized so that tensor
        # survives the passes unchanged.
        inner_feeds = any(t.node.op not in FED_OPS for t in self.feeds)
        level = "O0" if inner_feeds else options.optimize
        self.compilation = self._compile(level, name)
        self.outputs = self.compilation.outputs
        self._map_feeds(inner_feeds)
        self.nodes = self._schedule()
        # a fed placeholder that no fetch needs is not fed, as one the passes dropped
        scheduled = {n.id for n in self.nodes}
        self.feed_targets = [t if t is not None and t.node.id in scheduled else None
                             for t in self.feed_targets]
        # fetches that give None (gc.group and other ops run for their effect)
        self.fetch_none = tuple(t.node.spec.fetch_none
                                for t in self.fetches[:len(self.fetches) - len(effects)]
                                ) + (True,) * len(effects)
        self.variable_uids = [n.attrs["uid"] for n in self.nodes if n.op == "variable"]
        self._check_assignments()

    def _compile(self, level, name):
        """The optimized graph (a passes.Compilation): what the reference runs. A native
        device compiles it further, through graphc.compiler."""
        o = self.options
        return optimize(list(self.fetches), level, o.excluding, o.including, o.debug, name)

    def _map_feeds(self, inner_feeds):
        if inner_feeds or self.compilation.graph is self.fetches[0].graph:
            self.feed_targets = list(self.feeds)
            return
        by_uid = {n.attrs["uid"]: n for n in self.compilation.graph.nodes
                  if n.op in FED_OPS}
        # a placeholder the passes found unneeded is simply not fed
        self.feed_targets = [by_uid[t.node.attrs["uid"]].outputs[0]
                             if t.node.attrs["uid"] in by_uid else None for t in self.feeds]

    def _schedule(self):
        fed = {(t.node.id, t.index) for t in self.feed_targets if t is not None}
        needed = set()
        stack = [t.node for t in self.outputs]
        graph = self.outputs[0].graph
        while stack:
            node = stack.pop()
            if node.id in needed:
                continue
            needed.add(node.id)
            if all((node.id, i) in fed for i in range(len(node.outputs))):
                continue
            stack.extend(t.node for t in node.inputs)
        return [graph.nodes[i] for i in sorted(needed)]

    def _check_assignments(self):
        targets = {}
        for node in self.nodes:
            if node.op == "assign":
                var = node.inputs[0].node
                uid = var.attrs["uid"]
                if uid in targets:
                    raise GraphcError(f"variable '{var.name}' is assigned twice in one run (by "
                                      f"'{targets[uid].name}' and '{node.name}')", node)
                targets[uid] = node

    def stats(self):
        return self.compilation.stats()

    def run_again(self, args, read_variable, rng_for):
        """A shortcut past the feed checks for arguments exactly like the last run's: what
        run() returns, or None (always, here) where run() must be taken."""
        return None

    def run(self, feed_arrays, read_variable, rng_for):
        """Evaluate; returns (fetched arrays, {variable uid: new value})."""
        raise NotImplementedError

    def reference_values(self, feed_arrays, read_variable, rng_for):
        """The optimized graph evaluated node by node through the ops' numpy references:
        ({(node id, output index): array}, {variable uid: new value}). Device "reference"
        runs this; a native device falls back on it where it cannot plan a run."""
        values = {}
        for t, arr in zip(self.feed_targets, feed_arrays):
            if t is not None:
                values[(t.node.id, t.index)] = arr
        updates = {}
        limit = memory_limit()
        for node in self.nodes:
            if (node.id, 0) in values:
                continue
            inputs = [values[(t.node.id, t.index)] for t in node.inputs]
            if node.op == "placeholder":
                raise FeedError(f"placeholder '{node.name}' needs a value: add it to feed_dict "
                                f"(expected {format_type(node.outputs[0].type)})", node)
            if node.op == "variable":
                outs = (read_variable(node.attrs["uid"]),)
            elif node.op == "assign":
                new = evaluate(node, inputs, limit)[0]
                updates[node.inputs[0].node.attrs["uid"]] = new
                outs = (new,)
            elif node.spec.random:
                outs = (random_draw(node, rng_for(node.attrs["uid"], node.attrs["seed"]),
                                    inputs, limit),)
            else:
                outs = evaluate(node, inputs, limit)
            if self.options.check_numerics:
                check_finite(node, outs)
            for i, out in enumerate(outs):
                values[(node.id, i)] = out
        return values, updates


class ReferenceExecutable(Executable):
    """Device "reference": the optimized graph evaluated node by node through the ops' numpy
    references, the oracle every other device is tested against."""

    def run(self, feed_arrays, read_variable, rng_for):
        """Evaluate; returns (fetched arrays, {variable uid: new value})."""
        values, updates = self.reference_values(feed_arrays, read_variable, rng_for)
        return [values[(t.node.id, t.index)] for t in self.outputs], updates
