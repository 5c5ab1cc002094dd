"""W5: one SGD train step of a small CNN on float32[64, 28, 28, 1] (NHWC): conv 3x3x32 + relu,
max-pool 2, conv 3x3x64 + relu, max-pool 2, dense 10, mean sparse softmax cross-entropy.
gc.function with updates on device "cpu", next to the same step written by hand in numpy
(im2col convolutions; interleaved, medians). Both start from the same weights, and their first
losses must agree before anything is timed.

Prints one JSON line (steps/s; the target is 1.3x PyTorch eager's steps/s in the same run,
none without it; "graphc_gemm_path": the same step compiled with every convolution through the
Gemm, conv_rules.DIRECT_PATCH = 0, interleaved), then W5-conv lines: each convolution op alone at the size of the second
convolution (GFLOP/s, numpy's im2col products beside it), and the first convolution with its
bias and relu alone (GFLOP/s; numpy's im2col product beside it, and graphc's patch copy +
Gemm as "gemm_path": the same op compiled with conv_rules.DIRECT_PATCH = 0, interleaved).
Usage: python benchmarks/w5_cnn.py [--quick] [--no-peers]
"""
import contextlib

import numpy as np

import graphc as gc
from graphc.kernels import conv_rules
from _common import arguments, check_close, guarded, interleaved, peer_details, peer_figures, result
from w4_mlp import batch, compile_step, sgd, sgd_updates, softmax_xent

BATCH = 64
LR = 0.01
TARGET_OVER_TORCH = 1.3  # the target: this times PyTorch eager's steps/s
SHAPES = [(3, 3, 1, 32), (32,), (3, 3, 32, 64), (64,), (5 * 5 * 64, 10), (10,)]


def initial_params(seed=0):
    """[K1, c1, K2, c2, W, b], He-initialized float32."""
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(s) * np.sqrt(2 / np.prod(s[:-1]))).astype(np.float32)
            if len(s) > 1 else np.zeros(s, np.float32) for s in SHAPES]


# ---- graphc ----------------------------------------------------------------------------------
def cnn_graph(params, lr):
    """(graph, [x, y], loss, updates) of the W5 train step."""
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 28, 28, 1), name="x")
        y = gc.placeholder(gc.int32, (None,), name="y")
        k1, c1, k2, c2, w, b = variables = [gc.Variable(p.copy(), name=f"p{i}")
                                            for i, p in enumerate(params)]
        h = x
        for k, c in ((k1, c1), (k2, c2)):
            h = gc.nn.max_pool2d(gc.relu(gc.nn.conv2d(h, k) + c), 2, 2)
        logits = gc.reshape(h, (-1, 5 * 5 * 64)) @ w + b
        loss = gc.mean(gc.nn.sparse_softmax_cross_entropy(logits, y))
        return g, [x, y], loss, sgd_updates(loss, variables, lr)


# ---- numpy, by hand --------------------------------------------------------------------------
def im2col(x, k):
    """(N*OH*OW, k*k*C) patches of NHWC x for a VALID k x k convolution."""
    n, h, w, c = x.shape
    oh, ow = h - k + 1, w - k + 1
    taps = [x[:, i:i + oh, j:j + ow, :] for i in range(k) for j in range(k)]
    return np.stack(taps, axis=3).reshape(n * oh * ow, k * k * c)


def col2im(dcols, shape, k):
    """The gradient with respect to x of im2col(x, k), from the gradient of its patches."""
    n, h, w, c = shape
    oh, ow = h - k + 1, w - k + 1
    d = dcols.reshape(n, oh, ow, k, k, c)
    dx = np.zeros(shape, dcols.dtype)
    for i in range(k):
        for j in range(k):
            dx[:, i:i + oh, j:j + ow, :] += d[:, :, :, i, j, :]
    return dx


TAPS = ((0, 0), (0, 1), (1, 0), (1, 1))  # a 2x2 window in row-major order


def pool_tap(r, tap):
    """The cells at `tap` of every 2x2 window of r (stride 2, VALID): a strided view."""
    i, j = tap
    return r[:, i:r.shape[1] // 2 * 2:2, j:r.shape[2] // 2 * 2:2, :]


def max_pool(r):
    return np.maximum.reduce([pool_tap(r, tap) for tap in TAPS])


def max_pool_grad(r, pooled, g):
    """All of g to the first maximum of each window, as graphc (and TF) do."""
    dr = np.zeros_like(r)
    free = np.ones(pooled.shape, bool)
    for tap in TAPS:
        wins = free & (pool_tap(r, tap) == pooled)
        pool_tap(dr, tap)[...] = np.where(wins, g, 0)
        free &= ~wins
    return dr


def numpy_cnn_step(params, x, y, lr):
    """One train step on `params` in place; returns the loss before the update."""
    k1, c1, k2, c2, w, b = params
    saved, h = [], x
    for k, c in ((k1, c1), (k2, c2)):
        cols = im2col(h, 3)
        z = (cols @ k.reshape(-1, k.shape[-1])).reshape(h.shape[0], h.shape[1] - 2,
                                                         h.shape[2] - 2, -1) + c
        r = np.maximum(z, 0)
        h = max_pool(r)
        saved.append((cols, z, r, h))
    flat = h.reshape(len(h), -1)
    loss, dlogits = softmax_xent(flat @ w + b, y)
    grads = [None, None, None, None, flat.T @ dlogits, dlogits.sum(axis=0)]
    dh = (dlogits @ w.T).reshape(h.shape)
    for layer in (1, 0):
        cols, z, r, pooled = saved[layer]
        k = params[2 * layer]
        dz = (max_pool_grad(r, pooled, dh) * (z > 0)).reshape(-1, k.shape[-1])
        grads[2 * layer] = (cols.T @ dz).reshape(k.shape)
        grads[2 * layer + 1] = dz.sum(axis=0)
        if layer:
            # this layer's input is the previous one's pooled output
            dh = col2im(dz @ k.reshape(-1, k.shape[-1]).T, saved[layer - 1][3].shape, 3)
    sgd(params, grads, lr)
    return loss


def cnn_train_flops(batch_size):
    """FLOPs of the step's convolutions and dense product: forward, weight gradients, and input
    gradients of conv2 and the dense layer (2 per multiply-add; pools, relu, bias not counted)."""
    conv1 = 2 * batch_size * 26 * 26 * 32 * 3 * 3 * 1
    conv2 = 2 * batch_size * 11 * 11 * 64 * 3 * 3 * 32
    dense = 2 * batch_size * 64 * 5 * 5 * 10
    return 2 * (conv1 + conv2 + dense) + conv2 + dense


@contextlib.contextmanager
def direct_patch(entries):
    """Compiling with conv_rules.DIRECT_PATCH = entries (0: every conv2d through the Gemm)."""
    kept, conv_rules.DIRECT_PATCH = conv_rules.DIRECT_PATCH, entries
    try:
        yield
    finally:
        conv_rules.DIRECT_PATCH = kept


def measure(batch_size, repeats, no_peers):
    params = initial_params()
    f = compile_step(*cnn_graph(params, LR))
    with direct_patch(0):
        f_gemm = compile_step(*cnn_graph(params, LR))
    x, y = batch((batch_size, 28, 28, 1), 10)
    mine, theirs = [p.copy() for p in params], [p.copy() for p in params]
    for _ in range(2):  # same start, same batch: the same losses step by step
        check_close("W5 loss", f(x, y), numpy_cnn_step(mine, x, y, LR), rtol=1e-4, atol=1e-5)
        check_close("W5 loss (Gemm path)", f_gemm(x, y), numpy_cnn_step(theirs, x, y, LR),
                    rtol=1e-4, atol=1e-5)
    seconds = interleaved({"graphc": lambda: f(x, y), "gemm_path": lambda: f_gemm(x, y),
                           "numpy": lambda: numpy_cnn_step(mine, x, y, LR)}, repeats)
    steps = {who: 1 / t for who, t in seconds.items()}
    peers = peer_figures("W5", {"batch": batch_size, "lr": LR}, repeats, no_peers)
    target = TARGET_OVER_TORCH * peers["torch"] if peers.get("torch") else None
    return [result("W5", f"CNN conv3x3x32-pool-conv3x3x64-pool-dense10 SGD train step, "
                   f"batch {batch_size}, 28x28x1", "steps/s", steps["graphc"], steps["numpy"],
                   target, peers=peers, repeats=repeats,
                   graphc_gemm_path=round(steps["gemm_path"], 3),
                   flops_per_step=cnn_train_flops(batch_size), **peer_details(peers))]


# ---- the convolution ops alone -----------------------------------------------------------------
def conv_ops(batch_size):
    """{op: (graphc function, numpy function, arrays)} at the second convolution's size."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((batch_size, 13, 13, 32), dtype=np.float32)
    k = rng.standard_normal((3, 3, 32, 64), dtype=np.float32)
    g = rng.standard_normal((batch_size, 11, 11, 64), dtype=np.float32)
    matrix = k.reshape(-1, 64)
    return {
        "conv2d": (gc.nn.conv2d, lambda x, k: im2col(x, 3) @ matrix, [x, k]),
        "conv2d_backprop_input": (
            gc.nn.conv2d_backprop_input,
            lambda x, k, g: col2im(g.reshape(-1, 64) @ matrix.T, x.shape, 3), [x, k, g]),
        "conv2d_backprop_filter": (
            gc.nn.conv2d_backprop_filter,
            lambda x, k, g: im2col(x, 3).T @ g.reshape(-1, 64), [x, k, g]),
    }


def measure_conv_ops(batch_size, repeats):
    flops = 2 * batch_size * 11 * 11 * 3 * 3 * 32 * 64
    out = []
    for op, (build, by_hand, arrays) in conv_ops(batch_size).items():
        g = gc.Graph()
        with g.as_default():
            phs = [gc.placeholder(gc.float32, a.shape) for a in arrays]
            f = gc.function(phs, build(*phs), session=gc.Session(g, device="cpu"))
        check_close(op, f(*arrays).reshape(-1), by_hand(*arrays).reshape(-1), rtol=1e-3,
                    atol=1e-2)
        seconds = interleaved({"graphc": lambda: f(*arrays), "numpy": lambda: by_hand(*arrays)},
                              repeats)
        out.append(result("W5-conv", f"{op} alone, batch {batch_size}, 13x13x32 -> 11x11x64, "
                          "3x3 VALID", "GFLOP/s", flops / seconds["graphc"] / 1e9,
                          flops / seconds["numpy"] / 1e9, None, repeats=repeats))
    return out


def first_conv(entries):
    """f(x, k, b) = relu(conv2d(x, k) + b) at W5's first convolution, compiled with
    conv_rules.DIRECT_PATCH = entries."""
    g = gc.Graph()
    with g.as_default(), direct_patch(entries):
        x, k, b = (gc.placeholder(gc.float32, s) for s in ((None, 28, 28, 1), SHAPES[0],
                                                           SHAPES[1]))
        return gc.function([x, k, b], gc.relu(gc.nn.conv2d(x, k) + b),
                           session=gc.Session(g, device="cpu"))


def measure_first_conv(batch_size, repeats):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((batch_size, 28, 28, 1), dtype=np.float32)
    k, b = initial_params()[:2]
    b = rng.standard_normal(b.shape, dtype=np.float32)
    fs = {"graphc": first_conv(conv_rules.DIRECT_PATCH), "gemm_path": first_conv(0),
          "numpy": lambda x, k, b: np.maximum(im2col(x, 3) @ k.reshape(9, -1) + b, 0)}
    for who in ("graphc", "gemm_path"):
        check_close("first conv", fs[who](x, k, b).reshape(-1),
                    fs["numpy"](x, k, b).reshape(-1), rtol=1e-4, atol=1e-5)
    seconds = interleaved({who: lambda f=f: f(x, k, b) for who, f in fs.items()}, repeats)
    gflops = {who: 2 * batch_size * 26 * 26 * 32 * 9 / t / 1e9 for who, t in seconds.items()}
    return [result("W5-conv", f"conv2d + bias + relu alone, batch {batch_size}, 28x28x1 -> "
                   "26x26x32, 3x3 VALID (the first convolution)", "GFLOP/s", gflops["graphc"],
                   gflops["numpy"], None, repeats=repeats,
                   gemm_path=round(gflops["gemm_path"], 2), direct_patch=conv_rules.DIRECT_PATCH)]


if __name__ == "__main__":
    args = arguments(__doc__)
    batch_size, repeats = (4, 3) if args.quick else (BATCH, 9)
    guarded("W5", "CNN train step", lambda: measure(batch_size, repeats, args.no_peers))
    guarded("W5-conv", "convolution ops alone", lambda: measure_conv_ops(batch_size, repeats))
    guarded("W5-conv", "first convolution alone", lambda: measure_first_conv(batch_size,
                                                                              repeats))
