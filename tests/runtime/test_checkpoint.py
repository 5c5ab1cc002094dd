"""Variable checkpoints through sess.save / sess.restore (runtime/checkpoint.py)."""
import io
import json
import os
import zipfile

import numpy as np
import pytest

import graphc as gc
from graphc.runtime import checkpoint

rng = np.random.default_rng()

# name: (dtype, shape); odd sizes and a 0-d and a size-1 variable among them
SPEC = {"W": ("float32", (7, 3)), "b": ("float32", (1,)), "scale": ("float64", ()),
        "steps": ("int32", (5,)), "mask": ("bool", (2, 3)), "h": ("float16", (3,))}


def random_value(dtype, shape):
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype.startswith("int"):
        return rng.integers(-1000, 1000, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def build(spec=SPEC):
    """A graph holding the spec's variables, and a session where they have random values."""
    g = gc.Graph()
    with g.as_default():
        variables = {name: gc.Variable(np.zeros(shape, dtype), name=name)
                     for name, (dtype, shape) in spec.items()}
    sess = gc.Session(g)
    for name, (dtype, shape) in spec.items():
        sess.set_value(variables[name], random_value(dtype, shape))
    return sess, variables


def values(sess, variables):
    return {name: sess.get_value(v) for name, v in variables.items()}


def assert_same(a, b):
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].dtype == b[name].dtype, name
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_round_trip_in_the_same_session(tmp_path):
    sess, variables = build()
    saved = values(sess, variables)
    assert sess.save(tmp_path / "ckpt") == str(tmp_path / "ckpt")
    for name, (dtype, shape) in SPEC.items():
        sess.set_value(variables[name], random_value(dtype, shape))
    sess.restore(tmp_path / "ckpt")
    assert_same(values(sess, variables), saved)


def test_restore_into_a_fresh_session_of_a_rebuilt_graph(tmp_path):
    sess, variables = build()
    saved = values(sess, variables)
    sess.save(tmp_path / "ckpt")
    fresh, fresh_vars = build()  # same names and types, other values, another graph
    fresh.restore(tmp_path / "ckpt")
    assert_same(values(fresh, fresh_vars), saved)
    # and the restored values are what runs see
    with fresh.graph.as_default():
        total = gc.sum(fresh_vars["W"] * fresh_vars["b"])
    products = saved["W"] * saved["b"]  # float32 sums in another order: bound by the terms
    np.testing.assert_allclose(fresh.run(total), np.sum(products),
                               rtol=1e-5, atol=1e-6 * np.sum(np.abs(products)))


def test_restore_into_a_new_session_of_the_same_graph(tmp_path):
    sess, variables = build()
    saved = values(sess, variables)
    sess.save(tmp_path / "ckpt")
    other = gc.Session(sess.graph)
    other.restore(tmp_path / "ckpt")
    assert_same(values(other, variables), saved)


def test_file_is_a_zip_of_a_manifest_and_npy_arrays(tmp_path):
    sess, variables = build()
    sess.save(tmp_path / "ckpt")
    with zipfile.ZipFile(tmp_path / "ckpt") as z:
        manifest = json.loads(z.read("manifest.json"))
        assert (manifest["format"], manifest["version"]) == ("graphc-checkpoint", 1)
        assert set(manifest["variables"]) == set(SPEC)
        for name, entry in manifest["variables"].items():
            arr = np.load(io.BytesIO(z.read(entry["file"])), allow_pickle=False)
            np.testing.assert_array_equal(arr, sess.get_value(variables[name]))


def test_every_difference_is_listed_in_one_error_and_nothing_changes(tmp_path):
    sess, _ = build({"W": ("float32", (7, 3)), "b": ("float32", (3,)),
                     "steps": ("int32", ()), "old": ("float32", (2,))})
    sess.save(tmp_path / "ckpt")
    # b has another shape, steps another dtype, "old" is gone and "new" has come
    other, other_vars = build({"W": ("float32", (7, 3)), "b": ("float32", (1, 3)),
                               "steps": ("float32", ()), "new": ("float64", (4,))})
    before = values(other, other_vars)
    with pytest.raises(gc.CheckpointError) as info:
        other.restore(tmp_path / "ckpt")
    message = str(info.value)
    assert "does not match the graph's variables" in message
    for line in ["missing: 'new' is in the graph but not in the file",
                 "extra: 'old' is in the file but not in the graph",
                 "shape: 'b' is (3,) in the file, (1, 3) in the graph",
                 "dtype: 'steps' is int32 in the file, float32 in the graph"]:
        assert line in message
    assert len(message.splitlines()) == 5
    assert "'W'" not in message
    assert_same(values(other, other_vars), before)  # W matched, but it was not restored either


@pytest.mark.parametrize("change, expected", [
    ({"b": ("float32", (3, 1))}, "shape: 'b' is (1,) in the file, (3, 1) in the graph"),
    ({"b": ("float64", (1,))}, "dtype: 'b' is float32 in the file, float64 in the graph"),
    ({"extra": ("float32", (1,))}, "missing: 'extra' is in the graph but not in the file"),
    ({"b": None}, "extra: 'b' is in the file but not in the graph"),
])
def test_each_kind_of_difference(tmp_path, change, expected):
    sess, _ = build()
    sess.save(tmp_path / "ckpt")
    spec = {**SPEC, **change}
    other, other_vars = build({k: v for k, v in spec.items() if v is not None})
    before = values(other, other_vars)
    with pytest.raises(gc.CheckpointError, match="does not match") as info:
        other.restore(tmp_path / "ckpt")
    assert expected in str(info.value)
    assert len(str(info.value).splitlines()) == 2
    assert_same(values(other, other_vars), before)


# ---- bad files ----------------------------------------------------------------------------
@pytest.fixture
def saved(tmp_path):
    sess, variables = build()
    path = tmp_path / "ckpt"
    sess.save(path)
    for name, (dtype, shape) in SPEC.items():  # values that a failed restore must keep
        sess.set_value(variables[name], random_value(dtype, shape))
    return path, sess, variables


def refused(sess, variables, path, match):
    """Restoring `path` raises CheckpointError (matching `match` unless None), changing nothing."""
    before = values(sess, variables)
    with pytest.raises(gc.CheckpointError, match=match):
        sess.restore(path)
    assert_same(values(sess, variables), before)


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5, 0.97])
def test_truncated_file(saved, fraction):
    path, sess, variables = saved
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * fraction)])
    refused(sess, variables, path, "corrupt or truncated")


def test_flipped_byte_in_an_array(saved):
    path, sess, variables = saved
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        entry = json.loads(z.read("manifest.json"))["variables"]["W"]
        raw = np.load(io.BytesIO(z.read(entry["file"]))).tobytes()
    at = data.find(raw)
    assert at > 0
    data[at + 11] ^= 0x01
    path.write_bytes(bytes(data))
    refused(sess, variables, path, "corrupt")


def rewrite(path, manifest=None, members=None):
    """Rewrite the checkpoint as a valid zip with some members replaced."""
    with zipfile.ZipFile(path) as z:
        contents = {n: z.read(n) for n in z.namelist()}
    if manifest is not None:
        contents["manifest.json"] = manifest.encode()
    contents.update(members or {})
    with zipfile.ZipFile(path, "w") as z:
        for name, data in contents.items():
            z.writestr(name, data)


def manifest_of(path):
    return json.loads(zipfile.ZipFile(path).read("manifest.json"))


def test_a_changed_value_inside_a_valid_zip_fails_its_digest(saved):
    path, sess, variables = saved
    entry = manifest_of(path)["variables"]["W"]
    value = np.load(io.BytesIO(zipfile.ZipFile(path).read(entry["file"])))
    value[3, 1] += 1
    buf = io.BytesIO()
    np.save(buf, value)
    rewrite(path, members={entry["file"]: buf.getvalue()})
    refused(sess, variables, path, "the value of 'W' is corrupt")


def test_a_pickled_value_is_never_unpickled(saved):
    path, sess, variables = saved
    entry = manifest_of(path)["variables"]["W"]
    buf = io.BytesIO()
    np.save(buf, np.array([os.system], dtype=object), allow_pickle=True)
    rewrite(path, members={entry["file"]: buf.getvalue()})
    refused(sess, variables, path, "allow_pickle")


def test_missing_file_and_other_formats(saved, tmp_path):
    path, sess, variables = saved
    refused(sess, variables, tmp_path / "nothing", "no checkpoint at")
    m = manifest_of(path)
    m["version"] = 2
    rewrite(path, json.dumps(m))
    refused(sess, variables, path, "not a graphc checkpoint of version 1")
    with sess.graph.as_default():
        graph_file = gc.save(tmp_path / "graph.gcg", sess.graph.variables[0], session=sess)
    refused(sess, variables, graph_file, "corrupt or truncated")


@pytest.mark.parametrize("manifest", [
    "[]",
    '{"format": "graphc-checkpoint", "version": 1, "variables": []}',
    '{"format": "graphc-checkpoint", "version": 1, "variables": {"W": {"file": "0.npy", '
    '"dtype": "float32", "shape": 3, "sha256": "0"}}}',
    '{"format": "graphc-checkpoint", "version": 1, "variables": {"W": {"file": "0.npy", '
    '"dtype": "complex64", "shape": [7, 3], "sha256": "0"}}}',
])
def test_malformed_manifest(saved, manifest):
    path, sess, variables = saved
    rewrite(path, manifest)
    refused(sess, variables, path, None)


def test_a_failed_save_leaves_the_old_checkpoint_and_no_temp_file(saved, monkeypatch):
    path, sess, variables = saved
    before = path.read_bytes()
    calls = []
    real_save = np.save

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full")
        return real_save(*args, **kwargs)

    monkeypatch.setattr(checkpoint.np, "save", failing)
    with pytest.raises(OSError, match="disk full"):
        sess.save(path)
    assert len(calls) == 3
    assert path.read_bytes() == before
    assert os.listdir(path.parent) == [path.name]
