"""Shared test helpers: evaluating on every device against the reference, checking gradients."""
import numpy as np

import graphc as gc
from tests import cuda_coverage

# checked against device="reference" by every `run`; "cuda" where CUDA code can run
DEVICES = ("cpu",) + (("cuda",) if cuda_coverage.runs_on else ())
# how closely a device must match the reference, by result dtype: (rtol, atol)
TOLERANCE = {"float64": (1e-10, 1e-12), "float32": (2e-5, 1e-6), "float16": (2e-3, 1e-3),
             "bfloat16": (1e-2, 1e-2)}


def run(fetches, feed=None, graph=None, tolerance=None, **session_args):
    """Evaluate fetches in a fresh reference session, and on every other device, which must
    give the same values (within TOLERANCE, or `tolerance`: dtype name -> (rtol, atol) where
    given) or raise the same kind of error."""
    results, errors = {}, {}
    for device in ("reference",) + DEVICES:
        try:
            sess = gc.Session(graph=graph, device=device, **session_args)
            results[device] = sess.run(fetches, feed or {})
        except gc.GraphcError as err:
            errors[device] = err
    if errors:
        kinds = {d: type(e).__name__ for d, e in errors.items()}
        assert len(errors) == 1 + len(DEVICES) and len(set(kinds.values())) == 1, kinds
        raise errors["reference"]
    for device in DEVICES:
        assert_same(results[device], results["reference"], fetches, device, tolerance)
    return results["reference"]


def assert_same(got, want, fetches, device, tolerance=None):
    tensors = fetches if isinstance(fetches, (list, tuple)) else [fetches]
    got_list = got if isinstance(fetches, (list, tuple)) else [got]
    want_list = want if isinstance(fetches, (list, tuple)) else [want]
    for t, a, b in zip(tensors, got_list, want_list):
        if b is None:
            continue
        a, b = np.asarray(a), np.asarray(b)
        name = t.dtype.name if isinstance(t, gc.Tensor) else b.dtype.name
        rtol, atol = (tolerance or TOLERANCE).get(name, TOLERANCE.get(name, (0, 0)))
        assert a.shape == b.shape and a.dtype == b.dtype, (device, a.shape, b.shape, a.dtype)
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, equal_nan=True,
                                   err_msg=f"device {device!r} differs from the reference")


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
        analytic = run(grads, dict(zip(phs, arrays)), graph=g)

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
