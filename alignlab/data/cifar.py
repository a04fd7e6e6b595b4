"""CIFAR-10: its python batches, the archive that holds them, and the data set.

A batch is a pickled dict; :func:`parse_cifar_batch` unpickles it with an unpickler that
admits only numpy arrays (a pickle can run code) and checks the layout strictly.
:class:`CifarSource` reads the six batches, extracting them (verified, atomically) from
``cifar-10-python.tar.gz`` when only the archive is there.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from .._output import write_atomic
from ._files import (
    ChecksumError,
    DataFormatError,
    Digest,
    RemoteFile,
    download,
    one_line,
    verify_bytes,
)
from .filesource import FileSource
from .pipeline import RawData

__all__ = ["CifarSource", "parse_cifar_batch"]

# Per-channel mean and standard deviation of the 50,000 CIFAR-10 training images.
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, strings and numpy arrays, and refuses anything else: a
    pickle can run arbitrary code, and a CIFAR batch needs nothing more than this."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def parse_cifar_batch(data: bytes, *, what: str = "CIFAR batch") -> tuple[np.ndarray, np.ndarray]:
    """Decode one CIFAR-10 python batch (``data_batch_1`` ... ``test_batch``).

    The file is a pickled dict with ``data`` (uint8, ``(N, 3072)``: 1024 red, then green,
    then blue values per image, rows top to bottom) and ``labels`` (N ints). Keys may be
    bytes (the original python-2 pickles) or str.

    Returns
    -------
    images : numpy.ndarray
        uint8, shape ``(N, 3, 32, 32)``.
    labels : numpy.ndarray
        int64, shape ``(N,)``.
    """
    try:
        entry = _NumpyOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()
    except Exception as exc:  # any decoding failure is a format error of this file
        raise DataFormatError(f"{what} is not a CIFAR python batch ({exc}).") from None
    if not isinstance(entry, dict):
        raise DataFormatError(f"{what}: expected a pickled dict, got {type(entry).__name__}.")
    entry = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in entry.items()}
    if "data" not in entry or "labels" not in entry:
        raise DataFormatError(f"{what}: missing 'data' or 'labels' (keys: {sorted(entry)}).")
    images = np.asarray(entry["data"])
    labels = np.asarray(entry["labels"], dtype=np.int64)
    if images.dtype != np.uint8 or images.ndim != 2 or images.shape[1] != 3 * 32 * 32:
        raise DataFormatError(f"{what}: 'data' must be uint8 of shape (N, 3072), got "
                              f"{images.dtype} {images.shape}.")
    if labels.shape != (images.shape[0],):
        raise DataFormatError(f"{what}: {labels.shape[0]} labels for {images.shape[0]} images.")
    return images.reshape(-1, 3, 32, 32), labels


class CifarSource(FileSource):
    """CIFAR-10 (Krizhevsky 2009): 50,000 + 10,000 colour images, 32x32, 10 classes.

    Read from the python batches in ``<folder>/cifar-10-batches-py/``; if only the
    archive ``<folder>/cifar-10-python.tar.gz`` is there, it is verified and extracted.
    """

    name, title = "cifar10", "CIFAR-10"
    num_classes: ClassVar[int] = 10
    default_val_size = 5000  # the paper's 45k/5k split
    default_augment = True  # random crop 32 pad 4 + horizontal flip
    mean, std = CIFAR10_MEAN, CIFAR10_STD
    mirrors = ("https://www.cs.toronto.edu/~kriz/",)
    archive = RemoteFile("cifar-10-python.tar.gz",
                         Digest("md5", "c58f30108f718f92721af3b95e74349a"))
    # md5 of each extracted batch: torchvision/datasets/cifar.py.
    files = tuple(RemoteFile(f"cifar-10-batches-py/{name}", Digest("md5", md5)) for name, md5 in (
        ("data_batch_1", "c99cafc152244af753f735de768cd75f"),
        ("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
        ("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
        ("data_batch_4", "634d18415352ddfa80567beed471001a"),
        ("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
        ("test_batch", "40351d587109b95175f43aff81a1287e"),
    ))

    def read_folder(self, folder: Path, verify: bool, problems: list[str]
                    ) -> dict[str, bytes] | None:
        contents = super().read_folder(folder, verify, problems)
        archive = folder / self.archive.name
        if contents is None and archive.is_file():
            try:
                self.extract(archive, folder, verify)
            except (ChecksumError, DataFormatError, OSError, tarfile.TarError) as exc:
                problems.append(one_line(exc))
                return None
            contents = super().read_folder(folder, verify, problems)
        return contents

    def extract(self, archive: Path, folder: Path, verify: bool) -> None:
        """Verify ``archive`` and write each batch (checked) atomically into ``folder``."""
        if verify and not self.archive.file_digest.matches(archive.read_bytes()):
            raise ChecksumError(f"{archive} failed verification: expected md5 "
                                f"{self.archive.file_digest.hexdigest}.")
        wanted = {spec.name: spec for spec in self.files}
        found = set()
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:  # one pass; names are looked up, never used as paths
                spec = wanted.get(member.name)
                if spec is None or not member.isfile():
                    continue
                data = tar.extractfile(member).read()
                verify_bytes(data, spec, gzipped=False, verify=verify,
                             what=f"{archive}:{spec.name}")
                write_atomic(folder / spec.name, lambda tmp, data=data: tmp.write_bytes(data))
                found.add(spec.name)
        if missing := sorted(set(wanted) - found):
            raise DataFormatError(f"{archive} lacks {', '.join(missing)}.")

    def fetch(self, folder: Path, mirrors: Sequence[str], verify: bool) -> None:
        archive = folder / self.archive.name

        def check(tmp: Path) -> None:
            verify_bytes(tmp.read_bytes(), self.archive, gzipped=False, verify=verify,
                         what=f"download of {self.archive.name}")

        download([m + self.archive.name for m in mirrors], archive, check=check)
        try:
            self.extract(archive, folder, verify)
        except tarfile.TarError as exc:
            raise DataFormatError(f"{archive}: {one_line(exc)}") from None

    def parse(self, contents: Mapping[str, bytes], source: Path) -> RawData:
        parts = [parse_cifar_batch(contents[spec.name], what=str(source / spec.name))
                 for spec in self.files]
        for _, labels in parts:
            if labels.size and not (labels.min() >= 0 and labels.max() < self.num_classes):
                raise DataFormatError(f"{source}: CIFAR-10 labels outside 0..9.")
        train = parts[:-1]
        return RawData(
            x_train=torch.from_numpy(np.concatenate([p[0] for p in train])),  # (N, 3, 32, 32)
            y_train=torch.from_numpy(np.concatenate([p[1] for p in train])),
            x_test=torch.from_numpy(parts[-1][0].copy()),
            y_test=torch.from_numpy(parts[-1][1]),
            num_classes=self.num_classes,
            source=str(source),
        )

    def wanted_files(self) -> list[str]:
        return [self.archive.name + " (or its folder cifar-10-batches-py/)"]
