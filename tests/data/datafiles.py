"""Small files in the real formats (IDX, CIFAR python batches, the CIFAR archive), written
independently of the package's parsers."""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np

from alignlab.data._files import Digest, RemoteFile

IDX_NAMES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
CIFAR_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX encoding of a uint8 array: 0, 0, type 0x08, ndim, big-endian uint32 dims, data."""
    array = np.asarray(array, dtype=np.uint8)
    return bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) \
        + array.tobytes()


def cifar_batch_bytes(images: np.ndarray, labels: np.ndarray, *, bytes_keys: bool = False) -> bytes:
    """A CIFAR-10 python batch: pickled dict with data (N, 3072) uint8 and labels."""
    entry = {"batch_label": "test", "labels": [int(v) for v in labels],
             "data": np.asarray(images, np.uint8).reshape(len(images), -1),
             "filenames": [f"{i}.png" for i in range(len(images))]}
    if bytes_keys:  # as the original python-2 pickles decode
        entry = {k.encode(): v for k, v in entry.items()}
    return pickle.dumps(entry, protocol=2)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class SmallMnist:
    """Four small IDX files (train: n_train images, test: n_test), pixel [0, 0] of image i
    holding i so that examples can be identified after splits and shuffles."""

    def __init__(self, n_train: int = 12, n_test: int = 5, size: int = 28, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.x_train = rng.integers(0, 256, (n_train, size, size), dtype=np.uint8)
        self.x_train[:, 0, 0] = np.arange(n_train)
        self.y_train = (np.arange(n_train) % 10).astype(np.uint8)
        self.x_test = rng.integers(0, 256, (n_test, size, size), dtype=np.uint8)
        self.y_test = (np.arange(n_test) % 10).astype(np.uint8)
        raw = [idx_bytes(a) for a in (self.x_train, self.y_train, self.x_test, self.y_test)]
        self.content = dict(zip(IDX_NAMES, raw, strict=True))
        self.gz = {name: gzip.compress(data, mtime=0) for name, data in self.content.items()}

    def specs(self) -> tuple[RemoteFile, ...]:
        """Digests as the package records them: md5 of the .gz, sha256 of the content."""
        return tuple(RemoteFile(n, Digest("md5", md5(self.gz[n])),
                                Digest("sha256", sha256(self.content[n]))) for n in IDX_NAMES)

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in self.gz.items():
            (folder / name).write_bytes(data)
        return folder


class SmallCifar:
    """Six small CIFAR batches (n per batch) and the archive holding them; pixel
    [0, 0, 0] of training image i holds i."""

    def __init__(self, n: int = 4, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.images = rng.integers(0, 256, (6, n, 3, 32, 32), dtype=np.uint8)
        self.images[:5, :, 0, 0, 0] = np.arange(5 * n).reshape(5, n)
        self.labels = rng.integers(0, 10, (6, n))
        self.batches = {name: cifar_batch_bytes(self.images[i], self.labels[i],
                                                bytes_keys=(i % 2 == 0))
                        for i, name in enumerate(CIFAR_BATCHES)}
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            for name, data in self.batches.items():
                info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        self.archive = buf.getvalue()

    def write_batches(self, folder: Path) -> Path:
        (folder / "cifar-10-batches-py").mkdir(parents=True, exist_ok=True)
        for name, data in self.batches.items():
            (folder / "cifar-10-batches-py" / name).write_bytes(data)
        return folder
