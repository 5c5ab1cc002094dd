"""Random draws inside loop and branch bodies (other than the fn of an outermost scan, whose
draws the scan makes before the loop: see control_flow._draws_before).

A draw in such a body becomes a pure op, "keyed_random": its numbers are a function of a key
and of the step index of every loop around it, outermost first, so that

- each step of a loop draws new numbers (its index differs), a nested loop's steps too;
- the backward loop of a gradient, which recomputes the body with the forward's carries (the
  index is one: see BodyBuilder.step_index), sees the very numbers the forward step drew;
- every device draws the same numbers: the reference computes them on the host, and a
  compiled body runs the op as a host step.

The key is one number per run, from a random node of the graph outside every body, drawn
anew each run from the session's generator for that node (so with the draw's seed, or the
session's, the runs repeat). Inside an outermost scan's fn, the key is one per step instead,
drawn by the scan before the loop like its own draws (so it changes when the scan's draw
counter advances). The key and the indices seed numpy's SeedSequence, whose hash of them
seeds a PCG64 generator: a counter-based stream per (key, indices).
"""
import numpy as np

from ..errors import DTypeError, GraphcError
from ..ir import dtypes
from ..ir.graph import new_uid
from ..ir.types import TensorType
from ..ir.source import user_source
from .registry import NOT_DIFFERENTIABLE, PendingNode, apply, register
from .state import draw

KEY_RANGE = 2.0 ** 53  # keys are integral float64 numbers below this: every one exact


def _keyed_infer(*inputs, kind, shape, dtype, params, path):
    for t in inputs[:path]:
        if t.rank or not (t.dtype.is_integer or t.dtype is dtypes.float64):
            raise DTypeError(f"a keyed draw takes {path} scalar key and step words first, got "
                             f"{t.dtype.name} of rank {t.rank}")
    return TensorType(dtype, inputs[path].shape if len(inputs) > path else shape)


def _keyed_ref(*arrays, kind, shape, dtype, params, path):
    words = [int(a) for a in arrays[:path]]
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(words)))
    shape = arrays[path].shape if len(arrays) > path else shape
    return dtypes.to_storage(draw(rng, kind, shape, params), dtype)


register("keyed_random", infer=_keyed_infer, ref=_keyed_ref, grad=NOT_DIFFERENTIABLE,
         kind="host",
         doc="the numbers random draw `kind` (random_normal, random_uniform) gives from a "
             "generator seeded by its first `path` inputs (a key, then loops' step indices); "
             "shaped like its last input where there is one more, else `shape`")


def key_of(builder, attrs, pending):
    """(key, step indices) for a draw with `attrs` in the body `builder` builds: tensors of
    the builders around it, outermost index first (`pending`: the draw, for errors)."""
    indices = []
    b = builder
    while b is not None:
        if b.draws is not None:  # an outermost scan's fn: a key per step, drawn before
            return b.draw("random_uniform", (), _key_attrs(attrs)), indices
        if b.runs is None:
            raise GraphcError(f"random draws are not supported in the body {b.name!r}",
                              pending)
        if b.runs == "steps":
            indices.insert(0, b.step_index())
        top, b = b, b.parent
    with top.outer.as_default():
        return apply("random_uniform", [], **_key_attrs(attrs)), indices


def _key_attrs(attrs):
    return dict(uid=new_uid(), shape=(), dtype=dtypes.float64, seed=attrs["seed"],
                params=(0.0, KEY_RANGE))


def draw_in_body(builder, op, inputs, name, attrs):
    """The keyed_random node standing for random draw `op` (inputs: none, or the tensor whose
    shape it takes) in the body `builder` builds."""
    key, indices = key_of(builder, attrs, PendingNode(builder.graph, op, name, user_source()))
    return apply("keyed_random", [key] + indices + list(inputs), name=name, kind=op,
                 shape=attrs["shape"], dtype=attrs["dtype"], params=attrs["params"],
                 path=1 + len(indices))
