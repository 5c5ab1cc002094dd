"""Activations by name: gk.activations.get("relu") -> a function of one tensor."""
import math

import graphc as gc
from graphc.errors import GraphcError


def linear(x):
    return x


def gelu(x):
    """The exact GELU, x * Phi(x), with Phi the standard normal CDF."""
    return 0.5 * x * (1.0 + gc.erf(x * (1.0 / math.sqrt(2.0))))


def softmax(x):
    return gc.nn.softmax(x, axis=-1)


ACTIVATIONS = {
    "linear": linear, "relu": gc.relu, "tanh": gc.tanh, "sigmoid": gc.sigmoid,
    "softmax": softmax, "gelu": gelu, "softplus": gc.softplus, "exp": gc.exp,
}


def get(identifier):
    """An activation function from a name, a function, or None (linear)."""
    if identifier is None:
        return linear
    if callable(identifier):
        return identifier
    try:
        return ACTIVATIONS[identifier]
    except (KeyError, TypeError):
        raise GraphcError(f"unknown activation {identifier!r}; expected one of "
                          f"{', '.join(sorted(ACTIVATIONS))} or a function") from None


def name_of(fn):
    """The name saving writes for an activation (a built-in's table name)."""
    for name, known in ACTIVATIONS.items():
        if known is fn:
            return name
    raise GraphcError(f"activation {fn!r} is not a built-in one and cannot be saved by name")


# Keras's other activation functions, by the names keras.activations exports
from .ops import (celu, elu, glu, hard_shrink, hard_sigmoid, hard_silu, hard_swish,  # noqa: E402
                  hard_tanh, leaky_relu, log_sigmoid, log_softmax, mish, relu6, selu, silu,
                  soft_shrink, softsign, sparse_plus, sparse_sigmoid, sparsemax, squareplus,
                  swish, tanh_shrink)
from . import ops as _ops  # noqa: E402
threshold = _ops.threshold  # takes its threshold and default value: not one by name
relu, tanh, sigmoid, softplus, exponential = gc.relu, gc.tanh, gc.sigmoid, gc.softplus, gc.exp
ACTIVATIONS.update({"elu": elu, "selu": selu, "softsign": softsign, "swish": swish,
                    "silu": silu, "relu6": relu6, "leaky_relu": leaky_relu,
                    "hard_sigmoid": hard_sigmoid, "hard_silu": hard_silu,
                    "hard_swish": hard_swish, "log_sigmoid": log_sigmoid,
                    "exponential": gc.exp, "log_softmax": log_softmax, "celu": celu, "glu": glu,
                    "hard_shrink": hard_shrink,
                    "hard_tanh": hard_tanh, "mish": mish, "soft_shrink": soft_shrink,
                    "sparse_plus": sparse_plus, "sparse_sigmoid": sparse_sigmoid,
                    "sparsemax": sparsemax, "squareplus": squareplus,
                    "tanh_shrink": tanh_shrink})


def serialize(fn):
    return name_of(fn)


def deserialize(name):
    return get(name)
