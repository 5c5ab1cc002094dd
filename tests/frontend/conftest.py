"""Each frontend test builds its models in a fresh graph with a fixed seed."""
import pytest

import graphc as gc
import graphc.frontend as gk


@pytest.fixture(autouse=True)
def fresh_graph():
    g = gc.Graph()
    gk.utils.set_random_seed(1234)
    with g.as_default():
        yield g
