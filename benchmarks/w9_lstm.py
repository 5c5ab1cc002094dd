"""W9: one Adam train step of an LSTM, 256 units over 100 steps of 128 features, batch 64, loss
the mean squared error of the last output (Keras's LSTM(256) with return_sequences=False, and
its "mse"), on device "cpu", next to the same step written by hand in numpy (forward, backward
through time, Adam; interleaved, medians) and, in the peer interpreter, PyTorch eager
(nn.LSTM), JAX (jit, lax.scan), Keras 3 on JAX (train_on_batch) and TensorFlow (a tf.function
with tf.foldl, no XLA). All start from the same weights (_peers.lstm_problem) and batch, and
every first loss must agree with numpy's before anything is timed.

graphc runs the step two public ways, both built from graphc.frontend's LSTM layer: `function`
is gc.function([x, y], loss, updates=Adam.apply(gc.grad(...))) (as
examples/custom_training_loop.py writes it), `fit_step` is model.compile(Adam, "mse") and the
compiled step that fit and train_on_batch call (model.train_function, which also updates the
loss tracker). The graphc figure is the faster of the two; `graphc_api` says which.

`loops` is f.stats()["loops"] of the `function` step: for the forward loop and its gradient's,
the native kernels of the body (one LSTM step) and how the last run went. `profile` is where
that step's time went, by f.profile (3 runs, medians, after the timed runs): its PROFILE_ROWS
largest rows as [kernel or host step, its first node, ms, the node of the loop whose body it
is part of or null], the loops' body kernels summed over their steps.

Target: 1.5 times the best peer of the same run (none without peers).
Prints one JSON line (steps/s). Usage: python benchmarks/w9_lstm.py [--quick] [--no-peers]
"""
import numpy as np

import graphc as gc
import graphc.frontend as gk
from _common import arguments, check_close, guarded, interleaved, peer_details, peer_figures, result
from _peers import ADAM, W9_PEERS, lstm_problem

SIZES = {"units": 256, "features": 128, "steps": 100, "batch": 64, "lr": 0.001}
QUICK = {"units": 16, "features": 8, "steps": 5, "batch": 4, "lr": 0.001}
TARGET_OVER_BEST_PEER = 1.5
PROFILE_ROWS = 10


# ---- graphc ----------------------------------------------------------------------------------
def lstm_model(s, weights):
    """Sequential([Input((steps, features)), LSTM(units)]) holding `weights`."""
    gk.utils.set_random_seed(0)
    model = gk.Sequential([gk.layers.Input((s["steps"], s["features"])),
                           gk.layers.LSTM(s["units"])])
    model.layers[-1].set_weights(weights)
    return model


def adam(s):
    return gk.optimizers.Adam(s["lr"], **ADAM)


def function_step(s, weights):
    """f(x, y) -> loss, applying Adam: a gc.function over the frontend's layer (device "cpu")."""
    model = lstm_model(s, weights)
    x = model.inputs[0]
    y = gc.placeholder(gc.float32, (None, s["units"]), name="y")
    with model.graph.as_default():
        loss = gc.mean(gc.square(model(x, training=True) - y))
        weights = model.trainable_weights
        updates = adam(s).apply(gc.grad(loss, weights), weights)
    return gc.function([x, y], loss, updates=updates,
                       session=gk.backend.session(model.graph, "cpu"), name="w9_step")


def fit_step(s, weights, x, y):
    """(model, first two losses): the compiled model after two train_on_batch calls, whose
    model.train_function is fit's step."""
    model = lstm_model(s, weights)
    model.compile(optimizer=adam(s), loss="mse", device="cpu")
    return model, [model.train_on_batch(x, y)["loss"] for _ in range(2)]


# ---- numpy, by hand --------------------------------------------------------------------------
def sigmoid(z):
    return 0.5 * np.tanh(0.5 * z) + 0.5


def numpy_lstm_step(params, slots, x, y, lr):
    """One train step on `params` (kernel, recurrent_kernel, bias) in place, Adam's moments and
    step count in `slots`; returns the loss before the update."""
    kernel, recurrent, bias = params
    batch, steps, _ = x.shape
    u = recurrent.shape[0]
    proj = np.ascontiguousarray((x @ kernel + bias).transpose(1, 0, 2))  # (steps, batch, 4u)
    gates = np.empty_like(proj)  # i, f, g, o after their activations
    hs = np.zeros((steps + 1, batch, u), np.float32)
    cs = np.zeros((steps + 1, batch, u), np.float32)
    for t in range(steps):
        z = proj[t] + hs[t] @ recurrent
        a = gates[t]
        a[:, :u], a[:, u:2 * u] = sigmoid(z[:, :u]), sigmoid(z[:, u:2 * u])
        a[:, 2 * u:3 * u], a[:, 3 * u:] = np.tanh(z[:, 2 * u:3 * u]), sigmoid(z[:, 3 * u:])
        cs[t + 1] = a[:, u:2 * u] * cs[t] + a[:, :u] * a[:, 2 * u:3 * u]
        hs[t + 1] = a[:, 3 * u:] * np.tanh(cs[t + 1])
    diff = hs[steps] - y
    loss = np.mean(diff * diff)
    dh = 2 * diff / diff.size
    dc = np.zeros_like(dh)
    dz = np.empty_like(proj)
    d_recurrent = np.zeros_like(recurrent)
    for t in reversed(range(steps)):
        a = gates[t]
        i, f, g, o = a[:, :u], a[:, u:2 * u], a[:, 2 * u:3 * u], a[:, 3 * u:]
        tc = np.tanh(cs[t + 1])
        dc = dc + dh * o * (1 - tc * tc)
        d = dz[t]
        d[:, :u] = dc * g * i * (1 - i)
        d[:, u:2 * u] = dc * cs[t] * f * (1 - f)
        d[:, 2 * u:3 * u] = dc * i * (1 - g * g)
        d[:, 3 * u:] = dh * tc * o * (1 - o)
        d_recurrent += hs[t].T @ d
        dh = d @ recurrent.T
        dc = dc * f
    dz_flat = dz.transpose(1, 0, 2).reshape(batch * steps, -1)  # (batch, steps) order, as x
    grads = [x.reshape(batch * steps, -1).T @ dz_flat, d_recurrent, dz_flat.sum(axis=0)]
    b1, b2, eps = ADAM["beta_1"], ADAM["beta_2"], ADAM["epsilon"]
    slots["t"] += 1
    alpha = lr * np.sqrt(1 - b2 ** slots["t"]) / (1 - b1 ** slots["t"])
    for p, g, m, v in zip(params, grads, slots["m"], slots["v"]):
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * g * g
        p -= (alpha * m / (np.sqrt(v) + eps)).astype(np.float32)
    return loss


def loop_host_steps(f):
    """The names of the loops of f that run as host steps (interpreted through the numpy
    references), from f.stats()."""
    return [n for step in f.stats().get("host_steps", []) if "loop" in step["ops"]
            for n in step["nodes"]]


def lstm_train_flops(s):
    """FLOPs of the step's products: per time step x @ kernel and h @ recurrent_kernel forward,
    both weight gradients, and the gradient through h (2 per multiply-add; gates not counted)."""
    u, f, b, t = s["units"], s["features"], s["batch"], s["steps"]
    forward = 2 * b * t * 4 * u * (f + u)
    return 2 * forward + 2 * b * t * 4 * u * u


def largest_rows(f, x, y):
    """The PROFILE_ROWS largest rows of f.profile(x, y) (see the module)."""
    prof = f.profile(x, y, runs=3, show=False)
    rows = sorted(prof.rows, key=lambda r: -r.seconds)[:PROFILE_ROWS]
    return [[r.name, r.nodes[0] if r.nodes else None, round(r.seconds * 1e3, 2),
             None if r.within is None else prof.rows[r.within].nodes[0]] for r in rows]


def measure(s, repeats, no_peers):
    weights, x, y = lstm_problem(s)
    f = function_step(s, weights)
    model, fit_losses = fit_step(s, weights, x, y)
    mine = [w.copy() for w in weights]
    slots = {"t": 0, "m": [np.zeros_like(w) for w in weights],
             "v": [np.zeros_like(w) for w in weights]}
    first = None
    for k in range(2):  # same start, same batch: the same losses step by step
        expected = numpy_lstm_step(mine, slots, x, y, s["lr"])
        first = expected if first is None else first
        check_close("W9 loss (function)", f(x, y), expected, rtol=1e-4, atol=1e-6)
        check_close("W9 loss (fit step)", fit_losses[k], expected, rtol=1e-4, atol=1e-6)
    fit = model.train_function
    seconds = interleaved({"function": lambda: f(x, y), "fit_step": lambda: fit(x, y),
                           "numpy": lambda: numpy_lstm_step(mine, slots, x, y, s["lr"])},
                          repeats)
    steps = {who: 1 / t for who, t in seconds.items()}
    api = max(("function", "fit_step"), key=steps.get)
    loops = f.stats().get("loops")  # how the timed runs went (profiling steps the loops)
    profile = largest_rows(f, x, y)
    peers = peer_figures("W9", {**s, "first_loss": float(first)}, repeats, no_peers)
    figures = [peers[name] for name in W9_PEERS if peers.get(name) is not None]
    target = TARGET_OVER_BEST_PEER * max(figures) if figures else None
    return [result("W9", f"LSTM({s['units']}) Adam train step, {s['steps']} steps of "
                   f"{s['features']} features, batch {s['batch']}, MSE of the last output",
                   "steps/s", steps[api], steps["numpy"], target, peers=peers,
                   graphc_api=api, graphc_function=round(steps["function"], 3),
                   graphc_fit_step=round(steps["fit_step"], 3),
                   loops_on_host=loop_host_steps(f), loops=loops, profile=profile,
                   first_loss=round(float(first), 6), flops_per_step=lstm_train_flops(s),
                   repeats=repeats, **peer_details(peers))]


if __name__ == "__main__":
    args = arguments(__doc__)
    sizes, repeats = (QUICK, 3) if args.quick else (SIZES, 7)
    guarded("W9", "LSTM train step", lambda: measure(sizes, repeats, args.no_peers))
