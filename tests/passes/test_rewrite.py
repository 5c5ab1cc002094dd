"""The rewrite rules, constant folding and the rewrite engine, on hand-written graphs.

Every rule of every table has a case below: a graph it fires on, what the optimized graph
must look like, and the check that the optimized graph computes what the input graph does.
"""
from collections import Counter
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

import graphc as gc
from graphc.ir.graph import nodes_needed
from graphc.passes import LEVELS, PASSES, optimize, query
from graphc.passes.constant_folding import MAX_FOLDED_ELEMENTS
from graphc.passes.rewrite import MAX_SWEEPS, Op, Rule, Var, apply_rules, rewrite

from .random_graphs import assert_same_values, op_counts, values_at

PASS_OF_RULE = {rule.name: p for p in PASSES for rule in p.rules}


@dataclass
class Case:
    rule: str
    build: Callable  # (*placeholders) -> tensor
    expect: dict  # op -> how many of it the optimized graph holds
    inputs: tuple = (("float32", (3, 7), -2.0, 2.0),)  # (dtype, shape[, low, high]) each
    also: Callable = None  # another check of the optimized graph's output tensor
    id: str = ""

    def __str__(self):
        return f"{self.rule}{'-' + self.id if self.id else ''}"


X = ("float32", (3, 7), -2.0, 2.0)
POSITIVE = ("float32", (3, 7), 0.5, 2.0)
CUBE = ("float32", (2, 3, 5), -2.0, 2.0)
IMAGE = ("float32", (2, 5, 3, 4), -2.0, 2.0)  # NHWC
NCHW, NHWC = (0, 3, 1, 2), (0, 2, 3, 1)
PER_CHANNEL = np.random.default_rng(7).uniform(0.5, 2.0, (4, 1, 1)).astype(np.float32)
# a constant too large to fold, so a transpose of it reaches the layout pass
LARGE = np.random.default_rng(7).uniform(-1, 1, (257, MAX_FOLDED_ELEMENTS // 256)).astype(
    np.float32)
BOOLS = ("bool", (3, 7))
SMALL_INTS = ("int32", (3, 7), 0, 4)


def constant_right(out):
    """The output node holds a constant as its second input, and none as its first."""
    first, second = out.node.inputs
    assert first.node.op != "constant" and second.node.op == "constant", out.node.inputs


def attr_is(out, name, value):
    assert out.node.attrs[name] == value, out.node.attrs


def canonicalize_case(op, build, inputs):
    return Case(f"{op}_constant_right", build, {op: 1}, inputs, also=constant_right)


CASES = [
    # canonicalize: constants move to the right of commutative ops
    canonicalize_case("add", lambda x: gc.add(2.0, x), (X,)),
    canonicalize_case("mul", lambda x: gc.mul(3.0, x), (X,)),
    canonicalize_case("maximum", lambda x: gc.maximum(0.5, x), (X,)),
    canonicalize_case("minimum", lambda x: gc.minimum(0.5, x), (X,)),
    canonicalize_case("equal", lambda k: gc.equal(2, k), (SMALL_INTS,)),
    canonicalize_case("not_equal", lambda k: gc.not_equal(2, k), (SMALL_INTS,)),
    canonicalize_case("logical_and", lambda b: gc.logical_and(True, b), (BOOLS,)),
    canonicalize_case("logical_or", lambda b: gc.logical_or(False, b), (BOOLS,)),
    canonicalize_case("logical_xor", lambda b: gc.logical_xor(True, b), (BOOLS,)),
    canonicalize_case("bitwise_and", lambda k: gc.bitwise_and(6, k), (SMALL_INTS,)),
    canonicalize_case("bitwise_or", lambda k: gc.bitwise_or(-3, k), (SMALL_INTS,)),
    canonicalize_case("bitwise_xor", lambda k: gc.bitwise_xor(5, k), (SMALL_INTS,)),
    Case("sub_constant_to_add", lambda x: x - 2.5, {"sub": 0, "add": 1}),
    # algebraic
    Case("add_zero", lambda x: x + 0.0, {"add": 0}),
    Case("add_zero", lambda x: 0.0 + x, {"add": 0}, id="zero on the left"),
    Case("sub_zero", lambda x: x - 0.0, {"sub": 0, "add": 0}),
    Case("mul_one", lambda x: x * 1.0, {"mul": 0}),
    Case("mul_one", lambda x: 1.0 * (x * 1.0) * 1.0, {"mul": 0}, id="three times"),
    Case("div_one", lambda x: x / 1.0, {"div": 0, "mul": 0}),
    Case("pow_one", lambda x: x ** 1, {"pow": 0}),
    Case("pow_two", lambda x: x ** 2, {"pow": 0, "square": 1}),
    Case("neg_neg", lambda x: -(-x), {"neg": 0}),
    Case("neg_neg", lambda x: -(-(-(-x))), {"neg": 0}, id="four times"),
    Case("div_by_power_of_two", lambda x: x / 4.0, {"div": 0, "mul": 1}),
    Case("div_by_power_of_two", lambda x: x / -0.125, {"div": 0, "mul": 1}, id="by -1/8"),
    Case("mul_neg_one", lambda x: x * -1.0, {"mul": 0, "neg": 1}),
    # layout: transposes sink below what commutes with them, then cancel
    Case("op_below_transpose",
         lambda x: gc.transpose(gc.relu(gc.transpose(x, NCHW) * PER_CHANNEL - 0.5), NHWC),
         {"transpose": 0, "relu": 1}, (IMAGE,), id="per-channel constant"),
    Case("op_below_transpose",
         lambda x, b: gc.transpose(gc.transpose(x, NCHW) - gc.reshape(b, (4, 1, 1)), NHWC),
         {"transpose": 0, "sub": 1}, (IMAGE, ("float32", (4,), -2.0, 2.0)),
         id="per-channel input"),
    Case("op_below_transpose",
         lambda x, y: gc.transpose(gc.maximum(gc.transpose(x, NCHW), gc.transpose(y, NCHW)),
                                   NHWC), {"transpose": 0, "maximum": 1}, (IMAGE, IMAGE),
         id="both operands"),
    Case("op_below_transpose",
         lambda x, y: gc.transpose(gc.concat([gc.transpose(x, NCHW), gc.transpose(y, NCHW)], 1),
                                   NHWC), {"transpose": 0, "concat": 1}, (IMAGE, IMAGE),
         also=lambda out: attr_is(out, "axis", 3), id="concat"),
    Case("op_below_transpose", lambda x: gc.sum(gc.transpose(x, NCHW), axis=(2, 3)),
         {"transpose": 0, "sum": 1}, (IMAGE,), also=lambda out: attr_is(out, "axes", (1, 2)),
         id="reduction"),
    Case("op_below_transpose", lambda x: gc.max(gc.transpose(x, (2, 0, 1)), axis=1),
         {"transpose": 1, "max": 1}, (CUBE,),
         also=lambda out: attr_is(out, "perm", (1, 0)), id="reduction, axes left reordered"),
    Case("op_below_transpose",
         lambda x: gc.pad(gc.transpose(x, (1, 2, 0)), [(1, 0), (0, 2), (1, 1)]),
         {"transpose": 1, "pad": 1}, (CUBE,), also=lambda out: attr_is(out, "perm", (1, 2, 0)),
         id="pad"),
    Case("op_below_transpose",
         lambda x: gc.transpose(gc.transpose(x, NCHW)[:, ::-2, 1:, -1:0:-1] + 1.0, NHWC),
         {"transpose": 0, "strided_slice": 1}, (IMAGE,), id="negative strides"),
    Case("op_below_transpose",
         lambda x: gc.transpose(gc.reshape(gc.transpose(gc.reshape(
             gc.transpose(x, NCHW), (2, 2, 2, 3, 5)), (0, 2, 1, 3, 4)), (2, 4, 3, 5)), NHWC),
         {"transpose": 1, "reshape": 2}, (("float32", (2, 3, 5, 4), -2.0, 2.0),),
         also=lambda out: attr_is(out.node.inputs[0], "perm", (0, 1, 2, 4, 3)),
         id="channel shuffle, in NHWC"),
    Case("transpose_of_unit_axes",
         lambda x: gc.mean(gc.transpose(x, NCHW), axis=(2, 3), keepdims=True) * 2.0,
         {"transpose": 0, "reshape": 1}, (IMAGE,)),
    Case("transpose_of_constant", lambda x: x + gc.transpose(gc.constant(LARGE), (1, 0)),
         {"transpose": 0}, (("float32", LARGE.shape[::-1], -2.0, 2.0),)),
    Case("transpose_of_constant",
         lambda x: x + gc.transpose(gc.reshape(gc.constant(LARGE), (-1, 257)), (1, 0)),
         {"transpose": 0, "reshape": 0}, (("float32", LARGE.shape, -2.0, 2.0),),
         id="through a reshape"),
    Case("transpose_transpose", lambda x: gc.transpose(gc.transpose(x, (1, 2, 0)), (2, 0, 1)),
         {"transpose": 0}, (CUBE,), id="to identity"),
    Case("transpose_transpose", lambda x: gc.transpose(gc.transpose(x, (1, 2, 0)), (1, 0, 2)),
         {"transpose": 1}, (CUBE,), id="to one transpose"),
    Case("reshape_reshape", lambda x: gc.reshape(gc.reshape(x, (6, 5)), (5, 6)),
         {"reshape": 1}, (CUBE,)),
    Case("reshape_reshape",
         lambda x: gc.reshape(gc.reshape(gc.reshape(x, (30,)), (3, -1)), (2, 15)),
         {"reshape": 1}, (CUBE,), id="chain of three"),
    Case("reshape_like_reshape", lambda x, like: gc.reshape_like(gc.reshape(x, (21,)), like),
         {"reshape": 0, "reshape_like": 1}, (X, ("float32", (7, 3)))),
    Case("log_exp", lambda x: gc.log(gc.exp(x)), {"log": 0, "exp": 0}),
    Case("cast_roundtrip", lambda x: gc.cast(gc.cast(x, gc.float64), gc.float32), {"cast": 0}),
    # stabilize
    Case("log_softmax", lambda x: gc.log(gc.nn.softmax(x)),
         {"log_softmax": 1, "log": 0, "softmax": 0}),
    Case("log_softmax", lambda x: gc.log(gc.nn.softmax(x, axis=0)),
         {"log_softmax": 1, "log": 0, "softmax": 0},
         also=lambda out: attr_is(out, "axis", 0), id="axis 0"),
    Case("log_sigmoid", lambda x: gc.log(gc.sigmoid(x)),
         {"softplus": 1, "log": 0, "sigmoid": 0}),
    Case("log1p", lambda x: gc.log(1.0 + x), {"log1p": 1, "log": 0, "add": 0}, (POSITIVE,)),
    Case("expm1", lambda x: gc.exp(x) - 1.0, {"expm1": 1, "exp": 0, "sub": 0, "add": 0}),
    Case("softplus", lambda x: gc.log1p(gc.exp(x)), {"softplus": 1, "log1p": 0, "exp": 0}),
    Case("softplus", lambda x: gc.log(1.0 + gc.exp(x)), {"softplus": 1, "log": 0, "exp": 0},
         id="from log(1 + exp(x))"),
    # fast_math
    Case("mul_zero", lambda x: x * 0.0, {"mul": 0, "fill_like": 1}),
    Case("sub_self", lambda x: x - x, {"sub": 0, "fill_like": 1}),
    Case("div_by_constant", lambda x: x / 3.0, {"div": 0, "mul": 1}),
    Case("exp_log", lambda x: gc.exp(gc.log(x)), {"exp": 0, "log": 0}, (POSITIVE,)),
    Case("sqrt_square", lambda x: gc.sqrt(gc.square(x)), {"sqrt": 0, "square": 0, "abs": 1}),
]


def lowest_level_running(pass_name):
    return next(level for level in LEVELS
                if pass_name in [p.name for p in query(level)[0]])


def make_inputs(specs, rng):
    """(placeholders, feed) for (dtype, shape[, low, high]) specs, in the default graph."""
    feed = {}
    for i, (dtype, shape, *bounds) in enumerate(specs):
        x = gc.placeholder(dtype, shape, name=f"in{i}")
        if dtype == "bool":
            feed[x] = rng.random(shape) < 0.5
        elif dtype.startswith("int"):
            feed[x] = rng.integers(*bounds, size=shape).astype(dtype)
        else:
            feed[x] = rng.uniform(*bounds, size=shape).astype(dtype)
    return list(feed), feed


def fired_in_pass(compilation, pass_):
    """What the rules of `pass_` fire on the graph it was given, in its first sweep."""
    names = [stage for stage, _ in compilation.stages]
    before = compilation.stages[names.index(pass_.name) - 1][1]
    return apply_rules(pass_.rules, before)[2]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_rule_fires_and_keeps_values(graph, case):
    rng = np.random.default_rng()
    phs, feed = make_inputs(case.inputs, rng)
    out = case.build(*phs)
    pass_ = PASS_OF_RULE[case.rule]
    level = lowest_level_running(pass_.name)
    compilation = optimize([out], level)

    assert fired_in_pass(compilation, pass_)[case.rule] >= 1
    ops = op_counts(compilation.outputs)
    assert {op: ops[op] for op in case.expect} == case.expect, ops
    if case.also:
        case.also(compilation.outputs[0])
    expected = values_at("O0", [out], feed)
    assert_same_values(expected, values_at(level, [out], feed), [out], f"after {level}")


def test_every_rule_of_every_table_has_a_case_and_a_doc():
    rules = [rule.name for p in PASSES for rule in p.rules]
    assert len(rules) == len(set(rules)), "two rules share a name"
    assert set(rules) == {case.rule for case in CASES}
    assert not [rule.name for p in PASSES for rule in p.rules if not rule.doc]


SPECIAL_VALUES = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 3e38, -3e38, 1e-40,
                           -1e-40, 100.0, -100.0, 0.5, -2.0], np.float32)


@pytest.mark.parametrize("case", [c for c in CASES if PASS_OF_RULE[c.rule].name != "fast_math"
                                  and all(spec[0] == "float32" for spec in c.inputs)], ids=str)
def test_rules_below_o3_keep_every_nan_and_make_none(graph, case):
    """The README's promise: at O1 and O2 a value is NaN exactly where the graph as built
    gives NaN, on infinities, signed zeros, the largest and subnormal values."""
    rng = np.random.default_rng(3)
    phs, _ = make_inputs(case.inputs, rng)
    feed = {ph: rng.choice(SPECIAL_VALUES, size=ph.shape).astype(np.float32) for ph in phs}
    out = case.build(*phs)
    as_built = values_at("O0", [out], feed)[0]
    assert np.isnan(as_built).any() and not np.isnan(as_built).all(), "no case for NaN"
    for level in ("O1", "O2"):
        optimized = values_at(level, [out], feed)[0]
        np.testing.assert_array_equal(np.isnan(optimized), np.isnan(as_built), err_msg=level)


# Graphs that look like a rule's pattern but are not it: at O3, where every rule runs, each
# keeps the op named and its values.
NEAR_MISSES = [
    (lambda x, y: x * 2.0, "mul"),
    (lambda x, y: x + 1.0, "add"),
    (lambda x, y: x - y, "sub"),
    (lambda x, y: x ** 3, "pow"),
    (lambda x, y: -gc.abs(x), "neg"),
    (lambda x, y: gc.log(2.0 + x), "log"),
    (lambda x, y: gc.log(gc.nn.softmax(x) * 2.0), "log"),
    (lambda x, y: gc.log(gc.sigmoid(x) + 1.0), "sigmoid"),
    (lambda x, y: gc.exp(x) - 2.0, "exp"),
    (lambda x, y: gc.log1p(gc.exp(x) * 2.0), "log1p"),
    (lambda x, y: gc.exp(gc.log(x) * 2.0), "exp"),
    (lambda x, y: gc.sqrt(gc.square(x) + 1.0), "sqrt"),
    (lambda x, y: gc.log(gc.exp(x) + y), "log"),
    (lambda x, y: x * gc.constant(np.ones((2, 3, 7)), dtype=gc.float32), "mul"),  # broadcasts
    (lambda x, y: x + gc.constant(np.zeros((2, 1, 1)), dtype=gc.float32), "add"),
    (lambda x, y: x * gc.constant([[0.0] * 6 + [1.0]] * 3, dtype=gc.float32), "mul"),
    (lambda x, y: gc.transpose(gc.reshape(x, (7, 3))), "transpose"),
    (lambda x, y: gc.transpose(x) + gc.reshape(y, (7, 3)), "transpose"),  # would need two
    (lambda x, y: gc.transpose(gc.exp(gc.transpose(x)) @ y), "transpose"),  # a matmul between
]


@pytest.mark.parametrize("build, kept", NEAR_MISSES)
def test_near_misses_are_left_alone(graph, build, kept):
    rng = np.random.default_rng()
    (x, y), feed = make_inputs((POSITIVE, POSITIVE), rng)
    out = build(x, y)
    assert op_counts(optimize([out], "O3").outputs)[kept] >= 1
    assert_same_values(values_at("O0", [out], feed), values_at("O3", [out], feed), [out])


# ---- what stabilization is for: finite values where the plain formula overflows -----------------
STABILIZED = [
    (lambda x: gc.log(gc.nn.softmax(x)), np.array([[0.0, 200.0, -200.0]]),
     lambda x: x - np.log(np.sum(np.exp(x - x.max()))) - x.max()),
    (lambda x: gc.log(gc.sigmoid(x)), np.array([-200.0, -20.0, 0.0, 30.0]),
     lambda x: -np.logaddexp(0, -x)),
    (lambda x: gc.log(1.0 + x), np.array([1e-10, -1e-12, 3e-9]), np.log1p),
    (lambda x: gc.exp(x) - 1.0, np.array([1e-10, -1e-12, 3e-9]), np.expm1),
    (lambda x: gc.log1p(gc.exp(x)), np.array([100.0, 500.0, -3.0]), lambda x: np.logaddexp(0, x)),
]


@pytest.mark.parametrize("build, x, exact", STABILIZED, ids=["log_softmax", "log_sigmoid",
                                                               "log1p", "expm1", "softplus"])
def test_stabilized_graphs_are_accurate_where_the_formula_is_not(graph, build, x, exact):
    ph = gc.placeholder(gc.float32, x.shape)
    out = build(ph)
    x32 = x.astype(np.float32)
    plain = values_at("O0", [out], {ph: x32})[0]
    stable = values_at("O2", [out], {ph: x32})[0]
    truth = exact(x32.astype(np.float64))
    np.testing.assert_allclose(stable, truth, rtol=1e-5, atol=0)
    assert not np.allclose(plain, truth, rtol=1e-3, atol=0), "the input graph was accurate too"


# ---- constant folding ---------------------------------------------------------------------------
def test_a_product_of_constants_folds_into_one_constant(graph):
    out = gc.constant(2.0) * gc.constant(3.0)
    compilation = optimize([out], "O1")
    (node,) = nodes_needed(compilation.outputs)
    assert node.op == "constant" and node.outputs[0].dtype is gc.float32
    assert node.attrs["value"].array.tolist() == 6.0


def test_constants_fold_inside_a_graph_that_has_inputs(graph):
    rng = np.random.default_rng()
    x = gc.placeholder(gc.float64, (7,))
    c = gc.constant(rng.normal(size=(7,)))
    out = x * gc.sum(gc.exp(c) * 2.0) + gc.reshape(gc.transpose(gc.reshape(c, (1, 7))), (7,))
    compilation = optimize([out], "O1")
    assert op_counts(compilation.outputs) == Counter(
        {"placeholder": 1, "constant": 2, "mul": 1, "add": 1})
    feed = {x: rng.normal(size=(7,))}
    assert_same_values(values_at("O0", [out], feed), values_at("O1", [out], feed), [out])


@pytest.mark.parametrize("n, folds", [(MAX_FOLDED_ELEMENTS, True),
                                      (MAX_FOLDED_ELEMENTS + 1, False)])
def test_folding_stops_at_max_folded_elements(graph, n, folds):
    out = gc.broadcast_to(gc.constant(2.0), (n,)) * gc.constant(3.0)
    compilation = optimize([out], "O2")
    ops = op_counts(compilation.outputs)
    assert (ops == Counter({"constant": 1})) is folds, ops
    np.testing.assert_array_equal(values_at("O2", [out], {})[0], np.full(n, 6.0, np.float32))


def test_a_huge_constant_product_is_not_folded(graph):
    out = gc.broadcast_to(gc.constant(2.0), (1000, 1000)) * gc.constant(3.0)
    compilation = optimize([out], "O2")
    assert op_counts(compilation.outputs) == Counter(
        {"constant": 2, "broadcast_to": 1, "mul": 1})


# ---- the engine ---------------------------------------------------------------------------------
x_, y_ = Var("x"), Var("y")
SUB_TO_ADD = Rule("sub_to_add_neg", Op("sub", x_, y_), lambda m: m.x + gc.neg(m.y))
ADD_TO_SUB = Rule("add_neg_to_sub", Op("add", x_, Op("neg", y_)), lambda m: m.x - m.y)


def test_rules_that_undo_each_other_stop_with_an_error_naming_both(graph):
    a, b = gc.placeholder(gc.float32, (3,)), gc.placeholder(gc.float32, (3,))
    with pytest.raises(gc.GraphcError, match="loop") as err:
        apply_rules([SUB_TO_ADD, ADD_TO_SUB], [a - b])
    assert "sub_to_add_neg" in str(err.value) and "add_neg_to_sub" in str(err.value)


# abs(x) -> abs(neg(neg x)) leaves the new neg(neg x) to the next sweep, where neg_neg undoes
# it and the abs above matches again: a loop across sweeps, not on one node.
ABS_OF_NEG_NEG = Rule("abs_of_neg_neg", Op("abs", Var("x", lambda t: t.node.op != "neg")),
                      lambda m: gc.abs(gc.neg(gc.neg(m.x))))


def test_rules_that_undo_each_other_across_sweeps_stop_with_an_error_naming_both(graph):
    a = gc.placeholder(gc.float32, (3,))
    neg_neg = PASS_OF_RULE["neg_neg"].rules
    with pytest.raises(gc.GraphcError, match=f"'loop' reaches no fixed point.*{MAX_SWEEPS} "
                                             "sweeps.*abs_of_neg_neg.*neg_neg") as err:
        rewrite([ABS_OF_NEG_NEG, *neg_neg], [gc.abs(a) * 2.0], pass_name="loop")
    assert "excluding=['loop']" in str(err.value)
    # each alone reaches its fixed point
    _, (out,) = rewrite([ABS_OF_NEG_NEG], [gc.abs(a)])
    assert [n.op for n in nodes_needed([out])] == ["placeholder", "neg", "neg", "abs"]
    _, (out,) = rewrite(neg_neg, [gc.abs(-(-a))])
    assert [n.op for n in nodes_needed([out])] == ["placeholder", "abs"]


def test_either_rule_alone_reaches_a_fixed_point(graph):
    a, b = gc.placeholder(gc.float32, (3,)), gc.placeholder(gc.float32, (3,))
    _, (out,), fired = apply_rules([SUB_TO_ADD], [a - b])
    assert out.node.op == "add" and fired == Counter({"sub_to_add_neg": 1})


@pytest.mark.parametrize("build", [lambda m: gc.cast(m.x, gc.float64),
                                   lambda m: gc.sum(m.x, axis=0)],
                         ids=["another dtype", "another shape"])
def test_a_replacement_of_another_type_is_not_applied(graph, build):
    x = gc.placeholder(gc.float32, (3, 4))
    rule = Rule("retype", Op("neg", Var("x")), build)
    _, (out,), fired = apply_rules([rule], [-x])
    assert out.node.op == "neg" and out.type == (-x).type and not fired


def test_a_rule_may_decline_by_returning_none(graph):
    x = gc.placeholder(gc.float32, (3,))
    rule = Rule("never", Op("neg", Var("x")), lambda m: None)
    _, (out,), fired = apply_rules([rule], [-x])
    assert out.node.op == "neg" and not fired


def test_a_variable_bound_twice_must_match_one_tensor(graph):
    a, b = gc.placeholder(gc.float32, (3,)), gc.placeholder(gc.float32, (3,))
    _, outs, fired = apply_rules(PASS_OF_RULE["sub_self"].rules, [a - b, a - a])
    assert [t.node.op for t in outs] == ["sub", "fill_like"] and fired["sub_self"] == 1


def test_a_rewritten_node_keeps_the_source_line_of_the_node_it_replaced(graph):
    x = gc.placeholder(gc.float32, (3, 4))
    s = gc.nn.softmax(x)
    out = gc.log(s)  # the line that log_softmax must point at
    folded = gc.constant(2.0) * gc.constant(3.0)
    assert out.node.source != s.node.source
    compilation = optimize([out, folded], "O2")
    new, new_folded = compilation.outputs
    assert new.node.op == "log_softmax" and new.node.source == out.node.source
    assert new_folded.node.op == "constant" and new_folded.node.source == folded.node.source
    assert "test_rewrite.py:" in new.node.source


# ---- rewrites that must not change values -------------------------------------------------------
LOSSY_ROUNDTRIPS = [
    ("float64", "float32", [1 + 1e-12, np.pi]),
    ("float32", "int32", [1.5, -2.7]),
    ("float32", "float16", [1e-6, 70000.0]),
    ("float16", "bfloat16", [1.001, 3.14159]),  # same size, fewer mantissa bits
    ("bfloat16", "float16", [1e5, 1e-7]),  # same size, smaller range
]


@pytest.mark.parametrize("dtype, via, values", LOSSY_ROUNDTRIPS)
def test_a_lossy_cast_roundtrip_is_kept(graph, dtype, via, values):
    x = gc.placeholder(dtype, (len(values),))
    out = gc.cast(gc.cast(x, via), dtype)
    feed = {x: np.array(values, gc.as_dtype(dtype).np)}
    expected = values_at("O0", [out], feed)[0]
    assert not np.array_equal(expected, feed[x]), "the roundtrip was lossless on these values"
    np.testing.assert_array_equal(values_at("O3", [out], feed)[0], expected)


@pytest.mark.parametrize("level", ["O2", "O3"])
@pytest.mark.parametrize("dtype, c, x", [("float16", 1e-5, [0.1, 0.5]),
                                         ("float32", 1e-39, [1e-5, 2e-6]),
                                         ("float64", 2.0 ** -1074, [1e-300, 2e-310])])
def test_dividing_by_a_constant_whose_reciprocal_overflows_stays_finite(graph, level, dtype,
                                                                        c, x):
    ph = gc.placeholder(dtype, (2,))
    out = ph / c
    feed = {ph: np.array(x, dtype)}
    expected = values_at("O0", [out], feed)[0]
    assert np.all(np.isfinite(expected))
    np.testing.assert_allclose(values_at(level, [out], feed)[0], expected, rtol=1e-3)


# The rules that are exact for finite values only, or within an ulp, wait for O3.
FAST_MATH_ONLY = [
    (lambda x: x * 0.0, "mul", [np.inf, -np.inf, np.nan, 1.0]),
    (lambda x: x - x, "sub", [np.inf, -np.inf, np.nan, 1.0]),
    (lambda x: gc.exp(gc.log(x)), "exp", [-1.0, 0.0, np.inf, 2.0]),
    (lambda x: x / 3.0, "div", [1.0, 2.0, 5.0, 1e-3]),
]


@pytest.mark.parametrize("build, kept, values", FAST_MATH_ONLY)
def test_rewrites_exact_for_finite_values_only_wait_for_o3(graph, build, kept, values):
    x = gc.placeholder(gc.float32, (len(values),))
    out = build(x)
    assert op_counts(optimize([out], "O2").outputs)[kept] == 1
    assert op_counts(optimize([out], "O3").outputs)[kept] == 0
    feed = {x: np.array(values, np.float32)}
    np.testing.assert_array_equal(values_at("O2", [out], feed)[0],
                                  values_at("O0", [out], feed)[0])


def test_an_error_while_folding_names_the_node_as_at_run_time(graph):
    out = gc.gather(gc.constant(np.arange(5.0)), np.array([7])) + 1.0
    with pytest.raises(gc.IndexError_) as at_run_time:
        values_at("O0", [out], {})
    with pytest.raises(gc.IndexError_) as when_folding:
        values_at("O1", [out], {})
    for err in (at_run_time, when_folding):
        assert err.value.node is not None and err.value.node.op == "gather"
        assert "(created at " in str(err.value) and "test_rewrite.py:" in str(err.value)
