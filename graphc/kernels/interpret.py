"""A numpy interpreter of the kernel IR: the oracle the code generators are tested against.

Expressions are evaluated for all iterations of the loops in scope at once: each loop variable
is an arange on an axis of its own (outermost loop first), so a value is an array with one axis
per enclosing loop, of size 1 along the loops it does not depend on. A Reduce opens a scope
with one more axis per loop of its own and reduces them away. Each expression is computed once,
in the outermost scope that binds all its variables (memoized there by value: equal expressions
are one), the way the code generators hoist a row's max out of a softmax's inner loop.

Statements run in order, each for all iterations of its loops at once. That is what running
the iterations one by one does as long as no iteration reads what another one writes, so a
kernel that loads from a buffer it also writes is refused. A loop of zero iterations runs
nothing, so no check inside it fires. An out-of-bounds load or store, an unbound variable or an
ill-typed operation raises AssertionError naming the kernel: it means the lowering is wrong.
"""
import math

import numpy as np

from ..ir import dtypes
from . import ir
from .numbering import ValueNumbering, operands


class KernelIndexError(Exception):
    """A check_index op or Check statement failed: error `what` of the program's error table,
    about the bad value `value`."""

    def __init__(self, what, value):
        super().__init__(what, value)
        self.what = what
        self.value = value

    def __str__(self):
        return f"error {self.what}: bad value {self.value}"


def run_kernel(kernel, buffers, dims):
    """Execute `kernel` in place on `buffers` (slot -> flat array of the slot's storage dtype,
    or None) with the run-time sizes `dims` (slot -> int)."""
    _Run(kernel, buffers, dims).run()


# Gemm dtypes whose products are summed in another (then rounded once to the Gemm's)
HALF_SUMS = {"float16": np.float32, "bfloat16": np.float32}


def storage(dtype):
    """The numpy dtype that holds values of IR dtype `dtype` (bfloat16 is held as float32)."""
    return dtypes.BY_NAME[dtype].np


# ---- scalar operations ------------------------------------------------------------------------
_erf = np.frompyfunc(math.erf, 1, 1)


def _sigmoid(x):
    e = np.exp(-np.abs(x))  # split by sign so neither branch overflows
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _pow(a, b):
    if a.dtype.kind != "i":  # floats, and unsigned exponents that are never negative
        return np.power(a, b)
    # numpy refuses negative integer exponents; 1 / a**-b truncated is 0 unless |a| == 1
    negative = b < 0
    out = np.power(a, np.where(negative, 0, b))
    inverse = np.where(a == 1, 1, np.where(a == -1, np.where(b % 2 == 0, 1, -1), 0))
    return np.where(negative, inverse.astype(a.dtype), out)


# name -> numpy function of the operand arrays; the result is then cast to the Op's dtype
SCALAR = {
    "neg": np.negative, "abs": np.abs, "sign": np.sign, "square": np.square, "exp": np.exp,
    "log": np.log, "log1p": np.log1p, "expm1": np.expm1, "sqrt": np.sqrt,
    "rsqrt": lambda x: 1 / np.sqrt(x), "sin": np.sin, "cos": np.cos, "tanh": np.tanh,
    "sigmoid": _sigmoid, "softplus": lambda x: np.logaddexp(np.zeros((), x.dtype), x),
    "relu": lambda x: np.maximum(x, np.zeros((), x.dtype)),
    "erf": lambda x: np.asarray(_erf(x), x.dtype), "floor": np.floor, "isnan": np.isnan,
    "isfinite": np.isfinite, "logical_not": np.logical_not,
    "round_bfloat16": dtypes.round_bfloat16,
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.true_divide,
    "floordiv": np.floor_divide, "mod": np.mod, "pow": _pow, "fmod": np.fmod,
    "truncdiv": lambda a, b: (a - np.fmod(a, b)) // b, "maximum": np.maximum,
    "minimum": np.minimum, "equal": np.equal, "not_equal": np.not_equal, "less": np.less,
    "less_equal": np.less_equal, "greater": np.greater, "greater_equal": np.greater_equal,
    "logical_and": np.logical_and, "logical_or": np.logical_or,
    "logical_xor": np.logical_xor, "where": np.where,
    "invert": np.invert, "bitwise_and": np.bitwise_and, "bitwise_or": np.bitwise_or,
    "bitwise_xor": np.bitwise_xor, "left_shift": np.left_shift, "right_shift": np.right_shift,
    "shl": np.left_shift, "shr": np.right_shift,
}
assert set(SCALAR) | {"check_index", "cast"} == set(ir.ARITY)  # cast: dtypes.cast


def _is_float(d):
    return dtypes.BY_NAME[d].is_float


# What an Op's operand dtypes must be, given the Op's own dtype d: a check on the lowering.
SIGNATURES = {
    "same": lambda d, args: all(a == d for a in args),
    "int": lambda d, args: dtypes.BY_NAME[d].is_integer and all(a == d for a in args),
    "float": lambda d, args: _is_float(d) and all(a == d for a in args),
    "logic": lambda d, args: d == "bool" and all(a == "bool" for a in args),
    "compare": lambda d, args: d == "bool" and args[0] == args[1],
    "predicate": lambda d, args: d == "bool",
    "cast": lambda d, args: True,
    "round": lambda d, args: d == "bfloat16" and args[0] in ("float32", "bfloat16"),
    "select": lambda d, args: args == ["bool", d, d],
    "index": lambda d, args: d == ir.INDEX and args == [ir.INDEX] * 3,
}
SIGNATURE_OF = {
    **dict.fromkeys(("neg", "abs", "sign", "square", "relu", "add", "sub", "mul", "floordiv",
                     "mod", "pow", "maximum", "minimum", "invert", "bitwise_and", "bitwise_or",
                     "bitwise_xor"), "same"),
    **dict.fromkeys(("left_shift", "right_shift", "shl", "shr"), "int"),
    **dict.fromkeys(("exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "sin", "cos", "tanh",
                     "sigmoid", "softplus", "erf", "floor", "div", "fmod"), "float"),
    **dict.fromkeys(("logical_not", "logical_and", "logical_or", "logical_xor"), "logic"),
    **dict.fromkeys(ir.COMPARISONS, "compare"),
    "isnan": "predicate", "isfinite": "predicate", "cast": "cast", "round_bfloat16": "round",
    "where": "select", "check_index": "index", "truncdiv": "int",
}

assert set(SIGNATURE_OF) == set(ir.ARITY)


# ---- one run ----------------------------------------------------------------------------------
def _statement_exprs(s):
    if isinstance(s, ir.Loop):
        return (s.extent,)
    if isinstance(s, ir.Store):
        return (s.index, s.value)
    if isinstance(s, ir.Check):
        return (s.ok, s.value)
    if isinstance(s, ir.Gemm):
        return tuple(ir.gemm_exprs(s))
    raise AssertionError(f"unknown statement {type(s).__name__}")


class _Run:
    def __init__(self, kernel, buffers, dims):
        self.kernel = kernel
        self.buffers = buffers
        self.dims = dims
        self.values = ValueNumbering()
        self.number, self.free = self.values.number, self.values.free
        self.loaded = set()  # slots that loads read

    def fail(self, message):
        raise AssertionError(f"kernel {self.kernel.name}: {message}")

    def run(self):
        stored = set()
        self._analyze([b.size for b in self.kernel.buffers.values()])
        stack = list(self.kernel.body)
        while stack:
            s = stack.pop()
            self._analyze(_statement_exprs(s))
            if isinstance(s, ir.Loop):
                stack.extend(s.body)
            elif isinstance(s, ir.Store):
                stored.add(s.buffer)
            elif isinstance(s, ir.Gemm):
                self.loaded.update(ir.operand_buffers(s))
                stored.add(s.c.buffer)
        self.loaded.update(e.buffer for e in self.values.kept if isinstance(e, ir.Load))
        both = stored & self.loaded
        if both:
            self.fail(f"reads slots {sorted(both)} that it also writes; its iterations could "
                      "not run together")
        root = _Scope(self, None, ())
        for slot, buf in self.kernel.buffers.items():
            array = self.buffer(slot, buf.dtype)
            size = int(root.value(buf.size))
            if array.size != size:
                self.fail(f"slot {slot} holds {array.size} elements, the kernel expects {size}")
        self.block(self.kernel.body, root)

    def _analyze(self, roots):
        """Number every expression under roots by value (equal expressions are one)."""
        for root in roots:
            self.values(root)

    def buffer(self, slot, dtype):
        if not 0 <= slot < len(self.buffers) or self.buffers[slot] is None:
            self.fail(f"slot {slot} has no buffer")
        array = self.buffers[slot]
        if array.ndim != 1 or array.dtype != storage(dtype):
            self.fail(f"slot {slot} holds {array.dtype}[{array.shape}], the kernel uses it as "
                      f"flat {dtype}")
        return array

    def in_bounds(self, what, slot, index, size):
        if index.size and (index.min() < 0 or index.max() >= size):
            bad = index[(index < 0) | (index >= size)].flat[0]
            self.fail(f"{what} slot {slot} at {bad}, outside [0, {size})")

    # -- statements -------------------------------------------------------------------------
    def block(self, body, scope):
        for s in body:
            if isinstance(s, ir.Loop):
                extent = scope.extent(s.extent)
                if extent:
                    self.block(s.body, _Scope(self, scope, ((s.var.name, extent),)))
            elif isinstance(s, ir.Store):
                self.store(s, scope)
            elif isinstance(s, ir.Check):
                self.check(s, scope)
            else:
                self.gemm(s, scope)

    def store(self, s, scope):
        if s.index.dtype != ir.INDEX:
            self.fail(f"store index of dtype {s.index.dtype}")
        array = self.buffer(s.buffer, s.value.dtype)
        index = np.broadcast_to(scope.value(s.index), scope.shape).ravel()
        value = np.broadcast_to(scope.value(s.value), scope.shape).ravel()
        self.in_bounds("store to", s.buffer, index, array.size)
        if not s.accumulate:
            array[index] = value  # in loop order: on a repeated index the last iteration wins
        elif s.value.dtype == "bfloat16":
            self.fail("accumulating store of bfloat16 (its float32 storage accumulates)")
        elif s.value.dtype == "bool":
            np.logical_or.at(array, index, value)
        else:
            with np.errstate(all="ignore"):
                np.add.at(array, index, value)  # one add per iteration, in the array's dtype

    def check(self, s, scope):
        ok = np.broadcast_to(scope.value(s.ok), scope.shape).ravel()
        if s.ok.dtype != "bool":
            self.fail(f"check of dtype {s.ok.dtype}")
        if not ok.all():
            first = int(np.argmin(ok))
            value = np.broadcast_to(scope.value(s.value), scope.shape).ravel()[first]
            raise KernelIndexError(s.what, value.item())

    def gemm(self, s, scope):
        """One matrix product per iteration of the enclosing loops, in loop order."""
        exprs = [s.m, s.n, s.k] + [e for o in ir.gemm_operands(s) if isinstance(o, ir.Operand)
                                   for e in (o.offset, o.rows, o.cols)]
        if any(e.dtype != ir.INDEX for e in exprs):
            self.fail("gemm sizes and strides must be int64")
        values = [np.broadcast_to(scope.value(e), scope.shape) for e in exprs]
        for at in np.ndindex(*scope.shape):
            m, n, k, *strides = (int(v[at]) for v in values)
            a = self.operand(s.a, s.dtype, strides, m, k, scope, at)
            b = self.operand(s.b, s.dtype, strides, k, n, scope, at)
            c = self.matrix(s.c.buffer, s.dtype, strides[:3], m, n)
            wide = HALF_SUMS.get(s.dtype, c.dtype)
            with np.errstate(all="ignore"):
                total = np.matmul(a.astype(wide), b.astype(wide))
                if s.accumulate:
                    total = c.astype(wide) + total
            c[...] = dtypes.to_storage(total, dtypes.BY_NAME[s.dtype])  # rounded once
            if s.bias is not None or s.relu:
                self.epilogue(s, c, strides[3:], n)

    def epilogue(self, s, c, layout, n):
        """C = relu(C + bias) of Gemm s, in its dtype (in its storage, rounded again)."""
        value = c
        with np.errstate(all="ignore"):
            if s.bias is not None:
                value = value + self.matrix(s.bias.buffer, s.dtype, layout, 1, n)
            if s.relu:
                value = np.maximum(value, np.zeros((), value.dtype))
        c[...] = dtypes.to_storage(value, dtypes.BY_NAME[s.dtype])

    def operand(self, o, dtype, strides, rows, cols, scope, at):
        """A Gemm operand as a (rows, cols) array: a strided one takes (and removes) the first
        three of `strides`; a Gathered one is evaluated for iteration `at` of the scope."""
        if isinstance(o, ir.Operand):
            layout = strides[:3]
            del strides[:3]
            return self.matrix(o.buffer, dtype, layout, rows, cols)
        if o.value.dtype != dtype:
            self.fail(f"gathered operand of dtype {o.value.dtype} in a {dtype} gemm")
        inner = _Scope(self, scope, ((o.row.name, max(rows, 0)), (o.col.name, max(cols, 0))))
        value = np.broadcast_to(inner.value(o.value), inner.shape)
        return value[at] if at else value

    def matrix(self, slot, dtype, layout, rows, cols):
        """A (rows, cols) view of a slot: element [r, c] at offset + r*row_stride + c*col_stride."""
        array = self.buffer(slot, dtype)
        offset, rs, cs = layout
        if rows <= 0 or cols <= 0:
            return np.zeros((max(rows, 0), max(cols, 0)), array.dtype)
        corners = np.array([offset + r * rs + c * cs
                            for r in (0, rows - 1) for c in (0, cols - 1)])
        self.in_bounds("gemm access to", slot, corners, array.size)
        size = array.itemsize
        return np.lib.stride_tricks.as_strided(array[offset:], (rows, cols),
                                               (rs * size, cs * size))


class _Scope:
    """The loops enclosing an expression: their extents (one array axis each, outermost first)
    and the values computed for all their iterations."""

    def __init__(self, run, parent, loops):
        self.run = run
        self.parent = parent
        outer = parent.shape if parent else ()
        self.shape = outer + tuple(extent for _, extent in loops)
        self.ndim = len(self.shape)
        self.axis = {name: len(outer) + i for i, (name, _) in enumerate(loops)}
        self.memo = {}  # expression number -> array with ndim axes

    def extent(self, e):
        value = self.value(e)
        if value.size != 1 or e.dtype != ir.INDEX:
            self.run.fail("loop extents must be int64 values the same for every iteration")
        return max(int(value.flat[0]), 0)  # like range(): a negative extent runs nothing

    def value(self, expr):
        """expr's values for every iteration of this scope's loops (iteratively: chains of
        operations may be far deeper than Python's recursion limit)."""
        memo, free, number = self.memo, self.run.free, self.run.number
        stack = [expr]
        while stack:
            e = stack[-1]
            key = number[id(e)]
            if key in memo:
                stack.pop()
                continue
            if self.parent is not None and self.axis.keys().isdisjoint(free[key]):
                memo[key] = self.lift(self.parent.value(e))
                stack.pop()
                continue
            waiting = [k for k in operands(e) if number[id(k)] not in memo]
            if waiting:
                stack.extend(waiting)
                continue
            stack.pop()
            memo[key] = self.compute(e)
        return memo[number[id(expr)]]

    def operand(self, e):
        return self.memo[self.run.number[id(e)]]

    def lift(self, array):
        return array.reshape(array.shape + (1,) * (self.ndim - array.ndim))

    def compute(self, e):
        """e's value once the values of its operands are in the memo."""
        run = self.run
        if isinstance(e, ir.Const):
            value = np.asarray(e.value).astype(storage(e.dtype))
            if e.dtype == "bfloat16":
                value = dtypes.round_bfloat16(value)
            return self.lift(value)
        if isinstance(e, ir.Dim):
            if not 0 <= e.slot < len(run.dims):
                run.fail(f"no run-time dim {e.slot}")
            return self.lift(np.asarray(run.dims[e.slot], np.int64))
        if isinstance(e, ir.Var):
            if e.name not in self.axis:
                run.fail(f"variable {e.name} used outside its loop")
            shape = [1] * self.ndim
            shape[self.axis[e.name]] = self.shape[self.axis[e.name]]
            return np.arange(self.shape[self.axis[e.name]], dtype=np.int64).reshape(shape)
        if isinstance(e, ir.Load):
            return self.load(e)
        if isinstance(e, ir.Op):
            return self.op(e)
        if isinstance(e, ir.Reduce):
            return self.reduce(e)
        run.fail(f"unknown expression {type(e).__name__}")

    def load(self, e):
        index = self.operand(e.index)
        if e.index.dtype != ir.INDEX:
            self.run.fail(f"load index of dtype {e.index.dtype}")
        array = self.run.buffer(e.buffer, e.dtype)
        self.run.in_bounds("load from", e.buffer, index, array.size)
        return np.asarray(array[index])

    def op(self, e):
        run = self.run
        if ir.ARITY.get(e.name) != len(e.args):
            run.fail(f"{e.name} with {len(e.args)} operands")
        if not SIGNATURES[SIGNATURE_OF[e.name]](e.dtype, [a.dtype for a in e.args]):
            run.fail(f"{e.name} -> {e.dtype} of operands "
                     f"{', '.join(a.dtype for a in e.args)}")
        # a float16 op computes in float32 and rounds once, as numpy's float16 ufuncs do (rsqrt
        # and sigmoid here are several ufuncs)
        args = [self.operand(a).astype(np.float32) if a.dtype == "float16" else self.operand(a)
                for a in e.args]
        if e.name == "check_index":
            return self.check_index(*args)
        if e.name == "truncdiv" and (np.any(args[1] == 0) or np.any(args[1] == -1)):
            # undefined in the code generators (C's /): legalize.py never gives them one
            run.fail("truncdiv by 0 or -1")
        with np.errstate(all="ignore"):  # a cast may overflow to inf, as IEEE casts do
            out = dtypes.cast(args[0], dtypes.BY_NAME[e.dtype]) if e.name == "cast" else \
                SCALAR[e.name](*args)
            out = np.asarray(out).astype(storage(e.dtype), copy=False)
        return self.lift(out)

    def check_index(self, i, n, what):
        bad = (i < 0) | (i >= n)
        if bad.any():
            first = np.flatnonzero(bad)[0]  # in loop order
            value = np.broadcast_to(i, bad.shape).flat[first]
            raise KernelIndexError(int(what.flat[0]), int(value))
        return i

    def reduce(self, e):
        op = e.op
        want = ir.INDEX if op in ("argmax", "argmin") else e.value.dtype
        if op not in ir.REDUCTIONS or e.dtype != want:
            self.run.fail(f"{op} reduction of {e.value.dtype} to {e.dtype}")
        extents = tuple(self.extent(x) for _, x in e.loops)
        if 0 in extents:  # the value is never computed
            return self.lift(np.asarray(ir.identity(op, e.value.dtype)).astype(storage(e.dtype)))
        inner = _Scope(self.run, self, tuple((v.name, n) for (v, _), n in zip(e.loops, extents)))
        value = inner.value(e.value)
        value = np.broadcast_to(value, value.shape[:self.ndim] + extents)
        axes = tuple(range(self.ndim, inner.ndim))
        with np.errstate(all="ignore"):
            if op in ("argmax", "argmin"):
                flat = value.reshape(value.shape[:self.ndim] + (-1,))
                out = (np.argmax if op == "argmax" else np.argmin)(flat, axis=-1)
            else:
                reducer = {"sum": np.sum, "prod": np.prod, "max": np.max, "min": np.min}[op]
                wide = storage(ir.accumulator(op, e.value.dtype))
                out = reducer(value.astype(wide, copy=False), axis=axes)
        return np.asarray(out).astype(storage(e.dtype), copy=False)
