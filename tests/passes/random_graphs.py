"""Random graphs over the whole op set, and the comparison of a graph's values across levels.

`random_graphs()` is a hypothesis strategy. It grows a graph step by step from a pool of
tensors, each tagged with an interval [lo, hi] that holds all its values. An op is applied only
where its result stays finite and well conditioned: log and rsqrt on values >= 0.1, sqrt on
values >= 0, division by values at least 0.25 away from zero, exp on values <= 6, softmax on
a range of at most 30, and nothing whose interval leaves [-BOUND, BOUND]. So the input graph
computes finite values with small rounding errors, and a difference after the passes is a
rewrite's doing. Constants such as 0, 1, -1 and 2, and composites such as log(softmax(x)),
log(1 + x), x * 1 and x - x, are drawn on purpose so that the rewrite rules fire.

Left out on purpose: floor, sign, mod and floordiv. They jump at integers, so the one-ulp
difference that a rewrite may make (x / 3 -> x * (1/3)) can change their result by 1.
"""
import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

import graphc as gc
from graphc.ir.graph import nodes_needed

# Values stay within [-BOUND, BOUND]: float32 rounding errors then stay far below the
# tolerances below, even after a few multiplications.
BOUND = 1e3
MAX_ELEMENTS = 2000
MAX_RANK = 4
CONSTANTS = (0, 1, -1, 2, 0.5, 3)
# What "equal" means after a rewrite, as (rtol, atol) by the precision of the computation:
# float32 1e-4/1e-5, float64 1e-10; non-float results exactly.
TOLERANCES = {"float32": (1e-4, 1e-5), "float64": (1e-10, 1e-10)}


# ---- comparing values across levels -------------------------------------------------------------
def values_at(level, fetches, feed, **options):
    """The fetches evaluated on the reference device after the passes of `level`."""
    sess = gc.Session(graph=fetches[0].graph, device="reference", optimize=level, **options)
    return sess.run(list(fetches), feed)


def op_counts(outputs):
    """How many nodes of each op the outputs depend on."""
    return Counter(node.op for node in nodes_needed(outputs))


def coarsest_float(tensor):
    """The least precise float dtype that `tensor`'s value passed through (a float64 output
    computed in float32 is only as exact as float32), or None."""
    floats = [t.dtype for n in nodes_needed([tensor]) for t in n.outputs if t.dtype.is_float]
    return min(floats, key=lambda d: d.bits).name if floats else None


def assert_same_values(expected, got, fetches, context=""):
    """Equal dtypes and shapes, values within the tolerance of the coarsest float dtype
    each fetch passed through, NaNs in the same places."""
    for i, (e, g, t) in enumerate(zip(expected, got, fetches)):
        what = f"output {i} {context}"
        assert g.dtype == e.dtype and g.shape == e.shape, (
            f"{what}: {g.dtype}{g.shape}, expected {e.dtype}{e.shape}")
        precision = coarsest_float(t)
        if e.dtype.kind == "f" and precision in TOLERANCES:
            rtol, atol = TOLERANCES[precision]
            np.testing.assert_allclose(g, e, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)
        else:
            np.testing.assert_array_equal(g, e, err_msg=what)


# ---- the pool of tensors ------------------------------------------------------------------------
@dataclass(frozen=True)
class Value:
    tensor: gc.Tensor
    lo: float
    hi: float
    name: str

    @property
    def shape(self):
        return tuple(self.tensor.shape)

    @property
    def magnitude(self):
        return max(abs(self.lo), abs(self.hi))


@dataclass
class RandomGraph:
    feed: dict
    outputs: list
    lines: list

    def __repr__(self):
        return "RandomGraph:\n    " + "\n    ".join(self.lines)


def _size(shape):
    return math.prod(shape)


def _broadcast(*shapes):
    """The broadcast shape, or None when the shapes do not broadcast or it is too big."""
    try:
        shape = np.broadcast_shapes(*shapes)
    except ValueError:
        return None
    return shape if len(shape) <= MAX_RANK and _size(shape) <= MAX_ELEMENTS else None


class Builder:
    """The graph being grown: the pool of tagged tensors and one text line per step."""

    def __init__(self, draw):
        self.draw = draw
        self.rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        self.pool = []
        self.lines = []

    def pick(self, ok=lambda v: True):
        """A pool value that satisfies `ok`, or None."""
        options = [v for v in self.pool if ok(v)]
        return self.draw(st.sampled_from(options)) if options else None

    def add(self, tensor, lo, hi, text):
        shape = tuple(tensor.shape)
        if (not np.isfinite([lo, hi]).all() or max(abs(lo), abs(hi)) > BOUND
                or len(shape) > MAX_RANK or _size(shape) > MAX_ELEMENTS):
            return None
        for v in self.pool:
            if v.tensor is tensor:  # built before (nodes are hash-consed)
                return v
        name = f"t{len(self.pool)}"
        self.lines.append(f"{name} = {text}    # {tensor.dtype.name}{list(shape)} in "
                          f"[{lo:.3g}, {hi:.3g}]")
        self.pool.append(Value(tensor, float(lo), float(hi), name))
        return self.pool[-1]

    def integers(self, lo, hi):
        return self.draw(st.integers(lo, hi))

    def choice(self, options):
        return self.draw(st.sampled_from(options))

    def shape(self, max_rank=3):
        return tuple(self.draw(st.lists(st.integers(1, 5), max_size=max_rank)))

    def axes(self, v):
        """None, or a non-empty tuple of distinct axes of v (some negative)."""
        if not v.shape or self.draw(st.booleans()):
            return None
        axes = self.draw(st.lists(st.integers(0, len(v.shape) - 1), min_size=1, unique=True))
        return tuple(a - len(v.shape) if self.draw(st.booleans()) else a for a in axes)

    def operand_like(self, a):
        """A second operand for a binary op on `a`: a pool value of a's dtype whose shape
        broadcasts with a's, or a constant (a Python scalar, or an array of one value)."""
        b = self.pick(lambda v: v.tensor.dtype is a.tensor.dtype
                      and _broadcast(v.shape, a.shape) is not None)
        if b is not None and self.draw(st.booleans()):
            return b.tensor, b.lo, b.hi, b.name
        c = self.choice(CONSTANTS)
        if self.draw(st.booleans()):
            return c, c, c, repr(c)
        trailing = a.shape[len(a.shape) - self.integers(0, len(a.shape)):]
        shape = tuple(self.choice((1, d)) for d in trailing)  # broadcasts with a
        return gc.constant(np.full(shape, c), dtype=a.tensor.dtype), c, c, f"full({shape}, {c})"


# ---- intervals ----------------------------------------------------------------------------------
def _hull(*points):
    return min(points), max(points)


def _softplus(v):
    return max(v, 0.0) + math.log1p(math.exp(-abs(v)))


ANY = lambda lo, hi: True  # noqa: E731
ONE = (-1.0, 1.0)

# name: (domain it needs, the interval of its result)
UNARY = {
    "neg": (ANY, lambda lo, hi: (-hi, -lo)),
    "abs": (ANY, lambda lo, hi: (0.0, max(-lo, hi))),
    "square": (ANY, lambda lo, hi: (0.0, max(lo * lo, hi * hi))),
    "exp": (lambda lo, hi: hi <= 6, lambda lo, hi: (math.exp(lo), math.exp(hi))),
    "expm1": (lambda lo, hi: hi <= 6, lambda lo, hi: (math.expm1(lo), math.expm1(hi))),
    "log": (lambda lo, hi: lo >= 0.1, lambda lo, hi: (math.log(lo), math.log(hi))),
    "log1p": (lambda lo, hi: lo >= -0.5, lambda lo, hi: (math.log1p(lo), math.log1p(hi))),
    "sqrt": (lambda lo, hi: lo >= 0, lambda lo, hi: (math.sqrt(lo), math.sqrt(hi))),
    "rsqrt": (lambda lo, hi: lo >= 0.1, lambda lo, hi: (hi ** -0.5, lo ** -0.5)),
    "sin": (ANY, lambda lo, hi: ONE),
    "cos": (ANY, lambda lo, hi: ONE),
    "tanh": (ANY, lambda lo, hi: ONE),
    "erf": (ANY, lambda lo, hi: ONE),  # (not on 0-d tensors: see unary below)
    "sigmoid": (ANY, lambda lo, hi: (0.0, 1.0)),
    "softplus": (ANY, lambda lo, hi: (_softplus(lo), _softplus(hi))),
    "relu": (ANY, lambda lo, hi: (max(lo, 0.0), max(hi, 0.0))),
}


def _div_range(a, b):
    return _hull(*(x / y for x in a for y in b))


def _pow_range(a, b):
    return _hull(*(x ** y for x in a for y in b))


# name: (whether the operands' intervals suit it, the result's interval from both)
BINARY = {
    "add": (lambda a, b: True, lambda a, b: (a[0] + b[0], a[1] + b[1])),
    "sub": (lambda a, b: True, lambda a, b: (a[0] - b[1], a[1] - b[0])),
    "mul": (lambda a, b: True, lambda a, b: _hull(*(x * y for x in a for y in b))),
    "div": (lambda a, b: b[0] >= 0.25 or b[1] <= -0.25, _div_range),
    "maximum": (lambda a, b: True, lambda a, b: (max(a[0], b[0]), max(a[1], b[1]))),
    "minimum": (lambda a, b: True, lambda a, b: (min(a[0], b[0]), min(a[1], b[1]))),
    "pow": (lambda a, b: a[0] >= 0.1 and a[1] <= 10 and max(-b[0], b[1]) <= 3, _pow_range),
}

COMPARISONS = ("less", "less_equal", "greater", "greater_equal", "equal", "not_equal")
LOGICAL = ("logical_and", "logical_or", "logical_xor")


# ---- the steps ----------------------------------------------------------------------------------
def unary(b):
    name = b.choice(sorted(UNARY))
    domain, image = UNARY[name]
    # erf's reference fails on a 0-d array (numpy's frompyfunc returns a Python float there)
    a = b.pick(lambda v: domain(v.lo, v.hi) and (v.shape or name != "erf"))
    if a is not None:
        b.add(getattr(gc, name)(a.tensor), *image(a.lo, a.hi), f"{name}({a.name})")


def _either_order(b, first, second):
    """(first, second) or (second, first): constants land on the left too, for canonicalize."""
    return (second, first) if b.draw(st.booleans()) else (first, second)


def binary(b):
    name = b.choice(sorted(BINARY))
    a = b.pick()
    other, lo, hi, text = b.operand_like(a)
    left, right = _either_order(b, (a.tensor, (a.lo, a.hi), a.name), (other, (lo, hi), text))
    suits, image = BINARY[name]
    if suits(left[1], right[1]):
        b.add(getattr(gc, name)(left[0], right[0]), *image(left[1], right[1]),
              f"{name}({left[2]}, {right[2]})")


def _shape_of(x):
    return tuple(x.shape) if isinstance(x, gc.Tensor) else ()


def _threshold(b, v):
    """A random number inside v's interval, to compare v with. Comparing two tensors could
    meet ties between a value and a rewritten copy of it (t < log(exp(t)) flips with one ulp);
    a random threshold makes ties as unlikely as they are on real data."""
    if v.hi <= v.lo:  # a point interval, possibly [0.0, -0.0], which uniform() refuses
        return v.lo
    return float(np.float32(b.rng.uniform(v.lo, v.hi)))


def comparison(b):
    """A bool tensor: a pool value compared with a threshold, or tested by isfinite."""
    a = b.pick()
    kind = b.choice(COMPARISONS + ("isfinite",))
    if kind == "isfinite":
        return gc.isfinite(a.tensor), f"isfinite({a.name})"
    c = _threshold(b, a)
    left, right = _either_order(b, (a.tensor, a.name), (c, repr(c)))
    return getattr(gc, kind)(left[0], right[0]), f"{kind}({left[1]}, {right[1]})"


def condition(b):
    """A comparison, maybe negated, or combined by a logical op with a second comparison or
    a constant."""
    cond, text = comparison(b)
    combine = b.choice(("none", "logical_not") + LOGICAL)
    if combine == "logical_not":
        return gc.logical_not(cond), f"logical_not({text})"
    if combine == "none":
        return cond, text
    if b.draw(st.booleans()):
        other = comparison(b)
    else:
        c = b.choice((True, False))
        other = c, repr(c)
    if _broadcast(_shape_of(cond), _shape_of(other[0])) is None:
        return cond, text
    left, right = _either_order(b, (cond, text), other)
    return getattr(gc, combine)(left[0], right[0]), f"{combine}({left[1]}, {right[1]})"


def where(b):
    cond, text = condition(b)
    x = b.pick(lambda v: _broadcast(v.shape, _shape_of(cond)) is not None)
    if x is None:
        return
    other, lo, hi, other_text = b.operand_like(x)
    if _broadcast(_shape_of(cond), x.shape, _shape_of(other)) is not None:
        b.add(gc.where(cond, x.tensor, other), *_hull(x.lo, x.hi, lo, hi),
              f"where({text}, {x.name}, {other_text})")


def _reduced_count(v, axes):
    axes = range(len(v.shape)) if axes is None else axes
    return math.prod(v.shape[a] for a in axes)


def _prod_range(v, n):
    if v.lo >= 0:
        return v.lo ** n, v.hi ** n
    m = v.magnitude ** n
    return -m, m


# name: the result's interval from the input value and the number of elements reduced
REDUCTIONS = {
    "sum": lambda v, n: (n * v.lo, n * v.hi),
    "mean": lambda v, n: (v.lo, v.hi),
    "max": lambda v, n: (v.lo, v.hi),
    "min": lambda v, n: (v.lo, v.hi),
    "prod": _prod_range,
    "logsumexp": lambda v, n: (v.lo, v.hi + math.log(n)),
}


def reduction(b):
    name = b.choice(sorted(REDUCTIONS))
    a = b.pick()
    axes, keepdims = b.axes(a), b.draw(st.booleans())
    if name == "prod" and a.magnitude ** _reduced_count(a, axes) > BOUND:
        return
    out = getattr(gc, name)(a.tensor, axis=axes, keepdims=keepdims)
    b.add(out, *REDUCTIONS[name](a, _reduced_count(a, axes)),
          f"{name}({a.name}, axis={axes}, keepdims={keepdims})")


def arg_reduction(b):
    """argmax/argmin of a value plus random noise (which keeps ties between a value and a
    rewritten copy of it out, as in _threshold), cast back to the value's dtype."""
    name = b.choice(("argmax", "argmin"))
    a = b.pick(lambda v: len(v.shape) >= 1)
    if a is not None:
        axis = b.integers(-len(a.shape), len(a.shape) - 1)
        noisy = a.tensor + gc.constant(b.rng.uniform(-1, 1, a.shape), dtype=a.tensor.dtype)
        out = gc.cast(getattr(gc, name)(noisy, axis=axis), a.tensor.dtype)
        b.add(out, 0, a.shape[axis] - 1, f"cast({name}({a.name} + noise, axis={axis}))")


def factor_shape(b, n):
    """A random shape with n elements (rank up to 4), one dim maybe -1."""
    primes, k, p = [], n, 2
    while k > 1:
        while k % p == 0:
            primes.append(p)
            k //= p
        p += 1
    rank = b.integers(1 if n > 1 else 0, MAX_RANK)
    dims = [1] * rank
    for prime in primes:
        dims[b.integers(0, rank - 1)] *= prime
    if rank and b.draw(st.booleans()):
        dims[b.integers(0, rank - 1)] = -1
    return tuple(dims)


def reshape(b):
    a = b.pick()
    shape = factor_shape(b, _size(a.shape))
    b.add(gc.reshape(a.tensor, shape), a.lo, a.hi, f"reshape({a.name}, {shape})")


def transpose(b):
    a = b.pick(lambda v: len(v.shape) >= 2)
    if a is not None:
        perm = tuple(b.draw(st.permutations(range(len(a.shape)))))
        b.add(gc.transpose(a.tensor, perm), a.lo, a.hi, f"transpose({a.name}, {perm})")


def expand_dims(b):
    a = b.pick(lambda v: len(v.shape) < MAX_RANK)
    if a is not None:
        axis = b.integers(-len(a.shape) - 1, len(a.shape))
        b.add(gc.expand_dims(a.tensor, axis), a.lo, a.hi, f"expand_dims({a.name}, {axis})")


def squeeze(b):
    a = b.pick(lambda v: 1 in v.shape)
    if a is not None:
        ones = [i for i, d in enumerate(a.shape) if d == 1]
        axis = b.choice([None] + ones)
        b.add(gc.squeeze(a.tensor, axis), a.lo, a.hi, f"squeeze({a.name}, {axis})")


def broadcast_to(b):
    a = b.pick()
    leading = b.shape(max_rank=MAX_RANK - len(a.shape))
    shape = leading + tuple(b.integers(1, 4) if d == 1 else d for d in a.shape)
    b.add(gc.broadcast_to(a.tensor, shape), a.lo, a.hi, f"broadcast_to({a.name}, {shape})")


def _index_entry(b, dim):
    kind = b.choice(("all", "int", "slice", "reversed"))
    if kind == "int":
        return b.integers(-dim, dim - 1)
    if kind == "slice":
        start = b.integers(0, dim - 1)
        return slice(start, b.integers(start + 1, dim), b.integers(1, 2))
    if kind == "reversed":
        start = b.integers(0, dim - 1)
        stop = b.integers(-1, start - 1)
        return slice(start, None if stop < 0 else stop, -1)
    return slice(None)


def format_index(index):
    def one(e):
        if isinstance(e, slice):
            return ":".join("" if v is None else str(v) for v in (e.start, e.stop, e.step))
        return "..." if e is Ellipsis else str(e)
    return ", ".join(map(one, index))


def getitem(b):
    a = b.pick(lambda v: len(v.shape) >= 1)
    if a is None:
        return
    rank = len(a.shape)
    lead = b.integers(0, rank)
    index = [_index_entry(b, d) for d in a.shape[:lead]]
    if b.draw(st.booleans()):  # an ellipsis, then entries for the last axes
        tail = b.integers(0, rank - lead)
        index += [Ellipsis] + [_index_entry(b, d) for d in a.shape[rank - tail:]]
    if rank < MAX_RANK and b.draw(st.booleans()):
        index.insert(b.integers(0, len(index)), None)
    index = tuple(index)
    b.add(a.tensor[index], a.lo, a.hi, f"{a.name}[{format_index(index)}]")


def gather(b):
    a = b.pick(lambda v: len(v.shape) >= 1)
    if a is None:
        return
    axis = b.integers(0, len(a.shape) - 1)
    shape = b.shape(max_rank=MAX_RANK + 1 - len(a.shape))
    dtype = b.choice((np.int32, np.int64))
    indices = b.rng.integers(0, a.shape[axis], size=shape).astype(dtype)
    b.add(gc.gather(a.tensor, indices, axis=axis), a.lo, a.hi,
          f"gather({a.name}, {indices.tolist()}, axis={axis})")


def concat(b):
    a = b.pick(lambda v: len(v.shape) >= 1)
    if a is None:
        return
    axis = b.integers(0, len(a.shape) - 1)

    def same_elsewhere(v):
        return (v.tensor.dtype is a.tensor.dtype and len(v.shape) == len(a.shape)
                and all(d == e for i, (d, e) in enumerate(zip(v.shape, a.shape)) if i != axis))
    c = b.pick(same_elsewhere)  # a itself at least
    b.add(gc.concat([a.tensor, c.tensor], axis), *_hull(a.lo, a.hi, c.lo, c.hi),
          f"concat([{a.name}, {c.name}], {axis})")


def stack(b):
    a = b.pick(lambda v: len(v.shape) < MAX_RANK)
    if a is None:
        return
    c = b.pick(lambda v: v.tensor.dtype is a.tensor.dtype and v.shape == a.shape)
    axis = b.integers(0, len(a.shape))
    b.add(gc.stack([a.tensor, c.tensor], axis), *_hull(a.lo, a.hi, c.lo, c.hi),
          f"stack([{a.name}, {c.name}], {axis})")


def split(b):
    a = b.pick(lambda v: any(d >= 2 for d in v.shape))
    if a is None:
        return
    axis = b.choice([i for i, d in enumerate(a.shape) if d >= 2])
    cuts = sorted(b.draw(st.lists(st.integers(1, a.shape[axis] - 1), min_size=1, unique=True)))
    sizes = [stop - start for start, stop in zip([0] + cuts, cuts + [a.shape[axis]])]
    piece = b.integers(0, len(sizes) - 1)
    b.add(gc.split(a.tensor, sizes, axis)[piece], a.lo, a.hi,
          f"split({a.name}, {sizes}, {axis})[{piece}]")


def pad(b):
    a = b.pick(lambda v: len(v.shape) >= 1)
    if a is None:
        return
    paddings = [[b.integers(0, 2), b.integers(0, 2)] for _ in a.shape]
    value = b.choice(CONSTANTS)
    b.add(gc.pad(a.tensor, paddings, value), *_hull(a.lo, a.hi, value),
          f"pad({a.name}, {paddings}, {value})")


def matmul(b):
    a = b.pick(lambda v: len(v.shape) >= 2)
    if a is None:
        return
    c = b.pick(lambda v: v.tensor.dtype is a.tensor.dtype and len(v.shape) >= 2
               and v.shape[-2] == a.shape[-1] and _broadcast(v.shape[:-2], a.shape[:-2])
               is not None)
    other, text = (c.tensor, c.name) if c is not None else (gc.matrix_transpose(a.tensor),
                                                            f"matrix_transpose({a.name})")
    m = a.shape[-1] * a.magnitude * (c.magnitude if c is not None else a.magnitude)
    b.add(gc.matmul(a.tensor, other), -m, m, f"matmul({a.name}, {text})")


def softmax(b):
    name = b.choice(("softmax", "log_softmax"))
    a = b.pick(lambda v: len(v.shape) >= 1 and v.hi - v.lo <= 30)
    if a is None:
        return
    axis = b.integers(-len(a.shape), len(a.shape) - 1)
    n = a.shape[axis]
    lo, hi = (0.0, 1.0) if name == "softmax" else (a.lo - a.hi - math.log(n), 0.0)
    b.add(getattr(gc.nn, name)(a.tensor, axis=axis), lo, hi, f"{name}({a.name}, axis={axis})")


def cast(b):
    a = b.pick()
    dtype = gc.float64 if a.tensor.dtype is gc.float32 else gc.float32
    b.add(gc.cast(a.tensor, dtype), a.lo, a.hi, f"cast({a.name}, {dtype.name})")


def constant(b):
    """A constant array: random values, or one value everywhere (which rules can match)."""
    shape = b.shape()
    dtype = b.choice((gc.float32, gc.float32, gc.float64))
    if b.draw(st.booleans()):
        value = b.choice(CONSTANTS)
        b.add(gc.constant(np.full(shape, value), dtype=dtype), value, value,
              f"full({shape}, {value}, {dtype.name})")
    else:
        values = b.rng.uniform(-2, 2, size=shape)
        b.add(gc.constant(values, dtype=dtype), -2, 2, f"constant({dtype.name}{list(shape)})")


def one_hot(b):
    depth = b.integers(1, 5)
    indices = b.rng.integers(-1, depth + 1, size=b.shape(max_rank=2))  # out of range: 0 rows
    dtype = b.choice((gc.float32, gc.float64))
    b.add(gc.one_hot(indices, depth, dtype=dtype), 0, 1,
          f"one_hot({indices.tolist()}, {depth}, {dtype.name})")


def _log_softmax(b, v):
    axis = b.integers(-len(v.shape), len(v.shape) - 1)
    return (gc.log(gc.nn.softmax(v.tensor, axis)), f"log(softmax({v.name}, {axis}))",
            v.lo - v.hi - math.log(v.shape[axis]), 0.0)


def _transpose_twice(b, v):
    p, q = (tuple(b.draw(st.permutations(range(len(v.shape))))) for _ in range(2))
    return (gc.transpose(gc.transpose(v.tensor, p), q),
            f"transpose(transpose({v.name}, {p}), {q})", v.lo, v.hi)


def _reshape_twice(b, v):
    s, t = (factor_shape(b, _size(v.shape)) for _ in range(2))
    return gc.reshape(gc.reshape(v.tensor, s), t), f"reshape(reshape({v.name}, {s}), {t})", \
        v.lo, v.hi


def _cast_twice(b, v):
    via, back = b.choice((gc.float32, gc.float64)), v.tensor.dtype
    return (gc.cast(gc.cast(v.tensor, via), back),
            f"cast(cast({v.name}, {via.name}), {back.name})", v.lo, v.hi)


def _simple(text, build, image=lambda lo, hi: (lo, hi)):
    """A composite of one value with no choices of its own."""
    def make(b, v):
        return (build(v.tensor), text.format(v.name), *image(v.lo, v.hi))
    return make


def _reshape_like_reshaped(b, v):
    s, t = (factor_shape(b, _size(v.shape)) for _ in range(2))
    like = gc.reshape(v.tensor, t)
    return (gc.reshape_like(gc.reshape(v.tensor, s), like),
            f"reshape_like(reshape({v.name}, {s}), reshape({v.name}, {t}))", v.lo, v.hi)


# The patterns that the rules look for, built on purpose: name: (the rank they need, whether
# an interval suits them, make(builder, value) -> (tensor, text, lo, hi)).
COMPOSITES = {
    "log(softmax)": (1, lambda lo, hi: hi - lo <= 30, _log_softmax),
    "log(1 + x)": (0, lambda lo, hi: lo >= -0.5, _simple(
        "log(1 + {})", lambda t: gc.log(1 + t), lambda lo, hi: (math.log1p(lo), math.log1p(hi)))),
    "log(sigmoid)": (0, lambda lo, hi: max(-lo, hi) <= 30, _simple(
        "log(sigmoid({}))", lambda t: gc.log(gc.sigmoid(t)), lambda lo, hi: (-_softplus(-lo), 0))),
    "exp(x) - 1": (0, lambda lo, hi: hi <= 6, _simple(
        "exp({}) - 1", lambda t: gc.exp(t) - 1, lambda lo, hi: (math.expm1(lo), math.expm1(hi)))),
    "log1p(exp)": (0, lambda lo, hi: hi <= 6, _simple(
        "log1p(exp({}))", lambda t: gc.log1p(gc.exp(t)),
        lambda lo, hi: (_softplus(lo), _softplus(hi)))),
    "log(exp)": (0, lambda lo, hi: -50 <= lo and hi <= 6, _simple(
        "log(exp({}))", lambda t: gc.log(gc.exp(t)))),
    "exp(log)": (0, lambda lo, hi: lo >= 0.1, _simple(
        "exp(log({}))", lambda t: gc.exp(gc.log(t)))),
    "sqrt(square)": (0, ANY, _simple(
        "sqrt(square({}))", lambda t: gc.sqrt(gc.square(t)), lambda lo, hi: (0, max(-lo, hi)))),
    "x * 1": (0, ANY, _simple("{} * 1", lambda t: t * 1)),
    "x * 0": (0, ANY, _simple("{} * 0", lambda t: t * 0, lambda lo, hi: (0, 0))),
    "x * -1": (0, ANY, _simple("{} * -1", lambda t: t * -1, lambda lo, hi: (-hi, -lo))),
    "x + 0": (0, ANY, _simple("{} + 0", lambda t: t + 0)),
    "x - 0": (0, ANY, _simple("{} - 0", lambda t: t - 0)),
    "x / 1": (0, ANY, _simple("{} / 1", lambda t: t / 1)),
    "x / 3": (0, ANY, _simple("{} / 3", lambda t: t / 3, lambda lo, hi: (lo / 3, hi / 3))),
    "x - x": (0, ANY, _simple("{0} - {0}", lambda t: t - t, lambda lo, hi: (0, 0))),
    "x ** 1": (0, ANY, _simple("{} ** 1", lambda t: t ** 1)),
    "x ** 2": (0, ANY, _simple(
        "{} ** 2", lambda t: t ** 2, lambda lo, hi: (0, max(lo * lo, hi * hi)))),
    "neg(neg)": (0, ANY, _simple("-(-{})", lambda t: -(-t))),
    "transpose(transpose)": (2, ANY, _transpose_twice),
    "reshape(reshape)": (0, ANY, _reshape_twice),
    "reshape_like(reshape)": (0, ANY, _reshape_like_reshaped),
    "cast(cast)": (0, ANY, _cast_twice),
}


def squashed(b, v):
    """exp(tanh(v)), in [1/e, e]: an interval that every composite's domain holds."""
    return b.add(gc.exp(gc.tanh(v.tensor)), math.exp(-1), math.exp(1), f"exp(tanh({v.name}))")


def composite(b):
    rank, suits, make = COMPOSITES[b.choice(sorted(COMPOSITES))]
    a = b.pick(lambda v: len(v.shape) >= rank and suits(v.lo, v.hi))
    if a is None:
        a = b.pick(lambda v: len(v.shape) >= rank)
        a = squashed(b, a) if a is not None else None
    if a is not None:
        tensor, text, lo, hi = make(b, a)
        b.add(tensor, lo, hi, text)


# Each step grows the pool by one tensor (or does nothing when no operand suits it);
# the elementwise steps and the composites are listed more than once to be drawn more often.
STEPS = (unary, unary, binary, binary, where, reduction, arg_reduction, reshape, transpose,
         expand_dims, squeeze, broadcast_to, getitem, gather, concat, stack, split, pad, matmul,
         softmax, cast, constant, one_hot, composite, composite, composite)


def leaves(values):
    """The values that no other value is computed from: fetching them leaves no dead node."""
    inner = set()
    for v in values:
        inner.update(n.id for n in nodes_needed([v.tensor]) if n is not v.tensor.node)
    return [v for v in values if v.tensor.node.id not in inner]


@st.composite
def random_graphs(draw, max_steps=30):
    """A RandomGraph: placeholders with fed values, a few steps, and some outputs."""
    graph = gc.Graph()
    with graph.as_default():
        b = Builder(draw)
        feed = {}
        for i in range(b.integers(1, 3)):
            dtype = b.choice((gc.float32, gc.float32, gc.float64))
            shape = b.shape()
            x = gc.placeholder(dtype, shape, name=f"in{i}")
            feed[x] = b.rng.uniform(-2, 2, size=shape).astype(dtype.np)
            b.add(x, -2, 2, f"placeholder({dtype.name}, {list(shape)})")
        for _ in range(b.integers(1, max_steps)):
            b.choice(STEPS)(b)
        outputs = leaves(b.pool[len(feed):]) or b.pool[-1:]
        b.lines.append("outputs: " + ", ".join(v.name for v in outputs))
    return RandomGraph(feed, [v.tensor for v in outputs], b.lines)
