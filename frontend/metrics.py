"""Metrics: running means over an epoch, kept in the graph.

A metric turns (y_true, y_pred) into one value per example; its state is two non-trainable
variables, the sum of those values and their count, updated by the train or test step that
computes them, so a batch costs no extra call. `result` after a step is sum / count.
"""
import numpy as np

import graphc as gc
from graphc.errors import GraphcError

from . import distribution
from .labels import CLASS_INDICES, LIKE_PREDICTIONS, fit as fit_labels
from . import losses
from .losses import class_indices

EPS = 1e-7  # Keras's backend.epsilon(), the AUC's end thresholds' margin


def _equal_float(a, b):
    return gc.cast(gc.equal(a, b), gc.float32)


def _weighted_sums(values, sample_weight, reduce=gc.mean):
    """(sum, count) of a batch of values as Keras's reduce_to_samplewise_values makes them:
    values reduced (averaged, for a mean) down to the weights' rank (a trailing axis of 1
    squeezed from either), multiplied by the weights broadcast to them; each sample counts
    as its reduced weight."""
    if sample_weight is None:
        return gc.sum(values), gc.sum(gc.broadcast_to(gc.constant(1.0), values.shape))
    values, w = losses.same_rank(values, gc.cast(sample_weight, gc.float32))
    if values.ndim > w.ndim:
        values = reduce(values, axis=tuple(range(w.ndim, values.ndim)))
    w = gc.broadcast_to(w, values.shape)
    weighted = values * w
    if w.ndim > 1:
        rest = tuple(range(1, w.ndim))
        weighted, w = reduce(weighted, axis=rest), reduce(w, axis=rest)
    return gc.sum(weighted), gc.sum(w)


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

    def update(self, y_true, y_pred, sample_weight=None):
        """(updates, result): the state after this batch and the running mean it gives."""
        y_true = fit_labels(y_true, y_pred, self.label_kind, type(self).name)
        return self.update_values(self.values(y_true, y_pred), sample_weight)

    def update_values(self, values, sample_weight=None):
        """(updates, result) for a batch of values (Keras's Mean.update_state): weighted by
        sample_weight as Keras weighs them, each sample counting as its weight."""
        return self.accumulate(*_weighted_sums(gc.cast(values, gc.float32), sample_weight))

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

    @classmethod
    def from_config(cls, config):
        return cls(**config)


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


class _Confusion(Metric):
    """A metric kept as confusion counts (one per threshold) summed over the epoch, its result
    computed from them: Precision, Recall, AUC, the TruePositives family."""
    counts = ()  # which of "tp", "fp", "tn", "fn" to keep

    def __init__(self, thresholds=0.5, name=None, class_id=None):
        super().__init__(name)
        self.thresholds = thresholds
        self.class_id = class_id

    def _threshold_list(self):
        t = self.thresholds
        return [float(v) for v in t] if isinstance(t, (list, tuple)) else [float(t)]

    def state(self):
        if self._state is None:
            n = len(self._threshold_list())
            with gc.get_default_graph().root_scope():
                self._state = tuple(gc.Variable(np.zeros(n, np.float32),
                                                name=f"metrics/{self.name}/{c}", trainable=False)
                                    for c in self.counts)
        return self._state

    def reset(self, session):
        for var in self._state or ():
            session.set_value(var, np.zeros(var.shape, np.float32))

    def update(self, y_true, y_pred, sample_weight=None):
        y_true = gc.cast(fit_labels(y_true, y_pred, self.label_kind, type(self).name),
                         gc.float32)
        y_pred = gc.cast(y_pred, gc.float32)
        weights = 1.0
        if sample_weight is not None:  # a weight per sample (Keras: one per label too)
            weights = gc.expand_dims(gc.cast(sample_weight, gc.float32), -1)
            if weights.ndim == y_true.ndim + 1:
                weights = gc.squeeze(weights, axis=-1)
        if self.class_id is not None:
            y_true, y_pred = y_true[..., self.class_id], y_pred[..., self.class_id]
            weights = weights if sample_weight is None else weights[..., 0]
        if sample_weight is not None:
            weights = gc.reshape(gc.broadcast_to(weights, y_pred.shape), (-1, 1))
        t = gc.reshape(y_true, (-1, 1)) > 0.5
        thresholds = gc.constant(np.array(self._threshold_list(), np.float32))
        pos = gc.reshape(y_pred, (-1, 1)) > gc.reshape(thresholds, (1, -1))
        both = {"tp": gc.logical_and(t, pos), "fp": gc.logical_and(gc.logical_not(t), pos),
                "tn": gc.logical_and(gc.logical_not(t), gc.logical_not(pos)),
                "fn": gc.logical_and(t, gc.logical_not(pos))}
        batch = [gc.sum(gc.cast(both[c], gc.float32) * weights, axis=0) for c in self.counts]
        batch = distribution.sum_over_ranks(batch)
        updates = [(v, v + b) for v, b in zip(self.state(), batch)]
        totals = dict(zip(self.counts, [new for _, new in updates]))
        out = self.from_counts(totals)
        if not isinstance(self.thresholds, (list, tuple)) and out.ndim == 1:
            out = gc.reshape(out, ())
        return updates, out

    def get_config(self):
        return {"name": self.name, "thresholds": self.thresholds, "class_id": self.class_id}


def _divide_no_nan(a, b):
    safe = gc.where(gc.equal(b, 0.0), gc.ones_like(b), b)
    return gc.where(gc.equal(b, 0.0), gc.zeros_like(a), a / safe)


class Precision(_Confusion):
    """true positives / predicted positives, at each threshold (y_pred > threshold)."""
    name = "precision"
    counts = ("tp", "fp")

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None):
        if top_k is not None:
            raise GraphcError(f"{type(self).__name__}(top_k=...) is not supported yet")
        super().__init__(0.5 if thresholds is None else thresholds, name, class_id)

    def from_counts(self, c):
        return _divide_no_nan(c["tp"], c["tp"] + c["fp"])


class Recall(Precision):
    """true positives / actual positives."""
    name = "recall"
    counts = ("tp", "fn")

    def from_counts(self, c):
        return _divide_no_nan(c["tp"], c["tp"] + c["fn"])


def _count_metric(count):
    class Count(_Confusion):
        counts = (count,)

        def __init__(self, thresholds=None, name=None):
            super().__init__(0.5 if thresholds is None else thresholds, name)

        def from_counts(self, c):
            return c[count]

        def get_config(self):
            return {"name": self.name, "thresholds": self.thresholds}
    return Count


class TruePositives(_count_metric("tp")):
    name = "true_positives"


class FalsePositives(_count_metric("fp")):
    name = "false_positives"


class TrueNegatives(_count_metric("tn")):
    name = "true_negatives"


class FalseNegatives(_count_metric("fn")):
    name = "false_negatives"


class AUC(_Confusion):
    """Area under the ROC or PR curve from confusion counts at num_thresholds thresholds
    spread evenly over [0, 1] (plus -epsilon and 1 + epsilon), summed by Keras's Riemann rule
    (interpolation, minoring, majoring; PR with interpolation uses Davis & Goadrich's)."""
    name = "auc"
    counts = ("tp", "fp", "tn", "fn")

    def __init__(self, num_thresholds=200, curve="ROC", summation_method="interpolation",
                 name=None, thresholds=None, multi_label=False, num_labels=None,
                 label_weights=None, from_logits=False):
        if multi_label or label_weights is not None:
            raise GraphcError("AUC(multi_label=True or label_weights) is not supported yet")
        if str(curve).upper() not in ("ROC", "PR"):
            raise GraphcError(f"AUC curve must be 'ROC' or 'PR', got {curve!r}")
        if summation_method not in ("interpolation", "minoring", "majoring"):
            raise GraphcError(f"unknown AUC summation_method {summation_method!r}")
        if thresholds is not None:
            inner = sorted(float(t) for t in thresholds)
            num_thresholds = len(inner) + 2
        else:
            inner = [(i + 1) * 1.0 / (num_thresholds - 1) for i in range(num_thresholds - 2)]
        self.num_thresholds, self.curve = int(num_thresholds), str(curve).upper()
        self.summation_method, self.from_logits = summation_method, bool(from_logits)
        self._given = thresholds
        super().__init__([0.0 - EPS] + inner + [1.0 + EPS], name)

    def update(self, y_true, y_pred, sample_weight=None):
        return super().update(y_true, gc.sigmoid(y_pred) if self.from_logits else y_pred,
                              sample_weight)

    def from_counts(self, c):
        n = self.num_thresholds
        tp, fp, tn, fn = c["tp"], c["fp"], c["tn"], c["fn"]
        if self.curve == "PR" and self.summation_method == "interpolation":
            dtp = tp[:n - 1] - tp[1:]
            p = tp + fp
            dp = p[:n - 1] - p[1:]
            slope = _divide_no_nan(dtp, gc.maximum(dp, 0.0))
            intercept = tp[1:] - slope * p[1:]
            ratio = gc.where(gc.logical_and(p[:n - 1] > 0, p[1:] > 0),
                             _divide_no_nan(p[:n - 1], gc.maximum(p[1:], 0.0)),
                             gc.ones_like(p[1:]))
            return gc.sum(_divide_no_nan(slope * (dtp + intercept * gc.log(ratio)),
                                         gc.maximum(tp[1:] + fn[1:], 0.0)))
        recall = _divide_no_nan(tp, tp + fn)
        if self.curve == "ROC":
            x, y = _divide_no_nan(fp, fp + tn), recall
        else:
            x, y = recall, _divide_no_nan(tp, tp + fp)
        if self.summation_method == "interpolation":
            heights = (y[:n - 1] + y[1:]) / 2.0
        elif self.summation_method == "minoring":
            heights = gc.minimum(y[:n - 1], y[1:])
        else:
            heights = gc.maximum(y[:n - 1], y[1:])
        return gc.sum((x[:n - 1] - x[1:]) * heights)

    def get_config(self):
        return {"name": self.name, "num_thresholds": self.num_thresholds, "curve": self.curve,
                "summation_method": self.summation_method, "thresholds": self._given,
                "from_logits": self.from_logits}


class _AtConstraint(_Confusion):
    """The best `dependent` rate over num_thresholds evenly spaced thresholds in [0, 1] among
    those where the `constrained` rate reaches value (0 if none does), from confusion
    counts as Keras's SensitivitySpecificityBase keeps them."""
    counts = ("tp", "fp", "tn", "fn")
    constrained = dependent = None  # names of the two rates

    def __init__(self, value, num_thresholds=200, class_id=None, name=None, dtype=None):
        if not 0 <= value <= 1:
            raise GraphcError(f"{type(self).__name__}: the target value must be in [0, 1], "
                              f"got {value!r}")
        if num_thresholds < 1:
            raise GraphcError(f"num_thresholds must be positive, got {num_thresholds!r}")
        inner = [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
        super().__init__([0.5] if num_thresholds == 1 else [0.0] + inner + [1.0], name,
                         class_id)
        self.value, self.num_thresholds = float(value), int(num_thresholds)

    def from_counts(self, c):
        rates = {"sensitivity": _divide_no_nan(c["tp"], c["tp"] + c["fn"]),
                 "specificity": _divide_no_nan(c["tn"], c["tn"] + c["fp"]),
                 "precision": _divide_no_nan(c["tp"], c["tp"] + c["fp"])}
        rates["recall"] = rates["sensitivity"]
        feasible = rates[self.constrained] >= self.value
        best = gc.where(feasible, rates[self.dependent], gc.zeros_like(rates[self.dependent]))
        return gc.maximum(gc.max(best), 0.0)

    def get_config(self):
        return {"name": self.name, type(self).constrained: self.value,
                "num_thresholds": self.num_thresholds, "class_id": self.class_id}


class SensitivityAtSpecificity(_AtConstraint):
    name, constrained, dependent = "sensitivity_at_specificity", "specificity", "sensitivity"

    def __init__(self, specificity, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(specificity, num_thresholds, class_id, name)


class SpecificityAtSensitivity(_AtConstraint):
    name, constrained, dependent = "specificity_at_sensitivity", "sensitivity", "specificity"

    def __init__(self, sensitivity, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(sensitivity, num_thresholds, class_id, name)


class PrecisionAtRecall(_AtConstraint):
    name, constrained, dependent = "precision_at_recall", "recall", "precision"

    def __init__(self, recall, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(recall, num_thresholds, class_id, name)


class RecallAtPrecision(_AtConstraint):
    name, constrained, dependent = "recall_at_precision", "precision", "recall"

    def __init__(self, precision, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(precision, num_thresholds, class_id, name)


class R2Score(Metric):
    """The coefficient of determination over the epoch's examples, per output then averaged
    (class_aggregation "uniform_average", "variance_weighted_average" or None), adjusted for
    num_regressors as Keras does."""
    name = "r2_score"

    def __init__(self, class_aggregation="uniform_average", num_regressors=0, name=None):
        super().__init__(name)
        if class_aggregation not in ("uniform_average", "variance_weighted_average", None):
            raise GraphcError(f"unknown R2Score class_aggregation {class_aggregation!r}")
        self.class_aggregation, self.num_regressors = class_aggregation, int(num_regressors)

    def update(self, y_true, y_pred, sample_weight=None):
        """Sums over the examples, each weighted by its sample weight (per output where the
        weights have the labels' shape); the count of outputs is the weights' sum, that of
        the adjustment the number of labels, as Keras counts them."""
        y_true = gc.cast(fit_labels(y_true, y_pred, self.label_kind, type(self).name),
                         gc.float32)
        y_pred = gc.cast(y_pred, gc.float32)
        if y_pred.ndim == 1:
            y_true, y_pred = gc.expand_dims(y_true, 1), gc.expand_dims(y_pred, 1)
        outputs = y_pred.shape[-1]
        if self._state is None:
            with gc.get_default_graph().root_scope():
                self._state = tuple(gc.Variable(np.zeros(shape, np.float32),
                                                name=f"metrics/{self.name}/{what}",
                                                trainable=False)
                                    for what, shape in (("sum", outputs), ("squared_sum", outputs),
                                                        ("total_mse", outputs),
                                                        ("count", outputs), ("num_samples", ())))
        w = gc.ones_like(y_true) if sample_weight is None else gc.cast(sample_weight, gc.float32)
        w = gc.broadcast_to(gc.expand_dims(w, 1) if w.ndim == 1 else w, y_true.shape)
        batch = [gc.sum(w * y_true, axis=0), gc.sum(w * gc.square(y_true), axis=0),
                 gc.sum(w * gc.square(y_true - y_pred), axis=0), gc.sum(w, axis=0),
                 gc.sum(gc.ones_like(y_true))]
        batch = distribution.sum_over_ranks(batch)
        updates = [(v, v + b) for v, b in zip(self._state, batch)]
        total, squared, mse, count, samples = [new for _, new in updates]
        mean = total / count
        variance = squared - total * mean
        raw = 1.0 - mse / variance
        raw = gc.where(gc.isfinite(raw), raw, gc.zeros_like(raw))
        if self.class_aggregation == "uniform_average":
            r2 = gc.mean(raw)
        elif self.class_aggregation == "variance_weighted_average":
            r2 = gc.sum(variance / gc.sum(variance) * raw)
        else:
            r2 = raw
        if self.num_regressors:
            n, p = samples, float(self.num_regressors)
            adjusted = 1.0 - (1.0 - r2) * (n - 1.0) / (n - p - 1.0)
            r2 = gc.where(n - p - 1.0 > 0, adjusted, r2)
        return updates, r2

    def reset(self, session):
        for var in self._state or ():
            session.set_value(var, np.zeros(var.shape, np.float32))

    def get_config(self):
        return {"name": self.name, "class_aggregation": self.class_aggregation,
                "num_regressors": self.num_regressors}


class MeanMetricWrapper(Metric):
    """The running mean of fn(y_true, y_pred, **kwargs)'s per-example values."""

    def __init__(self, fn, name=None, **kwargs):
        super().__init__(name or getattr(fn, "__name__", "mean_metric_wrapper"))
        self._fn, self._fn_kwargs = fn, kwargs

    def values(self, y_true, y_pred):
        return self._fn(y_true, y_pred, **self._fn_kwargs)


def _loss_metric(loss_cls, metric_name=None):
    """The metric class of a loss: the running mean of its per-example values."""
    class LossMetric(Metric):
        name = metric_name or loss_cls.name
        label_kind = loss_cls.label_kind

        def __init__(self, name=None, **kwargs):
            super().__init__(name)
            self._loss = loss_cls(**kwargs)
            self._kwargs = kwargs

        def values(self, y_true, y_pred):
            return self._loss.per_example(y_true, y_pred)

        def update(self, y_true, y_pred, sample_weight=None):
            """The loss's masked-out values (ignore_class) leave a weighted mean; Keras
            applies the mask to sample weights alone, so an unweighted mean counts their
            zeros."""
            y_true = fit_labels(y_true, y_pred, self.label_kind, type(self).name)
            valid = self._loss.valid(y_true)
            if valid is not None and sample_weight is not None:
                sample_weight = losses.masked(gc.cast(sample_weight, gc.float32),
                                              gc.cast(valid, gc.float32), "sum")
            return self.update_values(self.values(y_true, y_pred), sample_weight)

        def get_config(self):
            return {"name": self.name, **self._kwargs}
    LossMetric.__name__ = loss_cls.__name__
    return LossMetric


BinaryCrossentropy = _loss_metric(losses.BinaryCrossentropy)
CategoricalCrossentropy = _loss_metric(losses.CategoricalCrossentropy)
SparseCategoricalCrossentropy = _loss_metric(losses.SparseCategoricalCrossentropy)
Hinge = _loss_metric(losses.Hinge)
SquaredHinge = _loss_metric(losses.SquaredHinge)
CategoricalHinge = _loss_metric(losses.CategoricalHinge)
KLDivergence = _loss_metric(losses.KLDivergence)
LogCoshError = _loss_metric(losses.LogCosh, "logcosh")
MeanAbsolutePercentageError = _loss_metric(losses.MeanAbsolutePercentageError)
MeanSquaredLogarithmicError = _loss_metric(losses.MeanSquaredLogarithmicError)
Poisson = _loss_metric(losses.Poisson)


class CosineSimilarity(_loss_metric(losses.CosineSimilarity)):
    """The mean cosine of (y_true, y_pred) (the loss's value negated)."""

    def values(self, y_true, y_pred):
        return -self._loss.per_example(y_true, y_pred)


class RootMeanSquaredError(Metric):
    """sqrt(the running mean of the squared errors), over every element."""
    name = "root_mean_squared_error"

    def update(self, y_true, y_pred, sample_weight=None):
        y_true = fit_labels(y_true, y_pred, self.label_kind, type(self).name)
        err = gc.square(y_pred - gc.cast(y_true, y_pred.dtype))
        updates, result = self.update_values(err, sample_weight)
        return updates, gc.sqrt(result)


class Sum(Metric):
    """The running sum of the values."""
    name = "sum"

    def update(self, y_true, y_pred, sample_weight=None):
        """As a compiled metric: the sum of the predictions (Keras's Sum.update_state takes
        the values alone: update_values)."""
        return self.update_values(y_pred, sample_weight)

    def update_values(self, values, sample_weight=None):
        """Keras's Sum.update_state: the (weighted) values added up."""
        total, _ = _weighted_sums(gc.cast(values, gc.float32), sample_weight, gc.sum)
        updates, _ = self.accumulate(total, gc.constant(1.0))
        return updates, updates[0][1]


METRICS = {cls.name: cls for cls in (
    Accuracy, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy,
    SparseTopKCategoricalAccuracy, TopKCategoricalAccuracy, MeanAbsoluteError,
    MeanSquaredError, Precision, Recall, AUC, R2Score, TruePositives, FalsePositives,
    TrueNegatives, FalseNegatives, BinaryCrossentropy, CategoricalCrossentropy,
    SparseCategoricalCrossentropy, Hinge, SquaredHinge, CategoricalHinge, KLDivergence,
    LogCoshError, MeanAbsolutePercentageError, MeanSquaredLogarithmicError, Poisson,
    CosineSimilarity, RootMeanSquaredError, SensitivityAtSpecificity,
    SpecificityAtSensitivity, PrecisionAtRecall, RecallAtPrecision)}
ALIASES = {"acc": "accuracy", "mae": "mean_absolute_error", "mse": "mean_squared_error",
           "top_k": "top_k_categorical_accuracy", "mape": "mean_absolute_percentage_error",
           "msle": "mean_squared_logarithmic_error"}


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


# the functional forms Keras exports in keras.metrics (per-example values of graphc tensors)
binary_accuracy = lambda y_true, y_pred, threshold=0.5: BinaryAccuracy(threshold=threshold).values(
    gc.cast(y_true, gc.float32), y_pred)
categorical_accuracy = lambda y_true, y_pred: CategoricalAccuracy().values(y_true, y_pred)
sparse_categorical_accuracy = lambda y_true, y_pred: SparseCategoricalAccuracy().values(
    y_true, y_pred)
top_k_categorical_accuracy = lambda y_true, y_pred, k=5: TopKCategoricalAccuracy(k).values(
    y_true, y_pred)
sparse_top_k_categorical_accuracy = lambda y_true, y_pred, k=5: \
    SparseTopKCategoricalAccuracy(k).values(y_true, y_pred)
for _name in ("mean_squared_error", "mean_absolute_error", "mean_absolute_percentage_error",
              "mean_squared_logarithmic_error", "binary_crossentropy", "categorical_crossentropy",
              "sparse_categorical_crossentropy", "hinge", "squared_hinge", "categorical_hinge",
              "kl_divergence", "log_cosh", "poisson", "huber"):
    globals()[_name] = getattr(losses, _name)


# the per-class and correlation metrics, in a module of their own
from . import metrics_more  # noqa: E402
METRICS.update({cls.name: cls for cls in metrics_more.METRICS})
globals().update({cls.__name__: cls for cls in metrics_more.METRICS})
pearson_correlation = metrics_more.pearson_correlation
concordance_correlation = metrics_more.concordance_correlation
binary_focal_crossentropy = losses.binary_focal_crossentropy
categorical_focal_crossentropy = losses.categorical_focal_crossentropy


def serialize(metric):
    return {"class_name": type(metric).__name__, "config": metric.get_config()}


def deserialize(config):
    for cls in METRICS.values():
        if cls.__name__ == config["class_name"]:
            return cls.from_config(config["config"])
    raise GraphcError(f"unknown metric class {config['class_name']!r}")
