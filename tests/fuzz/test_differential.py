"""Differential fuzzing: random graphs over every op, on every device and at every level,
against the numpy reference.

The graphs (strategies.py) take every op of the registry on every dtype, fed the dtypes'
extremes (+-inf, NaN, -0.0, subnormals, the largest finite values, integer min and max, zeros
to divide by), as numpy arrays, numpy scalars and Python scalars, at several sizes of their
run-time dims (1 and, now and then, 0 among them), indexed with negative ints and negative or
stepped slices, None and `...`.

What is compared, for each feed set in turn (variables and random draws carry over between
runs as in one session):
- errors: a device raises the GraphcError class the reference raises, and only then (or, in
  a run with several errors, the one that shape inference finds first: device cpu checks
  every shape before it runs a kernel, the reference as it meets each node);
- dtypes and shapes exactly;
- values within the envelope of envelope.py. Its tolerances are not constants: the reference
  evaluates the graph five more times with every op's result moved to the edges of what the op
  may legitimately compute elsewhere (envelope.LEEWAY), and a device may stray from the
  reference by twice as far as those runs do. The freedom of each op, and why:
  * transcendentals (exp, log, tanh, sin, pow, ...): 4 ulps of the result's dtype plus 4
    smallest normals (graphc's math library is within 4 ulp of numpy's float64 results, and
    less exact where results underflow); sin and cos beyond |x| = 1e5 (float32) or 1e9
    (float64) promise only a finite value (graphc/codegen/llvm/mathlib.py);
  * sums of n terms (sum, mean, matmul, conv2d and its gradients, pools' sums, gather_grad):
    (n + 2) ulps of the sum of the terms' magnitudes, the bound of summation in any order;
    where the partial sums can pass the largest finite value, anything (one order overflows
    where another does not); prod likewise, relative;
  * softmax and log_softmax: a few ulps, growing with log2 of the axis length;
  * maximum, minimum, relu, max, min, max_pool2d and every inexact op: a zero of either sign;
  * a float cast to an int: any int where the value is NaN, infinite or out of the int's
    range (numpy gives INT_MIN, graphc's devices saturate; kernels/ir.py leaves it open);
  * every other op is exact: the device must give the reference's bits (IEEE operations are
    correctly rounded everywhere, no device contracts a*b + c, float16 rounds after each op).
  Where the runs disagree on the kind of a value (NaN, +inf, -inf, finite; for ints and
  bools, which value) a few ulps upstream decide it, and the position is not compared.
- Where numpy's own answer is unreliable, graphc's promise (graphc/kernels/ir.py) is compared
  instead of skipping: integers wrap around, integer floordiv and mod by 0 give 0, pow with a
  negative integer exponent truncates 1 / a**-b toward zero, a NaN cast to bool is True.

Optimization levels are compared on the reference device, on graphs that also hold what the
rewrite rules look for (built from the rules' own patterns): O1 and O2 must give what O0 gives
within the roundings a rewrite may change (every rounding op may move by 2 ulps) and where O0
makes no overflow or division by zero itself (a stabilizing rewrite computes log(softmax(x))
without softmax's underflow to 0): so they never turn a NaN into a number or a number into a
NaN. The sign of a zero that a rounding op makes is open between levels: log(1 + x) ->
log1p(x) gives -0.0 for x = -0.0 where O0 gives 0.0, and so does x + 0 -> x. O3's
fast-math rewrites hold for finite values only, so at O3 every value O0 computes from a
non-finite one is left open.

`make test` runs a few hundred examples with a fixed derandomized seed, so it is stable;
GRAPHC_FUZZ_EXAMPLES=N runs N examples of each fuzz test (the per-op tests share N) with a
fresh random seed, for long runs. A failure prints the graph as code, its feeds and the
positions that differ.
"""
import os

import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

import graphc as gc
from graphc.errors import GraphcError
from graphc.ir.subgraph import Body
from graphc.ops.registry import REGISTRY
from tests.helpers import DEVICES

from .envelope import Outcome, envelope, mismatches
from .strategies import MAKERS, fuzz_cases

# what numpy says of the reference's work on extremes: casts to narrower dtypes overflow to
# inf, a mean of nothing is NaN, both on purpose
pytestmark = [pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning"),
              pytest.mark.filterwarnings("ignore:Mean of empty slice:RuntimeWarning")]
EXAMPLES = int(os.environ.get("GRAPHC_FUZZ_EXAMPLES", "0"))
# the default level most often: it fuses, so its kernels are the ones users run
LEVELS = ("O0", "O1", "O2", "O2", "O2", "O3", "O3")


def fuzz_settings(examples, shares=1):
    """`examples` examples, the same ones every run; or GRAPHC_FUZZ_EXAMPLES fresh ones,
    shared among `shares` tests."""
    return settings(max_examples=max(1, EXAMPLES // shares) if EXAMPLES else examples,
                    deadline=None, derandomize=not EXAMPLES,
                    database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


def outcomes(case, device, level):
    """An Outcome per feed set of the case's outputs on one session of `device`."""
    sess = gc.Session(graph=case.graph, device=device, optimize=level, seed=case.seed)
    results = []
    for feeds in case.feed_sets:
        try:
            results.append(Outcome(values=sess.run(case.outputs, feeds)))
        except GraphcError as err:
            results.append(Outcome(error=type(err)))
    return results


def compare(got, reference, runs, what, may_lose_errors=False):
    """Assert that `got` (Outcomes per feed set) stays in the envelope of the reference's."""
    problems = []
    for k, (g, want) in enumerate(zip(got, reference)):
        for r, run in enumerate(runs):
            assert run[k].error is want.error, (
                f"feed set {k}: perturbed run {r} raised {run[k].error}, the reference "
                f"{want.error}: the perturbation reached an index")
        if g.error not in (want.error, want.inference_error) and not (
                may_lose_errors and g.error is None):
            problems.append(f"feed set {k}: {what} raised {_name(g.error)}, the reference "
                            f"{_name(want.error)}")
        if g.error or want.error:
            continue
        for i, (value, expected) in enumerate(zip(g.values, want.values)):
            if expected is None or value is None:
                if value is not expected:
                    problems.append(f"feed set {k}, output {i}: {value!r}, expected None")
                continue
            lines = mismatches(value, expected, [run[k].values[i] for run in runs])
            problems += [f"feed set {k}, output {i} ({expected.dtype}{list(expected.shape)}): "
                         f"{line}" for line in lines]
    assert not problems, f"{what} differs from the reference:\n" + "\n".join(problems)


def _name(error):
    return error.__name__ if error else "nothing"


def check_devices(case, level):
    """Every device against the reference, both on the graph optimized at `level`."""
    reference, runs = envelope(case.outputs, case.feed_sets, level, "device", case.seed)
    for device in DEVICES:
        compare(outcomes(case, device, level), reference, runs, f"device {device!r} at {level}")


def check_levels(case):
    """O1 and O2 against O0, O3 against O0 with finite values only (see the docstring)."""
    reference, runs = envelope(case.outputs, case.feed_sets, "O0", "levels", case.seed)
    for level in ("O1", "O2"):
        compare(outcomes(case, "reference", level), reference, runs, f"level {level}")
    reference, runs = envelope(case.outputs, case.feed_sets, "O0", "fast_math", case.seed)
    compare(outcomes(case, "reference", "O3"), reference, runs, "level O3", may_lose_errors=True)


def test_every_op_of_the_registry_has_a_fuzzing_step():
    missing = sorted(set(REGISTRY) - set(MAKERS))
    assert not missing, f"ops that the fuzzer never builds (add a step to MAKERS): {missing}"
    assert not set(MAKERS) - set(REGISTRY), "steps for ops the registry does not have"


def ops_built(nodes):
    """The ops of `nodes` and of their loops' and conds' bodies, nested ones included."""
    ops = set()
    for node in nodes:
        ops.add(node.op)
        for body in node.attrs.values():
            if isinstance(body, Body):
                ops |= ops_built(body.nodes)
    return ops


def _not_the_simplest(data):
    """Reject hypothesis's first example, the simplest one (every draw at its minimum:
    typical float32 values, no run-time dims), which a short run would spend on it."""
    assume(data.draw(st.integers(0, 2 ** 16), label="salt") != 0)


# The ops in groups, each group's steps taken first in a graph of their own, so that a short
# run compiles every op on every device.
OPS = sorted(MAKERS)
GROUP = 4
GROUPS = [OPS[i:i + GROUP] for i in range(0, len(OPS), GROUP)]


@pytest.mark.parametrize("ops", GROUPS, ids="-".join)
@fuzz_settings(1, shares=len(GROUPS))
@given(data=st.data())
def test_every_op_on_every_device_and_level(ops, data):
    """A graph around the group's ops, on every device at a level drawn and across levels. A
    step that never builds its op fails as unsatisfiable."""
    _not_the_simplest(data)
    case = data.draw(fuzz_cases(ops=ops, steps=(0, 2)), label="case")
    assume(set(ops) <= ops_built(case.graph.nodes))
    level = data.draw(st.sampled_from(LEVELS), label="level")
    check_devices(case, level)
    check_levels(case)


@fuzz_settings(40)
@given(data=st.data())
def test_random_graphs_on_every_device(data):
    _not_the_simplest(data)
    case = data.draw(fuzz_cases(steps=(3, 10)), label="case")
    check_devices(case, data.draw(st.sampled_from(LEVELS), label="level"))


@fuzz_settings(150)
@given(data=st.data())
def test_random_graphs_at_every_level(data):
    """Random graphs with what the rewrite rules look for in them."""
    _not_the_simplest(data)
    check_levels(data.draw(fuzz_cases(steps=(2, 8), rewrites=(1, 4)), label="case"))
