"""gk.ops' numpy-like names beyond the first wave (gk.ops re-exports every name of __all__):
inverse trigonometry, NaN-aware reductions, sorting and quantiles, stacking and splitting,
flips and rolls, diagonals, window functions. Each is a composition of graphc ops, so it is
differentiable where numpy's function is and runs on every device.
"""
import math

import numpy as np

import graphc as gc
from graphc.errors import GraphcError

from . import ops as _o

__all__ = [
    "arctan", "arctan2", "arcsin", "arccos", "arcsinh", "arccosh", "arctanh", "cbrt",
    "deg2rad", "rad2deg", "fabs", "trunc", "signbit", "heaviside", "hypot", "logaddexp",
    "logaddexp2", "fmod", "fmax", "fmin", "erfc", "erfinv", "sinc", "ldexp", "isneginf", "isposinf",
    "isreal", "real", "imag", "conj", "conjugate", "angle", "nan_to_num", "copy", "array",
    "identity", "empty", "empty_like", "full_like", "tri", "diag", "diagflat", "diagonal",
    "trace", "flip", "fliplr", "flipud", "rot90", "roll", "append", "hstack", "vstack",
    "dstack", "array_split", "hsplit", "vsplit", "dsplit", "unstack", "average", "ptp", "diff",
    "cross", "inner", "vdot", "tensordot", "kron", "logspace", "geomspace", "meshgrid",
    "digitize", "searchsorted", "sort", "argsort", "quantile", "percentile", "median",
    "cumprod", "nansum", "nanmean", "nanmax", "nanmin", "nanprod", "nanvar", "nanstd",
    "nancumsum", "nancumprod", "nanargmax", "nanargmin", "isclose", "allclose", "isin",
    "vander", "trapezoid", "unravel_index", "select", "slice", "slice_update", "get_item",
    "bartlett", "blackman", "hamming", "hanning", "kaiser", "saturate_cast", "corrcoef",
]

_t = _o._t
_slice = slice  # this module defines Keras's ops.slice below


def _axes(axis, ndim):
    """axis (None, int or sequence) as a sorted tuple of non-negative ints."""
    if axis is None:
        return tuple(range(ndim))
    return tuple(sorted(a % ndim for a in ((axis,) if isinstance(axis, int) else axis)))


def _float(x):
    x = _t(x)
    return x if x.dtype.is_float else gc.cast(x, gc.float32)


# ---- elementwise -------------------------------------------------------------------------------
def arctan(x):
    """Cephes' single-precision atan: reduce |x| to [0, tan(pi/8)] (x > tan(3pi/8): pi/2 -
    atan(1/x); x > tan(pi/8): pi/4 + atan((x-1)/(x+1))), then an odd polynomial."""
    x = _float(x)
    sign = _sign_bit_sign(x)
    a = x * sign  # |x|, but with slope 1 at 0 (abs's gradient there is 0)
    big, mid = a > 2.414213562373095, a > 0.4142135623730950
    safe = gc.where(big, a, gc.ones_like(a))  # no 1/0 in the branch that is not taken
    r = gc.where(big, -1.0 / safe, gc.where(mid, (a - 1.0) / (a + 1.0), a))
    base = gc.where(big, gc.fill_like(a, math.pi / 2),
                    gc.where(mid, gc.fill_like(a, math.pi / 4), gc.zeros_like(a)))
    z = r * r
    poly = (((8.05374449538e-2 * z - 1.38776856032e-1) * z + 1.99777106478e-1) * z
            - 3.33329491539e-1) * z * r + r
    return sign * (base + poly)


def _sign_bit_sign(x):
    """-1 where x's sign bit is set (-0.0 included), else 1: for odd functions computed on
    |x|."""
    return gc.where(signbit(x), gc.fill_like(x, -1.0), gc.ones_like(x))


def arctan2(x1, x2):
    """The angle of the point (x2, x1), in (-pi, pi], with numpy's signed zeros."""
    y, x = _float(x1), _float(x2)
    safe_x = gc.where(gc.equal(x, 0.0), gc.ones_like(x), x)
    base = arctan(y / safe_x)
    turn = gc.where(signbit(y), gc.fill_like(base, -math.pi), gc.fill_like(base, math.pi))
    neg = signbit(x)
    on_axis = gc.where(gc.equal(y, 0.0), gc.where(neg, turn, y * 0.0),
                       gc.where(signbit(y), gc.fill_like(base, -math.pi / 2),
                                gc.fill_like(base, math.pi / 2)))
    both_inf = gc.logical_and(_o.isinf(x), _o.isinf(y))
    corner = gc.where(neg, turn * 0.75, turn * 0.25)
    out = gc.where(gc.equal(x, 0.0), on_axis, gc.where(neg, base + turn, base))
    out = gc.where(gc.isnan(y), y + x, out)  # (nan, 0) is not on an axis
    return gc.where(both_inf, corner, out)


def arcsin(x):
    x = _float(x)
    return arctan2(x, gc.sqrt((1.0 - x) * (1.0 + x)))


def arccos(x):
    x = _float(x)
    return 2.0 * arctan2(gc.sqrt((1.0 - x) * (1.0 + x)), 1.0 + x)


def arcsinh(x):
    x = _float(x)
    sign = _sign_bit_sign(x)
    a = x * sign
    # log1p keeps small |x| exact; the large-|x| branch avoids overflowing x * x
    small = gc.log1p(a + a * a / (1.0 + gc.sqrt(1.0 + a * a)))
    large = gc.log(gc.maximum(a, 1e8)) + math.log(2.0)
    return sign * gc.where(a > 1e8, large, small)


def arccosh(x):
    x = _float(x)
    return gc.where(x > 1e8, gc.log(x) + math.log(2.0), gc.log(x + gc.sqrt(x * x - 1.0)))


def arctanh(x):
    x = _float(x)
    return 0.5 * (gc.log1p(x) - gc.log1p(-x))


def cbrt(x):
    x = _float(x)
    return gc.sign(x) * gc.pow(gc.abs(x), 1.0 / 3.0)


def deg2rad(x):
    return _float(x) * (math.pi / 180.0)


def rad2deg(x):
    return _float(x) * (180.0 / math.pi)


def fabs(x):
    return gc.abs(_float(x))


def trunc(x):
    x = _t(x)
    if not x.dtype.is_float:
        return x
    return gc.where(x < 0, _o.ceil(x), gc.floor(x))


def signbit(x):
    """True where the sign bit is set, -0.0 and -nan included (1/-0.0 is -inf)."""
    x = _t(x)
    if not x.dtype.is_float:
        return x < 0
    zero = gc.equal(x, 0.0)
    return gc.where(zero, 1.0 / gc.where(zero, x, gc.ones_like(x)) < 0, x < 0)


def heaviside(x1, x2):
    x1 = _float(x1)
    return gc.where(x1 > 0, gc.ones_like(x1), gc.where(x1 < 0, gc.zeros_like(x1),
                                                         x1 * 0.0 + x2))


def hypot(x1, x2):
    a, b = gc.abs(_float(x1)), gc.abs(_float(x2))
    hi, lo = gc.maximum(a, b), gc.minimum(a, b)
    safe = gc.where(gc.equal(hi, 0.0), gc.ones_like(hi), hi)
    ratio = lo / safe
    return gc.where(_o.isinf(hi), hi, hi * gc.sqrt(1.0 + ratio * ratio))


def logaddexp(x1, x2):
    a, b = _float(x1), _float(x2)
    hi = gc.maximum(a, b)
    # equal infinities: hi itself (inf - inf would be NaN)
    safe = gc.where(_o.isinf(hi), gc.zeros_like(hi), hi)
    return gc.where(gc.equal(a, b), a + math.log(2.0),
                    safe + gc.log1p(gc.exp(-gc.abs(a - b)))) + (hi - safe)


def logaddexp2(x1, x2):
    return logaddexp(_float(x1) * math.log(2.0), _float(x2) * math.log(2.0)) / math.log(2.0)


def fmod(x1, x2):
    """The remainder with the dividend's sign (C's fmod), unlike mod."""
    a, b = _t(x1), _t(x2)
    if not a.dtype.is_float:
        q = gc.floordiv(a, b)
        q = gc.where(gc.logical_and(gc.not_equal(a - q * b, 0), (a < 0) != (b < 0)), q + 1, q)
        return a - q * b
    return a - trunc(a / b) * b


def fmax(x1, x2):
    """The larger of the two, a NaN losing to a number."""
    a, b = _t(x1), _t(x2)
    return gc.where(gc.isnan(a), b, gc.where(gc.isnan(b), a, gc.maximum(a, b)))


def fmin(x1, x2):
    a, b = _t(x1), _t(x2)
    return gc.where(gc.isnan(a), b, gc.where(gc.isnan(b), a, gc.minimum(a, b)))


def erfc(x):
    return 1.0 - gc.erf(_float(x))


def erfinv(x):
    """Giles' single-precision inverse error function (two polynomial branches in
    w = -log(1 - x^2)); +-1 give +-inf, |x| > 1 NaN."""
    x = _float(x)
    w = -gc.log((1.0 - x) * (1.0 + x))
    central, tail = w - 2.5, gc.sqrt(gc.maximum(w, 5.0)) - 3.0
    p = gc.fill_like(x, 2.81022636e-08)
    for c in (3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087, -0.00125372503,
              -0.00417768164, 0.246640727, 1.50140941):
        p = c + p * central
    q = gc.fill_like(x, -0.000200214257)
    for c in (0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613,
              0.00943887047, 1.00167406, 2.83297682):
        q = c + q * tail
    out = gc.where(w < 5.0, p, q) * x
    return gc.where(gc.equal(gc.abs(x), 1.0), x * np.inf, out)


def sinc(x):
    x = _float(x) * math.pi
    zero = gc.equal(x, 0.0)
    safe = gc.where(zero, gc.ones_like(x), x)
    return gc.where(zero, gc.ones_like(x), gc.sin(safe) / safe)


def ldexp(x1, x2):
    return _float(x1) * gc.pow(2.0, gc.cast(_t(x2), _float(x1).dtype))


def isneginf(x):
    x = _t(x)
    return gc.logical_and(_o.isinf(x), x < 0)


def isposinf(x):
    x = _t(x)
    return gc.logical_and(_o.isinf(x), x > 0)


def isreal(x):
    """graphc has no complex dtypes: every element is real."""
    return gc.fill_like(_t(x), True, dtype=gc.bool_)


def real(x):
    return _t(x)


def imag(x):
    return gc.zeros_like(_t(x))


def conj(x):
    return _t(x)


conjugate = conj


def angle(x):
    """The argument of a real number: 0, or pi where the sign bit is set."""
    x = _float(x)
    return gc.where(gc.isnan(x), x, gc.where(signbit(x), gc.fill_like(x, math.pi),
                                             gc.zeros_like(x)))


def nan_to_num(x, nan=0.0, posinf=None, neginf=None):
    x = _t(x)
    if not x.dtype.is_float:
        return x
    top = float(np.finfo(x.dtype.name).max)
    x = gc.where(gc.isnan(x), gc.fill_like(x, nan), x)
    x = gc.where(isposinf(x), gc.fill_like(x, top if posinf is None else posinf), x)
    return gc.where(isneginf(x), gc.fill_like(x, -top if neginf is None else neginf), x)


def saturate_cast(x, dtype):
    """cast, values out of the target dtype's range going to its bounds (NaN to 0 for an
    integer target)."""
    x = _t(x)
    target = gc.as_dtype(getattr(dtype, "name", dtype))
    if not x.dtype.is_float:
        return gc.cast(x, target)
    if target.is_float:
        info = np.finfo(target.name)
        return gc.cast(gc.clip(x, float(info.min), float(info.max)), target)
    info = np.iinfo(target.name)
    # the int bounds as floats may round past the range (2**31 - 1 -> 2**31), so the values
    # at or past them are set apart, and the rest is clipped strictly inside
    inside = np.nextafter(np.array(info.max, x.dtype.name), 0)
    out = gc.cast(gc.clip(x, float(info.min), float(inside)), target)
    out = gc.where(x >= float(info.max), gc.fill_like(out, info.max), out)
    return gc.where(gc.isnan(x), gc.zeros_like(out), out)


# ---- creation ----------------------------------------------------------------------------------
def copy(x):
    """x itself: graph tensors are immutable values, so a copy is the same value."""
    return _t(x)


def array(x, dtype=None):
    return _o.convert_to_tensor(x, dtype)


def identity(n, dtype=None):
    return gc.constant(np.identity(n, dtype=dtype or "float32"))


def empty(shape, dtype=None):
    return gc.constant(np.zeros(shape, dtype=dtype or "float32"))


def empty_like(x, dtype=None):
    return full_like(x, 0, dtype)


def full_like(x, fill_value, dtype=None):
    x = _t(x)
    return gc.fill_like(x, fill_value, dtype=gc.as_dtype(dtype) if dtype else None)


def tri(N, M=None, k=0, dtype=None):
    return gc.constant(np.tri(N, M, k, dtype=dtype or "float32"))


def logspace(start, stop, num=50, endpoint=True, base=10, dtype=None, axis=0):
    return gc.constant(np.logspace(start, stop, num, endpoint, base, dtype=dtype or "float32",
                                   axis=axis))


def geomspace(start, stop, num=50, endpoint=True, dtype=None, axis=0):
    return gc.constant(np.geomspace(start, stop, num, endpoint, dtype=dtype or "float32",
                                    axis=axis))


def _window(fn):
    def window(x):
        return gc.constant(fn(int(x)).astype("float32"))
    window.__name__ = fn.__name__
    window.__doc__ = f"numpy.{fn.__name__}(x) as a float32 constant (x is a Python int)."
    return window


bartlett, blackman = _window(np.bartlett), _window(np.blackman)
hamming, hanning = _window(np.hamming), _window(np.hanning)


def kaiser(x, beta):
    return gc.constant(np.kaiser(int(x), beta).astype("float32"))


def meshgrid(*x, indexing="xy"):
    xs = [gc.reshape(_t(v), (-1,)) for v in x]
    sizes = [v.shape[0] for v in xs]
    if indexing == "xy" and len(xs) > 1:
        sizes[0], sizes[1] = sizes[1], sizes[0]
    out = []
    for i, v in enumerate(xs):
        place = (1 - i if i < 2 else i) if indexing == "xy" and len(xs) > 1 else i
        shape = [1] * len(xs)
        shape[place] = v.shape[0]
        out.append(gc.broadcast_to(gc.reshape(v, tuple(shape)), tuple(sizes)))
    return out


# ---- diagonals ---------------------------------------------------------------------------------
def diagonal(x, offset=0, axis1=0, axis2=1):
    """The diagonal of axes (axis1, axis2), moved last (numpy's order)."""
    x = _t(x)
    a1, a2 = axis1 % x.ndim, axis2 % x.ndim
    rest = [a for a in range(x.ndim) if a not in (a1, a2)]
    x = gc.transpose(x, rest + [a1, a2])
    rows, cols = x.shape[-2:]
    r0, c0 = (0, offset) if offset >= 0 else (-offset, 0)
    n = max(0, min(rows - r0, cols - c0))
    flat = gc.reshape(x, tuple(x.shape[:-2]) + (rows * cols,))
    index = gc.constant(np.asarray([(r0 + i) * cols + c0 + i for i in range(n)], np.int32))
    return gc.gather(flat, index, axis=x.ndim - 2)


def trace(x, offset=0, axis1=0, axis2=1):
    return gc.sum(diagonal(x, offset, axis1, axis2), axis=-1)


def diag(x, k=0):
    x = _t(x)
    if x.ndim == 2:
        return diagonal(x, k)
    if x.ndim != 1:
        raise GraphcError(f"gk.ops.diag takes a 1-D or 2-D tensor, got shape {tuple(x.shape)}")
    n = x.shape[0] + abs(k)
    mask = np.eye(n, k=k, dtype=bool)
    # row i of the result holds x at column i + k: gather x along a one-hot-like index
    pick = np.zeros((n, n), np.int32)
    rows, cols = np.nonzero(mask)
    pick[rows, cols] = np.arange(len(rows))
    spread = gc.gather(x, gc.constant(pick), axis=0)
    return gc.where(gc.constant(mask), spread, gc.zeros_like(spread))


def diagflat(x, k=0):
    return diag(gc.reshape(_t(x), (-1,)), k)


# ---- movement ----------------------------------------------------------------------------------
def _reverse(x, axis):
    index = [_slice(None)] * x.ndim
    index[axis] = _slice(None, None, -1)
    return x[tuple(index)]


def flip(x, axis=None):
    x = _t(x)
    for a in _axes(axis, x.ndim):
        x = _reverse(x, a)
    return x


def fliplr(x):
    return flip(x, 1)


def flipud(x):
    return flip(x, 0)


def rot90(array, k=1, axes=(0, 1)):
    x = _t(array)
    a, b = axes[0] % x.ndim, axes[1] % x.ndim
    k %= 4
    if k == 2:
        return flip(x, (a, b))
    if k == 0:
        return x
    perm = list(range(x.ndim))
    perm[a], perm[b] = perm[b], perm[a]
    return gc.transpose(flip(x, b), perm) if k == 1 else flip(gc.transpose(x, perm), b)


def roll(x, shift, axis=None):
    x = _t(x)
    if axis is None:
        return gc.reshape(roll(gc.reshape(x, (-1,)), shift, 0), tuple(x.shape))
    shifts = (shift,) if isinstance(shift, int) else tuple(shift)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    for s, a in zip(shifts * (len(axes) if len(shifts) == 1 else 1), axes):
        a %= x.ndim
        n = x.shape[a]
        s %= n
        if s:
            head, tail = gc.split(x, [n - s, s], axis=a)
            x = gc.concat([tail, head], axis=a)
    return x


def append(x1, x2, axis=None):
    a, b = _t(x1), _t(x2)
    if axis is None:
        return gc.concat([gc.reshape(a, (-1,)), gc.reshape(b, (-1,))], axis=0)
    return gc.concat([a, b], axis=axis)


def _at_least(x, ndim):
    x = _t(x)
    if x.ndim >= ndim:
        return x
    shape = {0: (1,) * ndim, 1: (1, x.shape[0], 1)[:ndim] if ndim == 3 else (1, x.shape[0]),
             2: tuple(x.shape) + (1,)}[x.ndim]
    return gc.reshape(x, shape)


def hstack(xs):
    xs = [_t(x) for x in xs]
    return gc.concat(xs, axis=0 if xs[0].ndim <= 1 else 1)


def vstack(xs):
    return gc.concat([_at_least(x, 2) for x in xs], axis=0)


def dstack(xs):
    return gc.concat([_at_least(x, 3) for x in xs], axis=2)


def array_split(x, indices_or_sections, axis=0):
    """split that also takes a section count that does not divide the axis (numpy's rule:
    the first n % sections parts get one more)."""
    x = _t(x)
    if not isinstance(indices_or_sections, int):
        return _o.split(x, indices_or_sections, axis)
    n, k = x.shape[axis], indices_or_sections
    sizes = [n // k + (1 if i < n % k else 0) for i in range(k)]
    return gc.split(x, sizes, axis=axis) if 0 not in sizes else \
        [x[(_slice(None),) * (axis % x.ndim) + (_slice(a, a + s),)]
         for a, s in zip(np.cumsum([0] + sizes[:-1]), sizes)]


def hsplit(x, indices_or_sections):
    return _o.split(x, indices_or_sections, axis=0 if _t(x).ndim == 1 else 1)


def vsplit(x, indices_or_sections):
    return _o.split(x, indices_or_sections, axis=0)


def dsplit(x, indices_or_sections):
    return _o.split(x, indices_or_sections, axis=2)


def unstack(x, num=None, axis=0):
    x = _t(x)
    return [gc.squeeze(part, axis=axis) for part in gc.split(x, x.shape[axis], axis=axis)]


def get_item(x, key):
    return _t(x)[key]


def slice(inputs, start_indices, shape):  # noqa: A001 - Keras's name
    x = _t(inputs)
    return x[tuple(_slice(int(s), int(s) + int(n))
                   for s, n in zip(start_indices, shape))]


def slice_update(inputs, start_indices, updates):
    """inputs with the block at start_indices replaced by updates (padding and a mask)."""
    x, u = _t(inputs), _t(updates)
    pads = [(int(s), int(d) - int(s) - int(n)) for s, d, n in zip(start_indices, x.shape,
                                                                  u.shape)]
    mask = np.pad(np.ones(tuple(u.shape), bool), pads)
    return gc.where(gc.constant(mask), gc.pad(gc.cast(u, x.dtype), pads), x)


def select(condlist, choicelist, default=0):
    out = _t(choicelist[-1]) * 0 + default
    for cond, choice in reversed(list(zip(condlist, choicelist))):
        out = gc.where(_t(cond), choice, out)
    return out


# ---- reductions and sorting --------------------------------------------------------------------
def average(x, axis=None, weights=None):
    x = _float(x)
    if weights is None:
        return gc.mean(x, axis=axis)
    w = _float(weights)
    if axis is not None and w.ndim == 1 and x.ndim > 1:
        shape = [1] * x.ndim
        shape[axis % x.ndim] = w.shape[0]
        w = gc.reshape(w, tuple(shape))
    return gc.sum(x * w, axis=axis) / gc.sum(gc.broadcast_to(w, tuple(x.shape)), axis=axis)


def ptp(x, axis=None, keepdims=False):
    x = _t(x)
    return gc.max(x, axis=axis, keepdims=keepdims) - gc.min(x, axis=axis, keepdims=keepdims)


def diff(a, n=1, axis=-1):
    x = _t(a)
    axis %= x.ndim
    for _ in range(n):
        lo = [_slice(None)] * x.ndim
        hi = list(lo)
        lo[axis], hi[axis] = _slice(None, -1), _slice(1, None)
        x = x[tuple(hi)] - x[tuple(lo)]
    return x


def cross(x1, x2, axisa=-1, axisb=-1, axisc=-1, axis=None):
    """The cross product of 3-vectors (2-vectors get a zero third component, as numpy)."""
    if axis is not None:
        axisa = axisb = axisc = axis
    a, b = _o.moveaxis(_t(x1), axisa, -1), _o.moveaxis(_t(x2), axisb, -1)
    a, b = (gc.pad(v, [(0, 0)] * (v.ndim - 1) + [(0, 1)]) if v.shape[-1] == 2 else v
            for v in (a, b))
    a0, a1, a2 = unstack(a, axis=-1)
    b0, b1, b2 = unstack(b, axis=-1)
    out = gc.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=-1)
    if _t(x1).shape[axisa] == 2 and _t(x2).shape[axisb] == 2:
        return out[..., 2]
    return _o.moveaxis(out, -1, axisc)


def inner(x1, x2):
    a, b = _t(x1), _t(x2)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    return tensordot(a, b, axes=([a.ndim - 1], [b.ndim - 1]))


def vdot(x1, x2):
    return gc.sum(gc.reshape(_t(x1), (-1,)) * gc.reshape(_t(x2), (-1,)))


def tensordot(x1, x2, axes=2):
    a, b = _t(x1), _t(x2)
    if isinstance(axes, int):
        axes = (list(range(a.ndim - axes, a.ndim)), list(range(axes)))
    ca = [i % a.ndim for i in ((axes[0],) if isinstance(axes[0], int) else axes[0])]
    cb = [i % b.ndim for i in ((axes[1],) if isinstance(axes[1], int) else axes[1])]
    letters = iter("abcdefghijklmnopqrstuvwxyz")
    sa = [next(letters) for _ in range(a.ndim)]
    sb = [next(letters) for _ in range(b.ndim)]
    for i, j in zip(ca, cb):
        sb[j] = sa[i]
    out = [s for i, s in enumerate(sa) if i not in ca] + [s for j, s in enumerate(sb)
                                                          if j not in cb]
    return gc.einsum(f"{''.join(sa)},{''.join(sb)}->{''.join(out)}", a, b)


def kron(x1, x2):
    a, b = _t(x1), _t(x2)
    nd = max(a.ndim, b.ndim)
    a = gc.reshape(a, (1,) * (nd - a.ndim) + tuple(a.shape))
    b = gc.reshape(b, (1,) * (nd - b.ndim) + tuple(b.shape))
    # interleave: a's axis i, then b's axis i, then merge each pair
    ea = gc.reshape(a, tuple(d for n in a.shape for d in (n, 1)))
    eb = gc.reshape(b, tuple(d for n in b.shape for d in (1, n)))
    return gc.reshape(ea * eb, tuple(m * n for m, n in zip(a.shape, b.shape)))


def _last(x, axis):
    """x with `axis` moved last, and how to move it back."""
    x = _t(x)
    axis %= x.ndim
    return _o.moveaxis(x, axis, -1), (lambda y: _o.moveaxis(y, -1, axis))


def sort(x, axis=-1):
    x, back = _last(x, axis)
    return back(gc.top_k(x, x.shape[-1], largest=False)[0])


def argsort(x, axis=-1):
    x, back = _last(x, axis)
    return back(gc.top_k(x, x.shape[-1], largest=False)[1])


def quantile(x, q, axis=None, method="linear", keepdims=False):
    """numpy's quantile (methods linear, lower, higher, nearest, midpoint) over sorted x; q
    may be a scalar or a 1-D list (its axis goes first, as numpy)."""
    x = _float(x)
    axes = _axes(axis, x.ndim)
    rest = [a for a in range(x.ndim) if a not in axes]
    kept = [x.shape[a] for a in rest]
    flat = gc.reshape(gc.transpose(x, rest + list(axes)), tuple(kept) + (-1,))
    n = flat.shape[-1]
    s = gc.top_k(flat, n, largest=False)[0]
    qs = np.atleast_1d(np.asarray(q, np.float64))
    outs = []
    for qv in qs:
        pos = qv * (n - 1)
        lo, hi = int(np.floor(pos)), int(np.ceil(pos))
        frac = pos - lo
        pick = {"linear": None, "lower": lo, "higher": hi, "midpoint": None,
                "nearest": int(np.round(pos))}[method]
        if pick is not None:
            v = s[..., pick]
        elif method == "midpoint":
            v = (s[..., lo] + s[..., hi]) * 0.5
        else:
            v = s[..., lo] + (s[..., hi] - s[..., lo]) * float(frac)
        if keepdims:
            shape = [1 if a in axes else x.shape[a] for a in range(x.ndim)]
            v = gc.reshape(v, tuple(shape))
        outs.append(v)
    return outs[0] if np.ndim(q) == 0 else gc.stack(outs, axis=0)


def percentile(x, q, axis=None, method="linear", keepdims=False):
    return quantile(x, np.asarray(q, np.float64) / 100.0, axis, method, keepdims)


def median(x, axis=None, keepdims=False):
    return quantile(x, 0.5, axis, keepdims=keepdims)


def digitize(x, bins):
    """The bin index of each x for increasing bins: how many bins are <= x."""
    x = _t(x)
    b = gc.reshape(_t(bins), (1,) * x.ndim + (-1,))
    return gc.sum(gc.cast(gc.greater_equal(gc.expand_dims(x, -1), b), gc.int32), axis=-1)


def searchsorted(sorted_sequence, values, side="left"):
    v = gc.expand_dims(_t(values), -1)
    s = gc.reshape(_t(sorted_sequence), (1,) * (v.ndim - 1) + (-1,))
    before = gc.less(s, v) if side == "left" else gc.less_equal(s, v)
    return gc.sum(gc.cast(before, gc.int32), axis=-1)


def cumprod(x, axis=None, dtype=None):
    """Running products, by scan along the axis (exact, zeros and signs included)."""
    x, axis = _o._along(x, axis)
    x, back = _last(x, axis)
    parts = unstack(x, axis=-1)
    acc, out = parts[0], [parts[0]]
    for p in parts[1:]:
        acc = acc * p
        out.append(acc)
    return back(gc.stack(out, axis=-1))


def _nan_filled(x, value):
    x = _t(x)
    return gc.where(gc.isnan(x), gc.fill_like(x, value), x) if x.dtype.is_float else x


def nansum(x, axis=None, keepdims=False):
    return gc.sum(_nan_filled(x, 0.0), axis=axis, keepdims=keepdims)


def nanprod(x, axis=None, keepdims=False):
    return gc.prod(_nan_filled(x, 1.0), axis=axis, keepdims=keepdims)


def _count(x, axis, keepdims):
    return gc.sum(gc.cast(gc.logical_not(gc.isnan(_t(x))), _t(x).dtype), axis=axis,
                  keepdims=keepdims)


def nanmean(x, axis=None, keepdims=False):
    return nansum(x, axis, keepdims) / _count(x, axis, keepdims)


def nanvar(x, axis=None, keepdims=False):
    x = _float(x)
    centered = x - nanmean(x, axis, keepdims=True)
    return nansum(centered * centered, axis, keepdims) / _count(x, axis, keepdims)


def nanstd(x, axis=None, keepdims=False):
    return gc.sqrt(nanvar(x, axis, keepdims))


def _all_nan(x, axis, keepdims):
    return gc.equal(_count(x, axis, keepdims), 0.0)


def nanmax(x, axis=None, keepdims=False):
    x = _t(x)
    out = gc.max(_nan_filled(x, -np.inf), axis=axis, keepdims=keepdims)
    return gc.where(_all_nan(x, axis, keepdims), out + np.nan, out)


def nanmin(x, axis=None, keepdims=False):
    x = _t(x)
    out = gc.min(_nan_filled(x, np.inf), axis=axis, keepdims=keepdims)
    return gc.where(_all_nan(x, axis, keepdims), out + np.nan, out)


def nanargmax(x, axis=None, keepdims=False):
    return _o.argmax(_nan_filled(x, -np.inf), axis, keepdims)


def nanargmin(x, axis=None, keepdims=False):
    return _o.argmin(_nan_filled(x, np.inf), axis, keepdims)


def nancumsum(x, axis=None, dtype=None):
    return _o.cumsum(_nan_filled(x, 0.0), axis)


def nancumprod(x, axis=None, dtype=None):
    return cumprod(_nan_filled(x, 1.0), axis)


def corrcoef(x):
    """Pearson correlation between the rows of a 2-D x."""
    x = _float(x)
    c = x - gc.mean(x, axis=1, keepdims=True)
    cov = gc.matmul(c, gc.transpose(c, (1, 0)))
    d = gc.sqrt(diagonal(cov))
    return gc.clip(cov / gc.reshape(d, (-1, 1)) / gc.reshape(d, (1, -1)), -1.0, 1.0)


# ---- comparisons -------------------------------------------------------------------------------
def isclose(x1, x2, rtol=1e-5, atol=1e-8, equal_nan=False):
    a, b = _float(x1), _float(x2)
    close = gc.less_equal(gc.abs(a - b), atol + rtol * gc.abs(b))
    close = gc.logical_or(close, gc.equal(a, b))  # equal infinities
    if equal_nan:
        close = gc.logical_or(close, gc.logical_and(gc.isnan(a), gc.isnan(b)))
    return close


def allclose(x1, x2, rtol=1e-5, atol=1e-8, equal_nan=False):
    return _o.all(isclose(x1, x2, rtol, atol, equal_nan))


def isin(x1, x2, assume_unique=False, invert=False):
    a = _t(x1)
    b = gc.reshape(_t(x2), (1,) * a.ndim + (-1,))
    found = _o.any(gc.equal(gc.expand_dims(a, -1), b), axis=-1)
    return gc.logical_not(found) if invert else found


def vander(x, N=None, increasing=False):
    x = _t(x)
    n = x.shape[0] if N is None else N
    powers = np.arange(n) if increasing else np.arange(n)[::-1]
    cols = [gc.ones_like(x) if p == 0 else gc.pow(x, float(p)) if x.dtype.is_float
            else _int_power(x, p) for p in powers]
    return gc.stack(cols, axis=1) if cols else gc.constant(np.zeros((x.shape[0], 0)))


def _int_power(x, p):
    out = x
    for _ in range(p - 1):
        out = out * x
    return out


def trapezoid(y, x=None, dx=1.0, axis=-1):
    y = _float(y)
    axis %= y.ndim
    lo = [_slice(None)] * y.ndim
    hi = list(lo)
    lo[axis], hi[axis] = _slice(None, -1), _slice(1, None)
    mids = (y[tuple(hi)] + y[tuple(lo)]) * 0.5
    if x is None:
        return gc.sum(mids, axis=axis) * dx
    widths = diff(_float(x), axis=-1 if _t(x).ndim == 1 else axis)
    if _t(x).ndim == 1 and y.ndim > 1:
        shape = [1] * y.ndim
        shape[axis] = widths.shape[0]
        widths = gc.reshape(widths, tuple(shape))
    return gc.sum(mids * widths, axis=axis)


def unravel_index(indices, shape):
    idx = _t(indices)
    out = []
    for n in reversed(shape):
        out.append(gc.mod(idx, n))
        idx = gc.floordiv(idx, n)
    return tuple(reversed(out))
