"""The kernel IR: loop nests over index spaces, with loads, a scalar expression DAG, reductions
and stores. Both code generators consume it; `interpret.py` runs it with numpy as their oracle.

Expressions are immutable and compared by value, so equal subexpressions are one (the code
generators compute each once). Every expression has a dtype name from graphc's dtype table;
index arithmetic is int64. A kernel reads and writes the buffers of its program by slot number
and reads the program's run-time dims (symbolic sizes such as the batch) by slot number too,
so a new batch size changes only the dims array, never the code.

Statements:
- Loop(var, extent, body, parallel): `for var in range(extent)`; a parallel loop (only ever the
  outermost) may be split into ranges that run on several threads.
- Store(buffer, index, value, accumulate): buffer[index] = value, or with accumulate
  buffer[index] += value (an `add` of the value's dtype; bool: or; not bfloat16, whose float32
  storage accumulates instead), where a repeated index takes every iteration's value.
  Accumulations may run in any order, a parallel loop's at once: the code generators make
  them atomic or run the loop on one thread.
- Gemm: C[i, j] (+)= sum_k A[i, k] * B[k, j] through the code generator's matrix multiply.
  A, B and C hold the Gemm's dtype (float16, bfloat16, float32 or float64; a target's code
  generator may take fewer: lower.Slots.gemm_dtypes). float16 and bfloat16 products are summed
  in float32 and rounded once: C = round(sum), or C = round(C + sum) when accumulating.
  An operand is a strided matrix in a buffer (Operand), or Gathered: element [r, c] computed
  by an expression of two variables (an implicit operand, such as a convolution's patches read
  from its input: element [r, c] is evaluated for 0 <= r, c < the matrix's extents only).
  `packed_b`: None, or the slot of a buffer where a code generator may keep B packed from one
  run of the kernel to the next (B the same at every step of a loop): `packed_b_elements` of
  the Gemm's dtype, stale whenever its first word is zero (the runtime zeroes it before each
  run of the loop). A code generator may ignore it; the result is the same either way.
  The epilogue (where the target takes it: lower.Slots.gemm_epilogue): `bias`, None or an
  Operand of one row (rows stride 0, cols stride 1) added to every row of C once the product
  is in C, then `relu`: C = max(C, 0) as numpy's (NaN stays NaN), both in the Gemm's dtype.
- Check(ok, what, value): when `ok` is false, the kernel stops and reports `value` (a bad gather
  index) to the runtime as error `what`.
Expressions:
- Const, Var (a loop variable), Dim (a run-time size), Load(buffer, index, dtype),
  Op(name, args, dtype) for every scalar operation, and Reduce(op, loops, value), whose value
  is the reduction of `value` over the loops (argmax/argmin give the first extreme's position).

Semantics (what interpret.py computes and the code generators match):
- Operands are evaluated whatever their use: `where` evaluates both branches, so a load in the
  branch not taken must still be in bounds (the rules clamp such indices) and a check_index
  there still fires. Loop extents are the same for every iteration of the enclosing loops; a
  loop of extent <= 0 runs nothing. A repeated store index keeps the last iteration's value
  (accumulating stores: the sum of them all).
- Types: an Op's operands have the Op's dtype, except that comparisons take two operands of
  one dtype and give bool, isnan/isfinite give bool, `where` takes a bool condition, `cast`
  takes any dtype and round_bfloat16 takes float32 or bfloat16. exp ... floor, erf, softplus,
  sigmoid, div and fmod take floats only (integer division is floordiv, or truncdiv); truncdiv
  takes ints only; logical ops take bool; bitwise ops (invert, bitwise_and/or/xor) take ints or
  bool, shifts ints only.
- bfloat16 values are held as float32: ops on them compute in float32 and only round_bfloat16
  rounds (to nearest, ties to even, as graphc.ir.dtypes.round_bfloat16); a bfloat16 Const is
  rounded. float16 ops round to float16 after every op.
- Integer arithmetic wraps around. floordiv and mod follow numpy (floor_divide, remainder) for
  ints and floats: the quotient is floored, the remainder takes the divisor's sign (a zero
  remainder too: -4.0 % 2.0 is 0.0, 4.0 % -2.0 is -0.0); integer floordiv and mod by 0 give 0,
  floordiv by -1 negates (wrapping); float floordiv by 0 is x / 0, float mod by 0 NaN. pow with
  a negative integer exponent gives 1 / a**-b truncated toward zero (0 unless |a| == 1).
  truncdiv is C's integer / (truncated toward zero), fmod C's fmod (the remainder takes the
  dividend's sign); truncdiv by 0 or -1 is the lowering's error (the interpreter refuses it). The
  compound ops (floordiv, mod, integer pow, sign, ...) reach no code generator: legalize.py
  expands them into simple ones at the end of lowering. cast converts as numpy's astype (float
  to int truncates; NaN, inf and out-of-range values give an unspecified int; nonzero is true).
  left_shift and right_shift are numpy's for every count: a count outside [0, bits) shifts
  everything out (a right shift of a negative signed value gives -1); shl and shr, their legal
  forms, take counts in [0, bits) only (the lowering's error otherwise; right shifts of signed
  values are arithmetic). Bitwise ops on bool are the logical ones.
  maximum/minimum, max/min and sign propagate NaN (sign of -0.0 is 0.0, as numpy's);
  argmax/argmin treat NaN as the extreme.
- A Reduce over zero iterations gives identity(op, dtype) (argmax/argmin: position 0) without
  evaluating its value. argmax/argmin positions are flattened over the Reduce's loops in order.
  Sums and products may associate in any order, and accumulate in accumulator(op, dtype) (float
  ones in float64), rounded to the Reduce's dtype once; a bool sum is `any`, a product `all`.
- A kernel whose check_index or Check fails reports one failure (parallel loops may find
  another first; the interpreter reports the first in loop order).
"""
import math
from dataclasses import dataclass, fields, replace
from typing import Optional

import numpy as np

from ..ir import dtypes

INDEX = "int64"

# Scalar operations: name -> number of operands. The result dtype is the Op's own.
UNARY = ("neg", "abs", "sign", "square", "exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "sin",
         "cos", "tanh", "sigmoid", "softplus", "relu", "erf", "floor", "isnan", "isfinite",
         "logical_not", "invert", "cast", "round_bfloat16")
BINARY = ("add", "sub", "mul", "div", "floordiv", "mod", "pow", "truncdiv", "fmod", "maximum",
          "minimum", "equal", "not_equal", "less", "less_equal", "greater", "greater_equal",
          "logical_and", "logical_or", "logical_xor", "bitwise_and", "bitwise_or", "bitwise_xor",
          "left_shift", "right_shift", "shl", "shr")
TERNARY = ("where", "check_index")  # check_index(i, n, what): i, or error `what` unless 0 <= i < n
ARITY = {**dict.fromkeys(UNARY, 1), **dict.fromkeys(BINARY, 2), **dict.fromkeys(TERNARY, 3)}
COMPARISONS = ("equal", "not_equal", "less", "less_equal", "greater", "greater_equal")



@dataclass(frozen=True)
class Reduction:
    """What a reduction means, for the interpreter and both code generators. `start`: the
    accumulator's first value as a function of its dtype's (lowest, highest) values (argmax/
    argmin: the best value's, their position starts at 0); `combine`: the scalar op that takes
    one more value into the accumulator (argmax/argmin: None, they keep the first extreme);
    `widens`: whether float values accumulate in float64 (so that a float32 sum is at least as
    accurate as numpy's pairwise one)."""
    start: object
    combine: Optional[str]
    widens: bool = False


REDUCTIONS = {
    "sum": Reduction(lambda lo, hi: 0, "add", widens=True),
    "prod": Reduction(lambda lo, hi: 1, "mul", widens=True),
    "max": Reduction(lambda lo, hi: lo, "maximum"), "min": Reduction(lambda lo, hi: hi, "minimum"),
    "argmax": Reduction(lambda lo, hi: lo, None), "argmin": Reduction(lambda lo, hi: hi, None),
}


def extremes(dtype):
    """The lowest and highest values of a dtype, as Python numbers (floats: the infinities)."""
    d = dtypes.BY_NAME[dtype]
    if d.is_float:
        return -math.inf, math.inf
    if d.is_bool:
        return False, True
    info = np.iinfo(d.np)
    return int(info.min), int(info.max)


def accumulator(op, dtype):
    """The dtype in which reduction `op` of `dtype` values accumulates (the best value's, for
    argmax/argmin)."""
    return "float64" if REDUCTIONS[op].widens and dtypes.BY_NAME[dtype].is_float else dtype


def reduction_start(op, dtype):
    """The first value of the accumulator of reduction `op` of `dtype` values (a value of
    accumulator(op, dtype))."""
    return REDUCTIONS[op].start(*extremes(dtype))


def identity(op, dtype):
    """What reduction `op` of `dtype` values gives over zero iterations (argmax/argmin: 0)."""
    return 0 if REDUCTIONS[op].combine is None else reduction_start(op, dtype)


class Unsupported(Exception):
    """A computation with no kernel lowering (yet): the runtime runs it on the host."""


class Expr:
    __slots__ = ()


def _hash_once(e):
    """The hash of a compound expression's fields, kept once computed: expressions share
    subexpressions (a legalized floordiv reads its divisor five times), and hashing each anew
    at every level that holds it takes time exponential in the nesting."""
    kept = e.__dict__.get("_hash")
    if kept is None:
        for sub in bottom_up(e, _hash_kept):  # subexpressions first, without recursion
            object.__setattr__(sub, "_hash", hash(tuple(getattr(sub, f.name) for f in fields(sub))))
        kept = e.__dict__["_hash"]
    return kept


def _hash_kept(e):
    """Whether e's hash needs no computing now: kept already, or not kept at all."""
    return type(e).__hash__ is not _hash_once or "_hash" in e.__dict__


@dataclass(frozen=True)
class Const(Expr):
    value: object
    dtype: str


@dataclass(frozen=True)
class Var(Expr):
    name: str
    dtype: str = INDEX


@dataclass(frozen=True)
class Dim(Expr):
    slot: int
    dtype: str = INDEX


@dataclass(frozen=True)
class Load(Expr):
    buffer: int
    index: Expr
    dtype: str
    __hash__ = _hash_once


@dataclass(frozen=True)
class Op(Expr):
    name: str
    args: tuple
    dtype: str
    __hash__ = _hash_once


@dataclass(frozen=True)
class Reduce(Expr):
    op: str
    loops: tuple  # ((Var, extent Expr), ...)
    value: Expr
    dtype: str  # the result's: the value's, or int64 for argmax/argmin
    __hash__ = _hash_once


class Stmt:
    __slots__ = ()


@dataclass(frozen=True)
class Loop(Stmt):
    var: Var
    extent: Expr
    body: tuple
    parallel: bool = False


@dataclass(frozen=True)
class Store(Stmt):
    buffer: int
    index: Expr
    value: Expr
    accumulate: bool = False


@dataclass(frozen=True)
class Operand:
    """A strided matrix inside a buffer: element [r, c] at offset + r*rows + c*cols."""
    buffer: int
    offset: Expr
    rows: Expr
    cols: Expr


@dataclass(frozen=True)
class Gathered:
    """A matrix computed where it is read: element [r, c] is `value` with `row` = r and
    `col` = c (variables bound by the Gemm alone). `along`: "row" or "col", the index along
    which neighbouring elements read neighbouring memory (a code generator's order of reads)."""
    row: Var
    col: Var
    value: Expr
    along: str = "col"


@dataclass(frozen=True)
class Gemm(Stmt):
    dtype: str
    m: Expr
    n: Expr
    k: Expr
    a: object  # Operand or Gathered
    b: object  # Operand or Gathered
    c: Operand  # c.cols is 1
    accumulate: bool = False
    packed_b: object = None  # slot of B's packed copy, kept across runs (see the module doc)
    bias: object = None  # the epilogue (see the module doc): None or an Operand of one row
    relu: bool = False


# A Gemm's packed-B buffer: k * (n + PACKED_B_PAD) elements (columns padded up to a whole
# register tile) and PACKED_B_EXTRA_BYTES more (a header, and room to align the copy)
PACKED_B_PAD = 64
PACKED_B_EXTRA_BYTES = 192


def packed_b_elements(k, n, itemsize):
    """Elements of a packed-B buffer for a B of k x n (ints) of `itemsize` bytes."""
    return k * (n + PACKED_B_PAD) + -(-PACKED_B_EXTRA_BYTES // itemsize)


@dataclass(frozen=True)
class Check(Stmt):
    ok: Expr
    what: int  # which error: an index into the program's error table
    value: Expr


@dataclass(frozen=True)
class Buffer:
    slot: int
    dtype: str
    size: Expr  # element count


@dataclass
class Kernel:
    """One loop nest, compiled to one function. `nodes` names the graph nodes it computes."""

    name: str
    body: tuple
    buffers: dict  # slot -> Buffer, for every buffer the kernel touches
    nodes: tuple = ()
    comment: Optional[str] = None

    @property
    def parallel_loop(self):
        first = self.body[0] if len(self.body) == 1 else None
        return first if isinstance(first, Loop) and first.parallel else None


# ---- building expressions, folding the trivial cases of index arithmetic -----------------------
def const(value, dtype=INDEX):
    return Const(value, dtype)


def _value(e):
    return e.value if isinstance(e, Const) else None


def add(a, b):
    if _value(a) == 0:
        return b
    if _value(b) == 0:
        return a
    if isinstance(a, Const) and isinstance(b, Const):
        return const(a.value + b.value)
    return Op("add", (a, b), INDEX)


def sub(a, b):
    if _value(b) == 0:
        return a
    if isinstance(a, Const) and isinstance(b, Const):
        return const(a.value - b.value)
    return Op("sub", (a, b), INDEX)


def mul(a, b):
    if _value(a) == 1:
        return b
    if _value(b) == 1:
        return a
    if _value(a) == 0 or _value(b) == 0:
        return const(0)
    if isinstance(a, Const) and isinstance(b, Const):
        return const(a.value * b.value)
    return Op("mul", (a, b), INDEX)


def floordiv(a, b):
    if _value(b) == 1:
        return a
    if isinstance(a, Const) and isinstance(b, Const):
        return const(a.value // b.value)
    return Op("floordiv", (a, b), INDEX)


def mod(a, b):
    if _value(b) == 1:
        return const(0)
    if isinstance(a, Const) and isinstance(b, Const):
        return const(a.value % b.value)
    return Op("mod", (a, b), INDEX)


def maximum(a, b):
    if isinstance(a, Const) and isinstance(b, Const):
        return const(max(a.value, b.value))
    return Op("maximum", (a, b), INDEX)


def minimum(a, b):
    if isinstance(a, Const) and isinstance(b, Const):
        return const(min(a.value, b.value))
    return Op("minimum", (a, b), INDEX)


def product(exprs):
    out = const(1)
    for e in exprs:
        out = mul(out, e)
    return out


def linear(index, strides):
    """sum(index[i] * strides[i])."""
    flat = _unflattened(index, strides)
    if flat is not None:
        return flat
    out = const(0)
    for i, s in zip(index, strides):
        out = add(out, mul(i, s))
    return out


def _unflattened(index, strides):
    """f where index is unflatten(f, extents) and strides are the extents' row-major strides:
    the flat position read back (a reshape of a contiguous array), which is f for every
    integer f under floor division. Else None."""
    last = index[-1] if index else None
    if not (isinstance(last, Op) and last.name == "mod"):
        return None
    extents = [const(1)]  # the first extent decides neither unflatten nor the strides
    for e in index[1:]:
        if isinstance(e, Op) and e.name == "mod":
            extents.append(e.args[1])
        elif _value(e) == 0:  # unflatten's entry for an extent of 1
            extents.append(const(1))
        else:
            return None
    flat = last.args[0]
    if unflatten(flat, extents) != list(index) or contiguous_strides(extents) != list(strides):
        return None
    return flat


def contiguous_strides(extents):
    strides, step = [], const(1)
    for e in reversed(extents):
        strides.append(step)
        step = mul(step, e)
    return strides[::-1]


def unflatten(flat, extents):
    """The multi-index of flat position `flat` in a row-major array of `extents`."""
    out = []
    for i, stride in enumerate(contiguous_strides(extents)):
        q = floordiv(flat, stride)
        out.append(q if i == 0 else mod(q, extents[i]))
    return out


def substitute(expr, values):
    """expr with the variables named in `values` (name -> Expr) replaced by their values."""
    memo = {}

    def walk(e):
        key = id(e)
        if key not in memo:
            if isinstance(e, Var):
                memo[key] = values.get(e.name, e)
            elif isinstance(e, Load):
                memo[key] = Load(e.buffer, walk(e.index), e.dtype)
            elif isinstance(e, Op):
                memo[key] = Op(e.name, tuple(walk(a) for a in e.args), e.dtype)
            elif isinstance(e, Reduce):
                inner = {v.name for v, _ in e.loops}
                if inner & set(values):
                    raise ValueError(f"substituting variables a reduction binds: {inner}")
                memo[key] = Reduce(e.op, tuple((v, walk(x)) for v, x in e.loops),
                                   walk(e.value), e.dtype)
            else:
                memo[key] = e
        return memo[key]
    return walk(expr)


def op(name, *args, dtype=None):
    return Op(name, tuple(args), dtype or args[0].dtype)


def free_vars(expr, _memo=None):
    """The loop variables an expression depends on (a Reduce binds its own loops)."""
    memo = {} if _memo is None else _memo
    for e in bottom_up(expr, lambda e: id(e) in memo):
        memo[id(e)] = _own_free_vars(e, memo)
    return memo[id(expr)]


def _own_free_vars(e, memo):
    """free_vars of e, those of its children being in memo."""
    if isinstance(e, Var):
        return frozenset((e.name,))
    if isinstance(e, Reduce):
        inner = memo[id(e.value)].union(*(memo[id(x)] for _, x in e.loops))
        return inner - {v.name for v, _ in e.loops}
    return frozenset().union(*(memo[id(c)] for c in children(e)))


def children(e):
    """The expressions e is computed from."""
    if isinstance(e, Load):
        return [e.index]
    if isinstance(e, Op):
        return list(e.args)
    if isinstance(e, Reduce):
        return [e.value] + [x for _, x in e.loops]
    return []


def bottom_up(root, known, kids=None):
    """The expressions under root (root included) that known(e) does not accept, each after
    its kids (`children` unless given), for a caller that makes each one known as it receives
    it (memoizes its value). Iterative: fused chains nest deeper than Python's recursion limit."""
    kids = kids or children
    stack = [root]
    while stack:
        e = stack[-1]
        if known(e):
            stack.pop()
            continue
        waiting = [k for k in kids(e) if not known(k)]
        if waiting:
            stack.extend(waiting)
            continue
        stack.pop()
        yield e


def distinct(roots, opaque=()):
    """Every distinct expression under roots, each once, but for those under an expression of
    an `opaque` type; iterative (see bottom_up)."""
    todo, seen = list(roots), set()
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        if not isinstance(e, opaque):
            todo.extend(children(e))


def statement_exprs(stmts):
    """The expressions directly under a statement list (loop extents, indices, values)."""
    for s in stmts:
        if isinstance(s, Loop):
            yield s.extent
            yield from statement_exprs(s.body)
        elif isinstance(s, Store):
            yield from (s.index, s.value)
        elif isinstance(s, Gemm):
            yield from gemm_exprs(s)


def gemm_exprs(g):
    """The expressions of a Gemm: its sizes, then its operands' offsets and strides, or a
    Gathered operand's value."""
    yield from (g.m, g.n, g.k)
    for operand in gemm_operands(g):
        if isinstance(operand, Gathered):
            yield operand.value
        else:
            yield from (operand.offset, operand.rows, operand.cols)


def gemm_operands(g):
    """A, B, C and the bias where there is one."""
    return (g.a, g.b, g.c) + (() if g.bias is None else (g.bias,))


def operand_buffers(g):
    """The buffers a Gemm reads through strided operands."""
    return [o.buffer for o in (g.a, g.b, g.bias) if isinstance(o, Operand)]


def walk_statements(stmts):
    """Every statement in these statements, loops' bodies included, in program order."""
    for s in stmts:
        yield s
        if isinstance(s, Loop):
            yield from walk_statements(s.body)


def map_gemms(stmts, rewrite):
    """These statements with every Gemm, loops' bodies included, replaced by rewrite(gemm)."""
    def one(s):
        if isinstance(s, Loop):
            return replace(s, body=map_gemms(s.body, rewrite))
        return rewrite(s) if isinstance(s, Gemm) else s
    return tuple(one(s) for s in stmts)


def accumulates(stmts):
    """Whether an accumulating Store lies under these statements."""
    return any(s.accumulate if isinstance(s, Store) else
               isinstance(s, Loop) and accumulates(s.body) for s in stmts)


def op_uses(kernels):
    """The distinct (op name, first operand's dtype) pairs of the Ops in these kernels: what a
    code generator must have instructions for."""
    found, seen = set(), set()
    todo = [e for k in kernels for e in statement_exprs(k.body)]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, Op):
            found.add((e.name, e.args[0].dtype))
        todo.extend(children(e))
    return found
