"""Inspect what the compiler does to an MLP train step (784-512-512-10, SGD).

Prints the function's compile statistics and its fusion groups, and writes the optimized graph
as a self-contained HTML page, nodes coloured by kernel, to build/demo_dumps/ beside the other
dumps of `make demo` (or to --html PATH).
Run: python examples/inspect_graph.py [--html PATH] [--hidden N]
"""
import argparse
import os

import numpy as np

import graphc as gc

HTML = "build/demo_dumps/mlp_step.html"  # beside digits_cnn.py's dumps


def train_step(hidden=512):
    rng = np.random.default_rng(0)
    x = gc.placeholder(gc.float32, (None, 784), name="x")
    y = gc.placeholder(gc.int32, (None,), name="y")
    params, h = [], x
    sizes = [(784, hidden), (hidden, hidden), (hidden, 10)]
    for i, (m, n) in enumerate(sizes):
        with gc.name_scope(f"dense{i}"):
            W = gc.Variable(rng.normal(size=(m, n)).astype("float32") * 0.05, name="W")
            b = gc.Variable(np.zeros(n, "float32"), name="b")
            h = h @ W + b
            h = gc.relu(h) if i < len(sizes) - 1 else h
        params += [W, b]
    loss = gc.mean(gc.nn.sparse_softmax_cross_entropy(h, y), name="loss")
    grads = gc.grad(loss, params)
    return gc.function([x, y], loss, name="mlp_step",
                       updates=[(p, p - 0.1 * g) for p, g in zip(params, grads)])


def main(html=HTML, hidden=512):
    f = train_step(hidden)
    stats = f.stats()
    print(f"nodes before optimization: {stats['nodes_before']}, after: {stats['nodes_after']}, "
          f"fusion groups: {stats['kernels']}, compile: {stats['compile_seconds'] * 1e3:.1f} ms")
    print(f.dump(stage="optimized"))
    os.makedirs(os.path.dirname(os.path.abspath(html)), exist_ok=True)
    with open(html, "w") as out:
        out.write(f.dump(stage="optimized", format="html"))
    print(f"optimized graph as HTML: {os.path.abspath(html)}")
    return stats


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--html", default=HTML)
    parser.add_argument("--hidden", type=int, default=512)
    args = parser.parse_args()
    main(args.html, args.hidden)
