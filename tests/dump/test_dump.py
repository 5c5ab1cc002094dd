"""Graph dumps: text, JSON and DOT, through gc.dump, f.dump and `python -m graphc dump`."""
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
from graphc.dump import dump_graph, dump_kernels
from graphc.dump.dot import to_networkx
from graphc.ops.elementwise import fill_like

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


def closure(tensors):
    seen, stack = set(), [t.node for t in tensors]
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(t.node for t in node.inputs)
    return sorted(seen, key=lambda n: n.id)


# ---- text ---------------------------------------------------------------------------------
def test_text_has_one_line_per_node_with_name_op_type_inputs_and_user_line():
    g, loss, gW, lines = build()
    text = gc.dump([loss, gW])
    nodes = closure([loss, gW])
    rows = text.splitlines()
    assert len(rows) == len(nodes)
    for node, row in zip(nodes, rows):
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


def test_dump_takes_a_tensor_a_list_or_a_graph():
    g, loss, gW, _ = build()
    assert gc.dump(g) == dump_graph(g) and len(gc.dump(g).splitlines()) == len(g.nodes)
    assert gc.dump(loss) == gc.dump([loss]) == gc.dump((loss,))
    assert len(gc.dump(loss).splitlines()) < len(gc.dump(g).splitlines())
    with g.as_default():
        assert gc.dump() == gc.dump(g)
    for bad in ([], [loss, 3], "loss"):
        with pytest.raises(gc.GraphcError, match="dump expects a tensor"):
            gc.dump(bad)


def test_unknown_format_lists_the_valid_ones():
    g, loss, _, _ = build()
    with pytest.raises(gc.GraphcError, match="unknown dump format 'svg'; expected one of "
                                             "text, dot, json"):
        gc.dump(loss, format="svg")


# ---- json ---------------------------------------------------------------------------------
def test_json_matches_the_documented_schema():
    g, loss, gW, lines = build()
    doc = json.loads(gc.dump([loss, gW], format="json"))
    assert set(doc) == {"format", "version", "nodes"}
    assert (doc["format"], doc["version"]) == ("graphc-dump", 1)
    nodes = closure([loss, gW])
    assert [n["id"] for n in doc["nodes"]] == [n.id for n in nodes]
    by_name = {}
    for record, node in zip(doc["nodes"], nodes):
        assert set(record) == {"id", "name", "op", "inputs", "attrs", "outputs", "source"}
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
DOT_NODE = re.compile(r'^\s*(n\d+) \[label="((?:[^"\\]|\\.)*)"\];$')
DOT_EDGE = re.compile(r'^\s*(n\d+) -> (n\d+) \[label="((?:[^"\\]|\\.)*)"\];$')
DOT_CLUSTER = re.compile(r"^\s*subgraph (cluster_\d+) \{$")
DOT_LABEL = re.compile(r'^\s*label="((?:[^"\\]|\\.)*)";$')


def parse_dot(text):
    """(MultiDiGraph with labels and cluster path per node, {cluster: label}) from our DOT."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("//")]
    assert re.match(r'^digraph "graphc" \{$', lines[0]) and lines[-1] == "}"
    g = nx.MultiDiGraph()
    clusters, stack = {}, []
    for line in lines[1:-1]:
        if m := DOT_CLUSTER.match(line):
            stack.append(m.group(1))
        elif line.strip() == "}":
            stack.pop()
        elif (m := DOT_LABEL.match(line)) and stack:
            clusters[stack[-1]] = m.group(1)
        elif m := DOT_NODE.match(line):
            g.add_node(m.group(1), label=m.group(2),
                       scopes=tuple(clusters[c] for c in stack))
        elif m := DOT_EDGE.match(line):
            g.add_edge(m.group(1), m.group(2), label=m.group(3))
        else:
            assert line.strip().startswith(("node [", "edge [")), line
    assert not stack, "unbalanced braces"
    return g, clusters


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
    dot = shutil.which("dot")
    if dot is None:
        pytest.skip("Graphviz's `dot` is not on the PATH; the DOT text is checked by parsing")
    g, loss, gW, _ = build()
    src = tmp_path / "g.dot"
    src.write_text(gc.dump([loss, gW], format="dot"))
    out = subprocess.run([dot, "-Tsvg", str(src)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    assert "<svg" in out.stdout and "net/dense/act" in out.stdout


# ---- f.dump and the kernels a partition adds ---------------------------------------------
@pytest.mark.parametrize("fmt", ["text", "json", "dot"])
def test_function_dump_of_the_input_stage(fmt):
    g, loss, gW, _ = build()
    with g.as_default():
        x = g.tensor("x")
        f = gc.function([x], loss)
    text = f.dump(stage="input", format=fmt)
    assert text == gc.dump(loss, format=fmt)
    assert "net/dense/act" in text
    with pytest.raises(gc.GraphcError, match="unknown dump format 'png'"):
        f.dump(stage="input", format="png")


class FakePartition:
    """Stands in for the fusion pass's kernel groups: dumps only read its summary."""

    def summary(self):
        return "kernel 0: net/dense/matmul\nkernel 1: net/dense/act, net/sq"


def test_a_partition_adds_its_kernel_summary_to_every_format():
    g, loss, _, _ = build()
    lines = FakePartition().summary().splitlines()
    text = dump_graph(g, [loss], "text", partition=FakePartition())
    assert text.splitlines()[-3:] == ["# kernels:"] + [f"#   {line}" for line in lines]
    assert json.loads(dump_graph(g, [loss], "json", FakePartition()))["kernels"] == lines
    dot = dump_graph(g, [loss], "dot", FakePartition())
    assert dot.splitlines()[:3] == ["// kernels:"] + [f"// {line}" for line in lines]
    parse_dot(dot)
    assert dump_kernels(FakePartition()) == "\n".join(lines)
    assert json.loads(dump_kernels(FakePartition(), "json")) == {
        "format": "graphc-kernels", "version": 1, "kernels": lines}
    with pytest.raises(gc.GraphcError, match="unknown kernel dump format 'dot'"):
        dump_kernels(FakePartition(), "dot")
    with pytest.raises(gc.GraphcError, match="fusion did not run"):
        dump_kernels(None)


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
    without_ids = re.compile(r"^%\d+ ", re.M)
    assert without_ids.sub("", text.stdout.rstrip("\n")) == without_ids.sub("", gc.dump([loss, gW]))
    doc = json.loads(cli("dump", path, "--format", "json", "--stage", "input").stdout)
    assert [n["name"] for n in doc["nodes"]] == [n.name for n in closure([loss, gW])]
    parsed, clusters = parse_dot(cli("dump", path, "--format", "dot").stdout)
    assert parsed.number_of_nodes() == len(closure([loss, gW]))
    assert "net/dense" in clusters.values()


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
