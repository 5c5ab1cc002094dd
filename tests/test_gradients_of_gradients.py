"""Gradients of gradients through every differentiable op of the registry, against central
differences of the first gradient; and the ops whose second derivatives graphc refuses, which
the README names, refuse with a GradientError naming the op.

The first gradient of each case is nonlinear in its inputs (a square or a product around the
op where the op is linear), so that its own gradient is not zero everywhere. Checked on the
reference device: the op tests compare the other devices with it.
"""
import os
import re

import numpy as np
import pytest

import graphc as gc
from graphc.ops.registry import NOT_DIFFERENTIABLE, REGISTRY
from tests.helpers import numeric_grad

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
rng = np.random.default_rng(11)


def signed(*shape):
    return rng.uniform(-1.5, 1.5, size=shape)


def positive(*shape):
    return rng.uniform(0.5, 1.5, size=shape)


ROWS = signed(3, 4)
IMAGE = signed(1, 4, 4, 2)
LABELS = np.array([0, 3, 1], np.int32)
INDICES = np.array([[0, -1], [2, 2], [1, 3]], np.int64)  # along ROWS' axis 1
ROW_TUPLES = np.array([[0], [-1], [0]], np.int64)  # rows of ROWS, one twice

# op -> (build(*float64 tensors) -> tensor, input arrays)
CASES = {
    # collectives: one process is a job of size 1 (their gradients are collectives too)
    "allreduce": (lambda x: gc.distributed.allreduce(x * x, op="mean") * x, [signed(5)]),
    "broadcast": (lambda x: gc.distributed.broadcast(x * x) * x, [signed(5)]),
    # control flow: second derivatives through the backward loop and the branches' gradients
    "loop": (lambda x, h: gc.scan(lambda row, c: gc.tanh(c * row + row), sequences=[x],
                                  outputs_info=[h], n_steps=3)[0], [signed(4, 3), signed(3)]),
    "cond": (lambda a, b: gc.cond(gc.less(gc.sum(a), 100.0), lambda: a * a * b, lambda: b),
             [signed(5), signed(5)]),
    # indexing (ONNX's): with a negative index and a repeated one
    "gather_elements": (lambda a: gc.gather_elements(a, INDICES, axis=1) ** 3, [ROWS]),
    "scatter_elements": (lambda a, u: gc.scatter_elements(a, INDICES, u, 1, "add") ** 3,
                         [ROWS, signed(3, 2)]),
    "scatter_nd": (lambda a, u: gc.scatter_nd(a * a, ROW_TUPLES, u, "add") * a,
                   [ROWS, signed(3, 4)]),
    "cumsum": (lambda a: gc.cumsum(a, axis=1, reverse=True) ** 3, [ROWS]),
    "einsum": (lambda a, b: gc.einsum("ijl,jk->ik", a, b) ** 3, [signed(3, 4, 2), signed(4, 2)]),
    "abs": (lambda x: gc.abs(x) * x, [signed(5)]),
    "neg": (lambda x: gc.neg(x) * x, [signed(5)]),
    "exp": (gc.exp, [signed(5)]),
    "log": (gc.log, [positive(5)]),
    "log1p": (gc.log1p, [positive(5)]),
    "expm1": (gc.expm1, [signed(5)]),
    "sqrt": (gc.sqrt, [positive(5)]),
    "rsqrt": (gc.rsqrt, [positive(5)]),
    "square": (lambda x: gc.square(x) * x, [signed(5)]),
    "sin": (gc.sin, [signed(5)]),
    "cos": (gc.cos, [signed(5)]),
    "tanh": (gc.tanh, [signed(5)]),
    "sigmoid": (gc.sigmoid, [signed(5)]),
    "softplus": (gc.softplus, [signed(5)]),
    "erf": (gc.erf, [signed(5)]),
    "relu": (lambda x: gc.relu(x) * x, [signed(5)]),
    "floor": (lambda x: gc.floor(x) * x * x, [signed(5)]),
    "sign": (lambda x: gc.sign(x) * x * x, [signed(5)]),
    "add": (lambda a, b: (a + b) ** 3, [signed(5), signed(5)]),
    "sub": (lambda a, b: (a - b) ** 3, [signed(5), signed(5)]),
    "mul": (lambda a, b: a * b * a, [signed(5), signed(5)]),
    "div": (lambda a, b: a / b, [signed(5), positive(5)]),
    "pow": (lambda a, b: a ** b, [positive(5), signed(5)]),
    "maximum": (lambda a, b: gc.maximum(a, b) ** 3, [signed(5), signed(5)]),
    "minimum": (lambda a, b: gc.minimum(a, b) ** 3, [signed(5), signed(5)]),
    "floordiv": (lambda a, b: (a // b) * a * b, [signed(5), positive(5)]),
    "mod": (lambda a, b: (a % b) * a * b, [signed(5), positive(5)]),
    "where": (lambda a, b: gc.where(gc.less(a, 0.0), a * a * b, b * b * a),
              [signed(5), signed(5)]),
    "cast": (lambda a: gc.cast(gc.cast(a * a * a, gc.float32), gc.float64), [signed(5)]),
    "matmul": (lambda a, b: gc.square(a @ b), [signed(3, 4), signed(4, 2)]),
    "sum": (lambda a: gc.square(gc.sum(a * a, axis=1)), [ROWS]),
    "mean": (lambda a: gc.square(gc.mean(a * a, axis=0)), [ROWS]),
    "max": (lambda a: gc.max(a, axis=1) ** 3, [ROWS]),
    "min": (lambda a: gc.min(a, axis=1) ** 3, [ROWS]),
    "softmax": (gc.nn.softmax, [ROWS]),
    "log_softmax": (gc.nn.log_softmax, [ROWS]),
    "sparse_softmax_cross_entropy": (
        lambda a: gc.nn.sparse_softmax_cross_entropy(a, gc.constant(LABELS)), [ROWS]),
    "conv2d": (lambda x, f: gc.square(gc.nn.conv2d(x, f, padding="SAME")),
               [IMAGE, signed(2, 2, 2, 3)]),
    "avg_pool2d": (lambda x: gc.square(gc.nn.avg_pool2d(x, 2, 1, "SAME")), [IMAGE]),
    "reshape": (lambda a: gc.reshape(a, (4, 3)) ** 3, [ROWS]),
    "transpose": (lambda a: gc.transpose(a) ** 3, [ROWS]),
    "expand_dims": (lambda a: gc.expand_dims(a, 0) ** 3, [ROWS]),
    "squeeze": (lambda a: gc.squeeze(a, 0) ** 3, [signed(1, 4)]),
    "broadcast_to": (lambda a: gc.broadcast_to(a, (3, 4)) ** 3, [signed(4)]),
    "broadcast_like": (lambda a, b: (a + b) ** 3, [signed(4), ROWS]),
    "concat": (lambda a, b: gc.concat([a, b], 0) ** 3, [signed(2, 4), ROWS]),
    "split": (lambda a: gc.split(a, 2, axis=1)[0] ** 3, [ROWS]),
    "strided_slice": (lambda a: a[::-2, 1:] ** 3, [ROWS]),
    "pad": (lambda a: gc.pad(a, [(1, 0), (0, 2)]) ** 3, [ROWS]),
    "gather": (lambda a: gc.gather(a, np.array([0, 2, 2])) ** 3, [ROWS]),
}
# ops whose second derivatives graphc does not have: op -> (case, what the error says)
REFUSED = {
    "max_pool2d": ((lambda x: gc.square(gc.nn.max_pool2d(x, 2, 1, "SAME")), [IMAGE]),
                   "second derivatives of max_pool2d"),
    "prod": ((lambda a: gc.prod(a, axis=1), [ROWS]), "second-order gradient of prod"),
}
# gradient ops, differentiated in the second gradient of the op they belong to
REACHED_THROUGH = {"resize_rows": "loop",  # the loop's case runs fewer steps than rows
                   "conv2d_backprop_input": "conv2d", "conv2d_backprop_filter": "conv2d",
                   "avg_pool2d_grad": "avg_pool2d", "max_pool2d_grad": "max_pool2d",
                   "sum_to_like": "broadcast_like", "reshape_like": "reshape",
                   "strided_slice_grad": "strided_slice", "gather_grad": "gather",
                   "prod_of_others": "prod"}


def first_gradient(build, phs):
    """The gradient of a fixed positive weighting of build(*phs) w.r.t. every input, summed
    into one tensor shaped like the first input."""
    out = build(*phs)
    weights = np.random.default_rng(5).uniform(0.5, 1.5, size=tuple(out.shape))
    grads = gc.grad(gc.sum(out * weights), phs)
    return grads[0] + sum(gc.sum(g) for g in grads[1:])


def test_every_differentiable_op_has_a_case():
    differentiable = {name for name, spec in REGISTRY.items() if spec.grad is not NOT_DIFFERENTIABLE}
    covered = set(CASES) | set(REFUSED) | set(REACHED_THROUGH)
    assert differentiable <= covered, sorted(differentiable - covered)
    assert set(REACHED_THROUGH.values()) <= set(CASES) | set(REFUSED)


@pytest.mark.parametrize("op", list(CASES))
def test_second_derivatives_match_differences_of_the_gradient(op, graph):
    build, arrays = CASES[op]
    phs = [gc.placeholder(gc.float64, a.shape, name=f"in{i}") for i, a in enumerate(arrays)]
    dx = first_gradient(build, phs)
    y = gc.sum(dx * np.random.default_rng(6).uniform(0.5, 1.5, size=tuple(dx.shape)))
    analytic = gc.grad(y, phs)
    sess = gc.Session(graph=graph, device="reference")
    got = sess.run(analytic, dict(zip(phs, arrays)))
    numeric = numeric_grad(lambda *xs: float(sess.run(y, dict(zip(phs, xs)))), arrays)
    for i, (a, n) in enumerate(zip(got, numeric)):
        np.testing.assert_allclose(a, n, rtol=1e-5, atol=1e-6, err_msg=f"{op}: input {i}")
    assert any(np.abs(a).max() > 1e-3 for a in got), "zero second derivatives check nothing"


@pytest.mark.parametrize("op", list(REFUSED))
def test_refused_second_derivatives_raise_a_gradient_error_naming_the_op(op, graph):
    (build, arrays), message = REFUSED[op]
    phs = [gc.placeholder(gc.float64, a.shape, name=f"in{i}") for i, a in enumerate(arrays)]
    dx = first_gradient(build, phs)
    assert np.isfinite(gc.Session(graph=graph, device="reference").run(
        dx, dict(zip(phs, arrays)))).all(), "the first gradient works"
    with pytest.raises(gc.GradientError, match=message) as err:
        gc.grad(gc.sum(dx * dx), phs)
    # the node is the gradient node that gc.grad made at this file's line
    assert os.path.basename(__file__) in err.value.node.source


def test_the_readme_names_the_refused_second_derivatives():
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = " ".join(f.read().split())
    named = re.search(r"gradients of gradients included, except through ((?:`\w+`(?:, | and )?)+)",
                      readme)
    assert named, "the README's Gradients paragraph lists no exceptions"
    assert set(re.findall(r"`(\w+)`", named.group(1))) == set(REFUSED)
