"""Loss and metric cases of keras_breadth_parity.py outside a fit. A metric is updated batch
after batch (Keras's update_state, graphc's update in a compiled function), with sample
weights where a case names them, and its result after each batch is compared; a loss's
functional form is compared by its per-example values on one batch."""
import numpy as np

BATCHES, MB = 3, 5  # batches of MB examples

# name: (metric class, its kwargs, y_true array or None (values alone: Mean, Sum), y_pred or
# values array, sample_weight array or None); a kwarg given as a function of lib is called
METRIC_CASES = {
    "metrics Accuracy weighted": ("Accuracy", {}, "ints", "ints2", "w"),
    "metrics BinaryAccuracy threshold 0.3 weighted": (
        "BinaryAccuracy", {"threshold": 0.3}, "binary", "unit", "w"),
    "metrics CategoricalAccuracy weighted": ("CategoricalAccuracy", {}, "onehot", "probs", "w"),
    "metrics SparseCategoricalAccuracy weighted column labels": (
        "SparseCategoricalAccuracy", {}, "sparse_col", "probs", "w"),
    "metrics SparseTopKCategoricalAccuracy k 2 weighted": (
        "SparseTopKCategoricalAccuracy", {"k": 2}, "sparse", "probs", "w"),
    "metrics CategoricalCrossentropy label_smoothing weighted": (
        "CategoricalCrossentropy", {"label_smoothing": 0.1}, "onehot", "probs", "w"),
    "metrics CategoricalCrossentropy from_logits": (
        "CategoricalCrossentropy", {"from_logits": True}, "onehot", "logits", None),
    "metrics SparseCategoricalCrossentropy from_logits weighted": (
        "SparseCategoricalCrossentropy", {"from_logits": True}, "sparse", "logits", "w"),
    "metrics CategoricalHinge weighted": ("CategoricalHinge", {}, "onehot", "logits", "w"),
    "metrics Hinge weighted": ("Hinge", {}, "binary", "logits", "w"),
    "metrics SquaredHinge signed labels": ("SquaredHinge", {}, "signs", "logits", None),
    "metrics KLDivergence weighted": ("KLDivergence", {}, "probs2", "probs", "w"),
    "metrics LogCoshError weighted": ("LogCoshError", {}, "normal", "logits", "w"),
    "metrics FalseNegatives thresholds weighted": (
        "FalseNegatives", {"thresholds": [0.3, 0.6]}, "binary", "unit", "w"),
    "metrics FalsePositives weighted": ("FalsePositives", {}, "binary", "unit", "w"),
    "metrics TrueNegatives threshold 0.7": ("TrueNegatives", {"thresholds": 0.7}, "binary",
                                            "unit", None),
    "metrics Mean": ("Mean", {}, None, "normal", None),
    "metrics Mean weighted": ("Mean", {}, None, "normal", "w"),
    "metrics Sum weighted": ("Sum", {}, None, "normal", "w"),
    "metrics MeanMetricWrapper(huber, delta 0.5) weighted": (
        "MeanMetricWrapper", {"fn": lambda lib: lib.losses.huber, "delta": 0.5}, "normal",
        "logits", "w"),
}

# name: (function of keras.losses / gk.losses, its kwargs, y_true array, y_pred array)
LOSS_CASES = {
    "losses categorical_crossentropy from_logits label_smoothing": (
        "categorical_crossentropy", {"from_logits": True, "label_smoothing": 0.2}, "onehot",
        "logits"),
    "losses categorical_crossentropy probabilities": ("categorical_crossentropy", {}, "probs2",
                                                      "probs"),
    "losses binary_crossentropy label_smoothing": ("binary_crossentropy",
                                                   {"label_smoothing": 0.3}, "binary", "unit"),
    "losses sparse_categorical_crossentropy from_logits": (
        "sparse_categorical_crossentropy", {"from_logits": True}, "sparse", "logits"),
    "losses sparse_categorical_crossentropy probabilities": (
        "sparse_categorical_crossentropy", {}, "sparse_col", "probs"),
    "losses hinge": ("hinge", {}, "binary", "logits"),
    "losses squared_hinge": ("squared_hinge", {}, "signs", "logits"),
    "losses categorical_hinge": ("categorical_hinge", {}, "onehot", "logits"),
    "losses huber delta 0.3": ("huber", {"delta": 0.3}, "normal", "logits"),
    "losses kl_divergence": ("kl_divergence", {}, "probs2", "probs"),
    "losses log_cosh": ("log_cosh", {}, "normal", "logits"),
}


def keras_loss_values(keras, name, data):
    """The per-example values of a LOSS_CASES function on the first batch."""
    fn, kwargs, y_true, y_pred = LOSS_CASES[name]
    return [np.asarray(getattr(keras.losses, fn)(data[y_true][0], data[y_pred][0], **kwargs))]


def graphc_loss_values(gk, name, data):
    import graphc as gc
    fn, kwargs, y_true, y_pred = LOSS_CASES[name]
    values = getattr(gk.losses, fn)(gc.constant(data[y_true][0]), gc.constant(data[y_pred][0]),
                                    **kwargs)
    return [np.asarray(gc.function([], values)())]


def metric_data():
    """Each array as BATCHES batches of MB examples."""
    rng = np.random.default_rng(5)
    shape = (BATCHES, MB, 4)
    logits = rng.normal(size=shape).astype("float32")
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    probs2 = rng.dirichlet(np.ones(4), (BATCHES, MB)).astype("float32")
    sparse = rng.integers(0, 4, (BATCHES, MB)).astype("int32")
    binary = (rng.uniform(size=shape) > 0.5).astype("float32")
    w = rng.uniform(0, 2, (BATCHES, MB)).astype("float32")
    w[1, 2] = 0.0
    return {"logits": logits, "probs": probs.astype("float32"), "probs2": probs2,
            "sparse": sparse, "sparse_col": sparse[..., None],
            "onehot": np.eye(4, dtype="float32")[sparse], "binary": binary,
            "signs": 2.0 * binary - 1.0, "unit": rng.uniform(size=shape).astype("float32"),
            "normal": rng.normal(size=shape).astype("float32"),
            "ints": rng.integers(0, 3, shape).astype("float32"),
            "ints2": rng.integers(0, 3, shape).astype("float32"), "w": w}


def make_metric(lib, name):
    cls, kwargs, *_ = METRIC_CASES[name]
    return getattr(lib.metrics, cls)(**{k: v(lib) if callable(v) else v
                                        for k, v in kwargs.items()})


def case_arrays(name, data, batch):
    """The case's (y_true or None, y_pred or values, sample_weight or None) of one batch."""
    return [None if key is None else data[key][batch] for key in METRIC_CASES[name][2:]]


def keras_results(keras, name, data):
    metric = make_metric(keras, name)
    results = []
    for b in range(BATCHES):
        y_true, y_pred, weight = case_arrays(name, data, b)
        metric.update_state(*([] if y_true is None else [y_true]), y_pred, sample_weight=weight)
        results.append(np.asarray(metric.result()))
    return results


def graphc_results(gk, name, data):
    import graphc as gc
    metric = make_metric(gk, name)
    arrays = case_arrays(name, data, 0)
    holders = [None if a is None else gc.placeholder(a.dtype, shape=(None,) + a.shape[1:])
               for a in arrays]
    y_true, y_pred, weight = holders
    updates, result = metric.update_values(y_pred, weight) if y_true is None else \
        metric.update(y_true, y_pred, sample_weight=weight)
    fed = [h for h in holders if h is not None]
    step = gc.function(fed, result, updates=updates)
    return [np.asarray(step(*[a for a in case_arrays(name, data, b) if a is not None]))
            for b in range(BATCHES)]
