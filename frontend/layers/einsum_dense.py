"""EinsumDense: a dense layer whose contraction is an einsum equation, "ab,bc->ac" being
Dense; kernel and bias shapes follow from the equation and output_shape as in Keras."""
import graphc as gc
from graphc.errors import GraphcError

from .base import Layer, set_weight_options, weight_options_config


class EinsumDense(Layer):
    def __init__(self, equation, output_shape, activation=None, bias_axes=None,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 bias_constraint=None, lora_rank=None, lora_alpha=None, **kwargs):
        super().__init__(**kwargs)
        if lora_rank is not None:
            raise GraphcError("EinsumDense(lora_rank=...) is not supported")
        self.equation = equation
        self.partial_output_shape = [output_shape] if isinstance(output_shape, int) else \
            [None if d is None else int(d) for d in output_shape]
        self.bias_axes = bias_axes
        set_weight_options(self, activation, bias_axes is not None, kernel_initializer,
                           bias_initializer, kernel_regularizer, bias_regularizer,
                           kernel_constraint, bias_constraint)

    def build(self, input_shape):
        try:
            lhs, out_spec = self.equation.replace(" ", "").split("->")
            in_spec, kernel_spec = lhs.split(",")
        except ValueError:
            raise GraphcError(f"EinsumDense equation must read 'in,kernel->out', got "
                              f"{self.equation!r}") from None
        if "." in self.equation:
            raise GraphcError("EinsumDense equations with '...' are not supported yet")
        self._specs = (in_spec, kernel_spec, out_spec)
        if len(in_spec) != len(input_shape):
            raise GraphcError(f"EinsumDense '{self.name}': equation input {in_spec!r} does "
                              f"not match inputs of shape {input_shape}")
        partial = self.partial_output_shape
        if len(partial) != len(out_spec) - 1:
            raise GraphcError(f"EinsumDense '{self.name}': output_shape {partial} must give "
                              f"the {len(out_spec) - 1} non-batch dims of {out_spec!r}")
        dims = dict(zip(in_spec, input_shape))
        full = [input_shape[0]] + [dims.get(ch) if d is None else d
                                   for ch, d in zip(out_spec[1:], partial)]
        out_dims = dict(zip(out_spec, full))
        kernel_shape = tuple(dims[ch] if ch in in_spec else out_dims[ch] for ch in kernel_spec)
        self.full_output_shape = full
        self.kernel = self.add_weight("kernel", kernel_shape, self.kernel_initializer,
                                      regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        self.bias = None
        if self.bias_axes is not None:
            missing = [ch for ch in self.bias_axes if ch not in out_spec]
            if missing:
                raise GraphcError(f"EinsumDense bias_axes {self.bias_axes!r} are not all in "
                                  f"the output {out_spec!r}")
            first = min(out_spec.find(ch) for ch in self.bias_axes)
            bias_shape = tuple(out_dims[ch] if ch in self.bias_axes else 1
                               for ch in out_spec[first:])
            self.bias = self.add_weight("bias", bias_shape, self.bias_initializer,
                                        regularizer=self.bias_regularizer,
                                        constraint=self.bias_constraint)

    def call(self, inputs):
        out = _contract(inputs, self.kernel, *self._specs)
        if self.bias is not None:
            out = out + self.bias
        return self.activation(out)

    def get_config(self):
        config = {**super().get_config(), **weight_options_config(self),
                  "equation": self.equation, "output_shape": self.partial_output_shape,
                  "bias_axes": self.bias_axes}
        config.pop("use_bias")  # bias_axes says it
        return config


def _contract(x, kernel, in_spec, kernel_spec, out_spec):
    """The einsum in_spec,kernel_spec->out_spec as one matmul, so that the batch axis may be
    of run-time size: x's kept axes times the contracted ones, by the kernel's contracted
    axes times its kept ones; gc.einsum where an axis is shared and kept."""
    shared = [ch for ch in in_spec if ch in kernel_spec]
    if any(ch in out_spec for ch in shared) or any(ch not in in_spec + kernel_spec
                                                   for ch in out_spec):
        return gc.einsum(f"{in_spec},{kernel_spec}->{out_spec}", x, kernel)
    x_keep = [ch for ch in in_spec if ch not in shared and ch in out_spec]
    k_keep = [ch for ch in kernel_spec if ch not in shared and ch in out_spec]
    if len(x_keep) + len(shared) != len(in_spec) or len(k_keep) + len(shared) != \
            len(kernel_spec):  # an axis summed away on one side only
        return gc.einsum(f"{in_spec},{kernel_spec}->{out_spec}", x, kernel)
    dims = dict(zip(in_spec, x.shape))
    dims.update(zip(kernel_spec, kernel.shape))
    xt = gc.transpose(x, [in_spec.index(ch) for ch in x_keep + shared])
    kt = gc.transpose(kernel, [kernel_spec.index(ch) for ch in shared + k_keep])
    inner = 1
    for ch in shared:
        inner *= dims[ch]
    cols = 1
    for ch in k_keep:
        cols *= dims[ch]
    flat = gc.matmul(gc.reshape(xt, (-1, inner)), gc.reshape(kt, (inner, cols)))
    kept = [-1 if not isinstance(dims[ch], int) else dims[ch] for ch in x_keep] + \
        [dims[ch] for ch in k_keep]
    out = gc.reshape(flat, tuple(kept))
    order = x_keep + k_keep
    return gc.transpose(out, [order.index(ch) for ch in out_spec])
