"""The kernel IR's index helpers: a flat position unflattened and read back row-major is the
position itself (a reshape of a contiguous array is a plain copy), for any integer, and
nothing else is mistaken for it."""
import operator

import numpy as np
import pytest

import graphc as gc
from graphc.kernels import ir
from tests.kernels.helpers import assert_matches_reference

rng = np.random.default_rng(5)
BATCH = ir.Dim(0)
INTEGER_OPS = {"add": operator.add, "sub": operator.sub, "mul": operator.mul,
               "floordiv": operator.floordiv, "mod": operator.mod}


def evaluate(e, env):
    """An index expression's value for loop variables `env` (Python ints, floor semantics)."""
    if isinstance(e, ir.Const):
        return e.value
    if isinstance(e, ir.Var):
        return env[e.name]
    if isinstance(e, ir.Dim):
        return env[f"d{e.slot}"]
    return INTEGER_OPS[e.name](*(evaluate(x, env) for x in e.args))


@pytest.mark.parametrize("extents", [[BATCH, ir.const(5), ir.const(5), ir.const(64)],
                                     [ir.const(7), ir.const(1), ir.const(3)],
                                     [ir.const(1), ir.const(1023)],
                                     [BATCH, ir.Dim(1)]])
def test_a_position_unflattened_and_read_back_row_major_is_itself(extents):
    flat = ir.add(ir.mul(ir.Var("i0"), ir.const(13)), ir.Var("i1"))
    assert ir.linear(ir.unflatten(flat, extents), ir.contiguous_strides(extents)) == flat


def test_other_strides_or_positions_keep_their_arithmetic():
    flat = ir.Var("i0")
    extents = [BATCH, ir.const(5), ir.const(6)]
    index = ir.unflatten(flat, extents)
    env = {"d0": 3, "d1": 4}
    for strides in ([ir.const(30), ir.const(1), ir.const(5)],  # a transposed read
                    ir.contiguous_strides([BATCH, ir.const(6), ir.const(5)])):  # other extents
        e = ir.linear(index, strides)
        assert e != flat
        for i in (0, 7, 29, 89, -4):
            expected = sum(evaluate(x, {"i0": i, **env}) * evaluate(s, env)
                           for x, s in zip(index, strides))
            assert evaluate(e, {"i0": i, **env}) == expected
    mixed = [ir.floordiv(flat, ir.const(30)), ir.mod(ir.Var("i1"), ir.const(5)),
             ir.mod(flat, ir.const(6))]  # not one position's digits
    assert ir.linear(mixed, ir.contiguous_strides(extents)) != flat


@pytest.mark.parametrize("n", [1, 7, 130])
def test_reshapes_of_contiguous_values_are_plain_copies(n):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 5, 3, 4), name="x")
        out = gc.reshape(gc.exp(x), (-1, 60)) + 1.0
        program = assert_matches_reference(
            [out], {x: rng.normal(size=(n, 5, 3, 4)).astype(np.float32)})
    ops = set()
    todo = [e for k in program.kernels for e in ir.statement_exprs(k.body)]
    while todo:
        e = todo.pop()
        if isinstance(e, ir.Op):
            ops.add(e.name)
        todo.extend(ir.children(e))
    assert not ops & {"floordiv", "mod"}, ops
