"""Variable checkpoints: one zip file holding a versioned manifest and one .npy per variable.

Layout (format "graphc-checkpoint", version 1):
  manifest.json   {"format", "version", "variables": {name: {"dtype", "shape", "sha256"}},
                   "random": {random node name: its numpy bit generator's state}}
  <index>.npy     the value of the index-th variable in the manifest, read with allow_pickle=False
Every array is checked against its digest, so a corrupt or tampered file is refused whole.
"random" (absent in files written before it existed) holds the session's random streams, so
that draws after a restore continue those the saved session would have made.
"""
import hashlib
import io
import json
import zipfile

import numpy as np

from graphc.errors import CheckpointError, DTypeError, FileNotFoundError_
from graphc.io.atomic import write_atomic
from graphc.ir import dtypes

FORMAT = "graphc-checkpoint"
VERSION = 1


def _digest(arr):
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()


def write(path, values, random_streams=None):
    """Write {name: array} (and {random node name: generator state}) to `path` atomically;
    returns the path."""
    entries = {}
    for i, (name, arr) in enumerate(values.items()):
        entries[name] = {"file": f"{i}.npy", "dtype": str(arr.dtype),
                         "shape": list(arr.shape), "sha256": _digest(arr)}
    manifest = {"format": FORMAT, "version": VERSION, "variables": entries}
    if random_streams:
        manifest["random"] = random_streams

    def dump(f):
        with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as z:
            z.writestr("manifest.json", json.dumps(manifest, indent=1))
            for name, arr in values.items():
                buf = io.BytesIO()
                np.save(buf, np.array(arr, order="C"), allow_pickle=False)
                z.writestr(entries[name]["file"], buf.getvalue())

    return write_atomic(path, dump)


def read(path, expected):
    """{name: array} from `path`, checked against expected {name: (dtype, shape)}.

    Raises CheckpointError listing every difference; returns only when all entries are good.
    """
    return read_all(path, expected)[0]


def read_all(path, expected):
    """({name: array}, {random node name: generator state}) from `path`, as read() checks."""
    try:
        with zipfile.ZipFile(path) as z:
            manifest = json.loads(z.read("manifest.json"))
            if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
                raise CheckpointError(f"{path}: not a graphc checkpoint of version {VERSION} "
                                      f"(format {manifest.get('format')!r}, version "
                                      f"{manifest.get('version')!r})")
            entries = manifest["variables"]
            problems = _compare(entries, expected)
            if problems:
                raise CheckpointError(f"{path} does not match the graph's variables:\n  "
                                      + "\n  ".join(problems))
            values = {}
            for name, entry in entries.items():
                arr = np.load(io.BytesIO(z.read(entry["file"])), allow_pickle=False)
                if _digest(arr) != entry["sha256"] or list(arr.shape) != entry["shape"]:
                    raise CheckpointError(f"{path}: the value of '{name}' is corrupt (its digest "
                                          "does not match the manifest)")
                values[name] = arr
            streams = manifest.get("random", {})
            if not isinstance(streams, dict) or not all(
                    isinstance(k, str) and isinstance(v, dict) for k, v in streams.items()):
                raise CheckpointError(f"{path}: its random streams are not a table of "
                                      "generator states")
            return values, streams
    except CheckpointError:
        raise
    except FileNotFoundError:
        raise FileNotFoundError_(f"no checkpoint at {path}", path) from None
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError, TypeError,
            AttributeError, DTypeError) as err:
        # a manifest of the wrong JSON shape fails in any of these ways
        raise CheckpointError(f"{path} is corrupt or truncated: {err!r}") from None


def _compare(entries, expected):
    problems = []
    for name in expected:
        if name not in entries:
            problems.append(f"missing: '{name}' is in the graph but not in the file")
    for name, entry in entries.items():
        if name not in expected:
            problems.append(f"extra: '{name}' is in the file but not in the graph")
            continue
        dtype, shape = expected[name]
        if tuple(entry["shape"]) != tuple(shape):
            problems.append(f"shape: '{name}' is {tuple(entry['shape'])} in the file, "
                            f"{tuple(shape)} in the graph")
        if dtypes.as_dtype(entry["dtype"]).np != dtype.np:
            problems.append(f"dtype: '{name}' is {entry['dtype']} in the file, {dtype.name} in "
                            "the graph")
    return problems
