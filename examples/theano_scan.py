"""The classic Theano scan tutorials, in graphc: gc.scan has Theano's semantics (fn gets the
t-th slice of each sequence, then the previous value of each fed-back output, then the
non-sequences), so each one reads as it did in Theano.

1. A polynomial from its coefficients: one term per step, summed after the loop.
2. A**k (elementwise) by repeated multiplication, k a run-time scalar, returning only the final
   result; then its gradient through the loop, k * A**(k-1).
3. An Elman recurrent net (tanh hidden layer, linear read-out) learning to echo its input
   DELAY steps late, trained by a gc.function with updates (SGD with momentum), gc.grad going
   back through gc.scan; its first gradients are checked against backpropagation through time
   written in numpy.

Each part prints its result and checks it against numpy.
Run: python examples/theano_scan.py [--tiny]   (--tiny: small sizes and few steps, for tests)
"""
import argparse

import numpy as np

import graphc as gc


# ---- 1. polynomial evaluation ------------------------------------------------------------------
def polynomial(coefficients=(1.0, 0.0, 2.0), x_value=3.0, max_degree=1000):
    """sum_i c_i x**i, Theano's way: scan over the coefficients and over a range of powers
    at once (the shorter sequence, the coefficients, sets the number of steps)."""
    coeffs = gc.placeholder(gc.float32, (None,), name="coefficients")
    x = gc.placeholder(gc.float32, (), name="x")
    powers = gc.constant(np.arange(max_degree, dtype=np.float32), name="powers")
    terms, _ = gc.scan(lambda c, power, free: c * free ** power,
                       sequences=[coeffs, powers], non_sequences=x, name="poly")
    evaluate = gc.function([coeffs, x], gc.sum(terms))
    got = float(evaluate(np.asarray(coefficients, np.float32), x_value))
    expected = float(np.polynomial.polynomial.polyval(x_value, coefficients))
    print(f"1. polynomial {list(coefficients)} at x = {x_value}: {got} (numpy {expected})")
    assert np.isclose(got, expected, rtol=1e-5), (got, expected)
    return got


# ---- 2. A**k ---------------------------------------------------------------------------------
def power(a_value, ks=(2, 5)):
    """A**k elementwise, looping k times; k is fed, so one compiled function serves every k.
    Only the last step's result is returned (result[-1]), as in Theano's tutorial."""
    a = gc.placeholder(gc.float32, (None,), name="A")
    k = gc.placeholder(gc.int32, (), name="k")
    result, updates = gc.scan(lambda prior, a: prior * a, outputs_info=[gc.ones_like(a)],
                              non_sequences=[a], n_steps=k, name="power")
    final = result[-1]
    grad = gc.grad(gc.sum(final), a)  # d/dA sum(A**k) = k * A**(k-1), through the loop
    f = gc.function([a, k], [final, grad], updates=updates)  # updates: {} (no random draws)
    for k_value in ks:
        got, got_grad = f(a_value, k_value)
        print(f"2. A**{k_value} = {np.array2string(got, precision=4)}")
        print(f"   its gradient {np.array2string(got_grad, precision=4)}")
        np.testing.assert_allclose(got, a_value ** k_value, rtol=1e-5)
        np.testing.assert_allclose(got_grad, k_value * a_value ** (k_value - 1), rtol=1e-5)
    return got


# ---- 3. an Elman net trained through scan --------------------------------------------------------
def echo_task(rng, steps, batch, delay):
    """Inputs uniform in [-1, 1], (time, batch, 1); the target at t is the input at t - delay
    (zero before the first input)."""
    x = rng.uniform(-1, 1, (steps, batch, 1)).astype(np.float32)
    y = np.zeros_like(x)
    y[delay:] = x[:-delay]
    return x, y


def numpy_forward(params, x):
    """The hidden states (time + 1, batch, hidden; h[0] = 0) and outputs of the Elman net."""
    w_x, w_h, b_h, w_y, b_y = params
    h = np.zeros((len(x) + 1, x.shape[1], w_h.shape[0]), np.float64)
    for t in range(len(x)):
        h[t + 1] = np.tanh(x[t] @ w_x + h[t] @ w_h + b_h)
    return h, h[1:] @ w_y + b_y


def numpy_gradients(params, x, y, delay):
    """The loss and its gradients with respect to params, by backpropagation through time."""
    w_x, w_h, b_h, w_y, b_y = params
    h, out = numpy_forward(params, x)
    err = out[delay:] - y[delay:]
    loss = np.mean(err ** 2)
    d_out = np.zeros_like(out)
    d_out[delay:] = 2 * err / err.size
    grads = [np.zeros_like(p, np.float64) for p in params]
    grads[3] = np.einsum("tbh,tbo->ho", h[1:], d_out)
    grads[4] = d_out.sum(axis=(0, 1))
    d_h = np.zeros_like(h[0])
    for t in reversed(range(len(x))):
        d_z = (d_h + d_out[t] @ w_y.T) * (1 - h[t + 1] ** 2)
        grads[0] += x[t].T @ d_z
        grads[1] += h[t].T @ d_z
        grads[2] += d_z.sum(axis=0)
        d_h = d_z @ w_h.T
    return loss, grads


def elman(steps=20, batch=64, hidden=32, delay=2, epochs=400, lr=0.1, momentum=0.9, seed=0):
    rng = np.random.default_rng(seed)
    init = [rng.uniform(-0.5, 0.5, (1, hidden)), rng.uniform(-0.5, 0.5, (hidden, hidden)) /
            np.sqrt(hidden), np.zeros(hidden), rng.uniform(-0.5, 0.5, (hidden, 1)), np.zeros(1)]
    init = [p.astype(np.float32) for p in init]

    x = gc.placeholder(gc.float32, (None, None, 1), name="x")  # (time, batch, 1)
    y = gc.placeholder(gc.float32, (None, None, 1), name="y")
    params = [gc.Variable(p, name=n) for p, n in zip(init, ("W_x", "W_h", "b_h", "W_y", "b_y"))]
    w_x, w_h, b_h, w_y, b_y = params
    h0 = gc.broadcast_to(gc.constant(0.0), (x.shape[1], hidden))

    def step(x_t, h_prev):  # Theano's order: the sequence's slice, then the previous state
        return gc.tanh(x_t @ w_x + h_prev @ w_h + b_h)
    hs, _ = gc.scan(step, sequences=x, outputs_info=[h0], name="elman")
    out = hs @ w_y + b_y
    loss = gc.mean(gc.square(out[delay:] - y[delay:]))
    grads = gc.grad(loss, params)  # back through the scan

    velocities = [gc.Variable(np.zeros_like(v), name=f"v_{p.name}") for v, p in zip(init, params)]
    updates = []
    for p, v, g in zip(params, velocities, grads):
        new_v = momentum * v - lr * g
        updates += [(v, new_v), (p, p + new_v)]
    train = gc.function([x, y], loss, updates=updates)
    gradients = gc.function([x, y], [loss] + grads, session=train.session)
    predict = gc.function([x], out, session=train.session)

    # gc.grad through the scan is numpy's backpropagation through time
    data = echo_task(rng, steps, batch, delay)
    first, *got = gradients(*data)
    expected_loss, expected = numpy_gradients(init, *data, delay)
    assert np.isclose(first, expected_loss, rtol=1e-5), (first, expected_loss)
    for name, g, e in zip(("W_x", "W_h", "b_h", "W_y", "b_y"), got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-3, atol=1e-6, err_msg=name)
    print(f"3. Elman net, echo {delay} steps late: initial loss {first:.4f}, gradients through "
          "scan match numpy's backpropagation through time")

    for epoch in range(epochs):
        value = train(*echo_task(rng, steps, batch, delay))
        if epoch % max(1, epochs // 4) == 0 or epoch == epochs - 1:
            print(f"   step {epoch:4d}  loss {value:.4f}")

    test_x, test_y = echo_task(np.random.default_rng(seed + 1), steps, batch, delay)
    learned = [train.session.get_value(p) for p in params]
    got_out = predict(test_x)
    _, expected_out = numpy_forward(learned, test_x)
    np.testing.assert_allclose(got_out, expected_out, rtol=1e-4, atol=1e-5)
    test_loss = float(np.mean((got_out[delay:] - test_y[delay:]) ** 2))
    print(f"   held-out loss {test_loss:.4f} (from {first:.4f}; outputs match numpy's forward)")
    assert test_loss < first, (test_loss, first)
    return first, test_loss


def main(tiny=False):
    polynomial()
    power(np.arange(1, 6, dtype=np.float32) / 2)
    if tiny:
        first, last = elman(steps=8, batch=8, hidden=8, epochs=30)
    else:
        first, last = elman()
    print("all three match numpy")
    return first, last


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="small sizes, few steps (tests)")
    main(parser.parse_args().tiny)
