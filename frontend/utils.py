"""gk.utils: seeding, one-hot labels, plot_model, padding, windows and splits of arrays,
PyDataset, Config, and the custom-object registry names Keras also keeps here."""
import os
import shutil
import subprocess

import numpy as np

from graphc.errors import GraphcError

from .backend import set_random_seed  # noqa: F401  (public here, as in Keras)
from .models.data import PyDataset

Sequence = PyDataset  # Keras's older name


def to_categorical(y, num_classes=None):
    """Integer labels -> one-hot float32 rows."""
    y = np.asarray(y, dtype=np.int64).reshape(-1)
    num_classes = int(y.max()) + 1 if num_classes is None else num_classes
    out = np.zeros((len(y), num_classes), np.float32)
    out[np.arange(len(y)), y] = 1
    return out


def model_to_dot(model, show_shapes=True):
    """The model's layers and their connections as Graphviz DOT text."""
    from .layers.base import flatten, static_shape
    model._require_built("plot_model")
    lines = [f'digraph "{model.name}" {{', "  rankdir=TB;",
             '  node [shape=record, fontname="Helvetica", fontsize=10];']
    ids = {}

    def node(key, label):
        ids[key] = f"n{len(ids)}"
        lines.append(f'  {ids[key]} [label="{label}"];')

    def shape_text(shape):
        return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"

    for t in model.inputs:
        node(t, f"{t.name}|InputLayer" + (f"|{shape_text(static_shape(t))}"
                                           if show_shapes else ""))
    records = model._records
    if records is None:  # Sequential and subclassed: the layers in order
        prev = model.inputs[0] if len(model.inputs) == 1 else None
        for layer in model.layers:
            node(layer, _layer_label(layer, show_shapes))
            if prev is not None:
                lines.append(f"  {ids[prev]} -> {ids[layer]};")
            prev = layer
    else:
        produced = {}
        for rec in records:
            if rec.layer not in ids:
                node(rec.layer, _layer_label(rec.layer, show_shapes))
            for t in flatten(rec.inputs):
                src = produced.get(t, t)
                lines.append(f"  {ids[src]} -> {ids[rec.layer]};")
            produced.update((t, rec.layer) for t in flatten(rec.outputs))
    lines.append("}")
    return "\n".join(lines) + "\n"


def _layer_label(layer, show_shapes):
    label = f"{layer.name}|{type(layer).__name__}"
    if show_shapes and layer.output_shape is not None:
        shapes = layer.output_shape if isinstance(layer.output_shape, list) else \
            [layer.output_shape]
        label += "|" + ", ".join("(" + ", ".join("None" if d is None else str(d) for d in s)
                                 + ")" for s in shapes)
    return label


def plot_model(model, to_file="model.png", show_shapes=True):
    """Draw the model's layer graph. A .dot path gets the DOT text; a .svg or .png path gets
    the DOT text next to it (same name, .dot) and the picture rendered by Graphviz's `dot`,
    or a GraphcError saying how to get `dot` when it is not installed. Returns the path."""
    to_file = os.fspath(to_file)
    base, ext = os.path.splitext(to_file)
    fmt = ext.lstrip(".").lower()
    if fmt not in ("dot", "svg", "png"):
        raise GraphcError(f"plot_model writes .dot, .svg or .png files, got {to_file!r}")
    dot_path = to_file if fmt == "dot" else base + ".dot"
    with open(dot_path, "w") as f:
        f.write(model_to_dot(model, show_shapes))
    if fmt == "dot":
        return to_file
    exe = shutil.which("dot")
    if exe is None:
        raise GraphcError(f"Graphviz's `dot` program is not on PATH, so no {fmt.upper()} was "
                          f"made; the DOT text is in {dot_path}. Install Graphviz (e.g. apt "
                          "install graphviz, brew install graphviz) or ask for a .dot file")
    result = subprocess.run([exe, f"-T{fmt}", dot_path, "-o", to_file], capture_output=True,
                            text=True)
    if result.returncode != 0:
        raise GraphcError(f"Graphviz's dot failed on {dot_path}: {result.stderr.strip()}")
    return to_file


def pad_sequences(sequences, maxlen=None, dtype="int32", padding="pre", truncating="pre",
                  value=0.0):
    """Lists of sequences -> one (n, maxlen) array, as Keras's pad_sequences: shorter ones
    padded with `value` and longer ones cut, at the start ("pre") or the end ("post")."""
    if padding not in ("pre", "post") or truncating not in ("pre", "post"):
        raise ValueError(f"padding and truncating must be 'pre' or 'post', got {padding!r}, "
                         f"{truncating!r}")
    sequences = [np.asarray(s) for s in sequences]
    lengths = [len(s) for s in sequences]
    maxlen = max(lengths, default=0) if maxlen is None else int(maxlen)
    sample_shape = next((s.shape[1:] for s in sequences if len(s)), ())
    out = np.full((len(sequences), maxlen) + tuple(sample_shape), value, dtype=dtype)
    for i, s in enumerate(sequences):
        if not len(s) or not maxlen:
            continue
        trunc = s[-maxlen:] if truncating == "pre" else s[:maxlen]
        if padding == "post":
            out[i, :len(trunc)] = trunc
        else:
            out[i, -len(trunc):] = trunc
    return out


def normalize(x, axis=-1, order=2):
    """x (a numpy array) divided by its `order`-norm along axis (zero norms left as 1)."""
    x = np.asarray(x)
    norm = np.atleast_1d(np.linalg.norm(x, order, axis))
    norm[norm == 0] = 1
    return x / np.expand_dims(norm, axis)


def pack_x_y_sample_weight(x, y=None, sample_weight=None):
    """(x,), (x, y) or (x, y, sample_weight), as a dataset's batch holds them."""
    if y is None:
        return (x,)
    if sample_weight is None:
        return (x, y)
    return (x, y, sample_weight)


def unpack_x_y_sample_weight(data):
    """(x, y, sample_weight) from a batch (a tuple of 1 to 3, or x alone), None for what is
    missing."""
    if isinstance(data, list):
        data = tuple(data)
    if not isinstance(data, tuple):
        return (data, None, None)
    if not 1 <= len(data) <= 3:
        raise ValueError(f"a batch is (x,), (x, y) or (x, y, sample_weight), got a tuple of "
                         f"{len(data)}")
    return tuple(data) + (None,) * (3 - len(data))


def get_source_inputs(tensor):
    """The Input tensors that `tensor` is computed from, in the order they were made."""
    import graphc as gc
    from .layers.base import flatten
    found, stack, seen = [], list(flatten(tensor)), set()
    while stack:
        t = stack.pop()
        if id(t.node) in seen:
            continue
        seen.add(id(t.node))
        if t.node.op == "placeholder":
            found.append(t)
        stack.extend(v for v in t.node.inputs if isinstance(v, gc.Tensor))
    return sorted(found, key=lambda t: t.node.id)


class Config:
    """A dict whose keys are attributes too (cfg.lr == cfg["lr"]); freeze() forbids
    changes."""

    def __init__(self, **kwargs):
        object.__setattr__(self, "_config", dict(kwargs))
        object.__setattr__(self, "_frozen", False)

    def freeze(self):
        object.__setattr__(self, "_frozen", True)

    def unfreeze(self):
        object.__setattr__(self, "_frozen", False)

    @property
    def frozen(self):
        return self._frozen

    def _check(self):
        if self._frozen:
            raise ValueError("this Config is frozen: call unfreeze() to change it")

    def __getattr__(self, name):
        try:
            return self._config[name]
        except KeyError:
            raise AttributeError(f"no config value {name!r}") from None

    def __setattr__(self, name, value):
        self._check()
        self._config[name] = value

    def __getitem__(self, key):
        return self._config[key]

    def __setitem__(self, key, value):
        self._check()
        self._config[key] = value

    def __delitem__(self, key):
        self._check()
        del self._config[key]

    def __contains__(self, key):
        return key in self._config

    def __iter__(self):
        return iter(self._config)

    def __len__(self):
        return len(self._config)

    def keys(self):
        return self._config.keys()

    def items(self):
        return self._config.items()

    def values(self):
        return self._config.values()

    def get(self, key, default=None):
        return self._config.get(key, default)

    def update(self, *args, **kwargs):
        self._check()
        self._config.update(*args, **kwargs)

    def as_dict(self):
        return dict(self._config)

    def to_json(self):
        import json
        return json.dumps(self._config)

    def __repr__(self):
        return f"<Config {self._config!r}>"


class _Windows(PyDataset):
    """The batches of timeseries_dataset_from_array."""

    def __init__(self, data, targets, starts, sequence_length, sampling_rate, batch_size):
        super().__init__()
        self.data, self.targets, self.starts = data, targets, starts
        self.offsets = np.arange(sequence_length) * sampling_rate
        self.batch_size = batch_size

    def __len__(self):
        return -(-len(self.starts) // self.batch_size)

    def __getitem__(self, i):
        if not 0 <= i < len(self):
            raise IndexError(i)
        starts = self.starts[i * self.batch_size:(i + 1) * self.batch_size]
        x = self.data[starts[:, None] + self.offsets]
        if self.targets is None:
            return x, None
        return x, self.targets[starts]

    def __iter__(self):
        return (self[i] for i in range(len(self)))


def timeseries_dataset_from_array(data, targets, sequence_length, sequence_stride=1,
                                  sampling_rate=1, batch_size=128, shuffle=False, seed=None,
                                  start_index=None, end_index=None, **kwargs):
    """Sliding windows over `data` (rows are time steps) as a PyDataset of (windows,
    targets) batches: window i holds rows start_i, start_i + sampling_rate, ... (
    sequence_length of them), start_i = start_index + i * sequence_stride, and its target
    is targets[start_i]. shuffle orders the windows randomly (seeded)."""
    data = np.asarray(data)
    start = start_index or 0
    end = len(data) if end_index is None else end_index
    span = (sequence_length - 1) * sampling_rate
    starts = np.arange(start, end - span, sequence_stride)
    if targets is not None:
        targets = np.asarray(targets)
        starts = starts[starts < len(targets)]
    if shuffle:
        starts = np.random.default_rng(seed).permutation(starts)
    if batch_size is None:
        batch_size = max(len(starts), 1)
    return _Windows(data, targets, starts, sequence_length, sampling_rate, batch_size)


def split_dataset(dataset, left_size=None, right_size=None, shuffle=False, seed=None,
                  **kwargs):
    """(left, right): an array, or a tuple/list of arrays with one row per example, cut in
    two by example; a size is a count or a fraction (the other part takes the rest)."""
    arrays = list(dataset) if isinstance(dataset, (tuple, list)) else [dataset]
    arrays = [np.asarray(a) for a in arrays]
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError("split_dataset: every array needs the same number of rows")

    def count(size):
        return None if size is None else int(size * n) if isinstance(size, float) else \
            int(size)
    left, right = count(left_size), count(right_size)
    if left is None and right is None:
        left = int(0.5 * n)
    left = n - right if left is None else left
    right = n - left if right is None else right
    if left < 0 or right < 0 or left + right > n:
        raise ValueError(f"split_dataset: left_size={left_size} and right_size={right_size} "
                         f"do not fit {n} examples")
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    parts = [[a[order[:left]] for a in arrays], [a[order[left:left + right]] for a in arrays]]
    if isinstance(dataset, (tuple, list)):
        return tuple(tuple(p) for p in parts)
    return parts[0][0], parts[1][0]


from .progress import Progbar  # noqa: E402,F401  (public here, as in Keras)
from .progress import (disable_interactive_logging, enable_interactive_logging,  # noqa: E402,F401
                       is_interactive_logging_enabled)
from .serialization import (CustomObjectScope, custom_object_scope,  # noqa: E402,F401
                            deserialize_keras_object, get_custom_objects, get_registered_name,
                            get_registered_object, register_keras_serializable,
                            serialize_keras_object)
from .backend import clear_session, is_keras_tensor, standardize_dtype  # noqa: E402,F401

__all__ = ["set_random_seed", "to_categorical", "model_to_dot", "plot_model", "pad_sequences",
           "normalize", "pack_x_y_sample_weight", "unpack_x_y_sample_weight",
           "get_source_inputs", "Config", "PyDataset", "Sequence",
           "timeseries_dataset_from_array", "split_dataset", "Progbar",
           "disable_interactive_logging", "enable_interactive_logging",
           "is_interactive_logging_enabled", "CustomObjectScope", "custom_object_scope",
           "deserialize_keras_object", "get_custom_objects", "get_registered_name",
           "get_registered_object", "register_keras_serializable", "serialize_keras_object",
           "clear_session", "is_keras_tensor", "standardize_dtype"]
