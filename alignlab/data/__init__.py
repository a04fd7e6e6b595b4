"""Data sets for the training harness, as tensors in memory, preprocessed as in the paper.

>>> from alignlab.data import load_dataset, batches
>>> splits = load_dataset("synthetic", n_train=256, n_test=64)
>>> g = torch.Generator().manual_seed(0)
>>> for xb, yb in batches(splits.train, 64, shuffle=True, generator=g,
...                       augment=splits.augment_fn):
...     ...

``DATASETS`` lists the names: ``"mnist"``, ``"fashion-mnist"`` (found in Debian's
``/usr/share/datasets/fashion-mnist`` without being told), ``"cifar10"``,
``"synthetic"`` (a teacher-student set, always available), ``"imagenet"`` (needs
torchvision) and ``"teacher-stream"`` (a teacher's real-valued labels on fresh Gaussian
inputs, drawn as the loop asks: :class:`InputStream` is its stream of inputs, for
simulators too). Files are verified against published digests; missing ones are downloaded
(atomically) when the network is there. See ``docs/data.md``.

The rooms: ``pipeline`` (what every data set shares: raw arrays to :class:`DataSplits`,
the validation split), one module per format or source (``idx``: MNIST and
Fashion-MNIST; ``cifar``; ``synthetic``; ``imagenet``; ``stream``), ``filesource`` (find verified
files, else download them) over ``_files`` (folders, digests, atomic downloads),
``tensors`` (in-memory data sets, batches, augmentation) and ``datasets`` (the registry
and :func:`load_dataset`).
"""

from __future__ import annotations

from ._files import ChecksumError, DataFormatError, DatasetNotFoundError
from .datasets import DATASETS, load_dataset
from .imagenet import MissingDependencyError
from .stream import InputStream, Teacher
from .synthetic import teacher_student
from .tensors import DataSplits, RandomCropFlip, TensorDataset, batches

__all__ = [
    "DATASETS",
    "ChecksumError",
    "DataFormatError",
    "DataSplits",
    "DatasetNotFoundError",
    "InputStream",
    "MissingDependencyError",
    "RandomCropFlip",
    "Teacher",
    "TensorDataset",
    "batches",
    "load_dataset",
    "teacher_student",
]
