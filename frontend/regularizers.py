"""Weight regularizers: a penalty tensor added to the training loss."""
import graphc as gc
from graphc.errors import GraphcError


class L1L2:
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


REGULARIZERS = {"l1": L1, "l2": L2, "l1_l2": L1L2}


def get(identifier):
    """A regularizer from None, a name ("l2"), a {"l1", "l2"} config, or an instance."""
    if identifier is None or isinstance(identifier, L1L2):
        return identifier
    if isinstance(identifier, dict):
        return L1L2(**identifier)
    if identifier in REGULARIZERS:
        return REGULARIZERS[identifier]()
    raise GraphcError(f"unknown regularizer {identifier!r}; expected one of "
                      f"{', '.join(REGULARIZERS)} or gk.regularizers.L1L2(...)")


def serialize(reg):
    return None if reg is None else reg.get_config()
