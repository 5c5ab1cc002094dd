"""Losses: per-example values reduced over the batch, as Keras 3 reduces them.

Each loss computes a per-example tensor from (y_true, y_pred); calling a loss object reduces
it with its `reduction` (by default "sum_over_batch_size", the mean of the weighted values, 0
for an empty batch; None or "none" keeps them). The functional forms (gk.losses.mse, ...) give
the per-example values. The cross-entropies take probabilities by default and logits with
from_logits=True. When the predictions come straight out of a softmax or sigmoid op, the loss
reads the logits under it, so the log never sees a rounded-to-zero probability.
"""
import numpy as np

import graphc as gc
from graphc.errors import GraphcError, ArgumentError

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


def _divide_no_nan(total, divisor):
    return gc.where(gc.equal(divisor, 0.0), 0.0 * total, total / gc.maximum(divisor, 1e-30))


def _count(values):
    return gc.sum(gc.broadcast_to(gc.constant(1.0), values.shape))


# Keras's reductions of the (weighted) per-example values; None keeps them
REDUCTIONS = {
    None: lambda values, weights: values,
    "none": lambda values, weights: values,
    "sum": lambda values, weights: gc.sum(values),
    "sum_over_batch_size": lambda values, weights: _divide_no_nan(gc.sum(values),
                                                                  _count(values)),
    "mean": lambda values, weights: _divide_no_nan(gc.sum(values), _count(values)),
    "mean_with_sample_weight": lambda values, weights: _divide_no_nan(
        gc.sum(values), _count(values) if weights is None else gc.sum(weights)),
}


DEFAULT_REDUCTION = "sum_over_batch_size"  # Keras 3's: a loss object's call gives a scalar


def same_rank(values, weights):
    """Keras's squeeze_or_expand_to_same_rank: where one has one more axis, of size 1, the
    other (of rank 1) gains a trailing axis, or else that axis is squeezed."""
    def fit(longer, shorter):
        if longer.ndim != shorter.ndim + 1 or longer.shape[-1] != 1:
            return longer, shorter
        if shorter.ndim == 1:
            return longer, gc.expand_dims(shorter, -1)
        return gc.squeeze(longer, axis=-1), shorter
    weights, values = fit(weights, values)
    values, weights = fit(values, weights)
    return values, weights


def masked(weights, mask, reduction):
    """Keras's apply_mask: the sample weights times the mask, which the averaging reductions
    scale by total / valid so that the masked-out values leave the mean."""
    if reduction in ("mean", "sum_over_batch_size"):
        mask = mask * _divide_no_nan(_count(mask), gc.sum(mask))
    if weights is None:
        return mask
    mask, weights = same_rank(mask, weights)
    return weights * mask


class Loss:
    """Callable: loss(y_true, y_pred, sample_weight=None) -> the per-example values, shape
    (batch,), times the sample weights, reduced as Keras reduces them: "sum_over_batch_size"
    (the default), "sum", "mean", "mean_with_sample_weight", or None / "none" (kept).

    y_true comes to per_example in the shape label_kind names (see labels.py)."""

    name = None
    label_kind = LIKE_PREDICTIONS

    def __init__(self, from_logits=False, reduction=DEFAULT_REDUCTION):
        if reduction not in REDUCTIONS:
            raise ArgumentError(f"{type(self).__name__}: reduction must be one of "
                              f"{sorted(map(str, REDUCTIONS))}, got {reduction!r}")
        self.from_logits, self.reduction = from_logits, reduction

    def __call__(self, y_true, y_pred, sample_weight=None):
        labels = self.labels(y_true, y_pred)
        values = self.per_example(labels, y_pred)
        weights = None if sample_weight is None else gc.cast(sample_weight, values.dtype)
        valid = self.valid(labels)
        if valid is not None:
            weights = masked(weights, gc.cast(valid, values.dtype), self.reduction)
        if weights is not None:
            values, weights = same_rank(values, weights)
            values = values * weights
        if tuple(values.shape) in ((), (0,)):  # Keras leaves these as they are
            return values
        return REDUCTIONS[self.reduction](values, weights)

    def labels(self, y_true, y_pred):
        return fit_labels(y_true, y_pred, self.label_kind, self.name)

    def valid(self, labels):
        """Where the per-example values count (a mask of their shape), or None: all."""
        return None

    def get_config(self):
        return {"from_logits": self.from_logits}


class MeanSquaredError(Loss):
    name = "mean_squared_error"

    def __init__(self, reduction=DEFAULT_REDUCTION):
        super().__init__(reduction=reduction)

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

    def __init__(self, delta=1.0, reduction=DEFAULT_REDUCTION):
        super().__init__(reduction=reduction)
        self.delta = float(delta)

    def per_example(self, y_true, y_pred):
        err = gc.abs(y_pred - _float(y_true, y_pred))
        small = gc.minimum(err, self.delta)
        return _mean_last(0.5 * gc.square(small) + self.delta * (err - small))

    def get_config(self):
        return {"delta": self.delta}


class _Smoothed(Loss):
    """A cross-entropy with Keras's label_smoothing: the labels move that fraction of the way
    to the uniform distribution over `classes` (2 for the binary ones, else the last axis)."""
    classes = None

    def __init__(self, from_logits=False, label_smoothing=0.0, reduction=DEFAULT_REDUCTION):
        super().__init__(from_logits, reduction)
        self.label_smoothing = float(label_smoothing)

    def smoothed(self, y_true, y_pred):
        y_true = _float(y_true, y_pred)
        if not self.label_smoothing:
            return y_true
        classes = self.classes or y_pred.shape[-1]
        return y_true * (1.0 - self.label_smoothing) + self.label_smoothing / classes

    def get_config(self):
        return {"from_logits": self.from_logits, "label_smoothing": self.label_smoothing}


class BinaryCrossentropy(_Smoothed):
    name = "binary_crossentropy"
    classes = 2

    def per_example(self, y_true, y_pred):
        y_true = self.smoothed(y_true, y_pred)
        logits = y_pred if self.from_logits else _logits_under(y_pred, "sigmoid")
        if logits is not None:
            return _mean_last(gc.nn.sigmoid_cross_entropy(logits, y_true))
        p = gc.clip(y_pred, EPSILON, 1 - EPSILON)
        return _mean_last(-(y_true * gc.log(p) + (1 - y_true) * gc.log(1 - p)))


class CategoricalCrossentropy(_Smoothed):
    """y_true: one-hot (or probability) rows."""
    name = "categorical_crossentropy"

    def per_example(self, y_true, y_pred):
        y_true = self.smoothed(y_true, y_pred)
        logits = y_pred if self.from_logits else _logits_under(y_pred, "softmax")
        if logits is not None:
            return gc.nn.softmax_cross_entropy(logits, y_true)
        p = y_pred / gc.sum(y_pred, axis=-1, keepdims=True)
        return -gc.sum(y_true * gc.log(gc.clip(p, EPSILON, 1 - EPSILON)), axis=-1)


class SparseCategoricalCrossentropy(Loss):
    """y_true: class indices, of shape (batch,) or (batch, 1). Labels equal to ignore_class
    (a "void" class, -1 or 255 say) give 0 and, as in Keras, leave the loss's mean (the
    metric form averages their zeros in)."""
    name = "sparse_categorical_crossentropy"
    label_kind = CLASS_INDICES

    def __init__(self, from_logits=False, ignore_class=None, reduction=DEFAULT_REDUCTION,
                 **kwargs):
        super().__init__(from_logits, reduction)
        self.ignore_class = None if ignore_class is None else int(ignore_class)

    def valid(self, labels):
        return None if self.ignore_class is None else \
            gc.not_equal(class_indices(labels), self.ignore_class)

    def per_example(self, y_true, y_pred):
        y_true = class_indices(y_true)
        valid = self.valid(y_true)
        if valid is not None:  # an ignored label reads class 0, its value then zeroed
            y_true = gc.where(valid, y_true, gc.zeros_like(y_true))
        logits = y_pred if self.from_logits else _logits_under(y_pred, "softmax")
        if logits is None:
            p = y_pred / gc.sum(y_pred, axis=-1, keepdims=True)
            logits = gc.log(gc.clip(p, EPSILON, 1 - EPSILON))
        values = gc.nn.sparse_softmax_cross_entropy(logits, y_true)
        return values if valid is None else gc.where(valid, values, gc.zeros_like(values))

    def get_config(self):
        return {"from_logits": self.from_logits, "ignore_class": self.ignore_class}


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

    def __init__(self, axis=-1, reduction=DEFAULT_REDUCTION):
        super().__init__(reduction=reduction)
        self.axis = axis

    def per_example(self, y_true, y_pred):
        y_true = _float(y_true, y_pred)
        return -gc.sum(_l2_normalize(y_true, self.axis) * _l2_normalize(y_pred, self.axis),
                       axis=self.axis)

    def get_config(self):
        return {"axis": self.axis}


class BinaryFocalCrossentropy(Loss):
    """Binary cross-entropy weighted by (1 - p_t)^gamma, p_t the probability given to the
    true label (and by alpha / 1 - alpha with apply_class_balancing), as Keras 3 computes
    it: from probabilities clipped to [1e-7, 1 - 1e-7] (logits go through a sigmoid)."""
    name = "binary_focal_crossentropy"

    def __init__(self, apply_class_balancing=False, alpha=0.25, gamma=2.0, from_logits=False,
                 label_smoothing=0.0, axis=-1, reduction=DEFAULT_REDUCTION, **kwargs):
        super().__init__(from_logits, reduction)
        self.apply_class_balancing, self.alpha, self.gamma = apply_class_balancing, alpha, gamma
        self.label_smoothing, self.axis = float(label_smoothing), axis

    def per_example(self, y_true, y_pred):
        t = _float(y_true, y_pred)
        if self.label_smoothing:
            t = t * (1.0 - self.label_smoothing) + 0.5 * self.label_smoothing
        p = gc.sigmoid(y_pred) if self.from_logits else y_pred
        clipped = gc.clip(p, EPSILON, 1 - EPSILON)
        bce = -(t * gc.log(clipped) + (1 - t) * gc.log(1 - clipped))
        p_t = t * p + (1 - t) * (1 - p)
        focal = gc.pow(1.0 - p_t, float(self.gamma)) * bce
        if self.apply_class_balancing:
            focal = (t * self.alpha + (1 - t) * (1 - self.alpha)) * focal
        return gc.mean(focal, axis=self.axis)

    def get_config(self):
        return {"apply_class_balancing": self.apply_class_balancing, "alpha": self.alpha,
                "gamma": self.gamma, "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing, "axis": self.axis}


class CategoricalFocalCrossentropy(Loss):
    """Categorical cross-entropy with each class's term weighted by alpha * (1 - p)^gamma
    (probabilities renormalized and clipped, as Keras 3)."""
    name = "categorical_focal_crossentropy"

    def __init__(self, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction=DEFAULT_REDUCTION, **kwargs):
        super().__init__(from_logits, reduction)
        self.alpha, self.gamma = alpha, gamma
        self.label_smoothing, self.axis = float(label_smoothing), axis

    def per_example(self, y_true, y_pred):
        t = _float(y_true, y_pred)
        if self.label_smoothing:
            t = t * (1.0 - self.label_smoothing) + self.label_smoothing / y_pred.shape[-1]
        p = gc.nn.softmax(y_pred, axis=self.axis) if self.from_logits else y_pred
        p = gc.clip(p / gc.sum(p, axis=self.axis, keepdims=True), EPSILON, 1 - EPSILON)
        weight = self.alpha * gc.pow(1.0 - p, float(self.gamma))
        return gc.sum(weight * -t * gc.log(p), axis=self.axis)

    def get_config(self):
        return {"alpha": self.alpha, "gamma": self.gamma, "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing, "axis": self.axis}


def _over_batch(value, like):
    """A loss computed over the whole batch (axis=None) as a value for each example, so
    that their mean is it."""
    rest = tuple(range(1, like.ndim))
    zeros = gc.sum(like * 0.0, axis=rest) if rest else like * 0.0
    return zeros + value


class Dice(Loss):
    """1 - 2 sum(y_true * y_pred) / (sum(y_true) + sum(y_pred) + 1e-7), summed over `axis`
    (None: over the whole batch, one value, as Keras)."""
    name = "dice"

    def __init__(self, reduction=DEFAULT_REDUCTION, name="dice", axis=None, **kwargs):
        super().__init__(reduction=reduction)
        self.axis = axis

    def _axis(self):
        return tuple(self.axis) if isinstance(self.axis, list) else self.axis

    def per_example(self, y_true, y_pred):
        t = _float(y_true, y_pred)
        inter = gc.sum(t * y_pred, axis=self._axis())
        dice = 1.0 - 2.0 * inter / (gc.sum(t, axis=self._axis())
                                    + gc.sum(y_pred, axis=self._axis()) + EPSILON)
        return _over_batch(dice, y_pred) if self.axis is None else dice

    def get_config(self):
        return {"axis": self.axis}


class Tversky(Dice):
    """1 - TP / (TP + alpha FP + beta FN + 1e-7), with soft counts from y_true and y_pred."""
    name = "tversky"

    def __init__(self, alpha=0.5, beta=0.5, reduction=DEFAULT_REDUCTION, name="tversky",
                 axis=None, **kwargs):
        super().__init__(reduction=reduction, axis=axis)
        self.alpha, self.beta = alpha, beta

    def per_example(self, y_true, y_pred):
        t = _float(y_true, y_pred)
        axis = self._axis()
        tp = gc.sum(t * y_pred, axis=axis)
        fp = gc.sum((1 - y_pred) * t, axis=axis)
        fn = gc.sum(y_pred * (1 - t), axis=axis)
        loss = 1.0 - tp / (tp + fp * self.alpha + fn * self.beta + EPSILON)
        return _over_batch(loss, y_pred) if self.axis is None else loss

    def get_config(self):
        return {"alpha": self.alpha, "beta": self.beta, "axis": self.axis}


class CategoricalGeneralizedCrossEntropy(Loss):
    """(1 - p^q) / q, p the probability of the (integer) true class: cross-entropy as q -> 0,
    mean absolute error at q = 1; robust to noisy labels."""
    name = "categorical_generalized_cross_entropy"
    label_kind = CLASS_INDICES

    def __init__(self, q=0.5, reduction=DEFAULT_REDUCTION, **kwargs):
        super().__init__(reduction=reduction)
        if not 0 < q < 1:
            raise GraphcError(f"CategoricalGeneralizedCrossEntropy q must be in (0, 1), got "
                              f"{q!r}")
        self.q = float(q)

    def per_example(self, y_true, y_pred):
        hot = gc.one_hot(class_indices(y_true), y_pred.shape[-1], dtype=y_pred.dtype)
        p = gc.sum(y_pred * hot, axis=-1)
        return (1.0 - gc.pow(p, self.q)) / self.q

    def get_config(self):
        return {"q": self.q}


def circle(y_true, y_pred, ref_labels=None, ref_embeddings=None, remove_diagonal=True,
           gamma=80, margin=0.4):
    """Keras 3's Circle loss of each embedding (rows of y_pred, L2-normalized) against the
    reference embeddings (y_pred itself by default) and their integer labels: softplus of
    the logsumexp of gamma-weighted distances to positives (same label, but itself with
    remove_diagonal) plus that to negatives; 0 where a row has no positive."""
    labels = gc.cast(gc.reshape(y_true, (-1,)), gc.int32)
    refs = y_pred if ref_embeddings is None else ref_embeddings
    ref_labels = labels if ref_labels is None else gc.cast(gc.reshape(ref_labels, (-1,)),
                                                           gc.int32)
    distance = gc.maximum(1.0 - y_pred @ gc.transpose(refs), 0.0)
    positive = gc.equal(gc.expand_dims(labels, 1), gc.expand_dims(ref_labels, 0))
    negative = gc.logical_not(positive)
    if remove_diagonal:  # row i against reference i, at run-time sizes
        rows = gc.cumsum(gc.ones_like(labels), axis=0)
        cols = gc.cumsum(gc.ones_like(ref_labels), axis=0)
        positive = gc.logical_and(positive, gc.not_equal(gc.expand_dims(rows, 1),
                                                         gc.expand_dims(cols, 0)))
    pos_weights = gc.maximum((margin + distance) * gc.cast(positive, distance.dtype), 0.0)
    neg_weights = gc.maximum((1 + margin - distance) * gc.cast(negative, distance.dtype), 0.0)
    pos = -gamma * pos_weights * (margin - distance)
    neg = gamma * neg_weights * (1 - margin - distance)
    # -1e30 stands for Keras's -inf: a row without positives (or negatives) sums to a
    # softplus of 0, with no NaN in logsumexp or its gradient
    lse = [gc.logsumexp(gc.where(m, v, -1e30), axis=1)
           for m, v in ((positive, pos), (negative, neg))]
    return gc.softplus(lse[0] + lse[1])


class Circle(Loss):
    """The mean of circle() over the examples whose loss is above 0 (Keras masks the
    others out of its sum_over_batch_size)."""
    name = "circle"
    label_kind = CLASS_INDICES

    def __init__(self, gamma=80.0, margin=0.4, remove_diagonal=True,
                 reduction=DEFAULT_REDUCTION, name="circle", **kwargs):
        super().__init__(reduction=reduction)
        self.gamma, self.margin = float(gamma), float(margin)
        self.remove_diagonal = bool(remove_diagonal)

    def per_example(self, y_true, y_pred):
        loss = circle(class_indices(y_true), y_pred, remove_diagonal=self.remove_diagonal,
                      gamma=self.gamma, margin=self.margin)
        valid = gc.cast(loss > 0, loss.dtype)
        count = gc.sum(valid)
        total = gc.sum(gc.ones_like(valid))
        # each valid example weighs total / count, so that the batch mean is their mean
        return loss * valid * gc.where(count > 0, total / gc.maximum(count, 1.0), 0.0)

    def get_config(self):
        return {"gamma": self.gamma, "margin": self.margin,
                "remove_diagonal": self.remove_diagonal}


circle.loss_class = Circle


def ctc(y_true, y_pred):
    """Keras 3's CTC loss of each sequence: integer labels y_true (batch, labels), 0 the
    blank and the padding after a sequence's labels, against logits y_pred (batch, steps,
    classes), every step counted."""
    from .ops_ctc import ctc_loss
    if y_true.ndim != 2 or y_pred.ndim != 3:
        raise GraphcError(f"ctc takes labels (batch, labels) and logits (batch, steps, "
                          f"classes), got shapes {tuple(y_true.shape)} and "
                          f"{tuple(y_pred.shape)}")
    label_length = gc.sum(gc.cast(gc.not_equal(y_true, 0), gc.int32), axis=-1)
    steps = gc.sum(gc.ones_like(y_pred[:, :, 0]), axis=1)
    return ctc_loss(y_true, y_pred, label_length, steps, mask_index=0)


class CTC(Loss):
    """ctc() of each sequence, reduced over the batch."""
    name = "ctc"

    def __init__(self, reduction=DEFAULT_REDUCTION, name="ctc", **kwargs):
        super().__init__(reduction=reduction)

    def labels(self, y_true, y_pred):
        return y_true  # labels and logits have shapes of their own

    def per_example(self, y_true, y_pred):
        return ctc(y_true, y_pred)

    def get_config(self):
        return {}


ctc.loss_class = CTC


class _FunctionLoss(Loss):
    """A function of (y_true, y_pred, **kwargs) giving per-example values, as a loss with a
    reduction: compile wraps a loss function in one, as Keras does."""

    def __init__(self, fn, reduction=DEFAULT_REDUCTION, name=None, **kwargs):
        super().__init__(reduction=reduction)
        self.fn, self.kwargs = fn, kwargs
        self.name = name or getattr(fn, "__name__", "loss")

    def labels(self, y_true, y_pred):
        return y_true  # the function's own business

    def per_example(self, y_true, y_pred):
        return self.fn(y_true, y_pred, **self.kwargs)


def as_loss(loss):
    """A compiled loss as a Loss object (a function wrapped)."""
    return loss if isinstance(loss, Loss) else _FunctionLoss(loss)


LOSSES = {cls.name: cls for cls in (
    MeanSquaredError, MeanAbsoluteError, Huber, BinaryCrossentropy, CategoricalCrossentropy,
    SparseCategoricalCrossentropy, Hinge, SquaredHinge, CategoricalHinge, KLDivergence, LogCosh,
    MeanAbsolutePercentageError, MeanSquaredLogarithmicError, Poisson, CosineSimilarity,
    BinaryFocalCrossentropy, CategoricalFocalCrossentropy, Dice, Tversky,
    CategoricalGeneralizedCrossEntropy, Circle, CTC)}
ALIASES = {"mse": "mean_squared_error", "mae": "mean_absolute_error",
           "mape": "mean_absolute_percentage_error", "msle": "mean_squared_logarithmic_error",
           "kld": "kl_divergence", "logcosh": "log_cosh", "huber_loss": "huber"}


def _functional(cls, *options):
    """Keras's functional form of a loss class: fn(y_true, y_pred, **options) -> per-example
    values (compile(loss=gk.losses.categorical_crossentropy) saves as the class would)."""
    def fn(y_true, y_pred, **kwargs):
        return cls(reduction=None, **kwargs)(y_true, y_pred)
    fn.__name__ = fn.__qualname__ = cls.name
    fn.__doc__ = f"The per-example {cls.name} of (y_true, y_pred); options: {options or 'none'}."
    fn.loss_class = cls
    return fn


mean_squared_error = _functional(MeanSquaredError)
mean_absolute_error = _functional(MeanAbsoluteError)
huber = _functional(Huber, "delta")
binary_crossentropy = _functional(BinaryCrossentropy, "from_logits", "label_smoothing")
categorical_crossentropy = _functional(CategoricalCrossentropy, "from_logits", "label_smoothing")
sparse_categorical_crossentropy = _functional(SparseCategoricalCrossentropy, "from_logits",
                                              "ignore_class")
hinge = _functional(Hinge)
squared_hinge = _functional(SquaredHinge)
categorical_hinge = _functional(CategoricalHinge)
kl_divergence = _functional(KLDivergence)
log_cosh = _functional(LogCosh)
mean_absolute_percentage_error = _functional(MeanAbsolutePercentageError)
mean_squared_logarithmic_error = _functional(MeanSquaredLogarithmicError)
poisson = _functional(Poisson)
cosine_similarity = _functional(CosineSimilarity, "axis")
binary_focal_crossentropy = _functional(BinaryFocalCrossentropy, "apply_class_balancing",
                                        "alpha", "gamma", "from_logits", "label_smoothing",
                                        "axis")
categorical_focal_crossentropy = _functional(CategoricalFocalCrossentropy, "alpha", "gamma",
                                             "from_logits", "label_smoothing", "axis")
dice = _functional(Dice, "axis")
tversky = _functional(Tversky, "alpha", "beta", "axis")
categorical_generalized_cross_entropy = _functional(CategoricalGeneralizedCrossEntropy, "q")


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
    return {"name": loss.name, "config": {**loss.get_config(), "reduction": loss.reduction}}


def deserialize(config):
    """A loss from serialize's dict (or a name)."""
    return get(config)
