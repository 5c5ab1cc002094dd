"""Losses: per-example values averaged over the batch.

Each loss computes a per-example tensor from (y_true, y_pred); the model's train step takes its
mean. The cross-entropies take probabilities by default and logits with from_logits=True. When
the predictions come straight out of a softmax or sigmoid op, the loss reads the logits under
it, so the log never sees a rounded-to-zero probability.
"""
import numpy as np

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


def _hinge_labels(y_true):
    """Keras's hinge labels: 0/1 labels become -1/1 when every label is 0 or 1."""
    binary = gc.min(gc.cast(gc.logical_or(gc.equal(y_true, 0.0), gc.equal(y_true, 1.0)),
                            gc.float32)) > 0.5
    return gc.where(binary, 2.0 * y_true - 1.0, y_true)


def _l2_normalize(x, axis=-1):
    """x * min(rsqrt(sum(x**2)), 1 / epsilon), Keras's ops.normalize."""
    inv = gc.minimum(gc.rsqrt(gc.sum(gc.square(x), axis=axis, keepdims=True)), 1.0 / EPSILON)
    return x * inv


class _Simple(MeanSquaredError):
    """A loss without options, computed by `fn(y_true as float, y_pred)`."""
    fn = None

    def per_example(self, y_true, y_pred):
        return type(self).fn(_float(y_true, y_pred), y_pred)


class Hinge(_Simple):
    name = "hinge"
    fn = staticmethod(lambda t, p: _mean_last(gc.maximum(1.0 - _hinge_labels(t) * p, 0.0)))


class SquaredHinge(_Simple):
    name = "squared_hinge"
    fn = staticmethod(lambda t, p: _mean_last(gc.square(gc.maximum(1.0 - _hinge_labels(t) * p,
                                                                   0.0))))


class CategoricalHinge(_Simple):
    name = "categorical_hinge"
    fn = staticmethod(lambda t, p: gc.maximum(
        gc.max((1.0 - t) * p, axis=-1) - gc.sum(t * p, axis=-1) + 1.0, 0.0))


class KLDivergence(_Simple):
    name = "kl_divergence"

    @staticmethod
    def fn(t, p):
        t, p = gc.clip(t, EPSILON, 1.0), gc.clip(p, EPSILON, 1.0)
        return gc.sum(t * gc.log(t / p), axis=-1)


class LogCosh(_Simple):
    name = "log_cosh"

    @staticmethod
    def fn(t, p):
        x = p - t
        return _mean_last(x + gc.softplus(-2.0 * x) - float(np.log(2.0)))


class MeanAbsolutePercentageError(_Simple):
    name = "mean_absolute_percentage_error"
    fn = staticmethod(lambda t, p: 100.0 * _mean_last(
        gc.abs((t - p) / gc.maximum(gc.abs(t), EPSILON))))


class MeanSquaredLogarithmicError(_Simple):
    name = "mean_squared_logarithmic_error"
    fn = staticmethod(lambda t, p: _mean_last(gc.square(
        gc.log(gc.maximum(p, EPSILON) + 1.0) - gc.log(gc.maximum(t, EPSILON) + 1.0))))


class Poisson(_Simple):
    name = "poisson"
    fn = staticmethod(lambda t, p: _mean_last(p - t * gc.log(p + EPSILON)))


class CosineSimilarity(Loss):
    """-cos(y_true, y_pred) along `axis` (-1 for identical directions)."""
    name = "cosine_similarity"

    def __init__(self, axis=-1):
        super().__init__()
        self.axis = axis

    def per_example(self, y_true, y_pred):
        y_true = _float(y_true, y_pred)
        return -gc.sum(_l2_normalize(y_true, self.axis) * _l2_normalize(y_pred, self.axis),
                       axis=self.axis)

    def get_config(self):
        return {"axis": self.axis}


LOSSES = {cls.name: cls for cls in (
    MeanSquaredError, MeanAbsoluteError, Huber, BinaryCrossentropy, CategoricalCrossentropy,
    SparseCategoricalCrossentropy, Hinge, SquaredHinge, CategoricalHinge, KLDivergence, LogCosh,
    MeanAbsolutePercentageError, MeanSquaredLogarithmicError, Poisson, CosineSimilarity)}
ALIASES = {"mse": "mean_squared_error", "mae": "mean_absolute_error",
           "mape": "mean_absolute_percentage_error", "msle": "mean_squared_logarithmic_error",
           "kld": "kl_divergence", "logcosh": "log_cosh", "huber_loss": "huber"}


def _functional(cls, *options):
    """Keras's functional form of a loss class: fn(y_true, y_pred, **options) -> per-example
    values (compile(loss=gk.losses.categorical_crossentropy) saves as the class would)."""
    def fn(y_true, y_pred, **kwargs):
        return cls(**kwargs)(y_true, y_pred)
    fn.__name__ = fn.__qualname__ = cls.name
    fn.__doc__ = f"The per-example {cls.name} of (y_true, y_pred); options: {options or 'none'}."
    fn.loss_class = cls
    return fn


mean_squared_error = _functional(MeanSquaredError)
mean_absolute_error = _functional(MeanAbsoluteError)
huber = _functional(Huber, "delta")
binary_crossentropy = _functional(BinaryCrossentropy, "from_logits")
categorical_crossentropy = _functional(CategoricalCrossentropy, "from_logits")
sparse_categorical_crossentropy = _functional(SparseCategoricalCrossentropy, "from_logits")
hinge = _functional(Hinge)
squared_hinge = _functional(SquaredHinge)
categorical_hinge = _functional(CategoricalHinge)
kl_divergence = _functional(KLDivergence)
log_cosh = _functional(LogCosh)
mean_absolute_percentage_error = _functional(MeanAbsolutePercentageError)
mean_squared_logarithmic_error = _functional(MeanSquaredLogarithmicError)
poisson = _functional(Poisson)
cosine_similarity = _functional(CosineSimilarity, "axis")


def get(identifier):
    """A loss from a name ("mse", "sparse_categorical_crossentropy", ...), a config dict, an
    instance, or a function of (y_true, y_pred) returning per-example values."""
    if getattr(identifier, "loss_class", None) is not None:  # a functional form
        return identifier.loss_class()
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


def deserialize(config):
    """A loss from serialize's dict (or a name)."""
    return get(config)
