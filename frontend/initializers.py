"""Weight initializers: numpy arrays drawn from a seeded generator, so a model built twice
after gk.utils.set_random_seed(s) (or with explicit seeds) starts from the same weights.

Fan-in and fan-out follow Keras: for a kernel of shape (..., in, out) the leading dims are the
receptive field, multiplied into both.
"""
import numpy as np

from graphc.errors import GraphcError

from . import backend


def _fans(shape):
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive


class Initializer:
    """Callable: init(shape, dtype) -> ndarray."""

    def get_config(self):
        return {}

    def __call__(self, shape, dtype="float32"):
        return np.asarray(self.draw(tuple(shape)), dtype=dtype)


class Constant(Initializer):
    def __init__(self, value=0.0):
        self.value = float(value)

    def draw(self, shape):
        return np.full(shape, self.value)

    def get_config(self):
        return {"value": self.value}


class Zeros(Constant):
    def __init__(self):
        super().__init__(0.0)

    def get_config(self):
        return {}


class Ones(Constant):
    def __init__(self):
        super().__init__(1.0)

    def get_config(self):
        return {}


class _Random(Initializer):
    """Draws from numpy's generator seeded by `seed`, else by the frontend's seed stream."""

    def __init__(self, seed=None):
        self.seed = seed

    def _rng(self):
        return np.random.default_rng(backend.next_seed() if self.seed is None else self.seed)

    def get_config(self):
        return {"seed": self.seed}


class RandomNormal(_Random):
    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        self.mean, self.stddev = mean, stddev

    def draw(self, shape):
        return self._rng().normal(self.mean, self.stddev, shape)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class RandomUniform(_Random):
    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        super().__init__(seed)
        self.minval, self.maxval = minval, maxval

    def draw(self, shape):
        return self._rng().uniform(self.minval, self.maxval, shape)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


def _truncated(rng, shape):
    """Standard normal draws, those outside [-2, 2] redrawn until inside (as Keras does)."""
    out = rng.normal(0.0, 1.0, shape)
    bad = np.abs(out) > 2
    while bad.any():
        out[bad] = rng.normal(0.0, 1.0, int(bad.sum()))
        bad = np.abs(out) > 2
    return out


class TruncatedNormal(_Random):
    """A normal draw of mean and stddev, values beyond two stddevs redrawn."""

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        self.mean, self.stddev = mean, stddev

    def draw(self, shape):
        return self.mean + self.stddev * _truncated(self._rng(), shape)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class VarianceScaling(_Random):
    """Scale / fan draws: uniform in +-sqrt(3 * var), a normal of variance var truncated at 2
    stddevs ("truncated_normal"), or a plain normal ("untruncated_normal")."""
    DISTRIBUTIONS = ("uniform", "truncated_normal", "untruncated_normal")

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None):
        super().__init__(seed)
        if scale <= 0.0:
            raise GraphcError(f"VarianceScaling: scale must be positive, got {scale}")
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise GraphcError(f"VarianceScaling: mode must be fan_in, fan_out or fan_avg, "
                              f"got {mode!r}")
        distribution = distribution.lower()
        if distribution not in self.DISTRIBUTIONS:
            raise GraphcError(f"VarianceScaling: distribution must be one of "
                              f"{', '.join(self.DISTRIBUTIONS)}, got {distribution!r}")
        self.scale, self.mode, self.distribution = float(scale), mode, distribution

    def draw(self, shape):
        fan_in, fan_out = _fans(shape)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}
        var = self.scale / max(1.0, fan[self.mode])
        rng = self._rng()
        if self.distribution == "uniform":
            limit = np.sqrt(3.0 * var)
            return rng.uniform(-limit, limit, shape)
        if self.distribution == "untruncated_normal":
            return rng.normal(0.0, np.sqrt(var), shape)
        # 0.8796...: the stddev of a standard normal truncated to [-2, 2]
        return _truncated(rng, shape) * (np.sqrt(var) / 0.87962566103423978)

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution,
                "seed": self.seed}


def _preset(name, scale, mode, distribution):
    """A VarianceScaling whose only argument is the seed (GlorotUniform, HeNormal, ...)."""
    def __init__(self, seed=None):
        VarianceScaling.__init__(self, scale, mode, distribution, seed)

    def get_config(self):
        return {"seed": self.seed}
    return type(name, (VarianceScaling,), {"__init__": __init__, "get_config": get_config,
                                           "__doc__": f"VarianceScaling({scale}, {mode!r}, "
                                                      f"{distribution!r})."})


GlorotUniform = _preset("GlorotUniform", 1.0, "fan_avg", "uniform")
GlorotNormal = _preset("GlorotNormal", 1.0, "fan_avg", "truncated_normal")
HeNormal = _preset("HeNormal", 2.0, "fan_in", "truncated_normal")
HeUniform = _preset("HeUniform", 2.0, "fan_in", "uniform")
LecunNormal = _preset("LecunNormal", 1.0, "fan_in", "truncated_normal")
LecunUniform = _preset("LecunUniform", 1.0, "fan_in", "uniform")


class Identity(Initializer):
    """gain times the identity matrix (a 2-D shape; a non-square one gets np.eye's)."""

    def __init__(self, gain=1.0):
        self.gain = gain

    def draw(self, shape):
        if len(shape) != 2:
            raise GraphcError(f"the identity initializer needs a 2-D shape, got {shape}")
        return self.gain * np.eye(*shape)

    def get_config(self):
        return {"gain": self.gain}


class Orthogonal(_Random):
    """A (semi-)orthogonal matrix times `gain` (Keras's default for recurrent kernels): the Q
    of a QR decomposition of a normal draw, its columns' signs fixed by R's diagonal."""

    def __init__(self, gain=1.0, seed=None):
        super().__init__(seed)
        self.gain = gain

    def draw(self, shape):
        if len(shape) < 2:
            raise GraphcError(f"the orthogonal initializer needs a shape of rank >= 2, got "
                              f"{shape}")
        rows, cols = int(np.prod(shape[:-1])), shape[-1]
        a = self._rng().normal(0.0, 1.0, (max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q = q * np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return self.gain * q.reshape(shape)

    def get_config(self):
        return {"gain": self.gain, "seed": self.seed}


INITIALIZERS = {
    "zeros": Zeros, "ones": Ones, "constant": Constant, "random_normal": RandomNormal,
    "random_uniform": RandomUniform, "glorot_uniform": GlorotUniform,
    "glorot_normal": GlorotNormal, "he_normal": HeNormal, "he_uniform": HeUniform,
    "lecun_normal": LecunNormal, "lecun_uniform": LecunUniform, "orthogonal": Orthogonal,
    "truncated_normal": TruncatedNormal, "variance_scaling": VarianceScaling,
    "identity": Identity,
}
# Keras's lower-case names are the classes themselves, and two classes have a second name
globals().update(INITIALIZERS)
IdentityInitializer, OrthogonalInitializer = Identity, Orthogonal


def get(identifier):
    """An initializer from a name, a {"class_name", "config"} dict, or an instance."""
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, dict):
        return INITIALIZERS[_known(identifier.get("class_name"))](**identifier.get("config", {}))
    return INITIALIZERS[_known(identifier)]()


def serialize(init):
    name = next(k for k, cls in INITIALIZERS.items() if type(init) is cls)
    return {"class_name": name, "config": init.get_config()}


# Keras's short spellings (its doc's cell example uses "uniform")
_ALIASES = {"uniform": "random_uniform", "normal": "random_normal", "one": "ones",
            "zero": "zeros"}


def _known(name):
    by_class = {cls.__name__: key for key, cls in INITIALIZERS.items()}
    name = by_class.get(name, name)  # Keras also takes class names ("Zeros", "HeNormal")
    name = _ALIASES.get(name, name)
    if name not in INITIALIZERS:
        raise GraphcError(f"unknown initializer {name!r}; expected one of "
                          f"{', '.join(INITIALIZERS)} or an Initializer")
    return name


def deserialize(config):
    return get(config)
