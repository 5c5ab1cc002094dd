"""Reductions on device "cpu" next to numpy (interleaved, medians): column sums (over the batch
axis, as a bias gradient sums), a column mean fused with its use, and full sums of a large
tensor to a scalar, float32.

GB/s counts 4 bytes per element read. Prints one JSON line per case.
Usage: python benchmarks/reductions.py [--quick] [--no-peers]
"""
import numpy as np

import graphc as gc
from _common import arguments, check_close, guarded, interleaved, result

CASES = [  # (id, workload, shape, graphc op, numpy op)
    ("R1", "column sum (axis 0)", (128, 512),
     lambda x: gc.sum(x, axis=0), lambda x: x.sum(axis=0)),
    ("R2", "column sum (axis 0)", (4096, 1024),
     lambda x: gc.sum(x, axis=0), lambda x: x.sum(axis=0)),
    ("R3", "x - column mean (axis 0)", (4096, 1024),
     lambda x: x - gc.mean(x, axis=0), lambda x: x - x.mean(axis=0)),
    ("R4", "full sum to a scalar", (4096, 4096),
     lambda x: gc.sum(x), lambda x: x.sum()),
    ("R5", "full sum to a scalar", (16_777_216,),
     lambda x: gc.sum(x), lambda x: x.sum()),
]
QUICK = {(128, 512): (7, 13), (4096, 1024): (33, 17), (4096, 4096): (65, 31),
         (16_777_216,): (1023,)}


def measure(case, quick, repeats):
    id_, workload, shape, build, reference = case
    shape = QUICK[shape] if quick else shape
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, shape, name="x")
        f = gc.function([x], build(x), session=gc.Session(g, device="cpu"))
    xb = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
    check_close(id_, f(xb), reference(xb.astype(np.float64)), rtol=1e-5, atol=1e-3)
    seconds = interleaved({"graphc": lambda: f(xb), "numpy": lambda: reference(xb)}, repeats)
    gbps = {who: 4 * xb.size / t / 1e9 for who, t in seconds.items()}
    return [result(id_, f"{workload}, float32{list(shape)}", "GB/s", gbps["graphc"],
                   gbps["numpy"], None, shape=list(shape), repeats=repeats)]


if __name__ == "__main__":
    args = arguments(__doc__)
    for case in CASES:
        guarded(case[0], case[1], lambda: measure(case, args.quick, 3 if args.quick else 25))
