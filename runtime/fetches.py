"""Flattening a fetch structure (tensor, list, tuple, dict, nested) and building it back."""
from graphc.errors import GraphcError
from graphc.ir.graph import Tensor


def flatten_fetches(fetches):
    """(flat list of tensors, a function from their values to the same structure)."""
    flat = []

    def walk(f):
        if isinstance(f, Tensor):
            flat.append(f)
            return len(flat) - 1
        if isinstance(f, (list, tuple)):
            return (type(f), [walk(x) for x in f])
        if isinstance(f, dict):
            return (dict, {k: walk(v) for k, v in f.items()})
        raise GraphcError(f"cannot fetch {f!r}: fetches are tensors, or lists, tuples and dicts "
                          "of them")

    return flat, walk(fetches)


def rebuild_fetches(plan, values):
    if isinstance(plan, int):
        return values[plan]
    kind, items = plan
    if kind is dict:
        return {k: rebuild_fetches(v, values) for k, v in items.items()}
    built = [rebuild_fetches(v, values) for v in items]
    return built if kind is list else tuple(built) if kind is tuple else kind(*built)
