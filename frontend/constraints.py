"""Weight constraints: a function applied to a weight after each optimizer update (Keras's
kernel_constraint / bias_constraint), e.g. MaxNorm(2.0) rescales each column whose norm is
above 2 back to 2."""
import graphc as gc
from graphc.errors import GraphcError

from . import backend


class Constraint:
    """Callable: constraint(w) -> the projected w. The base class leaves w as it is."""

    def __call__(self, w):
        return w

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _norms(w, axis):
    return gc.sqrt(gc.sum(gc.square(w), axis=axis, keepdims=True))


class MaxNorm(Constraint):
    """Slices along `axis` whose L2 norm exceeds max_value are scaled down to it."""

    def __init__(self, max_value=2, axis=0):
        self.max_value, self.axis = max_value, axis

    def __call__(self, w):
        norms = _norms(w, self.axis)
        desired = gc.clip(norms, 0.0, float(self.max_value))
        return w * (desired / (backend.epsilon() + norms))

    def get_config(self):
        return {"max_value": self.max_value, "axis": self.axis}


class MinMaxNorm(Constraint):
    """Norms along `axis` moved toward [min_value, max_value] by `rate` (1: all the way)."""

    def __init__(self, min_value=0.0, max_value=1.0, rate=1.0, axis=0):
        self.min_value, self.max_value, self.rate, self.axis = min_value, max_value, rate, axis

    def __call__(self, w):
        norms = _norms(w, self.axis)
        desired = (self.rate * gc.clip(norms, float(self.min_value), float(self.max_value))
                   + (1 - self.rate) * norms)
        return w * (desired / (backend.epsilon() + norms))

    def get_config(self):
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate,
                "axis": self.axis}


class NonNeg(Constraint):
    """Negative entries set to zero."""

    def __call__(self, w):
        return w * gc.cast(w >= 0, w.dtype)


class UnitNorm(Constraint):
    """Each slice along `axis` divided by its L2 norm."""

    def __init__(self, axis=0):
        self.axis = axis

    def __call__(self, w):
        return w / (backend.epsilon() + _norms(w, self.axis))

    def get_config(self):
        return {"axis": self.axis}


CONSTRAINTS = {"max_norm": MaxNorm, "min_max_norm": MinMaxNorm, "non_neg": NonNeg,
               "unit_norm": UnitNorm}
max_norm, min_max_norm, non_neg, unit_norm = MaxNorm, MinMaxNorm, NonNeg, UnitNorm


def get(identifier):
    """A constraint from None, a name ("non_neg", "NonNeg"), a {"class_name", "config"} dict,
    an instance or a function."""
    if identifier is None or isinstance(identifier, Constraint) or callable(identifier):
        return identifier
    if isinstance(identifier, dict):
        return _known(identifier.get("class_name"))(**identifier.get("config", {}))
    return _known(identifier)()


def _known(name):
    by_class = {cls.__name__: cls for cls in CONSTRAINTS.values()}
    cls = CONSTRAINTS.get(name) or by_class.get(name)
    if cls is None:
        raise GraphcError(f"unknown constraint {name!r}; expected one of "
                          f"{', '.join(by_class)} or a Constraint")
    return cls


def serialize(constraint):
    if constraint is None:
        return None
    if type(constraint) not in CONSTRAINTS.values():
        raise GraphcError(f"constraint {constraint!r} is not a built-in one and cannot be "
                          f"saved by name")
    return {"class_name": type(constraint).__name__, "config": constraint.get_config()}


def deserialize(config):
    return get(config)
