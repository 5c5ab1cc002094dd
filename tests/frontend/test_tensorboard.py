"""gk.callbacks.TensorBoard writes TFRecord event files: checked here by decoding them with a
small reader (CRC-32C, varints), so the test needs no TensorFlow."""
import glob
import os
import struct

import numpy as np

import graphc.frontend as gk
from graphc.frontend.tensorboard import crc32c


def _varint(buf, i):
    shift = value = 0
    while True:
        b = buf[i]
        value |= (b & 0x7F) << shift
        i += 1
        if not b & 0x80:
            return value, i
        shift += 7


def _fields(buf):
    """{field number: [values]} of a protobuf message (wire types 0, 1, 2, 5)."""
    out, i = {}, 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            n, i = _varint(buf, i)
            value, i = buf[i:i + n], i + n
        out.setdefault(number, []).append(value)
    return out


def _masked(crc):
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def _records(path):
    data, i, out = open(path, "rb").read(), 0, []
    while i < len(data):
        (n,) = struct.unpack("<Q", data[i:i + 8])
        assert struct.unpack("<I", data[i + 8:i + 12])[0] == _masked(crc32c(data[i:i + 8]))
        body = data[i + 12:i + 12 + n]
        assert struct.unpack("<I", data[i + 12 + n:i + 16 + n])[0] == _masked(crc32c(body))
        out.append(_fields(body))
        i += 16 + n
    return out


def _scalars(path):
    table = {}
    for event in _records(path):
        for summary in event.get(5, []):
            value = _fields(_fields(summary)[1][0])
            tag = value[1][0].decode()
            table.setdefault(tag, []).append((event[2][0],
                                              struct.unpack("<f", value[2][0])[0]))
    return table


def test_crc32c_known_value():
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"") == 0


def test_tensorboard_writes_epoch_and_batch_scalars_and_the_graph(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(20, 3)).astype("float32"), rng.normal(size=(20, 2)).astype("float32")
    inputs = gk.Input((3,))
    model = gk.Model(inputs, gk.layers.Dense(2)(inputs))
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    history = model.fit(x, y, epochs=3, batch_size=8, validation_split=0.2, verbose=0,
                        callbacks=[gk.callbacks.TensorBoard(tmp_path, update_freq=2)])
    train, = glob.glob(os.path.join(tmp_path, "train", "events.out.tfevents.*"))
    val, = glob.glob(os.path.join(tmp_path, "validation", "events.out.tfevents.*"))
    first = _records(train)[0]
    assert first[3] == [b"brain.Event:2"]
    graph = next(e[4][0] for e in _records(train) if 4 in e)
    ops = {_fields(node)[2][0].decode() for node in _fields(graph)[1]}
    assert {"placeholder", "matmul", "assign"} <= ops
    scalars = _scalars(train)
    assert [s for s, _ in scalars["epoch_loss"]] == [0, 1, 2]
    np.testing.assert_allclose([v for _, v in scalars["epoch_loss"]], history.history["loss"],
                               rtol=1e-6)
    assert [s for s, _ in scalars["batch_loss"]] == [2, 4, 6]  # every second of 2 per epoch
    val_scalars = _scalars(val)
    np.testing.assert_allclose([v for _, v in val_scalars["epoch_mae"]],
                               history.history["val_mae"], rtol=1e-6)
