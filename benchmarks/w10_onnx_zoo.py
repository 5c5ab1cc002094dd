"""W10: the light model-zoo networks shipped inside the onnx package, batch 1, through
gc.onnx.load on device "cpu", beside onnxruntime with 1 and 2 threads (interleaved, medians)
where onnxruntime is installed (a test-only dependency, never needed by graphc). Both run the
same random input; their outputs must agree before anything is timed.

Prints one JSON line per network (ms per inference; the seconds to load, compile and run once
with an empty kernel cache; the largest difference from onnxruntime's output), a W10-load line
for ResNet-50's cold load and, with onnxruntime, a W10-geomean line: graphc's latencies over
onnxruntime's (2 threads), geometric mean and worst. Targets: each network at most 1.5x onnxruntime's 2-thread latency, the
geometric mean at most 1, ResNet-50's cold load and compile under 5 s.
Usage: python benchmarks/w10_onnx_zoo.py [--quick] [--no-peers] [--networks a,b] [--device D]
"""
import importlib.util
import math
import os
import tempfile
import time

import numpy as np

from _common import arguments, guarded, interleaved, result

DEFAULT = "squeezenet,bvlc_alexnet,inception_v1,resnet50"
COLD_LOAD_TARGET_S = 5.0


def light_path(name):
    import onnx
    return os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light",
                        f"light_{name}.onnx")


def onnxruntime_sessions(path):
    """{"onnxruntime_1t": run, "onnxruntime_2t": run}: callables of one input array."""
    import onnxruntime as ort
    runs = {}
    for threads in (1, 2):
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        runs[f"onnxruntime_{threads}t"] = lambda x, s=session, n=name: s.run(None, {n: x})[0]
    return runs


def input_shape(path):
    """The shape of the model's one input that is not an initializer (batch 1)."""
    import onnx
    graph = onnx.load(path).graph
    initialized = {t.name for t in graph.initializer}
    info = next(i for i in graph.input if i.name not in initialized)
    return tuple(d.dim_value or 1 for d in info.type.tensor_type.shape.dim)


def measure(name, device, repeats, peers):
    import graphc as gc
    path = light_path(name)
    x = np.random.default_rng(0).random(input_shape(path), dtype=np.float32)
    with tempfile.TemporaryDirectory() as cache:  # cold: an empty kernel cache
        previous = os.environ.get("GRAPHC_CACHE_DIR")
        os.environ["GRAPHC_CACHE_DIR"] = cache
        try:
            start = time.perf_counter()
            model = gc.onnx.load(path, device=device)
            y = model.run({model.input_names[0]: x})[0]
            compile_s = time.perf_counter() - start
        finally:
            if previous is None:
                del os.environ["GRAPHC_CACHE_DIR"]
            else:
                os.environ["GRAPHC_CACHE_DIR"] = previous
    contenders = {"graphc": lambda: model.run({model.input_names[0]: x})}
    details = {"network": name, "device": device, "load_compile_s": round(compile_s, 2)}
    if peers:
        for who, run in onnxruntime_sessions(path).items():
            diff = float(np.max(np.abs(run(x) - y)))
            details[f"max_abs_diff_{who}"] = diff
            if not np.allclose(run(x), y, rtol=1e-3, atol=1e-4):
                raise AssertionError(f"{name}: graphc and {who} differ by up to {diff:.3g}")
            contenders[who] = lambda run=run: run(x)
    ms = {who: round(1000 * s, 3) for who, s in interleaved(contenders, repeats).items()}
    ort = ms.get("onnxruntime_2t")
    return result("W10", f"{name} (onnx light model zoo), batch 1", "ms", ms["graphc"], None,
                  None if ort is None else 1.5 * ort, better="lower", repeats=repeats,
                  onnxruntime_1t_ms=ms.get("onnxruntime_1t"), onnxruntime_2t_ms=ort,
                  **details)


def cold_load(record):
    """ResNet-50's cold load and compile (an empty kernel cache), against the 5 s target."""
    return result("W10-load", "resnet50 (onnx light model zoo): gc.onnx.load and the first run, "
                  "cold", "s", record["load_compile_s"], None, COLD_LOAD_TARGET_S, better="lower",
                  device=record["device"])


def geomean(records):
    ratios = [r["graphc"] / r["onnxruntime_2t_ms"] for r in records]
    mean = math.exp(sum(map(math.log, ratios)) / len(ratios))
    return result("W10-geomean", "graphc latency / onnxruntime's (2 threads), geometric mean "
                  f"over {len(ratios)} networks", "ratio", mean, None, 1.0, better="lower",
                  worst=round(max(ratios), 3))


if __name__ == "__main__":
    def extra(parser):
        parser.add_argument("--networks", default=DEFAULT, help="comma-separated")
        parser.add_argument("--device", default="cpu")
    args = arguments(__doc__, extra)
    names = "squeezenet" if args.quick else args.networks
    repeats = 2 if args.quick else 10
    peers = not args.no_peers and importlib.util.find_spec("onnxruntime") is not None
    records = []

    def measured(name):
        records.append(measure(name, args.device, repeats, peers))
        return records[-1:]
    for name in names.split(","):
        guarded("W10", name, lambda: measured(name))
    for record in records:
        if record["network"] == "resnet50":
            guarded("W10-load", "resnet50 cold load", lambda: [cold_load(record)])
    if peers and records:
        guarded("W10-geomean", "geometric mean", lambda: [geomean(records)])
