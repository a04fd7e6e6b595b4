"""Data sets held as tensors, the batch iterator and augmentation on whole batches.

Everything here works on the device the data live on, one batch at a time, with no
per-sample Python: a batch is an ``index_select`` of a ``randperm``, and the CIFAR
augmentation (random crop with padding, horizontal flip) is one gather over the padded
batch. Randomness comes only from the ``torch.Generator`` passed in, so the batches of an
epoch are fixed by the generator's state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor

from .._validate import check_int

__all__ = ["Batchable", "DataSplits", "RandomCropFlip", "TensorDataset", "batches"]

Augment = Callable[[Tensor, "torch.Generator | None"], Tensor]


class Batchable(Protocol):
    """What :func:`batches` iterates: a :class:`TensorDataset` or a folder data set."""

    def __len__(self) -> int: ...

    def iter_batches(self, batch_size: int, *, shuffle: bool, generator: torch.Generator | None,
                     drop_last: bool, augment: Augment | None
                     ) -> Iterator[tuple[Tensor, Tensor]]: ...

    def cast(self, dtype: torch.dtype) -> Batchable:
        """The same data, its floating-point tensors in ``dtype``."""
        ...


def _draw_device(generator: torch.Generator | None, fallback: torch.device) -> torch.device:
    """Random numbers are drawn on the generator's device (torch requires it), then moved."""
    return generator.device if generator is not None else fallback


@dataclass(frozen=True)
class TensorDataset:
    """Inputs ``x`` (float, ``(N, ...)``) and targets ``y``, in memory: class labels
    (int64, ``(N,)``) or real values (floating point, ``(N, ...)``).

    Not :class:`torch.utils.data.TensorDataset`: no per-item ``__getitem__`` is offered on
    purpose; iterate with :func:`batches`.
    """

    x: Tensor
    y: Tensor

    def __post_init__(self) -> None:
        if not (isinstance(self.x, Tensor) and self.x.is_floating_point()):
            raise ValueError(f"`x` must be a floating-point tensor, got {_describe(self.x)}.")
        labels = isinstance(self.y, Tensor) and self.y.dtype == torch.int64 and self.y.ndim == 1
        values = isinstance(self.y, Tensor) and self.y.is_floating_point() and self.y.ndim >= 1
        if not (labels or values):
            raise ValueError(f"`y` must be an int64 tensor of shape (N,) or a floating-point "
                             f"tensor of shape (N, ...), got {_describe(self.y)}.")
        if self.x.shape[0] != self.y.shape[0]:
            raise ValueError(f"`x` and `y` must have the same length, got {self.x.shape[0]} "
                             f"and {self.y.shape[0]}.")
        if self.x.device != self.y.device:
            raise ValueError(f"`x` and `y` must be on one device, got {self.x.device} and "
                             f"{self.y.device}.")

    def __len__(self) -> int:
        return self.y.shape[0]

    @property
    def device(self) -> torch.device:
        return self.x.device

    def to(self, device: torch.device | str) -> TensorDataset:
        """The same data on ``device`` (no copy if already there)."""
        return TensorDataset(self.x.to(device), self.y.to(device))

    def cast(self, dtype: torch.dtype) -> TensorDataset:
        """``x`` and real-valued ``y`` in ``dtype`` (no copy if they are already)."""
        y = self.y.to(dtype) if self.y.is_floating_point() else self.y
        return TensorDataset(self.x.to(dtype), y)

    def subset(self, index: Tensor | slice) -> TensorDataset:
        """The examples at ``index`` (a slice is a view, an index tensor a copy)."""
        return TensorDataset(self.x[index], self.y[index])

    def iter_batches(self, batch_size: int, *, shuffle: bool = False,
                     generator: torch.Generator | None = None, drop_last: bool = False,
                     augment: Augment | None = None) -> Iterator[tuple[Tensor, Tensor]]:
        """See :func:`batches`."""
        n = len(self)
        order = None
        if shuffle:
            order = torch.randperm(n, generator=generator,
                                   device=_draw_device(generator, self.device)).to(self.device)
        stop = n - n % batch_size if drop_last else n
        for start in range(0, stop, batch_size):
            if order is None:
                xb, yb = self.x[start:start + batch_size], self.y[start:start + batch_size]
            else:
                idx = order[start:start + batch_size]
                xb, yb = self.x.index_select(0, idx), self.y.index_select(0, idx)
            if augment is not None:
                xb = augment(xb, generator)
            yield xb, yb


def _describe(value: Any) -> str:
    if isinstance(value, Tensor):
        return f"{value.dtype} tensor of shape {tuple(value.shape)}"
    return repr(value)


def batches(dataset: Batchable, batch_size: int, *, shuffle: bool = False,
            generator: torch.Generator | None = None, drop_last: bool = False,
            augment: Augment | None = None) -> Iterator[tuple[Tensor, Tensor]]:
    """Iterate over ``dataset`` in mini-batches ``(x, y)``.

    Parameters
    ----------
    dataset
        A :class:`TensorDataset` (or the folder data set of ``"imagenet"``).
    batch_size
        Examples per batch; the last batch is smaller unless ``drop_last``.
    shuffle
        Visit the examples in the order of ``torch.randperm(N, generator=generator)``
        (drawn once, when iteration starts); otherwise in stored order.
    generator
        The only source of randomness (permutation and ``augment``). The same generator
        state gives the same batches. ``None``: torch's global generator.
    drop_last
        Drop the final batch if it is smaller than ``batch_size``.
    augment
        ``augment(x_batch, generator) -> x_batch``, applied to every batch (pass
        ``splits.augment_fn`` for the training set, nothing for evaluation).

    Returns
    -------
    Iterator of (Tensor, Tensor)
        Batches on the data's device. Arguments are checked when ``batches`` is called,
        not when iteration starts.
    """
    batch_size = check_int("batch_size", batch_size)
    if not hasattr(dataset, "iter_batches"):
        raise ValueError(f"`dataset` must be a TensorDataset (e.g. splits.train), got "
                         f"{type(dataset).__name__}.")
    if augment is not None and not callable(augment):
        raise ValueError(f"`augment` must be None or callable(x, generator), got {augment!r}.")
    return dataset.iter_batches(batch_size, shuffle=bool(shuffle), generator=generator,
                                drop_last=bool(drop_last), augment=augment)


@dataclass(frozen=True)
class RandomCropFlip:
    """Random crop with zero padding plus random horizontal flip, on a whole batch.

    The batch ``(B, C, H, W)`` is padded by ``padding`` pixels on every side with
    ``fill`` (per channel: the normalised value of a black pixel, so padding looks like
    torchvision's ``RandomCrop(padding=4)`` applied before normalisation); each image gets
    its own offset in ``[0, 2 * padding]`` in both directions and, if ``flip``, is mirrored
    left-right with probability 1/2. The crop and the flip are one ``gather`` (about 0.4 ms
    for a CIFAR batch of 128 on one CPU core).
    """

    padding: int = 4  # the paper's CIFAR-10 setting (crop 32, pad 4)
    flip: bool = True
    fill: Sequence[float] | None = None  # per-channel pad value; None: 0

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        b, c, h, w = x.shape
        p = self.padding
        device = x.device
        padded = x.new_empty(b, c, h + 2 * p, w + 2 * p)
        if self.fill is None:
            padded.zero_()
        else:
            padded.copy_(torch.as_tensor(self.fill, dtype=x.dtype, device=device)
                         .view(1, c, 1, 1).expand_as(padded))
        padded[:, :, p:p + h, p:p + w] = x
        draw = _draw_device(generator, device)
        offsets = torch.randint(0, 2 * p + 1, (2, b), generator=generator, device=draw).to(device)
        cols = torch.arange(w, device=device).expand(b, w)  # (B, W)
        if self.flip:
            mirror = torch.rand(b, generator=generator, device=draw).to(device) < 0.5
            cols = torch.where(mirror[:, None], (w - 1) - cols, cols)
        rows = offsets[0, :, None] + torch.arange(h, device=device)  # (B, H)
        cols = offsets[1, :, None] + cols  # (B, W)
        flat = rows[:, :, None] * (w + 2 * p) + cols[:, None, :]  # (B, H, W) into padded
        flat = flat.view(b, 1, h * w).expand(b, c, h * w)
        return padded.flatten(2).gather(2, flat).view(b, c, h, w)  # (B, C, H, W)


@dataclass(frozen=True)
class DataSplits:
    """What :func:`alignlab.data.load_dataset` returns.

    Attributes
    ----------
    name
        The data set's registry name.
    train, val, test
        The splits; ``val`` is ``None`` without a validation split.
    num_classes
        Number of classes (labels are ``0 .. num_classes - 1``); with ``targets ==
        "values"``, the number of real-valued outputs.
    input_shape
        Shape of one example, e.g. ``(1, 28, 28)``.
    augment_fn
        ``None`` or ``augment_fn(x_batch, generator) -> x_batch``, for training batches
        only (pass it as ``augment=`` to :func:`batches`).
    source
        The folder the files were read from (``"synthetic"`` for generated data).
    targets
        ``"classes"`` (int64 labels) or ``"values"`` (real-valued targets ``(N, outputs)``,
        e.g. ``"teacher-stream"``): which losses fit (``alignlab.train.losses``).
    mean, std
        The per-channel normalisation applied (empty when none was).
    """

    name: str
    train: Batchable
    val: Batchable | None
    test: Batchable
    num_classes: int
    input_shape: tuple[int, ...]
    augment_fn: Augment | None = None
    source: str = ""
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    targets: str = "classes"  # classes | values
