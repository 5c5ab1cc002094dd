"""Values that break code: the special numbers of every dtype, and arrays drawn around them."""
import numpy as np

import graphc as gc
from graphc.ir import dtypes


def _float_specials(dtype):
    info = np.finfo(np.float32 if dtype is gc.bfloat16 else dtype.np)
    biggest = float(info.max)
    if dtype is gc.bfloat16:
        biggest = float(dtypes.round_bfloat16(np.float32(3.3e38)))  # rounds below float32's
    subnormal = float(info.smallest_subnormal)
    return (0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 3.0, -7.0, np.inf, -np.inf, np.nan, biggest,
            -biggest, biggest / 2, float(info.tiny), -float(info.tiny), subnormal, -subnormal,
            3 * subnormal, float(info.eps), 1.0 + float(info.eps), 88.5, -104.0, 710.0, 1e5,
            -2.5, 0.1, 2.0 ** 24 + 2, 1e-8)


def _int_specials(dtype):
    info = np.iinfo(dtype.np)
    values = (0, 1, -1, 2, -2, 3, 7, -8, info.min, info.max, info.min + 1, info.max - 1,
              info.min // 2, info.max // 2 + 1, 46341, 65536)
    return tuple(int(v) for v in values if info.min <= v <= info.max)  # each in the type


def specials(dtype):
    """The special values of a dtype, as Python numbers."""
    if dtype.is_float:
        return _float_specials(dtype)
    if dtype.is_integer:
        return _int_specials(dtype)
    return (False, True)


# How the elements of an array are drawn: "typical" values a model sees, "integral" ones (ties,
# exact zeros, exact quotients), "wide" magnitudes from the subnormals to the overflow
# threshold, or "special": mostly the dtype's special values.
PROFILES = ("typical", "typical", "integral", "wide", "special", "special")


def array(rng, dtype, shape, profile):
    """An array of `dtype`'s storage type, of `shape`, drawn by `profile`."""
    shape = tuple(shape)
    n = int(np.prod(shape))
    if dtype.is_bool:
        return rng.random(n).reshape(shape) < 0.5
    if dtype.is_float:
        flat = _floats(rng, dtype, n, profile)
    else:
        flat = _ints(rng, dtype, n, profile)
    return dtypes.to_storage(flat, dtype).reshape(shape)


def _floats(rng, dtype, n, profile):
    with np.errstate(over="ignore"):
        if profile == "typical":
            return rng.uniform(-3, 3, n)
        if profile == "integral":
            return rng.integers(-4, 5, n).astype(np.float64)
        top = np.log10(float(np.finfo(np.float32 if dtype is gc.bfloat16 else dtype.np).max))
        wide = np.sign(rng.uniform(-1, 1, n)) * 10.0 ** rng.uniform(-top - 2, top, n)
        if profile == "wide":
            return wide
        special = np.asarray(specials(dtype))[rng.integers(0, len(specials(dtype)), n)]
        return np.where(rng.random(n) < 0.7, special, wide)


def _ints(rng, dtype, n, profile):
    if profile in ("typical", "integral"):
        return rng.integers(-5, 6, n)
    info = np.iinfo(dtype.np)
    wide = rng.integers(info.min, info.max, n, endpoint=True, dtype=dtype.np)
    if profile == "wide":
        return wide
    special = np.asarray(specials(dtype), dtype.np)[rng.integers(0, len(specials(dtype)), n)]
    return np.where(rng.random(n) < 0.7, special, wide)


def scalar(rng, dtype):
    """One special or typical value of `dtype` as a Python number."""
    values = specials(dtype)
    if rng.random() < 0.3:
        return array(rng, dtype, (), "typical").item()
    return values[rng.integers(0, len(values))]


def as_numpy_scalar(value, dtype):
    """value as a numpy scalar of dtype's storage type (bfloat16 has none: float32)."""
    return dtypes.to_storage(np.asarray(value), dtype)[()]
