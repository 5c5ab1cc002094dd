"""The graph IR: default graphs, hash-consing, names and scopes, source locations, dtypes."""
import numpy as np
import pytest

import graphc as gc
from graphc.ir.types import broadcast_shapes


def test_hash_consing_merges_pure_nodes_but_not_stateful_ones():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (3,))
        assert gc.exp(x) is gc.exp(x)
        assert (x + 1.0) is (x + 1.0)
        assert gc.placeholder(gc.float32, (3,)) is not gc.placeholder(gc.float32, (3,))
        assert gc.random.normal((2,)) is not gc.random.normal((2,))
        v = gc.Variable(np.zeros(3, np.float32))
        assert gc.assign(v, x) is not gc.assign(v, x)


def test_nodes_are_immutable():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (3,))
        with pytest.raises(AttributeError, match="immutable"):
            x.node.op = "exp"


def test_default_graph_stack_and_reset():
    g = gc.Graph()
    with g.as_default():
        assert gc.get_default_graph() is g
        x = gc.constant(1.0)
        assert x.graph is g
        with pytest.raises(gc.GraphcError):
            gc.reset_default_graph()
    fresh = gc.reset_default_graph()
    assert gc.get_default_graph() is fresh is not g


def test_unique_names_and_name_scopes():
    g = gc.Graph()
    with g.as_default():
        a = gc.placeholder(gc.float32, (2,), name="x")
        b = gc.placeholder(gc.float32, (2,), name="x")
        with gc.name_scope("layer1"):
            c = gc.exp(a, name="act")
            with gc.name_scope("inner"):
                d = gc.tanh(c)
    assert (a.name, b.name) == ("x", "x_1")
    assert c.name == "layer1/act"
    assert d.name == "layer1/inner/tanh"
    assert g.tensor("layer1/act") is c


def test_source_location_is_the_users_line():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (2,))
        y = x * 2.0  # this line
    line = test_source_location_is_the_users_line.__code__.co_firstlineno + 4
    assert y.node.source.endswith(f"test_graph.py:{line}")


def test_symbolic_dims():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 4), name="x")
        n = x.shape[0]
        assert isinstance(n, gc.Dim) and n.name == "x.0"
        y = gc.reshape(x, (-1, 2, 2))
        assert y.shape == (n, 2, 2)
        assert (x + gc.constant(np.ones((1, 4), np.float32))).shape == (n, 4)


def test_broadcast_shapes_rule():
    d = gc.Dim("n")
    assert broadcast_shapes((3, 1), (1, 5)) == (3, 5)
    assert broadcast_shapes((d, 1), (5,)) == (d, 5)
    assert broadcast_shapes((d, 4), (1, 4)) == (d, 4)
    assert broadcast_shapes((d,), (7,)) == (7,)
    with pytest.raises(gc.ShapeError, match="axis -1 has sizes 3 and 4"):
        broadcast_shapes((2, 3), (4,))


@pytest.mark.parametrize("given,want", [(np.float32, gc.float32), ("float64", gc.float64),
                                        (np.dtype("int64"), gc.int64), ("bool", gc.bool_),
                                        (gc.bfloat16, gc.bfloat16), ("int32", gc.int32),
                                        (np.float16, gc.float16)])
def test_dtypes_accept_numpy_names_and_types(given, want):
    assert gc.as_dtype(given) is want


def test_unknown_dtype_is_a_clear_error():
    with pytest.raises(gc.DTypeError, match="no dtype for numpy complex128"):
        gc.as_dtype(np.complex128)


def test_constants_default_dtypes():
    g = gc.Graph()
    with g.as_default():
        assert gc.constant(1.5).dtype is gc.float32
        assert gc.constant(3).dtype is gc.int32
        assert gc.constant(np.arange(3)).dtype is gc.int64
        assert gc.constant([True]).dtype is gc.bool_
        with pytest.raises(gc.DTypeError, match="does not fit dtype int32"):
            gc.constant(1.5, dtype=gc.int32)


def test_tensor_attributes():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (2, 3), name="inp")
        y = gc.exp(x)
    assert (y.shape, y.dtype, y.op, y.graph, y.name) == ((2, 3), gc.float32, "exp", g, "exp")
    with pytest.raises(gc.GraphcError, match="no truth value"):
        bool(y)


def test_scalar_constants_and_variables_stay_rank_zero():
    g = gc.Graph()
    with g.as_default():
        assert gc.constant(2.0).shape == ()
        assert gc.Variable(np.float32(1.0)).shape == ()
        x = gc.placeholder(gc.float32, ())
        assert (x * 2.0).shape == ()


def test_large_equal_dims_broadcast():
    # ints above the small-int cache must compare by value
    assert broadcast_shapes((784, 1000), (int("784"), int("1000"))) == (784, 1000)
