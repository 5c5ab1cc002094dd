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
    # the loss object reduces (Keras's default sum_over_batch_size): the mean over examples
    np.testing.assert_allclose(got, -(s * np.log(p) + (1 - s) * np.log(1 - p)).mean(-1).mean(),
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


def test_a_loss_of_an_empty_batch_of_static_size_is_left_as_it_is():
    """Keras returns the per-example values of an empty batch unreduced (shape (0,))."""
    empty = gc.constant(np.zeros((0, 3), "float32"))
    got = gc.function([], gk.losses.MeanSquaredError()(empty, empty))()
    assert got.shape == (0,)


# ---- fit, evaluate, train_on_batch and test_on_batch with sample and class weights ----------
def linear_model(x, d, metrics=(), weighted_metrics=(), lr=0.1):
    model = gk.Sequential([gk.Input((x.shape[1],)), gk.layers.Dense(d)])
    w0 = rng.normal(0, 0.5, (x.shape[1], d)).astype("float32")
    b0 = rng.normal(0, 0.1, d).astype("float32")
    model.layers[-1].set_weights([w0, b0])
    model.compile(gk.optimizers.SGD(lr), "mse", metrics=list(metrics),
                  weighted_metrics=list(weighted_metrics))
    return model, w0.astype("float64"), b0.astype("float64")


def numpy_weighted_sgd(x, y, w, w0, b0, lr, batch, epochs):
    """Keras's fit of a linear layer under mse with sample weights: each batch's loss is
    sum(w * mse) / batch rows; the epoch's loss the batches' mean by their rows; the weighted
    mae sum(w * mae) / sum(w), the plain one the mean."""
    kernel, bias, logs = w0.copy(), b0.copy(), []
    for _ in range(epochs):
        sums = np.zeros(5)  # loss * rows, rows, |e| sum, |e| count, weighted |e|, ...
        weighted = np.zeros(2)
        for start in range(0, len(x), batch):
            xb, yb, wb = x[start:start + batch], y[start:start + batch], w[start:start + batch]
            err = xb @ kernel + bias - yb
            n, d = err.shape
            sums[:4] += [(wb * (err ** 2).mean(-1)).sum(), n, np.abs(err).mean(-1).sum(), n]
            weighted += [(wb * np.abs(err).mean(-1)).sum(), wb.sum()]
            grad = wb[:, None] * 2 * err / (n * d)
            kernel -= lr * xb.T @ grad
            bias -= lr * grad.sum(0)
        logs.append((sums[0] / sums[1], sums[2] / sums[3], weighted[0] / weighted[1]))
    return kernel, bias, np.array(logs)


def test_fit_with_sample_weights_against_numpy_uneven_last_batch():
    x = rng.normal(size=(24, 4)).astype("float32")
    y = rng.normal(size=(24, 2)).astype("float32")
    w = rng.uniform(0, 2, 24).astype("float32")
    w[5] = 0.0
    model, w0, b0 = linear_model(x, 2, ["mae"], ["mae"])
    hist = model.fit(x, y, batch_size=7, epochs=3, shuffle=False, verbose=0, sample_weight=w)
    kernel, bias, logs = numpy_weighted_sgd(x, y, w, w0, b0, 0.1, 7, 3)
    got = np.array([hist.history[k] for k in ("loss", "mae", "weighted_mae")]).T
    np.testing.assert_allclose(got, logs, rtol=2e-5)
    np.testing.assert_allclose(model.layers[-1].get_weights()[0], kernel, rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(model.layers[-1].get_weights()[1], bias, rtol=2e-5, atol=1e-6)
    # evaluate and test_on_batch weigh the loss and the weighted metric alone
    err = x @ kernel + bias - y
    want = {"loss": (w * (err ** 2).mean(-1)).mean(), "mae": np.abs(err).mean(),
            "weighted_mae": (w * np.abs(err).mean(-1)).sum() / w.sum()}
    for logs in (model.evaluate(x, y, sample_weight=w, batch_size=24, verbose=0,
                                return_dict=True), model.test_on_batch(x, y, sample_weight=w)):
        assert sorted(logs) == sorted(want)
        for k in want:
            np.testing.assert_allclose(logs[k], want[k], rtol=2e-5)


def test_train_on_batch_with_sample_weights_is_one_weighted_step():
    x = rng.normal(size=(9, 3)).astype("float32")
    y = rng.normal(size=(9, 2)).astype("float32")
    w = rng.uniform(0, 2, 9).astype("float32")
    model, w0, b0 = linear_model(x, 2, lr=0.3)
    logs = model.train_on_batch(x, y, sample_weight=w)
    kernel, bias, numpy_logs = numpy_weighted_sgd(x, y, w, w0, b0, 0.3, 9, 1)
    np.testing.assert_allclose(logs["loss"], numpy_logs[0, 0], rtol=2e-5)
    np.testing.assert_allclose(model.layers[-1].get_weights()[0], kernel, rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("labels", ["sparse", "column", "onehot"])
def test_class_weight_is_a_sample_weight_by_class(labels):
    x = rng.normal(size=(17, 4)).astype("float32")
    classes = rng.integers(0, 3, 17)
    y = {"sparse": classes, "column": classes[:, None],
         "onehot": np.eye(3, dtype="float32")[classes]}[labels]
    class_weight = {0: 0.5, 2: 3.0}  # class 1 absent: weight 1
    by_class = np.array([0.5, 1.0, 3.0], "float32")[classes]
    def uniform_model():  # every prediction 1/3 before training
        model = gk.Sequential([gk.Input((4,)), gk.layers.Dense(3, activation="softmax")])
        model.layers[-1].set_weights([np.zeros((4, 3), "float32"), np.zeros(3, "float32")])
        model.compile(gk.optimizers.SGD(0.5), "categorical_crossentropy" if labels == "onehot"
                      else "sparse_categorical_crossentropy")
        return model
    logs = uniform_model().train_on_batch(x[:5], y[:5], class_weight=class_weight)
    np.testing.assert_allclose(logs["loss"], np.log(3) * by_class[:5].mean(), rtol=1e-5)
    runs = [uniform_model().fit(x, y, batch_size=5, epochs=2, shuffle=False, verbose=0,
                                **kwargs).history["loss"]
            for kwargs in ({"class_weight": class_weight}, {"sample_weight": by_class})]
    np.testing.assert_allclose(runs[0], runs[1], rtol=1e-6)
    model = uniform_model()
    with pytest.raises(ValueError, match="class_weight and sample_weight"):
        model.fit(x, y, class_weight=class_weight, sample_weight=by_class, verbose=0)


def test_sample_weights_of_another_length_are_refused():
    x = rng.normal(size=(6, 4)).astype("float32")
    model, _, _ = linear_model(x, 2)
    with pytest.raises(ValueError, match="needs one row for each of the 6 samples"):
        model.fit(x, np.zeros((6, 2), "float32"), sample_weight=np.ones(5), verbose=0)


class WeightedBatches(gk.utils.PyDataset):
    def __init__(self, x, y, w, size, drop_weights_at=None):
        super().__init__()
        self.x, self.y, self.w, self.size, self.drop = x, y, w, size, drop_weights_at

    def __len__(self):
        return -(-len(self.x) // self.size)

    def __getitem__(self, i):
        part = slice(i * self.size, (i + 1) * self.size)
        if i == self.drop:
            return self.x[part], self.y[part]
        return self.x[part], self.y[part], self.w[part]


def test_a_pydataset_of_x_y_sample_weight_batches_fits_as_the_arrays():
    x = rng.normal(size=(19, 4)).astype("float32")
    y = rng.normal(size=(19, 2)).astype("float32")
    w = rng.uniform(0, 2, 19).astype("float32")
    model, w0, b0 = linear_model(x, 2, weighted_metrics=["mae"])
    hist = model.fit(WeightedBatches(x, y, w, 6), epochs=2, verbose=0)
    kernel, _, logs = numpy_weighted_sgd(x, y, w, w0, b0, 0.1, 6, 2)
    np.testing.assert_allclose(hist.history["loss"], logs[:, 0], rtol=2e-5)
    np.testing.assert_allclose(hist.history["mae"], logs[:, 2], rtol=2e-5)
    np.testing.assert_allclose(model.layers[-1].get_weights()[0], kernel, rtol=2e-5, atol=1e-6)
    with pytest.raises(gc.GraphcError, match=r"WeightedBatches\[2\] has none"):
        model.fit(WeightedBatches(x, y, w, 6, drop_weights_at=2), verbose=0)


def test_validation_split_takes_the_last_sample_weights_too():
    x = rng.normal(size=(20, 3)).astype("float32")
    y = rng.normal(size=(20, 2)).astype("float32")
    w = rng.uniform(0, 2, 20).astype("float32")
    model, w0, b0 = linear_model(x, 2)
    hist = model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0,
                     sample_weight=w, validation_split=0.25)
    kernel, bias, logs = numpy_weighted_sgd(x[:15], y[:15], w[:15], w0, b0, 0.1, 16, 1)
    np.testing.assert_allclose(hist.history["loss"], logs[:, 0], rtol=2e-5)
    err = x[15:] @ kernel + bias - y[15:]
    np.testing.assert_allclose(hist.history["val_loss"], [(w[15:] * (err ** 2).mean(-1)).mean()],
                               rtol=2e-5)


# ---- ignore_class; sample weights of the metrics that keep sums of their own ---------------
def sparse_crossentropy(t, p):
    return -np.log(np.clip(p, 1e-7, 1 - 1e-7)[np.arange(len(t)), np.maximum(t, 0)]) * (t != -1)


@pytest.mark.parametrize("reduction,reduce", [
    ("sum_over_batch_size", lambda v, w, valid: (v * w).sum() / valid.sum()),
    ("sum", lambda v, w, valid: (v * w).sum()),
    ("none", lambda v, w, valid: v * w),
    ("mean_with_sample_weight", lambda v, w, valid: (v * w).sum() / (w * valid).sum()),
])
def test_sparse_categorical_crossentropy_leaves_ignore_class_out(reduction, reduce):
    t = np.array([1, -1, 2, 0, -1, 2, 1], "int32")
    p = rng.dirichlet(np.ones(3), 7).astype("float32")
    w = rng.uniform(0, 2, 7).astype("float32")
    loss = gk.losses.SparseCategoricalCrossentropy(ignore_class=-1, reduction=reduction)
    got = gc.function([], loss(gc.constant(t[:, None]), gc.constant(p), gc.constant(w)))()
    np.testing.assert_allclose(got, reduce(sparse_crossentropy(t, p), w, t != -1), rtol=1e-5)
    # the metric: a weighted mean leaves them out, an unweighted one counts their zeros
    batches = [(t, p, w), (t[:3], p[:3], w[:3])]
    v = [sparse_crossentropy(*b[:2]) for b in batches]
    want = running([((vb * b[2]).sum(), (b[2] * (b[0] != -1)).sum()) for vb, b in zip(v, batches)])
    metric = gk.metrics.SparseCategoricalCrossentropy(ignore_class=-1)
    np.testing.assert_allclose(run_batches(metric, batches), want, rtol=1e-5)
    holders = [gc.placeholder(gc.int32, (None,)), gc.placeholder(gc.float32, (None, 3))]
    updates, result = gk.metrics.SparseCategoricalCrossentropy(ignore_class=-1).update(*holders)
    np.testing.assert_allclose(gc.function(holders, result, updates=updates)(t, p),
                               v[0].mean(), rtol=1e-5)


def test_fit_takes_labels_of_the_ignored_class():
    x = rng.normal(size=(10, 3)).astype("float32")
    y = np.array([0, 255, 1, 255, 2, 0, 1, 2, 255, 0], "int32")
    model = gk.Sequential([gk.Input((3,)), gk.layers.Dense(3, activation="softmax")])
    model.layers[-1].set_weights([np.zeros((3, 3), "float32"), np.zeros(3, "float32")])
    model.compile("sgd", gk.losses.SparseCategoricalCrossentropy(ignore_class=255))
    np.testing.assert_allclose(model.evaluate(x, y, verbose=0), np.log(3), rtol=1e-5)
    model.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.raises(IndexError, match=r"y\[1\] is 255"):
        model.evaluate(x, y, verbose=0)


def r2(t, p, w):
    """Keras's weighted R2 per output, uniformly averaged."""
    w = np.broadcast_to(w[:, None] if w.ndim == 1 else w, t.shape)
    mean = (w * t).sum(0) / w.sum(0)
    total = (w * t * t).sum(0) - (w * t).sum(0) * mean
    return (1 - (w * (t - p) ** 2).sum(0) / total).mean()


def test_weighted_r2_score_and_root_mean_squared_error():
    batches = weighted_batches(lambda n: (rng.normal(size=(n, 2)).astype("float32"),
                                          rng.normal(size=(n, 2)).astype("float32")))
    seen = [tuple(np.concatenate(a) for a in zip(*batches[:k + 1])) for k in range(3)]
    np.testing.assert_allclose(run_batches(gk.metrics.R2Score(), batches),
                               [r2(*s) for s in seen], rtol=1e-4)
    np.testing.assert_allclose(run_batches(gk.metrics.RootMeanSquaredError(), batches),
                               [np.sqrt(((t - p) ** 2).mean(-1) @ w / w.sum())
                                for t, p, w in seen], rtol=1e-5)


def test_weighted_f1_score_and_mean_iou():
    batches = weighted_batches(lambda n: (np.eye(3, dtype="float32")[rng.integers(0, 3, n)],
                                          rng.uniform(size=(n, 3)).astype("float32")))
    seen = [tuple(np.concatenate(a) for a in zip(*batches[:k + 1])) for k in range(3)]
    f1, iou = [], []
    for t, p, w in seen:
        hit = (p == p.max(-1, keepdims=True)).astype("float64")
        tp, fp, fn = (w[:, None] * hit * t).sum(0), (w[:, None] * hit * (1 - t)).sum(0), \
            (w[:, None] * (1 - hit) * t).sum(0)
        precision, recall = tp / (tp + fp + 1e-7), tp / (tp + fn + 1e-7)
        f1.append((2 * precision * recall / (precision + recall + 1e-7)).mean())
        cm = np.zeros((3, 3))
        np.add.at(cm, (t.argmax(-1), p.argmax(-1)), np.trunc(w))  # Keras: int counts
        diag = np.diag(cm)
        iou.append(np.mean(diag / (cm.sum(0) + cm.sum(1) - diag)))
    np.testing.assert_allclose(run_batches(gk.metrics.F1Score(average="macro"), batches), f1,
                               rtol=1e-5)
    np.testing.assert_allclose(run_batches(gk.metrics.OneHotMeanIoU(3), batches), iou,
                               rtol=1e-5)


def test_sum_of_a_compiled_model_adds_the_weighted_predictions():
    x = rng.normal(size=(7, 3)).astype("float32")
    w = rng.uniform(0, 2, 7).astype("float32")
    model, kernel, bias = linear_model(x, 1, weighted_metrics=[gk.metrics.Sum()])
    logs = model.evaluate(x, np.zeros((7, 1), "float32"), sample_weight=w, batch_size=4,
                          verbose=0, return_dict=True)
    np.testing.assert_allclose(logs["sum"], ((x @ kernel + bias)[:, 0] * w).sum(), rtol=1e-5)


def test_weighted_metrics_are_saved_with_the_model(tmp_path):
    x = rng.normal(size=(8, 3)).astype("float32")
    y = rng.normal(size=(8, 2)).astype("float32")
    w = rng.uniform(0, 2, 8).astype("float32")
    model, _, _ = linear_model(x, 2, ["mae"], ["mae"])
    model.fit(x, y, sample_weight=w, verbose=0)
    model.save(str(tmp_path / "m.gck"))
    loaded = gk.models.load_model(str(tmp_path / "m.gck"))
    want = model.evaluate(x, y, sample_weight=w, verbose=0, return_dict=True)
    got = loaded.evaluate(x, y, sample_weight=w, verbose=0, return_dict=True)
    assert sorted(got) == ["loss", "mae", "weighted_mae"]
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-6)


def test_temporal_sample_weights_weigh_each_step():
    """Weights of shape (batch, steps) for a sequence output: each step's value weighed,
    the sum over every value's count (sum_over_batch_size)."""
    x = rng.normal(size=(5, 4, 3)).astype("float32")
    y = rng.normal(size=(5, 4, 2)).astype("float32")
    w = rng.uniform(0, 2, (5, 4)).astype("float32")
    model = gk.Sequential([gk.Input((4, 3)), gk.layers.Dense(2)])
    kernel, bias = [a.astype("float64") for a in model.layers[-1].get_weights()]
    model.compile("sgd", "mse")
    got = model.evaluate(x, y, sample_weight=w, batch_size=5, verbose=0)
    err = x @ kernel + bias - y
    np.testing.assert_allclose(got, (w * (err ** 2).mean(-1)).mean(), rtol=1e-5)


def test_class_weight_needs_a_model_of_one_output():
    inp = gk.Input((3,))
    model = gk.Model(inp, [gk.layers.Dense(2)(inp), gk.layers.Dense(2)(inp)])
    model.compile("sgd", "sparse_categorical_crossentropy")
    x, y = np.zeros((4, 3), "float32"), np.zeros(4, "int32")
    with pytest.raises(ValueError, match="one output, this one has 2"):
        model.fit(x, [y, y], class_weight={0: 2.0}, verbose=0)


@pytest.mark.parametrize("form", ["list", "dict", "one array"])
def test_sample_weights_per_output(form):
    x = rng.normal(size=(9, 3)).astype("float32")
    ya, yb = rng.normal(size=(9, 2)).astype("float32"), rng.normal(size=(9, 1)).astype("float32")
    wa, wb = rng.uniform(0, 2, 9).astype("float32"), rng.uniform(0, 2, 9).astype("float32")
    if form == "one array":
        wb = wa
    inp = gk.Input((3,))
    model = gk.Model(inp, [gk.layers.Dense(2, name="a")(inp), gk.layers.Dense(1, name="b")(inp)])
    model.compile("sgd", "mse", loss_weights=[1.0, 0.5], weighted_metrics=["mae"])
    weights = {"list": [wa, wb], "dict": {"b": wb, "a": wa}, "one array": wa}[form]
    logs = model.evaluate(x, [ya, yb], sample_weight=weights, batch_size=4, verbose=0,
                          return_dict=True)
    pa, pb = model.predict(x, verbose=0)
    loss_a = (wa * ((pa - ya) ** 2).mean(-1)).mean()
    loss_b = (wb * ((pb - yb) ** 2).mean(-1)).mean()
    want = {"loss": loss_a + 0.5 * loss_b, "a_loss": loss_a, "b_loss": loss_b,
            "a_mae": (wa * np.abs(pa - ya).mean(-1)).sum() / wa.sum(),
            "b_mae": (wb * np.abs(pb - yb).mean(-1)).sum() / wb.sum()}
    assert sorted(logs) == sorted(want)
    for k in want:
        np.testing.assert_allclose(logs[k], want[k], rtol=2e-5, err_msg=k)
