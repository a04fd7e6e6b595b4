"""The pipeline every data set shares: raw arrays in, :class:`DataSplits` out.

A data set is a small class (scipy.stats style): the base :class:`DataSource` owns what
every in-memory data set does the same way (validation split, ``limit``, padding,
normalisation, device, augmentation) and a subclass overrides only :meth:`DataSource.read`,
which returns the raw arrays as :class:`RawData`. The validation split is a fixed function
of ``seed`` (:func:`validation_split`), shared with the data sets read from disk.

Messages name the arguments as the caller wrote them (:class:`ArgumentNames`): a Python
caller reads "`limit` must be ...", a user of ``alignlab train`` "`data.limit` must be ...".
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .._rng import torch_generator
from .._validate import check_choice
from ._files import DataFormatError
from .tensors import DataSplits, RandomCropFlip, TensorDataset

__all__ = [
    "PYTHON_NAMES",
    "ArgumentNames",
    "DataSource",
    "RawData",
    "split_generator",
    "validation_split",
]

_VAL_SPLIT_TAG = 0x5A11  # domain tag: the split stream differs from any other use of `seed`


@dataclass(frozen=True)
class ArgumentNames:
    """How the caller of :func:`~alignlab.data.load_dataset` spells its arguments, so that
    a message names what the user wrote.

    ``section=None`` (a Python call): the keywords and Python values ("`limit` must be
    <= 12 ...", "pass root=DIR", "must be None"). ``section="data"`` (the training harness,
    whose ``[data]`` keys are ``load_dataset``'s arguments and options): the config keys,
    TOML values and ``--set`` ("`data.limit` must be <= 12 ...",
    "use --set data.root=DIR", "must be unset").
    """

    section: str | None = None

    def key(self, name: str) -> str:
        """The argument ``name`` as the caller wrote it (``limit`` or ``data.limit``)."""
        return name if self.section is None else f"{self.section}.{name}"

    def value(self, value: bool | None) -> str:
        """``None``, ``True``, ``False`` as the caller writes them (``unset``, ``true``,
        ``false`` in a config)."""
        if self.section is None:
            return repr(value)
        return "unset" if value is None else str(value).lower()

    def to_set(self, name: str, value: bool | str) -> str:
        """How to set ``name`` to ``value`` (a placeholder such as ``"DIR"``, or a bool):
        "pass root=DIR" or "use --set data.root=DIR"."""
        text = value if isinstance(value, str) else self.value(value)
        if self.section is None:
            return f"pass {name}={text}"
        return f"use --set {self.key(name)}={text}"


PYTHON_NAMES = ArgumentNames()  # a Python call: the keywords of `load_dataset`


@dataclass(frozen=True)
class RawData:
    """What :meth:`DataSource.read` returns: uint8 images ``(N, C, H, W)`` (scaled to
    [0, 1] by the pipeline) or float inputs ``(N, ...)`` (used as they are), int64 labels."""

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    num_classes: int
    source: str


class DataSource:
    """Base class of a data set. Subclasses set the class attributes and override
    :meth:`read` (or, for data that do not fit in memory, :meth:`load`)."""

    name: ClassVar[str] = ""  # registry name and sub-folder name
    title: ClassVar[str] = ""  # for messages
    default_val_size: ClassVar[int] = 0  # the paper's validation split (0: none)
    default_augment: ClassVar[bool] = False  # the paper's training augmentation
    mean: ClassVar[tuple[float, ...]] = ()  # per-channel normalisation; () = none
    std: ClassVar[tuple[float, ...]] = ()
    options: ClassVar[Mapping[str, Any]] = {}  # extra keyword options -> defaults

    def check_options(self, options: Mapping[str, Any],
                      names: ArgumentNames = PYTHON_NAMES) -> dict[str, Any]:
        """Reject unknown options; return all options with defaults filled in."""
        for key in options:
            if not self.options:
                raise ValueError(f"`{names.key(key)}` is not an option of {self.name!r} "
                                 f"(it takes none).")
            check_choice(f"{self.name} option", key, sorted(self.options))
        return {**self.options, **options}

    def read(self, *, root: str | os.PathLike | None, download: bool, seed: int,
             options: Mapping[str, Any], names: ArgumentNames = PYTHON_NAMES) -> RawData:
        """Return the raw training and test data (override)."""
        raise NotImplementedError

    def load(self, *, root: str | os.PathLike | None, limit: int | None, val_size: int | None,
             pad_to: int | None, augment: bool | None, download: bool, seed: int,
             device: torch.device, options: Mapping[str, Any], normalize: bool = True,
             names: ArgumentNames = PYTHON_NAMES) -> DataSplits:
        """The shared pipeline; arguments as in :func:`~alignlab.data.load_dataset`,
        already checked."""
        raw = self.read(root=root, download=download, seed=seed, options=options, names=names)
        mean, std = (self.mean, self.std) if normalize else ((), ())
        val_size = self.default_val_size if val_size is None else val_size
        augment = self.default_augment if augment is None else augment
        x, y = raw.x_train, raw.y_train
        n = len(y)
        if val_size >= n:
            raise ValueError(f"`{names.key('val_size')}` must be < {n} (the training examples "
                             f"of {self.name!r}), got {val_size}.")
        val = None
        if val_size:
            train_idx, val_idx = validation_split(n, val_size, seed)
            val = (x[val_idx], y[val_idx])
            x, y = x[train_idx], y[train_idx]
        if limit is not None:
            if limit > len(y):
                raise ValueError(f"`{names.key('limit')}` must be <= {len(y)} (the training "
                                 f"examples of {self.name!r} after the validation split), "
                                 f"got {limit}.")
            x, y = x[:limit], y[:limit]
        input_shape = _padded_shape(tuple(x.shape[1:]), pad_to, self.name, names)
        if mean and input_shape[0] != len(mean):
            raise DataFormatError(f"{self.name!r}: {input_shape[0]} channels, "
                                  f"{len(mean)} normalisation constants.")

        def prepare(xs: Tensor, ys: Tensor) -> TensorDataset:
            # uint8 goes to the device first: a quarter of the bytes of float32
            return TensorDataset(_preprocess(xs.to(device), pad_to, mean, std), ys.to(device))

        augment_fn = None
        if augment:
            if len(input_shape) != 3:
                raise ValueError(f"`{names.key('augment')}` must be {names.value(False)} for "
                                 f"{self.name!r} (random crops need images, its inputs have "
                                 f"shape {input_shape}), got {names.value(True)}.")
            fill = tuple(-m / s for m, s in zip(mean, std, strict=True)) or None
            augment_fn = RandomCropFlip(padding=4, flip=True, fill=fill)
        return DataSplits(
            name=self.name,
            train=prepare(x, y),
            val=None if val is None else prepare(*val),
            test=prepare(raw.x_test, raw.y_test),
            num_classes=raw.num_classes,
            input_shape=input_shape,
            augment_fn=augment_fn,
            source=raw.source,
            mean=mean,
            std=std,
        )


def split_generator(seed: int) -> torch.Generator:
    """The generator of the validation split of ``seed``: a CPU stream derived from
    ``(seed, a fixed tag)``, so it coincides with no other stream seeded with ``seed``."""
    return torch_generator(np.random.SeedSequence([seed, _VAL_SPLIT_TAG]))


def validation_split(n: int, val_size: int, seed: int) -> tuple[Tensor, Tensor]:
    """The indices ``(train, val)`` of ``n`` examples with ``val_size`` held out for
    validation: a permutation drawn from :func:`split_generator`, each part sorted (the
    files' order is kept). A function of ``(n, val_size, seed)`` only."""
    perm = torch.randperm(n, generator=split_generator(seed))
    return perm[val_size:].sort().values, perm[:val_size].sort().values


def _preprocess(x: Tensor, pad_to: int | None, mean: tuple[float, ...],
                std: tuple[float, ...]) -> Tensor:
    """uint8 -> [0, 1]; zero-pad (black, before normalisation) to ``pad_to``; normalise by
    the per-channel ``mean`` and ``std`` (none when empty)."""
    if x.dtype == torch.uint8:
        x = x.to(torch.float32).div_(255)
    if pad_to is not None:
        h, w = x.shape[-2:]
        top, left = (pad_to - h) // 2, (pad_to - w) // 2
        x = F.pad(x, (left, pad_to - w - left, top, pad_to - h - top))
    if mean:
        c = x.shape[1]
        m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, c, 1, 1)
        s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, c, 1, 1)
        x = (x - m) / s
    return x


def _padded_shape(shape: tuple[int, ...], pad_to: int | None, name: str,
                  names: ArgumentNames) -> tuple[int, ...]:
    if pad_to is None:
        return shape
    key = names.key("pad_to")
    if len(shape) != 3:
        raise ValueError(f"`{key}` must be {names.value(None)} for {name!r} (its inputs have "
                         f"shape {shape}, not (C, H, W)), got {pad_to}.")
    if pad_to < max(shape[1:]):
        raise ValueError(f"`{key}` must be >= the image size {max(shape[1:])} of {name!r}, "
                         f"got {pad_to}.")
    return (shape[0], pad_to, pad_to)
