"""W2: softmax over the last axis of float32[4096, 4096], compiled by gc.function on device
"cpu", next to numpy's max-shifted softmax on the same array (interleaved, medians).

GB/s counts 8 bytes per element (read x, write y). Prints one JSON line.
Usage: python benchmarks/w2_softmax.py [--quick] [--no-peers]
"""
import numpy as np

import graphc as gc
from _common import arguments, check_close, guarded, interleaved, peer_details, peer_figures, result

TARGET_GBPS = 30  # the specification of CPU speed: the rows fit in L1, one read and one write


def numpy_softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def measure(rows, cols, repeats, no_peers):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (rows, cols), name="x")
        f = gc.function([x], gc.nn.softmax(x, axis=-1), session=gc.Session(g, device="cpu"))
    xb = np.random.default_rng(0).standard_normal((rows, cols), dtype=np.float32)
    check_close("W2", f(xb), numpy_softmax(xb), rtol=1e-4, atol=1e-7)
    seconds = interleaved({"graphc": lambda: f(xb), "numpy": lambda: numpy_softmax(xb)}, repeats)
    gbps = {who: 8 * rows * cols / t / 1e9 for who, t in seconds.items()}
    peers = peer_figures("W2", {"rows": rows, "cols": cols}, repeats, no_peers)
    return [result("W2", f"softmax over the last axis, float32[{rows}, {cols}]", "GB/s",
                   gbps["graphc"], gbps["numpy"], TARGET_GBPS, peers=peers, shape=[rows, cols],
                   repeats=repeats, **peer_details(peers))]


if __name__ == "__main__":
    args = arguments(__doc__)
    rows, cols, repeats = (64, 1000, 3) if args.quick else (4096, 4096, 15)
    guarded("W2", "softmax rows", lambda: measure(rows, cols, repeats, args.no_peers))
