"""MNIST-format data: the IDX file format and the two data sets stored in it.

IDX (LeCun et al.) is a header (two zero bytes, a type code, the number of dimensions,
the big-endian sizes) and the values, big-endian, in C order. :func:`parse_idx` checks it
strictly (a file of the wrong size or type is an error, never silently reshaped);
:class:`IdxSource` reads the four gzipped IDX files of MNIST and Fashion-MNIST.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from ._files import (
    ChecksumError,
    DataFormatError,
    Digest,
    RemoteFile,
    download,
    read_verified,
    verify_bytes,
)
from .filesource import FileSource
from .pipeline import RawData

__all__ = ["FashionMnistSource", "IdxSource", "MnistSource", "parse_idx"]

# Normalisation constants (of pixel values scaled to [0, 1]).
MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)  # the paper's; used for Fashion-MNIST too

# IDX type codes (third magic byte) -> numpy dtype; multi-byte types are big-endian.
_IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def parse_idx(data: bytes, *, what: str = "IDX data") -> np.ndarray:
    """Decode one IDX file (already decompressed).

    Layout: two zero bytes, a type code, the number of dimensions ``d``; then ``d``
    big-endian uint32 sizes; then the values, big-endian, C order. ``what`` names the
    file in error messages.

    Returns
    -------
    numpy.ndarray
        Shape = the sizes in the header; native byte order.
    """
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise DataFormatError(f"{what} is not an IDX file (magic bytes {data[:4].hex()}).")
    dtype, ndim = _IDX_TYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataFormatError(f"{what}: IDX header cut short ({len(data)} bytes).")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    count = int(np.prod(dims, dtype=np.int64))
    if len(data) != header + count * dtype.itemsize:
        raise DataFormatError(
            f"{what}: IDX header says shape {dims} ({header + count * dtype.itemsize} bytes), "
            f"the file has {len(data)} bytes.")
    array = np.frombuffer(data, dtype=dtype, count=count, offset=header).reshape(dims)
    return array.astype(dtype.newbyteorder("="), copy=False)


class IdxSource(FileSource):
    """MNIST-format data: four gzipped IDX files (train/test images and labels)."""

    num_classes: ClassVar[int] = 10
    mean, std = MNIST_MEAN, MNIST_STD

    def fetch(self, folder: Path, mirrors: Sequence[str], verify: bool) -> None:
        for spec in self.files:
            path = folder / spec.name
            if path.is_file():
                try:
                    read_verified(path, spec, verify=verify)
                    continue
                except ChecksumError:
                    pass  # replaced by the download below

            def check(tmp: Path, spec: RemoteFile = spec) -> None:
                verify_bytes(tmp.read_bytes(), spec, gzipped=spec.compressed, verify=verify,
                             what=f"download of {spec.name}")

            download([m + spec.name for m in mirrors], path, check=check)

    def parse(self, contents: Mapping[str, bytes], source: Path) -> RawData:
        arrays = [parse_idx(contents[spec.name], what=str(source / spec.name))
                  for spec in self.files]
        x_train, y_train, x_test, y_test = arrays
        for images, labels, split in ((x_train, y_train, "train"), (x_test, y_test, "t10k")):
            if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
                raise DataFormatError(f"{source}: {split} images {images.shape} and labels "
                                      f"{labels.shape} do not match (want (N, H, W) and (N,)).")
            if labels.size and not (0 <= labels.min() and labels.max() < self.num_classes):
                raise DataFormatError(
                    f"{source}: {split} labels outside 0..{self.num_classes - 1}.")
        return RawData(
            x_train=torch.from_numpy(x_train.copy()).unsqueeze(1),  # (N, 1, H, W) uint8
            y_train=torch.from_numpy(y_train.astype(np.int64)),
            x_test=torch.from_numpy(x_test.copy()).unsqueeze(1),
            y_test=torch.from_numpy(y_test.astype(np.int64)),
            num_classes=self.num_classes,
            source=str(source),
        )


def _idx_files(digests: Sequence[tuple[str, str | None, str | None]]) -> tuple[RemoteFile, ...]:
    # Order matters: train images, train labels, test images, test labels.
    return tuple(RemoteFile(name, Digest("md5", gz_md5) if gz_md5 else None,
                            Digest("sha256", content) if content else None)
                 for name, gz_md5, content in digests)


class MnistSource(IdxSource):
    """MNIST (LeCun et al.): 60,000 + 10,000 handwritten digits, 28x28."""

    name, title = "mnist", "MNIST"
    mirrors = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
               "http://yann.lecun.com/exdb/mnist/")
    # .gz md5: torchvision/datasets/mnist.py. Content sha256: published by several
    # independent projects (see docs/data.md); not re-computed here (no MNIST copy).
    files = _idx_files([
        ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873",
         "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
        ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432",
         "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
        ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3",
         "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
        ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c",
         "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
    ])


class FashionMnistSource(IdxSource):
    """Fashion-MNIST (Xiao et al. 2017): 60,000 + 10,000 clothing images, 28x28, in
    MNIST's format. Debian's ``dataset-fashion-mnist`` is found without being told."""

    name, title = "fashion-mnist", "Fashion-MNIST"
    mirrors = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
    system_folders = ("/usr/share/datasets/fashion-mnist",)
    system_package = "dataset-fashion-mnist"  # Debian's; installs the four files there
    # .gz md5: torchvision/datasets/mnist.py (upstream's published files). Content sha256:
    # computed from Debian's re-gzipped copy on this machine; equal to the values other
    # projects derived from upstream's files (see docs/data.md).
    files = _idx_files([
        ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
         "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
        ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe",
         "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
        ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79",
         "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
        ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310",
         "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
    ])
