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
    """A loss object's call reduces its per-example values to their mean (Keras 3's default
    sum_over_batch_size); reduction=None keeps them."""
    got = evaluate(gk.losses.get(name), y_true, y_pred.astype("float32"))
    np.testing.assert_allclose(got, expect.mean(), rtol=1e-4, atol=1e-5)
    kept = evaluate(type(gk.losses.get(name))(reduction=None), y_true, y_pred.astype("float32"))
    np.testing.assert_allclose(kept, expect, rtol=1e-4, atol=1e-5)


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
    assert got == pytest.approx(2000.0)


def test_huber():
    y, p = rng.normal(size=(6, 4)).astype("float32"), rng.normal(size=(6, 4)).astype("float32") * 3
    e = np.abs(p - y)
    expect = np.where(e <= 1.5, 0.5 * e ** 2, 1.5 * (e - 0.75)).mean(-1)
    np.testing.assert_allclose(evaluate(gk.losses.Huber(1.5), y, p), expect.mean(), rtol=1e-5)


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


def numpy_circle(labels, emb, remove_diagonal=True, gamma=80.0, margin=0.4):
    """Keras 3's circle loss, written from its definition (-inf where a row has no pairs)."""
    dist = np.maximum(1 - emb @ emb.T, 0.0)
    pos = labels[:, None] == labels[None, :]
    neg = ~pos
    if remove_diagonal:
        pos &= ~np.eye(len(labels), dtype=bool)
    pw = np.maximum((margin + dist) * pos, 0)
    nw = np.maximum((1 + margin - dist) * neg, 0)

    def lse(mask, v):
        v = np.where(mask, v, -np.inf)
        top = v.max(axis=1, keepdims=True)
        safe = np.where(np.isfinite(top), top, 0)
        return (safe + np.log(np.exp(v - safe).sum(axis=1, keepdims=True)))[:, 0]
    with np.errstate(divide="ignore"):
        total = lse(pos, -gamma * pw * (margin - dist)) + lse(neg, gamma * nw * (1 - margin - dist))
    return np.logaddexp(0, total)


def test_circle_loss_matches_numpy_and_averages_over_rows_with_a_positive():
    emb = rng.normal(size=(7, 5)).astype("float32")
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    labels = np.array([2, 0, 2, 1, 0, 3, 2], "int32")  # label 1 and 3: no positive pair
    y = gc.placeholder("int32", (None,))
    e = gc.placeholder("float32", (None, 5))
    raw = gk.losses.circle(y, e, gamma=20.0, margin=0.3)
    kept = gk.losses.circle(y, e, remove_diagonal=False)
    per_example = gk.losses.Circle(gamma=20.0, margin=0.3)(y, e)
    grad, = gc.grad(gc.mean(per_example), [e])
    got = gc.function([y, e], [raw, kept, per_example, grad])(labels, emb)
    want = numpy_circle(labels, emb, gamma=20.0, margin=0.3)
    np.testing.assert_allclose(got[0], want, rtol=1e-5, atol=1e-6)
    assert got[0][3] == 0 and got[0][5] == 0  # no positive: softplus(-inf)
    np.testing.assert_allclose(got[1], numpy_circle(labels, emb, remove_diagonal=False),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got[2].mean(), want[want > 0].mean(), rtol=1e-5)
    assert np.all(np.isfinite(got[3])) and np.any(got[3] != 0)
    alone = gc.function([y, e], per_example)(np.arange(3, dtype="int32"), emb[:3])
    assert np.all(alone == 0)  # no row has a positive: 0, not NaN


def brute_force_ctc(labels, logits, steps):
    """-log of the total probability of every path over `steps` steps that collapses (merge
    repeats, drop blanks 0) to `labels`: CTC's definition, path by path."""
    import itertools
    logp = logits[:steps] - np.log(np.exp(logits[:steps]).sum(-1, keepdims=True))
    total = 0.0
    for path in itertools.product(range(logits.shape[-1]), repeat=steps):
        merged = [c for i, c in enumerate(path) if i == 0 or c != path[i - 1]]
        if [c for c in merged if c != 0] == list(labels):
            total += np.exp(sum(logp[t, c] for t, c in enumerate(path)))
    return -np.log(total)


def test_ctc_matches_the_sum_over_paths_and_trains():
    logits = rng.normal(size=(4, 5, 3)).astype("float32") * 2
    labels = np.array([[1, 2, 0], [2, 2, 0], [1, 0, 0], [2, 1, 1]], "int32")
    steps = np.array([5, 4, 2, 5], "int32")
    y = gc.placeholder("int32", (None, 3))
    z = gc.placeholder("float32", (None, None, 3))
    lengths = gc.placeholder("int32", (None,))
    reduced = [gk.losses.CTC(reduction=r)(y, z) for r in ("sum_over_batch_size", "sum", None)]
    got_ops, got_loss, grad, *got_reduced = gc.function([y, z, lengths], [
        gk.ops.ctc_loss(y, z, gc.sum(gc.cast(y > 0, gc.int32), axis=1), lengths),
        gk.losses.ctc(y, z), gc.grad(gc.sum(gk.losses.CTC()(y, z)), [z])[0]] + reduced)(
            labels, logits, steps)
    for got, reduce in zip(got_reduced, (np.mean, np.sum, lambda v: v)):
        np.testing.assert_allclose(got, reduce(got_loss), rtol=1e-6)
    for i in range(4):
        label = labels[i][labels[i] > 0]
        np.testing.assert_allclose(got_ops[i], brute_force_ctc(label, logits[i], steps[i]),
                                   rtol=1e-5)
        np.testing.assert_allclose(got_loss[i], brute_force_ctc(label, logits[i], 5), rtol=1e-5)
    assert np.all(np.isfinite(grad))
    # the gradient of a sequence's loss over the logits sums to 0 at each step (softmax)
    np.testing.assert_allclose(grad.sum(-1), 0, atol=1e-5)
    x = rng.normal(size=(32, 6, 4)).astype("float32")
    targets = np.where(x[:, :2, 0] > 0, 1, 2).astype("int32")  # two labels from the input
    model = gk.Sequential([gk.layers.Input((6, 4)), gk.layers.GRU(8, return_sequences=True),
                           gk.layers.Dense(3)])
    model.compile(optimizer=gk.optimizers.Adam(0.02), loss=gk.losses.CTC())
    first = model.evaluate(x, targets, verbose=0)
    model.fit(x, targets, batch_size=8, epochs=10, verbose=0)
    assert model.evaluate(x, targets, verbose=0) < 0.7 * first
