"""gk.layers: the building blocks of models."""
from . import (adaptive, affine, aug_mix, color, color_jitter, conv_lstm, depthwise,
               dot_attention, elastic, equalization, gaussian_blur, grouped_query_attention,
               hsv_augment, mix_up, noise, perspective, preprocessing, rand_augment,
               random_crop, random_erasing, text, volumetric)
from .adaptive import (AdaptiveAveragePooling1D, AdaptiveAveragePooling2D,
                       AdaptiveAveragePooling3D, AdaptiveMaxPooling1D, AdaptiveMaxPooling2D,
                       AdaptiveMaxPooling3D)
from .attention import MultiHeadAttention
from .color import (AutoContrast, RandomColorDegeneration, RandomGrayscale, RandomInvert,
                    RandomPosterization, RandomSharpness, Solarization)
from .base import InputSpec, Layer
from .cells import GRUCell, LSTMCell, SimpleRNNCell, StackedRNNCells
from .conv import Conv2D
from .conv_lstm import ConvLSTM1D, ConvLSTM2D, ConvLSTM3D
from .depthwise import DepthwiseConv1D, DepthwiseConv2D, SeparableConv1D, SeparableConv2D
from .dot_attention import AdditiveAttention, Attention
from .einsum_dense import EinsumDense
from .extra import (LAYERS as _EXTRA, ELU, ActivityRegularization, Average, AveragePooling1D,
                    Conv1D, Conv1DTranspose, Conv2DTranspose, Cropping1D, Cropping2D, Dot,
                    GlobalAveragePooling1D,
                    GlobalMaxPooling1D, GlobalMaxPooling2D, Identity, Lambda, LeakyReLU, Maximum,
                    MaxPooling1D, Minimum, Multiply, Permute, PReLU, ReLU, RepeatVector,
                    Rescaling, Softmax, Subtract, TimeDistributed, UpSampling1D, UpSampling2D,
                    Wrapper, ZeroPadding1D, ZeroPadding2D, _functional_merge)
from .core import (Activation, Dense, Dropout, Embedding, Flatten, Input, InputLayer, Masking,
                   Reshape)
from .merge import Add, Concatenate
from .noise import (AlphaDropout, GaussianDropout, GaussianNoise, SpatialDropout1D,
                    SpatialDropout2D, SpatialDropout3D)
from .normalization import (BatchNormalization, GroupNormalization, LayerNormalization,
                            RMSNormalization, UnitNormalization)
from .pooling import AveragePooling2D, GlobalAveragePooling2D, MaxPooling2D
from .preprocessing import (CategoryEncoding, CenterCrop, Discretization, IntegerLookup,
                            Normalization, RandomBrightness, RandomContrast, RandomFlip,
                            Resizing)
from .text import Hashing, StringLookup, TextVectorization
from .random_crop import RandomCrop
from .recurrent import GRU, LSTM, RNN, Bidirectional, SimpleRNN
from .spectral import SpectralNormalization
from .affine import RandomRotation, RandomShear, RandomTranslation, RandomZoom
from .perspective import RandomPerspective
from .elastic import RandomElasticTransform
from .grouped_query_attention import GroupedQueryAttention, GroupQueryAttention
from .aug_mix import AugMix
from .rand_augment import RandAugment
from .equalization import Equalization
from .color_jitter import RandomColorJitter
from .mix_up import CutMix, MixUp
from .random_erasing import RandomErasing
from .gaussian_blur import RandomGaussianBlur
from .hsv_augment import RandomHue, RandomSaturation
from .volumetric import (AveragePooling3D, Conv3D, Conv3DTranspose, Cropping3D,
                         GlobalAveragePooling3D, GlobalMaxPooling3D, MaxPooling3D, UpSampling3D,
                         ZeroPadding3D)

# the layers that saving can rebuild by class name (custom ones join via gk.saving.register)
BUILTIN = {cls.__name__: cls for cls in (
    Activation, Add, AveragePooling2D, BatchNormalization, Concatenate, Conv2D, Dense, Dropout,
    Embedding, Flatten, GlobalAveragePooling2D, LayerNormalization, MaxPooling2D, Reshape,
    Masking, SimpleRNN, LSTM, GRU, Bidirectional, MultiHeadAttention, GroupNormalization,
    UnitNormalization, RMSNormalization, EinsumDense, Wrapper, GRUCell, LSTMCell, RNN,
    SimpleRNNCell, StackedRNNCells) + _EXTRA + noise.LAYERS
    + preprocessing.LAYERS + text.LAYERS + dot_attention.LAYERS + depthwise.LAYERS + volumetric.LAYERS
    + adaptive.LAYERS + color.LAYERS + random_crop.LAYERS + conv_lstm.LAYERS
    + (SpectralNormalization,) + hsv_augment.LAYERS + gaussian_blur.LAYERS + random_erasing.LAYERS
    + mix_up.LAYERS + color_jitter.LAYERS + equalization.LAYERS + affine.LAYERS
    + perspective.LAYERS + elastic.LAYERS + grouped_query_attention.LAYERS
    + aug_mix.LAYERS + rand_augment.LAYERS}

# Keras's other spellings of the same classes, and its functional merges
Convolution1D, Convolution2D, Convolution2DTranspose = Conv1D, Conv2D, Conv2DTranspose
Convolution1DTranspose = Conv1DTranspose
MaxPool1D, MaxPool2D, AvgPool1D, AvgPool2D = (MaxPooling1D, MaxPooling2D, AveragePooling1D,
                                              AveragePooling2D)
GlobalMaxPool1D, GlobalMaxPool2D = GlobalMaxPooling1D, GlobalMaxPooling2D
GlobalAvgPool1D, GlobalAvgPool2D = GlobalAveragePooling1D, GlobalAveragePooling2D
GlobalMaxPool3D, GlobalAvgPool3D = GlobalMaxPooling3D, GlobalAveragePooling3D
Convolution3D, Convolution3DTranspose = Conv3D, Conv3DTranspose
MaxPool3D, AvgPool3D = MaxPooling3D, AveragePooling3D
SeparableConvolution1D, SeparableConvolution2D = SeparableConv1D, SeparableConv2D
add, average, concatenate, dot, maximum, minimum, multiply, subtract = (
    _functional_merge(c) for c in (Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply,
                                   Subtract))


def serialize(layer):
    """A layer's {"class_name", "config"}, as a model file holds it."""
    from ..saving import layer_config
    return layer_config(layer)


def deserialize(config, custom_objects=None):
    """The layer serialize described (custom_objects: classes it may name)."""
    from ..saving import layer_from_config
    from ..serialization import objects_in_scope
    with objects_in_scope(custom_objects):
        return layer_from_config(config)

# the public names (gk.layers.Dense, ...)
__all__ = ["MultiHeadAttention", "InputSpec", "Layer", "Conv2D", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D", "DepthwiseConv1D",
           "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D", "AdditiveAttention",
           "Attention", "EinsumDense", "ELU", "ActivityRegularization", "Average",
           "AveragePooling1D", "Conv1D", "Conv1DTranspose", "Conv2DTranspose", "Cropping1D",
           "Cropping2D", "Dot",
           "GlobalAveragePooling1D", "GlobalMaxPooling1D", "GlobalMaxPooling2D", "Identity",
           "Lambda", "LeakyReLU", "Maximum", "MaxPooling1D", "Minimum", "Multiply", "Permute",
           "PReLU", "ReLU", "RepeatVector", "Rescaling", "Softmax", "Subtract", "TimeDistributed",
           "UpSampling1D", "UpSampling2D", "Wrapper", "ZeroPadding1D", "ZeroPadding2D",
           "Activation", "Dense", "Dropout", "Embedding", "Flatten", "Input", "InputLayer",
           "Masking", "Reshape", "Add", "Concatenate", "AlphaDropout", "GaussianDropout",
           "GaussianNoise", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
           "BatchNormalization", "GroupNormalization", "LayerNormalization", "RMSNormalization",
           "UnitNormalization", "AveragePooling2D", "GlobalAveragePooling2D", "MaxPooling2D",
           "CategoryEncoding", "CenterCrop", "Discretization", "IntegerLookup", "Normalization",
           "RandomBrightness", "RandomContrast", "RandomFlip", "Resizing", "Hashing", "StringLookup",
           "TextVectorization", "GRU", "GRUCell", "LSTM", "LSTMCell", "RNN", "SimpleRNNCell",
           "StackedRNNCells",
           "Bidirectional",
           "SimpleRNN", "Cropping3D", "GlobalAveragePooling3D", "GlobalMaxPooling3D",
           "UpSampling3D", "ZeroPadding3D", "Convolution1D", "Convolution2D",
           "Convolution2DTranspose", "Convolution1DTranspose", "MaxPool1D", "MaxPool2D", "AvgPool1D", "AvgPool2D",
           "GlobalMaxPool1D", "GlobalMaxPool2D", "GlobalAvgPool1D", "GlobalAvgPool2D",
           "GlobalMaxPool3D", "GlobalAvgPool3D", "SeparableConvolution1D",
           "SeparableConvolution2D", "add", "average", "concatenate", "dot", "maximum", "minimum",
           "multiply", "subtract", "serialize", "deserialize", "AveragePooling3D", "AvgPool3D",
           "Conv3D", "Conv3DTranspose", "Convolution3D", "Convolution3DTranspose",
           "MaxPool3D", "MaxPooling3D", "AdaptiveAveragePooling1D", "AdaptiveAveragePooling2D",
           "AdaptiveAveragePooling3D", "AdaptiveMaxPooling1D", "AdaptiveMaxPooling2D",
           "AdaptiveMaxPooling3D", "SpectralNormalization", "AutoContrast", "RandomGrayscale",
           "RandomInvert", "RandomPosterization", "Solarization", "RandomColorDegeneration",
           "RandomSharpness", "RandomCrop"]
__all__ += ["RandomSaturation", "RandomHue"]
__all__ += ["RandomGaussianBlur"]
__all__ += ["RandomErasing"]
__all__ += ["MixUp"]
__all__ += ["RandomColorJitter"]
__all__ += ["Equalization"]
__all__ += ["CutMix"]
__all__ += ["RandomRotation"]
__all__ += ["RandomTranslation", "RandomZoom"]
__all__ += ["RandomShear"]
__all__ += ["RandomPerspective"]
__all__ += ["RandomElasticTransform"]
__all__ += ["GroupedQueryAttention", "GroupQueryAttention"]
__all__ += ["AugMix"]
__all__ += ["RandAugment"]
