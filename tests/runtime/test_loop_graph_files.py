"""gc.save / gc.load of graphs with loops and conds (nested ones too): the loaded graph runs
to the same values on every device, gradients through its loops work, and a tampered body is
refused with a CheckpointError, never another exception."""
import copy
import json

import numpy as np
import pytest

import graphc as gc
from graphc.io import graph_json
from tests.helpers import DEVICES
from tests.runtime.test_graph_files import refused, rewrite

rng = np.random.default_rng(3)


def build():
    """A graph with a scan (RNN), a while_loop holding a cond, a map_fn holding a foldl, and
    a gradient through them: (placeholders, variables, fetches)."""
    x = gc.placeholder(gc.float64, (None, 4, 3), name="x")
    h0 = gc.placeholder(gc.float64, (4, 5), name="h0")
    k = gc.placeholder(gc.int32, (), name="k")
    W = gc.Variable(rng.normal(size=(3, 5)), name="W")
    U = gc.Variable(rng.normal(size=(5, 5)) * 0.5, name="U")
    hs, _ = gc.scan(lambda x_t, h: gc.tanh(x_t @ W + h @ U), sequences=x, outputs_info=[h0])
    last = gc.sum(hs, axis=0)
    i, v = gc.while_loop(
        lambda i, v: i < k,
        lambda i, v: (i + 1, v * 0.5 + gc.cond(i > 1, lambda: gc.sum(last * last),
                                               lambda: gc.constant(1.0, gc.float64))),
        (gc.constant(0), gc.constant(1.0, gc.float64)))
    nested = gc.map_fn(lambda m: gc.foldl(lambda a, r: a + r * U[0, 0], m,
                                          initializer=gc.zeros_like(m[0])), x)
    loss = gc.sum(hs * hs) + v + gc.sum(nested)
    gW, gU = gc.grad(loss, [W, U])
    return {"x": x, "h0": h0, "k": k}, {"W": W, "U": U}, {"loss": loss, "i": i, "hs": hs,
                                                         "gW": gW, "gU": gU}


def feed_values(n=3, k=4):
    return {"x": rng.normal(size=(n, 4, 3)), "h0": rng.normal(size=(4, 5)), "k": np.int32(k)}


@pytest.fixture
def saved_loops(tmp_path):
    g = gc.Graph()
    with g.as_default():
        phs, variables, fetches = build()
        sess = gc.Session(device="reference")
        path = str(tmp_path / "loops.gcg")
        gc.save(path, fetches, session=sess)
        return path, sess, phs, variables, fetches


def test_loops_conds_and_nested_bodies_round_trip_with_the_same_values(saved_loops):
    path, sess, phs, _, fetches = saved_loops
    loaded = gc.load(path)
    assert sorted(loaded.fetches) == sorted(fetches)
    ops = {n.op for n in loaded.graph.nodes}
    assert {"loop", "cond"} <= ops or "loop" in ops
    for n, k in ((3, 4), (0, 0), (1, 2)):
        values = feed_values(n, k)
        want = sess.run(fetches, {phs[name]: a for name, a in values.items()})
        for device in ("reference",) + DEVICES:
            with gc.Session(graph=loaded.graph, device=device) as s:
                got = s.run(loaded.fetches, {loaded.placeholders[name]: a
                                             for name, a in values.items()})
            for name in fetches:
                np.testing.assert_allclose(got[name], want[name], rtol=1e-10, atol=1e-12,
                                           err_msg=f"{name} on {device}, {n} steps")


def test_gradients_through_a_loaded_loop(saved_loops):
    path, sess, phs, variables, fetches = saved_loops
    loaded = gc.load(path)
    values = feed_values(5, 3)
    # the gradient is taken in the loaded graph, through its loaded loops
    g = gc.grad(loaded.fetches["loss"], [loaded.variables["W"], loaded.variables["U"]])
    with gc.Session(graph=loaded.graph, device="cpu") as s:
        got = s.run(g, {loaded.placeholders[name]: a for name, a in values.items()})
    want = sess.run([fetches["gW"], fetches["gU"]],
                    {phs[name]: a for name, a in values.items()})
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-10)


def test_the_file_nests_each_body_under_its_node(saved_loops):
    path = saved_loops[0]
    import zipfile
    with zipfile.ZipFile(path) as z:
        header = json.loads(z.read("graph.json"))
    loops = [n for n in header["graph"]["nodes"] if n["op"] == "loop"]
    assert loops
    body = loops[0]["attrs"]["body"]["body"]
    assert set(body) == {"name", "nodes", "arguments", "results"}
    assert all(body["nodes"][i]["op"] == "argument" for i in body["arguments"])
    assert all(body["nodes"][i]["attrs"]["uid"] == {"uid": None} for i in body["arguments"])
    assert not any(n["op"] == "argument" for n in header["graph"]["nodes"])


def all_nodes(nodes):
    """Node records, those of bodies included (depth first)."""
    for n in nodes:
        yield n
        for value in n["attrs"].values():
            if isinstance(value, dict) and isinstance(value.get("body"), dict):
                yield from all_nodes(value["body"]["nodes"])


def first_body(header, op="loop", attr="body"):
    node = next(n for n in all_nodes(header["graph"]["nodes"]) if n["op"] == op)
    return node, node["attrs"][attr]["body"]


def drop_an_argument(h):
    _, body = first_body(h)
    body["arguments"].pop()


def swap_arguments(h):
    _, body = first_body(h)
    body["arguments"][0], body["arguments"][1] = body["arguments"][1], body["arguments"][0]


def argument_twice(h):
    _, body = first_body(h)
    body["arguments"][1] = body["arguments"][0]


def argument_dtype(h):
    _, body = first_body(h)
    arg = body["nodes"][body["arguments"][0]]
    arg["attrs"]["dtype"] = {"dtype": "float32"}
    arg["outputs"][0]["dtype"] = "float32"


def wrong_counts(h):
    node, _ = first_body(h)
    node["attrs"]["counts"] = {"tuple": [{"int": 5}, {"int": 1}, {"int": 0}]}


def negative_count(h):
    node, _ = first_body(h)
    node["attrs"]["counts"]["tuple"][0] = {"int": -1}


def body_not_a_dict(h):
    node, _ = first_body(h)
    node["attrs"]["body"] = {"body": [1, 2]}


def body_on_an_add(h):
    node, body = first_body(h)
    add = next(n for n in h["graph"]["nodes"] if n["op"] == "add")
    add["attrs"]["extra"] = {"body": copy.deepcopy(body)}


def argument_outside(h):
    _, body = first_body(h)
    h["graph"]["nodes"].insert(0, copy.deepcopy(body["nodes"][body["arguments"][0]]))


def variable_inside(h):
    _, body = first_body(h)
    var = next(n for n in h["graph"]["nodes"] if n["op"] == "variable")
    body["nodes"].insert(0, copy.deepcopy(var))
    for n in body["nodes"][1:]:
        n["inputs"] = [[i + 1, k] for i, k in n["inputs"]]
    body["arguments"] = [i + 1 for i in body["arguments"]]
    body["results"] = [[i + 1, k] for i, k in body["results"]]


def result_out_of_range(h):
    _, body = first_body(h)
    body["results"][0] = [len(body["nodes"]) + 3, 0]


def missing_cond_attr(h):
    node, _ = first_body(h, "cond", "true_body")
    del node["attrs"]["n_true"]


def cond_branch_arguments(h):
    node, _ = first_body(h, "cond", "true_body")
    node["attrs"]["n_true"] = {"int": 0}


def unknown_op_inside(h):
    _, body = first_body(h)
    next(n for n in body["nodes"] if n["op"] == "tanh")["op"] = "os.system"


def deep_nesting(h):
    node, body = first_body(h)
    inner = body
    for _ in range(40):
        inner = {"name": "deep", "nodes": [{"op": "constant", "name": "c", "inputs": [],
                                            "attrs": {"nested": {"body": inner}},
                                            "outputs": [], "source": None}],
                 "arguments": [], "results": []}
    node["attrs"]["body"] = {"body": inner}


@pytest.mark.parametrize("edit, match", [
    (drop_an_argument, "an argument node is not in 'arguments'"),
    (swap_arguments, "argument 0 of its body"),
    (argument_twice, "not an argument node of its own"),
    (argument_dtype, "float32"),
    (wrong_counts, "fewer than n_steps|takes"),
    (negative_count, "three counts"),
    (body_not_a_dict, "a body should be a dict"),
    (body_on_an_add, "has no bodies"),
    (argument_outside, "belongs to a loop or cond body"),
    (variable_inside, "cannot be inside a loop or cond body"),
    (result_out_of_range, "result 0"),
    (missing_cond_attr, "'n_true' is missing"),
    (cond_branch_arguments, "true_body takes"),
    (unknown_op_inside, "unknown op"),
    (deep_nesting, "nested more than"),
])
def test_tampered_bodies_are_refused_clearly(saved_loops, edit, match):
    path = saved_loops[0]
    rewrite(path, edit)
    refused(path, match)


def leaves(value, path=()):
    """Every (path, leaf) of a JSON value."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from leaves(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from leaves(v, path + (i,))
        yield path, value  # the list itself: shortened below
    else:
        yield path, value


def mutations(leaf):
    if isinstance(leaf, bool):
        return [not leaf]
    if isinstance(leaf, int):
        return [leaf + 1, -1, 10**9]
    if isinstance(leaf, str):
        return ["tanh", ""]
    if isinstance(leaf, list):
        return [leaf[:-1]] if leaf else [[0]]
    return [0]


def test_every_small_change_to_a_loop_record_loads_or_is_refused_clearly(tmp_path):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float64, (None, 2), name="x")
        ys = gc.map_fn(lambda r: gc.cond(gc.sum(r) > 0, lambda: r * 2.0, lambda: -r), x)
        sess = gc.Session(device="reference")
        doc, arrays = graph_json.encode([ys], sess.get_value)
    loop = next(i for i, n in enumerate(doc["nodes"]) if n["op"] == "loop")
    tried = 0
    for path, leaf in list(leaves(doc["nodes"][loop])):
        for new in mutations(leaf):
            mutated = copy.deepcopy(doc)
            target = mutated["nodes"][loop]
            for key in path[:-1]:
                target = target[key]
            if path:
                target[path[-1]] = new
            try:
                graph_json.decode(mutated, lambda i: arrays[i])
            except gc.CheckpointError:
                pass
            tried += 1
    assert tried > 200


def test_a_scan_that_draws_round_trips_with_its_draws_and_counter(tmp_path):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float64, (None, 2, 3), name="x")
        hs, updates = gc.scan(lambda x_t, h: gc.nn.dropout(x_t, 0.5, seed=4) + h, sequences=x,
                              outputs_info=[gc.zeros_like(x[0])])
        (counter, advance), = updates.items()
        sess = gc.Session(graph=g)
        sess.run(gc.assign(counter, advance))  # a counter of 1 is saved
        gc.save(str(tmp_path / "g"), {"hs": hs}, session=sess)
    xv = rng.normal(size=(5, 2, 3))
    want = sess.run(hs, {x: xv})
    loaded = gc.load(str(tmp_path / "g"))
    for device in ("reference",) + DEVICES:
        got = gc.Session(graph=loaded.graph, device=device).run(loaded.fetches["hs"],
                                                                {loaded.placeholders["x"]: xv})
        np.testing.assert_array_equal(got, want)
    assert not np.array_equal(want, gc.Session(graph=g).run(hs, {x: xv}))  # counter 0 differs
