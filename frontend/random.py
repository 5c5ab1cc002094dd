"""gk.random: Keras's keras.random over graphc's random ops. Draws are ops of the graph: a
compiled function draws new numbers on each run, the same sequence for the same seed. A seed
is an int, a SeedGenerator (each draw takes its next seed), or None (the next seed of
gk.utils.set_random_seed's stream).

Keras on JAX and graphc use different generators, so the same seed gives the same
distribution, not the same numbers. gamma and beta draw by Marsaglia and Tsang's rejection
method with a fixed number of candidates per value (16; one is rejected with probability
below 5%, so a value without an accepted candidate has probability below 1e-20).
"""
import numpy as np

import graphc as gc
from graphc.errors import GraphcError
from graphc.ops.state import random_uniform_like

from . import backend
from . import ops as _o


class SeedGenerator:
    """A stream of seeds: next() gives the next one (a new draw each call)."""

    def __init__(self, seed=None, name=None, **kwargs):
        self.seed = backend.next_seed() if seed is None else int(seed)
        self.name = name or "seed_generator"
        self._rng = np.random.default_rng(self.seed)

    def next(self, ordered=True):
        return int(self._rng.integers(0, 2 ** 31 - 1))

    def get_config(self):
        return {"seed": self.seed}


def _seed(seed):
    if isinstance(seed, SeedGenerator):
        return seed.next()
    return backend.next_seed() if seed is None else int(seed)


def _shape(shape):
    shape = (shape,) if isinstance(shape, int) else tuple(int(d) for d in shape)
    if any(d < 0 for d in shape):
        raise GraphcError(f"a random draw needs a static non-negative shape, got {shape}")
    return shape


def normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    return gc.random.normal(_shape(shape), mean, stddev, dtype=dtype or "float32",
                            seed=_seed(seed))


def uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
    return gc.random.uniform(_shape(shape), minval, maxval, dtype=dtype or "float32",
                             seed=_seed(seed))


def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    """A normal draw restricted to two stddevs around the mean, by inverting the normal CDF
    of a uniform draw between Phi(-2) and Phi(2)."""
    lo = 0.02275013194817921  # Phi(-2)
    u = uniform(shape, lo, 1.0 - lo, seed=seed)
    z = np.sqrt(2.0) * _o.erfinv(2.0 * u - 1.0)
    return gc.cast(mean + stddev * gc.clip(z, -2.0, 2.0), gc.as_dtype(dtype or "float32"))


def randint(shape, minval, maxval, dtype="int32", seed=None):
    """Integers in [minval, maxval)."""
    u = uniform(shape, float(minval), float(maxval), seed=seed)
    return gc.cast(gc.clip(gc.floor(u), float(minval), float(maxval - 1)), gc.as_dtype(dtype))


def categorical(logits, num_samples, dtype="int32", seed=None):
    """num_samples class indices per row of logits (batch, classes), by the Gumbel-max
    trick: argmax(logits + Gumbel noise) is distributed as softmax(logits)."""
    logits = _o._t(logits)
    batch, classes = logits.shape
    u = uniform((batch, num_samples, classes), 1e-20, 1.0, seed=seed)
    noisy = gc.expand_dims(logits, 1) - gc.log(-gc.log(u))
    return gc.cast(gc.argmax(noisy, axis=2), gc.as_dtype(dtype))


def dropout(inputs, rate, noise_shape=None, seed=None):
    """inputs with each value (or each slice of noise_shape, broadcast) zeroed with
    probability rate, the rest scaled by 1 / (1 - rate)."""
    x = _o._t(inputs)
    shape = tuple(x.shape) if noise_shape is None else tuple(
        x.shape[i] if d is None else d for i, d in enumerate(noise_shape))
    keep = gc.cast(uniform(shape, seed=seed) >= rate, x.dtype)
    return x * keep / (1.0 - rate)


def shuffle(x, axis=0, seed=None):
    """x with its slices along axis in a random order (a sort of random keys)."""
    x = _o._t(x)
    n = x.shape[axis]
    order = gc.top_k(uniform((n,), seed=seed), n)[1]
    return gc.gather(x, order, axis=axis % x.ndim)


_CANDIDATES = 16


def _candidate_draws(shape, seed, like):
    """(normal, uniform in (0, 1]) draws of shape + (_CANDIDATES,), or of like's run-time
    shape + (_CANDIDATES,) where like is a tensor (its normals by Box-Muller)."""
    if like is None:
        cand = shape + (_CANDIDATES,)
        return normal(cand, seed=seed), uniform(cand, 1e-30, 1.0, seed=seed)
    many = gc.expand_dims(like, -1) + gc.cast(gc.constant(np.zeros(_CANDIDATES, np.float32)),
                                              like.dtype)
    # seed + 1 is left to the boost's draw of _standard_gamma
    u1, u2, u = (random_uniform_like(many, 1e-30, 1.0, seed=seed + k) for k in (0, 2, 4))
    return gc.sqrt(-2.0 * gc.log(u1)) * gc.cos(2.0 * np.pi * u2), u


def _gamma_constants(shape, alpha, like):
    """(d, c, boost, exponent, any boost) of Marsaglia-Tsang for alpha: a number or an array
    broadcasting against shape, or, with `like`, a number or a scalar tensor."""
    if isinstance(alpha, gc.Tensor):
        boost = alpha < 1.0
        d = gc.where(boost, alpha + 1.0, alpha) - 1.0 / 3.0
        return d, 1.0 / gc.sqrt(9.0 * d), boost, gc.where(boost, 1.0 / alpha, 0.0), True
    alpha = np.broadcast_to(np.asarray(alpha, np.float32), shape if like is None else ())
    boost = alpha < 1
    d = np.where(boost, alpha + 1.0, alpha).astype(np.float32) - 1.0 / 3.0
    exponent = np.where(boost, 1.0 / alpha, 0.0).astype(np.float32)
    return (gc.constant(d[..., None]), gc.constant((1.0 / np.sqrt(9.0 * d))[..., None]),
            gc.constant(boost), gc.constant(exponent), boost.any())


def _standard_gamma(shape, alpha, seed, like=None):
    """Marsaglia-Tsang draws of Gamma(alpha, 1); alpha < 1 through Gamma(alpha + 1) * U^(1/a).
    alpha is a Python number or an array broadcasting against shape; with a tensor `like`,
    the draws take its (run-time) shape instead and alpha is a number or a scalar tensor."""
    axis = len(shape) if like is None else like.ndim
    dd, cc, boost, exponent, may_boost = _gamma_constants(shape, alpha, like)
    z, u = _candidate_draws(shape, seed, like)
    v = (1.0 + cc * z) ** 3
    safe_v = gc.maximum(v, 1e-30)
    accept = gc.logical_and(v > 0, gc.log(u) < 0.5 * z * z + dd - dd * safe_v
                            + dd * gc.log(safe_v))
    first = gc.argmax(gc.cast(accept, gc.int32), axis=axis)  # the first accepted
    value = gc.squeeze(gc.gather_elements(dd * safe_v,
                                          gc.expand_dims(first, -1), axis=axis), axis=axis)
    if may_boost:
        later = None if seed is None else seed + 1
        u2 = uniform(shape, 1e-30, 1.0, seed=later) if like is None else \
            random_uniform_like(like, 1e-30, 1.0, seed=later)
        value = value * gc.where(boost, gc.pow(u2, exponent), 1.0)
    return value


def beta_like(like, alpha, beta, seed):
    """Beta(alpha, beta) draws shaped like the tensor `like` (run-time sizes allowed), as
    X / (X + Y) of two gamma draws; alpha and beta numbers or scalar tensors."""
    x = _standard_gamma((), alpha, seed, like)
    y = _standard_gamma((), beta, seed + 7919, like)
    return x / (x + y)


def gamma(shape, alpha, dtype=None, seed=None):
    shape = _shape(shape)
    return gc.cast(_standard_gamma(shape, alpha, _seed(seed)), gc.as_dtype(dtype or "float32"))


def beta(shape, alpha, beta, dtype=None, seed=None):
    """X / (X + Y) with X ~ Gamma(alpha), Y ~ Gamma(beta)."""
    shape, s = _shape(shape), _seed(seed)
    x = _standard_gamma(shape, alpha, s)
    y = _standard_gamma(shape, beta, s + 7919)
    return gc.cast(x / (x + y), gc.as_dtype(dtype or "float32"))


def binomial(shape, counts, probabilities, dtype=None, seed=None):
    """The number of successes in `counts` trials of success probability `probabilities`
    (numbers or arrays broadcasting against shape), as a sum of Bernoulli draws."""
    shape = _shape(shape)
    counts = np.broadcast_to(np.asarray(counts), shape)
    most = int(counts.max()) if counts.size else 0
    p = np.broadcast_to(np.asarray(probabilities, np.float32), shape)
    u = uniform(shape + (max(most, 1),), seed=seed)
    trial = gc.constant(np.arange(max(most, 1)) < counts[..., None])
    hits = gc.logical_and(u < gc.constant(p[..., None]), trial)
    return gc.cast(gc.sum(gc.cast(hits, gc.float32), axis=len(shape)),
                   gc.as_dtype(dtype or "float32"))
