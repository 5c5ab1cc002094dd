"""An RNN-like scan, h_t = tanh(x_t @ W + h_{t-1} @ U) (batch 64, 256 units, 100 steps,
float32), on device "cpu": steps per second with the loop's body compiled natively (how graphc
runs it) and, in the same process, with the body interpreted through the ops' numpy references
(how loops ran before bodies compiled: the executable's compiled bodies dropped), and a plain
numpy loop for scale. Medians of several timed calls, interleaved.

Prints one JSON line. Usage: python benchmarks/scan_rnn_steps.py [--repeats N]
"""
import argparse
import json
import statistics
import time

import numpy as np

import graphc as gc

BATCH, UNITS, STEPS = 64, 256, 100


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=STEPS)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    W0 = (rng.normal(size=(UNITS, UNITS)) / UNITS ** 0.5).astype(np.float32)
    U0 = (rng.normal(size=(UNITS, UNITS)) / UNITS ** 0.5).astype(np.float32)
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, BATCH, UNITS), name="x")
        h0 = gc.placeholder(gc.float32, (BATCH, UNITS), name="h0")
        W, U = gc.Variable(W0, name="W"), gc.Variable(U0, name="U")
        hs, _ = gc.scan(lambda xt, h: gc.tanh(xt @ W + h @ U), sequences=x, outputs_info=[h0])
        sess = gc.Session(g, device="cpu")
        compiled = gc.function([x, h0], hs, session=sess)
        interpreted = gc.function([x, h0], hs, session=sess)
    xv = rng.normal(size=(args.steps, BATCH, UNITS)).astype(np.float32)
    hv = np.zeros((BATCH, UNITS), np.float32)
    compiled(xv, hv)
    interpreted(xv, hv)
    interpreted._exe.bodies.clear()  # loops fall back on interpreting their bodies

    def numpy_loop():
        h, out = hv, np.empty_like(xv)
        for t in range(len(xv)):
            h = out[t] = np.tanh(xv[t] @ W0 + h @ U0)
        return out
    want = numpy_loop()
    for f in (compiled, interpreted):
        np.testing.assert_allclose(f(xv, hv), want, rtol=1e-4, atol=1e-4)
    times = {"compiled": [], "interpreted": [], "numpy": []}
    calls = {"compiled": lambda: compiled(xv, hv), "interpreted": lambda: interpreted(xv, hv),
             "numpy": numpy_loop}
    for _ in range(args.repeats):
        for who, call in calls.items():
            start = time.perf_counter()
            call()
            times[who].append(time.perf_counter() - start)
    rate = {who: args.steps / statistics.median(ts) for who, ts in times.items()}
    print(json.dumps({"workload": f"scan tanh(x_t @ W + h @ U), batch {BATCH}, {UNITS} units, "
                                  f"{args.steps} steps, float32, device cpu",
                      "unit": "steps/s",
                      "body_compiled": round(rate["compiled"], 1),
                      "body_interpreted": round(rate["interpreted"], 1),
                      "numpy_loop": round(rate["numpy"], 1),
                      "speedup": round(rate["compiled"] / rate["interpreted"], 2),
                      "repeats": args.repeats}))


if __name__ == "__main__":
    main()
