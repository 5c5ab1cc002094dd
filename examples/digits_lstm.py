"""An LSTM classifier of the shipped UCI digits: each 8x8 image is read row by row, as a
sequence of 8 steps of 8 features, by an LSTM whose last output feeds a softmax. Trained
with fit, saved, reloaded and checked.

Run: python examples/digits_lstm.py [--epochs N] [--units U] [--samples N] [--device cpu]
(--samples keeps the first N training images, for a quick run)
"""
import argparse
import os
import tempfile

import numpy as np

import graphc.frontend as gk

L = gk.layers


def main(epochs=15, units=64, samples=None, device=None, verbose=2):
    gk.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = gk.datasets.load_digits()  # (n, 8, 8) in [0, 1]
    if samples:
        x_train, y_train = x_train[:samples], y_train[:samples]

    model = gk.Sequential([
        L.Input((8, 8)),                       # 8 time steps (rows) of 8 features (pixels)
        L.LSTM(units),                         # the last step's output
        L.Dense(10, activation="softmax")], name="digits_lstm")
    model.summary()
    model.compile(optimizer=gk.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], device=device)
    model.fit(x_train, y_train, batch_size=32, epochs=epochs, validation_split=0.1,
              verbose=verbose)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)

    path = os.path.join(tempfile.mkdtemp(), "digits_lstm.gck")
    model.save(path)
    reloaded = gk.load_model(path)
    same = np.allclose(reloaded.predict(x_test, verbose=0), model.predict(x_test, verbose=0),
                       atol=1e-6)
    print(f"held-out accuracy: {accuracy:.4f}; reloaded from {path}: "
          f"{'same predictions' if same else 'DIFFERENT predictions'}")
    return accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--units", type=int, default=64)
    parser.add_argument("--samples", type=int, default=None)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    main(args.epochs, args.units, args.samples, args.device)
