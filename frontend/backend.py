"""Where the frontend's state lives: one gc.Session per graph holds every weight's value, and
one seed stream makes weight initialization, dropout and shuffling reproducible.

Models and layers built in one graph share its session, so a layer used by two models has one
value. Asking for another device moves the values into a new session on that device.
"""
import weakref

import numpy as np

import graphc as gc
from graphc.runtime.devices import check_device

_sessions = weakref.WeakKeyDictionary()  # graph -> Session
_seeds = [np.random.default_rng()]


def session(graph, device=None):
    """The session holding `graph`'s weight values, on `device` (None: the current one, else
    graphc's default)."""
    sess = _sessions.get(graph)
    if sess is None:
        sess = gc.Session(graph, device=device)
    elif device is not None and check_device(device) != sess.device:
        moved = gc.Session(graph, device=device)
        for var in graph.variables:
            moved.set_value(var, sess.get_value(var))
        sess = moved
    _sessions[graph] = sess
    return sess


def set_random_seed(seed):
    """Make what follows reproducible: weight initializers, dropout masks and fit's shuffling
    draw their seeds from one stream started here."""
    _seeds[0] = np.random.default_rng(seed)


def next_seed():
    """A fresh 31-bit seed from the stream set by set_random_seed."""
    return int(_seeds[0].integers(0, 2 ** 31 - 1))


# ---- Keras's keras.backend configuration names -------------------------------------------------
_config = {"floatx": "float32", "epsilon": 1e-7, "image_data_format": "channels_last"}
_uids = {}


def backend():
    """The name of the backend: "graphc"."""
    return "graphc"


def floatx():
    """The default float type's name ("float32")."""
    return _config["floatx"]


def set_floatx(value):
    if value not in ("float16", "bfloat16", "float32", "float64"):
        raise ValueError(f"Unknown floatx type: {value!r}")
    _config["floatx"] = str(value)


def epsilon():
    """The fuzz factor of numeric expressions (1e-7, as in Keras)."""
    return _config["epsilon"]


def set_epsilon(value):
    _config["epsilon"] = float(value)


def image_data_format():
    """"channels_last": graphc's image layers take (batch, height, width, channels)."""
    return _config["image_data_format"]


def set_image_data_format(data_format):
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(f"Unknown data_format: {data_format!r}")
    _config["image_data_format"] = data_format


def clear_session():
    """Forget layer-name counters (as Keras does); sessions go with their graphs."""
    from .layers import base
    base._names.clear()
    _uids.clear()


def get_uid(prefix=""):
    _uids[prefix] = _uids.get(prefix, 0) + 1
    return _uids[prefix]


def standardize_dtype(dtype):
    """A dtype's canonical name ("float32", "int64", "bool", ...)."""
    if dtype is None:
        return floatx()
    name = getattr(dtype, "name", None) or str(dtype)
    name = {"float": "float32", "int": "int64", "bool_": "bool"}.get(name, name)
    return np.dtype(name).name if name != "bfloat16" else name


def is_float_dtype(dtype):
    name = standardize_dtype(dtype)
    return name.startswith("float") or name.startswith("bfloat")


def is_int_dtype(dtype):
    name = standardize_dtype(dtype)
    return name.startswith("int") or name.startswith("uint")


def result_type(*dtypes):
    """Keras's promotion, simplified: the widest float among floats (ints never widen a
    float), else numpy's promotion of the ints and bools."""
    names = [standardize_dtype(d) for d in dtypes] or [floatx()]
    floats = [n for n in names if is_float_dtype(n)]
    if floats:
        return max(floats, key=lambda n: (np.dtype(n).itemsize if n != "bfloat16" else 2,
                                          n != "bfloat16"))
    return np.result_type(*[np.dtype(n) for n in names]).name


def is_keras_tensor(x):
    """True for graphc tensors (symbolic values that layers take)."""
    from graphc.ir.graph import Tensor
    return isinstance(x, Tensor)
