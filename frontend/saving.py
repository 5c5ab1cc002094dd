"""Saving and loading models: one zip file that resumes training exactly.

Members of a model file (model.save(path), any file name):
    model.json      {"format": "graphc.frontend.model", "version": 1, "model": architecture,
                     "compile": optimizer/loss/metrics or null, "epochs_trained": n,
                     "shuffle_state": the fit shuffler's generator state,
                     "random_state": {"shuffle": that state again, "train_step": the state of
                     each random draw of the train step (dropout, noise, gc.random), in the
                     order the step made them, null for one that never drew}}
    weights.npz     the model's weights in model.weights order ("w0000", "w0001", ...)
    optimizer.npz   the optimizer's variables (iterations, learning rate, slots), if built

Loading never imports a module or calls a function named in the file: layer classes come from
graphc's own table and from classes registered with `gk.saving.register`; activations,
initializers, losses, metrics and optimizers from their tables. Arrays load with
allow_pickle=False. A member whose name is absolute or holds "..", an unexpected member, or an
array of the wrong shape is a gc.CheckpointError. Training a loaded model continues the saved
one exactly: the same weights, optimizer state, shuffling and dropout masks as if it had never
stopped.

A backup (gk.callbacks.BackupAndRestore) is a zip of the same kind:
    backup.json     {"format": "graphc.frontend.backup", "version": 1, "epoch", "batch" (batches
                     of that epoch done), "steps_done", "logs" (the last batch's), "history",
                     "epochs_trained", "random_state" (as above; "shuffle" as the epoch began),
                     "counts": {"weights", "optimizer", "metrics"}}
    variables.npz   the weights, the optimizer's variables and the metrics' running totals
"""
import io
import json
import zipfile

import numpy as np

from graphc.errors import CheckpointError, FileNotFoundError_, GraphcError
from graphc.io.atomic import write_atomic

from . import (backend, distribution, layers as layers_mod, losses, metrics, optimizers,
               serialization)
from .layers.base import Layer, flatten
from .layers.core import Input

FORMAT, WEIGHTS_FORMAT, VERSION = "graphc.frontend.model", "graphc.frontend.weights", 1
MEMBERS = {"model.json", "weights.npz", "optimizer.npz"}

_registered = {}


def register(cls=None, *, name=None):
    """Make a custom Layer (or Model) class loadable by name; use as a decorator,
    @gk.saving.register or @gk.saving.register(name="mypkg.Block")."""
    def add(klass):
        if not (isinstance(klass, type) and issubclass(klass, Layer)):
            raise GraphcError(f"gk.saving.register takes Layer or Model subclasses, got "
                              f"{klass!r}")
        _registered[name or klass.__name__] = klass
        return klass
    return add(cls) if cls is not None else add


def _tables():
    from .models import Model, Sequential
    return (_registered, serialization.layer_classes(), layers_mod.BUILTIN,
            {"Sequential": Sequential, "Model": Model})


def _class_named(name):
    for table in _tables():
        if name in table:
            return table[name]
    raise CheckpointError(f"unknown layer class {name!r} in the saved model: register the class "
                          "before loading, with @gk.saving.register on it (or "
                          f"gk.saving.register({name})); classes are never imported from the "
                          "file")


def _class_name(layer):
    for table in _tables():
        for name, cls in table.items():
            if cls is type(layer):
                return name
    raise GraphcError(f"layer class {type(layer).__name__} is not known to graphc: decorate it "
                      "with @gk.saving.register (and give it a get_config() returning its "
                      "__init__ arguments) so that the model can be saved and loaded")


# ---- architecture ---------------------------------------------------------------------------
def _spec(t):
    fixed = {"batch_size": t.shape[0]} if isinstance(t.shape[0], int) else {}  # stateful RNNs
    return {"dtype": t.dtype.name, "shape": [d if isinstance(d, int) else None
                                             for d in t.shape[1:]], **fixed}


def layer_config(layer):
    from .models import Model
    if isinstance(layer, Model):
        return {"class_name": _class_name(layer), "model": model_config(layer)}
    return {"class_name": _class_name(layer), "config": layer.get_config()}


def layer_from_config(config):
    cls = _class_named(config["class_name"])
    if "model" in config:
        return model_from_config(config["model"])
    try:
        return cls.from_config(config["config"])
    except TypeError as e:
        raise CheckpointError(f"cannot rebuild layer {config['class_name']!r} from its saved "
                              f"config ({e}); its get_config() must return its __init__ "
                              "arguments") from None


def model_config(model):
    from .models import Sequential
    kind = "sequential" if isinstance(model, Sequential) else \
        "functional" if model._records is not None else "subclassed"
    config = {"kind": kind, "name": model.name}
    if kind == "sequential":
        config["layers"] = [layer_config(layer) for layer in model.layers]
        config["input"] = _spec(model.inputs[0]) if model.inputs else None
    elif kind == "functional":
        config.update(_functional_config(model))
    else:
        if model.inputs is None:
            raise GraphcError(f"model '{model.name}' is not built yet; fit or predict once "
                              "before saving")
        config.update(class_name=_class_name(model), config=model.get_config(),
                      inputs=[_spec(t) for t in model.inputs], multi_input=model._multi_input)
    return config


def _functional_config(model):
    refs = {t: ["input", i] for i, t in enumerate(model.inputs)}
    calls = []
    for j, rec in enumerate(model._records):
        calls.append({"layer": model._layers.index(rec.layer),
                      "inputs": [refs[t] for t in flatten(rec.inputs)],
                      "list": isinstance(rec.inputs, (list, tuple)), "kwargs": rec.kwargs})
        refs.update((t, ["call", j, k]) for k, t in enumerate(flatten(rec.outputs)))
    return {"inputs": [_spec(t) for t in model.inputs], "multi_input": model._multi_input,
            "multi_output": model._multi_output, "calls": calls,
            "layers": [layer_config(layer) for layer in model._layers],
            "outputs": [refs[t] for t in model.outputs]}


def model_from_config(config):
    from .models import Model, Sequential
    kind = config.get("kind")
    if kind == "sequential":
        model = Sequential(name=config["name"])
        if config["input"] is not None:
            model.add(_input(config["input"]))
        for layer in config["layers"]:
            model.add(layer_from_config(layer))
        return model
    if kind == "functional":
        inputs = [_input(spec) for spec in config["inputs"]]
        layers = [layer_from_config(c) for c in config["layers"]]
        produced = []

        def value(ref):
            return inputs[ref[1]] if ref[0] == "input" else produced[ref[1]][ref[2]]
        for call in config["calls"]:
            args = [value(r) for r in call["inputs"]]
            out = layers[call["layer"]](args if call["list"] else args[0], **call["kwargs"])
            produced.append(flatten(out))
        outputs = [value(r) for r in config["outputs"]]
        return Model(inputs if config["multi_input"] else inputs[0],
                     outputs if config["multi_output"] else outputs[0], name=config["name"])
    if kind == "subclassed":
        model = layer_from_config({"class_name": config["class_name"],
                                   "config": config["config"]})
        model.build_from_specs([(s["dtype"], s["shape"]) for s in config["inputs"]])
        return model
    raise CheckpointError(f"unknown model kind {kind!r} in the saved model")


def _input(spec):
    return Input(tuple(spec["shape"]), dtype=spec["dtype"], batch_size=spec.get("batch_size"))


# ---- compile state --------------------------------------------------------------------------
def _compile_config(model):
    c = model.compiled
    if c is None:
        return None
    model._resolve_compiled()
    return {"optimizer": optimizers.serialize(c.optimizer),
            "losses": [losses.serialize(x) for x in c.losses],
            "loss_weights": c.loss_weights,
            "metrics": _metric_configs(c.metric_ids),
            "weighted_metrics": _metric_configs(c.weighted_metric_ids),
            "device": c.device}


def _metric_configs(per_output):
    return [[m if isinstance(m, str) else {"class_name": type(m).__name__,
                                           "config": m.get_config()}
             for m in ids] for ids in per_output]


def _metric_objects(per_output):
    return [[m if isinstance(m, str) else _metric(m) for m in ids] for ids in per_output]


def _compile_from_config(model, config):
    model.compile(optimizer=optimizers.deserialize(config["optimizer"]),
                  loss=[losses.get(x) for x in config["losses"]],
                  loss_weights=config["loss_weights"],
                  metrics=_metric_objects(config["metrics"]),
                  weighted_metrics=_metric_objects(config.get("weighted_metrics",
                                                              [[] for _ in config["metrics"]])),
                  device=config["device"])


def _metric(config):
    cls = {type_.__name__: type_ for type_ in metrics.METRICS.values()}.get(config["class_name"])
    if cls is None:
        raise CheckpointError(f"unknown metric {config['class_name']!r} in the saved model")
    return cls(**config["config"])


# ---- files ----------------------------------------------------------------------------------
def _npz(arrays):
    buf = io.BytesIO()
    np.savez(buf, **{f"w{i:04d}": a for i, a in enumerate(arrays)})
    return buf.getvalue()


def _write_zip(path, members, compression=zipfile.ZIP_DEFLATED):
    def write(f):
        with zipfile.ZipFile(f, "w", compression) as z:
            for name, data in members.items():
                z.writestr(name, data)
    # data parallel: rank 0 writes, the others wait for it (gk.distribution)
    return distribution.chief_only(lambda: write_atomic(path, write))


def _read_zip(path, what):
    """{member name: bytes} of the `what` (model or weights file) at `path`, refusing unsafe or
    unexpected names."""
    try:
        with zipfile.ZipFile(path) as z:
            out = {}
            for info in z.infolist():
                name = info.filename
                if name.startswith(("/", "\\")) or ".." in name.replace("\\", "/").split("/") \
                        or ":" in name:
                    raise CheckpointError(f"{path}: member {name!r} has an absolute path or "
                                          "'..'; refusing the file")
                if name not in MEMBERS:
                    raise CheckpointError(f"{path}: unexpected member {name!r}; a graphc model "
                                          f"file holds {sorted(MEMBERS)}")
                out[name] = z.read(name)
            return out
    except CheckpointError:
        raise
    except FileNotFoundError:
        raise FileNotFoundError_(f"no {what} at {path}", path) from None
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise CheckpointError(f"{path}: not a readable graphc model file ({e})") from None


def _arrays(blob, path, member):
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as f:
            return [f[f"w{i:04d}"] for i in range(len(f.files))]
    except (ValueError, KeyError, OSError, zipfile.BadZipFile) as e:
        raise CheckpointError(f"{path}: {member} is corrupt ({e})") from None


def _json(blob, path, expected_format):
    try:
        config = json.loads(blob.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: model.json is not valid JSON ({e})") from None
    if not isinstance(config, dict) or config.get("format") != expected_format:
        raise CheckpointError(f"{path}: not a {expected_format} file")
    if config.get("version") != VERSION:
        raise CheckpointError(f"{path}: format version {config.get('version')!r}, this graphc "
                              f"reads version {VERSION}")
    return config


def _assign(variables, arrays, path, what):
    if len(variables) != len(arrays):
        raise CheckpointError(f"{path}: {len(arrays)} {what} arrays for {len(variables)} "
                              f"variables")
    for var, arr in zip(variables, arrays):
        if tuple(var.shape) != arr.shape:
            raise CheckpointError(f"{path}: {what} array for '{var.name}' has shape "
                                  f"{arr.shape}, expected {tuple(var.shape)}")
    sess = backend.session(variables[0].graph) if variables else None
    for var, arr in zip(variables, arrays):
        sess.set_value(var, arr)


def save_model(model, path):
    model._require_built("saving")
    config = {"format": FORMAT, "version": VERSION, "model": model_config(model),
              "compile": _compile_config(model), "epochs_trained": model.epochs_trained,
              "shuffle_state": model._shuffle_rng.bit_generator.state,
              "random_state": model._random_state()}
    members = {"model.json": json.dumps(config, indent=1).encode("utf-8"),
               "weights.npz": _npz(model.get_weights())}
    opt = model.optimizer
    if opt is not None and opt.variables:
        sess = backend.session(model.graph)
        members["optimizer.npz"] = _npz([sess.get_value(v) for v in opt.variables])
    return _write_zip(path, members)


_unsafe = []  # non-empty while a load_model(safe_mode=False) runs


def safe_mode():
    """False while load_model(..., safe_mode=False) rebuilds a model: only then may a Lambda
    layer's saved bytecode be run."""
    return not _unsafe


def load_model(path, safe_mode=True):
    if not safe_mode:
        _unsafe.append(path)
        try:
            return load_model(path)
        finally:
            _unsafe.pop()
    from .models import Model
    members = _read_zip(path, "model file")
    if "model.json" not in members or "weights.npz" not in members:
        raise CheckpointError(f"{path}: a model file needs model.json and weights.npz")
    config = _json(members["model.json"], path, FORMAT)
    model = model_from_config(config["model"])
    if not isinstance(model, Model):
        raise CheckpointError(f"{path}: the saved architecture is not a model")
    _assign(model.weights, _arrays(members["weights.npz"], path, "weights.npz"), path, "weight")
    if config.get("compile"):
        _compile_from_config(model, config["compile"])
        if "optimizer.npz" in members:
            model.optimizer.build(model.trainable_weights)
            _assign(model.optimizer.variables,
                    _arrays(members["optimizer.npz"], path, "optimizer.npz"), path, "optimizer")
    model.epochs_trained = int(config.get("epochs_trained", 0))
    try:
        if config.get("random_state"):
            model._set_random_state(config["random_state"])
        elif config.get("shuffle_state"):
            model._set_random_state({"shuffle": config["shuffle_state"]})
    except CheckpointError as e:
        raise CheckpointError(f"{path}: bad random_state ({e.detail})") from None
    return model


# ---- backups (gk.callbacks.BackupAndRestore) ------------------------------------------------
BACKUP_FORMAT = "graphc.frontend.backup"
BACKUP_MEMBERS = {"backup.json", "variables.npz"}


def _backup_variables(model):
    """(weights, optimizer variables, metric totals): the variables a backup holds."""
    metric_vars = [v for m in (model.compiled.all_metrics() if model.compiled else ())
                   for v in (m._state or ())]
    opt = model.optimizer
    return list(model.weights), list(opt.variables if opt is not None else ()), metric_vars


def write_backup(model, path, position, history, steps_done):
    """Write what resuming fit at `position` (a FitPosition) needs to `path`, atomically."""
    groups = _backup_variables(model)
    sess = backend.session(model.graph)
    arrays = [sess.get_value(v) for group in groups for v in group]
    state = {"format": BACKUP_FORMAT, "version": VERSION, "epoch": position.epoch,
             "batch": position.batch, "steps_done": steps_done,
             "logs": {k: np.asarray(v, float).tolist() for k, v in (position.logs or {}).items()},
             "history": history, "epochs_trained": model.epochs_trained,
             "random_state": model._random_state(position.shuffle_state),
             "counts": dict(zip(("weights", "optimizer", "metrics"), map(len, groups)))}
    return _write_zip(path, {"backup.json": json.dumps(state).encode("utf-8"),
                             "variables.npz": _npz(arrays)}, zipfile.ZIP_STORED)


def read_backup(model, path):
    """Restore the backup at `path` into `model` (variables, random streams, epoch count);
    returns its state (epoch, batch, logs, history, steps_done). Checks everything first, so
    a backup that does not fit the model changes nothing."""
    try:
        with zipfile.ZipFile(path) as z:
            if set(z.namelist()) != BACKUP_MEMBERS:
                raise CheckpointError(f"{path}: a backup holds {sorted(BACKUP_MEMBERS)}, this "
                                      f"file {sorted(z.namelist())[:5]}")
            blobs = {name: z.read(name) for name in BACKUP_MEMBERS}
    except CheckpointError:
        raise
    except FileNotFoundError:
        raise FileNotFoundError_(f"no backup at {path}", path) from None
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise CheckpointError(f"{path}: not a readable backup ({e})") from None
    state = _json(blobs["backup.json"], path, BACKUP_FORMAT)
    arrays = _arrays(blobs["variables.npz"], path, "variables.npz")
    groups = _backup_variables(model)
    try:
        counts = [int(state["counts"][k]) for k in ("weights", "optimizer", "metrics")]
        position = (int(state["epoch"]), int(state["batch"]), int(state["steps_done"]))
        logs, history = dict(state["logs"]), state["history"]
        history = ({str(k): [np.asarray(x, np.float64) if isinstance(x, list) else float(x)
                             for x in v] for k, v in history["history"].items()},
                   [int(e) for e in history["epoch"]])
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise CheckpointError(f"{path}: a malformed backup.json ({e!r})") from None
    if counts[:2] != [len(g) for g in groups[:2]] or sum(counts) != len(arrays):
        raise CheckpointError(f"{path}: the backup holds {counts[0]} weights and {counts[1]} "
                              f"optimizer variables, the model has {len(groups[0])} and "
                              f"{len(groups[1])}: it is another model's backup")
    variables = groups[0] + groups[1]
    values = arrays[:counts[0] + counts[1]]
    if counts[2] == len(groups[2]):  # the metrics' totals, where the same metrics are built
        variables, values = variables + groups[2], values + arrays[counts[0] + counts[1]:]
    for var, arr in zip(variables, values):
        if tuple(var.shape) != arr.shape:
            raise CheckpointError(f"{path}: the backup's value of '{var.name}' has shape "
                                  f"{arr.shape}, the model's is {tuple(var.shape)}")
    try:
        model._set_random_state(state.get("random_state") or {})
    except CheckpointError as e:
        raise CheckpointError(f"{path}: bad random_state ({e.detail})") from None
    sess = backend.session(model.graph)
    for var, arr in zip(variables, values):
        sess.set_value(var, arr)
    model.epochs_trained = int(state.get("epochs_trained", position[0]))
    return {"epoch": position[0], "batch": position[1], "steps_done": position[2],
            "logs": logs, "history": history}


def save_weights(model, path):
    """Only the weights, in model.weights order, in the same zip format."""
    model._require_built("saving weights")
    manifest = {"format": WEIGHTS_FORMAT, "version": VERSION,
                "names": [v.name for v in model.weights]}
    return _write_zip(path, {"model.json": json.dumps(manifest).encode("utf-8"),
                             "weights.npz": _npz(model.get_weights())})


def load_weights(model, path):
    model._require_built("loading weights")
    members = _read_zip(path, "weights file")
    if "weights.npz" not in members:
        raise CheckpointError(f"{path}: no weights.npz member")
    if "model.json" in members:
        config = json.loads(members["model.json"].decode("utf-8"))
        if config.get("format") not in (FORMAT, WEIGHTS_FORMAT):
            raise CheckpointError(f"{path}: not a graphc weights file")
    _assign(model.weights, _arrays(members["weights.npz"], path, "weights.npz"), path, "weight")


# Keras's registry names, public in gk.saving as in keras.saving
from .serialization import (CustomObjectScope, custom_object_scope,  # noqa: E402
                            deserialize_keras_object, get_custom_objects, get_registered_name,
                            get_registered_object, register_keras_serializable,
                            serialize_keras_object)
__all__ = ["register", "load_model", "save_model", "save_weights", "load_weights",
           "CustomObjectScope", "custom_object_scope", "deserialize_keras_object",
           "get_custom_objects", "get_registered_name", "get_registered_object",
           "register_keras_serializable", "serialize_keras_object"]
