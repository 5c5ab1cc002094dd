"""The W1-W6 and W9 workloads in PyTorch (eager) and JAX (jit), for the peer columns of the
benchmarks; W9 (the LSTM train step) also in Keras 3 on JAX and in TensorFlow (tf.function);
W1-W4 also in torch.compile, TF1 (a tf.compat.v1 graph run by a Session, fed and fetched as
numpy), TF with XLA (tf.function(jit_compile=True)) and PyTensor (pytensor.function), each of
these in a process of its own (EXTRA_PEERS).

Needs only numpy and whichever peers are installed, never graphc, so that it runs in another
interpreter: `python benchmarks/_peers.py W1 '{"n": 16777216}' 7` prints one JSON line
{"torch": figure or null, "jax": ..., "peer_versions": ...}, in the unit of the script.
W9 adds "keras_jax" and "tf", and runs each peer in a process of its own (no framework's
threads or allocator linger into another's timing; TensorFlow and PyTorch stay apart).
"""
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np

from _common import interleaved


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


# ---- W9: the LSTM train step, in every peer ----------------------------------------------------
# sizes: {"units", "features", "steps", "batch", "lr", "first_loss" (numpy's, from the same
# weights: each peer checks its own first loss against it before timing)}
ADAM = {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}  # Keras's defaults, in every peer
W9_PEERS = ("torch", "jax", "keras_jax", "tf")


def lstm_problem(s, seed=0):
    """The W9 weights and batch, as Keras lays them out: kernel (features, 4u) Glorot-uniform,
    recurrent_kernel (u, 4u) orthogonal, bias (4u,) with the forget gate's quarter 1 (gates i,
    f, c, o); x (batch, steps, features), targets y (batch, u) for the last output."""
    rng = np.random.default_rng(seed)
    f, u = s["features"], s["units"]
    limit = np.sqrt(6 / (f + 4 * u))
    kernel = rng.uniform(-limit, limit, (f, 4 * u)).astype(np.float32)
    q, r = np.linalg.qr(rng.standard_normal((4 * u, u)))
    recurrent = (q * np.sign(np.diag(r))).T.astype(np.float32)  # orthonormal rows
    bias = np.concatenate([np.zeros(u), np.ones(u), np.zeros(2 * u)]).astype(np.float32)
    x = rng.standard_normal((s["batch"], s["steps"], f), dtype=np.float32)
    y = rng.uniform(-0.5, 0.5, (s["batch"], u)).astype(np.float32)
    return [kernel, recurrent, bias], x, y


def _check_first_loss(name, loss, s):
    if not np.isclose(loss, s["first_loss"], rtol=1e-4, atol=1e-6):
        raise AssertionError(f"W9 {name}: first loss {loss:.7g}, numpy's {s['first_loss']:.7g}")


def _w9_torch(s):
    import torch
    (kernel, recurrent, bias), x, y = lstm_problem(s)
    lstm = torch.nn.LSTM(s["features"], s["units"], batch_first=True)  # gates i, f, g, o
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.from_numpy(kernel.T.copy()))
        lstm.weight_hh_l0.copy_(torch.from_numpy(recurrent.T.copy()))
        lstm.bias_ih_l0.copy_(torch.from_numpy(bias))
        lstm.bias_hh_l0.zero_()
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(lstm.parameters(), lr=s["lr"], betas=(ADAM["beta_1"], ADAM["beta_2"]),
                           eps=ADAM["epsilon"])

    def loss():
        out, _ = lstm(x)
        return torch.mean((out[:, -1] - y) ** 2)
    with torch.no_grad():
        _check_first_loss("torch", float(loss()), s)

    def step():
        opt.zero_grad()
        value = loss()
        value.backward()
        opt.step()
    return step


def _w9_jax(s):
    """jax.jit of loss, gradients (lax.scan over the steps) and Adam, the state donated."""
    import jax
    import jax.numpy as jnp
    params, x, y = lstm_problem(s)
    b1, b2, eps, lr = ADAM["beta_1"], ADAM["beta_2"], ADAM["epsilon"], s["lr"]

    def loss(p, x, y):
        # the input projection inside the step, as Keras's cell does: XLA on CPU ran this
        # form about 1.5x faster than one hoisted product over the whole sequence
        kernel, recurrent, bias = p

        def cell(carry, x_t):
            h, c = carry
            i, f, g, o = jnp.split(x_t @ kernel + h @ recurrent + bias, 4, axis=-1)
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            return (jax.nn.sigmoid(o) * jnp.tanh(c), c), None
        zero = jnp.zeros((x.shape[0], recurrent.shape[0]), x.dtype)
        (h, _), _ = jax.lax.scan(cell, (zero, zero), jnp.swapaxes(x, 0, 1))
        return jnp.mean((h - y) ** 2)

    def update(state, x, y):
        p, m, v, t = state
        grads = jax.grad(loss)(p, x, y)
        t = t + 1
        m = [b1 * a + (1 - b1) * g for a, g in zip(m, grads)]
        v = [b2 * a + (1 - b2) * g * g for a, g in zip(v, grads)]
        alpha = lr * jnp.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        p = [a - alpha * mi / (jnp.sqrt(vi) + eps) for a, mi, vi in zip(p, m, v)]
        return p, m, v, t
    x, y = jnp.asarray(x), jnp.asarray(y)
    _check_first_loss("jax", float(jax.jit(loss)(params, x, y)), s)
    update = jax.jit(update, donate_argnums=0)
    state = [([jnp.asarray(p) for p in params], [jnp.zeros_like(p) for p in params],
              [jnp.zeros_like(p) for p in params], jnp.float32(0))]

    def step():
        state[0] = jax.block_until_ready(update(state[0], x, y))
    return step


def _w9_keras_jax(s):
    """Keras 3 on JAX, as a Keras user writes it: Sequential([Input, LSTM]), Adam, "mse",
    train_on_batch (its jitted train function; the returned loss waits for the step)."""
    os.environ["KERAS_BACKEND"] = "jax"
    import keras
    weights, x, y = lstm_problem(s)
    model = keras.Sequential([keras.Input((s["steps"], s["features"])),
                              keras.layers.LSTM(s["units"])])
    model.layers[-1].set_weights(weights)
    model.compile(optimizer=keras.optimizers.Adam(s["lr"], **ADAM), loss="mse")
    _check_first_loss("keras_jax", float(model.test_on_batch(x, y)), s)
    return lambda: model.train_on_batch(x, y)


def _w9_tf(s):
    """A tf.function (graph mode, no XLA, no Keras) of the step: the input projection as one
    product, tf.foldl over the steps, tf.GradientTape, and Adam on tf.Variables."""
    import tensorflow as tf
    weights, x, y = lstm_problem(s)
    params = [tf.Variable(w) for w in weights]
    slots = [(tf.Variable(tf.zeros_like(w)), tf.Variable(tf.zeros_like(w))) for w in weights]
    t = tf.Variable(0.0)
    b1, b2, eps, lr = ADAM["beta_1"], ADAM["beta_2"], ADAM["epsilon"], s["lr"]
    x, y = tf.constant(x), tf.constant(y)
    batch, steps, features = x.shape

    def loss_of(x, y):
        kernel, recurrent, bias = params
        proj = tf.reshape(tf.reshape(x, (-1, features)) @ kernel + bias, (batch, steps, -1))

        def cell(carry, z_x):
            h, c = carry
            i, f, g, o = tf.split(z_x + h @ recurrent, 4, axis=-1)
            c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
            return tf.sigmoid(o) * tf.tanh(c), c
        zero = tf.zeros((batch, recurrent.shape[0]))
        h, _ = tf.foldl(cell, tf.transpose(proj, (1, 0, 2)), initializer=(zero, zero))
        return tf.reduce_mean((h - y) ** 2)

    @tf.function
    def update(x, y):
        with tf.GradientTape() as tape:
            loss = loss_of(x, y)
        grads = tape.gradient(loss, params)
        t.assign_add(1.0)
        alpha = lr * tf.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        for p, g, (m, v) in zip(params, grads, slots):
            m.assign(b1 * m + (1 - b1) * g)
            v.assign(b2 * v + (1 - b2) * g * g)
            p.assign_sub(alpha * m / (tf.sqrt(v) + eps))
        return loss
    _check_first_loss("tf", float(tf.function(loss_of)(x, y)), s)
    return lambda: update(x, y).numpy()


W9_MAKERS = {"torch": _w9_torch, "jax": _w9_jax, "keras_jax": _w9_keras_jax, "tf": _w9_tf}
W9_MODULES = {"torch": ["torch"], "jax": ["jax"], "keras_jax": ["keras", "jax"],
              "tf": ["tensorflow"]}


def _w9_one(name, sizes, repeats):
    """{"figure": steps/s, "version"} of one peer, measured in this process."""
    step = W9_MAKERS[name](sizes)
    seconds = interleaved({name: step}, repeats, warmup=2)[name]
    versions = [f"{m} {importlib.import_module(m).__version__}" for m in W9_MODULES[name]]
    return {"figure": float(f"{1 / seconds:.4g}"), "version": " on ".join(versions)}


def _w9_measure(sizes, repeats):
    """Each W9 peer in a process of its own: {name: steps/s or None, "peer_versions",
    "peer_errors" (why a peer that is installed gave no figure)}."""
    out, versions, errors = {}, [], {}
    for name in W9_PEERS:
        out[name] = None
        if not all(available(m) for m in W9_MODULES[name]):
            continue
        _in_own_process("W9", sizes, repeats, name, out, versions, errors)
    out["peer_versions"] = ", ".join(versions)
    if errors:
        out["peer_errors"] = errors
    return out


def _in_own_process(workload, sizes, repeats, name, out, versions, errors):
    """Measure peer `name` on `workload` in a Python process of its own (this file run as a
    script), into out[name] and versions, or errors[name] why not."""
    env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2",
               PYTENSOR_FLAGS="floatX=float32")
    try:
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), workload,
                               json.dumps(sizes), str(repeats), name], capture_output=True,
                              text=True, env=env, timeout=900)
    except subprocess.TimeoutExpired:
        errors[name] = "timed out after 900 s"
        return
    if proc.returncode != 0:
        errors[name] = proc.stderr.strip()[-500:]
        return
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    out[name] = got["figure"]
    versions.append(f"{name}: {got['version']}")


# ---- W1-W4 in torch.compile, TF1 sessions, TF+XLA and PyTensor ---------------------------------
EXTRA_PEERS = ("torch_compile", "tf1", "tf_xla", "pytensor")
EXTRA_MODULES = {"torch_compile": ["torch"], "tf1": ["tensorflow"], "tf_xla": ["tensorflow"],
                 "pytensor": ["pytensor"]}
EXTRA_WORKLOADS = ("W1", "W2", "W3", "W3b", "W4")


def _torch_compile(workload, s):
    """torch.compile (inductor) of the eager peer's function; W4: of the model, the optimizer
    step eager."""
    import torch
    if workload == "W4":
        import torch.nn as nn
        layers = []
        for w, b in _dense_layers(s["sizes"]):
            lin = nn.Linear(*w.shape)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(w.T.copy()))
                lin.bias.copy_(torch.from_numpy(b))
            layers += [lin, nn.ReLU()]
        model = torch.compile(nn.Sequential(*layers[:-1]))
        rng = _rng()
        x = torch.from_numpy(rng.standard_normal((s["batch"], s["sizes"][0]), dtype=np.float32))
        y = torch.from_numpy(rng.integers(0, s["sizes"][-1], s["batch"]))
        return _torch_train_step(model, x, y, s["lr"])
    eager = _torch(workload, s)
    return torch.compile(eager)


def _tf_inputs(workload, s):
    rng = _rng()
    if workload == "W1":
        return [rng.standard_normal(s["n"], dtype=np.float32)]
    if workload == "W2":
        return [rng.standard_normal((s["rows"], s["cols"]), dtype=np.float32)]
    x, w = (rng.standard_normal((s["n"], s["n"]), dtype=np.float32) for _ in range(2))
    return [x, w, rng.standard_normal(s["n"], dtype=np.float32)][:3 if workload == "W3" else 2]


def _tf_expression(tf, workload):
    if workload == "W1":
        return lambda x: tf.tanh(x) * tf.sigmoid(x) + 0.5 * x * x - tf.exp(-tf.abs(x))
    if workload == "W2":
        return lambda x: tf.nn.softmax(x, axis=-1)
    if workload == "W3":
        return lambda x, w, b: tf.nn.relu(tf.matmul(x, w) + b)
    return lambda x, w: tf.matmul(x, w)


def _tf_mlp_loss(tf, params, x, y):
    h = x
    for i, (w, b) in enumerate(params):
        h = tf.matmul(h, w) + b
        h = tf.nn.relu(h) if i < len(params) - 1 else h
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=h))


def _tf1(workload, s):
    """A tf.compat.v1 graph in a Session: inputs fed as numpy, the result fetched as numpy (as
    graphc's function is called); W4: GradientDescentOptimizer.minimize, fetching the loss."""
    import tensorflow as tf
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        if workload == "W4":
            rng = _rng()
            xb = rng.standard_normal((s["batch"], s["sizes"][0]), dtype=np.float32)
            yb = rng.integers(0, s["sizes"][-1], s["batch"]).astype(np.int32)
            x = v1.placeholder(tf.float32, xb.shape)
            y = v1.placeholder(tf.int32, yb.shape)
            params = [(tf.Variable(w), tf.Variable(b)) for w, b in _dense_layers(s["sizes"])]
            loss = _tf_mlp_loss(tf, params, x, y)
            train = v1.train.GradientDescentOptimizer(s["lr"]).minimize(loss)
            session = v1.Session(graph=graph)
            session.run(v1.global_variables_initializer())
            feed = {x: xb, y: yb}
            return lambda: session.run([train, loss], feed)[1]
        arrays = _tf_inputs(workload, s)
        holders = [v1.placeholder(tf.float32, a.shape) for a in arrays]
        out = _tf_expression(tf, workload)(*holders)
        session = v1.Session(graph=graph)
        feed = dict(zip(holders, arrays))
        return lambda: session.run(out, feed)


def _tf_xla(workload, s):
    """tf.function(jit_compile=True) on tensors already in TF, the result fetched as numpy;
    W4: the step (GradientTape, assign_sub on tf.Variables) compiled whole."""
    import tensorflow as tf
    if workload == "W4":
        rng = _rng()
        x = tf.constant(rng.standard_normal((s["batch"], s["sizes"][0]), dtype=np.float32))
        y = tf.constant(rng.integers(0, s["sizes"][-1], s["batch"]).astype(np.int32))
        params = [(tf.Variable(w), tf.Variable(b)) for w, b in _dense_layers(s["sizes"])]
        flat = [v for pair in params for v in pair]

        @tf.function(jit_compile=True)
        def step(x, y):
            with tf.GradientTape() as tape:
                loss = _tf_mlp_loss(tf, params, x, y)
            for v, g in zip(flat, tape.gradient(loss, flat)):
                v.assign_sub(s["lr"] * g)
            return loss
        return lambda: step(x, y).numpy()
    f = tf.function(_tf_expression(tf, workload), jit_compile=True)
    args = [tf.constant(a) for a in _tf_inputs(workload, s)]
    return lambda: f(*args).numpy()


def _pytensor(workload, s):
    """pytensor.function in its default mode (C code compiled with the host's C++ compiler),
    float32 throughout; W4: shared weights with SGD updates, returning the loss."""
    import pytensor
    import pytensor.tensor as pt
    from pytensor.tensor.special import log_softmax, softmax
    if workload == "W4":
        rng = _rng()
        xb = rng.standard_normal((s["batch"], s["sizes"][0]), dtype=np.float32)
        yb = rng.integers(0, s["sizes"][-1], s["batch"]).astype(np.int32)
        x = pt.matrix("x", dtype="float32")
        y = pt.vector("y", dtype="int32")
        params = [(pytensor.shared(w), pytensor.shared(b)) for w, b in _dense_layers(s["sizes"])]
        h = x
        for i, (w, b) in enumerate(params):
            h = h @ w + b
            h = pt.maximum(h, 0) if i < len(params) - 1 else h
        loss = -pt.mean(log_softmax(h, axis=1)[pt.arange(y.shape[0]), y])
        flat = [v for pair in params for v in pair]
        lr = np.float32(s["lr"])
        step = pytensor.function([x, y], loss, updates=[(v, v - lr * g) for v, g in
                                                        zip(flat, pytensor.grad(loss, flat))])
        return lambda: step(xb, yb)
    arrays = _tf_inputs(workload, s)
    holders = [pt.tensor(f"a{i}", dtype="float32", shape=(None,) * a.ndim)
               for i, a in enumerate(arrays)]
    if workload == "W1":
        x = holders[0]
        out = pt.tanh(x) * pt.sigmoid(x) + 0.5 * x * x - pt.exp(-pt.abs(x))
    elif workload == "W2":
        out = softmax(holders[0], axis=-1)
    elif workload == "W3":
        out = pt.maximum(holders[0] @ holders[1] + holders[2], 0)
    else:
        out = holders[0] @ holders[1]
    f = pytensor.function(holders, out)
    return lambda: f(*arrays)


EXTRA_MAKERS = {"torch_compile": _torch_compile, "tf1": _tf1, "tf_xla": _tf_xla,
                "pytensor": _pytensor}


def _extra_one(workload, name, sizes, repeats):
    """{"figure", "version"} of one extra peer on W1-W4, measured in this process."""
    calls, figure = WORKLOADS[workload]
    fn = EXTRA_MAKERS[name](workload, sizes)
    seconds = interleaved({name: fn}, repeats, number=calls, warmup=3)[name]
    versions = [f"{m} {importlib.import_module(m).__version__}" for m in EXTRA_MODULES[name]]
    return {"figure": float(f"{figure(seconds, sizes):.4g}"), "version": " ".join(versions)}


def _extra_measure(workload, sizes, repeats):
    """Each extra peer in a process of its own: ({name: figure or None}, versions, errors)."""
    out, versions, errors = {}, [], {}
    for name in EXTRA_PEERS:
        out[name] = None
        if workload not in EXTRA_WORKLOADS or not all(available(m) for m in EXTRA_MODULES[name]):
            continue
        _in_own_process(workload, sizes, repeats, name, out, versions, errors)
    return out, versions, errors


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
    if workload == "W9":
        return _w9_measure(sizes, repeats)
    calls, figure = WORKLOADS[workload]
    out, versions = {}, []
    for name in MAKERS:
        if not available(name):
            out[name] = None
            continue
        fn = MAKERS[name](workload, sizes)
        out[name] = figure(interleaved({name: fn}, repeats, number=calls, warmup=2)[name], sizes)
        versions.append(f"{name} {importlib.import_module(name).__version__}")
    extra, extra_versions, errors = _extra_measure(workload, sizes, repeats)
    out.update(extra)
    out["peer_versions"] = ", ".join(versions + extra_versions)
    if errors:
        out["peer_errors"] = errors
    return out


if __name__ == "__main__":
    workload, sizes, repeats = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
    if len(sys.argv) > 4 and workload == "W9":  # one peer, in a process of its own
        print(json.dumps(_w9_one(sys.argv[4], sizes, repeats)))
    elif len(sys.argv) > 4:
        print(json.dumps(_extra_one(workload, sys.argv[4], sizes, repeats)))
    else:
        print(json.dumps(measure(workload, sizes, repeats)))
