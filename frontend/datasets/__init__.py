"""gk.datasets: small datasets shipped with graphc (no network needed)."""
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def load_digits(test_fraction=0.2, seed=0):
    """The UCI handwritten digits (8x8 images, 1,797 of them; see datasets/README.md).

    Returns ((x_train, y_train), (x_test, y_test)): images as float32 of shape (n, 8, 8) scaled
    to [0, 1], labels as int32 in 0..9; the split is a seeded shuffle, the same every time.
    """
    with np.load(os.path.join(HERE, "digits.npz"), allow_pickle=False) as f:
        images, labels = f["images"], f["labels"]
    x = images.astype(np.float32) / 16.0
    y = labels.astype(np.int32)
    order = np.random.default_rng(seed).permutation(len(x))
    cut = len(x) - int(round(len(x) * test_fraction))
    train, test = order[:cut], order[cut:]
    return (x[train], y[train]), (x[test], y[test])
