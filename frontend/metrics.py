"""Metrics: running means over an epoch, kept in the graph.

A metric turns (y_true, y_pred) into one value per example; its state is two non-trainable
variables, the sum of those values and their count, updated by the train or test step that
computes them, so a batch costs no extra call. `result` after a step is sum / count.
"""
import graphc as gc
from graphc.errors import GraphcError

from . import distribution
from .labels import CLASS_INDICES, LIKE_PREDICTIONS, fit as fit_labels
from .losses import class_indices


def _equal_float(a, b):
    return gc.cast(gc.equal(a, b), gc.float32)


class Metric:
    """A running mean of per-example values. Subclasses define values(y_true, y_pred), which
    gets y_true in the shape label_kind names (see labels.py)."""

    name = None
    label_kind = LIKE_PREDICTIONS

    def __init__(self, name=None):
        self.name = name or type(self).name
        self._state = None  # (sum, count) variables, made with the first step

    def values(self, y_true, y_pred):
        raise NotImplementedError

    def state(self):
        if self._state is None:
            with gc.get_default_graph().root_scope():
                self._state = (gc.Variable(0.0, name=f"metrics/{self.name}/total",
                                           dtype=gc.float32, trainable=False),
                               gc.Variable(0.0, name=f"metrics/{self.name}/count",
                                           dtype=gc.float32, trainable=False))
        return self._state

    def update(self, y_true, y_pred):
        """(updates, result): the state after this batch and the running mean it gives."""
        y_true = fit_labels(y_true, y_pred, self.label_kind, type(self).name)
        values = gc.cast(self.values(y_true, y_pred), gc.float32)
        ones = gc.broadcast_to(gc.constant(1.0), values.shape)
        return self.accumulate(gc.sum(values), gc.sum(ones))

    def accumulate(self, batch_sum, batch_count):
        # data parallel: the batch's totals over every rank's shard, so every rank logs the same
        batch_sum, batch_count = distribution.sum_over_ranks([batch_sum, batch_count])
        total, count = self.state()
        new_total, new_count = total + batch_sum, count + batch_count
        return [(total, new_total), (count, new_count)], new_total / gc.maximum(new_count, 1.0)

    def reset(self, session):
        for var in self._state or ():
            session.set_value(var, 0.0)

    def get_config(self):
        return {"name": self.name}


class Mean(Metric):
    """The mean of a batch-mean value, each batch weighted by its size (the loss tracker)."""
    name = "mean"

    def update_mean(self, batch_mean, batch_count):
        batch_sum = batch_mean * batch_count
        if distribution.active():  # a rank's empty shard has a NaN mean; it adds nothing
            batch_sum = gc.where(batch_count > 0, batch_sum, 0.0)
        return self.accumulate(batch_sum, batch_count)


class Accuracy(Metric):
    """y_pred equals y_true exactly."""
    name = "accuracy"

    def values(self, y_true, y_pred):
        return _equal_float(y_true, gc.cast(y_pred, y_true.dtype))


class BinaryAccuracy(Metric):
    name = "binary_accuracy"

    def __init__(self, name=None, threshold=0.5):
        super().__init__(name)
        self.threshold = threshold

    def values(self, y_true, y_pred):
        hit = _equal_float(gc.cast(y_true, gc.float32),
                           gc.cast(y_pred > self.threshold, gc.float32))
        return gc.mean(hit, axis=-1) if hit.ndim > 1 else hit


class CategoricalAccuracy(Metric):
    """argmax(y_pred) equals argmax(y_true) (one-hot labels)."""
    name = "categorical_accuracy"

    def values(self, y_true, y_pred):
        return _equal_float(gc.argmax(y_true, axis=-1), gc.argmax(y_pred, axis=-1))


class SparseCategoricalAccuracy(Metric):
    """argmax(y_pred) equals the integer label."""
    name = "sparse_categorical_accuracy"
    label_kind = CLASS_INDICES

    def values(self, y_true, y_pred):
        labels = class_indices(y_true)
        return _equal_float(gc.cast(gc.argmax(y_pred, axis=-1), labels.dtype), labels)


class SparseTopKCategoricalAccuracy(Metric):
    """The label's score is among the k highest (fewer than k classes score higher)."""
    name = "sparse_top_k_categorical_accuracy"
    label_kind = CLASS_INDICES

    def __init__(self, k=5, name=None):
        super().__init__(name)
        self.k = int(k)

    def _hits(self, true_class, y_pred):
        classes = y_pred.shape[-1]
        true_score = gc.sum(y_pred * gc.one_hot(true_class, classes, dtype=y_pred.dtype),
                            axis=-1, keepdims=True)
        higher = gc.sum(gc.cast(y_pred > true_score, gc.float32), axis=-1)
        return gc.cast(higher < self.k, gc.float32)

    def values(self, y_true, y_pred):
        return self._hits(class_indices(y_true), y_pred)

    def get_config(self):
        return {"name": self.name, "k": self.k}


class TopKCategoricalAccuracy(SparseTopKCategoricalAccuracy):
    name = "top_k_categorical_accuracy"
    label_kind = LIKE_PREDICTIONS

    def values(self, y_true, y_pred):
        return self._hits(gc.cast(gc.argmax(y_true, axis=-1), gc.int32), y_pred)


class MeanAbsoluteError(Metric):
    name = "mean_absolute_error"

    def values(self, y_true, y_pred):
        err = gc.abs(y_pred - gc.cast(y_true, y_pred.dtype))
        return gc.mean(err, axis=-1) if err.ndim > 1 else err


class MeanSquaredError(Metric):
    name = "mean_squared_error"

    def values(self, y_true, y_pred):
        err = gc.square(y_pred - gc.cast(y_true, y_pred.dtype))
        return gc.mean(err, axis=-1) if err.ndim > 1 else err


METRICS = {cls.name: cls for cls in (
    Accuracy, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy,
    SparseTopKCategoricalAccuracy, TopKCategoricalAccuracy, MeanAbsoluteError,
    MeanSquaredError)}
ALIASES = {"acc": "accuracy", "mae": "mean_absolute_error", "mse": "mean_squared_error",
           "top_k": "top_k_categorical_accuracy"}


def get(identifier, y_true=None, y_pred=None, loss=None):
    """A metric from a name or an instance. "accuracy" picks its binary, categorical or sparse
    form from the shapes and the loss, as Keras does; the name it logs stays "accuracy"."""
    if isinstance(identifier, Metric):
        return identifier
    name = ALIASES.get(identifier, identifier)
    if name == "accuracy" and y_pred is not None:
        return _accuracy_for(y_true, y_pred, loss)(name=identifier)
    if name not in METRICS:
        raise GraphcError(f"unknown metric {identifier!r}; expected one of "
                          f"{', '.join(sorted(METRICS) + sorted(ALIASES))} or a Metric")
    return METRICS[name](name=identifier)


def _accuracy_for(y_true, y_pred, loss):
    if y_pred.shape[-1] == 1 or "binary" in (getattr(loss, "name", "") or ""):
        return BinaryAccuracy
    if y_true.dtype.is_integer or y_true.ndim < y_pred.ndim or y_true.shape[-1] == 1:
        return SparseCategoricalAccuracy
    return CategoricalAccuracy
