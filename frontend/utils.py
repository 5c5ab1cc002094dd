"""gk.utils: seeding, one-hot labels, and plot_model."""
import os
import shutil
import subprocess

import numpy as np

from graphc.errors import GraphcError

from .backend import set_random_seed  # noqa: F401  (public here, as in Keras)


def to_categorical(y, num_classes=None):
    """Integer labels -> one-hot float32 rows."""
    y = np.asarray(y, dtype=np.int64).reshape(-1)
    num_classes = int(y.max()) + 1 if num_classes is None else num_classes
    out = np.zeros((len(y), num_classes), np.float32)
    out[np.arange(len(y)), y] = 1
    return out
