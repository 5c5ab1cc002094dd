"""The canonical text of kernels that compiled programs are cached under: equal for equal
kernels, different wherever the generated code would differ, linear in the kernels' size."""
import pytest

import graphc as gc
from graphc.kernels import ir
from graphc.kernels.fingerprint import fingerprint
from tests.kernels.helpers import Program


def kernels_of(build, shape=(7, 5), dtype=gc.float32):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(dtype, (None,) + shape[1:], name="x")
        return Program([build(x)]).kernels


def test_equal_graphs_give_equal_text_built_apart():
    build = lambda x: gc.tanh(x) * 2.0 + gc.sum(x, axis=1, keepdims=True)  # noqa: E731
    first, second = kernels_of(build), kernels_of(build)
    assert first is not second and fingerprint(first) == fingerprint(second)


@pytest.mark.parametrize("other", [
    lambda x: gc.sigmoid(x) * x,          # an op
    lambda x: gc.tanh(x * x),             # the order of the same ops
    lambda x: gc.tanh(x) * x + x,         # one more op
    lambda x: gc.sum(gc.tanh(x) * x, axis=0),
])
def test_any_difference_in_the_computation_shows(other):
    base = fingerprint(kernels_of(lambda x: gc.tanh(x) * x))
    assert fingerprint(kernels_of(other)) != base


def test_shapes_and_dtypes_show():
    build = lambda x: gc.exp(x) * x  # noqa: E731
    base = fingerprint(kernels_of(build))
    assert fingerprint(kernels_of(build, shape=(7, 6))) != base
    assert fingerprint(kernels_of(build, dtype=gc.float64)) != base


def test_constants_show_to_the_bit():
    """Constants folded into kernels are code (those of the graph are buffers, bound at run
    time, and never change the code)."""
    def kernel(value, dtype="float32"):
        i = ir.Var("i")
        store = ir.Store(1, i, ir.op("mul", ir.Load(0, i, dtype), ir.Const(value, dtype)))
        return [ir.Kernel("k", (ir.Loop(i, ir.const(5), (store,)),), {})]
    texts = [fingerprint(kernel(v)) for v in (0.0, -0.0, 1.0, 1.0000001)]
    assert len(set(texts)) == 4
    assert fingerprint(kernel(1.0, "float64")) != texts[2]


def test_statements_of_every_kind_show_their_fields():
    i = ir.Var("i")
    load = ir.Load(3, i, "float32")
    store = ir.Store(4, i, load)
    loop = ir.Loop(i, ir.const(7), (store,), parallel=True)
    kernel = lambda *body: ir.Kernel("k", tuple(body), {})  # noqa: E731
    variants = [
        kernel(loop),
        kernel(ir.Loop(i, ir.const(7), (store,), parallel=False)),
        kernel(ir.Loop(i, ir.const(8), (store,), parallel=True)),
        kernel(ir.Loop(i, ir.const(7), (ir.Store(5, i, load),), parallel=True)),
        kernel(ir.Loop(i, ir.const(7), (ir.Check(ir.op("less", i, ir.const(3)), 0, i),))),
        kernel(ir.Loop(i, ir.const(7), (ir.Check(ir.op("less", i, ir.const(3)), 1, i),))),
        ir.Kernel("other_name", (loop,), {}),
    ]
    operand = ir.Operand(0, ir.const(0), ir.const(4), ir.const(1))
    gemm = ir.Gemm("float32", ir.const(2), ir.const(3), ir.const(4), operand, operand, operand)
    variants += [kernel(gemm), kernel(ir.Gemm(**{**gemm.__dict__, "accumulate": True})),
                 kernel(ir.Gemm(**{**gemm.__dict__, "dtype": "float64"}))]
    texts = [fingerprint([k]) for k in variants]
    assert len(set(texts)) == len(texts)
    # what only people read does not count
    assert fingerprint([ir.Kernel("k", (loop,), {}, nodes=(1, 2), comment="x")]) == texts[0]


def test_shared_values_are_written_once():
    """A chain whose every value is used twice would be exponential written out as a tree."""
    x = ir.Load(0, ir.Var("i"), "float32")
    for _ in range(200):
        x = ir.op("add", x, x)
    store = ir.Store(1, ir.Var("i"), x)
    text = fingerprint([ir.Kernel("k", (ir.Loop(ir.Var("i"), ir.const(3), (store,)),), {})])
    assert len(text.splitlines()) < 210
    assert text.count(" Op ") == 200
