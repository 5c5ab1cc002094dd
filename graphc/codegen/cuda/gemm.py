"""The Gemm statement in CUDA C: C[i, j] (+)= sum_k A[i, k] * B[k, j].

Each element of C is one dot product over k, accumulated with fma in the product's dtype.
Where the Gemm is the kernel's work (launch kind "gemm"), threads share the elements through
the grid-stride loop; elsewhere the thread computes them all.
"""
from .types import REGISTER, math_suffix


def render_gemm(r, g, distributed):
    """Emit Gemm g through the kernel renderer r."""
    t, fma = REGISTER[g.dtype], f"fma{math_suffix(g.dtype)}"
    n, k = r.value(g.n), r.value(g.k)
    a_at, a_rows, a_cols = (r.value(x) for x in (g.a.offset, g.a.rows, g.a.cols))
    b_at, b_rows, b_cols = (r.value(x) for x in (g.b.offset, g.b.rows, g.b.cols))
    c_at, c_rows = r.value(g.c.offset), r.value(g.c.rows)
    a, b = r.pointer(g.a.buffer, g.dtype), r.pointer(g.b.buffer, g.dtype)
    c = r.pointer(g.c.buffer, g.dtype, written=True)
    row, col, kk, acc = r.fresh("row"), r.fresh("col"), r.fresh("k"), r.fresh("acc")
    if distributed:
        element = r.fresh("element")
        r.open_grid_stride(element)
        r.line(f"const long long {row} = {element} / {n}, {col} = {element} % {n};")
    else:
        r.open_loop(row, r.value(g.m))
        r.open_loop(col, n)
    r.line(f"{t} {acc} = 0;")
    r.open_loop(kk, k)
    r.line(f"{acc} = {fma}({a}[{a_at} + {row} * {a_rows} + {kk} * {a_cols}], "
           f"{b}[{b_at} + {kk} * {b_rows} + {col} * {b_cols}], {acc});")
    r.close_block()
    r.line(f"{c}[{c_at} + {row} * {c_rows} + {col}] {'+=' if g.accumulate else '='} {acc};")
    r.close_block()
    if not distributed:
        r.close_block()
