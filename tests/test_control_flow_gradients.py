"""gc.grad through scan, while_loop, cond, map_fn and foldl: float64 central differences
(tests.helpers.check_grad evaluates the analytic gradients on every device), second order
through scan, and the errors for integer loop vars."""
import numpy as np
import pytest

import graphc as gc
from tests.helpers import check_grad, numeric_grad, run

rng = np.random.default_rng(41)


def rnn(x, h0, U):
    hs, _ = gc.scan(lambda xt, h, U: gc.tanh(xt + h @ U), sequences=x, outputs_info=[h0],
                    non_sequences=U)
    return hs


def test_scan_wrt_sequences_initial_values_and_non_sequences():
    x, h0, U = rng.normal(size=(5, 3)), rng.normal(size=3), rng.normal(size=(3, 3)) * 0.5
    check_grad(rnn, x, h0, U)


def test_scan_with_outputs_not_fed_back_and_go_backwards():
    def build(x, s0):
        (s, y), _ = gc.scan(lambda xt, s: [s * gc.sin(xt) + xt, gc.exp(xt * s)], sequences=x,
                            outputs_info=[s0, None], go_backwards=True)
        return gc.concat([s, y], 0)
    check_grad(build, rng.normal(size=(4, 2)), rng.normal(size=2))


def test_scan_n_steps_shorter_than_the_sequence():
    def build(x, a):
        ys, _ = gc.scan(lambda xt, h: h * xt + a, sequences=x, outputs_info=a, n_steps=3)
        return ys
    check_grad(build, rng.normal(size=(5, 2)), rng.normal(size=2))


def test_scan_wrt_a_captured_variable():
    g = gc.Graph()
    with g.as_default():
        W = gc.Variable(rng.normal(size=(3, 3)) * 0.4, name="W")
        x = gc.placeholder(gc.float64, (None, 3), name="x")
        hs, _ = gc.scan(lambda xt, h: gc.tanh(xt + h @ W), sequences=x,
                        outputs_info=gc.constant(np.zeros(3)))
        loss = gc.sum(hs * hs)
        gW = gc.grad(loss, W)
        xv = rng.normal(size=(6, 3))
        got = run(gW, {x: xv}, graph=g)
        sess = gc.Session(graph=g, device="reference")
        Wv = sess.get_value(W)

    def value(Wa):
        h, total = np.zeros(3), 0.0
        for t in range(len(xv)):
            h = np.tanh(xv[t] + h @ Wa)
            total += (h * h).sum()
        return total
    np.testing.assert_allclose(got, numeric_grad(value, [Wv])[0], rtol=1e-6, atol=1e-9)


def test_nested_scan_gradient():
    def build(x, v):
        def row(r):
            inner, _ = gc.scan(lambda e, acc: acc * gc.cos(e) + gc.sum(v * e), sequences=r,
                               outputs_info=gc.constant(1.0, gc.float64))
            return inner[-1]
        out, _ = gc.scan(row, sequences=x)
        return out
    check_grad(build, rng.normal(size=(3, 4)), rng.normal(size=2))


def test_map_fn_and_foldl_gradients():
    check_grad(lambda x: gc.map_fn(lambda r: gc.sum(gc.sin(r) * r), x), rng.normal(size=(4, 3)))
    check_grad(lambda x, a: gc.foldl(lambda acc, r: acc * r + gc.tanh(acc), x, a),
               rng.normal(size=(5, 2)), rng.normal(size=2))
    check_grad(lambda x: gc.foldl(lambda acc, r: acc * r, x), rng.normal(size=(4, 3)))


def test_while_loop_without_maximum_iterations():
    # v is multiplied by x until it exceeds 50: the count depends on x, the gradient is
    # that of x ** (count + 1) * w
    def build(x, w):
        _, v = gc.while_loop(lambda i, v: gc.sum(v) < 50.0, lambda i, v: (i + 1, v * x + w * 0.1),
                             (gc.constant(0), w))
        return v
    check_grad(build, np.array([1.7, 2.1]), np.array([1.0, 0.5]))


def test_while_loop_with_maximum_iterations_and_a_tensor_n_steps_scan():
    def build(x):
        return gc.while_loop(lambda v: gc.sum(v) < 1e9, lambda v: gc.sin(v) + v * x, [x],
                             maximum_iterations=4)[0]
    check_grad(build, rng.uniform(0.5, 1.0, size=3))
    g = gc.Graph()
    with g.as_default():
        n = gc.placeholder(gc.int32, (), name="n")
        a = gc.placeholder(gc.float64, (2,), name="a")
        ys, _ = gc.scan(lambda h: gc.sin(h) * 1.3, outputs_info=[a], n_steps=n)
        da = gc.grad(gc.sum(ys), a)
        av = rng.normal(size=2)
        for steps in (3, 0, 4, 4):
            def value(v):
                h, tot = v, 0.0
                for _ in range(steps):
                    h = np.sin(h) * 1.3
                    tot += h.sum()
                return tot
            np.testing.assert_allclose(run(da, {n: steps, a: av}, graph=g),
                                       numeric_grad(value, [av])[0], rtol=1e-6, atol=1e-9)


def test_cond_gradient_through_either_branch():
    for sign in (1.0, -1.0):
        def build(x, y):
            return gc.cond(gc.sum(x) * sign > 0.0, lambda: gc.sin(x) * y, lambda: x * x - y)
        check_grad(build, np.abs(rng.normal(size=3)) + 0.1, rng.normal(size=3))


def test_cond_inside_scan_gradient():
    def build(x, s0):
        ys, _ = gc.scan(lambda xt, s: gc.cond(xt > 0.0, lambda: s * xt, lambda: s + xt * xt),
                        sequences=x, outputs_info=s0)
        return ys
    check_grad(build, rng.normal(size=6), np.array(0.7))


def test_second_order_through_scan():
    # the Hessian-vector product of an RNN's loss w.r.t. U: gc.grad of gc.grad
    def build(x, U, v):
        hs = rnn(x, gc.constant(np.zeros(3)), U)
        gU = gc.grad(gc.sum(hs * hs), U)
        return gc.sum(gU * v)
    check_grad(build, rng.normal(size=(4, 3)), rng.normal(size=(3, 3)) * 0.5,
               rng.normal(size=(3, 3)), wrt=[0, 1], rtol=1e-5)


def test_integer_loop_vars_have_no_gradient(graph):
    x = gc.placeholder(gc.float64, (), name="x")
    i, v = gc.while_loop(lambda i, v: i < 3, lambda i, v: (i + 1, v * x), (gc.constant(0), x))
    with pytest.raises(gc.GradientError, match="integer"):
        gc.grad(i, x)
    with pytest.raises(gc.GradientError, match="integer"):
        gc.grad(v, i)
    n = gc.placeholder(gc.int32, (None,), name="n")
    s, _ = gc.scan(lambda k, acc: acc + k, sequences=n, outputs_info=gc.constant(0, gc.int32))
    with pytest.raises(gc.GradientError, match="integer"):
        gc.grad(gc.cast(s[-1], gc.float64), n)
    # the float var's gradient is fine beside an integer one
    np.testing.assert_allclose(run(gc.grad(v, x), {x: 1.5}), 4 * 1.5 ** 3)  # v = x ** 4


def test_scan_with_dropout_in_the_step():
    """The gradient's loop reads the masks the forward loop drew (the draw counter stays, so
    every evaluation of the finite differences sees the same masks)."""
    def build(x, h0, U):
        hs, updates = gc.scan(lambda xt, h: gc.tanh(gc.nn.dropout(xt, 0.4, seed=8) + h @ U),
                              sequences=x, outputs_info=[h0])
        assert updates
        return hs
    x, h0, U = rng.normal(size=(6, 2, 3)), rng.normal(size=(2, 3)), rng.normal(size=(3, 3)) * 0.5
    gx, _, _ = check_grad(build, x, h0, U)
    masks = gx == 0  # dropped entries of x get no gradient, and some are dropped in each step
    assert masks.any(axis=(1, 2)).sum() >= 3 and not masks.all(axis=(1, 2)).any()
