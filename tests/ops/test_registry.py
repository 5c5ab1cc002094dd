"""An op is declared in one place: its OpSpec says everything fusion, lowering and the runtime
ask, so a new op fuses and runs natively with no other module knowing its name; and a
declaration that does not fit its kind is refused."""
import numpy as np
import pytest

import graphc as gc
from graphc.compiler import HostStep
from graphc.kernels import ir, lowering_rules
from graphc.ops.registry import REGISTRY, apply, register
from graphc.passes.fusion import partition
from tests.helpers import run


def _cube(k, node, idx):
    x = k.input(node, 0, idx)
    return ir.op("mul", ir.op("mul", x, x), x)


def _sum_last(k, node, idx):
    x = node.inputs[0]
    return k.reduce("sum", x.shape, (x.rank - 1,), lambda vs: k.value(x, tuple(idx) + tuple(vs)),
                    node.outputs[0].dtype.name)


@pytest.fixture
def new_ops():
    """Two ops declared here only: an elementwise cube and a sum over the last axis whose
    reduced axes are a function of the node (it has no axes attr)."""
    register("test_cube", kind="elementwise", lower=_cube, infer=lambda x: x,
             ref=lambda x: x * x * x, grad=None)
    register("test_sum_last", kind="reduction", lower=_sum_last,
             reduced_axes=lambda node: (node.inputs[0].rank - 1,),
             infer=lambda x: gc.TensorType(x.dtype, x.shape[:-1]),
             ref=lambda x: x.sum(axis=-1, dtype=x.dtype), grad=None)
    try:
        yield
    finally:
        del REGISTRY["test_cube"], REGISTRY["test_sum_last"]


def test_a_new_op_fuses_and_runs_natively_from_its_declaration(new_ops):
    a = np.arange(24, dtype="float32").reshape(2, 3, 4) / 7 - 1
    graph = gc.Graph()
    with graph.as_default():
        x = gc.placeholder(gc.float32, (None, 3, 4), name="x")
        y = apply("test_sum_last", [apply("test_cube", [x]) + 1.0])
        (group,) = partition(graph, [y]).groups
        assert group.kind == "reduction" and group.axes == (2,)
        exe = gc.Session(graph=graph, device="cpu").compile([y], [x])
        assert not [s for s in exe.steps if isinstance(s, HostStep)]
        out = run(y, {x: a}, graph=graph)
    np.testing.assert_allclose(out, (a ** 3 + 1).sum(axis=-1), rtol=1e-6)


@pytest.mark.parametrize("fields, why", [
    (dict(kind="elementwise"), "kind 'elementwise' declares lower"),
    (dict(kind="window", lower_group=lambda group, slots, name: []),
     "kind 'window' declares lower"),
    (dict(kind="host", lower=lowering_rules.scalar), "kind 'host' declares no lowering"),
    (dict(kind="view", lower=lowering_rules.identity), "test_bad"),  # a view says how it orders
])
def test_a_declaration_that_does_not_fit_its_kind_is_refused(fields, why):
    with pytest.raises(AssertionError, match=why):
        register("test_bad", infer=lambda x: x, ref=lambda x: x, grad=None, **fields)
    assert "test_bad" not in REGISTRY
