"""The convolution ops' kernels (patches copy, Gemm, gather, epilogue) as CUDA C, run on the host
(host_emulation.py) against the reference device."""
import numpy as np
import pytest

import graphc as gc
from tests.codegen.cuda.host_emulation import compile_for_host, missing_toolchain
from tests.kernels.helpers import Program, run_reference

pytestmark = pytest.mark.skipif(missing_toolchain() is not None,
                                reason=f"host emulation of CUDA C: {missing_toolchain()}")


@pytest.mark.parametrize("batch", [1, 7])
def test_conv_ops_with_a_symbolic_batch(batch):
    rng = np.random.default_rng(batch)
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 9, 8, 3))
        f = gc.placeholder(gc.float32, (3, 2, 3, 5))
        dy = gc.placeholder(gc.float32, (None, 5, 4, 5))
        b = gc.placeholder(gc.float32, (5,))
        kw = dict(strides=2, padding="SAME")
        outs = [gc.relu(gc.nn.conv2d(x, f, **kw) + b),
                gc.nn.conv2d_backprop_input(x, f, dy, **kw),
                gc.nn.conv2d_backprop_filter(x, f, dy, **kw)]
        program = Program(outs)
    assert not program.unsupported
    shapes = {x: (batch, 9, 8, 3), f: (3, 2, 3, 5), dy: (batch, 5, 4, 5), b: (5,)}
    feed = {t: rng.normal(size=s).astype(np.float32) for t, s in shapes.items()}
    got = program.execute(feed, compile_for_host(program.kernels).run)
    for g_, w in zip(got, run_reference(program.fetches, feed)):
        np.testing.assert_allclose(g_, w, rtol=1e-5, atol=1e-4)
