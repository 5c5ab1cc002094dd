"""The devices a session can run on, and the ones not built yet."""
from graphc.errors import DeviceError

AVAILABLE = ("reference",)
PLANNED = {
    "cpu": "the LLVM code generator for the CPU",
    "cuda": "the CUDA code generator",
}
DEFAULT = "reference"


def check_device(device):
    """The device name to use; a clear error for unknown or not-yet-built devices."""
    device = DEFAULT if device is None else device
    if device in AVAILABLE:
        return device
    if device in PLANNED:
        raise DeviceError(f"device {device!r} is not built yet ({PLANNED[device]} is still to "
                          f"come); use device='reference', the numpy interpreter")
    raise DeviceError(f"unknown device {device!r}; expected one of "
                      f"{', '.join(map(repr, AVAILABLE + tuple(PLANNED)))}")
