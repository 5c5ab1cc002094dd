"""graphc's Keras-like frontend next to Keras 3 on JAX: the same MLP and CNN on the shipped UCI
digits, same split, batch size, optimizer (Adam) and epochs. Reports training steps per second
(the median over epochs after a warm-up epoch that compiles) and the held-out accuracy.

Keras is never a graphc dependency: it runs in the interpreter named by GRAPHC_PEER_PYTHON
(e.g. a venv made with `python3 -m venv /tmp/peers && /tmp/peers/bin/pip install keras jax`),
or in this one if it can import keras; otherwise its fields say why they are empty.

Prints one JSON line per model. Usage:
    GRAPHC_PEER_PYTHON=/tmp/peers/bin/python python benchmarks/keras_compare.py \
        [--epochs N] [--device reference|cpu]
"""
import argparse
import json
import os
import statistics
import tempfile
import time

import numpy as np

from _common import keras_peer

SPEC = {"batch_size": 32, "learning_rate": 0.003}


# ---- the two models, written once per framework ----------------------------------------------
def graphc_model(kind):
    import graphc.frontend as gk
    L = gk.layers
    if kind == "mlp":
        body = [L.Input((64,)), L.Dense(128, activation="relu")]
    else:
        body = [L.Input((8, 8, 1)), L.Conv2D(16, 3, padding="same", activation="relu"),
                L.MaxPooling2D(), L.Conv2D(32, 3, padding="same", activation="relu"),
                L.MaxPooling2D(), L.Flatten(), L.Dense(64, activation="relu")]
    return gk.Sequential(body + [L.Dense(10, activation="softmax")])


def keras_model(kind):
    import keras
    L = keras.layers
    if kind == "mlp":
        body = [keras.Input((64,)), L.Dense(128, activation="relu")]
    else:
        body = [keras.Input((8, 8, 1)), L.Conv2D(16, 3, padding="same", activation="relu"),
                L.MaxPooling2D(), L.Conv2D(32, 3, padding="same", activation="relu"),
                L.MaxPooling2D(), L.Flatten(), L.Dense(64, activation="relu")]
    return keras.Sequential(body + [L.Dense(10, activation="softmax")])


def shaped(x, kind):
    return x.reshape(-1, 64) if kind == "mlp" else x[..., None]


# ---- one run: fit with per-epoch timing, then evaluate -----------------------------------------
def run(framework, kind, data, epochs, device):
    (x, y), (xt, yt) = [(shaped(a, kind), b) for a, b in data]
    if framework == "graphc":
        import graphc.frontend as gk
        gk.utils.set_random_seed(0)
        model = graphc_model(kind)
        model.compile(optimizer=gk.optimizers.Adam(SPEC["learning_rate"]),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                      device=device)
        base = gk.callbacks.Callback
    else:
        import keras
        keras.utils.set_random_seed(0)
        model = keras_model(kind)
        model.compile(optimizer=keras.optimizers.Adam(SPEC["learning_rate"]),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        base = keras.callbacks.Callback

    class Timer(base):
        def __init__(self):
            super().__init__()
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.t0)

    timer = Timer()
    t0 = time.perf_counter()
    model.fit(x, y, batch_size=SPEC["batch_size"], epochs=epochs + 1, verbose=0,
              callbacks=[timer])
    fit_seconds = time.perf_counter() - t0
    steps = -(-len(x) // SPEC["batch_size"])
    _, accuracy = model.evaluate(xt, yt, batch_size=256, verbose=0)
    return {"steps_per_s": steps / statistics.median(timer.seconds[1:]),
            "first_epoch_s": timer.seconds[0], "fit_s": fit_seconds,
            "test_accuracy": float(accuracy)}


# ---- the peer side --------------------------------------------------------------------------
def keras_results(data_path, epochs):
    """{model: result} from Keras on JAX, or {"error": why}."""
    return keras_peer(__file__, [data_path, "--epochs", str(epochs)])


def peer_main(data_path, epochs):
    import jax
    import keras
    with np.load(data_path) as f:
        data = ((f["x"], f["y"]), (f["xt"], f["yt"]))
    out = {kind: run("keras", kind, data, epochs, None) for kind in ("mlp", "cnn")}
    out["version"] = f"keras {keras.__version__} on jax {jax.__version__}"
    print(json.dumps(out))


def main(epochs, device):
    import graphc.frontend as gk
    data = gk.datasets.load_digits()
    (x, y), (xt, yt) = data
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "digits.npz")
        np.savez(path, x=x, y=y, xt=xt, yt=yt)
        peer = keras_results(path, epochs)
    for kind in ("mlp", "cnn"):
        ours = run("graphc", kind, data, epochs, device)
        theirs = peer.get(kind, {})
        line = {"bench": "keras_compare", "model": kind, "epochs": epochs, **SPEC,
                "device": device or "default",
                "graphc_steps_per_s": round(ours["steps_per_s"], 1),
                "keras_jax_steps_per_s": round(theirs["steps_per_s"], 1) if theirs else None,
                "speed_ratio": round(ours["steps_per_s"] / theirs["steps_per_s"], 3)
                if theirs else None,
                "graphc_accuracy": round(ours["test_accuracy"], 4),
                "keras_jax_accuracy": round(theirs["test_accuracy"], 4) if theirs else None,
                "graphc_first_epoch_s": round(ours["first_epoch_s"], 3),
                "keras_jax_first_epoch_s": round(theirs["first_epoch_s"], 3) if theirs else None,
                "keras": peer.get("version", peer.get("error"))}
        print(json.dumps(line))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--device", default=None)
    parser.add_argument("--peer", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer:
        peer_main(args.peer, args.epochs)
    else:
        main(args.epochs, args.device)
