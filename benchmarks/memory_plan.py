"""The CPU device's memory plan on the W4 and W5 train steps: the bytes of buffers a plan
holds (intermediates sharing storage by liveness, in place where safe) next to the bytes of one
buffer per tensor (what plans held before). Feeds, variables and constants are not counted.

Prints one JSON line per workload. Usage: python benchmarks/memory_plan.py [--quick]
"""
import graphc as gc
import w4_mlp
import w5_cnn
from _common import arguments, emit


def plan_bytes(graph, inputs, loss, updates, feeds):
    """(planned bytes, bytes with one buffer per tensor) after one train step."""
    f = gc.function(inputs, loss, updates=updates, session=gc.Session(graph, device="cpu"))
    f(*feeds)
    return f._exe.plan_bytes


def workloads(quick):
    sizes, batch = ((64, 32, 32, 10), 16) if quick else (w4_mlp.SIZES, w4_mlp.BATCH)
    params = w4_mlp.initial_params(sizes)
    yield ("W4", f"MLP {'-'.join(map(str, sizes))} SGD train step, batch {batch}",
           w4_mlp.mlp_graph(sizes, params, w4_mlp.LR),
           w4_mlp.batch((batch, sizes[0]), sizes[-1]))
    batch = 4 if quick else w5_cnn.BATCH
    yield ("W5", f"CNN train step, batch {batch}",
           w5_cnn.cnn_graph(w5_cnn.initial_params(), w5_cnn.LR),
           w4_mlp.batch((batch, 28, 28, 1), 10))


if __name__ == "__main__":
    args = arguments(__doc__)
    for id, workload, step, feeds in workloads(args.quick):
        planned, unshared = plan_bytes(*step, feeds)
        emit({"id": f"{id}-memory", "workload": workload, "unit": "bytes",
              "planned": planned, "one_buffer_per_tensor": unshared,
              "ratio": round(planned / unshared, 3)})
