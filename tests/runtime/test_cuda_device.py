"""device='cuda': functions build and render anywhere; running needs pycuda and a GPU.

The run path is tested here on two GPUs: `host`, runtime.cuda_driver.Gpu itself on a fake
pycuda whose memory is host memory and whose kernels are the generated CUDA C compiled for the
host (tests/codegen/cuda/fake_driver.py; needs g++ and the CUDA headers), and `cuda`, the real
one through pycuda, skipped where pycuda or a GPU is missing. Results must match the reference
device; on the fake, the copies and waits a run makes are counted too."""
import gc as python_gc
import re

import numpy as np
import pytest

import graphc as gc
from graphc.codegen.cuda import nvcc
from graphc.compiler import HostStep
from graphc.ops.shape import prod_of_others
from graphc.runtime import cuda_driver
from tests.codegen.cuda.fake_driver import EmulatedGpu, emulated_gpu
from tests.codegen.cuda.host_emulation import missing_toolchain

rng = np.random.default_rng(5)


def _real_gpu_missing():
    try:
        cuda_driver.gpu()
    except gc.DeviceError as error:
        return str(error)
    return None


@pytest.fixture(params=["host", "cuda"])
def gpu(request, monkeypatch):
    """The GPU the CUDA device runs on in this test."""
    if request.param == "host":
        if missing_toolchain():
            pytest.skip(f"host emulation of CUDA C: {missing_toolchain()}")
        stand_in = emulated_gpu()
        monkeypatch.setattr(cuda_driver, "_gpu", stand_in)
        return stand_in
    reason = _real_gpu_missing()
    if reason:
        pytest.skip(reason)
    return cuda_driver.gpu()


def _normal(*shape):
    return rng.normal(size=shape).astype(np.float32)


def _compare(outputs, feeds, inputs, rtol=1e-5, atol=1e-6):
    f = gc.function(inputs, outputs, device="cuda")
    want = gc.function(inputs, outputs, device="reference")
    for feed in feeds:
        for g, w in zip(f(*feed), want(*feed)):
            assert g.dtype == w.dtype and g.shape == w.shape
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)
    return f


# ---- without a GPU ---------------------------------------------------------------------------
def test_functions_build_and_render_without_a_gpu(graph):
    x = gc.placeholder(gc.float32, (None, 13), name="x")
    y = gc.placeholder(gc.int32, (None,), name="y")
    loss = gc.mean(gc.nn.sparse_softmax_cross_entropy(gc.tanh(x) * 2.0, y))
    f = gc.function([x, y], [loss, gc.argmax(x, axis=1)], device="cuda")
    text = f.source()
    assert text == f.source("cuda") and text.startswith("#include <cuda_fp16.h>")
    names = re.findall(r'extern "C" __global__ void (\w+)\(', text)
    assert len(names) >= 3 and len(set(names)) == len(names)
    assert all(re.fullmatch(r"k\d+_\w+_[0-9a-f]{16}", n) for n in names), names
    assert "// " in text and "sparse_softmax_cross_entropy" in text
    with pytest.raises(gc.GraphcError, match="unknown source kind 'asm'.*'cuda', 'ptx'"):
        f.source("asm")
    if nvcc.find():
        ptx = f.source("ptx")
        assert set(re.findall(r"\.entry\s+(\w+)\(", ptx)) == set(names)


@pytest.mark.skipif(_real_gpu_missing() is None, reason="pycuda and a GPU are here")
def test_calling_without_pycuda_or_a_gpu_is_a_device_error(graph):
    x = gc.placeholder(gc.float32, (3,), name="x")
    f = gc.function([x], x * 2.0, device="cuda")
    for _ in range(2):  # and again: nothing is left half started
        with pytest.raises(gc.DeviceError, match="device 'cuda' needs pycuda and an NVIDIA "
                                                 "GPU: "):
            f(np.ones(3, np.float32))
    assert gc.function([x], x * 2.0, device="cpu")(np.ones(3, np.float32)).tolist() == [2] * 3


# ---- on a GPU (the host stand-in, or a real one) ----------------------------------------------
def test_kernels_of_several_batch_sizes(graph, gpu):
    x = gc.placeholder(gc.float32, (None, 13), name="x")
    b = gc.placeholder(gc.float32, (13,), name="b")
    outputs = [gc.nn.softmax(x * 1.5 + b), gc.sum(x, axis=0), gc.max(x), gc.argmin(x, axis=1),
               gc.cast(x > b, gc.int32), gc.concat([x, x * 2.0], axis=1)[:, ::3],
               gc.matmul(x, gc.transpose(x)) + 1.0]
    feeds = [(_normal(n, 13), _normal(13)) for n in (7, 1, 7, 1023)]
    emulated = isinstance(gpu, EmulatedGpu)  # (shared by every test under GRAPHC_TEST_CUDA=host)
    loaded = gpu.driver.calls["module_from_buffer"] if emulated else 0
    _compare(outputs, feeds, [x, b])
    if emulated:  # one module, from the first run
        assert gpu.driver.calls["module_from_buffer"] == loaded + 1


def test_train_steps_update_variables_as_the_reference(graph, gpu):
    x = gc.placeholder(gc.float32, (None, 13), name="x")
    y = gc.placeholder(gc.int32, (None,), name="y")
    w1 = gc.Variable(_normal(13, 11) * 0.3, name="w1")
    w2 = gc.Variable(_normal(11, 5) * 0.3, name="w2")
    h = gc.relu(gc.matmul(x, w1))
    loss = gc.mean(gc.nn.sparse_softmax_cross_entropy(gc.matmul(h, w2), y))
    g1, g2 = gc.grad(loss, [w1, w2])
    updates = [(w1, w1 - 0.1 * g1), (w2, w2 - 0.1 * g2)]
    sessions = [gc.Session(device=d) for d in ("cuda", "reference")]
    steps = [gc.function([x, y], loss, updates=updates, session=s) for s in sessions]
    for n in (9, 9, 4):
        feed = (_normal(n, 13), rng.integers(0, 5, n).astype(np.int32))
        got, want = (step(*feed) for step in steps)
        np.testing.assert_allclose(got, want, rtol=1e-5)
    for v in (w1, w2):
        np.testing.assert_allclose(sessions[0].get_value(v), sessions[1].get_value(v),
                                   rtol=1e-5, atol=1e-6)


def test_host_steps_between_kernels(graph, gpu):
    """prod_of_others (prod's gradient) has no kernel: it runs on the host, between kernels,
    with its inputs brought down and its output sent up."""
    a = gc.placeholder(gc.int32, (None, 6), name="a")
    b = gc.placeholder(gc.int32, (6,), name="b")
    out = gc.sum(prod_of_others(a * 2, (1,)) + b, axis=1)
    f = _compare([out, prod_of_others(a, (1,))], [(rng.integers(-5, 5, (n, 6)).astype(np.int32),
                                                   rng.integers(-5, 5, (6,)).astype(np.int32))
                                                  for n in (3, 8)], [a, b])
    assert "prod_of_others" not in f.source()


def _tf32(x):
    """The nearest tf32 (ties away from zero), as the tensor-core kernels round float32."""
    bits = (x.view(np.uint32) + np.uint32(0x1000)) & np.uint32(0xffffe000)
    return bits.astype(np.uint32).view(np.float32)


def test_allow_tf32_puts_float32_products_on_the_tensor_cores(graph, gpu):
    """Under allow_tf32 (function or session option) float32 matmuls round their inputs to
    tf32 and accumulate in float32; without it they stay float32 on the CUDA cores; the CPU
    device accepts the option and computes in float32."""
    x = gc.placeholder(gc.float32, (None, 70), name="x")
    w = gc.placeholder(gc.float32, (70, 33), name="w")
    b = gc.placeholder(gc.float32, (33,), name="b")
    outputs = [gc.relu(gc.matmul(x, w) + b), gc.matmul(gc.transpose(w), gc.transpose(x))]
    fast = gc.function([x, w, b], outputs, device="cuda", allow_tf32=True)
    by_session = gc.function([x, w, b], outputs,
                             session=gc.Session(device="cuda", allow_tf32=True))
    exact = gc.function([x, w, b], outputs, device="cuda")
    cpu = gc.function([x, w, b], outputs, device="cpu", allow_tf32=True)
    for f in (fast, by_session):
        assert "wmma::precision::tf32" in f.source() and "m16n16k8" in f.source()
    assert "wmma::fragment" not in exact.source()
    for n in (1, 7, 130):
        feed = (_normal(n, 70), _normal(70, 33), _normal(33))
        rounded_x, rounded_w = _tf32(feed[0]), _tf32(feed[1])
        want = [np.maximum(rounded_x @ rounded_w + feed[2], 0), rounded_w.T @ rounded_x.T]
        for f in (fast, by_session):
            for got, expected in zip(f(*feed), want):
                np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)
        full = [np.maximum(feed[0] @ feed[1] + feed[2], 0), feed[1].T @ feed[0].T]
        for f in (exact, cpu):
            for got, expected in zip(f(*feed), full):
                np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)
    difference = np.abs(fast(*feed)[1] - full[1]).max()
    assert difference > 1e-3, difference  # the rounding to tf32 shows


def test_a_bad_gather_index_is_an_index_error_and_the_function_still_works(graph, gpu):
    p = gc.placeholder(gc.float32, (7, 13), name="p")
    i = gc.placeholder(gc.int32, (None,), name="i")
    f = gc.function([p, i], gc.exp(gc.gather(p, i)) * 2.0, device="cuda")
    params = _normal(7, 13)
    for bad in (7, -1):
        with pytest.raises(gc.IndexError_, match=fr"index {bad} at position \(2,\) of the "
                                                 "indices is out of range"):
            f(params, np.array([0, 3, bad, 6], np.int32))
    good = np.array([6, 0, 2], np.int32)
    np.testing.assert_allclose(f(params, good), np.exp(params[good]) * 2.0, rtol=1e-6)


def test_variables_on_the_gpu_survive_failed_runs_and_are_shared_by_functions(graph, gpu):
    """A run that fails after its assignments were queued leaves every variable as it was;
    a second function (another plan) reads the values the first left on the GPU; the
    session's host copies (get_value, set_value) agree with the reference throughout."""
    table = gc.Variable(_normal(9, 4), name="table")
    i = gc.placeholder(gc.int32, (None,), name="i")
    rows = gc.gather(table, i)
    sessions = [gc.Session(device=d) for d in ("cuda", "reference")]
    steps = [gc.function([i], gc.sum(rows), updates=[(table, table * 0.5 + 1.0)], session=s)
             for s in sessions]
    reads = [gc.function([i], rows * 2.0, session=s) for s in sessions]
    good, bad = np.array([0, 8, 3], np.int32), np.array([1, 9], np.int32)

    def same(values):
        np.testing.assert_allclose(values[0], values[1], rtol=1e-6, atol=1e-6)
    for n in range(3):
        same([step(good) for step in steps])
        with pytest.raises(gc.IndexError_):
            steps[0](bad)
        same([read(good) for read in reads])
        if n == 1:
            same([s.get_value(table) for s in sessions])
            for s in sessions:
                s.set_value(table, np.arange(36, dtype=np.float32).reshape(9, 4))
    same([s.get_value(table) for s in sessions])


def test_a_keras_model_trains_on_cuda_as_on_the_cpu(gpu):
    """The frontend's layers, Adam and fit on device 'cuda': the same losses, weights and
    predictions as on the CPU (a conv, a pool, dense layers, dropout off, odd batch sizes)."""
    import graphc.frontend as gk
    layers = gk.layers
    x = rng.normal(size=(37, 6, 6, 2)).astype(np.float32)
    y = rng.integers(0, 3, 37).astype(np.int32)
    fits = {}
    for device in ("cuda", "cpu"):
        gk.utils.set_random_seed(4)
        model = gk.Sequential([layers.Input((6, 6, 2)),
                               layers.Conv2D(5, 3, padding="same", activation="relu"),
                               layers.MaxPooling2D(), layers.Flatten(),
                               layers.Dense(7, activation="tanh"),
                               layers.Dense(3, activation="softmax")])
        model.compile(optimizer=gk.optimizers.Adam(0.01), device=device,
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        history = model.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False)
        fits[device] = (history.history["loss"], model.get_weights(), model.predict(x[:5]))
    (loss, weights, out), (want_loss, want_weights, want_out) = fits["cuda"], fits["cpu"]
    np.testing.assert_allclose(loss, want_loss, rtol=1e-4)
    for w, v in zip(weights, want_weights):
        np.testing.assert_allclose(w, v, rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(out, want_out, rtol=1e-4, atol=1e-6)


def test_intermediates_share_the_gpus_memory_by_liveness(graph, gpu):
    """Compiled op by op, a chain's intermediates die one after another: its plan lays them
    out in one arena by liveness, in two places taken in turn, so it holds less than one
    buffer per tensor, at two batch sizes (two plans), with the reference's results."""
    x = gc.placeholder(gc.float32, (None, 1000), name="x")
    chain = [x]
    for op in (gc.exp, gc.sin, gc.cos, gc.tanh, gc.square, gc.sqrt):
        chain.append(op(chain[-1]))
    out = gc.sum(chain[-1], axis=1)
    f = gc.function([x], out, device="cuda", optimize="O0")
    want = gc.function([x], out, device="reference")
    for n in (30, 7):
        xb = _normal(n, 1000)
        np.testing.assert_allclose(f(xb), want(xb), rtol=1e-5)
        exe = f._exe
        planned, unshared = exe.plan_bytes
        assert unshared == 6 * n * 1000 * 4 + n * 4  # the intermediates and the output
        assert planned < unshared / 2
        places = {int(exe.last_plan.device[exe.slots.buffers[t.node.id, 0]]) for t in chain[1:]}
        assert len(places) == 2


def test_check_numerics_names_the_node(graph, gpu):
    x = gc.placeholder(gc.float32, (None, 5), name="x")
    out = gc.sqrt(gc.log(x, name="the_log") + 1.0) * 2.0
    f = gc.function([x], out, device="cuda", check_numerics=True)
    np.testing.assert_allclose(f(np.full((3, 5), 2.0, np.float32)), np.sqrt(np.log(2) + 1) * 2,
                               rtol=1e-6)
    with pytest.raises(gc.NumericsError, match="the_log"):
        f(np.full((3, 5), -1.0, np.float32))


# ---- on the fake driver: what a run copies and waits for --------------------------------------
@pytest.fixture
def fake(monkeypatch):
    if missing_toolchain():
        pytest.skip(f"host emulation of CUDA C: {missing_toolchain()}")

    def install(capacity=1 << 30):
        gpu = emulated_gpu(capacity)
        monkeypatch.setattr(cuda_driver, "_gpu", gpu)
        return gpu
    return install


def _counts(gpu):
    calls = gpu.driver.calls
    return {k: calls[k] for k in ("htod", "htod_async", "dtoh", "dtoh_async", "dtod_async",
                                  "synchronize", "pagelocked_empty")}


def test_variables_stay_on_the_gpu_between_runs(graph, fake):
    """A train step uploads its variables on the first run only: their new values stay on
    the GPU (the session's values name their buffers) and come down only when asked for;
    each run waits once."""
    gpu = fake()
    x = gc.placeholder(gc.float32, (None, 13), name="x")
    w = gc.Variable(_normal(13, 5) * 0.3, name="w")
    b = gc.Variable(np.zeros(5, np.float32), name="b")
    loss = gc.mean(gc.square(gc.matmul(x, w) + b))
    gw, gb = gc.grad(loss, [w, b])
    sessions = [gc.Session(device=d) for d in ("cuda", "reference")]
    steps = [gc.function([x], loss, updates=[(w, w - 0.1 * gw), (b, b - 0.1 * gb)],
                         session=s) for s in sessions]
    feed = _normal(9, 13)
    for _ in range(2):  # uploads all; then the buffer table of the swapped buffers
        np.testing.assert_allclose(steps[0](feed), steps[1](feed), rtol=1e-5)
    for run in range(3):
        before = _counts(gpu)
        got, want = steps[0](feed), steps[1](feed)
        np.testing.assert_allclose(got, want, rtol=1e-5)
        made = {k: v - before[k] for k, v in _counts(gpu).items()}
        assert made["htod"] + made["htod_async"] == 1, made  # the feed only
        assert made["dtod_async"] == 2 + 2 and made["dtoh"] == 0, made  # the assignments'
        assert made["dtoh_async"] == 1 + 1, made  # outputs and the spares; loss, error words
        assert made["synchronize"] == 1 and made["pagelocked_empty"] == 0, made
    for v in (w, b):
        np.testing.assert_allclose(sessions[0].get_value(v), sessions[1].get_value(v),
                                   rtol=1e-5, atol=1e-7)
    new = _normal(5)
    for s in sessions:  # a value the session sets goes up before the next run
        s.set_value(b, new)
    np.testing.assert_allclose(steps[0](feed), steps[1](feed), rtol=1e-5)
    np.testing.assert_allclose(sessions[0].get_value(b), sessions[1].get_value(b), rtol=1e-5)


def test_large_feeds_and_fetches_go_through_pinned_buffers(graph, fake):
    gpu = fake()
    x = gc.placeholder(gc.float32, (None, 1000), name="x")
    f = gc.function([x], [gc.exp(x) * 2.0, gc.sum(x, axis=1)], device="cuda")
    big = _normal(40, 1000)  # 160,000 bytes: staged
    f(big)  # compiles, and uploads the kernels' tables and the constant
    for _ in range(2):
        before = _counts(gpu)
        out, sums = f(big)
        made = {k: v - before[k] for k, v in _counts(gpu).items()}
        np.testing.assert_allclose(out, np.exp(big) * 2.0, rtol=1e-6)
        np.testing.assert_allclose(sums, big.sum(axis=1), rtol=1e-5, atol=1e-4)
        assert made["htod_async"] == 1 and made["htod"] == 0 and made["synchronize"] == 1
        assert made["dtoh_async"] == 3
    assert gpu.driver.calls["pagelocked_empty"] == 4  # feed, 2 fetches, error words: reused
    out[...] = 0  # the results are the caller's own
    np.testing.assert_allclose(f(big)[0], np.exp(big) * 2.0, rtol=1e-6)


def test_empty_feeds_and_results_copy_nothing(graph, fake):
    gpu = fake()
    x = gc.placeholder(gc.float32, (None, 13), name="x")
    f = gc.function([x], [gc.exp(x) * 2.0, gc.sum(x, axis=0)], device="cuda")
    for n in (0, 5, 0):
        feed = _normal(n, 13)
        out, sums = f(feed)
        assert out.shape == (n, 13) and sums.shape == (13,)
        np.testing.assert_allclose(out, np.exp(feed) * 2.0, rtol=1e-6)
        np.testing.assert_allclose(sums, feed.sum(axis=0), rtol=1e-5, atol=1e-5)
    assert gpu.driver.calls["empty"] == 0


def test_out_of_gpu_memory_is_a_resource_error_and_the_session_goes_on(graph, fake):
    fake(capacity=1 << 20)
    x = gc.placeholder(gc.float32, (None, 1000), name="x")
    f = gc.function([x], gc.tanh(x) + 1.0, device="cuda")
    with pytest.raises(gc.ResourceError, match=r"out of GPU memory: buffer \d+ \(float32"
                                               r"\[400, 1000\].* needs 1,600,000 bytes; "
                                               r"[\d,]+ of the GPU's 1,048,576 bytes are free"):
        f(_normal(400, 1000))
    small = _normal(30, 1000)
    np.testing.assert_allclose(f(small), np.tanh(small) + 1.0, rtol=1e-6, atol=1e-6)


def test_a_fault_on_the_gpu_is_a_device_error(graph, fake, monkeypatch):
    """A kernel's fault (an illegal address, say) shows when the run waits for the GPU."""
    gpu = fake()
    x = gc.placeholder(gc.float32, (None, 10), name="x")
    f = gc.function([x], gc.tanh(x) + 1.0, device="cuda")

    def fault():
        raise gpu.driver.Error("cuStreamSynchronize failed: an illegal memory access was "
                               "encountered")
    monkeypatch.setattr(gpu.stream, "synchronize", fault)
    with pytest.raises(gc.DeviceError, match="the GPU failed while running graphc's kernels: "
                                             "cuStreamSynchronize failed: an illegal memory"):
        f(_normal(3, 10))


def test_device_memory_goes_back_in_the_gpus_context(graph, fake):
    """pycuda aborts the process when a pooled block is dropped with no context current (and
    the pool holds no other): the buffers of a run that ran out of memory, and those of a
    function dropped between runs, go back in the GPU's context."""
    gpu = fake(capacity=1 << 20)
    x = gc.placeholder(gc.float32, (None, 1000), name="x")
    f = gc.function([x], gc.tanh(x) + 1.0, device="cuda")
    with pytest.raises(gc.ResourceError):
        f(_normal(400, 1000))
    f(_normal(30, 1000))
    used = gpu.driver.used
    del f
    python_gc.collect()
    assert gpu.driver.used < used and gpu.driver.depth == 0
    assert gpu.driver.calls["dropped_without_context"] == 0


def test_every_matmul_is_native_and_half_ones_use_the_tensor_cores(graph, gpu):
    """float16 and bfloat16 matmuls render to wmma (inputs half, float32 sums, rounded once),
    integer ones wrap around as numpy's, 1-D operands and broadcast batches as numpy's; no
    matmul is left to the host."""
    x16 = gc.placeholder(gc.float16, (None, 70), name="x16")
    w16 = gc.placeholder(gc.float16, (70, 33), name="w16")
    a_bf = gc.placeholder(gc.bfloat16, (3, 20, 40), name="a_bf")
    v_bf = gc.placeholder(gc.bfloat16, (40,), name="v_bf")
    xi = gc.placeholder(gc.int32, (None, 13), name="xi")
    wi = gc.placeholder(gc.int32, (13,), name="wi")
    inputs = [x16, w16, a_bf, v_bf, xi, wi]
    outputs = [gc.relu(gc.matmul(x16, w16)), gc.matmul(a_bf, gc.transpose(a_bf, (0, 2, 1))),
               gc.matmul(a_bf, v_bf), gc.matmul(v_bf, gc.transpose(a_bf, (0, 2, 1))),
               gc.matmul(xi, wi), gc.matmul(wi, wi)]
    f = gc.function(inputs, outputs, device="cuda")
    assert not [s for s in f._exe.steps if isinstance(s, HostStep)]
    source = f.source("cuda")
    for cores in ("wmma::mma_sync", "16, __half, wmma::row_major", "__nv_bfloat16, wmma"):
        assert cores in source, cores
    want = gc.function(inputs, outputs, device="reference")
    for n in (1, 7, 33):
        feed = [rng.uniform(-1, 1, (n, 70)).astype(np.float16),
                rng.uniform(-1, 1, (70, 33)).astype(np.float16),
                _normal(3, 20, 40), _normal(40),
                rng.integers(-2 ** 20, 2 ** 20, (n, 13)).astype(np.int32),
                rng.integers(-2 ** 20, 2 ** 20, (13,)).astype(np.int32)]
        for g, w, t in zip(f(*feed), want(*feed), outputs):
            assert g.dtype == w.dtype and g.shape == w.shape
            if t.dtype.is_integer:
                np.testing.assert_array_equal(g, w)
            else:  # one rounding of the dtype apart at most
                tol = {"float16": 2e-3, "bfloat16": 1e-2}[t.dtype.name]
                np.testing.assert_allclose(g, w, rtol=tol, atol=tol * np.abs(w).max())


def test_convolutions_read_their_patches_in_place(graph, gpu):
    """No patches copy and no scratch for it on the GPU: the products gather the patches from
    x (implicit GEMM); a conv, its bias and relu and both gradients match the reference."""
    x = gc.placeholder(gc.float32, (None, 11, 10, 3), name="x")
    f = gc.placeholder(gc.float32, (3, 3, 3, 20), name="f")
    y = gc.relu(gc.nn.conv2d(x, f, strides=2, padding="SAME"))
    dx, df = gc.grad(gc.sum(y * y), [x, f])
    fn = _compare([y, dx, df], [[_normal(n, 11, 10, 3), _normal(3, 3, 3, 20)] for n in (1, 7)],
                  [x, f], rtol=1e-4, atol=1e-4)
    assert fn._exe.unused_slots
    plans = list(fn._exe._plans.values())
    assert plans and all(plan.device[s] is None for plan in plans for s in fn._exe.unused_slots)
    assert "_row" in fn.source("cuda")
