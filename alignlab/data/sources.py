"""The data sets, as a registry of sources, and :func:`load_dataset`.

A source is a small class (scipy.stats style): the base :class:`DataSource` owns the
pipeline every in-memory data set shares (validation split, ``limit``, padding,
normalisation, device, augmentation) and a subclass overrides only :meth:`DataSource.read`,
which returns the raw arrays. :class:`FileSource` adds "find verified files, else
download them"; the IDX and CIFAR sources add their formats.
"""

from __future__ import annotations

import math
import os
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .._output import write_atomic
from .._registry import Registry
from .._validate import check_choice, check_int
from ._files import (
    ChecksumError,
    DataFormatError,
    DatasetNotFoundError,
    Digest,
    RemoteFile,
    candidate_folders,
    download,
    one_line,
    read_verified,
    verify_bytes,
)
from ._formats import parse_cifar_batch, parse_idx
from .tensors import DataSplits, RandomCropFlip, TensorDataset

__all__ = [
    "DATASETS",
    "CifarSource",
    "DataSource",
    "FileSource",
    "IdxSource",
    "RawData",
    "SyntheticSource",
    "load_dataset",
    "teacher_student",
]

DATASETS: Registry[DataSource] = Registry("dataset")

# Normalisation constants (of pixel values scaled to [0, 1]).
MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)  # the paper's; used for Fashion-MNIST too
# Per-channel mean and standard deviation of the 50,000 CIFAR-10 training images.
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)

_VAL_SPLIT_TAG = 0x5A11  # domain tag: the split stream differs from any other use of `seed`


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

    def check_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """Reject unknown options; return all options with defaults filled in."""
        for key in options:
            if not self.options:
                raise ValueError(f"`{key}` is not an option of {self.name!r} (it takes none).")
            check_choice(f"{self.name} option", key, sorted(self.options))
        return {**self.options, **options}

    def read(self, *, root: str | os.PathLike | None, download: bool, seed: int,
             options: Mapping[str, Any]) -> RawData:
        """Return the raw training and test data (override)."""
        raise NotImplementedError

    def load(self, *, root: str | os.PathLike | None, limit: int | None, val_size: int | None,
             pad_to: int | None, augment: bool | None, download: bool, seed: int,
             device: torch.device, options: Mapping[str, Any],
             normalize: bool = True) -> DataSplits:
        """The shared pipeline; arguments as in :func:`load_dataset`, already checked."""
        raw = self.read(root=root, download=download, seed=seed, options=options)
        mean, std = (self.mean, self.std) if normalize else ((), ())
        val_size = self.default_val_size if val_size is None else val_size
        augment = self.default_augment if augment is None else augment
        x, y = raw.x_train, raw.y_train
        n = len(y)
        if val_size >= n:
            raise ValueError(f"`val_size` must be < {n} (the training examples of "
                             f"{self.name!r}), got {val_size}.")
        val = None
        if val_size:
            perm = torch.randperm(n, generator=_split_generator(seed))
            val_idx, train_idx = perm[:val_size].sort().values, perm[val_size:].sort().values
            val = (x[val_idx], y[val_idx])
            x, y = x[train_idx], y[train_idx]
        if limit is not None:
            if limit > len(y):
                raise ValueError(f"`limit` must be <= {len(y)} (the training examples of "
                                 f"{self.name!r} after the validation split), got {limit}.")
            x, y = x[:limit], y[:limit]
        input_shape = _padded_shape(tuple(x.shape[1:]), pad_to, self.name)
        if mean and input_shape[0] != len(mean):
            raise DataFormatError(f"{self.name!r}: {input_shape[0]} channels, "
                                  f"{len(mean)} normalisation constants.")

        def prepare(xs: Tensor, ys: Tensor) -> TensorDataset:
            # uint8 goes to the device first: a quarter of the bytes of float32
            return TensorDataset(_preprocess(xs.to(device), pad_to, mean, std), ys.to(device))

        augment_fn = None
        if augment:
            if len(input_shape) != 3:
                raise ValueError(f"`augment` must be False for {self.name!r} (random crops "
                                 f"need images, its inputs have shape {input_shape}), got True.")
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


def _split_generator(seed: int) -> torch.Generator:
    state = np.random.SeedSequence([seed, _VAL_SPLIT_TAG]).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & (2**63 - 1))


def _padded_shape(shape: tuple[int, ...], pad_to: int | None, name: str) -> tuple[int, ...]:
    if pad_to is None:
        return shape
    if len(shape) != 3:
        raise ValueError(f"`pad_to` must be None for {name!r} (its inputs have shape {shape}, "
                         f"not (C, H, W)), got {pad_to}.")
    if pad_to < max(shape[1:]):
        raise ValueError(f"`pad_to` must be >= the image size {max(shape[1:])} of {name!r}, "
                         f"got {pad_to}.")
    return (shape[0], pad_to, pad_to)


# ---------------------------------------------------------------------------------------
# Files on disk: find verified copies, else download


class FileSource(DataSource):
    """A data set made of files that can be verified and downloaded.

    Subclasses set :attr:`files` (paths relative to the data set's folder),
    :attr:`mirrors`, optionally :attr:`system_folders`, and implement :meth:`parse` and
    :meth:`fetch`.
    """

    files: ClassVar[tuple[RemoteFile, ...]] = ()
    mirrors: ClassVar[tuple[str, ...]] = ()  # base URLs, tried in order
    system_folders: ClassVar[tuple[str, ...]] = ()  # searched when no `root` is given
    options: ClassVar[Mapping[str, Any]] = {
        "verify": True,  # check digests of local files and downloads
        "mirrors": None,  # base URLs to download from instead of the canonical ones
    }

    def check_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        opts = super().check_options(options)
        if not isinstance(opts["verify"], bool):
            raise ValueError(f"`verify` must be True or False, got {opts['verify']!r}.")
        mirrors = opts["mirrors"]
        if mirrors is not None:
            if isinstance(mirrors, str):
                mirrors = (mirrors,)
            if not mirrors or not all(isinstance(m, str) and m for m in mirrors):
                raise ValueError(f"`mirrors` must be a non-empty list of base URLs, got "
                                 f"{opts['mirrors']!r}.")
            opts["mirrors"] = tuple(m if m.endswith("/") else m + "/" for m in mirrors)
        return opts

    def parse(self, contents: Mapping[str, bytes], source: Path) -> RawData:
        """Turn the verified file contents (by file name) into :class:`RawData`."""
        raise NotImplementedError

    def fetch(self, folder: Path, mirrors: Sequence[str], verify: bool) -> None:
        """Download whatever is missing into ``folder`` (atomically, checked)."""
        raise NotImplementedError

    def read(self, *, root: str | os.PathLike | None, download: bool, seed: int,
             options: Mapping[str, Any]) -> RawData:
        verify, mirrors = options["verify"], options["mirrors"] or self.mirrors
        folders = candidate_folders(self.name, root, self.system_folders)
        problems: list[str] = []
        for folder in folders:
            contents = self.read_folder(folder, verify, problems)
            if contents is not None:
                return self.parse(contents, folder)
        if not download:
            reason = "download=False"
        else:
            try:
                self.fetch(folders[0], mirrors, verify)
            except OSError as exc:  # no network, refused, broken transfer, read-only folder
                reason = f"download failed: {one_line(exc)}"
            else:
                contents = self.read_folder(folders[0], verify, problems)
                if contents is not None:
                    return self.parse(contents, folders[0])
                reason = "the downloaded files are incomplete"
        raise DatasetNotFoundError(self._not_found(folders, problems, reason, root is None))

    def read_folder(self, folder: Path, verify: bool, problems: list[str]
                    ) -> dict[str, bytes] | None:
        """The verified contents of every file in ``folder``, or ``None`` (and a note in
        ``problems`` when a file is there but fails verification)."""
        contents = {}
        for spec in self.files:
            path = self.locate(folder, spec)
            if path is None:
                return None
            try:
                contents[spec.name] = read_verified(path, spec, verify=verify)
            except ChecksumError as exc:
                problems.append(one_line(exc))
                return None
        return contents

    @staticmethod
    def locate(folder: Path, spec: RemoteFile) -> Path | None:
        """``folder / spec.name``, or its uncompressed twin, if either is a file."""
        path = folder / spec.name
        if path.is_file():
            return path
        if spec.compressed and path.with_suffix("").is_file():
            return path.with_suffix("")
        return None

    def _not_found(self, folders: Sequence[Path], problems: Sequence[str], reason: str,
                   default_root: bool) -> str:
        names = ", ".join(self.wanted_files())
        hint = (f" (or pass root=DIR, or set $ALIGNLAB_DATA=DIR, to use DIR/{self.name})"
                if default_root else "")
        searched = ", ".join(map(str, folders))
        bad = f"; rejected: {'; '.join(problems)}" if problems else ""
        return one_line(f"{self.title} not found: put {names} in {folders[0]}{hint}. "
                        f"Searched {searched}; {reason}{bad}.")

    def wanted_files(self) -> list[str]:
        """The file names a user should provide (for the not-found message)."""
        return [spec.name for spec in self.files]


def _md5(hexdigest: str) -> Digest:
    return Digest("md5", hexdigest)


def _sha256(hexdigest: str) -> Digest:
    return Digest("sha256", hexdigest)


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
    return tuple(RemoteFile(name, _md5(gz_md5) if gz_md5 else None,
                            _sha256(content) if content else None)
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
    archive = RemoteFile("cifar-10-python.tar.gz", _md5("c58f30108f718f92721af3b95e74349a"))
    # md5 of each extracted batch: torchvision/datasets/cifar.py.
    files = tuple(RemoteFile(f"cifar-10-batches-py/{name}", _md5(md5)) for name, md5 in (
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


# ---------------------------------------------------------------------------------------
# Synthetic teacher-student classification


def teacher_student(n_train: int, n_test: int, input_shape: tuple[int, ...], num_classes: int,
                    hidden: int, seed: int) -> RawData:
    """Gaussian inputs labelled by a fixed random teacher network.

    .. math::

        x \\sim \\mathcal N(0, I_d), \\qquad
        y = \\arg\\max_k \\big(W_2 \\tanh(W_1 x)\\big)_k,

    with :math:`W_1 \\in \\mathbb R^{h \\times d}` and :math:`W_2 \\in \\mathbb R^{K \\times h}`
    drawn once with i.i.d. entries :math:`\\mathcal N(0, 1/d)` and :math:`\\mathcal N(0, 1/h)`
    (pre-activations of unit variance, so ``tanh`` is neither linear nor saturated), and
    the rows of :math:`W_2` rescaled to equal norm so that no class dominates. The teacher,
    the training inputs and the test inputs come from three independent streams of
    ``seed``: the test set does not change with ``n_train``. The labels are computed in
    float64 on the CPU, so the same seed gives identical tensors on every run.
    """
    d = math.prod(input_shape)
    gens = [torch.Generator().manual_seed(int(s) & (2**63 - 1)) for s in
            np.random.SeedSequence(seed).generate_state(3, np.uint64)]
    w1 = torch.randn(hidden, d, generator=gens[0], dtype=torch.float64) / math.sqrt(d)
    w2 = torch.randn(num_classes, hidden, generator=gens[0], dtype=torch.float64)
    w2 = w2 / w2.norm(dim=1, keepdim=True)

    def sample(n: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        x = torch.randn(n, d, generator=gen)  # (n, d) float32
        y = torch.empty(n, dtype=torch.int64)
        for start in range(0, n, 8192):  # bounded memory for the float64 copy
            xb = x[start:start + 8192].to(torch.float64)
            y[start:start + 8192] = (torch.tanh(xb @ w1.T) @ w2.T).argmax(dim=1)
        return x.view(n, *input_shape), y

    x_train, y_train = sample(n_train, gens[1])
    x_test, y_test = sample(n_test, gens[2])
    return RawData(x_train, y_train, x_test, y_test, num_classes=num_classes,
                   source="synthetic")


class SyntheticSource(DataSource):
    """Teacher-student classification (:func:`teacher_student`); always available."""

    name, title = "synthetic", "synthetic teacher-student data"
    options: ClassVar[Mapping[str, Any]] = {
        "n_train": 10_000,  # training examples
        "n_test": 2_000,  # test examples
        "input_shape": (1, 28, 28),  # 784 inputs: fits MLP 784-512-512-10 and, padded, ResNet-20
        "num_classes": 10,
        "teacher_hidden": 100,  # width of the teacher's tanh layer
    }

    def check_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        opts = super().check_options(options)
        for key in ("n_train", "n_test", "teacher_hidden"):
            opts[key] = check_int(key, opts[key])
        opts["num_classes"] = check_int("num_classes", opts["num_classes"], minimum=2)
        shape = opts["input_shape"]
        shape = (shape,) if isinstance(shape, int) and not isinstance(shape, bool) else shape
        try:
            opts["input_shape"] = tuple(check_int("input_shape", s) for s in shape)
        except (TypeError, ValueError):
            raise ValueError(f"`input_shape` must be a positive int or a tuple of them, got "
                             f"{opts['input_shape']!r}.") from None
        if not opts["input_shape"]:
            raise ValueError("`input_shape` must be a positive int or a tuple of them, got ().")
        return opts

    def read(self, *, root: str | os.PathLike | None, download: bool, seed: int,
             options: Mapping[str, Any]) -> RawData:
        return teacher_student(options["n_train"], options["n_test"], options["input_shape"],
                               options["num_classes"], options["teacher_hidden"], seed)


DATASETS.add("mnist", MnistSource())
DATASETS.add("fashion-mnist", FashionMnistSource())
DATASETS.add("cifar10", CifarSource())
DATASETS.add("synthetic", SyntheticSource())


# ---------------------------------------------------------------------------------------
# The entry point


def load_dataset(name: str, *, root: str | os.PathLike | None = None, limit: int | None = None,
                 val_size: int | None = None, pad_to: int | None = None,
                 augment: bool | None = None, download: bool = True, seed: int = 0,
                 device: torch.device | str = "cpu", normalize: bool = True,
                 **options: Any) -> DataSplits:
    """Load a data set as tensors, preprocessed as in the paper.

    Parameters
    ----------
    name
        One of :data:`DATASETS`: ``"mnist"``, ``"fashion-mnist"``, ``"cifar10"``,
        ``"synthetic"``, ``"imagenet"`` (needs torchvision).
    root
        Folder holding one sub-folder per data set (``root/mnist/...``; files directly in
        ``root`` are found too). ``None``: ``$ALIGNLAB_DATA``, else
        ``~/.cache/alignlab/data``; Fashion-MNIST is also looked for in
        ``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist``).
    limit
        Use only the first ``limit`` training examples (after the validation split):
        smoke runs. The validation and test sets are unchanged.
    val_size
        Training examples held out for validation. ``None``: the paper's choice (5000 for
        CIFAR-10, none otherwise); ``0``: no validation split. The split is a fixed
        function of ``seed``; both parts keep the files' order.
    pad_to
        Zero-pad images (black, before normalisation) to ``pad_to x pad_to``, e.g. 32 to
        run ResNet-20 on 28x28 data.
    augment
        Random crop (padding 4) + horizontal flip of training batches, as ``augment_fn``.
        ``None``: the paper's choice (CIFAR-10 yes, others no).
    download
        Download missing files from the canonical mirrors (checked, atomic).
    seed
        Seed of the validation split and of the synthetic data (not of training).
    device
        Where the tensors live (e.g. ``"cuda"``).
    normalize
        Subtract the per-channel mean and divide by the SD (the paper's preprocessing);
        ``False``: pixels / 255 only (GAIT-prop's original setup).
    **options
        Per data set: ``verify`` (check digests; default True) and ``mirrors`` (base URLs)
        for the file data sets; ``n_train``, ``n_test``, ``input_shape``,
        ``num_classes``, ``teacher_hidden`` for ``"synthetic"``; ``image_size``,
        ``resize``, ``num_workers`` for ``"imagenet"``. Unknown options are an error.

    Returns
    -------
    DataSplits
        ``train``, ``val`` (or None), ``test``, ``num_classes``, ``input_shape``,
        ``augment_fn``.

    Raises
    ------
    ValueError
        A bad argument (message names it).
    DatasetNotFoundError
        No verified files and no download; its one-line message says which files to put
        in which folder. Also a ``ValueError``.
    ChecksumError
        A download did not match its digest (nothing was kept).
    """
    source = DATASETS[name]
    if root is not None and not isinstance(root, str | os.PathLike):
        raise ValueError(f"`root` must be None or a path, got {root!r}.")
    limit = None if limit is None else check_int("limit", limit)
    val_size = None if val_size is None else check_int("val_size", val_size, minimum=0)
    pad_to = None if pad_to is None else check_int("pad_to", pad_to)
    for flag, value in (("augment", augment), ("download", download),
                        ("normalize", normalize)):
        if not isinstance(value, bool) and (value is not None or flag != "augment"):
            raise ValueError(f"`{flag}` must be {'None, ' if flag == 'augment' else ''}"
                             f"True or False, got {value!r}.")
    seed = check_int("seed", seed, minimum=0)
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"`device` must be a torch device such as 'cpu' or 'cuda', got "
                         f"{device!r}.") from None
    options = source.check_options(options)
    return source.load(root=root, limit=limit, val_size=val_size, pad_to=pad_to,
                       augment=augment, download=download, seed=seed, device=device,
                       options=options, normalize=normalize)
