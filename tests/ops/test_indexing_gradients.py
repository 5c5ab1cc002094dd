"""First derivatives of the indexing ops (gather_elements, scatter_elements, scatter_nd, cumsum,
einsum) against central differences on fresh random inputs: negative and repeated indices,
odd sizes, einsum letters summed over one operand alone; and the gradients they refuse."""
import numpy as np
import pytest

import graphc as gc
from tests.helpers import numeric_grad

rng = np.random.default_rng()


def check(build, arrays):
    g = gc.Graph()
    with g.as_default():
        phs = [gc.placeholder(gc.float64, a.shape) for a in arrays]
        out = build(*phs)
        weights = rng.uniform(0.5, 1.5, size=tuple(out.shape))
        y = gc.sum(out * weights)
        grads = gc.grad(y, phs)
        sess = gc.Session(graph=g, device="reference")
        got = sess.run(grads, dict(zip(phs, arrays)))
        numeric = numeric_grad(lambda *xs: float(sess.run(y, dict(zip(phs, xs)))), arrays)
    for a, n in zip(got, numeric):
        np.testing.assert_allclose(a, n, rtol=1e-6, atol=1e-7)


def indices(shape, bound):
    """Indices in [-bound, bound): negative ones count from the end."""
    return rng.integers(-bound, bound, size=shape)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_gather_elements(axis):
    x = rng.standard_normal((3, 5))
    shape = list(x.shape)
    shape[axis] = 7  # more picks than elements: repeats
    check(lambda a: gc.gather_elements(a, indices(shape, x.shape[axis]), axis=axis), [x])


@pytest.mark.parametrize("reduction", ["none", "add"])
def test_scatter_elements(reduction):
    x, u = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    # distinct positions per column for "none": a repeated write leaves its winner open
    idx = np.stack([rng.permutation(4) - 4 * (rng.random(4) < 0.5) for _ in range(3)], axis=1)
    check(lambda a, b: gc.scatter_elements(a, idx, b, 0, reduction), [x, u])


@pytest.mark.parametrize("reduction", ["none", "add"])
def test_scatter_nd(reduction):
    x, u = rng.standard_normal((5, 3, 2)), rng.standard_normal((3, 2))
    rows = rng.permutation(15)[:3]
    idx = np.stack([rows // 3 - 5 * (rng.random(3) < 0.5), rows % 3], axis=1)  # (3, 2) tuples
    check(lambda a, b: gc.scatter_nd(a, idx, b, reduction), [x, u])


@pytest.mark.parametrize("exclusive,reverse", [(False, False), (True, False), (True, True)])
def test_cumsum(exclusive, reverse):
    check(lambda a: gc.cumsum(a, axis=1, exclusive=exclusive, reverse=reverse),
          [rng.standard_normal((3, 6))])


@pytest.mark.parametrize("equation,shapes", [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 3)]),
    ("ijl,jk->ik", [(3, 4, 2), (4, 5)]),  # l summed over the first operand alone
    ("ij,kj", [(2, 3), (4, 3)]),  # implicit output: ik
    ("i,j->ij", [(3,), (4,)]),
])
def test_einsum(equation, shapes):
    check(lambda *xs: gc.einsum(equation, *xs), [rng.standard_normal(s) for s in shapes])


@pytest.mark.parametrize("build,message", [
    (lambda a: gc.einsum("ii->i", a), "repeated index"),
    (lambda a: gc.scatter_elements(a, np.zeros((3, 3), np.int64), a, 0, "max"), "reduction"),
])
def test_refused_gradients_name_the_op(build, message):
    with gc.Graph().as_default():
        x = gc.placeholder(gc.float64, (3, 3))
        with pytest.raises(gc.GradientError, match=message):
            gc.grad(gc.sum(build(x)), x)
