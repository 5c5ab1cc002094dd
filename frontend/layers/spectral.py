"""SpectralNormalization: a wrapped layer whose kernel is divided by its largest singular value,
estimated by power iteration, while training."""
import graphc as gc
from graphc.errors import GraphcError

from .. import initializers
from ..ops import normalize
from .extra import Wrapper


class SpectralNormalization(Wrapper):
    """Wraps a layer with a `kernel` (or an `embeddings` table). Each training call runs
    `power_iterations` steps of power iteration from the stored estimate `vector_u` (shape
    (1, kernel's last axis), non-trainable, truncated normal of stddev 0.02 at first), stores
    the new estimate, and calls the layer with kernel / sigma, sigma = v W u^T over the kernel
    reshaped to (-1, last axis) with u and v held constant for the gradient. An all-zero kernel
    is used as it is. As Keras 3 trains it on JAX, the kernel variable keeps its unnormalized
    value (the optimizer updates it through the division), and an inference call uses it as
    it is."""

    def __init__(self, layer, power_iterations=1, **kwargs):
        super().__init__(layer, **kwargs)
        if not isinstance(power_iterations, int) or power_iterations <= 0:
            raise GraphcError(f"SpectralNormalization: power_iterations should be greater than "
                              f"zero, got {power_iterations!r}")
        self.power_iterations = power_iterations

    def build(self, input_shape):
        if not self.layer.built:  # the kernel must exist before the first call normalizes it
            self.layer._graph = self._graph
            with self._graph.name_scope(self.layer.name):
                self.layer.build(input_shape)
            self.layer.built = True
        self.attribute = next((a for a in ("kernel", "embeddings")
                               if isinstance(getattr(self.layer, a, None), gc.Variable)), None)
        if self.attribute is None:
            raise GraphcError(f"SpectralNormalization '{self.name}': {type(self.layer).__name__}"
                              " has no attribute 'kernel' nor 'embeddings'")
        self.kernel = getattr(self.layer, self.attribute)
        # Keras lists the kernel first among the wrapper's weights, then vector_u, then the
        # wrapped layer's others
        self._own_weights.append((self.kernel, True))
        self.vector_u = self.add_weight("vector_u", (1, self.kernel.shape[-1]),
                                        initializers.TruncatedNormal(stddev=0.02),
                                        trainable=False)

    def normalized_weights(self):
        """(new vector_u, kernel / sigma)."""
        w = gc.reshape(self.kernel, (-1, self.kernel.shape[-1]))
        u = self.vector_u
        for _ in range(self.power_iterations):
            v = normalize(gc.matmul(u, gc.transpose(w)), axis=None)
            u = normalize(gc.matmul(v, w), axis=None)
        u, v = gc.stop_gradient(u), gc.stop_gradient(v)
        sigma = gc.matmul(gc.matmul(v, w), gc.transpose(u))
        zero = gc.equal(gc.max(gc.abs(w)), 0.0)  # nothing to normalize: keep both as they are
        sigma = gc.where(zero, gc.ones_like(sigma), sigma)
        return gc.where(zero, self.vector_u, u), self.kernel / gc.reshape(sigma, ())

    def call(self, inputs, training=False):
        if not training:
            return self.layer(inputs, training=False)
        u, kernel = self.normalized_weights()
        self.add_update(self.vector_u, u)
        setattr(self.layer, self.attribute, kernel)
        try:
            return self.layer(inputs, training=True)
        finally:
            setattr(self.layer, self.attribute, self.kernel)

    def get_config(self):
        return {**super().get_config(), "power_iterations": self.power_iterations}
