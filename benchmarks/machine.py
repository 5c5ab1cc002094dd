"""The machine first: its CPU model and cores, its FP32 FMA peak with the widest vectors it has
(all cores and one) and its stream bandwidth (copy and triad, all threads and one), as one JSON
line {"id": "machine", ...} (see benchmarks/_machine.py). `make bench` runs this script first;
the figures are kept in build/bench_machine.json for an hour, and every later script's result
lines give their `limit` and `fraction_of_limit` from them.

Usage: python benchmarks/machine.py [--quick]   (--quick: a tiny measurement, marked quick)
"""
import _machine
from _common import arguments, emit

if __name__ == "__main__":
    args = arguments(__doc__)
    emit(_machine.machine(args.quick, fresh=not args.quick))
