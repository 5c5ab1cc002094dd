"""Optimization levels, pass filters, debug mode, stage dumps, statistics and scale; and
random graphs that must compute the same values at every level."""
import dataclasses
import os
import re
import time
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings

import graphc as gc
from graphc.ir.graph import Graph, nodes_needed
from graphc.ir.types import TensorType
from graphc.passes import PASSES, database, optimize, query, table
from graphc.passes.rewrite import apply_rules, rewrite

from .random_graphs import assert_same_values, op_counts, random_graphs, values_at

rng = np.random.default_rng()


# ---- levels -------------------------------------------------------------------------------------
def test_o0_runs_no_pass(graph):
    x = gc.placeholder(gc.float32, (7,), name="x")
    f = gc.function([x], x * 1.0, optimize="O0")
    stats = f.stats()
    assert stats["pass_seconds"] == {}
    assert stats["nodes_after"] == stats["nodes_before"] == 3
    xb = rng.normal(size=7).astype(np.float32)
    np.testing.assert_array_equal(f(xb), xb)


LEVEL_PASSES = {
    "O0": ([], False),
    "O1": (["canonicalize", "constant_folding", "dce"], False),
    "O2": (["canonicalize", "constant_folding", "loop_invariants", "loop_step_values",
            "loop_accumulators",
            "algebraic", "layout", "stabilize", "dce"], True),
    "O3": (["canonicalize", "constant_folding", "loop_invariants", "loop_step_values",
            "loop_accumulators",
            "algebraic", "layout", "stabilize", "fast_math", "dce"],
           True),
}


@pytest.mark.parametrize("level", sorted(LEVEL_PASSES))
def test_each_level_selects_its_passes_and_runs_them_in_order(graph, level):
    passes, fuse = query(level)
    assert ([p.name for p in passes], fuse) == LEVEL_PASSES[level]
    x = gc.placeholder(gc.float32, (7,), name="x")
    f = gc.function([x], gc.exp(x) * 2.0, optimize=level)
    names, _ = LEVEL_PASSES[level]
    assert list(f.stats()["pass_seconds"]) == names + (["fusion"] if fuse else [])


def test_the_default_level_is_o2(graph):
    x = gc.placeholder(gc.float32, (7,), name="x")
    f = gc.function([x], x * 1.0)
    assert list(f.stats()["pass_seconds"])[:-1] == LEVEL_PASSES["O2"][0]


# (level, excluding, including, build, ops the optimized graph holds)
FILTERS = [
    ("O2", [], [], lambda x: x * 1.0, {"mul": 0}),
    ("O2", ["algebraic"], [], lambda x: x * 1.0, {"mul": 1}),
    ("O2", [], [], lambda x: x * 0.0, {"mul": 1, "fill_like": 0}),
    ("O2", [], ["fast_math"], lambda x: x * 0.0, {"mul": 0, "fill_like": 1}),
    ("O3", ["fast_math"], [], lambda x: x * 0.0, {"mul": 1, "fill_like": 0}),
    ("O2", ["fast_math"], ["fast_math"], lambda x: x * 0.0, {"mul": 1}),  # excluding wins
    # by tag: stabilize is tagged "numerics", constant_folding "folding"
    ("O2", ["numerics"], [], lambda x: gc.log(gc.nn.softmax(x)), {"log": 1, "log_softmax": 0}),
    ("O1", [], ["numerics"], lambda x: gc.log(gc.nn.softmax(x)), {"log": 0, "log_softmax": 1}),
    ("O2", ["folding"], [], lambda x: x + gc.constant(2.0) * gc.constant(3.0), {"mul": 1}),
    ("O2", [], [], lambda x: x + gc.constant(2.0) * gc.constant(3.0), {"mul": 0}),
    ("O0", [], ["algebraic"], lambda x: x * 1.0, {"mul": 0}),
]


@pytest.mark.parametrize("level, excluding, including, build, expect", FILTERS)
def test_excluding_and_including_by_name_and_tag(graph, level, excluding, including, build,
                                                 expect):
    x = gc.placeholder(gc.float32, (3, 7), name="x")
    out = build(x)
    ops = op_counts(optimize([out], level, excluding, including).outputs)
    assert {op: ops[op] for op in expect} == expect, ops
    feed = {x: rng.uniform(0.5, 2, size=(3, 7)).astype(np.float32)}
    got = values_at(level, [out], feed, excluding=excluding, including=including)
    assert_same_values(values_at("O0", [out], feed), got, [out])


def test_excluding_fusion_leaves_the_rewrites(graph):
    x = gc.placeholder(gc.float32, (7,), name="x")
    f = gc.function([x], gc.exp(x * 1.0), excluding=["fusion"])
    assert list(f.stats()["pass_seconds"]) == LEVEL_PASSES["O2"][0]
    assert f.stats()["nodes_after"] == 2  # placeholder, exp


@pytest.mark.parametrize("options, words", [
    ({"optimize": "O4"}, ["'O4'", "O0, O1, O2, O3"]),
    ({"optimize": "fast"}, ["'fast'", "O0, O1, O2, O3"]),
    ({"excluding": ["algebra"]}, ["'algebra'", "algebraic", "fast_math", "fusion", "numerics"]),
    ({"including": ["fastmath"]}, ["'fastmath'", "canonicalize", "dce", "stabilize"]),
])
@pytest.mark.parametrize("entry", ["session", "function", "optimize"])
def test_an_unknown_level_or_pass_lists_the_known_ones(graph, options, words, entry):
    x = gc.placeholder(gc.float32, (7,), name="x")
    make = {"session": lambda: gc.Session(device="reference", **options),
            "function": lambda: gc.function([x], x + 1.0, **options),
            "optimize": lambda: optimize([x + 1.0], **options)}[entry]
    with pytest.raises(gc.GraphcError) as err:
        make()
    for word in words:
        assert word in str(err.value)


# ---- debug mode ---------------------------------------------------------------------------------
def test_debug_type_checks_between_passes_of_a_sound_graph(graph):
    x = gc.placeholder(gc.float32, (None, 5), name="x")
    out = gc.log(gc.nn.softmax(x * 1.0 + 0.0, axis=-1)) - gc.log(1.0 + gc.exp(x))
    f = gc.function([x], out, optimize="O3", debug=True)
    xb = rng.normal(size=(7, 5)).astype(np.float32)
    e = np.exp(xb - xb.max(axis=1, keepdims=True))
    expected = np.log(e / e.sum(axis=1, keepdims=True)) - np.logaddexp(0, xb)
    np.testing.assert_allclose(f(xb), expected, rtol=1e-5, atol=1e-6)


def mistype_exp(outputs):
    """A broken pass: copies the graph but records every exp's output as float64."""
    new_graph, mapping = Graph(), {}
    for node in nodes_needed(outputs):
        types = [TensorType(gc.float64, t.shape) if node.op == "exp" else t.type
                 for t in node.outputs]
        inputs = [mapping[(t.node.id, t.index)] for t in node.inputs]
        copy = new_graph.add_node(node.spec, inputs, node.attrs, types, node.name, node.source)
        mapping.update(((node.id, i), t) for i, t in enumerate(copy.outputs))
    return new_graph, [mapping[(t.node.id, t.index)] for t in outputs]


def test_debug_catches_a_pass_that_records_wrong_types(graph, monkeypatch):
    broken = [dataclasses.replace(p, run=mistype_exp) if p.name == "algebraic" else p
              for p in PASSES]
    monkeypatch.setattr(database, "PASSES", broken)
    x = gc.placeholder(gc.float32, (7,), name="x")
    out = gc.exp(x) + 1.0
    optimize([out], "O2")  # unnoticed without debug
    with pytest.raises(gc.GraphcError, match="after pass 'algebraic'.*float64") as err:
        optimize([out], "O2", debug=True)
    assert "exp" in str(err.value)


# ---- dumps and statistics -----------------------------------------------------------------------
def ops_in_dump(text):
    return Counter(re.findall(r"= (\w+)\(", text))


def test_dump_dir_gets_the_input_and_the_graph_after_each_pass(graph, monkeypatch, tmp_path):
    monkeypatch.setenv("GRAPHC_DUMP_DIR", str(tmp_path))
    x = gc.placeholder(gc.float32, (3, 5), name="x")
    f = gc.function([x], gc.log(gc.nn.softmax(x * 1.0)), name="dumped")
    passes, _ = query("O2")
    stages = ["input"] + [p.name for p in passes]
    directory = tmp_path / "dumped"
    expected = [f"{i:02d}-{stage}.txt" for i, stage in enumerate(stages)]
    expected.append(f"{len(stages):02d}-kernels.txt")
    code = ["90-kernel-ir.txt", "91-program.ll", "92-program-opt.ll", "93-program.s"]  # cpu's
    assert sorted(os.listdir(directory)) == expected + code

    def ops(stage):
        return ops_in_dump((directory / expected[stages.index(stage)]).read_text())
    assert ops("input")["mul"] == 1 and ops("input")["log"] == 1
    assert ops("algebraic")["mul"] == 0 and ops("algebraic")["log"] == 1
    assert ops("stabilize")["log"] == 0 and ops("stabilize")["log_softmax"] == 1
    xb = rng.normal(size=(3, 5)).astype(np.float32)
    assert f(xb).shape == (3, 5)


def test_function_stats(graph):
    x = gc.placeholder(gc.float32, (7,), name="x")
    f = gc.function([x], gc.exp(x * 1.0 + 0.0) * 2.0)
    stats = f.stats()
    assert set(stats) == {"nodes_before", "nodes_after", "kernels", "compile_seconds",
                          "pass_seconds", "host_steps", "loops"}
    assert stats["host_steps"] == []  # every group of this graph has a native kernel
    assert stats["nodes_before"] == 8 and stats["nodes_after"] == 4  # x, exp, 2.0, mul
    assert stats["kernels"] >= 1
    assert set(stats["pass_seconds"]) == set(LEVEL_PASSES["O2"][0]) | {"fusion"}
    assert all(s >= 0 for s in stats["pass_seconds"].values())
    assert 0 < sum(stats["pass_seconds"].values()) <= stats["compile_seconds"]


# ---- scale: the W8 chain ------------------------------------------------------------------------
@pytest.mark.parametrize("n, limit", [(1000, 2.0), (10000, 10.0)])
def test_w8_chain_through_o2(graph, n, limit):
    x = gc.placeholder(gc.float32, (7,), name="x")
    y = x
    for _ in range(n):
        y = y * 1.0001 + 0.001
    start = time.perf_counter()
    compilation = optimize([y], "O2")
    seconds = time.perf_counter() - start
    print(f"W8 chain of {n}: O2 in {seconds:.3f} s")
    assert seconds < limit  # loose; benchmarks/ holds the target
    assert len(nodes_needed(compilation.outputs)) == 2 * n + 3  # nothing to simplify: all kept
    feed = {x: rng.normal(size=7).astype(np.float32)}
    expected = values_at("O0", [y], feed)
    assert_same_values(expected, values_at("O2", [y], feed), [y])
    # the chain in closed form; float32 rounding adds up along it, hence atol grows with n
    slope, offset = 1.0001 ** n, 0.001 * (1.0001 ** n - 1) / 0.0001
    np.testing.assert_allclose(expected[0], feed[x] * slope + offset, rtol=1e-4, atol=1e-6 * n)


def test_passes_with_nothing_to_change_return_their_graph_yet_the_result_is_private(graph):
    x = gc.placeholder(gc.float32, (3,), name="x")
    y = gc.tanh(x) * gc.exp(x)
    compilation = optimize([y], "O2")
    graphs = [outs[0].graph for _, outs in compilation.stages]
    assert graphs[1:] == [graphs[0]] * (len(graphs) - 1)   # every pass kept the user's graph
    assert compilation.graph is not graph                   # but the result is a copy
    assert [n.op for n in compilation.graph.nodes] == [n.op for n in graph.nodes]
    gc.sin(y)                                               # what the user adds later
    assert len(compilation.graph.nodes) == 4                # does not reach the result


def test_a_pass_that_changes_something_copies_and_drops_dead_nodes(graph):
    x = gc.placeholder(gc.float32, (3,), name="x")
    gc.cos(x)                                               # dead
    y = gc.tanh(x) * 1.0                                    # algebraic drops the * 1
    compilation = optimize([y], "O2")
    assert [n.op for n in compilation.graph.nodes] == ["placeholder", "tanh"]
    assert all(outs[0].graph is not graph for name, outs in compilation.stages[1:])


# ---- random graphs ------------------------------------------------------------------------------
@settings(max_examples=int(os.environ.get("GRAPHC_HYPOTHESIS_EXAMPLES", 200)), deadline=None)
@given(random_graphs())
def test_random_graphs_compute_the_same_values_at_every_level(case):
    expected = values_at("O0", case.outputs, case.feed)
    for level in ("O1", "O2", "O3"):
        got = values_at(level, case.outputs, case.feed, debug=True)
        assert_same_values(expected, got, case.outputs, f"at {level}")


# ---- the fixed point ----------------------------------------------------------------------------
def test_a_train_step_reaches_each_rewrite_fixed_point_in_two_sweeps(graph):
    """A CNN train step of the frontend (conv, pools, batch norm, dropout, softmax loss, Adam):
    each rule pass, and fast_math after O2, needs one sweep that rewrites and one that finds
    nothing, far within rewrite.MAX_SWEEPS."""
    import graphc.frontend as gk
    L = gk.layers
    gk.utils.set_random_seed(5)
    model = gk.Sequential([
        L.Input((6, 6, 1)), L.Conv2D(4, 3, padding="same", activation="relu"),
        L.BatchNormalization(), L.MaxPooling2D(), L.Conv2D(4, 3, activation="sigmoid"),
        L.GlobalAveragePooling2D(), L.Dropout(0.2), L.Dense(3, activation="softmax")])
    model.compile(optimizer=gk.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], device="reference")  # the passes alone: no code made
    history = model.fit(rng.normal(size=(8, 6, 6, 1)).astype("float32"),
                        rng.integers(0, 3, 8), batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    stages = model.train_function._exe.compilation.stages
    by_name = {p.name: p for p in PASSES}
    fired = Counter()
    for (_, before), (name, _) in zip(stages, stages[1:]):
        if by_name[name].rules:
            rewrite(by_name[name].rules, before, max_sweeps=2)
            fired.update(apply_rules(by_name[name].rules, before)[2])
    assert len(fired) >= 3, f"the check checks little: only {fired} fired"
    rewrite(by_name["fast_math"].rules, stages[-1][1], max_sweeps=2)


# ---- the README's table of levels ---------------------------------------------------------------
def test_the_table_of_levels_names_every_pass_and_rule_of_each_level():
    rows = {row.split(" | ")[0].strip("| `").split("`")[0]: row
            for row in table.levels_table().splitlines()[2:]}
    assert list(rows) == list(LEVEL_PASSES)
    assert "(default)" in rows[database.DEFAULT_LEVEL]
    assert rows["O0"] == "| `O0` | none: the graph runs as built |"
    for level, (names, fuse) in LEVEL_PASSES.items():
        below = LEVEL_PASSES.get(f"O{int(level[1]) - 1}", ([], False))[0]
        for p in PASSES:
            shown = f"`{p.name}` (" in rows[level]
            assert shown == (p.name in names and p.name not in below), (level, p.name)
            for rule in p.rules if shown else ():
                assert rule.doc in rows[level], (level, rule.name)
        assert (f"`fusion` ({database.FUSION_DOC})" in rows[level]) == (fuse and level == "O2")
    assert "`x-x` to `0`" in rows["O3"] and "x-x" not in rows["O2"]


def test_the_table_is_rewritten_in_place_between_its_markers(tmp_path):
    path = tmp_path / "README.md"
    path.write_text("intro\n" + table.BEGIN + "| old | table |\n" + table.END + "after\n")
    table.update(str(path))
    assert path.read_text() == "intro\n" + table.generated_block() + "after\n"
    path.write_text("no table here\n")
    with pytest.raises(gc.GraphcError, match="holds no generated table"):
        table.update(str(path))


def test_the_default_level_is_the_one_sessions_and_functions_use():
    import inspect
    from graphc.runtime.executable import Options
    from graphc.runtime.function import Function
    assert inspect.signature(Options).parameters["optimize"].default == database.DEFAULT_LEVEL
    assert inspect.signature(Function).parameters["optimize"].default == database.DEFAULT_LEVEL
