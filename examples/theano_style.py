"""Theano style: gc.function with updates; the function's session holds the variables.

Fits y = 3x - 2 plus noise by gradient descent.
Run: python examples/theano_style.py [--steps N]
"""
import argparse

import numpy as np

import graphc as gc


def main(steps=300):
    rng = np.random.default_rng(1)
    xs = rng.uniform(-1, 1, 256).astype("float32")
    ys = 3 * xs - 2 + 0.05 * rng.normal(size=256).astype("float32")

    x = gc.placeholder(gc.float32, shape=(None,), name="x")
    y = gc.placeholder(gc.float32, shape=(None,), name="y")
    w = gc.Variable(np.float32(0.0), name="w")
    b = gc.Variable(np.float32(0.0), name="b")
    loss = gc.mean(gc.square(w * x + b - y))
    gw, gb = gc.grad(loss, [w, b])
    f = gc.function([x, y], loss, updates=[(w, w - 0.5 * gw), (b, b - 0.5 * gb)])
    for step in range(steps):
        l = f(xs, ys)
        if step % max(1, steps // 5) == 0:
            print(f"step {step:4d}  loss {l:.5f}")
    w_val, b_val = f.session.get_value(w), f.session.get_value(b)
    print(f"w = {w_val:.3f} (true 3), b = {b_val:.3f} (true -2)")
    print(f.dump(stage="input"))
    return float(w_val), float(b_val)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=300)
    main(parser.parse_args().steps)
