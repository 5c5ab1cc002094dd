"""The Keras-style demo: a small CNN learns the UCI handwritten digits (8x8 images, shipped
with graphc) and reports its accuracy on held-out images.

Run: python examples/digits_cnn.py [--epochs N] [--device reference|cpu] [--dump-dir DIR]
"""
import argparse
import os

import graphc as gc
import graphc.frontend as gk

L = gk.layers


def build_model():
    return gk.Sequential([
        L.Input((8, 8, 1)),
        L.Conv2D(16, 3, padding="same", activation="relu"),
        L.MaxPooling2D(),
        L.Conv2D(32, 3, padding="same", activation="relu"),
        L.MaxPooling2D(),
        L.Flatten(),
        L.Dropout(0.2),
        L.Dense(64, activation="relu"),
        L.Dense(10, activation="softmax"),
    ], name="digits_cnn")


def main(epochs=15, device=None, dump_dir="build/demo_dumps", verbose=1):
    gk.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = gk.datasets.load_digits()
    x_train, x_test = x_train[..., None], x_test[..., None]  # channels last
    print(f"digits: {len(x_train)} training and {len(x_test)} held-out images of 8x8")

    model = build_model()
    model.summary()
    model.compile(optimizer=gk.optimizers.Adam(0.003), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], device=device)
    model.fit(x_train, y_train, batch_size=32, epochs=epochs, validation_split=0.1,
              verbose=verbose)
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"held-out accuracy: {accuracy:.4f} (loss {loss:.4f}) on {len(x_test)} images")

    os.makedirs(dump_dir, exist_ok=True)
    for name, stage in (("train_step_input.html", "input"), ("train_step_kernels.txt",
                                                              "kernels")):
        with open(os.path.join(dump_dir, name), "w") as f:
            f.write(model.train_function.dump(stage=stage,
                                              format="html" if name.endswith("html") else "text"))
    with open(os.path.join(dump_dir, "predict_graph.dot"), "w") as f:
        f.write(gc.dump(model.outputs, format="dot"))
    print(f"graph dumps written to {os.path.abspath(dump_dir)}")
    return accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--device", default=None)
    parser.add_argument("--dump-dir", default="build/demo_dumps")
    args = parser.parse_args()
    main(args.epochs, args.device, args.dump_dir)
