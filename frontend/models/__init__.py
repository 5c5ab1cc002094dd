"""gk.models: Model, Sequential, load_model."""
from .model import Model
from .sequential import Sequential


def load_model(path, custom_objects=None, compile=True, safe_mode=True):
    """The model saved at `path` by model.save, compiled as it was, with its weights,
    optimizer state and epoch count. A Lambda layer's saved bytecode is run only with
    safe_mode=False."""
    from ..saving import load_model as _load
    if custom_objects or not compile:
        raise NotImplementedError("load_model: custom_objects and compile=False are not "
                                  "supported yet (register classes with gk.saving.register)")
    return _load(path, safe_mode=safe_mode)
