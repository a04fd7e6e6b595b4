"""ImageNet (the paper's ResNet-18 runs) through torchvision's ``ImageFolder``.

ImageNet does not fit in memory, so it is the one data set read from disk batch by batch
(a ``DataLoader`` with worker processes; decoding JPEGs and the per-image random-resized
crop happen there). torchvision is an optional dependency: ``pip install
alignlab[imagenet]``. Nothing is downloaded: ImageNet's licence requires fetching it by
hand.

Layout: ``<folder>/train/<class>/*.JPEG`` and ``<folder>/val/<class>/*.JPEG`` (the
validation images sorted into class folders, as for torchvision's reference scripts);
``<folder>`` is found like the other data sets' folders (``root/imagenet``, ``root``,
``$ALIGNLAB_DATA/imagenet``, ``~/.cache/alignlab/data/imagenet``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from .._validate import check_int
from ._files import DataFormatError, DatasetNotFoundError, candidate_folders
from .pipeline import PYTHON_NAMES, ArgumentNames, DataSource, validation_split
from .tensors import Augment, DataSplits

__all__ = ["FolderDataset", "ImageNetSource", "MissingDependencyError"]

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class MissingDependencyError(ImportError, ValueError):
    """An optional dependency is not installed (a ``ValueError`` too: one-line CLI error)."""


def _torchvision() -> Any:
    try:
        import torchvision
    except ImportError:
        raise MissingDependencyError("Data set 'imagenet' needs torchvision: "
                                     "pip install alignlab[imagenet]") from None
    return torchvision


@dataclass(frozen=True)
class FolderDataset:
    """A torch ``Dataset`` of images on disk, batched by a ``DataLoader``.

    Batches are moved to ``device``; :func:`alignlab.data.batches` iterates it like a
    :class:`~alignlab.data.TensorDataset`. Shuffling and the workers' random transforms
    are driven by the ``generator`` passed to ``batches`` (a CPU generator is derived
    from it when it lives on another device).
    """

    dataset: Any  # torch.utils.data.Dataset yielding (image tensor, int label)
    device: torch.device
    num_workers: int
    dtype: torch.dtype = torch.float32  # of the image batches

    def __len__(self) -> int:
        return len(self.dataset)

    def cast(self, dtype: torch.dtype) -> FolderDataset:
        """The same images, batches in ``dtype``."""
        return FolderDataset(self.dataset, self.device, self.num_workers, dtype)

    def iter_batches(self, batch_size: int, *, shuffle: bool = False,
                     generator: torch.Generator | None = None, drop_last: bool = False,
                     augment: Augment | None = None) -> Iterator[tuple[Tensor, Tensor]]:
        if generator is not None and generator.device.type != "cpu":
            draw = torch.randint(0, 2**62, (1,), generator=generator, device=generator.device)
            generator = torch.Generator().manual_seed(int(draw.item()))
        loader = torch.utils.data.DataLoader(
            self.dataset, batch_size=batch_size, shuffle=shuffle, generator=generator,
            drop_last=drop_last, num_workers=self.num_workers,
            pin_memory=self.device.type == "cuda")
        for xb, yb in loader:
            xb = xb.to(self.device, self.dtype, non_blocking=True)
            yb = yb.to(self.device, dtype=torch.int64, non_blocking=True)
            if augment is not None:
                xb = augment(xb, generator)
            yield xb, yb


class ImageNetSource(DataSource):
    """ImageNet ILSVRC-2012 (1000 classes), read with torchvision's ``ImageFolder``.

    Training: ``RandomResizedCrop(image_size)`` + horizontal flip (the paper's); evaluation:
    ``Resize(resize)`` + ``CenterCrop(image_size)``; both normalised with the usual
    ImageNet channel statistics. The test split is the official validation set.
    """

    name, title = "imagenet", "ImageNet"
    default_augment = True
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    options: ClassVar[Mapping[str, Any]] = {
        "image_size": 224,  # side of the crop fed to the network
        "resize": 256,  # shorter side before the evaluation centre crop
        "num_workers": None,  # DataLoader workers; None: min(8, CPU count)
    }

    def check_options(self, options: Mapping[str, Any],
                      names: ArgumentNames = PYTHON_NAMES) -> dict[str, Any]:
        opts = super().check_options(options, names)
        opts["image_size"] = check_int(names.key("image_size"), opts["image_size"])
        opts["resize"] = check_int(names.key("resize"), opts["resize"])
        if opts["num_workers"] is None:
            opts["num_workers"] = min(8, os.cpu_count() or 1)
        opts["num_workers"] = check_int(names.key("num_workers"), opts["num_workers"],
                                        minimum=0)
        return opts

    def load(self, *, root: str | os.PathLike | None, limit: int | None, val_size: int | None,
             pad_to: int | None, augment: bool | None, download: bool, seed: int,
             device: torch.device, options: Mapping[str, Any], normalize: bool = True,
             names: ArgumentNames = PYTHON_NAMES) -> DataSplits:
        tv = _torchvision()
        if pad_to is not None:
            raise ValueError(f"`{names.key('pad_to')}` must be {names.value(None)} for "
                             f"'imagenet' (crops set the size), got {pad_to}.")
        folders = candidate_folders(self.name, root)
        folder = next((f for f in folders if (f / "train").is_dir() and (f / "val").is_dir()),
                      None)
        if folder is None:
            raise DatasetNotFoundError(
                f"ImageNet not found: put the training images in {folders[0]}/train/<class>/ "
                f"and the validation images in {folders[0]}/val/<class>/ (it cannot be "
                f"downloaded automatically). Searched {', '.join(map(str, folders))}.")
        t = tv.transforms
        size = options["image_size"]
        norm = [t.Normalize(self.mean, self.std)] if normalize else []
        evaluate = t.Compose([t.Resize(options["resize"]), t.CenterCrop(size), t.ToTensor(),
                              *norm])
        augment = self.default_augment if augment is None else augment
        train_tf = (t.Compose([t.RandomResizedCrop(size), t.RandomHorizontalFlip(),
                               t.ToTensor(), *norm]) if augment else evaluate)
        train = tv.datasets.ImageFolder(str(folder / "train"), transform=train_tf)
        test = tv.datasets.ImageFolder(str(folder / "val"), transform=evaluate)
        if test.class_to_idx != train.class_to_idx:
            raise DataFormatError(f"{folder}: the class folders of train/ and val/ differ.")
        n = len(train)
        val = None
        indices = np.arange(n)
        if val_size:
            if val_size >= n:
                raise ValueError(f"`{names.key('val_size')}` must be < {n} (the training "
                                 f"images), got {val_size}.")
            train_idx, val_idx = validation_split(n, val_size, seed)
            indices = train_idx.numpy()
            held_out = tv.datasets.ImageFolder(str(folder / "train"), transform=evaluate)
            val = torch.utils.data.Subset(held_out, val_idx.tolist())
        if limit is not None:
            if limit > len(indices):
                raise ValueError(f"`{names.key('limit')}` must be <= {len(indices)} (the "
                                 f"training images after the validation split), got {limit}.")
            indices = indices[:limit]
        if len(indices) < n:
            train = torch.utils.data.Subset(train, indices.tolist())

        def wrap(ds: Any) -> FolderDataset:
            return FolderDataset(ds, device, options["num_workers"])

        return DataSplits(
            name=self.name,
            train=wrap(train),
            val=None if val is None else wrap(val),
            test=wrap(test),
            num_classes=len(test.classes),
            input_shape=(3, size, size),
            augment_fn=None,  # augmentation is in the per-image transforms
            source=str(folder),
            mean=self.mean if normalize else (),
            std=self.std if normalize else (),
        )

