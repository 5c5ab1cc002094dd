"""The graph a fuzz case grows: a pool of tensors with their printed lines, the placeholders
and how each feed set feeds them, the run-time dims (see strategies.py)."""
import math
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

import graphc as gc
from graphc.ir.types import Dim
from tests.passes import random_graphs

from . import values

FLOATS = (gc.float16, gc.bfloat16, gc.float32, gc.float64)
INTS = (gc.int32, gc.int64, gc.int8, gc.uint8, gc.int16, gc.uint16, gc.uint32, gc.uint64)
NUMERIC = FLOATS + INTS
ALL = NUMERIC + (gc.bool_,)
# float32 most often, as models use it
DTYPE_WEIGHTS = {gc.float32: 6, gc.float64: 3, gc.float16: 2, gc.bfloat16: 2, gc.int32: 3,
                 gc.int64: 2, gc.bool_: 2, **dict.fromkeys(INTS[2:], 1)}
MAX_RANK = 4
MAX_FED = 17  # the largest size a run-time dim is fed
MAX_ELEMENTS = 3000  # of any tensor, counting each run-time dim as MAX_FED
SIZES = (3, 1, 2, 4, 5, 7, 16, 17, 0, 1, 2, 3)  # static dims (0 rarely)
FED_SIZES = (2, 3, 4, 5, 7, 8, 16, 17)


def est_size(shape):
    return math.prod(MAX_FED if isinstance(d, Dim) else d for d in shape)


def broadcast(*shapes):
    """The broadcast shape where every axis holds one size or 1 (run-time dims match only
    themselves), or None."""
    rank = max(map(len, shapes), default=0)
    out = []
    for axis in range(rank):
        dims = {s[len(s) - rank + axis] for s in shapes if len(s) - rank + axis >= 0} - {1}
        if len(dims) > 1:
            return None
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def resolve(shape, sizes):
    """A shape with its run-time dims replaced by their sizes in one feed set."""
    return tuple(sizes[d] if isinstance(d, Dim) else d for d in shape)


def dim_text(d):
    return d.name if isinstance(d, Dim) else str(d)


def shape_text(shape):
    return "[" + ", ".join(map(dim_text, shape)) + "]"


class Skip(Exception):
    """A step finds nothing to build on: it builds nothing."""


@dataclass(frozen=True)
class Value:
    """A pool tensor and its name in the printed graph. The composites of random_graphs also
    compute an interval for their result from lo and hi, which the fuzzer ignores: 1 is a
    point where every one of those computations is defined."""
    tensor: gc.Tensor
    name: str
    lo = hi = 1.0

    @property
    def shape(self):
        return tuple(self.tensor.shape)

    @property
    def dtype(self):
        return self.tensor.dtype

    @property
    def rank(self):
        return len(self.tensor.shape)

    @property
    def static(self):
        return all(isinstance(d, int) for d in self.shape)


@dataclass
class Source:
    """A placeholder and how each feed set's value for it is drawn: feed(rng, sizes)."""
    tensor: gc.Tensor
    feed: object


@dataclass
class FuzzCase:
    graph: gc.Graph
    outputs: list
    feed_sets: list  # one dict {placeholder: value} per run, in order
    sizes: list  # per feed set, {run-time dim: size}
    seed: int  # the sessions' seed (random draws)
    lines: list

    def _repr_pretty_(self, printer, cycle):  # how hypothesis prints a failing case
        printer.text(repr(self))

    def __repr__(self):
        lines = ["FuzzCase:"] + self.lines + [f"session seed {self.seed}"]
        for k, (feeds, sizes) in enumerate(zip(self.feed_sets, self.sizes)):
            lines.append(f"feed set {k}: " + ", ".join(f"{d.name}={n}" for d, n in sizes.items()))
            for tensor, value in feeds.items():
                shown = np.array2string(np.asarray(value), threshold=40, separator=", ")
                lines.append(f"  {tensor.name} <- {type(value).__name__} {shown}")
        return "\n    ".join(lines)


class Builder(random_graphs.Builder):
    """The graph being grown: the pool of tensors, its printed lines, its placeholders with
    their feeds, its run-time dims."""

    def __init__(self, draw):
        super().__init__(draw)
        self.symbols = [Dim(name) for name in ("N", "M")[:self.integers(0, 2)]]
        self.sources = []
        self.effects = []  # fetched for their effect only (group)
        self.assigned = set()  # node ids of variables assigned already (once per run at most)

    # -- drawing --------------------------------------------------------------------------------
    def flip(self, p=0.5):
        """True with probability p (False in the simplest example)."""
        return self.draw(st.floats(0, 1)) > 1 - p

    def dtype(self, among=ALL):
        among = sorted(among, key=lambda d: -DTYPE_WEIGHTS[d])
        weights = [DTYPE_WEIGHTS[d] for d in among]
        return among[self.draw(st.sampled_from(
            [i for i, w in enumerate(weights) for _ in range(w)]))]

    def dim(self):
        if self.symbols and self.flip(0.25):
            return self.choice(self.symbols)
        return self.choice(SIZES)

    def shape(self, max_rank=3, min_rank=0):
        rank = self.integers(min_rank, max(min_rank, max_rank))
        return tuple(self.dim() for _ in range(rank))

    def profile(self):
        return self.choice(values.PROFILES)

    # -- the pool -------------------------------------------------------------------------------
    def add(self, tensor, text):
        """Put a tensor in the pool (unless it is too big or there already); its Value."""
        if not isinstance(tensor, gc.Tensor):
            return None
        shape = tuple(tensor.shape)
        if len(shape) > MAX_RANK + 1 or est_size(shape) > MAX_ELEMENTS:
            return None
        for v in self.pool:
            if v.tensor is tensor:  # built before (nodes are hash-consed)
                return v
        name = f"t{len(self.pool)}"
        self.lines.append(f"{name} = {text}    # {tensor.dtype.name}{shape_text(shape)}")
        self.pool.append(Value(tensor, name))
        return self.pool[-1]

    def operand(self, ok=lambda v: True, among=ALL, shape=None, fresh=0.2, profile=None):
        """A pool value of a dtype in `among` that satisfies `ok`, or (sometimes, or when there
        is none) a fresh source of such a dtype and of `shape` (default: drawn), with values
        drawn by `profile` (default: drawn); Skip when there is neither."""
        options = [v for v in self.pool if v.dtype in among and ok(v)]
        if options and not self.flip(fresh):
            return self.choice(options)
        made = self.source(self.dtype(among), self.shape() if shape is None else shape,
                           profile)
        if made is None or not ok(made):
            raise Skip("no operand")
        return made

    def source(self, dtype, shape, profile=None):
        """A fresh placeholder (always, where the shape has run-time dims) or constant."""
        profile = profile or self.profile()
        if any(isinstance(d, Dim) for d in shape) or self.flip(0.6):
            return self.placeholder(dtype, shape, lambda rng, sizes: values.array(
                rng, dtype, resolve(shape, sizes), profile), profile)
        return self.constant_array(dtype, values.array(self.rng, dtype, shape, profile))

    def placeholder(self, dtype, shape, feed, what=""):
        """A placeholder of `shape` (run-time dims appear as None) fed by feed(rng, sizes)."""
        if est_size(shape) > MAX_ELEMENTS or any(
                isinstance(d, Dim) and all(d is not s for s in self.symbols) for d in shape):
            return None  # too big, or a run-time dim that some op made: no size to feed
        name = f"in{len(self.sources)}"
        tensor = gc.placeholder(dtype, shape, name=name)
        self.sources.append(Source(tensor, feed))
        shown = tuple(None if isinstance(d, Dim) else d for d in shape)
        return self.add(tensor, f"gc.placeholder(gc.{dtype.name}, {shown})  # dims "
                                f"{shape_text(shape)}, fed {what}")

    def constant_array(self, dtype, array):
        tensor = gc.constant(array, dtype=dtype)
        return self.add(tensor, f"gc.constant({show(array)}, dtype=gc.{dtype.name})")

    def index_placeholder(self, shape, bound, what):
        """An int placeholder of `shape` fed with indices in [0, bound) (bound: an int or a
        run-time dim), and now and then one out of that range."""
        dtype = self.choice(INTS)
        bad = self.flip(0.1)

        def feed(rng, sizes):
            n = resolve((bound,), sizes)[0]
            concrete = resolve(shape, sizes)
            indices = rng.integers(0, max(n, 1), size=concrete)
            if bad and indices.size:
                indices.reshape(-1)[rng.integers(0, indices.size)] = rng.choice((-1, n, n + 5))
            return indices.astype(dtype.np)
        return self.placeholder(dtype, shape, feed, f"indices < {dim_text(bound)} ({what})"
                                + (", one of them out of range" if bad else ""))


def show(array):
    array = np.asarray(array)
    if array.size <= 40:
        return f"np.array({array.tolist()!r}, {array.dtype.name})"
    return f"<{array.dtype.name} array {list(array.shape)}>"
