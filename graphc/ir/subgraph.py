"""Sub-graphs: the bodies of loops and the branches of conditionals.

A `Body` is a Graph of its own, with argument nodes (op "argument": a value the enclosing op
gives the body each time it runs it) and result tensors. A loop or cond node holds its bodies
as attrs; a Body hashes by identity, so two loops over different bodies never merge.

A body is built inside a `BodyBuilder` (a context manager that also makes the body's graph the
default graph). While one is active, `graphc.ops.registry.apply` hands every input tensor from
an enclosing graph to `capture`, which maps it to an argument of the body, created once per
outer tensor; the outer tensor is recorded in `captured`, and the enclosing op passes it in.
Nested bodies capture through each level: a tensor two levels out becomes an argument of the
middle body too. Variables and placeholders are captured like any tensor.

A builder made with `draws=True` (the fn of a scan in the outermost graph) also takes random
draws: each becomes an argument of the body standing for that step's numbers (`draw`), which
the scan draws for every step at once before the loop and passes in as a sequence.

Every other loop body (`runs="steps"`) and branch (`runs="once"`) takes random draws as pure
functions of a key drawn outside and of the step index of every loop around them (see
graphc/ops/body_draws.py). A loop body gives its index through `step_index()`: an int64
argument, created on first request, that the loop passes in as one more carry (0, 1, ...),
placed after the explicit carries (`finish`'s `carries`).
"""
import threading

from ..errors import GraphMismatchError
from . import dtypes
from .graph import Graph, get_default_graph, new_uid, nodes_needed
from .types import TensorType

_local = threading.local()


def _builders():
    if not hasattr(_local, "builders"):
        _local.builders = []
    return _local.builders


def active_builder():
    """The innermost BodyBuilder being built in the default graph, or None."""
    stack = _builders()
    if stack and stack[-1].graph is get_default_graph():
        return stack[-1]
    return None


class Body:
    """A built body: its graph, argument tensors, result tensors and a name for dumps."""
    is_body = True  # what Graph.holds_bodies looks for (graph.py cannot import this module)

    def __init__(self, graph, arguments, results, name):
        self.graph = graph
        self.arguments = tuple(arguments)
        self.results = tuple(results)
        self.name = name
        self.nodes = nodes_needed(list(self.results))  # what running it evaluates, in order

    # identity, not content: a node attr (see graph.Graph.add_node's key)
    __hash__ = object.__hash__

    def __eq__(self, other):
        return self is other

    def __repr__(self):
        return (f"<body {self.name}: {len(self.arguments)} args -> {len(self.results)} results, "
                f"{len(self.nodes)} nodes>")

    @property
    def argument_types(self):
        return [t.type for t in self.arguments]

    @property
    def result_types(self):
        return [t.type for t in self.results]

    def infer(self, arg_types):
        """The result types for arguments of `arg_types` (concrete at run time): the body's
        nodes' inference run over it."""
        if list(arg_types) == self.argument_types:
            return self.result_types
        types = {}
        for t, a in zip(self.arguments, arg_types):
            types[(t.node.id, t.index)] = a
        for node in self.nodes:
            if (node.id, 0) in types:
                continue
            ins = [types[(t.node.id, t.index)] for t in node.inputs]
            out = node.spec.infer(*ins, **node.attrs)
            outs = [out] if isinstance(out, TensorType) else list(out)
            for i, o in enumerate(outs):
                types[(node.id, i)] = o
        return [types[(t.node.id, t.index)] for t in self.results]


class BodyBuilder:
    """Builds a Body: `with BodyBuilder("scan") as b: x = b.argument(type); ...;
    body = b.finish(results)`. Outer tensors used inside become arguments (see the module)."""

    def __init__(self, name, draws=False, runs=None):
        self.name = name
        # the random draws of the body: [(argument, op, attrs, per-step shape)]; None where
        # the body takes no draw as an argument
        self.draws = [] if draws else None
        # how the body runs per run of its op: "steps" (a loop's, which may give its step
        # index), "once" (a branch's), None (unknown to graphc.ops.body_draws: no draws)
        self.runs = runs
        self.index = None  # the step-index argument, once asked for
        self.graph = Graph()
        self.outer = get_default_graph()
        self.parent = active_builder()  # the builder of the enclosing body, if any
        self.arguments = []
        self.captured = []  # outer tensors (of self.outer), in the order of their arguments
        self._by_outer = {}
        self._depth = None

    def __enter__(self):
        _builders().append(self)
        self._ctx = self.graph.as_default()
        self._ctx.__enter__()
        return self

    def __exit__(self, *exc):
        self._ctx.__exit__(*exc)
        popped = _builders().pop()
        assert popped is self
        return False

    def _new_argument(self, type_, name):
        from ..ops.registry import get_spec
        from .source import user_source
        node = self.graph.add_node(get_spec("argument"), [],
                                   {"uid": new_uid(), "dtype": type_.dtype,
                                    "shape": tuple(type_.shape)},
                                   [TensorType(type_.dtype, type_.shape)], name, user_source())
        return node.outputs[0]

    def argument(self, type_, name="arg"):
        """A new explicit argument (explicit ones come before every captured one)."""
        assert not self.captured, "explicit arguments come first"
        t = self._new_argument(type_, name)
        self.arguments.append(t)
        return t

    def capture(self, t):
        """`t` as a tensor of the body: itself where it is one, else the argument standing
        for it (made once per outer tensor)."""
        if t.graph is self.graph:
            return t
        key = (id(t.graph), t.node.id, t.index)
        arg = self._by_outer.get(key)
        if arg is not None:
            return arg
        if t.graph is self.outer:
            outer = t
        elif self.parent is not None:
            outer = self.parent.capture(t)
        else:
            raise GraphMismatchError(
                f"'{t.name}' belongs to a graph that encloses no loop body being built; "
                "tensors of different graphs cannot be combined")
        arg = self._new_argument(t.type, "captured_" + t.name.replace("/", "_").replace(":", "_"))
        self._by_outer[key] = arg
        self._by_outer[(id(outer.graph), outer.node.id, outer.index)] = arg
        self.captured.append(outer)
        self.arguments.append(arg)
        return arg

    def draw(self, op, shape, attrs):
        """The argument standing for a random draw `op` of per-step `shape` (see the module)."""
        t = self._new_argument(TensorType(attrs["dtype"], shape), op)
        self.draws.append((t, op, attrs, tuple(shape)))
        return t

    def step_index(self):
        """The argument giving the step's index (see the module)."""
        assert self.runs == "steps", self.name
        if self.index is None:
            self.index = self._new_argument(TensorType(dtypes.int64, ()), "step")
        return self.index

    def finish(self, results, sequences=0, carries=0):
        """The Body of `results` (tensors of any enclosing graph, captured where outer); the
        arguments of the draws follow the first `sequences` arguments, being sequences too,
        and the step index, where asked for, the `carries` explicit arguments after those
        (the caller gives its next value as result `carries`)."""
        results = [self.capture(t) for t in results]  # which may capture more arguments
        draws = [t for t, _, _, _ in self.draws or ()]
        index = [self.index] if self.index is not None else []
        first, rest = sequences + carries, self.arguments
        arguments = rest[:sequences] + draws + rest[sequences:first] + index + rest[first:]
        return Body(self.graph, arguments, results, self.name)
