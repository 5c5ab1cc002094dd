"""What the Keras parity scripts (keras_layer_parity.py, keras_breadth_parity.py,
keras_ops_parity.py) share: their command line (script_main), running
their Keras side in the peer interpreter, and comparing graphc's outputs with Keras's case by
case, one JSON line each and a summary line last."""
import argparse
import json
import os
import sys
import tempfile

import numpy as np

from _common import keras_peer


def outputs(model, arrays):
    """A model's predictions on `arrays` as a list of arrays."""
    out = model.predict(arrays if len(arrays) > 1 else arrays[0], verbose=0)
    return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]


def run_keras(script, data, only):
    """(the Keras side's summary, its arrays by name) for input arrays `data`, or (summary
    with "error", None)."""
    with tempfile.TemporaryDirectory() as tmp:
        in_path, out_path = os.path.join(tmp, "in.npz"), os.path.join(tmp, "out.npz")
        np.savez(in_path, **data)
        peer = keras_peer(script, [in_path, out_path] + (["--only", only] if only else []))
        if "error" in peer:
            return peer, None
        with np.load(out_path) as f:
            return peer, {k: f[k] for k in f.files}


def peer_run(in_path, out_path, only, names, run_one, **summary):
    """The Keras side of a parity script: run_one(i, name, data, arrays) -> the outputs of
    each case (whose name holds `only`) on the arrays saved at in_path (it may add arrays
    of its own, e.g. weights); the outputs go to out_path as c{i}_out{j}, a case's exception
    to the errors; prints the summary line run_keras reads."""
    import jax
    import keras
    with np.load(in_path) as f:
        data = {k: f[k] for k in f.files}
    arrays, cases, errors = {}, [], {}
    for name in names:
        if only and only not in name:
            continue
        i = len(cases)
        cases.append(name)
        try:
            outs = run_one(i, name, data, arrays)
        except Exception as e:  # reported in the summary; graphc's side marks it failed
            errors[name] = f"{type(e).__name__}: {e}"[:300]
            continue
        for j, o in enumerate(outs):
            arrays[f"c{i}_out{j}"] = np.asarray(o)
    np.savez(out_path, **arrays)
    print(json.dumps({"cases": cases, "errors": errors, **summary,
                      "version": f"keras {keras.__version__} on jax {jax.__version__}"}))


def run(bench, script, data, only, tolerance, run_case, **summary):
    """The graphc side of a parity script: the Keras side is run on `data` (its error line
    printed if it cannot run), then compare() with run_case(peer, theirs, i, name) ->
    graphc's outputs of case i; the exit status."""
    peer, theirs = run_keras(script, data, only)
    if theirs is None:
        print(json.dumps({"bench": bench, "error": peer["error"]}))
        return 1
    return compare(bench, peer, theirs, lambda i, name: run_case(peer, theirs, i, name),
                   tolerance, **summary)


def script_main(doc, peer_main, main, device=False):
    """The command line of a parity script: --only and --tolerance (and --device where it
    compares on a device); with --peer IN OUT it is the Keras side (peer_main), else main
    runs the graphc side and the process exits with its status."""
    parser = argparse.ArgumentParser(description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    if device:
        parser.add_argument("--device", default=None)
    parser.add_argument("--only", default=None, help="run the cases whose name holds this")
    parser.add_argument("--tolerance", type=float, default=1e-5)
    parser.add_argument("--peer", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer:
        peer_main(args.peer[0], args.peer[1], args.only)
        return
    extra = {"device": args.device} if device else {}
    sys.exit(main(only=args.only, tolerance=args.tolerance, **extra))


def compare(bench, peer, theirs, run_case, tolerance, **summary):
    """Run each case of the Keras side's through run_case(i, name) -> graphc's outputs (in a
    graph of its own, seeded), compare them with Keras's case outputs `c{i}_out{j}`, print a
    line per case and the summary; the exit status (1 where a case failed)."""
    import graphc as gc
    import graphc.frontend as gk
    worst, failed = 0.0, []
    for i, name in enumerate(peer["cases"]):
        if name in peer["errors"]:
            failed.append(name)
            print(json.dumps({"bench": bench, "case": name, "keras_error": peer["errors"][name]}))
            continue
        with gc.Graph().as_default():
            gk.utils.set_random_seed(0)
            try:
                ours = run_case(i, name)
            except Exception as e:  # report, and go on with the other cases
                failed.append(name)
                print(json.dumps({"bench": bench, "case": name,
                                  "error": f"{type(e).__name__}: {e}"[:500]}))
                continue
        expected = [theirs.get(f"c{i}_out{j}") for j in range(len(ours))]
        diffs = [_difference(a, b) for a, b in zip(ours, expected)]
        ok = all(d is not None and d <= tolerance for d in diffs) and \
            f"c{i}_out{len(ours)}" not in theirs
        if not ok:
            failed.append(name)
        worst = max([worst] + [d for d in diffs if d is not None])
        print(json.dumps({"bench": bench, "case": name,
                          "output_shapes": [list(a.shape) for a in ours],
                          "max_abs_diff": diffs, "ok": ok}))
    print(json.dumps({"bench": bench, "cases": len(peer["cases"]), "failed": failed,
                      "worst_max_abs_diff": worst, "tolerance": tolerance,
                      "keras": peer["version"], **summary}))
    return 1 if failed else 0


def _difference(ours, theirs):
    """The max abs difference of two arrays (0 for empty ones), inf where their shapes, NaNs or
    infinities differ; None where Keras has no such output."""
    if theirs is None or ours.shape != theirs.shape:
        return None
    a, b = ours.astype(np.float64), theirs.astype(np.float64)
    finite = np.isfinite(a) & np.isfinite(b)
    if not np.array_equal(np.where(finite, 0, a), np.where(finite, 0, b), equal_nan=True):
        return float("inf")
    return float(np.max(np.abs(a[finite] - b[finite]), initial=0.0))
