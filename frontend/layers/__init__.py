"""gk.layers: the building blocks of models."""
from .attention import MultiHeadAttention
from .base import Layer
from .conv import Conv2D
from .extra import (LAYERS as _EXTRA, ELU, ActivityRegularization, Average, AveragePooling1D,
                    Conv1D, Conv2DTranspose, Cropping1D, Cropping2D, Dot, GlobalAveragePooling1D,
                    GlobalMaxPooling1D, GlobalMaxPooling2D, Identity, Lambda, LeakyReLU, Maximum,
                    MaxPooling1D, Minimum, Multiply, Permute, PReLU, ReLU, RepeatVector,
                    Rescaling, Softmax, Subtract, TimeDistributed, UpSampling1D, UpSampling2D,
                    ZeroPadding1D, ZeroPadding2D, _functional_merge)
from .core import Activation, Dense, Dropout, Embedding, Flatten, Input, Masking, Reshape
from .merge import Add, Concatenate
from .normalization import BatchNormalization, LayerNormalization
from .pooling import AveragePooling2D, GlobalAveragePooling2D, MaxPooling2D
from .recurrent import GRU, LSTM, Bidirectional, SimpleRNN

# the layers that saving can rebuild by class name (custom ones join via gk.saving.register)
BUILTIN = {cls.__name__: cls for cls in (
    Activation, Add, AveragePooling2D, BatchNormalization, Concatenate, Conv2D, Dense, Dropout,
    Embedding, Flatten, GlobalAveragePooling2D, LayerNormalization, MaxPooling2D, Reshape,
    Masking, SimpleRNN, LSTM, GRU, Bidirectional, MultiHeadAttention) + _EXTRA}

# Keras's other spellings of the same classes, and its functional merges
Convolution1D, Convolution2D, Convolution2DTranspose = Conv1D, Conv2D, Conv2DTranspose
MaxPool1D, MaxPool2D, AvgPool1D, AvgPool2D = (MaxPooling1D, MaxPooling2D, AveragePooling1D,
                                              AveragePooling2D)
GlobalMaxPool1D, GlobalMaxPool2D = GlobalMaxPooling1D, GlobalMaxPooling2D
GlobalAvgPool1D, GlobalAvgPool2D = GlobalAveragePooling1D, GlobalAveragePooling2D
add, average, concatenate, dot, maximum, minimum, multiply, subtract = (
    _functional_merge(c) for c in (Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply,
                                   Subtract))
