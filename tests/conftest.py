"""Fixtures shared by the test suite."""
import os
import shutil
import tempfile

import pytest

import graphc as gc
from tests import cuda_coverage


@pytest.fixture
def graph():
    """A fresh graph, the default one for the test's duration."""
    g = gc.Graph()
    with g.as_default():
        yield g


_cache_dir = None   # the temp cache directory this run made, if it made one


def pytest_configure(config):
    """A test run's compiled-code cache goes to a temp directory, not the user's home; every
    graph compiled for the CPU is compiled for CUDA too (tests/cuda_coverage.py)."""
    global _cache_dir
    if "GRAPHC_CACHE_DIR" not in os.environ:
        _cache_dir = os.environ["GRAPHC_CACHE_DIR"] = tempfile.mkdtemp(prefix="graphc-cache-")
    cuda_coverage.record_cuda_builds()
    cuda_coverage.runs_on = cuda_coverage.where_cuda_runs()
    config.addinivalue_line("markers", "after_suite: runs after every other test")


def pytest_collection_modifyitems(config, items):
    """Tests marked after_suite go last: they check what the others did."""
    items.sort(key=lambda item: item.get_closest_marker("after_suite") is not None)


def pytest_terminal_summary(terminalreporter):
    if cuda_coverage.graphs:
        terminalreporter.write_line(
            f"device cuda: {cuda_coverage.graphs} graphs built beside the CPU's, "
            f"{len(cuda_coverage.kernels)} distinct kernels; op tests also run on cuda: "
            f"{cuda_coverage.runs_on or 'no (no GPU; GRAPHC_TEST_CUDA=host runs them)'}")


def pytest_unconfigure(config):
    if _cache_dir:
        os.environ.pop("GRAPHC_CACHE_DIR", None)
        shutil.rmtree(_cache_dir, ignore_errors=True)
