"""The ONNX conformance run: every node test case of onnx.backend.test.case.node through
graphc.onnx.backend, compared as onnx's own runner compares (shapes, dtypes, then
assert_allclose with the case's rtol/atol: 1e-3/1e-7 unless it says otherwise).

    python -m graphc.onnx.scoreboard [README.md] [--device reference|cpu]

prints the totals and, given a file, rewrites its scoreboard between the markers
<!-- onnx-scoreboard:begin --> and <!-- onnx-scoreboard:end -->.
"""
import collections
import re
import sys
import time
import warnings

import numpy as np

BEGIN, END = "<!-- onnx-scoreboard:begin -->", "<!-- onnx-scoreboard:end -->"
DEVICE = "reference"  # the device the recorded scoreboard measures


def cases():
    from onnx.backend.test.case.node import collect_testcases
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sorted(collect_testcases(None), key=lambda c: c.name)


_OPS = None


def op_of(case):
    """The ONNX op a case tests, from its name (test_reduce_sum_... -> ReduceSum)."""
    global _OPS
    if _OPS is None:
        import onnx.defs
        _OPS = sorted({s.name for s in onnx.defs.get_all_schemas_with_history()},
                      key=len, reverse=True)
    key = case.name[len("test_"):].replace("_", "").lower()
    for op in _OPS:
        if key.startswith(op.lower()):
            return op
    return case.model.graph.node[0].op_type


def _reason(err):
    """A short, stable category for why a case fails."""
    from graphc.onnx.errors import OnnxUnsupportedError
    text = str(err)
    if isinstance(err, OnnxUnsupportedError):
        m = re.search(r"\(((?:[\w.]+)::(\w+)), opset \d+\): (.*)", text)
        detail = m.group(3) if m else text
        if "op type is not supported" in detail:
            return f"op {m.group(2)} not imported"
        if "domain" in detail:
            return "domain not supported"
        m2 = re.search(r"ONNX dtype (\w+)", text)
        if m2:
            return f"dtype {m2.group(1)}"
        if "attribute" in detail and "not supported" in detail:
            return "attribute not supported"
        if "known at load time" in detail:
            return "needs a run-time shape/value"
        return "unsupported: " + detail.split(":")[0][:60]
    if isinstance(err, AssertionError):
        if "incorrect shape" in text:
            return "wrong shape"
        if "dtype" in text.lower() or "not equal" in text and "dtype" in text:
            return "wrong dtype"
        return "wrong values"
    return f"{type(err).__name__}"


def compare(ref_outputs, outputs, rtol, atol):
    np.testing.assert_equal(len(outputs), len(ref_outputs))
    for out, ref in zip(outputs, ref_outputs):
        out = np.asarray(out)
        np.testing.assert_array_equal(out.shape, ref.shape, err_msg="incorrect shape")
        if ref.dtype != out.dtype:
            raise AssertionError(f"dtype {out.dtype} differs from {ref.dtype}")
        if ref.dtype == object:
            np.testing.assert_array_equal(out, ref)
        else:
            np.testing.assert_allclose(out, ref, rtol=rtol, atol=atol)


def run_case(case, device=DEVICE):
    """None if the case passes, else the exception."""
    from graphc.onnx import backend
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            rep = backend.prepare(case.model, device)
            for inputs, ref_outputs in case.data_sets:
                outs = rep.run(inputs)
                compare(ref_outputs, list(outs), case.rtol, case.atol)
    except Exception as err:  # noqa: BLE001 (every failure is a scored reason)
        return err
    return None


def run_all(device=DEVICE, progress=False):
    """[(case name, op, None or reason)]."""
    results = []
    for k, case in enumerate(cases()):
        err = run_case(case, device)
        results.append((case.name, op_of(case), None if err is None else _reason(err)))
        if progress and k % 100 == 0:
            print(f"{k} cases...", file=sys.stderr, flush=True)
    return results


def render(results, device=DEVICE):
    passed = sum(r is None for _, _, r in results)
    by_op = collections.defaultdict(lambda: [0, 0, collections.Counter()])
    for _, op, reason in results:
        row = by_op[op]
        row[1] += 1
        if reason is None:
            row[0] += 1
        else:
            row[2][reason] += 1
    full = sum(1 for p, t, _ in by_op.values() if p == t)
    lines = [BEGIN,
             f"Passing: **{passed} of {len(results)}** node test cases of "
             f"`onnx.backend.test.case.node` (onnx {_onnx_version()}), device "
             f"`{device}`; {full} of {len(by_op)} op types pass every case. Regenerate with "
             "`python -m graphc.onnx.scoreboard README.md`; `tests/onnx/test_conformance.py` "
             "checks that this table matches the code.", "",
             "| op | passing | why the rest fail |", "|---|---|---|"]
    for op in sorted(by_op):
        p, t, why = by_op[op]
        reasons = "; ".join(f"{r} ({n})" for r, n in sorted(why.items(), key=lambda i: -i[1]))
        lines.append(f"| {op} | {p}/{t} | {reasons} |")
    lines.append(END)
    return "\n".join(lines)


def _onnx_version():
    import onnx
    return onnx.__version__


def update(path, text):
    with open(path) as f:
        doc = f.read()
    if BEGIN in doc and END in doc:
        head, rest = doc.split(BEGIN, 1)
        doc = head + text + rest.split(END, 1)[1]
    else:
        doc = doc.rstrip("\n") + "\n\n" + text + "\n"
    with open(path, "w") as f:
        f.write(doc)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    device = DEVICE
    if "--device" in argv:
        i = argv.index("--device")
        device = argv[i + 1]
        del argv[i:i + 2]
    start = time.perf_counter()
    results = run_all(device, progress=True)
    passed = sum(r is None for _, _, r in results)
    print(f"{passed} of {len(results)} cases pass on device {device} "
          f"({time.perf_counter() - start:.0f} s)")
    reasons = collections.Counter(r for _, _, r in results if r is not None)
    for r, n in reasons.most_common(40):
        print(f"{n:5d}  {r}")
    if argv:
        update(argv[0], render(results, device))


if __name__ == "__main__":
    main()
