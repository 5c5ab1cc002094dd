"""Arrays in and out of the step functions: structure, checks, validation split, batches."""
import math

import numpy as np

from graphc.errors import ArgumentError, GraphcError, IndexError_, ShapeError


def log_value(value):
    """A step's result as fit's logs hold it: a float, or an array for a metric with one
    value per class (F1Score(average=None))."""
    value = np.asarray(value)
    return float(value) if value.size == 1 and value.ndim == 0 else value


def as_arrays(data, what):
    """A list of numpy arrays from an array or a list/tuple of them."""
    if data is None:
        return None
    items = list(data) if isinstance(data, (list, tuple)) else [data]
    arrays = [np.asarray(a) for a in items]
    for a in arrays:
        if a.ndim == 0:
            raise ShapeError(f"{what} must be arrays with a batch axis, got a scalar")
    return arrays


def num_examples(xs, ys=None, names=("x", "y")):
    """The number of examples (rows) every array of xs and ys holds, or a ShapeError saying
    how many each holds."""
    counts = [(name if len(group) == 1 else f"{name}[{i}]", len(a))
              for name, group in zip(names, (xs, ys)) if group for i, a in enumerate(group)]
    if len({n for _, n in counts}) > 1:
        raise ShapeError(", ".join(f"{name} has {n} samples" for name, n in counts)
                         + ": every array needs one row per sample, the same number of rows")
    if not counts or counts[0][1] == 0:
        raise ShapeError("no examples: the arrays are empty")
    return counts[0][1]


def check_class_indices(y, classes, what, loss, ignore_class=None):
    """An IndexError_ naming the first label of `y` outside [0, classes) (ignore_class
    aside), by its index in `y` (the user's array, not a shuffled batch)."""
    bad = ((y < 0) | (y >= classes)) & (y != ignore_class)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise IndexError_(f"{what}[{', '.join(map(str, first))}] is {y[first]}, not a class "
                          f"index: {loss} takes labels in [0, {classes}) for an output of "
                          f"{classes} classes ({int(bad.sum())} bad labels in all)")


def label_dtype(array):
    """Labels feed as int32 (class indices) or float32."""
    if np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_:
        return "int32"
    return "float32"


def feed_dtype(array):
    return "int32" if np.issubdtype(array.dtype, np.integer) else "float32"


def split_last(groups, fraction):
    """(training part, validation part) of each array group (a list of arrays, an array or
    None), x and y first: the validation part is the last `fraction` of the examples, taken
    before any shuffling (as Keras documents)."""
    if not 0 < fraction < 1:
        raise GraphcError(f"validation_split must be in (0, 1), got {fraction!r}")
    n = num_examples(*groups[:2])
    cut = n - int(math.floor(n * fraction))
    if cut in (0, n):
        raise GraphcError(f"validation_split={fraction} of {n} examples leaves one of the "
                          "two parts empty")
    return [_rows(g, slice(cut)) for g in groups], [_rows(g, slice(cut, None)) for g in groups]


def _rows(group, rows):
    """A list of arrays, or one array (or None), at `rows`."""
    if isinstance(group, list):
        return [a[rows] for a in group]
    return None if group is None else group[rows]


def batch_slices(n, batch_size, order=None):
    """Index arrays (or slices) of consecutive batches; the last may be smaller."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise GraphcError(f"batch_size must be a positive integer, got {batch_size!r}")
    for start in range(0, n, batch_size):
        yield slice(start, start + batch_size) if order is None else \
            order[start:start + batch_size]


class PyDataset:
    """Keras's PyDataset (and Sequence): a dataset of batches that fit reads one at a time.
    Subclasses define __len__ (the number of batches) and __getitem__(i) -> (x, y) (x and y
    arrays, or lists of arrays, for one batch); on_epoch_end() runs after each epoch (e.g.
    to shuffle). fit reads batches 0 .. len-1 in order (shuffle does not apply, as in
    Keras); workers and use_multiprocessing are accepted and batches are read in this
    thread."""

    def __init__(self, workers=1, use_multiprocessing=False, max_queue_size=10):
        self.workers, self.use_multiprocessing = workers, use_multiprocessing
        self.max_queue_size = max_queue_size

    def __getitem__(self, index):
        raise NotImplementedError

    def __len__(self):
        raise NotImplementedError

    @property
    def num_batches(self):
        return len(self)

    def on_epoch_begin(self):
        pass

    def on_epoch_end(self):
        pass


def dataset_batch(dataset, index):
    """Batch `index` of a PyDataset, (x, y) or (x, y, sample_weight), as (xs, ys, weights):
    lists of arrays and the weights as given (None without)."""
    item = dataset[index]
    if not isinstance(item, tuple) or len(item) not in (2, 3):
        raise GraphcError(f"{type(dataset).__name__}[{index}] must be an (x, y) or (x, y, "
                          f"sample_weight) tuple, got {type(item).__name__}")
    xs, ys = as_arrays(item[0], "x"), as_arrays(item[1], "y")
    num_examples(xs, ys)
    return xs, ys, item[2] if len(item) == 3 else None


def sample_weights(weights, ys, names, class_weight=None):
    """The sample weights of each output (a list, or None without), float32 arrays of one
    row per example of ys: `weights` as given (one array for every output, or a list or a
    dict by output name of one per output), or Keras's from class_weight (a dict class ->
    weight, 1 for a class it lacks) by the class of each label of the single output's ys
    (an argmax of one-hot rows)."""
    if class_weight is not None:
        if weights is not None:
            raise ArgumentError("class_weight and sample_weight cannot both be given: the "
                                "class weights make the sample weights")
        if len(ys) != 1:
            raise ArgumentError(f"class_weight applies to a model of one output, this one "
                                f"has {len(ys)}")
        y = ys[0]
        if y.ndim > 1:
            y = np.argmax(y, axis=-1) if y.shape[-1] != 1 else y[..., 0]
        weights = [class_weight.get(int(c), 1.0) for c in np.round(y).astype("int32")]
    if weights is None:
        return None
    if isinstance(weights, dict):
        missing = [name for name in names if name not in weights]
        if missing:
            raise ArgumentError(f"sample_weight dict lacks outputs {missing}; outputs are "
                                f"{names}")
        weights = [weights[name] for name in names]
    per_output = isinstance(weights, (list, tuple)) and len(weights) == len(names) and \
        all(np.ndim(w) >= 1 for w in weights)
    return [_rows_of_weights(w, len(ys[0])) for w in weights] if per_output else \
        [_rows_of_weights(weights, len(ys[0]))] * len(names)


def _rows_of_weights(weights, n):
    weights = np.asarray(weights, dtype="float32")
    if weights.ndim == 0 or len(weights) != n:
        raise ShapeError(f"sample_weight has shape {weights.shape}, needs one row for each "
                         f"of the {n} samples")
    return weights
