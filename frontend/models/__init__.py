"""gk.models: Model, Sequential, load_model."""
from .model import Model
from .sequential import Sequential


def load_model(path):
    """The model saved at `path` by model.save, compiled as it was, with its weights,
    optimizer state and epoch count."""
    from ..saving import load_model as _load
    return _load(path)
