"""graphc.frontend: a Keras-like layer API over graphc (conventionally `import
graphc.frontend as gk`).

    model = gk.Sequential([gk.layers.Input((8, 8, 1)), gk.layers.Conv2D(16, 3, padding="same",
                           activation="relu"), gk.layers.Flatten(), gk.layers.Dense(10)])
    model.compile(optimizer="adam", loss=gk.losses.SparseCategoricalCrossentropy(
        from_logits=True), metrics=["accuracy"])
    model.fit(x, y, epochs=5)

Each train step (forward, loss, gradients, optimizer update, metrics) is one compiled graphc
function.
"""
from . import (activations, backend, callbacks, constraints, datasets, distribution,
               initializers, layers, losses, metrics, models, ops, optimizers, random,
               regularizers, saving, schedules, utils)
from .layers import Input
from .models import Model, Sequential, load_model

optimizers.schedules = schedules

__all__ = ["activations", "backend", "callbacks", "constraints", "datasets", "distribution",
           "initializers", "layers", "losses", "metrics", "models", "ops", "optimizers", "random",
           "regularizers", "saving", "schedules", "utils", "Input", "Model", "Sequential",
           "load_model"]
