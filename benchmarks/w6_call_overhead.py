"""W6: what one call costs: y = x + 1 on float32[1], numpy in and numpy out, through a
gc.function on device "cpu", next to np.add on the same array (interleaved, medians of blocks
of back-to-back calls).

Prints one JSON line (microseconds per call).
Usage: python benchmarks/w6_call_overhead.py [--quick] [--no-peers]
"""
import numpy as np

import graphc as gc
from _common import arguments, check_close, guarded, interleaved, peer_details, peer_figures, result

TARGET_US = 1.5


def measure(calls, repeats, no_peers):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (1,), name="x")
        f = gc.function([x], x + 1, session=gc.Session(g, device="cpu"))
    xb = np.full(1, 2.5, np.float32)
    check_close("W6", f(xb), xb + 1, rtol=0, atol=0)
    seconds = interleaved({"graphc": lambda: f(xb), "numpy": lambda: np.add(xb, 1)}, repeats,
                          number=calls, warmup=calls)
    us = {who: t * 1e6 for who, t in seconds.items()}
    peers = peer_figures("W6", {}, repeats, no_peers)
    return [result("W6", "y = x + 1 on float32[1], one call, numpy in and out", "us",
                   us["graphc"], us["numpy"], TARGET_US, better="lower", peers=peers,
                   calls_per_sample=calls, repeats=repeats, **peer_details(peers))]


if __name__ == "__main__":
    args = arguments(__doc__)
    calls, repeats = (200, 3) if args.quick else (10_000, 15)
    guarded("W6", "call overhead", lambda: measure(calls, repeats, args.no_peers))
