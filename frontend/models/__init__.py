"""gk.models: Model, Sequential, load_model, save_model, clone_model, model_from_json."""
import json

from .model import Model
from .sequential import Sequential


def load_model(path, custom_objects=None, compile=True, safe_mode=True):
    """The model saved at `path` by model.save, compiled as it was, with its weights,
    optimizer state and epoch count. custom_objects names classes the file refers to, for
    this load only. A Lambda layer's saved bytecode is run only with safe_mode=False."""
    from ..saving import load_model as _load
    from ..serialization import objects_in_scope
    if not compile:
        raise NotImplementedError("load_model(compile=False) is not supported yet: the "
                                  "model comes back compiled as it was saved")
    with objects_in_scope(custom_objects):
        return _load(path, safe_mode=safe_mode)


def save_model(model, filepath, overwrite=True, **kwargs):
    """model.save(filepath)."""
    return model.save(filepath)


def model_from_json(json_string, custom_objects=None):
    """A new model (fresh weights) from the architecture model.to_json() wrote."""
    from ..saving import model_from_config
    from ..serialization import objects_in_scope
    with objects_in_scope(custom_objects):
        return model_from_config(json.loads(json_string))


def clone_model(model, input_tensors=None, clone_function=None, call_function=None,
                recursive=False, **kwargs):
    """A new model of the same architecture with newly initialized weights (as Keras's).
    For a Sequential model, clone_function(layer) -> layer makes each new layer (default:
    the layer rebuilt from its config)."""
    from ..layers import Input
    from ..saving import layer_config, layer_from_config, model_config, model_from_config
    if input_tensors is not None or call_function is not None:
        raise NotImplementedError("clone_model: input_tensors and call_function are not "
                                  "supported yet")
    if clone_function is None:
        return model_from_config(model_config(model))
    if not isinstance(model, Sequential):
        raise NotImplementedError("clone_model(clone_function=...) takes Sequential models "
                                  "for now")
    clone = Sequential(name=model.name + "_clone")
    if model.inputs is not None:
        t = model.inputs[0]
        clone.add(Input(tuple(t.shape[1:]), dtype=t.dtype.name))
    for layer in model.layers:
        made = clone_function(layer)
        clone.add(layer_from_config(layer_config(made)) if made is layer else made)
    return clone

__all__ = ["json", "Model", "Sequential", "load_model", "save_model", "model_from_json",
           "clone_model"]
