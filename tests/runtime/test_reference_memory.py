"""Tensors too large to allocate are a ResourceError naming the node, on every device, before
anything is allocated (random draws and their float64 intermediates included); a MemoryError
from numpy inside a reference is one too; and the session stays usable."""
import numpy as np
import pytest

import graphc as gc
from graphc.runtime import reference

HUGE = (200000, 200000, 50)  # 8e12 bytes in float32


def _usable_after(sess, graph):
    with graph.as_default():
        small = gc.constant(np.arange(3, dtype=np.float32)) * 2.0
    np.testing.assert_array_equal(sess.run(small), [0.0, 2.0, 4.0])


@pytest.mark.parametrize("device", ["reference", "cpu"])
@pytest.mark.parametrize("draw", [gc.random.normal, gc.random.uniform])
def test_a_huge_random_draw_is_a_resource_error(graph, device, draw):
    r = draw(HUGE, seed=1)
    total = gc.sum(r)
    sess = gc.Session(graph=graph, device=device)
    with pytest.raises(gc.ResourceError, match=r"8,000,000,000,000 bytes") as err:
        sess.run(total)
    assert err.value.node is not None and err.value.node.op == r.op
    _usable_after(sess, graph)
    small = draw((2, 3), seed=1)
    assert sess.run(small).shape == (2, 3)


@pytest.mark.parametrize("device", ["reference", "cpu"])
def test_a_variable_initialized_from_a_huge_draw_is_a_resource_error(graph, device):
    v = gc.Variable(gc.random.normal(HUGE, seed=0))
    sess = gc.Session(graph=graph, device=device)
    with pytest.raises(gc.ResourceError, match="random_normal"):
        sess.run(gc.sum(v))
    _usable_after(sess, graph)


@pytest.mark.parametrize("device", ["reference", "cpu"])
def test_the_float64_numbers_a_float32_draw_is_made_from_are_checked(graph, device,
                                                                     monkeypatch):
    # numpy draws in float64 and the reference casts: 1000 float32 numbers take 4,000 bytes,
    # but the draw 8,000
    monkeypatch.setenv("GRAPHC_MEMORY_LIMIT", "6000")
    sess = gc.Session(graph=graph, device=device)
    with pytest.raises(gc.ResourceError, match=r"8,000 bytes, more than the 6,000"):
        sess.run(gc.sum(gc.random.normal((1000,), seed=0)))
    np.testing.assert_allclose(sess.run(gc.sum(gc.random.normal((500,), seed=0))),
                               np.random.default_rng(0).normal(size=500).astype(np.float32).sum(),
                               rtol=1e-5)


@pytest.mark.parametrize("build", [
    lambda x: gc.sum(gc.broadcast_to(x, HUGE)),
    lambda x: gc.sum(gc.one_hot(gc.cast(gc.broadcast_to(x, (200000,)), gc.int32), 1 << 26)),
    lambda x: gc.sum(gc.matmul(gc.broadcast_to(x, (1 << 20, 1)), gc.broadcast_to(x, (1, 1 << 20)))),
], ids=["broadcast_to", "one_hot", "matmul"])
def test_every_op_output_is_checked_before_allocating(graph, build):
    # unoptimized, so that the ops run as written (O2 may fold a sum of a broadcast)
    x = gc.placeholder(gc.float32, ())
    out = build(x)
    sess = gc.Session(graph=graph, device="reference", optimize="O0")
    with pytest.raises(gc.ResourceError, match="bytes that can be allocated"):
        sess.run(out, {x: np.float32(1)})
    _usable_after(sess, graph)


def test_numpy_memory_error_inside_a_reference_is_a_resource_error(graph, monkeypatch):
    x = gc.placeholder(gc.float32, (3,), name="x")
    y = gc.exp(x, name="big_exp")
    real = reference.call_reference

    def out_of_memory(node, arrays):
        if node.op == "exp":
            raise MemoryError("Unable to allocate 1.00 TiB for an array")  # as numpy's says
        return real(node, arrays)
    monkeypatch.setattr(reference, "call_reference", out_of_memory)
    sess = gc.Session(graph=graph, device="reference")
    with pytest.raises(gc.ResourceError, match=r"big_exp.*out of memory.*1\.00 TiB") as err:
        sess.run(y, {x: np.zeros(3, np.float32)})
    assert err.value.node.name == "big_exp"
    monkeypatch.setattr(reference, "call_reference", real)
    np.testing.assert_array_equal(sess.run(y, {x: np.zeros(3, np.float32)}), np.ones(3))
