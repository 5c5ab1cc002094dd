"""Fixtures shared by the test suite."""
import pytest

import graphc as gc


@pytest.fixture
def graph():
    """A fresh graph, the default one for the test's duration."""
    g = gc.Graph()
    with g.as_default():
        yield g
