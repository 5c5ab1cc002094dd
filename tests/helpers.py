"""Shared test helpers: evaluating on the reference device and checking gradients."""
import numpy as np

import graphc as gc


def run(fetches, feed=None, graph=None, **session_args):
    """Evaluate fetches in a fresh reference session."""
    sess = gc.Session(graph=graph, device="reference", **session_args)
    return sess.run(fetches, feed or {})


def evaluate(build, *arrays):
    """build(*placeholders) -> tensor(s); evaluated with the arrays fed."""
    g = gc.Graph()
    with g.as_default():
        phs = [gc.placeholder(gc.as_dtype(a.dtype), a.shape, name=f"in{i}")
               for i, a in enumerate(arrays)]
        out = build(*phs)
        return run(out, dict(zip(phs, arrays)), graph=g)


def numeric_grad(fn, arrays, eps=1e-6):
    """Central finite differences of the scalar fn(*arrays) w.r.t. every array (float64)."""
    grads = []
    for i, a in enumerate(arrays):
        g = np.zeros_like(a)
        flat = g.reshape(-1)
        for j in range(a.size):
            plus = [x.copy() for x in arrays]
            minus = [x.copy() for x in arrays]
            plus[i].reshape(-1)[j] += eps
            minus[i].reshape(-1)[j] -= eps
            flat[j] = (fn(*plus) - fn(*minus)) / (2 * eps)
        grads.append(g)
    return grads


def check_grad(build, *arrays, rtol=1e-6, atol=1e-8, eps=1e-6, wrt=None):
    """Compare gc.grad of the scalar build(*tensors) with central differences in float64.

    `build` gets float64 placeholders (one per array) and returns a tensor; a non-scalar result
    is reduced with a fixed random weighting so every output element matters.
    """
    arrays = [np.asarray(a, np.float64) for a in arrays]
    wrt = list(range(len(arrays))) if wrt is None else list(wrt)
    g = gc.Graph()
    with g.as_default():
        phs = [gc.placeholder(gc.float64, a.shape, name=f"in{i}") for i, a in enumerate(arrays)]
        out = build(*phs)
        weights = np.random.default_rng(7).uniform(0.5, 1.5, size=tuple(out.shape))
        y = gc.sum(out * gc.constant(weights, dtype=gc.float64))
        grads = gc.grad(y, [phs[i] for i in wrt])
        sess = gc.Session(graph=g, device="reference")
        analytic = sess.run(grads, dict(zip(phs, arrays)))

    def value(*xs):
        return float(sess.run(y, dict(zip(phs, xs))))

    numeric = numeric_grad(value, arrays, eps)
    for k, i in enumerate(wrt):
        scale = np.maximum(np.abs(numeric[i]), 1.0)
        err = np.max(np.abs(analytic[k] - numeric[i]) / scale) if arrays[i].size else 0.0
        assert err < rtol or np.allclose(analytic[k], numeric[i], rtol=rtol, atol=atol), (
            f"gradient of input {i}: relative error {err:.3g}\nanalytic={analytic[k]}\n"
            f"numeric={numeric[i]}")
    return analytic
