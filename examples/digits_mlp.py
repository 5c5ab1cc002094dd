"""A functional-API MLP on the shipped UCI digits, with a learning-rate schedule, early
stopping and a checkpoint; reloads the best model and checks it.

Run: python examples/digits_mlp.py [--epochs N] [--device reference|cpu]
"""
import argparse
import os
import tempfile

import graphc.frontend as gk

L = gk.layers


def main(epochs=30, device=None, verbose=2):
    gk.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = gk.datasets.load_digits()
    x_train, x_test = x_train.reshape(-1, 64), x_test.reshape(-1, 64)

    inputs = gk.Input((64,), name="pixels")
    h = L.Dense(128, activation="relu", kernel_regularizer=gk.regularizers.L2(1e-4))(inputs)
    h = L.BatchNormalization()(h)
    h = L.Dropout(0.2)(h)
    outputs = L.Dense(10, activation="softmax")(h)
    model = gk.Model(inputs, outputs, name="digits_mlp")
    model.summary()

    schedule = gk.schedules.CosineDecay(0.01, decay_steps=epochs * 41)
    model.compile(optimizer=gk.optimizers.Adam(schedule), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], device=device)
    path = os.path.join(tempfile.mkdtemp(), "best.gck")
    model.fit(x_train, y_train, batch_size=32, epochs=epochs, validation_split=0.1,
              verbose=verbose, callbacks=[
                  gk.callbacks.EarlyStopping(monitor="val_accuracy", patience=8,
                                             restore_best_weights=True),
                  gk.callbacks.ModelCheckpoint(path, monitor="val_accuracy",
                                               save_best_only=True)])
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    best = gk.load_model(path)
    _, reloaded = best.evaluate(x_test, y_test, verbose=0)
    print(f"held-out accuracy: {accuracy:.4f}; the checkpoint reloaded from {path}: "
          f"{reloaded:.4f}")
    return accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    main(args.epochs, args.device)
