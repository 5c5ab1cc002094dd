"""Keras's approximate quantile summaries, which Discretization.adapt learns its bin boundaries
from: a summary is a (2, n) float32 array of sorted values and the weights (counts) they stand
for; batches are summarized, merged and compressed to about 1 / epsilon points, and the
boundaries are the summary compressed to num_bins points, less the last. Written with the
same numpy calls in the same order as Keras, so that the boundaries are equal to the bit."""
import numpy as np


def empty():
    return np.array([[], []], dtype="float32")


def summarize(values, epsilon):
    """Every step-th sorted value of a batch, each standing for `step` values, where step
    makes about 1 / epsilon points (all values, weight 1, for a smaller batch)."""
    values = np.sort(np.reshape(values, [-1]))
    step = max(np.size(values) / (1.0 / epsilon), 1)
    boundaries = values[int(step - 1)::int(step)]
    return np.stack([boundaries, np.ones_like(boundaries) * step])


def merge(summary, other, epsilon):
    """Two summaries as one, compressed to about 1 / epsilon points."""
    merged = np.concatenate((summary, other), axis=1)
    return compress(np.take(merged, np.argsort(merged[0]), axis=1), epsilon)


def compress(summary, epsilon):
    """The summary at the cumulative weight fractions epsilon, 2 epsilon, ..., 1, by linear
    interpolation; a summary of fewer than 1 / epsilon points stays as it is."""
    if summary.shape[1] * epsilon < 1:
        return summary
    percents = epsilon + np.arange(0.0, 1.0, epsilon)
    cum_weights = summary[1].cumsum()
    cum_weight_percents = cum_weights / cum_weights[-1]
    new_bins = np.interp(percents, cum_weight_percents, summary[0])
    cum_weights = np.interp(percents, cum_weight_percents, cum_weights)
    new_weights = cum_weights - np.concatenate((np.array([0]), cum_weights[:-1]))
    return np.stack((new_bins, new_weights)).astype("float32")


def bin_boundaries(summary, num_bins):
    """The num_bins - 1 boundaries (fewer for a summary of fewer points) of a summary."""
    return compress(summary, 1.0 / num_bins)[0, :-1].tolist()
