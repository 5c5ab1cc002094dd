"""Fixtures shared by the test suite."""
import os
import shutil
import tempfile

import pytest

import graphc as gc


@pytest.fixture
def graph():
    """A fresh graph, the default one for the test's duration."""
    g = gc.Graph()
    with g.as_default():
        yield g



_cache_dir = None   # the temp cache directory this run made, if it made one


def pytest_configure(config):
    """A test run's compiled-code cache goes to a temp directory, not the user's home."""
    global _cache_dir
    if "GRAPHC_CACHE_DIR" not in os.environ:
        _cache_dir = os.environ["GRAPHC_CACHE_DIR"] = tempfile.mkdtemp(prefix="graphc-cache-")


def pytest_unconfigure(config):
    if _cache_dir:
        os.environ.pop("GRAPHC_CACHE_DIR", None)
        shutil.rmtree(_cache_dir, ignore_errors=True)
