"""W1: y = tanh(x)*sigmoid(x) + 0.5*x*x - exp(-abs(x)) over float32[2**24], compiled by
gc.function on device "cpu", next to numpy evaluating the same expression (interleaved, medians).

GB/s counts 8 bytes per element (read x, write y). Prints one JSON line.
Usage: python benchmarks/w1_elementwise.py [--quick] [--no-peers]
"""
import numpy as np

import graphc as gc
from _common import arguments, check_close, guarded, interleaved, peer_details, peer_figures, result

TARGET_GBPS = 20


def numpy_w1(x):
    return np.tanh(x) * (1 / (1 + np.exp(-x))) + 0.5 * x * x - np.exp(-np.abs(x))


def measure(n, repeats, no_peers):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (n,), name="x")
        y = gc.tanh(x) * gc.sigmoid(x) + 0.5 * x * x - gc.exp(-gc.abs(x))
        f = gc.function([x], y, session=gc.Session(g, device="cpu"))
    xb = np.random.default_rng(0).standard_normal(n, dtype=np.float32)
    check_close("W1", f(xb), numpy_w1(xb), rtol=1e-5, atol=1e-6)
    seconds = interleaved({"graphc": lambda: f(xb), "numpy": lambda: numpy_w1(xb)}, repeats)
    gbps = {who: 8 * n / t / 1e9 for who, t in seconds.items()}
    peers = peer_figures("W1", {"n": n}, repeats, no_peers)
    return [result("W1", f"tanh(x)*sigmoid(x) + 0.5*x*x - exp(-abs(x)), float32[{n}]", "GB/s",
                   gbps["graphc"], gbps["numpy"], TARGET_GBPS, peers=peers, n=n,
                   repeats=repeats, **peer_details(peers))]


if __name__ == "__main__":
    args = arguments(__doc__)
    n, repeats = (1 << 16, 3) if args.quick else (1 << 24, 15)
    guarded("W1", "fused elementwise", lambda: measure(n, repeats, args.no_peers))
