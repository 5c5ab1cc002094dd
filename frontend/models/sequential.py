"""Sequential: a stack of layers, each feeding the next."""
import graphc as gc
from graphc.errors import GraphcError
from graphc.ir.graph import Tensor

from ..layers.base import Layer
from ..layers.core import InputLayer
from .model import Model


class Sequential(Model):
    """Sequential([gk.layers.Input((8, 8, 1)), gk.layers.Conv2D(...), ...]).

    With an Input first (or a first layer given input_shape=...), the model is built at once,
    so summary() works before training; otherwise it is built from the first data it sees.
    """

    def __init__(self, layers=None, name=None):
        super().__init__(name=name)
        self._layers = []
        self._input = None
        self._multi_input = self._multi_output = False
        for layer in layers or []:
            self.add(layer)

    def add(self, layer):
        if isinstance(layer, InputLayer):
            layer = layer.output
        if isinstance(layer, Tensor):
            if self._layers or self._input is not None:
                raise GraphcError("an Input can only come first in a Sequential model")
            self._input = layer
            return
        if not isinstance(layer, Layer):
            raise GraphcError(f"Sequential takes layers, got {layer!r}")
        self._layers.append(layer)
        self._steps = {}
        if self._input is None and self.inputs is not None:  # built from data before
            self._input = self.inputs[0]
        if self._input is None and self._layers[0].input_shape_hint is not None:
            self._input = gc.placeholder("float32", (None,) + self._layers[0].input_shape_hint,
                                         name="input")
        if self._input is not None:
            self._set_io([self._input], [self.call(self._input, training=False)])

    @property
    def shows_inputs(self):
        return self.inputs is not None

    @property
    def layers(self):
        return list(self._layers)

    def call(self, inputs, training=None):
        x = inputs
        for layer in self._layers:
            x = layer(x, training=training)
        return x

    def get_config(self):
        return {"name": self.name}
