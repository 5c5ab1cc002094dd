"""Graph, Node and Tensor: the symbolic program a user builds.

A Graph owns its nodes in creation order, which is a topological order. Nodes are immutable
and hash-consed: adding the same op with the same inputs and attrs returns the existing node,
which gives common-subexpression elimination for free and a stable content key for caches.
Stateful ops (variables, assignments, random draws, placeholders) carry a unique `uid` attr,
so they are never merged.
"""
import contextlib
import hashlib
import itertools
import threading

import numpy as np

from ..errors import GraphcError, GraphMismatchError, TruthValueError
from .types import format_shape


class FrozenArray:
    """An ndarray made hashable by content, for constant attrs."""

    __slots__ = ("array", "_digest", "_uniform")

    def __init__(self, array):
        self.array = np.array(array, order="C")  # a copy; ascontiguousarray would make 0-d 1-d
        self.array.setflags(write=False)
        h = hashlib.sha256()
        h.update(str((self.array.dtype.str, self.array.shape)).encode())
        h.update(self.array.tobytes())
        self._digest = h.hexdigest()
        self._uniform = ()  # not computed yet

    @property
    def uniform_value(self):
        """The one value every element has (a Python scalar), or None."""
        if self._uniform == ():
            arr = self.array
            first = arr.flat[0] if arr.size else None
            same = first is not None and not np.isnan(first) and bool(np.all(arr == first))
            self._uniform = first.item() if same else None
        return self._uniform

    @property
    def digest(self):
        return self._digest

    def __hash__(self):
        return hash(self._digest)

    def __eq__(self, other):
        return isinstance(other, FrozenArray) and other._digest == self._digest

    def __repr__(self):
        if self.array.size <= 6:
            return np.array2string(self.array, separator=",").replace("\n", "")
        return f"<{self.array.dtype}{list(self.array.shape)} {self._digest[:8]}>"


def freeze(value):
    """Make an attr value hashable: lists become tuples, arrays FrozenArrays."""
    if isinstance(value, np.ndarray):
        return FrozenArray(value)
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    return value


class Node:
    """One op application: op name, input tensors, attrs, typed outputs, name and source."""

    __slots__ = ("op", "spec", "inputs", "attrs", "outputs", "name", "source", "graph", "id",
                 "__weakref__")

    def __init__(self, graph, spec, inputs, attrs, out_types, name, source, node_id):
        init = object.__setattr__  # __setattr__ below refuses every later change
        init(self, "graph", graph)
        init(self, "spec", spec)
        init(self, "op", spec.name)
        init(self, "inputs", tuple(inputs))
        init(self, "attrs", attrs)
        init(self, "name", name)
        init(self, "source", source)
        init(self, "id", node_id)
        init(self, "outputs", tuple(_make_tensor(spec.tensor_class, self, i, t)
                                    for i, t in enumerate(out_types)))

    def __repr__(self):
        return f"<Node {self.name} {self.op}>"

    def __setattr__(self, key, value):
        raise AttributeError("nodes are immutable; passes build new graphs")


class Tensor:
    """A symbolic value: output `index` of `node`. Operators build new nodes."""

    __slots__ = ("node", "index", "type")
    __array_ufunc__ = None  # numpy defers to our reflected operators: np.float32(2) * t works

    def __init__(self, node, index, type_):
        self.node = node
        self.index = index
        self.type = type_

    shape = property(lambda self: self.type.shape)
    dtype = property(lambda self: self.type.dtype)
    graph = property(lambda self: self.node.graph)
    op = property(lambda self: self.node.op)
    ndim = property(lambda self: len(self.type.shape))
    rank = ndim

    @property
    def name(self):
        return self.node.name if self.index == 0 else f"{self.node.name}:{self.index}"

    def __repr__(self):
        return (f"<Tensor '{self.name}' {self.dtype.name}{format_shape(self.shape)}"
                f" op={self.op}>")

    def __bool__(self):
        raise TruthValueError(
            f"tensor '{self.name}' is symbolic and has no truth value (in an `if`, `and`, `or`, "
            "`not`, or `in` a list); `==` and `!=` build elementwise comparisons: use "
            "gc.equal / gc.where for values, `is` to ask whether two tensors are the same",
            self.node)

    def __len__(self):
        first = self.shape[0] if self.shape else None
        if not isinstance(first, int):
            raise GraphcError(f"len() of tensor '{self.name}' with shape "
                              f"{format_shape(self.shape)} is not known before run time")
        return first

    def __iter__(self):
        raise GraphcError(f"tensor '{self.name}' is symbolic and cannot be iterated; "
                          "use gc.split or indexing")

    # == and != are elementwise (gc.equal, gc.not_equal: see graphc.ops), yet a tensor stays a
    # dict key (feed_dict) and a set member: a dict or set compares keys by identity first and
    # calls == only on equal hashes, which distinct live tensors never have.
    def __hash__(self):
        return id(self)


def _make_tensor(cls, node, index, type_):
    # Tensor subclasses such as Variable have user-facing constructors; bypass them here.
    tensor = object.__new__(cls)
    Tensor.__init__(tensor, node, index, type_)
    return tensor


class Graph:
    """A DAG of nodes in creation (topological) order."""

    def __init__(self):
        self.nodes = []
        self._by_key = {}
        self._names = {}
        self._scopes = []
        self.variables = []  # Variable tensors in creation order
        self.initializers = {}  # variable uid -> initial-value Tensor, when not an array
        self.version = 0
        self.holds_bodies = False  # a node has a loop or branch body (subgraph.Body) as an attr

    # -- building -----------------------------------------------------------------------------
    def add_node(self, spec, inputs, attrs, out_types, name=None, source=None):
        for t in inputs:
            if t.node.graph is not self:
                raise GraphMismatchError(
                    f"input '{t.name}' of {spec.name} belongs to another graph; tensors of "
                    "different graphs cannot be combined (build them under one "
                    "`with graph.as_default():`)")
        key = (spec.name, tuple((t.node.id, t.index) for t in inputs),
               tuple(sorted(attrs.items())))
        existing = self._by_key.get(key)
        if existing is not None:
            return existing
        node = Node(self, spec, inputs, attrs, out_types, self.unique_name(name or spec.name),
                    source, len(self.nodes))
        self.nodes.append(node)
        self._by_key[key] = node
        self.version += 1
        self.holds_bodies = self.holds_bodies or any(getattr(v, "is_body", False)
                                                     for v in attrs.values())
        return node

    def unique_name(self, base):
        scoped = "/".join(self._scopes + [base]) if self._scopes else base
        count = self._names.get(scoped, 0)
        self._names[scoped] = count + 1
        if count == 0:
            return scoped
        candidate = f"{scoped}_{count}"
        while candidate in self._names:
            count += 1
            candidate = f"{scoped}_{count}"
        self._names[candidate] = 1
        return candidate

    @contextlib.contextmanager
    def name_scope(self, name):
        self._scopes.append(name)
        try:
            yield "/".join(self._scopes)
        finally:
            self._scopes.pop()

    @contextlib.contextmanager
    def root_scope(self):
        """Names made inside start from the root, whatever name scopes are open."""
        saved, self._scopes = self._scopes, []
        try:
            yield
        finally:
            self._scopes = saved

    # -- lookup -------------------------------------------------------------------------------
    def node_by_name(self, name):
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def tensor(self, name):
        """The tensor called `name` ('node' or 'node:index')."""
        base, _, index = name.partition(":")
        return self.node_by_name(base).outputs[int(index or 0)]

    def __len__(self):
        return len(self.nodes)

    def __repr__(self):
        return f"<Graph {len(self.nodes)} nodes>"

    @contextlib.contextmanager
    def as_default(self):
        _stack().append(self)
        try:
            yield self
        finally:
            _stack().pop()


def nodes_needed(tensors):
    """The nodes `tensors` depend on, themselves included, in topological (creation) order."""
    if not tensors:
        return []
    graph = tensors[0].node.graph
    seen = set()
    stack = [t.node for t in tensors]
    while stack:
        node = stack.pop()
        if node.id not in seen:
            seen.add(node.id)
            stack.extend(t.node for t in node.inputs)
    return [graph.nodes[i] for i in sorted(seen)]


_local = threading.local()
_global_default = [Graph()]


def _stack():
    if not hasattr(_local, "stack"):
        _local.stack = []
    return _local.stack


def get_default_graph():
    stack = _stack()
    return stack[-1] if stack else _global_default[0]


def reset_default_graph():
    """Start a fresh global default graph (not allowed inside `with g.as_default()`)."""
    if _stack():
        raise GraphcError("reset_default_graph() cannot be called inside a "
                          "`with graph.as_default():` block")
    _global_default[0] = Graph()
    return _global_default[0]


def name_scope(name):
    return get_default_graph().name_scope(name)


_uids = itertools.count(1)


def new_uid():
    """A process-unique identity for a stateful node."""
    return next(_uids)
