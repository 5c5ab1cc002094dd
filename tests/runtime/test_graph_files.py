"""gc.save / gc.load: round trips in a new session, and refusal of every kind of bad file."""
import io
import json
import math
import os
import sys
import zipfile

import numpy as np
import pytest

import graphc as gc
from graphc.io import graph_json
from graphc.ir.graph import FrozenArray
from graphc.ops.elementwise import fill_like
from graphc.ops.state import random_uniform_like
from graphc.runtime import graph_files

rng = np.random.default_rng()


def build_mlp(n_in=5, n_hidden=7, n_out=3):
    """An MLP step with placeholders, variables (array- and tensor-initialized), constants, a
    gradient, a seeded random op on a symbolic shape and name scopes."""
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, n_in), name="x")
        y = gc.placeholder(gc.float32, (None, n_out), name="y")
        W1 = gc.Variable(rng.standard_normal((n_in, n_hidden)).astype("float32"), name="W1")
        b1 = gc.Variable(np.zeros(n_hidden, "float32"), name="b1")
        W2 = gc.Variable(gc.random.normal((n_hidden, n_out), stddev=0.5, seed=11), name="W2")
        with gc.name_scope("layer1"):
            h = gc.tanh(x @ W1 + b1)
            keep = gc.cast(random_uniform_like(h, seed=3) < 0.8, gc.float32)
            h = h * keep / 0.8
        with gc.name_scope("layer2"):
            out = h @ W2
        loss = gc.mean(gc.square(out - y)) + 0.01 * gc.sum(gc.square(W1))
        grads = gc.grad(loss, [W1, b1, W2])
        train = gc.group(*[gc.assign_sub(v, 0.1 * gv) for v, gv in zip([W1, b1, W2], grads)])
    return g, dict(x=x, y=y, W1=W1, b1=b1, W2=W2, keep=keep, loss=loss, grads=grads,
                   train=train)


def feeds(n, n_in=5, n_out=3):
    return (rng.standard_normal((n, n_in)).astype("float32"),
            rng.standard_normal((n, n_out)).astype("float32"))


def test_mlp_round_trip_gives_the_same_values_in_a_new_session(tmp_path):
    g, m = build_mlp()
    sess = gc.Session(g)
    # a value that differs from the initial one: the session's value is what gets saved
    sess.set_value(m["b1"], rng.standard_normal(7).astype("float32"))
    xb, yb = feeds(7)
    fetches = {"loss": m["loss"], "grads": m["grads"], "keep": m["keep"], "train": m["train"]}
    expected = sess.run({k: v for k, v in fetches.items() if k != "train"},
                        {m["x"]: xb, m["y"]: yb})
    saved_values = {name: sess.get_value(m[name]) for name in ("W1", "b1", "W2")}
    path = gc.save(tmp_path / "mlp.gcg", fetches, session=sess)

    loaded = gc.load(path)
    assert set(loaded.placeholders) == {"x", "y"}
    assert set(loaded.variables) == {"W1", "b1", "W2"}
    new = gc.Session(loaded.graph)
    for name, value in saved_values.items():
        np.testing.assert_array_equal(new.get_value(loaded.variables[name]), value)
    feed = {loaded.placeholders["x"]: xb, loaded.placeholders["y"]: yb}
    got = new.run({k: v for k, v in loaded.fetches.items() if k != "train"}, feed)
    np.testing.assert_allclose(got["loss"], expected["loss"], rtol=1e-6)
    for a, b in zip(got["grads"], expected["grads"]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(got["keep"], expected["keep"])  # same seeded draw
    assert got["keep"].min() == 0  # the draw really masks something at this size (p=0.2)

    # one training step in each session moves the variables the same way
    sess.run(m["train"], {m["x"]: xb, m["y"]: yb})
    assert new.run(loaded.fetches["train"], feed) is None
    for name in ("W1", "b1", "W2"):
        np.testing.assert_allclose(new.get_value(loaded.variables[name]),
                                   sess.get_value(m[name]), rtol=1e-5, atol=1e-7)


def test_cnn_with_string_attrs_multi_output_nodes_and_indexing_round_trips(tmp_path):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 7, 7, 1), name="x")
        y = gc.placeholder(gc.int32, (None,), name="y")
        F = gc.Variable(rng.standard_normal((3, 3, 1, 4)).astype("float32"), name="F")
        h = gc.relu(gc.nn.conv2d(x, F, padding="SAME"))  # a str attr
        h = gc.nn.max_pool2d(h, 2, 2, padding="SAME")[:, 1:, ::2, :]  # (N, 3, 2, 4)
        left, right = gc.split(gc.reshape(h, (-1, 24)), 2, axis=1)  # two outputs of one node
        h = gc.pad(gc.concat([right, left], axis=1), [(0, 0), (1, 0)])
        W = gc.Variable(rng.standard_normal((25, 5)).astype("float32"), name="W")
        logits = gc.nn.dropout(h @ W, 0.25, seed=4)
        loss = (gc.mean(gc.nn.sparse_softmax_cross_entropy(logits, y))
                + 0.1 * gc.sum(gc.gather(W, gc.constant([0, 3, 3]), axis=0) * gc.one_hot(y[:1], 5)))
        fetches = [loss] + gc.grad(loss, [F, W])
    xb = rng.standard_normal((3, 7, 7, 1)).astype("float32")
    yb = rng.integers(0, 5, 3).astype("int32")
    want = gc.Session(g).run(fetches, {x: xb, y: yb})
    loaded = gc.load(gc.save(tmp_path / "cnn.gcg", fetches, session=gc.Session(g)))
    got = gc.Session(loaded.graph).run(loaded.fetches, {"x": xb, "y": yb})
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    conv = next(n for n in loaded.graph.nodes if n.op == "conv2d")
    assert conv.attrs["padding"] == g.node_by_name(conv.name).attrs["padding"]
    assert isinstance(conv.attrs["padding"], str)
    assert any(n.op == "split" and len(n.outputs) == 2 for n in loaded.graph.nodes)


def test_loaded_graph_keeps_names_scopes_types_sources_and_shared_dims(tmp_path):
    g, m = build_mlp()
    path = gc.save(tmp_path / "mlp.gcg", m["loss"], session=gc.Session(g))
    loaded = gc.load(path)
    original = {n.name: n for n in g.nodes}
    for node in loaded.graph.nodes:
        before = original[node.name]
        assert node.op == before.op and node.source == before.source
        assert [str(t.type) for t in node.outputs] == [str(t.type) for t in before.outputs]
    assert loaded["layer2/matmul"].op == "matmul"
    # the batch dim is one symbol throughout, as in the original graph
    batch = loaded.placeholders["x"].shape[0]
    assert isinstance(batch, gc.Dim)
    assert loaded["layer1/tanh"].shape[0] is batch
    assert loaded["layer2/matmul"].shape == (batch, 3)
    assert loaded.placeholders["y"].shape[0] is not batch  # y's own symbol stays apart
    # stateful nodes get fresh identities, so the new graph never merges them with others
    uids = [n.attrs["uid"] for n in loaded.graph.nodes if "uid" in n.attrs]
    assert len(set(uids)) == len(uids)
    assert not set(uids) & {n.attrs["uid"] for n in g.nodes if "uid" in n.attrs}


def test_dims_that_inference_makes_are_matched_to_the_saved_ones(tmp_path):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 3), name="x")
        rows = x[1:]  # a new symbol for the batch dim minus one
        flat = gc.reshape(rows * rows, (-1,), name="flat")  # and another one
        out = gc.add(flat, flat, name="out")
    path = gc.save(tmp_path / "d.gcg", out, session=gc.Session(g))
    loaded = gc.load(path)
    for node in loaded.graph.nodes:
        assert str(node.outputs[0].type) == str(g.node_by_name(node.name).outputs[0].type)
    assert loaded["out"].shape[0] is loaded["flat"].shape[0]
    assert loaded["flat"].shape[0] is not loaded.placeholders["x"].shape[0]
    xb = rng.standard_normal((7, 3)).astype("float32")
    np.testing.assert_array_equal(gc.Session(loaded.graph).run(loaded.fetches, {"x": xb}),
                                  2 * (xb[1:] * xb[1:]).reshape(-1))

    def claim_the_batch_dim(header):  # say the reshape keeps x's batch dim: it does not
        node_named(header, "flat")["outputs"][0]["shape"] = [{"dim": 0}]

    rewrite(path, claim_the_batch_dim)
    refused(path, r"'flat'.*stored shape \[\{'dim': 0\}\] but the op infers \[d\d+\]")


@pytest.mark.parametrize("structure", ["tensor", "list", "tuple", "dict", "nested"])
def test_fetch_structures_are_preserved(tmp_path, structure):
    g = gc.Graph()
    with g.as_default():
        a = gc.placeholder(gc.float64, (1, None), name="a")
        s = gc.sum(a, name="s")
        e = gc.exp(a, name="e")
    fetches = {"tensor": s, "list": [s, e], "tuple": (e, s), "dict": {"sum": s, "exp": e},
               "nested": {"outer": [(s,), {"inner": e}]}}[structure]
    loaded = gc.load(gc.save(tmp_path / "f.gcg", fetches, session=gc.Session(g)))
    av = rng.standard_normal((1, 1))
    got = gc.Session(loaded.graph).run(loaded.fetches, {"a": av})
    want = gc.Session(g).run(fetches, {a: av})
    assert type(got) is type(want)
    assert repr(type_tree(got)) == repr(type_tree(want))
    for x, y in zip(flat(got), flat(want)):
        np.testing.assert_allclose(x, y, rtol=1e-12)


def type_tree(value):
    if isinstance(value, dict):
        return {k: type_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(type_tree(v) for v in value)
    return "array"


def flat(value):
    if isinstance(value, dict):
        return [x for v in value.values() for x in flat(v)]
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in flat(v)]
    return [value]


def test_special_floats_and_dtypes_round_trip(tmp_path):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None,), name="x")
        special = gc.constant(np.array([np.nan, np.inf, -np.inf, -0.0], "float32"), name="c")
        filled = fill_like(x, float("nan"))
        as_int = gc.cast(x, gc.int64)
        fetches = [special, filled, as_int, gc.constant(np.array([True, False]))]
    loaded = gc.load(gc.save(tmp_path / "s.gcg", fetches, session=gc.Session(g)))
    assert math.isnan(loaded.fetches[1].node.attrs["value"])
    assert loaded.fetches[2].dtype is gc.int64
    got = gc.Session(loaded.graph).run(loaded.fetches, {"x": np.array([1.5, -2.0], "float32")})
    np.testing.assert_array_equal(got[0], np.array([np.nan, np.inf, -np.inf, -0.0], "float32"))
    assert np.signbit(got[0][3])
    assert np.isnan(got[1]).all() and got[1].shape == (2,)
    np.testing.assert_array_equal(got[2], [1, -2])
    assert got[3].dtype == np.bool_ and got[3].tolist() == [True, False]


def test_the_file_holds_json_and_npy_only(tmp_path):
    g, m = build_mlp()
    path = gc.save(tmp_path / "m.gcg", m["loss"], session=gc.Session(g))
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        header = json.loads(z.read("graph.json"))
    assert names[0] == "graph.json"
    assert all(n.startswith("arrays/") and n.endswith(".npy") for n in names[1:])
    assert (header["format"], header["version"]) == ("graphc-graph-file", 1)
    doc = header["graph"]
    assert (doc["format"], doc["version"]) == ("graphc-graph", 1)
    assert len(names) - 1 == len(doc["arrays"])
    assert all(len(a["sha256"]) == 64 for a in doc["arrays"])


def test_saving_checks_its_arguments(tmp_path):
    g1, m1 = build_mlp()
    g2, m2 = build_mlp()
    with pytest.raises(gc.GraphMismatchError, match="another graph"):
        gc.save(tmp_path / "x.gcg", [m1["loss"], m2["loss"]])
    with pytest.raises(gc.GraphMismatchError, match="session runs another graph"):
        gc.save(tmp_path / "x.gcg", m1["loss"], session=gc.Session(g2))
    with pytest.raises(gc.GraphcError, match="dict keys must be strings"):
        gc.save(tmp_path / "x.gcg", {1: m1["loss"]}, session=gc.Session(g1))
    with pytest.raises(gc.GraphcError, match="at least one tensor"):
        gc.save(tmp_path / "x.gcg", [])
    assert not os.listdir(tmp_path)


def test_unknown_tensor_name_is_a_graphc_error(tmp_path):
    g, m = build_mlp()
    loaded = gc.load(gc.save(tmp_path / "m.gcg", m["loss"], session=gc.Session(g)))
    for name in ("nope", "x:7", "x:z"):
        with pytest.raises(gc.GraphcError, match="no tensor named"):
            loaded[name]


# ---- bad files ----------------------------------------------------------------------------
@pytest.fixture
def saved(tmp_path):
    g, m = build_mlp()
    sess = gc.Session(g)
    return gc.save(tmp_path / "m.gcg", [m["loss"], m["train"]], session=sess), sess, m


def rewrite(path, edit=None, arrays=None):
    """Rewrite the zip at `path` with graph.json passed through edit(header) and some
    arrays replaced ({index: ndarray or raw bytes}); the file stays a valid zip."""
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    header = json.loads(members["graph.json"])
    if edit is not None:
        edit(header)
    members["graph.json"] = json.dumps(header).encode()
    for index, value in (arrays or {}).items():
        if isinstance(value, np.ndarray):
            buf = io.BytesIO()
            np.save(buf, value, allow_pickle=True)
            value = buf.getvalue()
        members[f"arrays/{index}.npy"] = value
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)


def nodes(header):
    return header["graph"]["nodes"]


def node_named(header, name):
    return next(n for n in nodes(header) if n["name"] == name)


def index_of(header, name):
    return next(i for i, n in enumerate(nodes(header)) if n["name"] == name)


def refused(path, match):
    with pytest.raises(gc.CheckpointError, match=match) as info:
        gc.load(path)
    assert str(path) in str(info.value)
    return info.value


@pytest.mark.parametrize("keep", [0, 1, 30, 0.5, 0.9, -1])
def test_truncated_file_is_refused(saved, keep):
    path, _, _ = saved
    data = open(path, "rb").read()
    cut = keep if isinstance(keep, int) and keep >= 0 else (
        len(data) - 1 if keep == -1 else int(len(data) * keep))
    with open(path, "wb") as f:
        f.write(data[:cut])
    refused(path, "corrupt or truncated")


def test_missing_file_is_refused(tmp_path):
    refused(tmp_path / "none.gcg", "no graph file")


def test_flipped_byte_in_an_array_is_refused(saved):
    path, sess, m = saved
    data = bytearray(open(path, "rb").read())
    at = data.find(sess.get_value(m["W1"]).tobytes())
    assert at > 0
    data[at + 5] ^= 0x40
    open(path, "wb").write(bytes(data))
    refused(path, "corrupt")


def test_array_changed_inside_a_valid_zip_fails_its_digest(saved):
    path, sess, m = saved
    w1 = sess.get_value(m["W1"])
    w1[0, 0] += 1
    header = json.loads(zipfile.ZipFile(path).read("graph.json"))
    index = node_named(header, "W1")["attrs"]["init"]["array"]
    rewrite(path, arrays={index: w1})
    refused(path, f"array {index} is corrupt: its dtype, shape or sha256 does not match")


def test_a_pickled_array_is_never_unpickled(saved):
    path, _, _ = saved
    rewrite(path, arrays={0: np.array([print, os.system], dtype=object)})
    refused(path, "corrupt or truncated: .*allow_pickle")


def test_a_well_digested_value_of_the_wrong_shape_is_refused(saved):
    path, _, _ = saved
    bad = np.zeros((2, 2), "float32")
    index = len(json.loads(zipfile.ZipFile(path).read("graph.json"))["graph"]["arrays"])

    def edit(header):
        header["graph"]["arrays"].append({"dtype": bad.dtype.str, "shape": [2, 2],
                                          "sha256": FrozenArray(bad).digest})
        node_named(header, "b1")["attrs"]["init"] = {"array": index}

    rewrite(path, edit, arrays={index: bad})
    refused(path, r"'b1'.*saved value does not fit the variable's type float32\[7\]")


def test_unknown_op_is_refused(saved):
    path, _, _ = saved
    rewrite(path, lambda h: node_named(h, "layer1/tanh").update(op="os.system"))
    refused(path, r"node \d+ \('layer1/tanh', op 'os.system'\): unknown op 'os.system'")


def test_unknown_attr_tag_is_refused(saved):
    path, _, _ = saved
    rewrite(path, lambda h: node_named(h, "x")["attrs"].update(
        dtype={"__class__": "os.system"}))
    refused(path, "unknown attr tag '__class__'; known tags are int, float")


def test_loading_never_imports_anything(saved):
    path, _, _ = saved
    gc.load(path)  # anything loading needs is imported by now
    module = "smtplib"
    assert module not in sys.modules

    def edit(h):
        node_named(h, "x")["attrs"]["dtype"] = {"__module__": module, "__class__": "SMTP"}
        node_named(h, "layer1/tanh")["op"] = f"{module}.SMTP"

    for change in (edit, lambda h: node_named(h, "layer1/tanh").update(op=module)):
        rewrite(path, change)
        before = set(sys.modules)
        with pytest.raises(gc.CheckpointError):
            gc.load(path)
        assert set(sys.modules) == before


@pytest.mark.parametrize("edit, match", [
    (lambda h: nodes(h)[0].update(inputs=[[3, 0]]), r"node 0 .*refer to earlier nodes only"),
    (lambda h: nodes(h)[5].update(inputs=[[5, 0]]), r"node 5 .*refer to earlier nodes only"),
    (lambda h: node_named(h, "layer1/tanh")["inputs"][0].__setitem__(1, 4),
     "the output index is 4, outside 0..0"),
    (lambda h: node_named(h, "layer1/tanh").update(inputs="x"), "'inputs' should be a list"),
    (lambda h: node_named(h, "layer1/add")["inputs"][1].__setitem__(0, index_of(h, "W2")),
     r"the op refuses its stored inputs and attrs: cannot add shapes \(None, 7\) and \(7, 3\)"),
    (lambda h: node_named(h, "layer1/tanh").update(inputs=[]),
     "stored inputs or attrs do not fit the op: .*missing 1 required positional argument"),
    (lambda h: node_named(h, "x")["attrs"]["shape"]["tuple"].append({"int": "3"}),
     "an int value should be an int, got str '3'"),
    (lambda h: node_named(h, "x")["attrs"].update(dtype={"dtype": "complex64"}),
     "unknown dtype 'complex64'"),
    (lambda h: node_named(h, "x")["attrs"].update(dtype={"int": 1, "str": "a"}),
     "should have one tag"),
    (lambda h: node_named(h, "x")["attrs"]["shape"]["tuple"].__setitem__(0, {"dim": 9}),
     "a dim index is 9"),
    (lambda h: node_named(h, "x")["outputs"][0].update(dtype="float64"),
     r"stored type float64.* but the op infers float32"),
    (lambda h: node_named(h, "layer2/matmul")["outputs"][0]["shape"].__setitem__(1, 4),
     r"stored shape .* but the op infers"),
    (lambda h: node_named(h, "layer2/matmul")["attrs"].update(extra={"int": 1}),
     "stored inputs or attrs do not fit the op: .*unexpected keyword argument 'extra'"),
    (lambda h: node_named(h, "x")["attrs"].update(uid={"float": "one"}),
     "float value 'one' should be"),
    (lambda h: h["graph"].update(version=2), "not a graph of format 'graphc-graph' version 1"),
    (lambda h: h.update(version=99), "not a graphc graph file of version 1"),
    (lambda h: h["graph"].update(outputs=[[0, 0], [1000, 0]]), r"output 1: the node index"),
    (lambda h: h.update(fetches={"tensor": 7}), "fetch 7 is not one of the 2 outputs"),
    (lambda h: h.update(fetches={"set": []}), "unknown fetch structure 'set'"),
    (lambda h: h.update(graph=[]), "the graph should be a dict, got list"),
])
def test_malformed_json_is_refused_with_a_clear_message(saved, edit, match):
    path, _, _ = saved
    rewrite(path, edit)
    refused(path, match)


def test_not_json_is_refused(saved):
    path, _, _ = saved
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("graph.json", b"\xff{not json")
    refused(path, "corrupt or truncated")


# ---- atomic writes ------------------------------------------------------------------------
def test_a_failed_save_leaves_the_old_file_and_no_temp_file(saved, monkeypatch):
    path, sess, m = saved
    before = open(path, "rb").read()
    calls = []

    def failing(arr):
        calls.append(arr)
        if len(calls) == 2:
            raise OSError("disk full")
        return b"partial"

    monkeypatch.setattr(graph_files, "npy_bytes", failing)
    sess.set_value(m["W1"], np.zeros((5, 7), "float32"))
    with pytest.raises(OSError, match="disk full"):
        gc.save(path, [m["loss"], m["train"]], session=sess)
    assert len(calls) == 2  # it failed midway, after writing part of the new file
    assert open(path, "rb").read() == before
    assert os.listdir(os.path.dirname(path)) == [os.path.basename(path)]
    monkeypatch.undo()
    gc.load(path)


def test_atomic_files_get_the_mode_open_would_give(tmp_path):
    from graphc.io.atomic import write_text
    old = os.umask(0o022)
    try:
        write_text(tmp_path / "a.txt", "x")
        open(tmp_path / "b.txt", "w").close()
    finally:
        os.umask(old)
    mode = lambda name: os.stat(tmp_path / name).st_mode & 0o777
    assert mode("a.txt") == mode("b.txt") == 0o644
    assert (tmp_path / "a.txt").read_text() == "x"


def test_graph_json_is_core_and_never_imports_the_runtime():
    import ast
    tree = ast.parse(open(graph_json.__file__).read())
    imported = [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    imported += [a.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for a in node.names]
    assert not [name for name in imported if "runtime" in name or "frontend" in name]
