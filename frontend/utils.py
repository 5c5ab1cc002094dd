"""gk.utils: seeding, one-hot labels, and plot_model."""
import os
import shutil
import subprocess

import numpy as np

from graphc.errors import GraphcError

from .backend import set_random_seed  # noqa: F401  (public here, as in Keras)


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


from .progress import Progbar  # noqa: E402,F401  (public here, as in Keras)
from .backend import clear_session, is_keras_tensor, standardize_dtype  # noqa: E402,F401
