"""gk.layers: the building blocks of models."""
from .attention import MultiHeadAttention
from .base import Layer
from .conv import Conv2D
from .core import Activation, Dense, Dropout, Embedding, Flatten, Input, Masking, Reshape
from .merge import Add, Concatenate
from .normalization import BatchNormalization, LayerNormalization
from .pooling import AveragePooling2D, GlobalAveragePooling2D, MaxPooling2D
from .recurrent import GRU, LSTM, Bidirectional, SimpleRNN

# the layers that saving can rebuild by class name (custom ones join via gk.saving.register)
BUILTIN = {cls.__name__: cls for cls in (
    Activation, Add, AveragePooling2D, BatchNormalization, Concatenate, Conv2D, Dense, Dropout,
    Embedding, Flatten, GlobalAveragePooling2D, LayerNormalization, MaxPooling2D, Reshape,
    Masking, SimpleRNN, LSTM, GRU, Bidirectional, MultiHeadAttention)}
