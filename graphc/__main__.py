"""The command line: `python -m graphc dump FILE [--stage input] [--format text|dot|json]`.

`dump` prints a graph file written by gc.save, or an ONNX model (a FILE ending in .onnx, as
gc.onnx.load imports it), at a compilation stage, in any dump format.
A bad file or argument prints one line on stderr and exits with status 2.
"""
import argparse
import sys

from . import GraphcError, function, load
from .dump import FORMATS, dump_graph

USAGE_ERROR = 2


def dump_onnx(args):
    try:
        from . import onnx as gonnx
    except ImportError as err:
        raise GraphcError(f"{args.file}: reading ONNX needs the onnx package ({err})") from None
    if args.stage == "input":  # imported, not compiled
        model, base_dir = gonnx.read_model(args.file)
        graph, _, outputs = gonnx.Importer(model, base_dir, {}).build()
        print(dump_graph(graph, [t for _, t in outputs], args.format))
        return
    m = gonnx.load(args.file)
    if m.function is None:
        raise GraphcError(f"{args.file}: the model compiles only once inputs "
                          f"{sorted(m.bound_inputs)} are known; only --stage input shows it")
    print(m.function.dump(stage=args.stage, format=args.format))


def dump_command(args):
    if args.file.lower().endswith(".onnx"):
        return dump_onnx(args)
    saved = load(args.file)
    if args.stage == "input":
        # straight from the file: a graph that fails to compile can still be shown
        print(dump_graph(saved.graph, saved.tensors, args.format))
        return
    f = function([], saved.fetches, name=args.file)
    print(f.dump(stage=args.stage, format=args.format))


def parser():
    p = argparse.ArgumentParser(prog="python -m graphc", description="graphc's command line")
    commands = p.add_subparsers(dest="command", required=True)
    dump = commands.add_parser("dump", help="print the graph of a file written by gc.save or "
                               "of an ONNX model")
    dump.add_argument("file", help="a graph file written by gc.save, or an ONNX model (.onnx)")
    dump.add_argument("--stage", default="input",
                      help="the compilation stage to show (default: input)")
    dump.add_argument("--format", default="text", choices=list(FORMATS),
                      help="the dump format (default: text)")
    dump.set_defaults(run=dump_command)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        args.run(args)
    except GraphcError as err:
        print(f"graphc: error: {' '.join(str(err).split())}", file=sys.stderr)
        return USAGE_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())
