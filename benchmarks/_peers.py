"""The W1-W6 workloads in PyTorch (eager) and JAX (jit), for the peer columns of the benchmarks.

Needs only numpy and whichever peers are installed, never graphc, so that it runs in another
interpreter: `python benchmarks/_peers.py W1 '{"n": 16777216}' 7` prints one JSON line
{"torch": figure or null, "jax": ..., "peer_versions": ...}, in the unit of the script.
"""
import importlib.util
import json
import sys

import numpy as np

from _common import PEERS, interleaved


def available(name):
    return importlib.util.find_spec(name) is not None


def _rng():
    return np.random.default_rng(0)


def _dense_layers(sizes):
    rng = _rng()
    return [((rng.standard_normal((a, b)) * np.sqrt(2 / a)).astype(np.float32),
             np.zeros(b, np.float32)) for a, b in zip(sizes, sizes[1:])]


# ---- PyTorch ---------------------------------------------------------------------------------
def _torch_train_step(model, x, y, lr):
    import torch
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
    return step


def _torch(workload, s, device="cpu"):
    """A callable doing `workload` at sizes `s` with PyTorch on `device` ("cuda": nothing waits
    for the GPU, the caller synchronizes); W3/W3b in s.get("dtype", "float32")."""
    import torch

    def t(array):
        return torch.from_numpy(array).to(device)
    rng = _rng()
    if workload == "W1":
        x = t(rng.standard_normal(s["n"], dtype=np.float32))
        return lambda: torch.tanh(x) * torch.sigmoid(x) + 0.5 * x * x - torch.exp(-torch.abs(x))
    if workload == "W2":
        x = t(rng.standard_normal((s["rows"], s["cols"]), dtype=np.float32))
        return lambda: torch.softmax(x, dim=-1)
    if workload in ("W3", "W3b"):
        dtype = getattr(torch, s.get("dtype", "float32"))
        x, w = (t(rng.standard_normal((s["n"], s["n"]), dtype=np.float32)).to(dtype)
                for _ in range(2))
        b = t(rng.standard_normal(s["n"], dtype=np.float32)).to(dtype)
        return (lambda: torch.relu(x @ w + b)) if workload == "W3" else (lambda: x @ w)
    if workload == "W4":
        layers = []
        for w, b in _dense_layers(s["sizes"]):
            lin = torch.nn.Linear(*w.shape)
            with torch.no_grad():
                lin.weight.copy_(t(w.T.copy()))
                lin.bias.copy_(t(b))
            layers += [lin, torch.nn.ReLU()]
        model = torch.nn.Sequential(*layers[:-1]).to(device)
        x = t(rng.standard_normal((s["batch"], s["sizes"][0]), dtype=np.float32))
        y = t(rng.integers(0, s["sizes"][-1], s["batch"]))
        return _torch_train_step(model, x, y, s["lr"])
    if workload == "W5":
        nn = torch.nn
        model = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                              nn.Linear(64 * 5 * 5, 10)).to(device)
        x = t(rng.standard_normal((s["batch"], 1, 28, 28), dtype=np.float32))
        y = t(rng.integers(0, 10, s["batch"]))
        return _torch_train_step(model, x, y, s["lr"])
    if workload == "W6":
        x = np.ones(1, np.float32)
        return lambda: (t(x) + 1).numpy()
    raise KeyError(workload)


# ---- JAX -------------------------------------------------------------------------------------
def _jax_xent(logits, y):
    import jax
    import jax.numpy as jnp
    picked = jnp.take_along_axis(logits, y[:, None], axis=1)[:, 0]
    return jnp.mean(jax.nn.logsumexp(logits, axis=1) - picked)


def _jax_train_step(loss, params, x, y, lr):
    import jax
    update = jax.jit(lambda p, x, y: jax.tree.map(lambda a, g: a - lr * g, p,
                                                   jax.grad(loss)(p, x, y)), donate_argnums=0)
    state = [jax.tree.map(jax.numpy.asarray, params)]

    def step():
        state[0] = jax.block_until_ready(update(state[0], x, y))
    return step


def _jax(workload, s):
    import jax
    import jax.numpy as jnp
    from jax import lax
    rng = _rng()

    def timed(f, *args):
        f = jax.jit(f)
        args = [jnp.asarray(a) for a in args]
        return lambda: f(*args).block_until_ready()
    if workload == "W1":
        return timed(lambda x: jnp.tanh(x) * jax.nn.sigmoid(x) + 0.5 * x * x
                     - jnp.exp(-jnp.abs(x)), rng.standard_normal(s["n"], dtype=np.float32))
    if workload == "W2":
        return timed(lambda x: jax.nn.softmax(x, axis=-1),
                     rng.standard_normal((s["rows"], s["cols"]), dtype=np.float32))
    if workload in ("W3", "W3b"):
        x, w = (rng.standard_normal((s["n"], s["n"]), dtype=np.float32) for _ in range(2))
        b = rng.standard_normal(s["n"], dtype=np.float32)
        if workload == "W3":
            return timed(lambda x, w, b: jax.nn.relu(x @ w + b), x, w, b)
        return timed(lambda x, w: x @ w, x, w)
    if workload == "W4":
        def loss(params, x, y):
            for i, (w, b) in enumerate(params):
                x = x @ w + b
                x = jax.nn.relu(x) if i < len(params) - 1 else x
            return _jax_xent(x, y)
        x = rng.standard_normal((s["batch"], s["sizes"][0]), dtype=np.float32)
        y = jnp.asarray(rng.integers(0, s["sizes"][-1], s["batch"]).astype(np.int32))
        return _jax_train_step(loss, _dense_layers(s["sizes"]), jnp.asarray(x), y, s["lr"])
    if workload == "W5":
        def loss(p, x, y):
            for k, b in p[:2]:
                x = lax.conv_general_dilated(x, k, (1, 1), "VALID",
                                             dimension_numbers=("NHWC", "HWIO", "NHWC")) + b
                x = lax.reduce_window(jax.nn.relu(x), -jnp.inf, lax.max, (1, 2, 2, 1),
                                      (1, 2, 2, 1), "VALID")
            w, b = p[2]
            return _jax_xent(x.reshape(x.shape[0], -1) @ w + b, y)
        params = [((rng.standard_normal(shape) * np.sqrt(2 / np.prod(shape[:-1])))
                   .astype(np.float32), np.zeros(shape[-1], np.float32))
                  for shape in ((3, 3, 1, 32), (3, 3, 32, 64), (64 * 5 * 5, 10))]
        x = jnp.asarray(rng.standard_normal((s["batch"], 28, 28, 1), dtype=np.float32))
        y = jnp.asarray(rng.integers(0, 10, s["batch"]).astype(np.int32))
        return _jax_train_step(loss, params, x, y, s["lr"])
    if workload == "W6":
        f = jax.jit(lambda x: x + 1)
        x = np.ones(1, np.float32)
        return lambda: np.asarray(f(x))
    raise KeyError(workload)


# workload -> (calls per timed sample, figure from (seconds per call, sizes))
WORKLOADS = {
    "W1": (1, lambda t, s: 8 * s["n"] / t / 1e9),
    "W2": (1, lambda t, s: 8 * s["rows"] * s["cols"] / t / 1e9),
    "W3": (1, lambda t, s: 2 * s["n"] ** 3 / t / 1e9),
    "W3b": (1, lambda t, s: 2 * s["n"] ** 3 / t / 1e9),
    "W4": (1, lambda t, s: 1 / t),
    "W5": (1, lambda t, s: 1 / t),
    "W6": (1000, lambda t, s: t * 1e6),
}
MAKERS = {"torch": _torch, "jax": _jax}


def measure(workload, sizes, repeats):
    calls, figure = WORKLOADS[workload]
    out, versions = {}, []
    for name in PEERS:
        if not available(name):
            out[name] = None
            continue
        fn = MAKERS[name](workload, sizes)
        out[name] = figure(interleaved({name: fn}, repeats, number=calls, warmup=2)[name], sizes)
        versions.append(f"{name} {importlib.import_module(name).__version__}")
    out["peer_versions"] = ", ".join(versions)
    return out


if __name__ == "__main__":
    workload, sizes, repeats = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
    print(json.dumps(measure(workload, sizes, repeats)))
