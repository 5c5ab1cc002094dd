"""Keras's data_format argument for spatial layers and ops that compute channels-last:
channels_first inputs are transposed to channels-last before and back after, and graphc's
transpose folding cancels the back-to-back pairs between two such layers."""
import functools
import inspect

import graphc as gc
from graphc.errors import ArgumentError

from . import backend

FORMATS = ("channels_last", "channels_first")


def resolve(data_format, who):
    """data_format, or gk.backend.image_data_format() for None (as Keras reads it)."""
    value = backend.image_data_format() if data_format is None else data_format
    if value not in FORMATS:
        raise ArgumentError(f"{who}: data_format must be one of {FORMATS}, got "
                            f"{data_format!r}")
    return value


def last_shape(shape):
    """A channels-first static shape (batch, c, spatial...) as channels-last."""
    shape = tuple(shape)
    return shape[:1] + shape[2:] + shape[1:2]


def to_last(x):
    return gc.transpose(x, (0,) + tuple(range(2, x.ndim)) + (1,))


def to_first(x):
    """Channels-last back to channels-first; outputs of rank 2 (a global pool's (batch, c))
    have no spatial axes and stay as they are."""
    if x.ndim < 3:
        return x
    return gc.transpose(x, (0, x.ndim - 1) + tuple(range(1, x.ndim - 1)))


def channels_first_op(fn):
    """A gk.ops function of channels-last `inputs` taking data_format as Keras does."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        fmt = resolve(bound.arguments["data_format"], f"gk.ops.{fn.__name__}")
        bound.arguments["data_format"] = "channels_last"
        if fmt == "channels_last":
            return fn(*bound.args, **bound.kwargs)
        from .ops import _t
        bound.arguments["inputs"] = to_last(_t(bound.arguments["inputs"]))
        return to_first(fn(*bound.args, **bound.kwargs))
    return wrapped
