"""The devices a session can run on."""
from graphc.errors import DeviceError

PLANNED = {}


def _reference():
    from .executable import ReferenceExecutable
    return ReferenceExecutable


def _cpu():
    from .cpu import CpuExecutable
    return CpuExecutable


def _cuda():
    from .cuda import CudaExecutable
    return CudaExecutable


# device name -> the Executable class that compiles for it (imported on first use)
EXECUTABLES = {"cpu": _cpu, "cuda": _cuda, "reference": _reference}
AVAILABLE = tuple(EXECUTABLES)
DEFAULT = "cpu"


def check_device(device):
    """The device name to use; a clear error for unknown or not-yet-built devices."""
    device = DEFAULT if device is None else device
    if device in AVAILABLE:
        return device
    if device in PLANNED:
        raise DeviceError(f"device {device!r} is not built yet ({PLANNED[device]} is still to "
                          f"come); use device='cpu' or 'reference' (the numpy interpreter)")
    raise DeviceError(f"unknown device {device!r}; expected one of "
                      f"{', '.join(map(repr, AVAILABLE + tuple(PLANNED)))}")


def executable_class(device, feeds):
    """The Executable class for a device; a run that feeds inner tensors (not placeholders)
    is interpreted, since it replaces part of the graph."""
    if any(t.node.op != "placeholder" for t in feeds):
        return _reference()
    return EXECUTABLES[device]()
