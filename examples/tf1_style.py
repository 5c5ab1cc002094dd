"""TF1 style: placeholders, variables, gc.grad, a session, a checkpoint.

Fits a softmax classifier to two Gaussian blobs per class; prints the loss as it falls.
Run: python examples/tf1_style.py [--steps N]
"""
import argparse
import os
import tempfile

import numpy as np

import graphc as gc


def main(steps=200, device="reference"):
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(10, 784)).astype("float32") * 2
    labels = rng.integers(0, 10, 512).astype("int32")
    images = centers[labels] + rng.normal(size=(512, 784)).astype("float32")

    x = gc.placeholder(gc.float32, shape=(None, 784), name="x")
    y = gc.placeholder(gc.int32, shape=(None,), name="y")
    W = gc.Variable(rng.normal(size=(784, 10)).astype("float32") * 0.01, name="W")
    b = gc.Variable(np.zeros(10, "float32"), name="b")
    logits = x @ W + b
    loss = gc.mean(gc.nn.sparse_softmax_cross_entropy(logits, y))
    gW, gb = gc.grad(loss, [W, b])
    train = gc.group(gc.assign_sub(W, 0.1 * gW), gc.assign_sub(b, 0.1 * gb))
    accuracy = gc.mean(gc.cast(gc.equal(gc.cast(gc.argmax(logits, axis=1), gc.int32), y),
                               gc.float32))

    with gc.Session(device=device) as sess:
        for step in range(steps):
            batch = rng.integers(0, 512, 64)
            l, _ = sess.run([loss, train], feed_dict={x: images[batch], y: labels[batch]})
            if step % max(1, steps // 5) == 0:
                print(f"step {step:4d}  loss {l:.4f}")
        acc = sess.run(accuracy, {x: images, y: labels})
        print(f"training accuracy {acc:.3f}")
        path = sess.save(os.path.join(tempfile.mkdtemp(), "ckpt"))
        sess.restore(path)
        print(f"saved and restored the variables at {path}")
    return acc


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=200)
    main(parser.parse_args().steps)
