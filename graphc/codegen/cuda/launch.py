"""How each generated kernel is launched: the range [0, extent) whose iterations its threads
share, and the block size. The renderer and the runtime both read it from here.

Kinds of kernels:
- "loop": the outermost loop is parallel; each thread takes iterations of it (grid-stride).
- "gemm": a matrix product (in loops over a batch): threads share the product's elements.
- "single": anything else (a reduction to one value); one thread runs it.
"""
from dataclasses import dataclass

from ...kernels import ir

THREADS = 256
MAX_BLOCKS = 65535  # a grid-stride loop covers the rest; plenty to fill any GPU


@dataclass(frozen=True)
class Launch:
    kind: str
    extent: ir.Expr  # of the range the kernel's iterations [lo, hi) come from
    threads: int = THREADS


def gemm_of(kernel):
    """The Gemm of a kernel whose body is loops (none parallel) around one Gemm, else None."""
    body = kernel.body
    while len(body) == 1 and isinstance(body[0], ir.Loop) and not body[0].parallel:
        body = body[0].body
    return body[0] if len(body) == 1 and isinstance(body[0], ir.Gemm) else None


def launch(kernel):
    loop = kernel.parallel_loop
    if loop is not None:
        return Launch("loop", loop.extent)
    gemm = gemm_of(kernel)
    if gemm is not None:
        return Launch("gemm", ir.mul(gemm.m, gemm.n))
    return Launch("single", ir.const(1), threads=1)


def blocks(launch, hi):
    """Blocks for a launch over [0, hi) (0 when there is nothing to do)."""
    if hi <= 0:
        return 0
    return min(-(-hi // launch.threads), MAX_BLOCKS)


# index arithmetic on the host, for launch ranges: numpy's semantics on Python ints
HOST_OPS = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
            "floordiv": lambda a, b: a // b if b else 0, "mod": lambda a, b: a % b if b else 0,
            "maximum": max, "minimum": min}


def evaluate(expr, dims):
    """The value of an index expression of constants and run-time dims."""
    if isinstance(expr, ir.Const):
        return int(expr.value)
    if isinstance(expr, ir.Dim):
        return int(dims[expr.slot])
    if isinstance(expr, ir.Op) and expr.name in HOST_OPS:
        return HOST_OPS[expr.name](*(evaluate(a, dims) for a in expr.args))
    raise ValueError(f"a launch range is not computable on the host: {expr}")
