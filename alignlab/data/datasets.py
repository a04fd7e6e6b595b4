"""The data sets by name (:data:`DATASETS`) and :func:`load_dataset`, the entry point.

Each data set is a :class:`~alignlab.data.pipeline.DataSource` in its own module:
``idx.py`` (MNIST, Fashion-MNIST), ``cifar.py`` (CIFAR-10), ``synthetic.py``,
``imagenet.py``, ``stream.py`` (``"teacher-stream"``); :func:`load_dataset` checks the
arguments once and hands them to it.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from .._registry import Registry
from .._validate import check_int
from .cifar import CifarSource
from .idx import FashionMnistSource, MnistSource
from .imagenet import ImageNetSource
from .pipeline import ArgumentNames, DataSource
from .stream import TeacherStreamSource
from .synthetic import SyntheticSource
from .tensors import DataSplits

__all__ = ["DATASETS", "load_dataset"]

DATASETS: Registry[DataSource] = Registry("dataset")
for _source in (MnistSource(), FashionMnistSource(), CifarSource(), SyntheticSource(),
                ImageNetSource(), TeacherStreamSource()):
    DATASETS.add(_source.name, _source)


def load_dataset(name: str, *, root: str | os.PathLike | None = None, limit: int | None = None,
                 val_size: int | None = None, pad_to: int | None = None,
                 augment: bool | None = None, download: bool = True, seed: int = 0,
                 device: torch.device | str = "cpu", normalize: bool = True,
                 config_section: str | None = None, **options: Any) -> DataSplits:
    """Load a data set as tensors, preprocessed as in the paper.

    Parameters
    ----------
    name
        One of :data:`DATASETS`: ``"mnist"``, ``"fashion-mnist"``, ``"cifar10"``,
        ``"synthetic"``, ``"imagenet"`` (needs torchvision), ``"teacher-stream"`` (fresh
        Gaussian inputs every epoch, real-valued targets).
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
    config_section
        Where the caller's arguments come from, for messages. ``None``: a Python call
        ("`limit` must be <= 12 ...", "pass root=DIR"). The training harness passes
        ``"data"``: its ``[data]`` keys are these arguments and options, and messages name
        them as the user wrote them ("`data.limit` must be <= 12 ...",
        "use --set data.root=DIR").
    **options
        Per data set: ``verify`` (check digests; default True) and ``mirrors`` (base URLs)
        for the file data sets; ``n_train``, ``n_test``, ``input_shape``,
        ``num_classes``, ``teacher_hidden`` for ``"synthetic"``; ``n_inputs``,
        ``n_hidden``, ``sigma``, ``n_train``, ``n_test`` for ``"teacher-stream"``; ``image_size``,
        ``resize``, ``num_workers`` for ``"imagenet"``. Unknown options are an error.

    Returns
    -------
    DataSplits
        ``train``, ``val`` (or None), ``test``, ``num_classes``, ``input_shape``,
        ``augment_fn``.

    Raises
    ------
    ValueError
        A bad argument (the message names it, see ``config_section``).
    DatasetNotFoundError
        No verified files and no download; its one-line message says which files to put
        in which folder. Also a ``ValueError``.
    ChecksumError
        A download did not match its digest (nothing was kept).
    """
    names = ArgumentNames(config_section)
    source = DATASETS[name]
    if root is not None and not isinstance(root, str | os.PathLike):
        raise ValueError(f"`{names.key('root')}` must be {names.value(None)} or a path, got "
                         f"{root!r}.")
    limit = None if limit is None else check_int(names.key("limit"), limit)
    val_size = None if val_size is None else check_int(names.key("val_size"), val_size,
                                                       minimum=0)
    pad_to = None if pad_to is None else check_int(names.key("pad_to"), pad_to)
    for flag, value, allowed in (("augment", augment, (None, True, False)),
                                 ("download", download, (True, False)),
                                 ("normalize", normalize, (True, False))):
        if not any(value is a for a in allowed):  # `is`: 1 == True, but 1 is no flag
            *first, last = map(names.value, allowed)
            raise ValueError(f"`{names.key(flag)}` must be {', '.join(first)} or {last}, got "
                             f"{value!r}.")
    seed = check_int(names.key("seed"), seed, minimum=0)
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):  # `device` is never a [data] key: named as it is
        raise ValueError(f"`device` must be a torch device such as 'cpu' or 'cuda', got "
                         f"{device!r}.") from None
    options = source.check_options(options, names)
    return source.load(root=root, limit=limit, val_size=val_size, pad_to=pad_to,
                       augment=augment, download=download, seed=seed, device=device,
                       options=options, normalize=normalize, names=names)
