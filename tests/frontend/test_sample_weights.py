"""Sample weights as Keras applies them, against numpy: metrics updated batch by batch
(Keras's update_state(..., sample_weight)), batches of run-time sizes; losses' calls with
sample weights and reductions; the cross-entropies' label_smoothing."""
import numpy as np
import pytest

import graphc as gc
import graphc.frontend as gk

rng = np.random.default_rng(11)


def run_batches(metric, batches, values_only=False):
    """The metric's result after each (y_true, y_pred, weight) batch, through one compiled
    update (placeholders with a run-time batch size)."""
    first = batches[0]
    holders = [gc.placeholder(a.dtype, shape=(None,) + a.shape[1:]) for a in first]
    if values_only:
        updates, result = metric.update_values(holders[1], holders[2])
    else:
        updates, result = metric.update(*holders[:2], sample_weight=holders[2])
    step = gc.function(holders, result, updates=updates)
    return [float(step(*b)) for b in batches]


def weighted_batches(shape_of, sizes=(5, 3, 4)):
    """Batches of several sizes, a zero weight among them."""
    out = []
    for n in sizes:
        w = rng.uniform(0, 2, n).astype("float32")
        w[n // 2] = 0.0
        out.append(shape_of(n) + (w,))
    return out


def running(total_and_count):
    totals = np.cumsum([t for t, _ in total_and_count])
    counts = np.cumsum([c for _, c in total_and_count])
    return totals / counts


def test_weighted_hinge_is_the_weighted_mean_of_per_example_values():
    batches = weighted_batches(lambda n: (
        (rng.uniform(size=(n, 3)) > 0.5).astype("float32"),
        rng.normal(size=(n, 3)).astype("float32")))
    expect = running([((np.maximum(1 - (2 * t - 1) * p, 0).mean(-1) * w).sum(), w.sum())
                      for t, p, w in batches])
    np.testing.assert_allclose(run_batches(gk.metrics.Hinge(), batches), expect, rtol=1e-5)


def test_weighted_binary_accuracy_at_a_threshold():
    batches = weighted_batches(lambda n: (
        (rng.uniform(size=(n, 2)) > 0.5).astype("float32"),
        rng.uniform(size=(n, 2)).astype("float32")))
    expect = running([((((p > 0.3) == (t > 0.5)).mean(-1) * w).sum(), w.sum())
                      for t, p, w in batches])
    np.testing.assert_allclose(run_batches(gk.metrics.BinaryAccuracy(threshold=0.3), batches),
                               expect, rtol=1e-6)


@pytest.mark.parametrize("weight_shape", ["column", "full"])
def test_mean_with_weights_of_rank_two(weight_shape):
    """Keras: (n, 1) weights are squeezed; (n, d) weights multiply each value, and a sample
    counts as its mean weight."""
    batches = []
    for n in (4, 1, 3):
        v = rng.normal(size=(n, 3)).astype("float32")
        w = rng.uniform(0, 2, (n, 1) if weight_shape == "column" else (n, 3)).astype("float32")
        batches.append((v, v, w))
    if weight_shape == "column":
        sums = [((v.mean(-1) * w[:, 0]).sum(), w.sum()) for _, v, w in batches]
    else:
        sums = [((v * w).mean(-1).sum(), w.mean(-1).sum()) for _, v, w in batches]
    got = run_batches(gk.metrics.Mean(), batches, values_only=True)
    np.testing.assert_allclose(got, running(sums), rtol=1e-5)


def test_sum_adds_weighted_values_up():
    batches = weighted_batches(lambda n: (None, rng.normal(size=(n, 2)).astype("float32")))
    batches = [(v, v, w) for _, v, w in batches]
    expect = np.cumsum([(v.sum(-1) * w).sum() for _, v, w in batches])
    np.testing.assert_allclose(run_batches(gk.metrics.Sum(), batches, values_only=True),
                               expect, rtol=1e-5)


def test_confusion_counts_are_weighted_at_each_threshold():
    batches = weighted_batches(lambda n: (
        (rng.uniform(size=(n, 2)) > 0.5).astype("float32"),
        rng.uniform(size=(n, 2)).astype("float32")))
    metric = gk.metrics.FalsePositives(thresholds=[0.3, 0.6])
    holders = [gc.placeholder(gc.float32, shape=(None,) + a.shape[1:]) for a in batches[0]]
    updates, result = metric.update(*holders[:2], sample_weight=holders[2])
    step = gc.function(holders, result, updates=updates)
    expect = np.zeros(2)
    for t, p, w in batches:
        for k, th in enumerate((0.3, 0.6)):
            expect[k] += (((p > th) & (t < 0.5)) * w[:, None]).sum()
        np.testing.assert_allclose(step(t, p, w), expect, rtol=1e-6)


def test_precision_of_one_class_with_weights():
    batches = weighted_batches(lambda n: (
        np.eye(3, dtype="float32")[rng.integers(0, 3, n)],
        rng.uniform(size=(n, 3)).astype("float32")))
    tp = np.cumsum([(((p[:, 1] > 0.5) & (t[:, 1] > 0.5)) * w).sum() for t, p, w in batches])
    fp = np.cumsum([(((p[:, 1] > 0.5) & (t[:, 1] < 0.5)) * w).sum() for t, p, w in batches])
    got = run_batches(gk.metrics.Precision(class_id=1), batches)
    np.testing.assert_allclose(got, np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1e-30), 0.0),
                               rtol=1e-6)


def softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("from_logits", [False, True])
def test_categorical_crossentropy_label_smoothing(from_logits):
    logits = rng.normal(size=(7, 5)).astype("float32") * 3
    labels = np.eye(5, dtype="float32")[rng.integers(0, 5, 7)]
    y_pred = logits if from_logits else softmax(logits).astype("float32")
    got = gc.function([], gk.losses.categorical_crossentropy(
        gc.constant(labels), gc.constant(y_pred), from_logits=from_logits,
        label_smoothing=0.2))()
    smoothed = labels * 0.8 + 0.2 / 5
    np.testing.assert_allclose(got, -(smoothed * np.log(softmax(logits))).sum(-1), rtol=1e-4)


def test_binary_crossentropy_label_smoothing_moves_labels_halfway():
    p = rng.uniform(0.05, 0.95, (6, 3)).astype("float32")
    t = (rng.uniform(size=(6, 3)) > 0.5).astype("float32")
    got = gc.function([], gk.losses.BinaryCrossentropy(label_smoothing=0.3)(
        gc.constant(t), gc.constant(p)))()
    s = t * 0.7 + 0.15
    np.testing.assert_allclose(got, -(s * np.log(p) + (1 - s) * np.log(1 - p)).mean(-1),
                               rtol=1e-5)
    assert gk.losses.BinaryCrossentropy(label_smoothing=0.3).get_config()["label_smoothing"] \
        == pytest.approx(0.3)


HUBER = lambda t, p: np.where(np.abs(p - t) <= 0.5, 0.5 * (p - t) ** 2,  # noqa: E731
                              0.5 * (np.abs(p - t) - 0.25)).mean(-1)


@pytest.mark.parametrize("reduction,weight_shape,reduce", [
    (None, None, lambda v, w: v),
    ("none", (7,), lambda v, w: v * w),
    ("none", (7, 1), lambda v, w: (v * w[:, 0])[:, None]),  # Keras: the values gain the axis
    ("sum", (7,), lambda v, w: (v * w).sum()),
    ("sum_over_batch_size", (7,), lambda v, w: (v * w).sum() / 7),
    ("mean", None, lambda v, w: v.mean()),
    ("mean_with_sample_weight", (7,), lambda v, w: (v * w).sum() / w.sum()),
    ("mean_with_sample_weight", None, lambda v, w: v.mean()),
])
def test_loss_reductions_with_sample_weights(reduction, weight_shape, reduce):
    t = rng.normal(size=(7, 3)).astype("float32")
    p = rng.normal(size=(7, 3)).astype("float32")
    w = None if weight_shape is None else rng.uniform(0, 2, weight_shape).astype("float32")
    loss = gk.losses.Huber(delta=0.5, reduction=reduction)
    got = gc.function([], loss(gc.constant(t), gc.constant(p),
                               None if w is None else gc.constant(w)))()
    np.testing.assert_allclose(got, reduce(HUBER(t, p), w), rtol=1e-5)


def test_loss_reductions_of_an_empty_batch_are_zero_or_empty():
    holders = [gc.placeholder(gc.float32, (None, 3)) for _ in range(2)]
    for reduction, expect in (("sum_over_batch_size", 0.0), ("sum", 0.0), (None, [])):
        f = gc.function(holders, gk.losses.LogCosh(reduction=reduction)(*holders))
        empty = np.zeros((0, 3), "float32")
        np.testing.assert_array_equal(f(empty, empty), np.asarray(expect, "float32"))


def test_a_loss_keeps_its_reduction_when_saved_and_refuses_an_unknown_one():
    loss = gk.losses.CategoricalCrossentropy(label_smoothing=0.1, reduction="sum")
    again = gk.losses.deserialize(gk.losses.serialize(loss))
    assert (again.reduction, again.label_smoothing) == ("sum", pytest.approx(0.1))
    with pytest.raises(ValueError, match="reduction must be one of"):
        gk.losses.Hinge(reduction="average")
