"""W1, W2, W3b, W4 and W5 on device "cuda", beside the same work in PyTorch on the same GPU and
the GPU's device-to-device copy bandwidth, all measured in one run (interleaved, medians).

Every timed sample ends with a wait for the GPU: graphc's run waits once at the end of each
call, and the samples of kernels alone and of PyTorch synchronize after their calls. How each
figure is taken:
- copy-cuda: a cuMemcpyDtoD of 1 GiB between two device buffers (graphc's Gpu.copy: pycuda's
  memcpy_dtod_async on graphc's stream). GB/s counts the bytes read and written, 2 x 1 GiB per
  copy, as numpy's and CUDA's bandwidth figures do. The torch column: dst.copy_(src), same size.
- W1, W2 (GB/s, 8 bytes per element: x read, y written, as the CPU scripts count): x is a
  gc.Variable, so it stays on the GPU between runs. "graphc" is the function's kernels alone,
  launched back to back on the buffers of its last call, nothing copied: what the targets
  judge. "graphc_call" is the whole call, which also copies y to the host, so the host link
  bounds it, not the GPU's memory. Targets: 80% of copy-cuda, and PyTorch's eager expression.
- W3b (GFLOP/s, 2 n^3): x @ W at 4096^3, x and W variables, kernels alone and whole call as
  W1. float32 with allow_tf32=False beside torch.matmul with tf32 off (target: 50% of it);
  bfloat16 beside torch.matmul in bfloat16 (target: 40%).
- W4, W5 (steps/s): the CPU scripts' train steps (same graphs, same shapes), whole calls: x
  and y fed, the loss fetched, the updates applied. Beside PyTorch eager's step on the same
  model (SGD, CrossEntropyLoss); target: PyTorch's figure.
PyTorch runs with tf32 off everywhere (matmul and cuDNN), so both sides compute in float32.

"numpy" and "ratio" are null: numpy runs on the host, so its figure says nothing about a GPU.
Each line has instead "ratio_vs_torch" (and "ratio_vs_copy" for W1, W2); "target" is the
largest of its targets that this run could measure, "unchecked" names those it could not (no
PyTorch on the GPU), and "met" says whether "graphc" reaches "target".

Without pycuda or a GPU: one line per workload with "skipped" and the reason, exit status 0.
GRAPHC_BENCH_FAKE_GPU=1 with --quick (for the tests) runs everything on the test suite's
host-emulated GPU (the CUDA C compiled for the host): the script's paths run end to end, the
timings mean nothing, and its lines say "fake_gpu": true.
Usage: python benchmarks/gpu_workloads.py [--quick] [--no-peers]
"""
import importlib.util
import os
import sys

import numpy as np

import _peers
import graphc as gc
from _common import HERE, arguments, check_close, emit, guarded, interleaved, result
from graphc.compiler import NativeStep
from graphc.ir import dtypes
from graphc.runtime import cuda_driver
from w1_elementwise import numpy_w1
from w2_softmax import numpy_softmax
from w4_mlp import batch, mlp_graph, numpy_mlp_step
from w4_mlp import initial_params as mlp_params
from w5_cnn import cnn_graph, numpy_cnn_step
from w5_cnn import initial_params as cnn_params

FAKED = os.environ.get("GRAPHC_BENCH_FAKE_GPU") == "1"  # the tests' host-emulated GPU
NUMPY_NOTE = "null: numpy runs on the host; these figures are judged against PyTorch on the GPU"
# id -> (what it is, {reference: the fraction of its figure that graphc's must reach})
WORKLOADS = {
    "copy-cuda": ("device-to-device copy, cuMemcpyDtoD", {}),
    "W1-cuda": ("fused elementwise", {"copy": 0.8, "torch": 1.0}),
    "W2-cuda": ("softmax rows", {"copy": 0.8, "torch": 1.0}),
    "W3b-cuda-float32": ("matmul float32, tf32 off", {"torch": 0.5}),
    "W3b-cuda-bfloat16": ("matmul bfloat16", {"torch": 0.4}),
    "W4-cuda": ("MLP train step", {"torch": 1.0}),
    "W5-cuda": ("CNN train step", {"torch": 1.0}),
}
FULL = {"copy_bytes": 1 << 30, "n": 1 << 24, "rows": 4096, "cols": 4096, "matmul": 4096,
        "mlp": ((784, 512, 512, 10), 128), "cnn_batch": 64, "repeats": 9,
        "calls": {"copy": 10, "W1": 20, "W2": 20, "float32": 3, "bfloat16": 10, "W4": 20,
                  "W5": 20}}
QUICK = {"copy_bytes": 1 << 20, "n": 1000, "rows": 7, "cols": 1023, "matmul": 130,
         "mlp": ((64, 32, 32, 10), 16), "cnn_batch": 4, "repeats": 3,
         "calls": {k: 1 for k in FULL["calls"]}}
LR = 0.01


# ---- the GPU and PyTorch -----------------------------------------------------------------------
def start_gpu():
    """(graphc's Gpu, None), or (None, why there is none: the DeviceError's message)."""
    if FAKED:
        sys.path.insert(0, os.path.dirname(HERE))
        from tests.codegen.cuda.fake_driver import emulated_gpu
        cuda_driver._gpu = emulated_gpu()
    try:
        return cuda_driver.gpu(), None
    except gc.DeviceError as error:
        return None, str(error)


def start_torch(no_peers):
    """(torch, None) when PyTorch runs on a GPU in this interpreter, else (None, why not)."""
    if no_peers:
        return None, "--no-peers"
    if importlib.util.find_spec("torch") is None:
        return None, "torch cannot be imported here"
    import torch
    if not torch.cuda.is_available():
        return None, f"torch {torch.__version__} finds no CUDA GPU"
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return torch, None


class Bench:
    """What every workload's measure shares: the GPU, PyTorch (or why not), sizes, and the
    copy bandwidth once measured."""

    def __init__(self, gpu, torch, torch_note, sizes):
        self.gpu, self.torch, self.sizes = gpu, torch, sizes
        self.copy_gbps = None
        if FAKED:
            self.details = {"device": "host-emulated GPU (timings mean nothing)",
                            "fake_gpu": True}
        else:
            self.details = {"device": gpu.device.name()}
        if torch is None:
            self.details["torch_note"] = torch_note
        else:
            self.details["peer_versions"] = f"torch {torch.__version__} on " \
                                            f"{torch.cuda.get_device_name()}"

    def timed(self, key, contenders):
        """{name: median seconds per call}; each contender is fn(calls) making `calls` calls
        and waiting for the GPU, called with this workload's calls per sample."""
        calls = self.sizes["calls"][key]
        seconds = interleaved({name: (lambda fn=fn: fn(calls)) for name, fn in
                               contenders.items() if fn is not None}, self.sizes["repeats"])
        return {name: t / calls for name, t in seconds.items()}

    def torch_calls(self, workload, sizes):
        """fn(calls) running PyTorch's `workload` on the GPU, or None without PyTorch."""
        if self.torch is None:
            return None
        step = _peers._torch(workload, sizes, device="cuda")
        return self.repeated(step, self.torch.cuda.synchronize)

    @staticmethod
    def repeated(fn, wait=lambda: None):
        def run(calls):
            for _ in range(calls):
                fn()
            wait()
        return run

    def judged(self, id, workload, unit, figures, **details):
        """result() of figures["graphc"] against the id's targets, each a fraction of a figure
        measured in this run (the copy bandwidth, PyTorch's)."""
        references = {"copy": self.copy_gbps, "torch": figures.get("torch")}
        fractions = WORKLOADS[id][1]
        required = [f * references[name] for name, f in fractions.items() if references[name]]
        mine = figures["graphc"]
        ratios = {f"ratio_vs_{name}": four_digits(mine / references[name])
                  for name in fractions if mine is not None and references[name]}
        extra = {name: four_digits(value) for name, value in figures.items()
                 if name not in ("graphc", "torch")}
        if "copy" in fractions:
            extra["copy_gbps"] = four_digits(references["copy"])
        return result(id, workload, unit, mine, None, max(required, default=None),
                      peers={"torch": references["torch"]}, numpy_note=NUMPY_NOTE,
                      targets=fractions, **ratios,
                      unchecked=[name for name in fractions if not references[name]],
                      **extra, **details, **self.details)


def four_digits(x):
    return None if x is None else float(f"{x:.4g}")


def kernels_alone(f):
    """fn(calls): f's kernels launched `calls` times on the device buffers of its last call,
    then one wait for the GPU: the GPU's time without the call's copies and Python. None when
    f has steps that run on the host (their time would be left out)."""
    exe = f._exe
    if not all(isinstance(step, NativeStep) for step in exe.steps) or len(exe._plans) != 1:
        return None
    [plan] = exe._plans.values()
    gpu = cuda_driver.gpu()

    def run(calls):
        with gpu.current():
            for _ in range(calls):
                for step in exe.steps:
                    plan.launch(step)
            gpu.synchronize()
    return run


def program_details(f):
    """What f's program runs: kernels, assignments copied on the GPU, and steps run on the
    host (through the reference, their data copied down and back up)."""
    exe = f._exe
    [plan] = exe._plans.values()
    others = [s for s in exe.steps if not isinstance(s, NativeStep)]
    on_device = sum(exe._assigns_on_device(s.group, plan) for s in others)
    return {"kernels": sum(len(s.kernels) for s in exe.steps if isinstance(s, NativeStep)),
            "assignments_on_gpu": on_device, "host_steps": len(others) - on_device}


def cuda_session(graph):
    return gc.Session(graph, device="cuda", allow_tf32=False)


# ---- the workloads -----------------------------------------------------------------------------
def measure_copy(bench):
    nbytes, gpu, torch = bench.sizes["copy_bytes"], bench.gpu, bench.torch
    with gpu.current():
        source, destination = (gpu.allocate(nbytes, "the copy benchmark") for _ in range(2))

    def copies(calls):
        with gpu.current():
            for _ in range(calls):
                gpu.copy(destination, source, nbytes)
            gpu.synchronize()
    contenders = {"graphc": copies, "torch": None}
    if torch is not None:
        src, dst = (torch.empty(nbytes, dtype=torch.uint8, device="cuda") for _ in range(2))
        contenders["torch"] = bench.repeated(lambda: dst.copy_(src), torch.cuda.synchronize)
    seconds = bench.timed("copy", contenders)
    gbps = {who: 2 * nbytes / t / 1e9 for who, t in seconds.items()}
    bench.copy_gbps = gbps["graphc"]
    return [result("copy-cuda", f"device-to-device copy of {nbytes} bytes (cuMemcpyDtoD), "
                   "2 x bytes per copy", "GB/s", gbps["graphc"], None, None,
                   peers={"torch": gbps.get("torch")}, numpy_note=NUMPY_NOTE,
                   measured="graphc: Gpu.copy (pycuda memcpy_dtod_async); torch: copy_",
                   bytes=nbytes, **bench.details)]


KERNELS_NOTE = ("graphc: the function's kernels alone on its device buffers (inputs are "
                "variables, resident); graphc_call: whole calls, the output copied to the host")


def resident_figures(bench, key, f, torch_calls, scale):
    """{"graphc": kernels alone, "graphc_call": whole calls, "torch": ...}, each `scale` /
    seconds per call."""
    seconds = bench.timed(key, {"graphc": kernels_alone(f), "graphc_call": bench.repeated(f),
                                "torch": torch_calls})
    figures = {who: scale / t for who, t in seconds.items()}
    figures.setdefault("graphc", None)
    return figures


def measure_w1(bench):
    n = bench.sizes["n"]
    xb = np.random.default_rng(0).standard_normal(n, dtype=np.float32)
    g = gc.Graph()
    with g.as_default():
        x = gc.Variable(xb, name="x")
        f = gc.function([], gc.tanh(x) * gc.sigmoid(x) + 0.5 * x * x - gc.exp(-gc.abs(x)),
                        session=cuda_session(g))
    check_close("W1-cuda", f(), numpy_w1(xb), rtol=1e-5, atol=1e-6)
    figures = resident_figures(bench, "W1", f, bench.torch_calls("W1", {"n": n}), 8 * n / 1e9)
    return [bench.judged("W1-cuda", f"tanh(x)*sigmoid(x) + 0.5*x*x - exp(-abs(x)), "
                         f"float32[{n}]", "GB/s", figures, measured=KERNELS_NOTE, n=n,
                         **program_details(f))]


def measure_w2(bench):
    rows, cols = bench.sizes["rows"], bench.sizes["cols"]
    xb = np.random.default_rng(0).standard_normal((rows, cols), dtype=np.float32)
    g = gc.Graph()
    with g.as_default():
        x = gc.Variable(xb, name="x")
        f = gc.function([], gc.nn.softmax(x, axis=-1), session=cuda_session(g))
    check_close("W2-cuda", f(), numpy_softmax(xb), rtol=1e-4, atol=1e-7)
    torch_calls = bench.torch_calls("W2", {"rows": rows, "cols": cols})
    figures = resident_figures(bench, "W2", f, torch_calls, 8 * rows * cols / 1e9)
    return [bench.judged("W2-cuda", f"softmax over the last axis, float32[{rows}, {cols}]",
                         "GB/s", figures, measured=KERNELS_NOTE, shape=[rows, cols],
                         **program_details(f))]


def measure_w3b(bench, dtype):
    n = bench.sizes["matmul"]
    rng = np.random.default_rng(n)
    a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
    if dtype == "bfloat16":  # stored as float32, rounded to bfloat16 (graphc's host form)
        a, b = dtypes.round_bfloat16(a), dtypes.round_bfloat16(b)
    g = gc.Graph()
    with g.as_default():
        x = gc.Variable(a, name="x", dtype=dtype)
        w = gc.Variable(b, name="W", dtype=dtype)
        f = gc.function([], x @ w, session=cuda_session(g))
    want = a @ b
    if dtype == "bfloat16":
        want = dtypes.round_bfloat16(want)
    tol = {"float32": 1e-4, "bfloat16": 1e-2}[dtype]
    check_close(f"W3b-cuda-{dtype}", f(), want, rtol=tol, atol=tol * float(np.abs(want).max()))
    torch_calls = bench.torch_calls("W3b", {"n": n, "dtype": dtype})
    figures = resident_figures(bench, dtype, f, torch_calls, 2 * n ** 3 / 1e9)
    return [bench.judged(f"W3b-cuda-{dtype}", f"x @ W, {dtype} {n}^3, allow_tf32=False",
                         "GFLOP/s", figures, measured=KERNELS_NOTE, size=n, dtype=dtype,
                         **program_details(f))]


def measure_train_step(bench, id, graph, numpy_step, params, x, y, torch_sizes):
    """A train step's whole calls (x, y fed, loss fetched) against PyTorch's step; the first
    two losses must agree with numpy's step from the same weights."""
    g, inputs, loss, updates = graph
    f = gc.function(inputs, loss, updates=updates, session=cuda_session(g))
    mine = [p.copy() for p in params]
    for _ in range(2):
        check_close(f"{id} loss", f(x, y), numpy_step(mine, x, y, LR), rtol=1e-4, atol=1e-5)
    key = id.split("-")[0]
    seconds = bench.timed(key, {"graphc": bench.repeated(lambda: f(x, y)),
                                "torch": bench.torch_calls(key, torch_sizes)})
    return {who: 1 / t for who, t in seconds.items()}, program_details(f)


STEP_NOTE = "graphc: whole calls (x, y fed, loss fetched, updates applied); torch: eager steps"


def measure_w4(bench):
    sizes, batch_size = bench.sizes["mlp"]
    params = mlp_params(sizes)
    x, y = batch((batch_size, sizes[0]), sizes[-1])
    figures, program = measure_train_step(
        bench, "W4-cuda", mlp_graph(sizes, params, LR), numpy_mlp_step, params, x, y,
        {"sizes": list(sizes), "batch": batch_size, "lr": LR})
    return [bench.judged("W4-cuda", f"MLP {'-'.join(map(str, sizes))} SGD train step, batch "
                         f"{batch_size}", "steps/s", figures, measured=STEP_NOTE, **program)]


def measure_w5(bench):
    batch_size = bench.sizes["cnn_batch"]
    params = cnn_params()
    x, y = batch((batch_size, 28, 28, 1), 10)
    figures, program = measure_train_step(
        bench, "W5-cuda", cnn_graph(params, LR), numpy_cnn_step, params, x, y,
        {"batch": batch_size, "lr": LR})
    return [bench.judged("W5-cuda", "CNN conv3x3x32-pool-conv3x3x64-pool-dense10 SGD train "
                         f"step, batch {batch_size}, 28x28x1", "steps/s", figures,
                         measured=STEP_NOTE, **program)]


MEASURES = {
    "copy-cuda": measure_copy,
    "W1-cuda": measure_w1,
    "W2-cuda": measure_w2,
    "W3b-cuda-float32": lambda bench: measure_w3b(bench, "float32"),
    "W3b-cuda-bfloat16": lambda bench: measure_w3b(bench, "bfloat16"),
    "W4-cuda": measure_w4,
    "W5-cuda": measure_w5,
}


if __name__ == "__main__":
    args = arguments(__doc__)
    gpu, why_not = start_gpu()
    if gpu is None:
        for id, (workload, _) in WORKLOADS.items():
            emit({"id": id, "workload": workload, "skipped": why_not})
        sys.exit(0)
    sizes = QUICK if args.quick else FULL
    if FAKED:  # its timings mean nothing: one sample runs the paths
        sizes = dict(sizes, repeats=1)
    bench = Bench(gpu, *start_torch(args.no_peers), sizes)
    for id, measure in MEASURES.items():  # the copy first: W1's and W2's targets need it
        guarded(id, WORKLOADS[id][0], lambda: measure(bench))
