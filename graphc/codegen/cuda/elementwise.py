"""Elementwise kernels as flat ranges, with 16-byte loads and stores (launch kind "flat").

A kernel that is a nest of loops (the outermost parallel) around stores (not accumulating)
at the nest's flat position only, with no reduction or matrix product, is one range of
positions [lo, hi): the threads take positions in a grid-stride loop whatever the shape, so
that neighbouring threads touch neighbouring elements. When every buffer read or written at the
flat position is aligned to its vector (checked at run time, on the pointers), each thread
takes a vector of `width` positions at a time: those buffers move through one 16-byte access
per vector (for the widest dtype; narrower ones through a narrower vector), the vector's lanes
computed one after another by the scalar code. The positions after the last whole vector, or
all of them when a pointer is not aligned, go one at a time. Loop variables are recovered from
the position only where an expression needs them (a broadcast operand, a gather).
"""
from ...kernels import ir
from .types import STORAGE, STORAGE_BYTES, from_storage, to_storage

VECTOR_BYTES = 16
PRELUDE = r"""// ---- vectors of elementwise kernels ----------------------------------------------
// N elements moved by one access of N * sizeof(T) bytes (16 at most), which needs that alignment
template <typename T, int N> struct __align__(sizeof(T) * N) gc_vec { T v[N]; };
GC_INLINE bool gc_aligned(const void* p, unsigned long long bytes) {
    return (unsigned long long)p % bytes == 0;
}
"""


def flat_nest(kernel):
    """(loops, flat position, stores) of a kernel that is a flat elementwise range, else None."""
    if kernel.parallel_loop is None:
        return None
    loops, body = [], kernel.body
    while len(body) == 1 and isinstance(body[0], ir.Loop):
        loops.append((body[0].var, body[0].extent))
        body = body[0].body
    if not body or not all(isinstance(s, ir.Store) and not s.accumulate for s in body):
        return None
    flat = ir.linear([v for v, _ in loops], ir.contiguous_strides([e for _, e in loops]))
    if any(s.index != flat for s in body) or _reduces(body):
        return None
    return loops, flat, body


def _reduces(stores):
    todo, seen = [e for s in stores for e in (s.index, s.value)], set()
    while todo:
        e = todo.pop()
        if isinstance(e, ir.Reduce):
            return True
        if id(e) not in seen:
            seen.add(id(e))
            todo.extend(ir.children(e))
    return False


def contiguous_loads(stores, flat):
    """The Loads at the flat position, in first-use order."""
    out, todo, seen = {}, [s.value for s in reversed(stores)], set()
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, ir.Load) and e.index == flat:
            out.setdefault(e, None)
        else:
            todo.extend(reversed(ir.children(e)))
    return list(out)


def vector_width(kernel):
    """Positions per vector of a flat kernel: 16 bytes of its widest contiguous dtype."""
    loops, flat, stores = flat_nest(kernel)
    dtypes = [s.value.dtype for s in stores] + [e.dtype for e in contiguous_loads(stores, flat)]
    return VECTOR_BYTES // max(STORAGE_BYTES[d] for d in dtypes)


def render_flat(r):
    """Emit a flat kernel's body through the kernel renderer r."""
    loops, flat, stores = flat_nest(r.kernel)
    width = r.launch.vector
    loads = contiguous_loads(stores, flat)
    written = {s.buffer: r.pointer(s.buffer, s.value.dtype, written=True) for s in stores}
    vector = {s.buffer: f"gc_vec<{STORAGE[s.value.dtype]}, {width}>" for s in stores}
    access = [(r.pointer(s.buffer, s.value.dtype), s.value.dtype) for s in stores]
    access += [(r.pointer(e.buffer, e.dtype), e.dtype) for e in loads]
    thread, threads, vectors, end = (r.fresh(h) for h in ("thread", "threads", "vectors", "end"))
    r.line(f"const long long {thread} = (long long)blockIdx.x * blockDim.x + threadIdx.x;")
    r.line(f"const long long {threads} = (long long)gridDim.x * blockDim.x;")
    aligned = " && ".join(sorted({f"gc_aligned({p}, {width * STORAGE_BYTES[d]})"
                                  for p, d in access}))
    r.line(f"// {width} positions at a time where every buffer read or written at the "
           "position is aligned")
    r.line(f"const bool {vectors} = lo % {width} == 0 && {aligned};")
    r.line(f"const long long {end} = {vectors} ? lo + (hi - lo) / {width} * {width} : lo;")
    at, lane = r.fresh("at"), r.fresh("lane")
    r.open_block(f"for (long long {at} = lo + {width} * {thread}; {at} < {end}; "
                 f"{at} += {width} * {threads})")
    lanes = {}
    for e in loads:
        name, t = r.fresh("in"), f"gc_vec<{STORAGE[e.dtype]}, {width}>"
        r.line(f"const {t} {name} = *(const {t}*)({r.pointer(e.buffer, e.dtype)} + {at});")
        lanes[e] = from_storage(f"{name}.v[{lane}]", e.dtype)
    out = {slot: r.fresh("out") for slot in written}
    for slot in written:
        r.line(f"{vector[slot]} {out[slot]};")
    r.line("#pragma unroll")
    r.open_block(f"for (int {lane} = 0; {lane} < {width}; ++{lane})")
    _position(r, loops, flat, stores, lanes, f"{at} + {lane}")
    _stores(r, stores, lambda s, value: f"{out[s.buffer]}.v[{lane}] = {value};")
    r.close_block()
    for slot in written:
        r.line(f"*({vector[slot]}*)({written[slot]} + {at}) = {out[slot]};")
    r.close_block()
    position = r.fresh("position")
    r.open_block(f"for (long long {position} = {end} + {thread}; {position} < hi; "
                 f"{position} += {threads})")
    _position(r, loops, flat, stores, {}, position)
    _stores(r, stores, lambda s, value: f"{written[s.buffer]}[{position}] = {value};")
    r.close_block()


def _position(r, loops, flat, stores, lanes, position):
    """Bind, in the open block, what the stores read at one flat position: the position (a
    C expression), the contiguous loads' `lanes` (expression -> C expression) and the loop
    variables that an expression reads."""
    used, reads_position = _reads(stores, flat, lanes)
    if (used or reads_position) and not position.isidentifier():
        name = r.fresh("position")
        r.line(f"const long long {name} = {position};")
        position = name
    scope = r.scopes[-1]
    scope[r.values(flat)] = position
    for e, text in lanes.items():
        scope[r.values(e)] = r.define("load", e.dtype, text)
    names = [v.name for v, _ in loops]
    r.bound[-1].update(names)
    for i, var in enumerate(names):
        if var in used:
            inner = [r.value(x) for _, x in loops[i + 1:]]
            q = position if not inner else f"{position} / " + (
                inner[0] if len(inner) == 1 else "(" + " * ".join(inner) + ")")
            if i > 0:
                q = f"{q if not inner else f'({q})'} % {r.value(loops[i][1])}"
            r.line(f"const long long {var} = {q};")


def _stores(r, stores, line):
    for s in stores:
        r.line(line(s, to_storage(r.value(s.value), s.value.dtype)))


def _reads(stores, flat, lanes):
    """(the loop variables the stores' values read other than through the flat position,
    whether they read the position other than through the contiguous loads `lanes`)."""
    used, position, todo, seen = set(), False, [s.value for s in stores], set()
    while todo:
        e = todo.pop()
        if id(e) in seen or e in lanes:
            continue
        seen.add(id(e))
        if e == flat:
            position = True
            continue
        if isinstance(e, ir.Var):
            used.add(e.name)
        todo.extend(ir.children(e))
    return used, position
