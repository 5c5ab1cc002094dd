"""Losses and metrics against numpy, probabilities and logits."""
import numpy as np
import pytest

import graphc as gc
import graphc.frontend as gk

rng = np.random.default_rng(4)


def evaluate(fn, y_true, y_pred, pred_op=None):
    t = gc.placeholder(y_true.dtype, (None,) + y_true.shape[1:])
    p = gc.placeholder(gc.float32, (None,) + y_pred.shape[1:])
    out = fn(t, pred_op(p) if pred_op else p)
    return gc.function([t, p], out)(y_true, y_pred)


def softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


LOGITS = rng.normal(size=(9, 5)).astype("float32") * 3
LABELS = rng.integers(0, 5, 9).astype("int32")
ONE_HOT = np.eye(5, dtype="float32")[LABELS]


@pytest.mark.parametrize("name,y_true,y_pred,expect", [
    ("mse", ONE_HOT, LOGITS, ((LOGITS - ONE_HOT) ** 2).mean(-1)),
    ("mae", ONE_HOT, LOGITS, np.abs(LOGITS - ONE_HOT).mean(-1)),
    ("sparse_categorical_crossentropy", LABELS, softmax(LOGITS),
     -np.log(softmax(LOGITS)[np.arange(9), LABELS])),
    ("categorical_crossentropy", ONE_HOT, softmax(LOGITS),
     -np.log(softmax(LOGITS)[np.arange(9), LABELS])),
    ("binary_crossentropy", (ONE_HOT > 0).astype("float32"), sigmoid(LOGITS),
     -(ONE_HOT * np.log(sigmoid(LOGITS)) + (1 - ONE_HOT) * np.log(1 - sigmoid(LOGITS))).mean(-1)),
])
def test_losses_on_probabilities(name, y_true, y_pred, expect):
    got = evaluate(gk.losses.get(name), y_true, y_pred.astype("float32"))
    np.testing.assert_allclose(got, expect, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cls,y_true,activation", [
    (gk.losses.SparseCategoricalCrossentropy, LABELS, softmax),
    (gk.losses.CategoricalCrossentropy, ONE_HOT, softmax),
    (gk.losses.BinaryCrossentropy, ONE_HOT, sigmoid),
])
def test_from_logits_and_probabilities_agree(cls, y_true, activation):
    from_logits = evaluate(cls(from_logits=True), y_true, LOGITS)
    from_probs = evaluate(cls(), y_true, activation(LOGITS).astype("float32"))
    np.testing.assert_allclose(from_logits, from_probs, rtol=1e-3, atol=1e-4)


def test_softmax_output_is_read_as_logits_so_huge_logits_stay_finite():
    logits = np.array([[1000.0, -1000.0, 0.0]], "float32")
    got = evaluate(gk.losses.get("sparse_categorical_crossentropy"), np.array([1], "int32"),
                   logits, pred_op=gc.nn.softmax)
    assert got[0] == pytest.approx(2000.0)


def test_huber():
    y, p = rng.normal(size=(6, 4)).astype("float32"), rng.normal(size=(6, 4)).astype("float32") * 3
    e = np.abs(p - y)
    expect = np.where(e <= 1.5, 0.5 * e ** 2, 1.5 * (e - 0.75)).mean(-1)
    np.testing.assert_allclose(evaluate(gk.losses.Huber(1.5), y, p), expect, rtol=1e-5)


@pytest.mark.parametrize("metric,y_true,y_pred,expect", [
    ("accuracy", LABELS, LOGITS, (LOGITS.argmax(1) == LABELS)),
    ("accuracy", ONE_HOT, LOGITS, (LOGITS.argmax(1) == LABELS)),
    (gk.metrics.SparseTopKCategoricalAccuracy(k=2), LABELS, LOGITS,
     (np.argsort(-LOGITS, 1)[:, :2] == LABELS[:, None]).any(1)),
    (gk.metrics.TopKCategoricalAccuracy(k=3), ONE_HOT, LOGITS,
     (np.argsort(-LOGITS, 1)[:, :3] == LABELS[:, None]).any(1)),
    ("mae", ONE_HOT, LOGITS, np.abs(LOGITS - ONE_HOT).mean(1)),
    ("mse", ONE_HOT, LOGITS, ((LOGITS - ONE_HOT) ** 2).mean(1)),
    ("accuracy", (LOGITS[:, :1] > 0).astype("float32"), sigmoid(LOGITS[:, :1] + 0.3),
     (LOGITS[:, 0] > 0) == (LOGITS[:, 0] + 0.3 > 0)),
])
def test_metrics_accumulate_running_means(metric, y_true, y_pred, expect):
    t = gc.placeholder(y_true.dtype, (None,) + y_true.shape[1:])
    p = gc.placeholder(gc.float32, (None,) + y_pred.shape[1:])
    m = gk.metrics.get(metric, t, p)
    updates, result = m.update(t, p)
    f = gc.function([t, p], result, updates=updates)
    f(y_true[:4], y_pred[:4])
    assert f(y_true[4:], y_pred[4:]) == pytest.approx(np.mean(expect), rel=1e-6)
    m.reset(f.session)
    assert f(y_true[:4], y_pred[:4]) == pytest.approx(np.mean(expect[:4]), rel=1e-6)
