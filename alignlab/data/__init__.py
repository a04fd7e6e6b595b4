"""Data sets for the training harness, as tensors in memory, preprocessed as in the paper.

>>> from alignlab.data import load_dataset, batches
>>> splits = load_dataset("synthetic", n_train=256, n_test=64)
>>> g = torch.Generator().manual_seed(0)
>>> for xb, yb in batches(splits.train, 64, shuffle=True, generator=g,
...                       augment=splits.augment_fn):
...     ...

``DATASETS`` lists the names: ``"mnist"``, ``"fashion-mnist"`` (found in Debian's
``/usr/share/datasets/fashion-mnist`` without being told), ``"cifar10"``,
``"synthetic"`` (a teacher-student set, always available) and ``"imagenet"`` (needs
torchvision). Files are verified against published digests; missing ones are downloaded
(atomically) when the network is there. See ``docs/data.md``.
"""

from __future__ import annotations

from ._files import ChecksumError, DataFormatError, DatasetNotFoundError
from .imagenet import MissingDependencyError
from .sources import DATASETS, load_dataset, teacher_student
from .tensors import DataSplits, RandomCropFlip, TensorDataset, batches

__all__ = [
    "DATASETS",
    "ChecksumError",
    "DataFormatError",
    "DataSplits",
    "DatasetNotFoundError",
    "MissingDependencyError",
    "RandomCropFlip",
    "TensorDataset",
    "batches",
    "load_dataset",
    "teacher_student",
]
