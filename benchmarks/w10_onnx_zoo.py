"""ONNX light model-zoo networks at batch 1: graphc (device cpu) beside onnxruntime with 1 and
2 threads, when a peer Python ($GRAPHC_PEER_PYTHON, a venv with onnxruntime; never a graphc
dependency) is given. Prints one JSON line per network: load+compile seconds, median latency
in ms, max |graphc - onnxruntime| of the outputs.

    python benchmarks/onnx_zoo.py [--networks squeezenet,bvlc_alexnet] [--repeats 10]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

DEFAULT = "squeezenet,bvlc_alexnet,inception_v1,resnet50"
PEER = r"""
import json, sys, time, numpy as np, onnxruntime as ort
path, inp, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
x = np.load(inp)
out = {}
for threads in (1, 2):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    y = s.run(None, {name: x})[0]
    times = []
    for _ in range(repeats):
        t = time.perf_counter(); s.run(None, {name: x}); times.append(time.perf_counter() - t)
    out[f"ort_{threads}t_ms"] = 1000 * float(np.median(times))
np.save(inp + ".out.npy", y)
print(json.dumps(out))
"""


def main():
    import onnx
    import graphc as gc
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--networks", default=DEFAULT)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    light = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
    peer = os.environ.get("GRAPHC_PEER_PYTHON")
    for name in args.networks.split(","):
        path = os.path.join(light, f"light_{name}.onnx")
        t = time.perf_counter()
        m = gc.onnx.load(path, device=args.device)
        (vi,) = [i for i in onnx.load(path).graph.input if i.name == m.input_names[0]]
        shape = tuple(d.dim_value or 1 for d in vi.type.tensor_type.shape.dim)
        x = np.random.RandomState(0).rand(*shape).astype(np.float32)
        y = m.run({m.input_names[0]: x})[0]
        compile_s = time.perf_counter() - t
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            m.run({m.input_names[0]: x})
            times.append(time.perf_counter() - t)
        record = {"network": name, "device": args.device, "batch": 1,
                  "load_compile_s": round(compile_s, 2),
                  "graphc_ms": round(1000 * float(np.median(times)), 2)}
        if peer:
            with tempfile.TemporaryDirectory() as d:
                inp = os.path.join(d, "x.npy")
                np.save(inp, x)
                run = subprocess.run([peer, "-c", PEER, path, inp, str(args.repeats)],
                                     capture_output=True, text=True)
                if run.returncode == 0:
                    record.update({k: round(v, 2) for k, v in
                                   json.loads(run.stdout.strip().splitlines()[-1]).items()})
                    record["max_abs_diff_vs_ort"] = float(np.abs(np.load(inp + ".out.npy") - y).max())
                else:
                    record["ort_error"] = run.stderr.strip().splitlines()[-1:]
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    sys.exit(main())
