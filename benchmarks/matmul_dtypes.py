"""Matrix products beyond float32 matrices on device "cpu", next to numpy (interleaved, medians):
float16 and bfloat16 (float32 products of operands copied in float32, rounded once; numpy sums
float16 in float32 too, without BLAS, and bfloat16 is its float32 product rounded), int32
(a loop of sums that wraps around, as numpy's), and products with a 1-D operand (matrix-vector,
batched).

GFLOP/s counts 2 m n k per product. Prints one JSON line per case.
Usage: python benchmarks/matmul_dtypes.py [--quick] [--no-peers]
"""
import numpy as np

import graphc as gc
from graphc.ir import dtypes
from _common import arguments, check_close, guarded, interleaved, result

CASES = [  # (id, dtype, A's shape, B's shape)
    ("M1", "float16", (512, 512), (512, 512)),
    ("M2", "bfloat16", (512, 512), (512, 512)),
    ("M3", "int32", (256, 256), (256, 256)),
    ("M4", "float32", (4096, 1024), (1024,)),
    ("M5", "float32", (64, 128, 512), (512,)),
    ("M6", "float32", (1024,), (1024, 1024)),
]
QUICK = {"M1": ((33, 7), (7, 33)), "M2": ((7, 33), (33, 1)), "M3": ((7, 33), (33, 7)),
         "M4": ((33, 7), (7,)), "M5": ((3, 7, 33), (33,)), "M6": ((7,), (7, 33))}


def numpy_matmul(dtype):
    if dtype == "bfloat16":
        return lambda a, b: dtypes.round_bfloat16(a @ b)
    return np.matmul


def measure(case, quick, repeats):
    id_, dtype, sa, sb = case
    sa, sb = QUICK[id_] if quick else (sa, sb)
    rng = np.random.default_rng(0)
    storage = np.float32 if dtype == "bfloat16" else dtype
    if dtype == "int32":
        a, b = (rng.integers(-100, 100, s).astype(storage) for s in (sa, sb))
    else:
        a, b = (rng.uniform(-1, 1, s).astype(storage) for s in (sa, sb))
        if dtype == "bfloat16":
            a, b = dtypes.round_bfloat16(a), dtypes.round_bfloat16(b)
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.as_dtype(dtype), sa, name="a")
        y = gc.placeholder(gc.as_dtype(dtype), sb, name="b")
        f = gc.function([x, y], gc.matmul(x, y), session=gc.Session(g, device="cpu"))
    reference = numpy_matmul(dtype)
    want = reference(a, b)
    scale = float(np.abs(want).max()) or 1.0
    tol = {"float16": 2e-3, "bfloat16": 1e-2}.get(dtype, 1e-5)
    check_close(id_, f(a, b), want, rtol=tol, atol=tol * scale)
    seconds = interleaved({"graphc": lambda: f(a, b), "numpy": lambda: reference(a, b)},
                          repeats)
    m, k = (sa[-2] if len(sa) > 1 else 1), sa[-1]
    n = sb[-1] if len(sb) > 1 else 1
    flops = 2 * m * n * k * int(np.prod(np.broadcast_shapes(sa[:-2], sb[:-2])))
    return [result(id_, f"matmul {dtype}{list(sa)} @ {list(sb)}", "GFLOP/s",
                   flops / seconds["graphc"] / 1e9, flops / seconds["numpy"] / 1e9, None,
                   repeats=repeats)]


if __name__ == "__main__":
    args = arguments(__doc__)
    for case in CASES:
        guarded(case[0], case[1], lambda: measure(case, args.quick, 3 if args.quick else 15))
