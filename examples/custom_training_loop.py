"""A training loop written by hand around gk layers: the model gives the forward pass, graphc
gives the gradients, a gk optimizer gives the update, and gc.function compiles the whole step
into one call, as fit does.

Run: python examples/custom_training_loop.py [--epochs N]
"""
import argparse

import numpy as np

import graphc as gc
import graphc.frontend as gk

L = gk.layers


def main(epochs=10, batch_size=64):
    gk.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = gk.datasets.load_digits()
    x_train, x_test = x_train.reshape(-1, 64), x_test.reshape(-1, 64)
    model = gk.Sequential([L.Input((64,)), L.Dense(64, activation="relu"),
                           L.BatchNormalization(), L.Dense(10)])
    optimizer = gk.optimizers.SGD(0.1, momentum=0.9)

    x, y = model.inputs[0], gc.placeholder(gc.int32, (None,), name="labels")
    logits = model(x, training=True)  # model.updates: batch norm's moving statistics
    loss = gc.mean(gc.nn.sparse_softmax_cross_entropy(logits, y))
    weights = model.trainable_weights
    grads = gc.grad(loss, weights)
    step = gc.function([x, y], loss, updates=model.updates + optimizer.apply(grads, weights),
                       session=model.session, name="train_step")
    predict = gc.function([x], gc.argmax(model(x, training=False), axis=1),
                          session=model.session)

    rng = np.random.default_rng(0)
    for epoch in range(epochs):
        order = rng.permutation(len(x_train))
        losses = [step(x_train[idx], y_train[idx])
                  for idx in np.array_split(order, -(-len(order) // batch_size))]
        accuracy = np.mean(predict(x_test) == y_test)
        print(f"epoch {epoch + 1}: loss {np.mean(losses):.4f}, held-out accuracy "
              f"{accuracy:.4f}")
    print(f"one compiled step: {step.stats()['kernels']} fusion groups")
    return accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=10)
    main(parser.parse_args().epochs)
