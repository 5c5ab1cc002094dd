"""
Title: Simple MNIST convnet
Author: [fchollet](https://twitter.com/fchollet)
Description: A simple convnet that achieves ~99% test accuracy on MNIST.

keras.io's example, run on graphc: only the import lines and the data loading differ. The
data are graphc's bundled UCI digits (8x8, no network needed), scaled to 0..255 and enlarged
to MNIST's 28x28; GRAPHC_EXAMPLE_SAMPLES takes that many training images (tests use a few).
"""

"""
## Setup
"""

import numpy as np
import graphc.frontend as keras
from graphc.frontend import layers

"""
## Prepare the data
"""

# Model / data parameters
num_classes = 10
input_shape = (28, 28, 1)

# Load the data and split it between train and test sets (graphc: the bundled digits as
# MNIST-like 28x28 uint8 images)
def load_data():
    import os
    (x_train, y_train), (x_test, y_test) = keras.datasets.load_digits()
    n = int(os.environ.get("GRAPHC_EXAMPLE_SAMPLES", len(x_train)))
    as_mnist = lambda x: np.pad((x * 255).round().astype("uint8").repeat(3, 1).repeat(3, 2),
                                [(0, 0), (2, 2), (2, 2)])
    return (as_mnist(x_train[:n]), y_train[:n]), (as_mnist(x_test[:max(n // 4, 1)]),
                                                  y_test[:max(n // 4, 1)])
(x_train, y_train), (x_test, y_test) = load_data()

# Scale images to the [0, 1] range
x_train = x_train.astype("float32") / 255
x_test = x_test.astype("float32") / 255
# Make sure images have shape (28, 28, 1)
x_train = np.expand_dims(x_train, -1)
x_test = np.expand_dims(x_test, -1)
print("x_train shape:", x_train.shape)
print(x_train.shape[0], "train samples")
print(x_test.shape[0], "test samples")


# convert class vectors to binary class matrices
y_train = keras.utils.to_categorical(y_train, num_classes)
y_test = keras.utils.to_categorical(y_test, num_classes)

"""
## Build the model
"""

model = keras.Sequential(
    [
        keras.Input(shape=input_shape),
        layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Dense(num_classes, activation="softmax"),
    ]
)

model.summary()

"""
## Train the model
"""

batch_size = 128
epochs = 15

model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])

model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, validation_split=0.1)

"""
## Evaluate the trained model
"""

score = model.evaluate(x_test, y_test, verbose=0)
print("Test loss:", score[0])
print("Test accuracy:", score[1])
