"""Loss and metric cases of keras_breadth_parity.py outside a fit. A metric is updated batch
after batch (Keras's update_state, graphc's update in a compiled function), with sample
weights where a case names them, and its result after each batch is compared; a loss is
compared on one batch: a function's per-example values, a class's reduction of them with
sample weights."""
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
# sample weights in the metrics that keep their own sums; ignore_class
METRIC_CASES.update({
    "metrics R2Score weighted": ("R2Score", {}, "normal", "logits", "w"),
    "metrics R2Score variance_weighted_average num_regressors 2, weights per output": (
        "R2Score", {"class_aggregation": "variance_weighted_average", "num_regressors": 2},
        "normal", "logits", "w_full"),
    "metrics RootMeanSquaredError weighted": ("RootMeanSquaredError", {}, "normal", "logits",
                                              "w"),
    "metrics F1Score weighted": ("F1Score", {}, "onehot", "probs", "w"),
    "metrics FBetaScore beta 2 micro threshold 0.4 weighted": (
        "FBetaScore", {"beta": 2.0, "average": "micro", "threshold": 0.4}, "binary", "unit",
        "w"),
    "metrics F1Score weighted average weighted": (
        "F1Score", {"average": "weighted"}, "onehot", "probs", "w"),
    "metrics MeanIoU scores weighted": (
        "MeanIoU", {"num_classes": 4, "sparse_y_pred": False}, "sparse", "probs", "w"),
    "metrics MeanIoU float32 dtype weighted": (
        "MeanIoU", {"num_classes": 4, "sparse_y_pred": False, "dtype": "float32"}, "sparse",
        "probs", "w"),
    "metrics OneHotIoU weighted": (
        "OneHotIoU", {"num_classes": 4, "target_class_ids": [0, 3]}, "onehot", "probs", "w"),
    "metrics BinaryIoU threshold 0.4 weights per label": (
        "BinaryIoU", {"threshold": 0.4}, "binary", "unit", "w_full"),
    "metrics SparseCategoricalCrossentropy ignore_class -1 unweighted": (
        "SparseCategoricalCrossentropy", {"ignore_class": -1}, "sparse_void", "probs", None),
    "metrics SparseCategoricalCrossentropy ignore_class -1 weighted": (
        "SparseCategoricalCrossentropy", {"ignore_class": -1}, "sparse_void", "probs", "w"),
})

# name: (a function of keras.losses / gk.losses, or a class, its kwargs, y_true array, y_pred
# array[, sample_weight array]): a function's per-example values, a class's call (reduced by
# its reduction, Keras's default sum_over_batch_size where none is given) on the first batch
LOSS_CASES = {
    "loss values categorical_crossentropy from_logits label_smoothing": (
        "categorical_crossentropy", {"from_logits": True, "label_smoothing": 0.2}, "onehot",
        "logits"),
    "loss values categorical_crossentropy probabilities": (
        "categorical_crossentropy", {}, "probs2", "probs"),
    "loss values binary_crossentropy label_smoothing": (
        "binary_crossentropy", {"label_smoothing": 0.3}, "binary", "unit"),
    "loss values sparse_categorical_crossentropy from_logits": (
        "sparse_categorical_crossentropy", {"from_logits": True}, "sparse", "logits"),
    "loss values sparse_categorical_crossentropy probabilities": (
        "sparse_categorical_crossentropy", {}, "sparse_col", "probs"),
    "loss values hinge": ("hinge", {}, "binary", "logits"),
    "loss values squared_hinge": ("squared_hinge", {}, "signs", "logits"),
    "loss values categorical_hinge": ("categorical_hinge", {}, "onehot", "logits"),
    "loss values huber delta 0.3": ("huber", {"delta": 0.3}, "normal", "logits"),
    "loss values kl_divergence": ("kl_divergence", {}, "probs2", "probs"),
    "loss values log_cosh": ("log_cosh", {}, "normal", "logits"),
    "loss values CategoricalCrossentropy from_logits label_smoothing sum weighted": (
        "CategoricalCrossentropy", {"from_logits": True, "label_smoothing": 0.1,
                                    "reduction": "sum"}, "onehot", "logits", "w"),
    "loss values SparseCategoricalCrossentropy sum_over_batch_size weighted": (
        "SparseCategoricalCrossentropy", {"reduction": "sum_over_batch_size"}, "sparse_col",
        "probs", "w"),
    "loss values BinaryCrossentropy from_logits mean weighted": (
        "BinaryCrossentropy", {"from_logits": True, "reduction": "mean"}, "binary", "logits",
        "w"),
    "loss values Hinge mean_with_sample_weight weighted": (
        "Hinge", {"reduction": "mean_with_sample_weight"}, "binary", "logits", "w"),
    "loss values SquaredHinge none, column weights": (
        "SquaredHinge", {"reduction": None}, "signs", "logits", "w_col"),
    "loss values CategoricalHinge mean_with_sample_weight unweighted": (
        "CategoricalHinge", {"reduction": "mean_with_sample_weight"}, "onehot", "logits"),
    "loss values Huber delta 0.5 sum weighted": (
        "Huber", {"delta": 0.5, "reduction": "sum"}, "normal", "logits", "w"),
    "loss values KLDivergence sum_over_batch_size weighted": (
        "KLDivergence", {"reduction": "sum_over_batch_size"}, "probs2", "probs", "w"),
    "loss values LogCosh none weighted": (
        "LogCosh", {"reduction": "none"}, "normal", "logits", "w"),
}
# a loss object's default reduction (sum_over_batch_size: a scalar), empty batches included
LOSS_CASES.update({
    "loss values MeanSquaredError default reduction": (
        "MeanSquaredError", {}, "normal", "logits"),
    "loss values MeanAbsoluteError default reduction weighted": (
        "MeanAbsoluteError", {}, "normal", "logits", "w"),
    "loss values CategoricalFocalCrossentropy default reduction weighted": (
        "CategoricalFocalCrossentropy", {}, "onehot", "probs", "w"),
    "loss values Poisson default reduction, column weights": (
        "Poisson", {}, "unit", "probs", "w_col"),
    "loss values CosineSimilarity reduction none": (
        "CosineSimilarity", {"reduction": "none"}, "normal", "logits"),
    "loss values MeanSquaredError default reduction, empty batch": (
        "MeanSquaredError", {}, "empty", "empty"),
    "loss values SparseCategoricalCrossentropy ignore_class -1 default reduction weighted": (
        "SparseCategoricalCrossentropy", {"ignore_class": -1}, "sparse_void", "probs", "w"),
    "loss values SparseCategoricalCrossentropy ignore_class 2 from_logits sum": (
        "SparseCategoricalCrossentropy", {"ignore_class": 2, "from_logits": True,
                                          "reduction": "sum"}, "sparse_col", "logits"),
    "loss values SparseCategoricalCrossentropy ignore_class -1 none weighted": (
        "SparseCategoricalCrossentropy", {"ignore_class": -1, "reduction": "none"},
        "sparse_void", "probs", "w"),
    "loss values SparseCategoricalCrossentropy ignore_class -1 mean_with_sample_weight": (
        "SparseCategoricalCrossentropy", {"ignore_class": -1,
                                          "reduction": "mean_with_sample_weight"},
        "sparse_void", "probs", "w"),
    "loss values sparse_categorical_crossentropy ignore_class -1": (
        "sparse_categorical_crossentropy", {"ignore_class": -1}, "sparse_void", "probs"),
    "loss values BinaryCrossentropy sum, empty weighted batch": (
        "BinaryCrossentropy", {"reduction": "sum"}, "empty", "empty", "w_empty"),
})


def _loss_call(lib, name, array):
    """The LOSS_CASES case's loss on the first batch, its arrays made by array(numpy)."""
    what, kwargs, *keys = LOSS_CASES[name]
    y_true, y_pred, *weight = [array(metric_data()[k][0]) for k in keys]
    if what[:1].isupper():
        return getattr(lib.losses, what)(**kwargs)(y_true, y_pred, *weight)
    return getattr(lib.losses, what)(y_true, y_pred, **kwargs)


def keras_loss_values(keras, name):
    return [np.asarray(_loss_call(keras, name, np.asarray))]


def graphc_loss_values(gk, name):
    import graphc as gc
    return [np.asarray(gc.function([], _loss_call(gk, name, gc.constant))())]


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
            "ints2": rng.integers(0, 3, shape).astype("float32"), "w": w,
            "w_col": w[..., None], "w_full": rng.uniform(0, 2, shape).astype("float32"),
            "sparse_void": np.where(sparse == 3, -1, sparse).astype("int32"),
            "empty": np.zeros((BATCHES, 0, 4), "float32"),
            "w_empty": np.zeros((BATCHES, 0), "float32")}


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
