"""Random graphs over every op of the registry, with extreme values and run-time sizes.

`fuzz_cases()` is a hypothesis strategy of FuzzCases: a graph grown step by step from a pool of
tensors, its outputs, and two or three feed sets that feed its placeholders values of the
dtype's extremes (see values.py) at different sizes of its run-time dims (placeholders with
`None`), one of them 1 and, now and then, 0. Unlike tests/passes/random_graphs.py, nothing
keeps values in range: this is for differential testing, where the reference's answer on any
input is the oracle (see envelope.py for how closely).

steps.py holds the steps, builder.py the pool they grow, values.py the values fed.
"""
import numpy as np
from hypothesis import strategies as st

import graphc as gc
from graphc.errors import GraphcError
from tests.passes.random_graphs import leaves

from .builder import FED_SIZES, Builder, FuzzCase, Skip
from .steps import ALL_STEPS, MAKERS, make_placeholder, make_rewrite_pattern


def _feed_sizes(b):
    """Per feed set, the size of each run-time dim: 1 in one set, and 0 in one now and then."""
    sets = [{d: b.choice(FED_SIZES) for d in b.symbols} for _ in range(b.integers(1, 2))]
    sets.insert(b.integers(0, len(sets)), {d: 1 for d in b.symbols})
    if b.symbols and b.flip(0.3):
        sets.append({d: b.choice((0, 1, 3)) for d in b.symbols})
    return sets


@st.composite
def fuzz_cases(draw, ops=(), steps=(2, 8), rewrites=(0, 0)):
    """A FuzzCase: the steps of `ops` first, then a number in the range `steps` of steps
    drawn from all, and a number in the range `rewrites` of rewrite rules' patterns."""
    graph = gc.Graph()
    with graph.as_default():
        b = Builder(draw)
        for _ in range(b.integers(0, 2)):
            make_placeholder(b)
        chosen = [MAKERS[op] for op in ops]
        # drawn by the builder's generator: hypothesis's own draws favour some steps
        chosen += [ALL_STEPS[i] for i in b.rng.integers(len(ALL_STEPS), size=b.integers(*steps))]
        chosen += [make_rewrite_pattern] * b.integers(*rewrites)
        for step in chosen:
            try:
                step(b)
            except (GraphcError, Skip):
                pass  # graphc refused what the step built (a max over an empty axis, ...)
        if not b.pool:
            make_placeholder(b)
        outputs = leaves(b.pool) + [v for v in b.pool if b.flip(0.1)]
        outputs = list({id(v.tensor): v.tensor for v in outputs}.values()) + b.effects
        b.lines.append("outputs: " + ", ".join(
            next((v.name for v in b.pool if v.tensor is t), "group") for t in outputs))
        sizes = _feed_sizes(b)
        feed_sets = []
        for k, concrete in enumerate(sizes):
            rng = np.random.default_rng([b.integers(0, 2 ** 31), k])
            with np.errstate(all="ignore"):
                feed_sets.append({s.tensor: s.feed(rng, concrete) for s in b.sources})
    return FuzzCase(graph, outputs, feed_sets, sizes, b.integers(0, 2 ** 31), b.lines)
