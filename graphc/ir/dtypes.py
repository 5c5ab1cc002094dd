"""The dtype table and the promotion rules.

A DType names an element type and the numpy dtype that stores it. bfloat16 has no numpy dtype:
it is stored as float32 whose values are rounded to bfloat16 precision after every op, so the
reference computes what a bfloat16 device would.
"""
import numpy as np

from ..errors import DTypeError


class DType:
    __slots__ = ("name", "np", "kind", "bits", "rank")

    def __init__(self, name, storage, kind, bits, rank):
        self.name = name
        self.np = np.dtype(storage)
        self.kind = kind  # "b" bool, "i" signed integer, "u" unsigned integer, "f" floating point
        self.bits = bits
        self.rank = rank  # position in the promotion lattice below

    @property
    def is_float(self):
        return self.kind == "f"

    @property
    def is_integer(self):
        return self.kind in "iu"

    @property
    def is_unsigned(self):
        return self.kind == "u"

    @property
    def is_bool(self):
        return self.kind == "b"

    @property
    def itemsize(self):
        return max(1, self.bits // 8)

    def __repr__(self):
        return f"gc.{self.name}"

    def __reduce__(self):
        return (as_dtype, (self.name,))


# name, storage, kind, bits, rank (bfloat16 is stored as float32)
(bool_, int8, uint8, int16, uint16, int32, uint32, int64, uint64, float16, bfloat16, float32,
 float64) = (DType(*row) for row in (
    ("bool", np.bool_, "b", 8, 0), ("int8", np.int8, "i", 8, 1), ("uint8", np.uint8, "u", 8, 1),
    ("int16", np.int16, "i", 16, 1), ("uint16", np.uint16, "u", 16, 1),
    ("int32", np.int32, "i", 32, 1), ("uint32", np.uint32, "u", 32, 1),
    ("int64", np.int64, "i", 64, 1), ("uint64", np.uint64, "u", 64, 1),
    ("float16", np.float16, "f", 16, 2), ("bfloat16", np.float32, "f", 16, 2),
    ("float32", np.float32, "f", 32, 3), ("float64", np.float64, "f", 64, 4)))

INTEGERS = (int8, uint8, int16, uint16, int32, uint32, int64, uint64)
ALL = (bool_,) + INTEGERS + (float16, bfloat16, float32, float64)
BY_NAME = {d.name: d for d in ALL}
BY_NAME["bool_"] = bool_
_BY_NUMPY = {d.np: d for d in ALL if d is not bfloat16}


def as_dtype(value):
    """A graphc DType from a DType, a numpy dtype or type, or a name ('float32', 'bool')."""
    if isinstance(value, DType):
        return value
    if isinstance(value, str) and value in BY_NAME:
        return BY_NAME[value]
    try:
        npd = np.dtype(value)
    except TypeError:
        raise DTypeError(f"expected a dtype, got {value!r}") from None
    if npd in _BY_NUMPY:
        return _BY_NUMPY[npd]
    raise DTypeError(f"graphc has no dtype for numpy {npd}; use one of "
                     f"{', '.join(d.name for d in ALL)}")


# Promotion of two tensors' dtypes (both operands are tensors):
#
#            bool    integer  float16 bfloat16 float32 float64
#   bool     bool    integer  float16 bfloat16 float32 float64
#   integer          numpy's  float16 bfloat16 float32 float64
#   float16                   float16 float32  float32 float64
#   bfloat16                          bfloat16 float32 float64
#   float32                                    float32 float64
#
# i.e. bool < integers < float16, bfloat16 < float32 < float64 (the higher rank wins), float16
# with bfloat16 meet at float32, and two integer dtypes promote as numpy promotes them: to the
# narrowest type holding both (uint8 with int8 is int16, uint32 with int32 int64), int64 with
# uint64 to float64. As in numpy 2 (NEP 50), a Python scalar or list is "weak": it takes the
# tensor's dtype when its kind fits (2.0 * float16 stays float16, 3 * uint8 stays uint8); a
# Python float with an integer or bool tensor gives float32. A numpy scalar or array is strong:
# it keeps its dtype, which promotes with the tensor's by the table (float32 tensor +
# np.float64(2) is float64).
_SPECIAL = {frozenset(("float16", "bfloat16")): float32}
_SPECIAL.update({frozenset((a.name, b.name)): _BY_NUMPY[np.promote_types(a.np, b.np)]
                 for a in INTEGERS for b in INTEGERS if a is not b})


def promote(a, b):
    """The result dtype of a binary op on two tensors of dtypes a and b (see the table)."""
    a, b = as_dtype(a), as_dtype(b)
    if a is b:
        return a
    special = _SPECIAL.get(frozenset((a.name, b.name)))
    if special is not None:
        return special
    return a if a.rank > b.rank else b


def is_weak(value):
    """Whether a value is a Python scalar or list (weak), not a numpy scalar or array."""
    return not isinstance(value, (np.ndarray, np.generic))


def weak_scalar_dtype(value, other):
    """The dtype a weak value (a Python scalar or list) takes next to a tensor of dtype `other`."""
    kind = np.asarray(value).dtype.kind
    if kind == "b":
        return other
    if kind in "iu":
        return other if other.kind in "iuf" else int32
    return other if other.is_float else float32


# Python floats become float32 and ints int32, as in TF and Keras
_WEAK_DEFAULTS = {np.dtype(np.float64): float32, np.dtype(np.int64): int32}


def default_dtype(value):
    """The dtype of a Python value, numpy scalar or array given to gc.constant with no dtype."""
    arr = np.asarray(value)
    if is_weak(value) and arr.dtype in _WEAK_DEFAULTS:
        return _WEAK_DEFAULTS[arr.dtype]
    return as_dtype(arr.dtype)


def round_bfloat16(array):
    """Round float32 values to the nearest bfloat16 (ties to even), kept in float32."""
    bits = np.asarray(array, np.float32).view(np.uint32)
    rounding = ((bits >> 16) & 1) + np.uint32(0x7FFF)
    rounded = ((bits + rounding) & np.uint32(0xFFFF0000)).astype(np.uint32)
    nan = np.isnan(np.asarray(array, np.float32))
    out = rounded.view(np.float32)
    return np.where(nan, np.float32(np.nan), out)


# (narrow, wide) pairs where a cast narrow -> wide -> narrow gives back every value
_EXACT_WIDENINGS = {(float16, float32), (float16, float64), (bfloat16, float32),
                    (bfloat16, float64), (float32, float64)}
_EXACT_WIDENINGS.update((a, b) for a in INTEGERS for b in INTEGERS + (float16, float32, float64)
                        if a is not b and np.can_cast(a.np, b.np, "safe"))


def holds_exactly(wide, narrow):
    """Whether every value of dtype `narrow` survives a cast to `wide` and back."""
    return narrow is wide or narrow is bool_ or (narrow, wide) in _EXACT_WIDENINGS


def check_fits(array, dtype):
    """Raise DTypeError when integer `dtype` cannot hold the values of `array` exactly."""
    arr = np.asarray(array)
    if not dtype.is_integer or arr.size == 0 or arr.dtype.kind not in "iuf":
        return
    info = np.iinfo(dtype.np)
    if arr.dtype.kind == "f":
        exact = np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))
    else:
        exact = True
    if not exact or arr.min() < info.min or arr.max() > info.max:
        shown = arr.flat[0] if arr.size == 1 else f"values in [{arr.min()}, {arr.max()}]"
        raise DTypeError(f"{shown} does not fit dtype {dtype.name}")


def cast(array, dtype):
    """numpy's astype, except that floats become integers as the kernels convert them: truncated
    toward zero and saturated to the integer type's range, NaN giving 0 (where numpy's result
    is whatever the platform's conversion gives)."""
    arr = np.asarray(array)
    if arr.dtype.kind != "f" or not dtype.is_integer:
        return arr.astype(dtype.np)
    info = np.iinfo(dtype.np)
    x = np.trunc(arr.astype(np.float64))
    # float(info.max) may round up past the maximum (2**63): a value there saturates too
    high, low = x >= float(info.max), x <= float(info.min)
    inside = np.where(high | low | np.isnan(x), 0, x).astype(dtype.np)
    return np.where(high, info.max, np.where(low, info.min, inside)).astype(dtype.np)


def to_storage(array, dtype):
    """Cast an array to how `dtype` is stored, rounding for bfloat16."""
    out = np.asarray(array).astype(dtype.np, copy=False)
    if dtype is bfloat16:
        out = round_bfloat16(out)
    return out
