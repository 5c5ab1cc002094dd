"""The metrics kept as per-class counts over the epoch (FBetaScore, F1Score, the IoU family)
and the correlation metrics, as Keras 3 computes them; gk.metrics re-exports them."""
import numpy as np

import graphc as gc
from graphc.errors import GraphcError

from . import distribution
from .labels import LIKE_PREDICTIONS, fit as fit_labels
from .metrics import EPS, Metric, MeanMetricWrapper


class _Counts(Metric):
    """A metric whose state is named arrays of counts summed over the epoch (reset to 0),
    its result computed from the totals by `result_of`."""
    label_kind = LIKE_PREDICTIONS

    def _make_state(self, shapes):
        if self._state is None:
            with gc.get_default_graph().root_scope():
                self._state = tuple(gc.Variable(np.zeros(shape, np.float32),
                                                name=f"metrics/{self.name}/{what}",
                                                trainable=False)
                                    for what, shape in shapes)
        return self._state

    def reset(self, session):
        for var in self._state or ():
            session.set_value(var, np.zeros(var.shape, np.float32))

    def _add(self, batch):
        batch = distribution.sum_over_ranks(batch)
        updates = [(v, v + b) for v, b in zip(self._state, batch)]
        return updates, self.result_of(*[new for _, new in updates])


class FBetaScore(_Counts):
    """The F-beta score from true/false positive and false negative counts per class (y_pred
    above threshold, or each row's largest value when threshold is None); average None
    gives one score per class, "micro" pools the counts, "macro" averages the classes,
    "weighted" weighs them by their number of true labels."""
    name = "fbeta_score"

    def __init__(self, average=None, beta=1.0, threshold=None, name=None, dtype=None):
        super().__init__(name)
        if average not in (None, "micro", "macro", "weighted"):
            raise GraphcError(f"average must be None, micro, macro or weighted, got "
                              f"{average!r}")
        if not beta > 0:
            raise GraphcError(f"beta must be positive, got {beta!r}")
        self.average, self.beta, self.threshold = average, float(beta), threshold

    def update(self, y_true, y_pred, sample_weight=None):
        t = gc.cast(fit_labels(y_true, y_pred, self.label_kind, type(self).name), gc.float32)
        p = gc.cast(y_pred, gc.float32)
        if self.threshold is None:
            top = gc.max(p, axis=-1, keepdims=True)
            p = gc.logical_and(p >= top, gc.abs(p) > 1e-9)
        else:
            p = p > self.threshold
        p = gc.cast(p, gc.float32)
        classes = y_pred.shape[-1]
        shape = () if self.average == "micro" else (classes,)
        self._make_state([(w, shape) for w in ("tp", "fp", "fn", "weights")])
        axis = None if self.average == "micro" else 0
        w = 1.0 if sample_weight is None else \
            gc.expand_dims(gc.cast(sample_weight, gc.float32), 1)  # one per example
        return self._add([gc.sum(w * p * t, axis=axis), gc.sum(w * p * (1 - t), axis=axis),
                          gc.sum(w * (1 - p) * t, axis=axis), gc.sum(w * t, axis=axis)])

    def result_of(self, tp, fp, fn, weights):
        precision = tp / (tp + fp + EPS)
        recall = tp / (tp + fn + EPS)
        b2 = self.beta ** 2
        score = precision * recall / (b2 * precision + recall + EPS) * (1 + b2)
        if self.average == "weighted":
            return gc.sum(score * weights / (gc.sum(weights) + EPS))
        return gc.mean(score) if self.average is not None else score

    def get_config(self):
        return {"name": self.name, "average": self.average, "beta": self.beta,
                "threshold": self.threshold}


class F1Score(FBetaScore):
    name = "f1_score"

    def __init__(self, average=None, threshold=None, name=None, dtype=None):
        super().__init__(average, 1.0, threshold, name)

    def get_config(self):
        config = super().get_config()
        config.pop("beta")
        return config


class IoU(_Counts):
    """Intersection over union from the epoch's confusion matrix (true class x predicted
    class): per target class TP / (TP + FP + FN), averaged over the target classes present
    (a class that never occurs counts 0 and is left out of the mean). Labels and predictions
    are class ids (sparse) or scores whose argmax is taken; ignore_class is left out; a
    sample weight weighs its label's count (by its integer part unless dtype is a float
    type, as Keras counts)."""
    name = "io_u"  # Keras's snake case of the class name

    def __init__(self, num_classes, target_class_ids, name=None, dtype=None,
                 ignore_class=None, sparse_y_true=True, sparse_y_pred=True, axis=-1):
        super().__init__(name)
        self.num_classes = int(num_classes)
        self.target_class_ids = [int(c) for c in target_class_ids]
        if any(not 0 <= c < self.num_classes for c in self.target_class_ids):
            raise GraphcError(f"target_class_ids {self.target_class_ids} must be in "
                              f"[0, {self.num_classes})")
        self.ignore_class, self.axis, self.dtype = ignore_class, axis, dtype
        self.sparse_y_true, self.sparse_y_pred = sparse_y_true, sparse_y_pred

    def _ids(self, y_true, y_pred):
        t = y_true if self.sparse_y_true else gc.argmax(y_true, axis=self.axis)
        p = y_pred if self.sparse_y_pred else gc.argmax(y_pred, axis=self.axis)
        return t, p

    def update(self, y_true, y_pred, sample_weight=None):
        t, p = self._ids(y_true, y_pred)
        t = gc.cast(gc.reshape(gc.cast(t, gc.float32), (-1,)), gc.int32)
        p = gc.cast(gc.reshape(gc.cast(p, gc.float32), (-1,)), gc.int32)
        n = self.num_classes
        # out-of-range ids (and ignore_class) add nothing: one_hot of them is all zeros
        keep = gc.logical_and(gc.logical_and(t >= 0, t < n), gc.logical_and(p >= 0, p < n))
        if self.ignore_class is not None:
            keep = gc.logical_and(keep, gc.not_equal(t, int(self.ignore_class)))
        weight = gc.cast(keep, gc.float32)
        if sample_weight is not None:  # one per label (Keras flattens them as the labels)
            weight = weight * gc.reshape(self._counted(sample_weight), (-1,))
        weight = gc.expand_dims(weight, -1)
        safe_t, safe_p = gc.where(keep, t, gc.zeros_like(t)), gc.where(keep, p, gc.zeros_like(p))
        cm = gc.matmul(gc.transpose(gc.one_hot(safe_t, n, dtype=gc.float32) * weight, (1, 0)),
                       gc.one_hot(safe_p, n, dtype=gc.float32))
        self._make_state([("total_cm", (n, n))])
        return self._add([cm])

    def _counted(self, sample_weight):
        """Keras's IoU counts in its dtype, "int" by default: a weight by its integer part."""
        if self.dtype is None or "int" in str(self.dtype):
            return gc.cast(gc.cast(sample_weight, gc.int32), gc.float32)
        return gc.cast(sample_weight, gc.float32)

    def result_of(self, cm):
        n = self.num_classes
        tp = gc.sum(cm * gc.constant(np.eye(n, dtype=np.float32)), axis=0)
        denominator = gc.sum(cm, axis=0) + gc.sum(cm, axis=1) - tp
        ids = gc.constant(np.asarray(self.target_class_ids, np.int32))
        tp, denominator = gc.gather(tp, ids), gc.gather(denominator, ids)
        valid = gc.cast(denominator > 1e-9, gc.float32)
        iou = gc.where(denominator > 1e-9, tp / (denominator + EPS), gc.zeros_like(tp))
        return gc.sum(iou) / (gc.sum(valid) + EPS)

    def get_config(self):
        return {"name": self.name, "num_classes": self.num_classes,
                "target_class_ids": self.target_class_ids, "ignore_class": self.ignore_class,
                "sparse_y_true": self.sparse_y_true, "sparse_y_pred": self.sparse_y_pred,
                "axis": self.axis}


class MeanIoU(IoU):
    name = "mean_io_u"

    def __init__(self, num_classes, name=None, dtype=None, ignore_class=None,
                 sparse_y_true=True, sparse_y_pred=True, axis=-1):
        super().__init__(num_classes, range(num_classes), name, dtype, ignore_class,
                         sparse_y_true, sparse_y_pred, axis)

    def get_config(self):
        config = super().get_config()
        config.pop("target_class_ids")
        return config


class BinaryIoU(IoU):
    """IoU of the classes 0 and 1, predictions at or above threshold being 1."""
    name = "binary_io_u"

    def __init__(self, target_class_ids=(0, 1), threshold=0.5, name=None, dtype=None):
        super().__init__(2, target_class_ids, name, dtype)
        self.threshold = float(threshold)

    def _ids(self, y_true, y_pred):
        return y_true, gc.cast(gc.cast(y_pred, gc.float32) >= self.threshold, gc.int32)

    def get_config(self):
        return {"name": self.name, "target_class_ids": self.target_class_ids,
                "threshold": self.threshold}


class OneHotIoU(IoU):
    """IoU with one-hot labels (and scores as predictions)."""
    name = "one_hot_io_u"

    def __init__(self, num_classes, target_class_ids, name=None, dtype=None,
                 ignore_class=None, sparse_y_pred=False, axis=-1):
        super().__init__(num_classes, target_class_ids, name, dtype, ignore_class, False,
                         sparse_y_pred, axis)

    def get_config(self):
        config = super().get_config()
        config.pop("sparse_y_true")
        return config


class OneHotMeanIoU(OneHotIoU):
    name = "one_hot_mean_io_u"

    def __init__(self, num_classes, name=None, dtype=None, ignore_class=None,
                 sparse_y_pred=False, axis=-1):
        super().__init__(num_classes, range(num_classes), name, dtype, ignore_class,
                         sparse_y_pred, axis)

    def get_config(self):
        config = super().get_config()
        config.pop("target_class_ids")
        return config


def _same_rank(y_true, y_pred):
    if y_true.ndim == y_pred.ndim - 1:
        return gc.expand_dims(y_true, -1)
    if y_true.ndim == y_pred.ndim + 1 and y_true.shape[-1] == 1:
        return gc.squeeze(y_true, axis=-1)
    return y_true


def pearson_correlation(y_true, y_pred, axis=-1):
    """The Pearson correlation of y_true and y_pred along axis, per example."""
    y_true = _same_rank(gc.cast(y_true, y_pred.dtype), y_pred)
    t = y_true - gc.mean(y_true, axis=axis, keepdims=True)
    p = y_pred - gc.mean(y_pred, axis=axis, keepdims=True)
    t = t / gc.sqrt(gc.mean(gc.square(t - gc.mean(t, axis=axis, keepdims=True)), axis=axis,
                            keepdims=True))
    p = p / gc.sqrt(gc.mean(gc.square(p - gc.mean(p, axis=axis, keepdims=True)), axis=axis,
                            keepdims=True))
    return gc.mean(t * p, axis=axis)


def concordance_correlation(y_true, y_pred, axis=-1):
    """Lin's concordance correlation along axis, per example, as Keras 3 computes it (its
    covariance term centres y_true on y_pred's mean)."""
    y_true = _same_rank(gc.cast(y_true, y_pred.dtype), y_pred)
    t_mean = gc.mean(y_true, axis=axis, keepdims=True)
    p_mean = gc.mean(y_pred, axis=axis, keepdims=True)

    def var(x):
        c = x - gc.mean(x, axis=axis, keepdims=True)
        return gc.mean(gc.square(c), axis=axis, keepdims=True)
    t_var, p_var = var(y_true - t_mean), var(y_pred - p_mean)
    covar = (y_true - p_mean) * (y_pred - p_mean)
    norm = t_var + p_var + gc.square(t_mean - p_mean)
    return gc.mean(2.0 * covar / (norm + EPS), axis=axis)


class PearsonCorrelation(MeanMetricWrapper):
    name = "pearson_correlation"

    def __init__(self, name="pearson_correlation", dtype=None, axis=-1):
        super().__init__(pearson_correlation, name, axis=axis)
        self.axis = axis

    def get_config(self):
        return {"name": self.name, "axis": self.axis}


class ConcordanceCorrelation(PearsonCorrelation):
    name = "concordance_correlation"

    def __init__(self, name="concordance_correlation", dtype=None, axis=-1):
        MeanMetricWrapper.__init__(self, concordance_correlation, name, axis=axis)
        self.axis = axis


METRICS = (FBetaScore, F1Score, IoU, MeanIoU, BinaryIoU, OneHotIoU, OneHotMeanIoU,
           PearsonCorrelation, ConcordanceCorrelation)
