"""Index arithmetic simplified by loop ranges (graphc/kernels/index_ranges.py): the simplified
expression has the value of the original for every value of its variables in their ranges,
and a channel shuffle after a grouped product reads its input without dividing flat
positions."""
import itertools

import numpy as np
import pytest

import graphc as gc
from graphc.kernels import ir
from graphc.kernels.index_ranges import simplify_indices
from tests.kernels.helpers import assert_matches_reference
from tests.kernels.test_index_arithmetic import evaluate

rng = np.random.default_rng(23)


def _ops(exprs, names=("floordiv", "mod")):
    """How many ops of `names` are under exprs (each distinct one once)."""
    return sum(isinstance(e, ir.Op) and e.name in names for e in ir.distinct(exprs))


def _random_index(variables, depth):
    """A random composition of adds, subs, products by constants, floordivs and mods by
    positive constants, of the variables and negative and positive constants."""
    if depth == 0:
        return rng.choice([*variables, ir.const(int(rng.integers(-9, 30)))])
    a = _random_index(variables, depth - 1)
    kind = rng.choice(["add", "sub", "mul", "floordiv", "mod"])
    if kind in ("add", "sub"):
        return ir.Op(kind, (a, _random_index(variables, depth - 1)), ir.INDEX)
    k = int(rng.choice([1, 2, 3, 4, 7, 12, 28, 112, -3])) if kind == "mul" else int(
        rng.choice([1, 2, 3, 4, 7, 12, 28, 112]))
    return ir.Op(kind, (a, ir.const(k)), ir.INDEX)


def _kernel(index, extents):
    """A kernel storing at `index` inside loops over `extents` (ints; None: a run-time dim)."""
    body = (ir.Store(0, index, ir.const(0.0, "float32")),)
    for i, extent in reversed(list(enumerate(extents))):
        body = (ir.Loop(ir.Var(f"i{i}"), ir.Dim(i) if extent is None else ir.const(extent),
                        body),)
    return ir.Kernel("k", body, {})


def _store_index(kernel):
    s = kernel.body[0]
    while isinstance(s, ir.Loop):
        s = s.body[0]
    return s.index


@pytest.mark.parametrize("seed", range(40))
def test_simplified_indices_keep_their_value_at_every_point_of_the_loops(seed):
    global rng
    rng = np.random.default_rng(seed)
    extents = [int(rng.integers(1, 9)), int(rng.choice([1, 4, 28, 30])), None]
    variables = [ir.Var(f"i{i}") for i in range(3)]
    index = _random_index(variables, int(rng.integers(2, 6)))
    (kernel,) = simplify_indices([_kernel(index, extents)])
    simple = _store_index(kernel)
    for point in itertools.product(range(extents[0]), range(extents[1]), (0, 1, 5, 33)):
        env = {f"i{i}": v for i, v in enumerate(point)}
        assert evaluate(simple, env) == evaluate(index, env), (index, simple, point)


def test_a_flat_position_divided_by_its_strides_is_its_digits():
    i, j, k = (ir.Var(f"i{n}") for n in range(3))
    flat = ir.linear([i, j, k], [ir.const(6272), ir.const(112), ir.const(1)])
    shuffled = ir.add(ir.mul(ir.mod(flat, ir.const(4)), ir.const(87808)),
                      ir.mod(ir.floordiv(ir.floordiv(flat, ir.const(4)), ir.const(28)),
                             ir.const(3136)))
    (kernel,) = simplify_indices([_kernel(shuffled, [56, 56, 112])])
    simple = _store_index(kernel)
    # (flat // 4) // 28 is flat // 112, the row i0 * 56 + i1, in range of the mod: k % 4 is left
    assert _ops([simple]) == 1
    for point in [(0, 0, 0), (55, 55, 111), (3, 17, 5), (20, 0, 111)]:
        env = dict(zip(("i0", "i1", "i2"), point))
        assert evaluate(simple, env) == evaluate(shuffled, env)


def test_a_variable_without_a_known_range_keeps_its_division():
    flat = ir.add(ir.mul(ir.Var("i0"), ir.const(8)), ir.Var("i1"))
    (kernel,) = simplify_indices([_kernel(ir.floordiv(flat, ir.const(8)), [5, None])])
    simple = _store_index(kernel)
    assert _ops([simple]) == 1  # i0 + i1 // 8: i1 may pass 8
    assert evaluate(simple, {"i0": 2, "i1": 17}) == (2 * 8 + 17) // 8


@pytest.mark.parametrize("n", [1, 3])
def test_a_channel_shuffle_of_a_grouped_product_reads_without_dividing_positions(n):
    """(N, G, HW, C) products transposed to NHWC and shuffled as ShuffleNet does: the kernel
    after the product matches the reference, and no floordiv or mod is left but those of the
    channel index by the groups."""
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (n, 3, 35, 6), name="x")  # (N, G, HW, C/G)
        y = gc.transpose(x, (0, 2, 1, 3))  # (N, HW, G, C/G)
        y = gc.reshape(gc.relu(gc.reshape(y, (n, 7, 5, 18)) * 2.0), (n, 7, 5, 3, 6))
        out = gc.reshape(gc.transpose(y, (0, 1, 2, 4, 3)), (n, 7, 5, 18))
        program = assert_matches_reference(
            [out], {x: rng.normal(size=(n, 3, 35, 6)).astype(np.float32)})
    exprs = [e for k in program.kernels for e in ir.statement_exprs(k.body)]
    # legalized: each floordiv or mod by 3 is a few truncdivs; a flat position's would add more
    assert _ops(exprs, ("truncdiv",)) <= 2, _ops(exprs, ("truncdiv",))


def test_shared_subexpressions_are_expanded_once():
    """x doubled 60 times through one shared operand (2^60 paths to i): the division by 2^60
    simplifies to i at once, where expanding every path would never end."""
    x = ir.Var("i0")
    for _ in range(60):
        x = ir.Op("add", (x, x), ir.INDEX)
    (kernel,) = simplify_indices([_kernel(ir.floordiv(ir.add(x, ir.Var("i1")),
                                                      ir.const(2 ** 60)), [7, 5])])
    assert _store_index(kernel) == ir.Var("i0")
