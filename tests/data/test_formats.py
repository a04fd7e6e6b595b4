"""The IDX and CIFAR parsers (data/idx.py, data/cifar.py) on bytes written by the tests
(tests/data/datafiles.py)."""

from __future__ import annotations

import pickle
import struct

import numpy as np
import pytest
from datafiles import cifar_batch_bytes, idx_bytes

from alignlab.data import DataFormatError
from alignlab.data.cifar import parse_cifar_batch
from alignlab.data.idx import parse_idx


def test_idx_uint8_round_trip():
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(parse_idx(idx_bytes(images)), images)
    labels = np.array([7, 0, 9], dtype=np.uint8)
    np.testing.assert_array_equal(parse_idx(idx_bytes(labels)), labels)


def test_idx_multibyte_types_are_big_endian():
    values = np.array([[1, -2], [300, 70000]], dtype=np.int32)
    data = bytes([0, 0, 0x0C, 2]) + struct.pack(">2I", 2, 2) + values.astype(">i4").tobytes()
    out = parse_idx(data)
    np.testing.assert_array_equal(out, values)
    assert out.dtype.isnative
    floats = np.array([0.5, -1.25], dtype=">f4")
    data = bytes([0, 0, 0x0D, 1]) + struct.pack(">I", 2) + floats.tobytes()
    np.testing.assert_array_equal(parse_idx(data), [0.5, -1.25])


@pytest.mark.parametrize("mutate, message", [
    (lambda b: b"\x01" + b[1:], "not an IDX file"),  # magic must start with two zero bytes
    (lambda b: b[:2] + b"\x07" + b[3:], "not an IDX file"),  # unknown type code
    (lambda b: b[:-1], "the file has"),  # one value short
    (lambda b: b + b"\x00", "the file has"),  # one byte too many
    (lambda b: b[:6], "header cut short"),
])
def test_idx_rejects_malformed_files(mutate, message):
    good = idx_bytes(np.zeros((2, 3, 3), np.uint8))
    with pytest.raises(DataFormatError, match=message):
        parse_idx(mutate(good), what="f.idx")


@pytest.mark.parametrize("bytes_keys", [False, True])
def test_cifar_batch_layout(bytes_keys):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (3, 3, 32, 32), dtype=np.uint8)
    labels = np.array([3, 1, 4])
    x, y = parse_cifar_batch(cifar_batch_bytes(images, labels, bytes_keys=bytes_keys))
    # the published layout: per image 1024 red, 1024 green, 1024 blue values, row-major
    flat = images.reshape(3, -1)
    assert x.shape == (3, 3, 32, 32) and x.dtype == np.uint8
    np.testing.assert_array_equal(x[:, 1, 0, :], flat[:, 1024:1056])
    np.testing.assert_array_equal(x[:, 2, 31, 31], flat[:, 3071])
    np.testing.assert_array_equal(y, labels)
    assert y.dtype == np.int64


def test_cifar_batch_refuses_arbitrary_objects():
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with pytest.raises(DataFormatError, match="refusing to load builtins.print"):
        parse_cifar_batch(pickle.dumps({"data": Evil(), "labels": []}))


def test_cifar_batch_rejects_wrong_shapes():
    bad = pickle.dumps({"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]})
    with pytest.raises(DataFormatError, match=r"\(N, 3072\)"):
        parse_cifar_batch(bad)
    bad = cifar_batch_bytes(np.zeros((2, 3, 32, 32)), np.array([0]))
    with pytest.raises(DataFormatError, match="1 labels for 2 images"):
        parse_cifar_batch(bad)
