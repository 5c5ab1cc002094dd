"""Large reductions to a scalar split into chunks reduced in parallel, then combined
(graphc/codegen/llvm/split_reductions.py, run by device "cpu"): the interpreter on the split kernels
and the compiled program both give the reference's values on odd sizes (a remainder past the
last full chunk), few rows, symbolic sizes, every reduction and dtype, NaN, nested full
reductions and empty tensors; float32 sums stay more accurate than numpy's."""
import numpy as np
import pytest

import graphc as gc
from graphc.targets.cpu import CPU
from tests.helpers import run
from tests.kernels.helpers import Program, run_reference

rng = np.random.default_rng(23)
REDUCTIONS = {"sum": gc.sum, "mean": gc.mean, "max": gc.max, "min": gc.min, "prod": gc.prod}


def split_program(outputs):
    """The Program of outputs with its kernels split as device "cpu" splits them: compiled
    for the CPU target."""
    return Program(outputs, target=CPU)


def check(build, x, splits):
    """build(placeholder of x's dtype with a symbolic first dim) -> outputs, run split by the
    interpreter and on device "cpu" against the reference; `splits` partial kernels made."""
    g = gc.Graph()
    with g.as_default():
        t = gc.placeholder(gc.as_dtype(x.dtype), (None,) + x.shape[1:])
        outputs = build(t)
        program = split_program(outputs)
        assert sum("_part" in k.name for k in program.kernels) == splits
        want = run_reference(outputs, {t: x})
        for got, expected in zip(program.execute({t: x}), want):
            np.testing.assert_allclose(got, expected, rtol=1e-5, equal_nan=True)
        return run(outputs, {t: x}, graph=g)


def sample(shape, dtype, name):
    if dtype.startswith("int"):
        return rng.integers(-50, 50, shape).astype(dtype)
    x = rng.normal(size=shape).astype(dtype)
    if name == "prod":  # powers of two and signs: every order of products is exact
        x = rng.choice(np.array([1, 2, 0.5], dtype), shape, p=[.999, .0005, .0005])
        x.flat[::1000] = -1
    if name in ("max", "min"):
        x.flat[-3] = np.nan  # in the remainder or the last chunk
    return x


@pytest.mark.parametrize("shape", [(65537,), (1023, 131), (3, 40000), (70001, 1)])
@pytest.mark.parametrize("name", list(REDUCTIONS))
def test_reductions_to_a_scalar_split_match_the_reference(shape, name):
    x = sample(shape, "float32", name)
    (got,) = check(lambda t: [REDUCTIONS[name](t)], x, splits=1)
    assert np.isnan(got) == (name in ("max", "min"))


@pytest.mark.parametrize("dtype", ["float64", "int32", "int64"])
@pytest.mark.parametrize("name", ["sum", "max", "min"])
def test_other_dtypes(dtype, name):
    check(lambda t: [REDUCTIONS[name](t)], sample((70001,), dtype, name), splits=1)


@pytest.mark.filterwarnings("ignore:Mean of empty slice")  # the reference's NaN, as on cpu
@pytest.mark.parametrize("rows", [0, 1, 7, 1023, 4099])
def test_symbolic_sizes_and_empty_tensors(rows):
    x = rng.normal(size=(rows, 33)).astype(np.float32)
    total, mean_square = check(lambda t: [gc.sum(t), gc.mean(gc.square(t - 1.0))], x, splits=2)
    np.testing.assert_allclose(total, x.sum(dtype=np.float64), rtol=1e-5, atol=1e-4)


def test_nested_full_reductions_and_a_broadcast_use():
    """logsumexp over everything (a sum of exp(x - max(x))) and x / sum(x) over a whole
    tensor: the second reduction reads the first's result, the outputs read both."""
    x = rng.normal(size=(999, 77)).astype(np.float32)
    lse, share = check(lambda t: [gc.logsumexp(t), t / gc.sum(gc.abs(t))], x, splits=3)
    np.testing.assert_allclose(lse, np.log(np.exp(x.astype(np.float64)).sum()), rtol=1e-6)
    np.testing.assert_allclose(np.abs(share).sum(), 1.0, rtol=1e-5)


def test_small_reductions_stay_whole():
    check(lambda t: [gc.sum(t), gc.max(t)], rng.normal(size=(7, 13)).astype(np.float32),
          splits=2)  # the batch is symbolic: split, in one chunk
    g = gc.Graph()
    with g.as_default():
        t = gc.placeholder(gc.float32, (7, 13))
        assert not any("_part" in k.name for k in split_program([gc.sum(t)]).kernels)


def test_float32_sums_combine_partials_in_double():
    x = np.tile(np.array([1e8, 1.0, -1e8, 1.0], np.float32), 50_000)
    g = gc.Graph()
    with g.as_default():
        t = gc.placeholder(gc.float32, x.shape)
        got = gc.Session(graph=g, device="cpu").run(gc.sum(t), {t: x})
    assert got == 100_000.0


def test_reductions_nested_in_a_split_reduction_get_kernels_of_their_own_names():
    """log_softmax(log_softmax(x)) over a whole symbolic axis: the outer reductions' values
    hold the inner ones, split while the outer ones are; every partial kernel and chunk
    variable has a name of its own (two kernels were both named ..._part4)."""
    x = rng.normal(size=(5,)).astype(np.float32)
    (got,) = check(lambda t: [gc.nn.log_softmax(gc.nn.log_softmax(t, axis=0), axis=0)], x,
                   splits=40)
    shifted = x - x.max()
    np.testing.assert_allclose(got, shifted - np.log(np.exp(shifted).sum()), rtol=1e-5)
