"""The reference's values and how far another computation may stray from them: the envelope.

A device is compared with the reference on the same optimized graph, so it may differ only
where an op leaves it freedom: a transcendental's last few bits, a sum's order, the sign of a
zero that maximum or a sum gives, the int a cast makes of NaN. `LEEWAY` says, per op, how much
freedom it has. Rather than guess how an op's freedom grows through the ops after it (a few
ulps in exp become any value after x - x, or NaN after sqrt), the reference evaluates the graph
again five times, each time moving every op's result to an edge of its freedom (all up, all
down, alternating up and down over the elements, its mirror), and once by a random part of it
in a random direction (so that two ops' moves cannot cancel in every run). The runs span
the envelope of legitimate results:

- a position where the runs disagree on what kind of value it is (NaN, +inf, -inf, finite;
  for ints and bools, which value) is ill-conditioned: only its dtype and shape are compared;
- elsewhere the device must give the same kind of value: NaN exactly where the reference has
  NaN, infinities with their sign, and a finite value within twice the runs' largest distance
  from the reference (0 where every op on the way is exact: then the value must be equal);
- a zero's sign must match where every run agrees on it (IEEE defines it for neg, abs, mul,
  add, ...; maximum(-0.0, 0.0), relu and sums leave it open).

Comparing optimization levels uses the same envelope with more freedom (MODES): a rewrite
changes roundings (x/4 -> x*0.25 is exact, log(1+x) -> log1p(x) is not), and stabilizing
rewrites turn an overflow or an underflow that O0 computes (exp(100) = inf, log(0) = -inf)
into the finite value it stands for. So at every level each rounding op may move by a few
ulps, and a non-finite value that an op makes from finite inputs may become anything. What
is left is the promise of O1 and O2: NaN where O0 gives NaN from NaN or infinite inputs, a
number where O0 gives a number, and the same number within the roundings. O3's fast-math
rewrites hold only for finite values (x*0 -> 0 is wrong for an infinite x), so at O3 every
non-finite value may become anything.
"""
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

import graphc as gc
from graphc.errors import GraphcError
from graphc.ir import dtypes
from graphc.ir.types import TensorType
from graphc.ops.control_flow import using_body_runner
from graphc.runtime.executable import Options, ReferenceExecutable
from graphc.runtime.feeds import check_feed
from graphc.runtime.reference import evaluate, memory_limit, random_draw

RUNS = 5  # perturbed evaluations: up, down, alternating, its mirror, random


# ---- how far each op may stray ------------------------------------------------------------------
def _float64(a):
    return np.asarray(a, np.float64)


def _finite_part(a):
    """|a| in float64 with its non-finite elements as 0: what rounding errors scale with."""
    a = np.abs(_float64(a))
    return np.where(np.isfinite(a), a, 0.0)


def _info(dtype):
    """(epsilon, smallest normal, largest finite) of a float dtype."""
    if dtype is gc.bfloat16:
        return 2.0 ** -7, float(np.finfo(np.float32).tiny), float(np.finfo(np.float32).max)
    info = np.finfo(dtype.np)
    return float(info.eps), float(info.tiny), float(info.max)


@dataclass(frozen=True)
class Leeway:
    """What an op's float result may be on another device: within `bound(node, inputs, out)`
    (float64, elementwise) of the reference's; anything at `ambiguous(node, inputs, out)`;
    a zero of either sign unless `zero_sign`."""
    bound: Callable = None
    ambiguous: Callable = None
    zero_sign: bool = True


def relative(ulps, underflow=True):
    """Within `ulps` of the result's epsilon, relative; and, where `underflow`, a few smallest
    normals absolute (results near the underflow threshold are computed less exactly)."""
    def bound(node, inputs, out):
        eps, tiny, _ = _info(node.outputs[0].dtype)
        return ulps * eps * _finite_part(out) + (4 * tiny if underflow else 0.0)
    return bound


def _reduced_terms(node, inputs, out):
    return max(1, inputs[0].size // max(out.size, 1))


def _abs_reference(node, inputs, selectors=()):
    """The op's reference on |inputs| (float64, non-finite elements as 0; ints and the inputs
    numbered in `selectors`, which choose rather than scale, as they are): for a sum of
    products, the sum of the products' magnitudes."""
    args = [_finite_part(a) if a.dtype.kind == "f" and i not in selectors else a
            for i, a in enumerate(inputs)]
    with np.errstate(all="ignore"):
        out = node.spec.ref(*args, **node.attrs)
    return _float64(out[0] if isinstance(out, tuple) else out)


def summed(terms=_reduced_terms, mean=False, selectors=()):
    """A sum of `terms` products per element, in any order: off by up to (terms + 2) roundings
    of the sum of the magnitudes. Where partial sums can pass the largest finite value, an
    overflow depends on the order: anything. `mean`: the reference divides the sum by the
    number of terms, so the partial sums are `terms` times larger. `selectors`: the inputs
    that choose which terms are summed (max_pool2d_grad's x)."""
    def parts(node, inputs, out):
        eps, tiny, biggest = _info(node.outputs[0].dtype)
        n = terms(node, inputs, out)
        magnitude = np.broadcast_to(_abs_reference(node, inputs, selectors), out.shape)
        return (n + 2) * eps * magnitude + 4 * tiny, magnitude * (n if mean else 1) >= biggest

    return Leeway(bound=lambda *a: parts(*a)[0], ambiguous=lambda *a: parts(*a)[1],
                  zero_sign=False)


def _product_ambiguous(node, inputs, out):
    """A product's partial products may overflow or underflow in one order and not another."""
    x = _finite_part(inputs[0])
    _, tiny, biggest = _info(node.outputs[0].dtype)
    with np.errstate(all="ignore"):
        big = node.spec.ref(np.maximum(x, 1.0), **node.attrs)
        small = node.spec.ref(np.where(x == 0, 1.0, np.minimum(x, 1.0)), **node.attrs)
    return np.broadcast_to((big >= biggest) | (small <= tiny), out.shape)


def _product_bound(node, inputs, out):
    """n roundings, relative, for a product of n factors (prod reduces them, prod_of_others
    multiplies the others along its axes)."""
    n = (math.prod(inputs[0].shape[a] for a in node.attrs["axes"])
         if node.op == "prod_of_others" else _reduced_terms(node, inputs, out))
    return relative(n + 2)(node, inputs, out)


def _log_softmax_bound(node, inputs, out):
    """x - max - log(sum(exp(x - max))): the subtraction's inputs are up to |out| + log(n)
    large, and cancel."""
    eps, tiny, _ = _info(node.outputs[0].dtype)
    logits = inputs[0]
    n = logits.shape[-1] if node.op == "sparse_softmax_cross_entropy" else \
        logits.shape[node.attrs["axis"]]
    return (8 + 2 * math.log2(n + 1)) * eps * (_finite_part(out) + math.log(n + 1)) + 4 * tiny


def _sine_ambiguous(node, inputs, out):
    """graphc's sin and cos are accurate for |x| <= 1e5 (float32) and 1e9 (float64); beyond,
    they promise a finite value in [-1, 1] only."""
    limit = 1e9 if node.outputs[0].dtype is gc.float64 else 1e5
    x = np.abs(_float64(inputs[0]))
    return np.isfinite(x) & (x > limit)


def _window_terms(node, inputs, out):
    kh, kw = node.attrs["ksize"]
    return kh * kw


def _conv_terms(node, inputs, out):
    """conv2d sums kh*kw*c_in products per output, its input gradient kh*kw*c_out, its filter
    gradient n*out_h*out_w: each at most the size of one of the inputs."""
    return max(1, *(a.size for a in inputs))


def _gather_grad_terms(node, inputs, out):
    return max(1, inputs[1].size)


TRANSCENDENTAL = Leeway(bound=relative(4), zero_sign=False)
SIGN_OF_ZERO_OPEN = Leeway(zero_sign=False)

# op -> its leeway on another device; ops not named here are exact: every device must give the
# reference's bits (NaN positions, infinities, zero signs and all).
LEEWAY = {
    **dict.fromkeys(("exp", "log", "log1p", "expm1", "tanh", "sigmoid", "softplus", "erf",
                     "pow"), TRANSCENDENTAL),
    **dict.fromkeys(("sin", "cos"), Leeway(bound=relative(4), ambiguous=_sine_ambiguous,
                                            zero_sign=False)),
    # the sign of a zero: maximum(-0.0, 0.0) is either, as is a max over both
    **dict.fromkeys(("maximum", "minimum", "relu", "max", "min", "max_pool2d"),
                    SIGN_OF_ZERO_OPEN),
    **dict.fromkeys(("sum", "sum_to_like", "matmul"), summed()),
    "mean": summed(mean=True),
    "avg_pool2d": summed(_window_terms, mean=True),
    "avg_pool2d_grad": summed(_window_terms),
    "max_pool2d_grad": summed(_window_terms, selectors=(0,)),
    **dict.fromkeys(("conv2d", "conv2d_backprop_input", "conv2d_backprop_filter"),
                    summed(_conv_terms)),
    "gather_grad": summed(_gather_grad_terms),
    **dict.fromkeys(("prod", "prod_of_others"),
                    Leeway(bound=_product_bound, ambiguous=_product_ambiguous, zero_sign=False)),
    "softmax": Leeway(bound=lambda node, inputs, out: relative(
        8 + 2 * math.log2(inputs[0].shape[node.attrs["axis"]] + 1))(node, inputs, out),
        zero_sign=False),
    **dict.fromkeys(("log_softmax", "sparse_softmax_cross_entropy"),
                    Leeway(bound=_log_softmax_bound, zero_sign=False)),
}

# Ops whose results round (the rest move, select or compare values): between optimization
# levels, a rewrite may round them differently (x - c -> x + (-c) does not, log(1 + x) ->
# log1p(x) does).
ROUNDING = ("add", "sub", "mul", "div", "floordiv", "mod", "square", "sqrt", "rsqrt",
            "reduced_size", "cast")
LEVEL_ROUNDING = Leeway(bound=relative(2), zero_sign=False)


def _made_non_finite(node, inputs, out, index):
    """Where output `index` is not finite though every input it depends on is (an overflow,
    or a division or log of a zero): found by running the op on 1 for finite and NaN for
    non-finite inputs, which marks each result that any non-finite input reaches."""
    marks = [np.where(np.isfinite(a), 1.0, np.nan).astype(a.dtype) if a.dtype.kind == "f"
             else a for a in inputs]
    with np.errstate(all="ignore"):
        reached = node.spec.ref(*marks, **node.attrs)
    reached = reached[index] if isinstance(reached, tuple) else reached
    return ~np.isfinite(out) & ~np.broadcast_to(np.isnan(_float64(reached)), out.shape)


def _non_finite(node, inputs, out, index):
    return ~np.isfinite(out)


@dataclass(frozen=True)
class Mode:
    """Which freedom the runs explore: `leeway(op)` gives an op's Leeway (or None: exact);
    `extra_ambiguous(node, inputs, out, index)` marks more results (of output `index`) that
    may be anything."""
    name: str
    leeway: Callable
    extra_ambiguous: Callable = None


def _level_leeway(op):
    return LEEWAY.get(op) or (LEVEL_ROUNDING if op in ROUNDING else SIGN_OF_ZERO_OPEN)


MODES = {
    "device": Mode("device", LEEWAY.get),
    "levels": Mode("levels", _level_leeway, _made_non_finite),
    "fast_math": Mode("fast_math", _level_leeway, _non_finite),
}


# ---- casts that leave the result open -----------------------------------------------------
def _unspecified_int_cast(node, inputs, out):
    """A float cast to an int: NaN, infinities and values out of the int's range give an
    unspecified int (kernels/ir.py); trunc of the rest is exact."""
    x = _float64(inputs[0])
    info = np.iinfo(node.outputs[0].dtype.np)
    with np.errstate(invalid="ignore"):
        t = np.trunc(x)
        return ~np.isfinite(x) | (t < info.min) | (t > info.max)


def _float_equality(node, inputs):
    return node.op in ("equal", "not_equal") and inputs[0].dtype.kind == "f"


def _near(a, b, within=1e-5):
    """Where floats a and b are not both finite, or lie within `within` (relative to the
    larger, or absolute below 1) of each other: roundings on the way may make them equal."""
    a, b = _float64(a), _float64(b)
    with np.errstate(all="ignore"):
        scale = np.maximum(1.0, np.maximum(np.abs(a), np.abs(b)))
        return ~(np.isfinite(a) & np.isfinite(b)) | (np.abs(a - b) <= within * scale)


def _int_ambiguous(node, inputs):
    return node.op == "cast" and inputs[0].dtype.kind == "f" and node.outputs[0].dtype.is_integer


# ---- the perturbed reference -------------------------------------------------------------------
AMBIGUOUS_FLOATS = (np.nan, 0.0, np.inf, -np.inf, 1.0)
AMBIGUOUS_INTS = ("max", "min", 0, 1, -1)


def _signs(run, shape, rng):
    """The fraction of its freedom each element moves by: all +1, all -1, alternating over the
    flat index, its mirror, and a random sign times a random fraction between a half and one
    (with equal fractions everywhere, an op's move can cancel the move of the op before it:
    up on x then up on -1.0004 * x is no move at all)."""
    n = int(np.prod(shape))
    if run == 0:
        flat = np.ones(n)
    elif run == 1:
        flat = -np.ones(n)
    elif run in (2, 3):
        flat = np.where(np.arange(n) % 2 == run - 2, 1.0, -1.0)
    else:
        flat = rng.choice((-1.0, 1.0), n) * rng.uniform(0.5, 1.0, n)
    return flat.reshape(shape)


class Interpreter:
    """The reference device's evaluation of one optimized graph, run after run (variables and
    random generators carry over as in a session), with every op's result moved by `run`
    (None: unperturbed; 0..RUNS-1: see _signs) within the freedom `mode` allows."""

    def __init__(self, exe, mode, run, session_seed):
        self.exe, self.mode, self.run_index = exe, mode, run
        self.session_seed = session_seed
        self.variables = {}
        self.rngs = {}
        self.noise = np.random.default_rng(run)

    def _rng(self, uid, seed):
        if uid not in self.rngs:
            self.rngs[uid] = np.random.default_rng((self.session_seed, uid) if seed is None
                                                   else seed)
        return self.rngs[uid]

    def _variable(self, node):
        uid = node.attrs["uid"]
        if uid not in self.variables:
            self.variables[uid] = node.attrs["init"].array
        return self.variables[uid]

    def run(self, feed_arrays):
        """The fetched values (None for ops fetched for their effect), as sess.run gives them;
        raises the GraphcError a reference session would."""
        exe = self.exe
        values = {(t.node.id, t.index): a for t, a in zip(exe.feed_targets, feed_arrays)
                  if t is not None}
        with using_body_runner(self._body):
            updates = self._evaluate(exe.nodes, values)
        self.variables.update(updates)
        return [None if none else values[(t.node.id, t.index)]
                for none, t in zip(exe.fetch_none, exe.outputs)]

    def _body(self, body, args):
        """A loop's or cond's body for argument arrays `args`, its ops moved within their
        freedom as outside: a device computes a body's exp as it computes any other."""
        values = {(t.node.id, t.index): a for t, a in zip(body.arguments, args)}
        self._evaluate(body.nodes, values)
        return [values[(t.node.id, t.index)] for t in body.results]

    def _evaluate(self, nodes, values):
        """Compute `nodes` into `values`; the variables' new values."""
        updates, limit = {}, memory_limit()
        for node in nodes:
            if (node.id, 0) in values:
                continue
            inputs = [values[(t.node.id, t.index)] for t in node.inputs]
            if node.op == "variable":
                outs = (self._variable(node),)
            elif node.spec.random:
                outs = (random_draw(node, self._rng(node.attrs["uid"], node.attrs["seed"]),
                                    inputs),)
            else:
                outs = evaluate(node, inputs, limit)
                if node.op == "assign":
                    updates[node.inputs[0].node.attrs["uid"]] = outs[0]
                elif self.run_index is not None:
                    outs = tuple(self._perturb(node, inputs, out, i) for i, out in enumerate(outs))
            for i, out in enumerate(outs):
                values[(node.id, i)] = out
        return updates

    def _perturb(self, node, inputs, out, index):
        dtype = node.outputs[index].dtype
        if _int_ambiguous(node, inputs):
            return self._ambiguous_ints(out, _unspecified_int_cast(node, inputs, out))
        if self.mode.extra_ambiguous is not None and _float_equality(node, inputs):
            # moving each input within its freedom never lands one on the other, but a rewrite
            # can (log(exp(x)) -> x is x where O0's exp overflowed or rounded x away)
            return np.where(_near(*inputs), ~out, out)
        if out.dtype.kind != "f" or out.size == 0:
            return out
        leeway = self.mode.leeway(node.op)
        ambiguous = np.zeros(out.shape, bool)
        moved = _float64(out)
        with np.errstate(all="ignore"):
            if leeway is not None and leeway.bound is not None:
                bound = np.where(np.isfinite(moved), leeway.bound(node, inputs, out), 0.0)
                moved = moved + _signs(self.run_index, out.shape, self.noise) * bound
            if leeway is not None and leeway.ambiguous is not None:
                ambiguous |= leeway.ambiguous(node, inputs, out)
            if self.mode.extra_ambiguous is not None:
                ambiguous |= self.mode.extra_ambiguous(node, inputs, out, index)
            moved = dtypes.to_storage(moved, dtype)
        if leeway is not None and not leeway.zero_sign:
            zeros = moved == 0
            sign = _signs(self.run_index, out.shape, self.noise)
            moved = np.where(zeros, np.copysign(0.0, sign).astype(moved.dtype), moved)
        return np.where(ambiguous, moved.dtype.type(AMBIGUOUS_FLOATS[self.run_index]), moved)

    def _ambiguous_ints(self, out, ambiguous):
        info = np.iinfo(out.dtype)
        value = {"max": info.max, "min": info.min}.get(AMBIGUOUS_INTS[self.run_index],
                                                        AMBIGUOUS_INTS[self.run_index])
        # -1 for an unsigned type is its largest value, as C's conversion wraps it
        return np.where(ambiguous, np.array(value).astype(out.dtype), out)


    def inference_error(self, feed_arrays):
        """The GraphcError class that the ops' inference raises first on this run's concrete
        shapes, or None. A device that checks every shape before it runs anything (device
        cpu) raises it even where the reference meets another error first."""
        exe = self.exe
        types = {(t.node.id, t.index): TensorType(t.dtype, a.shape)
                 for t, a in zip(exe.feed_targets, feed_arrays) if t is not None}
        for node in exe.nodes:
            if (node.id, 0) in types:
                continue
            outs = [t.type for t in node.outputs]
            if node.spec.kind != "source":
                try:
                    out = node.spec.infer(*[types[(t.node.id, t.index)] for t in node.inputs],
                                          **node.attrs)
                except GraphcError as err:
                    return type(err)
                outs = [out] if isinstance(out, TensorType) else list(out)
            types.update(((node.id, i), t) for i, t in enumerate(outs))
        return None


@dataclass
class Outcome:
    """One run of the fetches: their values, or the GraphcError class it raised (and the one
    that shape inference alone raises first)."""
    values: list = None
    error: type = None
    inference_error: type = None


def run_all(interpreter, feed_sets):
    """An Outcome per feed set, one after another as in one session."""
    outcomes = []
    for feeds in feed_sets:
        arrays = None
        try:
            arrays = [check_feed(t, v) for t, v in zip(interpreter.exe.feeds, feeds.values())]
            outcomes.append(Outcome(values=interpreter.run(arrays)))
        except GraphcError as err:
            first = interpreter.inference_error(arrays) if arrays is not None else None
            outcomes.append(Outcome(error=type(err), inference_error=first))
    return outcomes


def envelope(fetches, feed_sets, level, mode, session_seed):
    """(the reference's Outcomes, the perturbed runs' Outcomes per run) of the fetches at
    `level`, fed each feed set (dicts with the same placeholders, in the same order) in turn."""
    feeds = list(feed_sets[0]) if feed_sets else []
    exe = ReferenceExecutable(list(fetches), feeds, Options(optimize=level))
    reference = run_all(Interpreter(exe, MODES[mode], None, session_seed), feed_sets)
    runs = [run_all(Interpreter(exe, MODES[mode], r, session_seed), feed_sets)
            for r in range(RUNS)]
    return reference, runs


# ---- the comparison ----------------------------------------------------------------------------
def _kinds(a):
    """0 NaN, 1 +inf, 2 -inf, 3 finite."""
    a = _float64(a)
    return np.select([np.isnan(a), a == np.inf, a == -np.inf], [0, 1, 2], 3)


def mismatches(got, want, runs, limit=5):
    """Lines describing where `got` leaves the envelope of `want` and its perturbed `runs`
    (at most `limit` positions), or [] where it does not."""
    got, want = np.asarray(got), np.asarray(want)
    if got.dtype != want.dtype or got.shape != want.shape:
        return [f"dtype/shape {got.dtype}{got.shape}, expected {want.dtype}{want.shape}"]
    runs = [np.asarray(r) for r in runs]
    if want.dtype.kind != "f":
        settled = np.logical_and.reduce([r == want for r in runs]) if runs else \
            np.ones(want.shape, bool)
        bad = settled & (got != want)
    else:
        kind = _kinds(want)
        settled = np.logical_and.reduce([_kinds(r) == kind for r in runs])
        with np.errstate(all="ignore"):
            spread = np.max([np.abs(_float64(r) - _float64(want)) for r in runs], axis=0)
            spread = np.where(np.isnan(spread), 0.0, spread)
            far = np.abs(_float64(got) - _float64(want)) > 2 * spread
        finite = kind == 3
        zero_settled = np.logical_and.reduce(
            [(r == 0) & (np.signbit(r) == np.signbit(want)) for r in runs]) & (want == 0)
        bad = settled & ((_kinds(got) != kind) | (finite & far)
                         | (zero_settled & (got == 0) & (np.signbit(got) != np.signbit(want))))
    lines = []
    for position in map(tuple, np.argwhere(bad)[:limit]):
        span = ""
        if runs:
            values = [r[position] for r in runs]
            span = f" (perturbed runs: {min(values)!r} .. {max(values)!r})"
        lines.append(f"at {position}: got {got[position]!r}, expected {want[position]!r}{span}")
    if bad.sum() > limit:
        lines.append(f"... {int(bad.sum())} positions in all")
    return lines
