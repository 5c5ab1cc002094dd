"""tests/cuda_coverage.py's start-up: only a DeviceError (no pycuda, driver or GPU) means that
the op tests do not run on device "cuda"; any other failure of the GPU's start-up stops the run."""
import sys

import pytest

import graphc as gc
from graphc.runtime import cuda_driver
from tests import cuda_coverage


@pytest.fixture
def no_gpu_started(monkeypatch):
    monkeypatch.delenv("GRAPHC_TEST_CUDA", raising=False)
    monkeypatch.setattr(cuda_driver, "_gpu", None)


def test_a_missing_pycuda_is_a_device_error_and_no_cuda_runs(no_gpu_started, monkeypatch):
    monkeypatch.setitem(sys.modules, "pycuda", None)  # import pycuda.driver: ImportError
    with pytest.raises(gc.DeviceError, match="pycuda cannot be imported"):
        cuda_driver.gpu()
    assert cuda_coverage.where_cuda_runs() is None


def test_a_device_error_at_start_up_means_no_cuda(no_gpu_started, monkeypatch):
    def no_gpu():
        raise gc.DeviceError("device 'cuda' needs pycuda and an NVIDIA GPU: no GPU")
    monkeypatch.setattr(cuda_driver, "gpu", no_gpu)
    assert cuda_coverage.where_cuda_runs() is None


@pytest.mark.parametrize("error", [RuntimeError("the pool failed"), AttributeError("cuInit"),
                                   gc.ShapeError("a bug")])
def test_any_other_start_up_failure_is_not_swallowed(no_gpu_started, monkeypatch, error):
    def broken():
        raise error
    monkeypatch.setattr(cuda_driver, "gpu", broken)
    with pytest.raises(type(error)) as info:
        cuda_coverage.where_cuda_runs()
    assert info.value is error
