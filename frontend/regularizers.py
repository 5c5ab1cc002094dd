"""Weight regularizers: a penalty tensor added to the training loss."""
import numpy as np

import graphc as gc
from graphc.errors import GraphcError

from .ops import normalize


class Regularizer:
    """Callable: regularizer(w) -> a scalar penalty added to the training loss."""

    def __call__(self, w):
        return 0.0

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class L1L2(Regularizer):
    """l1 * sum(|w|) + l2 * sum(w**2)."""

    def __init__(self, l1=0.0, l2=0.0):
        self.l1, self.l2 = float(l1), float(l2)

    def __call__(self, w):
        penalty = 0.0
        if self.l1:
            penalty = penalty + self.l1 * gc.sum(gc.abs(w))
        if self.l2:
            penalty = penalty + self.l2 * gc.sum(gc.square(w))
        return penalty

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


def L1(l1=0.01):
    return L1L2(l1=l1)


def L2(l2=0.01):
    return L1L2(l2=l2)


class OrthogonalRegularizer(Regularizer):
    """factor times the mean |cosine| between distinct rows (mode "rows") or columns of a
    2-D weight: pushes them toward orthogonality."""

    def __init__(self, factor=0.01, mode="rows"):
        if mode not in ("rows", "columns"):
            raise GraphcError(f"OrthogonalRegularizer: mode must be 'rows' or 'columns', got "
                              f"{mode!r}")
        self.factor, self.mode = float(factor), mode

    def __call__(self, w):
        if w.ndim != 2:
            raise GraphcError(f"OrthogonalRegularizer needs a rank-2 weight, got shape "
                              f"{tuple(w.shape)}")
        if self.mode == "rows":
            w = normalize(w, axis=1)
            product, size = gc.matmul(w, gc.transpose(w, (1, 0))), w.shape[0]
        else:
            w = normalize(w, axis=0)
            product, size = gc.matmul(gc.transpose(w, (1, 0)), w), w.shape[1]
        off_diagonal = product * gc.constant(1.0 - np.eye(size, dtype=np.float32))
        pairs = size * (size - 1.0) / 2.0
        return self.factor * 0.5 * gc.sum(gc.abs(off_diagonal)) / pairs

    def get_config(self):
        return {"factor": self.factor, "mode": self.mode}


REGULARIZERS = {"l1": L1, "l2": L2, "l1_l2": L1L2,
                "orthogonal_regularizer": OrthogonalRegularizer}
l1, l2, l1_l2, orthogonal_regularizer = L1, L2, L1L2, OrthogonalRegularizer


def get(identifier):
    """A regularizer from None, a name ("l2"), a {"l1", "l2"} config, or an instance."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, dict) and "class_name" in identifier:
        cls = {"L1L2": L1L2, "L1": L1L2, "L2": L1L2,
               "OrthogonalRegularizer": OrthogonalRegularizer}.get(identifier["class_name"])
        if cls is None:
            raise GraphcError(f"unknown regularizer class {identifier['class_name']!r}")
        return cls(**identifier.get("config", {}))
    if isinstance(identifier, dict):
        return L1L2(**identifier)
    if identifier in REGULARIZERS:
        return REGULARIZERS[identifier]()
    raise GraphcError(f"unknown regularizer {identifier!r}; expected one of "
                      f"{', '.join(REGULARIZERS)} or gk.regularizers.L1L2(...)")


def serialize(reg):
    """An L1L2's {"l1", "l2"} config (the form model files have always held), or another
    regularizer's {"class_name", "config"}."""
    if reg is None or isinstance(reg, L1L2):
        return None if reg is None else reg.get_config()
    return {"class_name": type(reg).__name__, "config": reg.get_config()}


def deserialize(config):
    return get(config)
