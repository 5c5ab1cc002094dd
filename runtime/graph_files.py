"""gc.save / gc.load: a graph, the tensors it was saved for, and its variables' values in one file.

Layout (a zip file, format "graphc-graph-file", version 1):

  graph.json      {"format": "graphc-graph-file", "version": 1,
                   "fetches": structure, "graph": the graph (graphc/io/graph_json.py)}
  arrays/<i>.npy  the i-th entry of the graph's "arrays" table: constants and the variables'
                  values, read with allow_pickle=False and checked against its sha256

The fetch structure mirrors what was saved: {"tensor": i} is the graph's i-th output,
{"list": [...]}, {"tuple": [...]} and {"dict": [[key, structure], ...]} nest them.
A file is written atomically, so a failed save leaves the previous file as it was; loading
refuses a truncated, corrupt or tampered file with a CheckpointError and runs nothing from it.
"""
import io
import json
import zipfile

import numpy as np

from graphc.errors import CheckpointError, FileNotFoundError_, GraphcError, GraphMismatchError
from graphc.io import graph_json
from graphc.io.atomic import write_atomic

from .fetches import flatten_fetches, rebuild_fetches
from .session import get_default_session

FORMAT = "graphc-graph-file"
VERSION = 1
GRAPH_MEMBER = "graph.json"


def array_member(index):
    return f"arrays/{index}.npy"


# ---- saving -----------------------------------------------------------------------------------
def save(path, fetches, session=None):
    """Write the graph behind `fetches` (a tensor, or a list/tuple/dict of them) to `path`.

    Variables are saved with their values in `session` (default: the graph's default session).
    Returns the path.
    """
    flat, plan = flatten_fetches(fetches)
    if not flat:
        raise GraphcError("gc.save needs at least one tensor to save")
    graph = flat[0].graph
    for t in flat:
        if t.graph is not graph:
            raise GraphMismatchError(f"gc.save: tensor '{t.name}' belongs to another graph than "
                                     f"'{flat[0].name}'", t.node)
    session = session if session is not None else get_default_session(graph)
    if session.graph is not graph:
        raise GraphMismatchError("gc.save: the session runs another graph than the tensors'")
    doc, arrays = graph_json.encode(flat, session.get_value)
    header = {"format": FORMAT, "version": VERSION, "fetches": _encode_plan(plan), "graph": doc}
    text = json.dumps(header, indent=1, allow_nan=False)

    def write(f):
        with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as z:
            z.writestr(GRAPH_MEMBER, text)
            for i, arr in enumerate(arrays):
                z.writestr(array_member(i), npy_bytes(arr))

    return write_atomic(path, write)


def npy_bytes(arr):
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def _encode_plan(plan):
    """flatten_fetches' plan as JSON: a flat index, or a list/tuple/dict of plans."""
    if isinstance(plan, int):
        return {"tensor": plan}
    kind, items = plan
    if kind is dict:
        for key in items:
            if not isinstance(key, str):
                raise GraphcError(f"gc.save: fetch dict keys must be strings, got {key!r}")
        return {"dict": [[k, _encode_plan(v)] for k, v in items.items()]}
    return {"list" if kind is list else "tuple": [_encode_plan(v) for v in items]}


# ---- loading ----------------------------------------------------------------------------------
class GraphFile:
    """What gc.load returns: the new graph, the saved fetches rebuilt in it, and its inputs."""

    def __init__(self, graph, fetches):
        self.graph = graph
        self.fetches = fetches
        self.placeholders = {n.name: n.outputs[0] for n in graph.nodes if n.op == "placeholder"}
        self.variables = {v.name: v for v in graph.variables}

    @property
    def tensors(self):
        """The saved fetches as a flat list."""
        return flatten_fetches(self.fetches)[0]

    def __getitem__(self, name):
        """The tensor called `name` ('node' or 'node:index') in the loaded graph."""
        try:
            return self.graph.tensor(name)
        except (KeyError, IndexError, ValueError):
            raise GraphcError(f"the loaded graph has no tensor named {name!r}") from None

    def __repr__(self):
        return (f"<GraphFile {len(self.graph)} nodes, placeholders {list(self.placeholders)}, "
                f"variables {list(self.variables)}>")


def load(path):
    """The graph saved at `path` by gc.save, rebuilt in a new Graph (see GraphFile)."""
    try:
        with zipfile.ZipFile(path) as z:
            header = json.loads(z.read(GRAPH_MEMBER))
            if not isinstance(header, dict) or (header.get("format"), header.get("version")) \
                    != (FORMAT, VERSION):
                raise CheckpointError(f"not a graphc graph file of version {VERSION}")
            graph, outputs = graph_json.decode(header.get("graph"),
                                               lambda i: _read_array(z, i))
            fetches = rebuild_fetches(_decode_plan(header.get("fetches"), len(outputs)),
                                      outputs)
    except CheckpointError as err:
        raise CheckpointError(f"{path}: {err.detail}") from None
    except FileNotFoundError:
        raise FileNotFoundError_(f"no graph file at {path}", path) from None
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError, NotImplementedError,
            RecursionError) as err:
        raise CheckpointError(f"{path} is corrupt or truncated: {err}") from None
    return GraphFile(graph, fetches)


def _read_array(z, index):
    arr = np.load(io.BytesIO(z.read(array_member(index))), allow_pickle=False)
    if not isinstance(arr, np.ndarray):
        raise CheckpointError(f"{array_member(index)} is not a .npy array")
    return arr


_PLAN_KINDS = {"list": list, "tuple": tuple}


def _decode_plan(raw, n_outputs):
    if not isinstance(raw, dict) or len(raw) != 1:
        raise CheckpointError(f"the fetch structure should be a one-key object, got {raw!r:.60}")
    (kind, value), = raw.items()
    if kind == "tensor":
        if not isinstance(value, int) or isinstance(value, bool) \
                or not 0 <= value < n_outputs:
            raise CheckpointError(f"fetch {value!r:.20} is not one of the {n_outputs} outputs")
        return value
    if kind == "dict" and isinstance(value, list) and all(
            isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) for p in value):
        return dict, {k: _decode_plan(v, n_outputs) for k, v in value}
    if kind in _PLAN_KINDS and isinstance(value, list):
        return _PLAN_KINDS[kind], [_decode_plan(v, n_outputs) for v in value]
    raise CheckpointError(f"unknown fetch structure {kind!r:.40} (expected tensor, list, tuple "
                          "or dict)")
