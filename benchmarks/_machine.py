"""What the machine can do: its FP32 FMA peak and its stream bandwidth, measured with small native
kernels (LLVM IR emitted here, compiled by llvmlite for the host CPU's features), so that every
benchmark figure is also read as a fraction of the limit that bounds it.

- FMA peak: independent chains acc = fma(acc, a, b) on the widest vector registers the CPU has
  (<16 x float> with AVX-512, <8 x float> with AVX, else <4 x float>), enough chains to cover
  the FMA latency on every FMA unit, all in registers; run on one thread and on one thread per
  core at once (ctypes releases the GIL), best of a few runs. GFLOP/s counts 2 per lane per FMA.
- Stream bandwidth: copy (a = b) and triad (a = b + s*c) on float32 arrays much larger than the
  last-level cache, on one thread and on all; GB/s counts bytes read and written (copy 8,
  triad 12 per element, as STREAM does; ordinary stores, no write-allocate counted).

`machine()` measures once per process; a full measurement is also kept for an hour in
build/bench_machine.json (keyed by CPU model, core count and features), so that the scripts of
one `make bench` share the figures that `benchmarks/machine.py` printed first. With --quick a
tiny measurement (milliseconds, arrays that fit in cache) is made instead, marked "quick": true,
and never stored: its figures only show that the fields are there.
"""
import ctypes
import json
import os
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.path.join(os.path.dirname(HERE), "build", "bench_machine.json")
CACHE_MAX_AGE_S = 3600
_measured = {}  # quick (bool) -> the record, once per process


# ---- the host ----------------------------------------------------------------------------------
def cpu_model():
    """The "model name" of /proc/cpuinfo, with family/model/stepping when the name is vague."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break  # the first processor is enough
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        import platform
        return platform.processor() or platform.machine()
    name = fields.get("model name", "unknown")
    if "cpu family" in fields:
        name += f" (family {fields['cpu family']} model {fields.get('model', '?')}" \
                f" stepping {fields.get('stepping', '?')})"
    return name


def cores():
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def last_level_cache_bytes():
    """The largest data/unified cache of cpu0 per /sys, else 32 MiB."""
    best = 0
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for entry in os.listdir(base):
            try:
                with open(os.path.join(base, entry, "type")) as f:
                    if f.read().strip() == "Instruction":
                        continue
                with open(os.path.join(base, entry, "size")) as f:
                    text = f.read().strip()
            except OSError:
                continue
            scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
            best = max(best, int(text.rstrip("KMG")) * scale)
    except OSError:
        pass
    return best or 32 << 20


# ---- the kernels -------------------------------------------------------------------------------
def _llvm():
    import llvmlite.binding as llvm
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    return llvm


def vector_lanes(features):
    """float32 lanes of the widest vector register."""
    return 16 if "avx512f" in features else 8 if "avx" in features else 4


def _ir(lanes, chains, unroll):
    v = f"<{lanes} x float>"
    splat = (f"  %{{0}}0 = insertelement {v} undef, float %{{0}}, i32 0\n"
             f"  %v{{0}} = shufflevector {v} %{{0}}0, {v} undef, <{lanes} x i32> zeroinitializer\n")
    body, prev = [], [f"%c{j}" for j in range(chains)]
    for u in range(unroll):
        cur = [f"%c{j}_{u}" for j in range(chains)]
        body += [f"  {c} = call {v} @llvm.fma.v{lanes}f32({v} {p}, {v} %va, {v} %vb)"
                 for c, p in zip(cur, prev)]
        prev = cur
    phis = [f"  %c{j} = phi {v} [%va, %entry], [{prev[j]}, %loop]" for j in range(chains)]
    total = prev[0]
    sums = []
    for j in range(1, chains):
        sums.append(f"  %s{j} = fadd {v} {total}, {prev[j]}")
        total = f"%s{j}"
    attrs = f'"min-legal-vector-width"="{32 * lanes}" "prefer-vector-width"="{32 * lanes}"'
    loop = "\n".join(phis + body)
    newline = "\n"
    copy_body = _unrolled(v, 4, "  %x{k} = load {v}, {v}* %sp{k}, align 4\n"
                                "  store {v} %x{k}, {v}* %dp{k}, align 4")
    triad_body = _unrolled(v, 4, "  %x{k} = load {v}, {v}* %sp{k}, align 4\n"
                                 "  %tp{k} = getelementptr {v}, {v}* %t, i64 %i{k}\n"
                                 "  %y{k} = load {v}, {v}* %tp{k}, align 4\n"
                                 f"  %z{{k}} = call {{v}} @llvm.fma.v{lanes}f32("
                                 "{v} %y{k}, {v} %vs, {v} %x{k})\n"
                                 "  store {v} %z{k}, {v}* %dp{k}, align 4")
    return f"""
declare {v} @llvm.fma.v{lanes}f32({v}, {v}, {v})

define void @fma_peak(i64 %iters, float %a, float %b, float* %out) #0 {{
entry:
{splat.format('a')}{splat.format('b')}  br label %loop
loop:
  %i = phi i64 [0, %entry], [%inext, %loop]
{loop}
  %inext = add i64 %i, 1
  %done = icmp uge i64 %inext, %iters
  br i1 %done, label %exit, label %loop
exit:
{newline.join(sums)}
  %p = bitcast float* %out to {v}*
  store {v} {total}, {v}* %p, align 4
  ret void
}}

; dst[i] = src[i], i < n (n a multiple of {4 * lanes})
define void @stream_copy(float* %dst, float* %src, i64 %n) #0 {{
entry:
  %d = bitcast float* %dst to {v}*
  %s = bitcast float* %src to {v}*
  %m = udiv i64 %n, {lanes}
  br label %loop
loop:
  %i = phi i64 [0, %entry], [%inext, %loop]
{copy_body}
  %inext = add i64 %i, 4
  %done = icmp uge i64 %inext, %m
  br i1 %done, label %exit, label %loop
exit:
  ret void
}}

; a[i] = b[i] + s * c[i], i < n (n a multiple of {4 * lanes})
define void @stream_triad(float* %a, float* %b, float* %c, float %sc, i64 %n) #0 {{
entry:
  %sc0 = insertelement {v} undef, float %sc, i32 0
  %vs = shufflevector {v} %sc0, {v} undef, <{lanes} x i32> zeroinitializer
  %d = bitcast float* %a to {v}*
  %s = bitcast float* %b to {v}*
  %t = bitcast float* %c to {v}*
  %m = udiv i64 %n, {lanes}
  br label %loop
loop:
  %i = phi i64 [0, %entry], [%inext, %loop]
{triad_body}
  %inext = add i64 %i, 4
  %done = icmp uge i64 %inext, %m
  br i1 %done, label %exit, label %loop
exit:
  ret void
}}

attributes #0 = {{ nounwind {attrs} }}
"""


def _unrolled(v, times, template):
    out = []
    for k in range(times):
        out.append(f"  %i{k} = add i64 %i, {k}\n"
                   f"  %sp{k} = getelementptr {v}, {v}* %s, i64 %i{k}\n"
                   f"  %dp{k} = getelementptr {v}, {v}* %d, i64 %i{k}\n"
                   + template.format(k=k, v=v))
    return "\n".join(out)


class Kernels:
    """fma_peak, stream_copy and stream_triad compiled for this CPU (an MCJIT engine)."""

    def __init__(self):
        llvm = _llvm()
        self.cpu = llvm.get_host_cpu_name()
        features = llvm.get_host_cpu_features()
        self.features = sorted(k for k, on in features.items() if on)
        self.lanes = vector_lanes(self.features)
        # chains: enough independent FMAs in flight (latency 4-5 x 2 units) within the
        # registers (16 or 32, less the two operands)
        self.chains = 24 if self.lanes == 16 else 12
        self.unroll = 4
        target = llvm.Target.from_default_triple()
        machine = target.create_target_machine(cpu=self.cpu, features=features.flatten(), opt=2)
        module = llvm.parse_assembly(_ir(self.lanes, self.chains, self.unroll))
        module.verify()
        self._engine = llvm.create_mcjit_compiler(module, machine)
        self._engine.finalize_object()
        addr = self._engine.get_function_address
        P = ctypes.c_void_p
        self.fma = ctypes.CFUNCTYPE(None, ctypes.c_int64, ctypes.c_float, ctypes.c_float, P)(
            addr("fma_peak"))
        self.copy = ctypes.CFUNCTYPE(None, P, P, ctypes.c_int64)(addr("stream_copy"))
        self.triad = ctypes.CFUNCTYPE(None, P, P, P, ctypes.c_float, ctypes.c_int64)(
            addr("stream_triad"))

    @property
    def flops_per_iteration(self):
        return 2 * self.lanes * self.chains * self.unroll


def _parallel(calls):
    """Wall seconds of running every call in calls at once, one thread each."""
    if len(calls) == 1:
        t0 = time.perf_counter()
        calls[0]()
        return time.perf_counter() - t0
    threads = [threading.Thread(target=c) for c in calls]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0


def fma_peak(k, threads, seconds, repeats):
    """Best GFLOP/s of `threads` threads each running FMA chains for about `seconds`."""
    import numpy as np
    outs = [np.zeros(k.lanes, np.float32) for _ in range(threads)]
    iters = 1000
    while True:  # calibrate on one thread
        t = _parallel([lambda: k.fma(iters, 0.9999, 1e-4, outs[0].ctypes.data)])
        if t > seconds / 4 or iters > 1 << 40:
            break
        iters *= 4
    iters = max(1000, int(iters * seconds / max(t, 1e-6)))
    best = 0.0
    for _ in range(repeats):
        t = _parallel([lambda o=o: k.fma(iters, 0.9999, 1e-4, o.ctypes.data) for o in outs])
        best = max(best, threads * iters * k.flops_per_iteration / t / 1e9)
    assert all(np.all(np.isfinite(o)) for o in outs)
    return best


def stream(k, kind, threads, n, repeats, arrays):
    """Best GB/s of copy or triad over n float32 elements, split in `threads` bands."""
    a, b, c = arrays
    step = 4 * k.lanes
    bounds = [(n * t // threads) // step * step for t in range(threads + 1)]
    bounds[-1] = n
    item = 4

    def band(lo, hi):
        if kind == "copy":
            return lambda: k.copy(a.ctypes.data + lo * item, b.ctypes.data + lo * item, hi - lo)
        return lambda: k.triad(a.ctypes.data + lo * item, b.ctypes.data + lo * item,
                               c.ctypes.data + lo * item, 3.0, hi - lo)
    calls = [band(lo, hi) for lo, hi in zip(bounds, bounds[1:])]
    _parallel(calls)  # warm: pages and threads
    bytes_moved = (8 if kind == "copy" else 12) * n
    return max(bytes_moved / _parallel(calls) / 1e9 for _ in range(repeats))


def measure(quick=False):
    """The machine's record: {"id": "machine", cpu_model, cores, vector_bits, fma_peak_gflops
    (all cores), fma_peak_1thread_gflops, stream_copy_gbps, stream_triad_gbps (all threads),
    ..._1thread, stream_array_mib, load_avg, quick, seconds}."""
    import numpy as np
    start = time.perf_counter()
    k = Kernels()
    n_cores = cores()
    llc = last_level_cache_bytes()
    if quick:
        fma_s, fma_reps, array_bytes, reps = 0.002, 2, 4 << 20, 2
    else:
        fma_s, fma_reps, reps = 0.2, 5, 7
        array_bytes = min(max(4 * llc, 256 << 20), 1 << 30)
    n = array_bytes // 4 // (4 * k.lanes) * (4 * k.lanes)
    arrays = [np.full(n, v, np.float32) for v in (0.0, 1.0, 2.0)]
    record = {"id": "machine", "cpu_model": cpu_model(), "llvm_cpu": k.cpu, "cores": n_cores,
              "vector_bits": 32 * k.lanes, "fma_chains": k.chains,
              "fma_peak_gflops": fma_peak(k, n_cores, fma_s, fma_reps),
              "fma_peak_1thread_gflops": fma_peak(k, 1, fma_s, fma_reps)}
    for kind in ("copy", "triad"):
        record[f"stream_{kind}_gbps"] = stream(k, kind, n_cores, n, reps, arrays)
        record[f"stream_{kind}_1thread_gbps"] = stream(k, kind, 1, n, reps, arrays)
    expected = 3.0 * 2.0 + 1.0
    if not (arrays[0][:8] == expected).all():
        raise AssertionError(f"stream triad wrote {arrays[0][:8]}, not {expected}")
    for key, value in record.items():
        if isinstance(value, float):
            record[key] = round(value, 1)
    record.update({"stream_array_mib": round(4 * n / 2 ** 20, 1),
                   "last_level_cache_mib": round(llc / 2 ** 20, 1),
                   "load_avg": round(os.getloadavg()[0], 2), "quick": quick,
                   "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                   "seconds": round(time.perf_counter() - start, 2),
                   "features": [f for f in k.features if f.startswith(("avx", "fma", "sse4"))]})
    return record


def _key(record):
    return [record.get("cpu_model"), record.get("cores"), record.get("features")]


def _cached(host_key):
    try:
        with open(CACHE) as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    if time.time() - os.path.getmtime(CACHE) > CACHE_MAX_AGE_S or _key(record) != host_key:
        return None
    return record


def _host_key():
    k = Kernels()
    return [cpu_model(), cores(),
            [f for f in k.features if f.startswith(("avx", "fma", "sse4"))]]


def machine(quick=False, fresh=False):
    """The record of measure(quick), once per process; a full one comes from build/'s copy when
    that is under an hour old and of this CPU, unless `fresh` (then it is measured and stored)."""
    if quick in _measured and not fresh:
        return _measured[quick]
    record = None
    if not quick and not fresh:
        record = _cached(_host_key())
        if record is not None:
            record = dict(record, from_cache=True)
    if record is None:
        record = measure(quick)
        if not quick:
            try:
                os.makedirs(os.path.dirname(CACHE), exist_ok=True)
                with open(CACHE, "w") as f:
                    json.dump(record, f)
            except OSError:
                pass
    _measured[quick] = record
    return record


# ---- limits ------------------------------------------------------------------------------------
def limit_for(record, unit, dtype=None, threads=None, flops_per_step=None):
    """(limit, what it is, the figure's unit converted to the limit's: a factor) for a figure in
    `unit`, or None where no limit applies (latencies, compile times, sizes)."""
    one = threads == 1
    peak = record["fma_peak_1thread_gflops" if one else "fma_peak_gflops"]
    where = "1 thread" if one else f"{record['cores']} cores"
    if unit == "GFLOP/s" or (unit == "steps/s" and flops_per_step):
        factor = 1.0 if unit == "GFLOP/s" else flops_per_step / 1e9
        if dtype in (None, "float32"):
            return peak, f"FP32 FMA peak, {record['vector_bits']}-bit vectors, {where}", factor
        if dtype == "float64":
            return peak / 2, f"FP64 FMA peak (FP32's / 2), {where}", factor
        return None  # bfloat16, integers: no measured peak of theirs
    if unit == "GB/s":
        copy = record["stream_copy_1thread_gbps" if one else "stream_copy_gbps"]
        triad = record["stream_triad_1thread_gbps" if one else "stream_triad_gbps"]
        return max(copy, triad), f"stream bandwidth (best of copy, triad), {where}", 1.0
    return None


if __name__ == "__main__":
    print(json.dumps(measure(quick=True)))
