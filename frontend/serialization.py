"""Keras's custom-object registry: register_keras_serializable, custom_object_scope,
get_registered_object and serialize/deserialize_keras_object. Layer classes registered here
(or in a scope) are found by load_model and model_from_json like gk.saving.register's;
any other object (a loss function, an initializer class) by deserialize_keras_object.
Nothing is ever imported by name: only registered or scoped objects are found.
"""
import contextlib

from graphc.errors import GraphcError

_custom = {}  # registered name ("package>Name") -> object, as Keras's global custom objects
_scopes = []  # the dicts of the custom_object_scope blocks being run, innermost last


def register_keras_serializable(package="Custom", name=None):
    """Decorator: register a class or function under "package>name" (name: its __name__)."""
    def add(obj):
        key = f"{package}>{name or obj.__name__}"
        if key in _custom and _custom[key] is not obj:
            raise GraphcError(f"{key!r} is already registered to {_custom[key]!r}")
        _custom[key] = obj
        return obj
    return add


def get_custom_objects():
    """The global registry (a dict; adding to it registers, as in Keras)."""
    return _custom


class CustomObjectScope:
    """with CustomObjectScope({"name": obj, ...}): those names resolve inside the block."""

    def __init__(self, *custom_objects):
        self.objects = {}
        for objects in custom_objects:
            self.objects.update(objects or {})

    def __enter__(self):
        _scopes.append(self.objects)
        return self

    def __exit__(self, *exc):
        _scopes.remove(self.objects)


custom_object_scope = CustomObjectScope


def get_registered_name(obj):
    """The name obj is registered under, else its __name__."""
    for key, known in _custom.items():
        if known is obj:
            return key
    return getattr(obj, "__name__", type(obj).__name__)


def get_registered_object(name, custom_objects=None, module_objects=None):
    """The object a name stands for: in the open scopes (innermost first), the registry, then
    custom_objects and module_objects; None if none has it."""
    for table in list(reversed(_scopes)) + [_custom, custom_objects or {},
                                            module_objects or {}]:
        if name in table:
            return table[name]
    return None


def layer_classes():
    """{name: class} of the registered and scoped classes, for the model loader."""
    return {name: obj for table in [_custom] + _scopes for name, obj in table.items()
            if isinstance(obj, type)}


def serialize_keras_object(obj):
    """None and plain values as they are; a function as its name; an object with
    get_config() as {"class_name", "config", "registered_name"}."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, (list, tuple)):
        return [serialize_keras_object(o) for o in obj]
    if isinstance(obj, dict):
        return {k: serialize_keras_object(v) for k, v in obj.items()}
    if callable(obj) and not hasattr(obj, "get_config"):
        name = get_registered_name(obj)
        return {"class_name": "function", "config": name, "registered_name": name}
    if not hasattr(obj, "get_config"):
        raise GraphcError(f"cannot serialize {obj!r}: it has no get_config()")
    return {"class_name": type(obj).__name__, "config": obj.get_config(),
            "registered_name": get_registered_name(type(obj))}


def deserialize_keras_object(config, custom_objects=None, safe_mode=True, **kwargs):
    """The object serialize_keras_object described, rebuilt from registered, scoped or given
    (custom_objects) classes and functions, or graphc's own layers."""
    if config is None or isinstance(config, (bool, int, float)):
        return config
    if isinstance(config, str):
        obj = _find(config, custom_objects)
        if obj is None:
            raise GraphcError(f"unknown object {config!r}: register it with "
                              "@gk.saving.register_keras_serializable or pass it in "
                              "custom_objects")
        return obj
    if not isinstance(config, dict) or "class_name" not in config:
        raise GraphcError(f"deserialize_keras_object takes a name or a {{'class_name', "
                          f"'config'}} dict, got {config!r}")
    if config["class_name"] == "function":
        return deserialize_keras_object(config["config"], custom_objects)
    cls = _find(config.get("registered_name") or config["class_name"], custom_objects) or \
        _find(config["class_name"], custom_objects)
    if cls is None:
        raise GraphcError(f"unknown class {config['class_name']!r}: register it with "
                          "@gk.saving.register_keras_serializable or pass it in "
                          "custom_objects")
    inner = config.get("config", {})
    return cls.from_config(inner) if hasattr(cls, "from_config") else cls(**inner)


def _find(name, custom_objects):
    from .layers import BUILTIN
    obj = get_registered_object(name, custom_objects)
    return obj if obj is not None else BUILTIN.get(name)


@contextlib.contextmanager
def objects_in_scope(custom_objects):
    """A CustomObjectScope of custom_objects, or nothing to do when there are none."""
    if custom_objects:
        with CustomObjectScope(custom_objects):
            yield
    else:
        yield
