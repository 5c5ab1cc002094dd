"""Labels against predictions, for losses and metrics.

A loss or metric takes its labels (y_true) in one of two shapes:
    LIKE_PREDICTIONS  the predictions' shape (mse, binary and categorical crossentropy, ...)
    CLASS_INDICES     the predictions' shape without the last (class) axis
As in Keras, labels with one trailing axis of 1 more or fewer are squeezed or expanded to fit
(labels (n,) for predictions (n, 1)); any other difference is a ShapeError, never a broadcast
that would average over the wrong pairs. The error names the loss that the labels would fit.
"""
import graphc as gc
from graphc.errors import ShapeError
from graphc.ir.types import format_shape

LIKE_PREDICTIONS, CLASS_INDICES = "like predictions", "class indices"

# Pairs taking the same predictions with the other kind of labels.
_PAIRS = [("categorical_crossentropy", "sparse_categorical_crossentropy"),
          ("categorical_accuracy", "sparse_categorical_accuracy"),
          ("top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy")]
TWIN = {**dict(_PAIRS), **{b: a for a, b in _PAIRS}}

_LOOKS_LIKE = {LIKE_PREDICTIONS: "one-hot rows", CLASS_INDICES: "class indices"}


def _same(a, b):
    """Shapes equal where both dims are known: a dim known only at run time fits any size
    (the run checks it)."""
    return len(a) == len(b) and all(x == y or not (isinstance(x, int) and isinstance(y, int))
                                    for x, y in zip(a, b))


def _wanted(kind, predictions):
    return predictions[:-1] if kind == CLASS_INDICES else predictions


def _reshape(kind, labels, predictions):
    """How labels of shape `labels` reach what `kind` takes for `predictions`: "" (as they
    are), "squeeze" or "expand" a trailing 1; None if they do not fit."""
    want = _wanted(kind, predictions)
    if _same(labels, want):
        return ""
    if labels[-1:] == (1,) and _same(labels[:-1], want):
        return "squeeze"
    if kind == LIKE_PREDICTIONS and want[-1:] == (1,) and _same(labels + (1,), want):
        return "expand"
    return None


def fit(y_true, y_pred, kind, who):
    """y_true in the shape `who` (the name of a loss or metric taking `kind`) takes for
    y_pred, or a ShapeError saying what fits."""
    how = _reshape(kind, y_true.shape, y_pred.shape)
    if how is None:
        raise ShapeError(_mismatch(kind, who, y_true.shape, y_pred.shape), y_pred.node)
    if how == "squeeze":
        return gc.squeeze(y_true, axis=-1)
    if how == "expand":
        return gc.expand_dims(y_true, -1)
    return y_true


def _mismatch(kind, who, labels, predictions):
    noun = "class indices" if kind == CLASS_INDICES else "labels"
    message = (f"{who} takes {noun} of shape {format_shape(_wanted(kind, predictions))} for "
               f"predictions of shape {format_shape(predictions)}, got labels of shape "
               f"{format_shape(labels)}")
    twin = TWIN.get(who)
    other = CLASS_INDICES if kind == LIKE_PREDICTIONS else LIKE_PREDICTIONS
    if twin and _reshape(other, labels, predictions) is not None:
        message += f"; these labels look like {_LOOKS_LIKE[other]}: use '{twin}' for them"
    return message
