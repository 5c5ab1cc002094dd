"""Graph dumps: text, JSON and DOT (HTML in test_html.py), through gc.dump, f.dump and
`python -m graphc dump`, with and without the fusion groups fusion makes."""
import json
import os
import re
import shutil
import subprocess
import sys

import networkx as nx
import numpy as np
import pytest

import graphc as gc
from graphc.dump import FORMATS, dump_graph, dump_kernels
from graphc.dump.dot import to_networkx
from graphc.ops.elementwise import fill_like
from graphc.passes.fusion import REASONS, partition
from graphc.runtime.function import STAGES
from graphc.ir.graph import nodes_needed as closure

HERE = os.path.basename(__file__)


def build():
    """A small graph with scopes, a gradient and known source lines: (graph, loss, lines)."""
    g = gc.Graph()
    lines = {}
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 7), name="x")
        lines["x"] = sys._getframe().f_lineno - 1
        W = gc.Variable(np.random.default_rng().standard_normal((7, 3)).astype("float32"),
                        name="W")
        with gc.name_scope("net"):
            with gc.name_scope("dense"):
                h = gc.tanh(x @ W, name="act")
                lines["net/dense/act"] = sys._getframe().f_lineno - 1
            out = gc.sum(h * h, axis=1, name="sq")
            lines["net/sq"] = sys._getframe().f_lineno - 1
        loss = gc.mean(out, name="loss")
        lines["loss"] = sys._getframe().f_lineno - 1
        gW = gc.grad(loss, W)
    return g, loss, gW, lines


# ---- text ---------------------------------------------------------------------------------
def node_rows(text):
    """The node lines of a text dump, indentation stripped: {node id: line}."""
    rows = [line.strip() for line in text.splitlines() if line.strip().startswith("%")]
    return {int(row[1:row.index(" ")]): row for row in rows}


def test_text_has_one_line_per_node_with_name_op_type_inputs_and_user_line():
    g, loss, gW, lines = build()
    text = gc.dump([loss, gW])
    nodes = closure([loss, gW])
    by_id = node_rows(text)
    assert sorted(by_id) == [n.id for n in nodes]
    rows = list(by_id.values())
    for node in nodes:
        row = by_id[node.id]
        assert row.startswith(f"%{node.id} {node.name} = {node.op}(")
        assert ", ".join(t.name for t in node.inputs) in row
        assert " : " + ", ".join(str(t.type) for t in node.outputs) in row
        assert row.endswith(f"# {node.source}")
        assert f"{HERE}:" in row  # every node points at this file, gradients included
    for name, line in lines.items():
        row = next(r for r in rows if r.split(" ")[1] == name)
        assert row.endswith(f"{HERE}:{line}"), row
    act = next(r for r in rows if " net/dense/act = " in r)
    assert re.search(r"= tanh\(net/dense/matmul\) : float32\[x\.0, 3\]", act), act
    sq = next(r for r in rows if " net/sq = " in r)
    assert "axes=(1,) keepdims=False" in sq


def scoped_lines(text):
    """(the scope the headers above put a line in, the line stripped) for each non-header."""
    stack, found = [], []
    for line in text.splitlines():
        depth, _ = divmod(len(line) - len(line.lstrip()), 2)
        assert depth <= len(stack), f"indented deeper than its headers: {line!r}"
        del stack[depth:]
        if line.endswith("/"):
            scope = line.strip()[:-1]
            assert scope.startswith(stack[-1] + "/") if stack else "/" not in scope, line
            stack.append(scope)
        else:
            found.append((stack[-1] if stack else "", line.strip()))
    return found


def test_text_indents_nodes_under_their_name_scopes():
    g, loss, gW, _ = build()
    text = gc.dump([loss, gW])
    scope_of = {int(row[1:row.index(" ")]): scope for scope, row in scoped_lines(text)}
    nodes = closure([loss, gW])
    assert sorted(scope_of) == [n.id for n in nodes]
    for node in nodes:
        assert scope_of[node.id] == node.name.rpartition("/")[0], node.name
    headers = [line for line in text.splitlines() if line.endswith("/")]
    assert [h for h in headers if "net" in h] == ["net/", "  net/dense/"]
    assert len(headers) == len(set(headers)), "one header per scope"


def test_scopes_group_nodes_built_apart():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (7,), name="x")
        with gc.name_scope("a"):
            y = gc.exp(x, name="first")
        z = gc.neg(y, name="between")
        with gc.name_scope("a"):
            w = gc.sqrt(z, name="second")
    lines = gc.dump(w).splitlines()
    assert [line.split(" = ")[0].strip() for line in lines] == [
        "%0 x", "a/", "%1 a/first", "%3 a/second", "%2 between"]


def test_dump_takes_a_tensor_a_list_or_a_graph():
    g, loss, gW, _ = build()
    assert gc.dump(g) == dump_graph(g) and len(node_rows(gc.dump(g))) == len(g.nodes)
    assert gc.dump(loss) == gc.dump([loss]) == gc.dump((loss,))
    assert len(node_rows(gc.dump(loss))) < len(node_rows(gc.dump(g)))
    with g.as_default():
        assert gc.dump() == gc.dump(g)
    for bad in ([], [loss, 3], "loss"):
        with pytest.raises(gc.GraphcError, match="dump expects a tensor"):
            gc.dump(bad)


def test_unknown_format_lists_the_valid_ones():
    g, loss, _, _ = build()
    with pytest.raises(gc.GraphcError, match="unknown dump format 'svg'; expected one of "
                                             "text, dot, json, html"):
        gc.dump(loss, format="svg")


# ---- json ---------------------------------------------------------------------------------
def test_json_matches_the_documented_schema():
    g, loss, gW, lines = build()
    doc = json.loads(gc.dump([loss, gW], format="json"))
    assert set(doc) == {"format", "version", "title", "nodes", "kernels"}
    assert (doc["format"], doc["version"], doc["title"], doc["kernels"]) == (
        "graphc-dump", 2, None, None)
    nodes = closure([loss, gW])
    assert [n["id"] for n in doc["nodes"]] == [n.id for n in nodes]
    by_name = {}
    for record, node in zip(doc["nodes"], nodes):
        assert set(record) == {"id", "name", "op", "inputs", "attrs", "outputs", "source",
                               "kernel"}
        assert record["kernel"] is None  # no kernels before optimization
        assert (record["name"], record["op"], record["source"]) == (
            node.name, node.op, node.source)
        assert record["inputs"] == [f"{t.node.name}:{t.index}" for t in node.inputs]
        assert all(isinstance(v, (int, float, str, bool, list, type(None)))
                   for v in record["attrs"].values())
        for out, t in zip(record["outputs"], node.outputs):
            assert out["dtype"] == t.dtype.name
            assert out["shape"] == [d if isinstance(d, int) else d.name for d in t.shape]
        by_name[record["name"]] = record
    assert by_name["x"]["outputs"] == [{"dtype": "float32", "shape": ["x.0", 7]}]
    assert by_name["net/sq"]["attrs"] == {"axes": [1], "keepdims": False}
    assert by_name["net/sq"]["source"].endswith(f"{HERE}:{lines['net/sq']}")
    assert by_name["net/dense/act"]["inputs"] == ["net/dense/matmul:0"]


def test_json_prints_special_values_and_dtypes():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float64, (3,), name="x")
        y = gc.cast(gc.maximum(x, gc.constant(np.array([np.nan, np.inf, -np.inf]))), gc.int32)
        z = fill_like(x, float("-inf"))
    doc = json.loads(gc.dump([y, z], format="json"))
    attrs = {n["op"]: n["attrs"] for n in doc["nodes"]}
    assert attrs["cast"] == {}  # dtype shows in the output type
    assert [n["outputs"][0]["dtype"] for n in doc["nodes"] if n["op"] == "cast"] == ["int32"]
    assert attrs["fill_like"] == {"value": "-inf"}
    assert attrs["constant"]["value"].replace(" ", "") == "[nan,inf,-inf]"


# ---- dot ----------------------------------------------------------------------------------
QUOTED = r'"((?:[^"\\]|\\.)*)"'
DOT_NODE = re.compile(r"^\s*([nk]\d+) \[label=" + QUOTED + r"((?:, \w+=" + QUOTED[:-1]
                      + r'")*)\];$')
DOT_EDGE = re.compile(r"^\s*([nk]\d+) -> ([nk]\d+) \[label=" + QUOTED + r"\];$")
DOT_CLUSTER = re.compile(r"^\s*subgraph (cluster_k?\d+) \{$")
DOT_ATTR = re.compile(r"^\s*(\w+)=" + QUOTED + ";$")


def parse_dot(text, name="graphc"):
    """(MultiDiGraph of our DOT: per node its label, extra attributes and the labels of the
    clusters around it; {cluster: label}); g.graph["clusters"] holds each cluster's attrs."""
    lines = text.splitlines()
    assert lines[0] == f'digraph "{name}" {{' and lines[-1] == "}"
    g = nx.MultiDiGraph(clusters={})
    clusters, stack = {}, []
    for line in lines[1:-1]:
        if m := DOT_CLUSTER.match(line):
            stack.append(m.group(1))
            g.graph["clusters"][m.group(1)] = {}
        elif line.strip() == "}":
            stack.pop()
        elif (m := DOT_ATTR.match(line)) and stack:
            g.graph["clusters"][stack[-1]][m.group(1)] = m.group(2)
            if m.group(1) == "label":
                clusters[stack[-1]] = m.group(2)
        elif m := DOT_NODE.match(line):
            extra = dict(re.findall(r", (\w+)=" + QUOTED, m.group(3)))
            g.add_node(m.group(1), label=m.group(2), dot=extra,
                       scopes=tuple(clusters[c] for c in stack), clusters=tuple(stack))
        elif m := DOT_EDGE.match(line):
            g.add_edge(m.group(1), m.group(2), label=m.group(3))
        else:
            assert line.strip().startswith(("node [", "edge [")), line
    assert not stack, "unbalanced braces"
    return g, clusters


def render(dot_text, tmp_path):
    """SVG from Graphviz's dot, which must take the text without a warning."""
    dot = shutil.which("dot")
    if dot is None:
        pytest.skip("Graphviz's `dot` is not on the PATH; the DOT text is checked by parsing")
    src = tmp_path / "g.dot"
    src.write_text(dot_text)
    out = subprocess.run([dot, "-Tsvg", str(src)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    assert "<svg" in out.stdout
    return out.stdout


def unescape(label):
    return label.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")


def test_dot_is_the_graph_with_labels_edges_and_scope_clusters():
    g, loss, gW, _ = build()
    parsed, clusters = parse_dot(gc.dump([loss, gW], format="dot"))
    nodes = closure([loss, gW])
    assert sorted(parsed.nodes) == sorted(f"n{n.id}" for n in nodes)
    for node in nodes:
        attrs = parsed.nodes[f"n{node.id}"]
        types = ", ".join(str(t.type) for t in node.outputs)
        assert unescape(attrs["label"]) == f"{node.name}\n{node.op}\n{types}"
        parts = node.name.split("/")[:-1]
        assert attrs["scopes"] == tuple("/".join(parts[:i + 1]) for i in range(len(parts)))
    want_edges = sorted((f"n{t.node.id}", f"n{n.id}", str(t.type))
                        for n in nodes for t in n.inputs)
    got_edges = sorted((a, b, lab) for a, b, lab in parsed.edges(data="label"))
    assert got_edges == want_edges
    assert set(clusters.values()) == {"net", "net/dense", "gradients"}
    # x * x is two edges from one tensor
    mul = next(n for n in nodes if n.op == "mul" and n.inputs[0] is n.inputs[1])
    assert parsed.number_of_edges(f"n{mul.inputs[0].node.id}", f"n{mul.id}") == 2


def test_dot_escapes_quotes_and_backslashes_in_names():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (2,), name='say "hi" \\ bye')
        y = gc.neg(x, name="n")
    text = gc.dump(y, format="dot")
    parsed, _ = parse_dot(text)
    labels = {unescape(lab) for _, lab in parsed.nodes(data="label")}
    assert 'say "hi" \\ bye\nplaceholder\nfloat32[2]' in labels
    assert nx.is_directed_acyclic_graph(to_networkx(g, [y]))


def test_dot_renders_with_graphviz(tmp_path):
    g, loss, gW, _ = build()
    assert "net/dense/act" in render(gc.dump([loss, gW], format="dot"), tmp_path)


# ---- f.dump and the kernels a partition adds ---------------------------------------------
@pytest.mark.parametrize("fmt", ["text", "json", "dot"])
def test_function_dump_of_the_input_stage(fmt):
    g, loss, gW, _ = build()
    with g.as_default():
        x = g.tensor("x")
        f = gc.function([x], loss)
    text = f.dump(stage="input", format=fmt)
    # the input graph, titled with the function's name and stage
    assert text == dump_graph(g, [loss], format=fmt, title="function: input")
    assert "function: input" in text and "net/dense/act" in text
    with pytest.raises(gc.GraphcError, match="unknown dump format 'png'"):
        f.dump(stage="input", format="png")


# ---- kernels: what fusion grouped, in every format ---------------------------------------
def w1(x):
    return gc.tanh(x) * gc.sigmoid(x) + 0.5 * x * x - gc.exp(-gc.abs(x))


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


# What each function an expression calls computes, for evaluating printed expressions.
NUMPY = {"tanh": np.tanh, "sigmoid": sigmoid, "exp": np.exp, "abs": np.abs, "log": np.log,
         "maximum": np.maximum, "minimum": np.minimum, "where": np.where, "sqrt": np.sqrt,
         "floor": np.floor}


def run_expression(record, arrays):
    """Execute a kernel record's expression with numpy; arrays by tensor name -> outputs."""
    scope = dict(NUMPY)
    scope.update((i["as"], arrays[i["tensor"]]) for i in record["inputs"]
                 if i["as"].startswith("in"))
    exec(record["expression"], scope)
    return [scope[o["as"]] for o in record["outputs"]]


def test_optimized_text_prints_the_w1_formula_as_one_kernel_line():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 784), name="x")
        f = gc.function([x], w1(x))
    text = f.dump(stage="optimized")
    kernels = [line for line in text.splitlines() if line.startswith("kernel ")]
    assert len(kernels) == 1, text
    line = kernels[0]
    assert line.startswith("kernel k0 elementwise float32[x.0, 784]: out = ")
    for call in ("tanh(in0)", "sigmoid(in0)", "exp(", "abs(in0)", "0.5"):
        assert call in line, line
    assert "[in0=x; out=" in line and "nodes: " in line
    # the nodes the kernel computes have no lines of their own; the placeholder and the
    # constant, which no kernel computes, keep theirs
    assert sorted(row.split(" = ")[1].partition("(")[0] for row in node_rows(text).values()) \
        == ["constant", "placeholder"]
    xs = np.random.default_rng().standard_normal((7, 784)).astype("float32")
    (record,) = json.loads(f.dump(stage="optimized", format="json"))["kernels"]
    (out,) = run_expression(record, {"x:0": xs})
    np.testing.assert_allclose(out, f(xs), rtol=1e-5, atol=1e-6)


# Elementwise graphs whose printed expression must keep Python's precedence to mean the same.
PRECEDENCE = {
    "sub_of_sub": lambda a, b, c: a - (b - c),
    "sub_then_sub": lambda a, b, c: a - b - c,
    "div_of_product": lambda a, b, c: a / (b * c),
    "sum_times": lambda a, b, c: (a + b) * c,
    "neg_of_sum": lambda a, b, c: -(a + b) * c,
    "neg_times_negative": lambda a, b, c: -a * b * -2.0 - -c,
    "pow_chains": lambda a, b, c: ((abs(a) + 1) ** b) ** c + (abs(b) + 1) ** (c ** 2),
    "negative_base": lambda a, b, c: gc.constant(-2.0, gc.float64) ** gc.floor(b) + a ** -2.0,
    "floordiv_mod": lambda a, b, c: (a // (abs(b) + 1)) % (abs(c) + 1) * 3,
    "comparisons": lambda a, b, c: gc.where(gc.equal(a > b, b > c), a, c),
    "logic": lambda a, b, c: gc.where(((a > 0) & ~(b > 0)) | (c > 0), a * a, -c),
    "shared_value": lambda a, b, c: (a + b) * (a + b) - gc.exp(a + b) / (a + b),
    "calls": lambda a, b, c: gc.maximum(a, 0.5) * gc.minimum(b, -2.0) + gc.sqrt(abs(c)),
}


@pytest.mark.parametrize("name", list(PRECEDENCE))
@pytest.mark.parametrize("shape", [(1,), (7,), (3, 5)])
def test_printed_expression_computes_what_the_group_computes(name, shape):
    rng = np.random.default_rng()
    arrays = [rng.uniform(-2, 2, shape) for _ in range(3)]
    g = gc.Graph()
    with g.as_default():
        phs = [gc.placeholder(gc.float64, shape, name=n) for n in "abc"]
        y = PRECEDENCE[name](*phs)
        want = gc.Session(g, device="reference").run(y, dict(zip(phs, arrays)))
    part = partition(g, [y])
    assert len(part.groups) == 1, part.summary()
    (record,) = json.loads(dump_graph(g, [y], "json", partition=part))["kernels"]
    (got,) = run_expression(record, {f"{n}:0": a for n, a in zip("abc", arrays)})
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=record["expression"])
    assert record["expression"].count("in0") >= 1


def test_values_used_twice_and_several_outputs_are_named():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (7, 3), name="x")
        s = gc.exp(x) + 1.0
        y = gc.sum(s * s, axis=1)
    part = partition(g, [s, y])
    (line,) = [row for row in dump_graph(g, [s, y], partition=part).splitlines()
               if row.startswith("kernel")]
    assert ": out0 = exp(in0) + 1.0; out1 = sum[1](out0 * out0)  [in0=x; out0=add, " \
           "out1=sum; nodes: exp, add, mul, sum]" in line, line
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (4, 6), name="x")
        e = gc.exp(x - gc.max(x, axis=1, keepdims=True))
        y = e / gc.sum(e, axis=1, keepdims=True)
    part = partition(g, [y])
    text = dump_graph(g, [y], partition=part)
    assert "t0 = exp(in0 - max[1](in0)); out = t0 / sum[1](t0)" in text, text


def mlp():
    """A 3-layer MLP train step under name scopes: (graph, the function, its fetches)."""
    rng = np.random.default_rng()
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 13), name="x")
        labels = gc.placeholder(gc.int32, (None,), name="labels")
        params, h = [], x
        for i, (m, n) in enumerate([(13, 7), (7, 5), (5, 3)]):
            with gc.name_scope(f"layer{i + 1}"):
                W = gc.Variable(rng.standard_normal((m, n)).astype("float32"), name="W")
                b = gc.Variable(np.zeros(n, "float32"), name="b")
                h = h @ W + b
                h = gc.relu(h) if i < 2 else h
            params += [W, b]
        loss = gc.mean(gc.nn.sparse_softmax_cross_entropy(h, labels), name="loss")
        grads = gc.grad(loss, params)
        updates = [(p, p - 0.1 * gp) for p, gp in zip(params, grads)]
        f = gc.function([x, labels], loss, updates=updates, name="train")
    return g, f, [loss] + grads


def test_json_says_which_kernel_computes_each_node():
    g, _, fetches = mlp()
    part = partition(g, fetches)
    doc = json.loads(dump_graph(g, fetches, "json", partition=part))
    assert [k["id"] for k in doc["kernels"]] == [grp.id for grp in part.groups]
    for record in doc["nodes"]:
        group = part.group_of.get(record["id"])
        assert record["kernel"] == (group.id if group is not None else None)
        if group is None:
            assert g.nodes[record["id"]].spec.kind == "source"
    for k, group in zip(doc["kernels"], part.groups):
        assert set(k) == {"id", "kind", "nodes", "inputs", "outputs", "expression",
                          "boundaries"}
        assert k["kind"] == group.kind and k["nodes"] == [n.id for n in group.nodes]
        assert [i["tensor"] for i in k["inputs"]] == [f"{t.node.name}:{t.index}"
                                                      for t in group.inputs]
        named = [i["as"] for i in k["inputs"] if i["as"].startswith("in")]
        assert named == [f"in{j}" for j in range(len(named))]
        outs = [o["as"] for o in k["outputs"]]
        assert outs == (["out"] if len(outs) == 1 else [f"out{j}" for j in range(len(outs))])
        for o in outs:
            assert re.search(rf"(^|; ){o} = ", k["expression"]), k["expression"]
        mine = {n.name for n in group.nodes}
        assert [(b["producer"], b["consumer"], b["reason"]) for b in k["boundaries"]] == [
            tuple(b) for b in part.boundaries if b.producer in mine]
        assert all(b["reason"] in REASONS for b in k["boundaries"])
    assert sum(len(k["boundaries"]) for k in doc["kernels"]) == len(part.boundaries) > 0


def test_dot_draws_one_filled_cluster_per_kernel(tmp_path):
    g, _, fetches = mlp()
    part = partition(g, fetches)
    text = dump_graph(g, fetches, "dot", partition=part, title="train step")
    parsed, clusters = parse_dot(text, name="train step")
    assert clusters == {f"cluster_k{grp.id}": f"k{grp.id} {grp.kind}" for grp in part.groups}
    fills = [parsed.graph["clusters"][c]["fillcolor"] for c in clusters]
    assert all(fill != other for fill, other in zip(fills, fills[1:]))
    for node in closure(fetches):
        group = part.group_of.get(node.id)
        assert parsed.nodes[f"n{node.id}"]["clusters"] == (
            (f"cluster_k{group.id}",) if group is not None else ())
    render(text, tmp_path)


def test_kernels_stage_lists_each_kernel_with_its_inputs_nodes_and_boundaries():
    g, f, _ = mlp()
    text = f.dump(stage="kernels")
    doc = json.loads(f.dump(stage="kernels", format="json"))
    assert (doc["format"], doc["version"]) == ("graphc-kernels", 2)
    blocks = re.split(r"^(?=kernel k)", text, flags=re.M)
    assert blocks[0] == "# train: kernels\n" and len(blocks) - 1 == len(doc["kernels"])
    for block, k in zip(blocks[1:], doc["kernels"]):
        head, *body = block.rstrip("\n").splitlines()
        assert head.startswith(f"kernel k{k['id']} {k['kind']} ")
        assert f": {k['expression']}  [" in head
        assert all(line.startswith("  ") for line in body)
        assert sorted(node_rows(block)) == k["nodes"]
        for i in k["inputs"]:
            if i["as"].startswith("in"):
                assert f"  {i['as']} = {i['tensor'].removesuffix(':0')} : " \
                    f"{i['dtype']}[{', '.join(map(str, i['shape']))}]" in body
        for b in k["boundaries"]:
            assert f"{b['consumer']} ({b['reason']})" in block
    assert "(stateful op)" in text


def test_kernels_stage_dot_is_the_graph_of_kernels(tmp_path):
    g, f, _ = mlp()
    doc = json.loads(f.dump(stage="kernels", format="json"))
    text = f.dump(stage="kernels", format="dot")
    parsed, clusters = parse_dot(text, name="train: kernels")
    assert clusters == {}
    kernels = sorted(key for key in parsed.nodes if key.startswith("k"))
    assert kernels == sorted(f"k{k['id']}" for k in doc["kernels"])
    assert parsed.number_of_edges() == sum(len(k["inputs"]) for k in doc["kernels"])
    for k in doc["kernels"]:
        node = parsed.nodes[f"k{k['id']}"]
        assert unescape(node["label"]).startswith(f"k{k['id']} {k['kind']}\n")
        assert node["dot"]["style"] == "filled"
        assert sorted(lab for _, _, lab in parsed.in_edges(f"k{k['id']}", data="label")) == \
            sorted(i["tensor"].removesuffix(":0") for i in k["inputs"])
    assert nx.is_directed_acyclic_graph(parsed)
    render(text, tmp_path)


@pytest.fixture(scope="module")
def train_step():
    return mlp()


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_stage_in_every_format(train_step, stage, fmt, tmp_path):
    g, f, _ = train_step
    text = f.dump(stage=stage, format=fmt)
    if fmt == "text":
        kernel_lines = [line for line in text.splitlines() if line.startswith("kernel k")]
        assert (len(kernel_lines) > 0) == (stage != "input")
        assert "layer2/matmul" in text
    elif fmt == "json":
        doc = json.loads(text)
        assert doc["format"] == ("graphc-kernels" if stage == "kernels" else "graphc-dump")
        assert (doc["kernels"] is None) == (stage == "input")
    elif fmt == "dot":
        parsed, _ = parse_dot(text, name=f"train: {stage}")
        assert parsed.number_of_nodes() > 0
        render(text, tmp_path)
    else:
        assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
        assert '"name":"layer2/matmul"' in text


def test_without_fusion_the_optimized_stage_has_no_kernels():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (7,), name="x")
        f = gc.function([x], w1(x), optimize="O0")
    assert "kernel " not in f.dump(stage="optimized")
    assert json.loads(f.dump(stage="optimized", format="json"))["kernels"] is None
    with pytest.raises(gc.GraphcError, match="fusion did not run"):
        f.dump(stage="kernels")
    with pytest.raises(gc.GraphcError, match="unknown kernel dump format 'svg'"):
        dump_kernels(partition(g, [g.nodes[-1].outputs[0]]), "svg")

# ---- the command line ---------------------------------------------------------------------
def cli(*args):
    return subprocess.run([sys.executable, "-m", "graphc", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def test_cli_dumps_a_saved_graph_in_every_format(tmp_path):
    g, loss, gW, lines = build()
    path = gc.save(tmp_path / "model.gcg", {"loss": loss, "grad": gW}, session=gc.Session(g))
    text = cli("dump", path)
    assert text.returncode == 0, text.stderr
    # the same lines, names, types and sources; only the node ids count the saved nodes alone
    without_ids = re.compile(r"^( *)%\d+ ", re.M)
    assert without_ids.sub(r"\1", text.stdout.rstrip("\n")) == \
        without_ids.sub(r"\1", gc.dump([loss, gW]))
    doc = json.loads(cli("dump", path, "--format", "json", "--stage", "input").stdout)
    assert [n["name"] for n in doc["nodes"]] == [n.name for n in closure([loss, gW])]
    parsed, clusters = parse_dot(cli("dump", path, "--format", "dot").stdout)
    assert parsed.number_of_nodes() == len(closure([loss, gW]))
    assert "net/dense" in clusters.values()
    page = cli("dump", path, "--format", "html", "--stage", "optimized")
    assert page.returncode == 0, page.stderr
    assert page.stdout.startswith("<!DOCTYPE html>") and '"kernels":[{' in page.stdout


def test_cli_reports_a_bad_file_in_one_line_with_status_2(tmp_path):
    g, loss, _, _ = build()
    path = gc.save(tmp_path / "model.gcg", loss, session=gc.Session(g))
    good = gc.save(tmp_path / "good.gcg", loss, session=gc.Session(g))
    data = open(path, "rb").read()
    open(path, "wb").write(data[:len(data) // 2])
    for args, message in [((path,), "is corrupt or truncated"),
                          ((tmp_path / "missing.gcg",), "no graph file at"),
                          ((good, "--stage", "nope"), "unknown stage 'nope'")]:
        out = cli("dump", *args)
        assert out.returncode == 2
        assert out.stdout == ""
        assert "Traceback" not in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert out.stderr.startswith("graphc: error: ") and message in out.stderr
    usage = cli("dump", path, "--format", "svg")
    assert usage.returncode == 2 and "invalid choice: 'svg'" in usage.stderr
