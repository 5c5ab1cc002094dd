"""W4: one SGD train step (forward, mean sparse softmax cross-entropy, gradients, update) of an
MLP 784-512-512-10 with relu, batch 128: gc.function with updates on device "cpu", next to the
same step written by hand in numpy (interleaved, medians). Both start from the same weights,
and their first losses must agree before anything is timed.

Prints one JSON line (steps/s). Usage: python benchmarks/w4_mlp.py [--quick] [--no-peers]
"""
import numpy as np

import graphc as gc
from _common import (PEERS, arguments, check_close, guarded, interleaved, peer_details,
                     peer_figures, result)

SIZES = (784, 512, 512, 10)
BATCH = 128
LR = 0.01
TARGET_OVER_BEST_PEER = 1.3  # the target: this many times the best peer's steps/s


def initial_params(sizes, seed=0):
    """[W0, b0, W1, b1, ...], He-initialized float32."""
    rng = np.random.default_rng(seed)
    params = []
    for a, b in zip(sizes, sizes[1:]):
        params += [(rng.standard_normal((a, b)) * np.sqrt(2 / a)).astype(np.float32),
                   np.zeros(b, np.float32)]
    return params


def batch(shape, classes, seed=1):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape, dtype=np.float32),
            rng.integers(0, classes, shape[0]).astype(np.int32))


def mlp_train_flops(sizes, batch_size):
    """FLOPs of the step's matrix products: forward, weight gradients, and input gradients
    of every layer but the first (2 per multiply-add; elementwise work not counted)."""
    per_layer = [2 * batch_size * a * b for a, b in zip(sizes, sizes[1:])]
    return 2 * sum(per_layer) + sum(per_layer[1:])


# ---- graphc ----------------------------------------------------------------------------------
def sgd_updates(loss, variables, lr):
    """Theano-style updates: each variable less lr times its gradient."""
    return [(v, v - lr * g) for v, g in zip(variables, gc.grad(loss, variables))]


def mlp_loss(sizes, params):
    """(graph, [x, y], loss, variables) of the W4 model: its mean cross-entropy."""
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, sizes[0]), name="x")
        y = gc.placeholder(gc.int32, (None,), name="y")
        variables = [gc.Variable(p.copy(), name=f"p{i}") for i, p in enumerate(params)]
        h = x
        for i in range(0, len(variables), 2):
            h = h @ variables[i] + variables[i + 1]
            h = gc.relu(h) if i + 2 < len(variables) else h
        return g, [x, y], gc.mean(gc.nn.sparse_softmax_cross_entropy(h, y)), variables


def mlp_graph(sizes, params, lr):
    """(graph, [x, y], loss, updates) of the W4 train step."""
    g, inputs, loss, variables = mlp_loss(sizes, params)
    with g.as_default():
        return g, inputs, loss, sgd_updates(loss, variables, lr)


def compile_step(graph, inputs, loss, updates):
    """f(*inputs) -> loss, applying the updates: a gc.function on device "cpu"."""
    return gc.function(inputs, loss, updates=updates, session=gc.Session(graph, device="cpu"))


# ---- numpy, by hand --------------------------------------------------------------------------
def softmax_xent(logits, labels):
    """(mean sparse softmax cross-entropy, its gradient with respect to logits)."""
    rows = np.arange(len(labels))
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    total = e.sum(axis=1, keepdims=True)
    loss = np.mean(np.log(total[:, 0]) - shifted[rows, labels])
    grad = e / total
    grad[rows, labels] -= 1
    return loss, grad / len(labels)


def sgd(params, grads, lr):
    for p, g in zip(params, grads):
        p -= lr * g


def numpy_mlp_step(params, x, y, lr):
    """One train step on `params` in place; returns the loss before the update."""
    layers = len(params) // 2
    acts, pre = [x], []
    for i in range(layers):
        z = acts[-1] @ params[2 * i] + params[2 * i + 1]
        pre.append(z)
        acts.append(np.maximum(z, 0) if i + 1 < layers else z)
    loss, dz = softmax_xent(acts[-1], y)
    grads = [None] * len(params)
    for i in reversed(range(layers)):
        grads[2 * i], grads[2 * i + 1] = acts[i].T @ dz, dz.sum(axis=0)
        if i:
            dz = (dz @ params[2 * i].T) * (pre[i - 1] > 0)
    sgd(params, grads, lr)
    return loss


def measure(sizes, batch_size, repeats, no_peers):
    params = initial_params(sizes)
    f = compile_step(*mlp_graph(sizes, params, LR))
    x, y = batch((batch_size, sizes[0]), sizes[-1])
    mine = [p.copy() for p in params]
    for _ in range(2):  # same start, same batch: the same losses step by step
        check_close("W4 loss", f(x, y), numpy_mlp_step(mine, x, y, LR), rtol=1e-4, atol=1e-5)
    seconds = interleaved({"graphc": lambda: f(x, y),
                           "numpy": lambda: numpy_mlp_step(mine, x, y, LR)}, repeats, number=5)
    steps = {who: 1 / t for who, t in seconds.items()}
    peers = peer_figures("W4", {"sizes": list(sizes), "batch": batch_size, "lr": LR}, repeats,
                         no_peers)
    # the best peer, the step written by hand in numpy among them, measured in this run
    best = max([steps["numpy"]] + [peers[name] for name in PEERS
                                   if isinstance(peers.get(name), (int, float))])
    return [result("W4", f"MLP {'-'.join(map(str, sizes))} SGD train step, batch {batch_size}",
                   "steps/s", steps["graphc"], steps["numpy"], TARGET_OVER_BEST_PEER * best,
                   peers=peers,
                   repeats=repeats, calls_per_sample=5,
                   flops_per_step=mlp_train_flops(sizes, batch_size), **peer_details(peers))]


if __name__ == "__main__":
    args = arguments(__doc__)
    sizes, batch_size, repeats = ((64, 32, 32, 10), 16, 3) if args.quick else (SIZES, BATCH, 15)
    guarded("W4", "MLP train step", lambda: measure(sizes, batch_size, repeats, args.no_peers))
