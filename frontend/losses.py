"""Losses: per-example values averaged over the batch.

Each loss computes a per-example tensor from (y_true, y_pred); the model's train step takes its
mean. The cross-entropies take probabilities by default and logits with from_logits=True. When
the predictions come straight out of a softmax or sigmoid op, the loss reads the logits under
it, so the log never sees a rounded-to-zero probability.
"""
import graphc as gc
from graphc.errors import GraphcError

from .labels import CLASS_INDICES, LIKE_PREDICTIONS, fit as fit_labels

EPSILON = 1e-7


def _float(t, like):
    return t if t.dtype is like.dtype else gc.cast(t, like.dtype)


def _logits_under(y_pred, op):
    """The input of y_pred's `op` node when y_pred is its output, else None."""
    if y_pred.op == op and (op != "softmax" or y_pred.node.attrs["axis"] == y_pred.ndim - 1):
        return y_pred.node.inputs[0]
    return None


def _mean_last(t):
    return gc.mean(t, axis=-1) if t.ndim > 1 else t


class Loss:
    """Callable: loss(y_true, y_pred) -> per-example values, shape (batch,).

    y_true comes to per_example in the shape label_kind names (see labels.py)."""

    name = None
    label_kind = LIKE_PREDICTIONS

    def __init__(self, from_logits=False):
        self.from_logits = from_logits

    def __call__(self, y_true, y_pred):
        return self.per_example(fit_labels(y_true, y_pred, self.label_kind, self.name), y_pred)

    def get_config(self):
        return {"from_logits": self.from_logits}


class MeanSquaredError(Loss):
    name = "mean_squared_error"

    def __init__(self):
        super().__init__()

    def per_example(self, y_true, y_pred):
        return _mean_last(gc.square(y_pred - _float(y_true, y_pred)))

    def get_config(self):
        return {}


class MeanAbsoluteError(MeanSquaredError):
    name = "mean_absolute_error"

    def per_example(self, y_true, y_pred):
        return _mean_last(gc.abs(y_pred - _float(y_true, y_pred)))


class Huber(Loss):
    """0.5 e**2 where |e| <= delta, else delta * (|e| - 0.5 delta)."""
    name = "huber"

    def __init__(self, delta=1.0):
        super().__init__()
        self.delta = float(delta)

    def per_example(self, y_true, y_pred):
        err = gc.abs(y_pred - _float(y_true, y_pred))
        small = gc.minimum(err, self.delta)
        return _mean_last(0.5 * gc.square(small) + self.delta * (err - small))

    def get_config(self):
        return {"delta": self.delta}


class BinaryCrossentropy(Loss):
    name = "binary_crossentropy"

    def per_example(self, y_true, y_pred):
        y_true = _float(y_true, y_pred)
        logits = y_pred if self.from_logits else _logits_under(y_pred, "sigmoid")
        if logits is not None:
            return _mean_last(gc.nn.sigmoid_cross_entropy(logits, y_true))
        p = gc.clip(y_pred, EPSILON, 1 - EPSILON)
        return _mean_last(-(y_true * gc.log(p) + (1 - y_true) * gc.log(1 - p)))


class CategoricalCrossentropy(Loss):
    """y_true: one-hot (or probability) rows."""
    name = "categorical_crossentropy"

    def per_example(self, y_true, y_pred):
        y_true = _float(y_true, y_pred)
        logits = y_pred if self.from_logits else _logits_under(y_pred, "softmax")
        if logits is not None:
            return gc.nn.softmax_cross_entropy(logits, y_true)
        p = y_pred / gc.sum(y_pred, axis=-1, keepdims=True)
        return -gc.sum(y_true * gc.log(gc.clip(p, EPSILON, 1 - EPSILON)), axis=-1)


class SparseCategoricalCrossentropy(Loss):
    """y_true: class indices, of shape (batch,) or (batch, 1)."""
    name = "sparse_categorical_crossentropy"
    label_kind = CLASS_INDICES

    def per_example(self, y_true, y_pred):
        y_true = class_indices(y_true)
        logits = y_pred if self.from_logits else _logits_under(y_pred, "softmax")
        if logits is None:
            p = y_pred / gc.sum(y_pred, axis=-1, keepdims=True)
            logits = gc.log(gc.clip(p, EPSILON, 1 - EPSILON))
        return gc.nn.sparse_softmax_cross_entropy(logits, y_true)


def class_indices(y_true):
    """Class indices as integers (float labels are cast)."""
    return y_true if y_true.dtype.is_integer else gc.cast(y_true, gc.int32)


LOSSES = {cls.name: cls for cls in (
    MeanSquaredError, MeanAbsoluteError, Huber, BinaryCrossentropy, CategoricalCrossentropy,
    SparseCategoricalCrossentropy)}
ALIASES = {"mse": "mean_squared_error", "mae": "mean_absolute_error"}


def get(identifier):
    """A loss from a name ("mse", "sparse_categorical_crossentropy", ...), a config dict, an
    instance, or a function of (y_true, y_pred) returning per-example values."""
    if isinstance(identifier, Loss) or (callable(identifier) and not isinstance(identifier, type)):
        return identifier
    if isinstance(identifier, dict):
        return get(identifier["name"]).__class__(**identifier.get("config", {}))
    name = ALIASES.get(identifier, identifier)
    if name not in LOSSES:
        raise GraphcError(f"unknown loss {identifier!r}; expected one of "
                          f"{', '.join(sorted(LOSSES) + sorted(ALIASES))} or a function")
    return LOSSES[name]()


def serialize(loss):
    if not isinstance(loss, Loss):
        raise GraphcError(f"loss {loss!r} is a function and cannot be saved by name")
    return {"name": loss.name, "config": loss.get_config()}
