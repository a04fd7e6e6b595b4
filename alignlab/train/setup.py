"""What a run is made of, before its first step: seeds, device, data, model, optimiser.

:func:`build_run` does, from a validated config (and for this process of the run's
:class:`~alignlab.train.world.World`):

1. the device: ``train.device`` resolved here (:func:`alignlab._device.resolve_device`;
   ``cuda:LOCAL_RANK`` on each rank of a distributed run), then ``train.amp`` against it
   (:func:`~alignlab.train.config.check_amp_device`: fp16 needs CUDA);
2. one independent seed per role from ``train.seed`` (:func:`run_seeds`,
   ``alignlab._rng``);
3. the data as tensors on the device in ``train.dtype`` (in a distributed run the main
   rank loads, and downloads, first);
4. the model, converted to the method (a model that learns by layer-local targets,
   :func:`~alignlab.train.config.learns_by_targets`, stays as built), checked to fit the
   data, to compile (``train.compile``) and, in a distributed run, to be bit-identical on
   every rank with every batch split over the ranks;
5. the optimiser (:func:`alignlab.nn.make_optimizer`, factored PFA's step hook included)
   with the schedule's first learning rate and weight decay (and ``optim.layer_lr_scales``,
   per-layer rates), after ``train.loss`` is checked against the data's targets.

:func:`initial_model` is the model of step 3 alone (``W_0`` and the initial feedback).
The training loop (:mod:`alignlab.train.loop`) starts from a :class:`Run`; so does
``analysis/bench_train.py``'s minimal loop, to train on the same data from the same seeds.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .._device import resolve_device
from .._rng import TAG_AUX, TAG_B, TAG_W, make_streams, torch_seeds
from ..data import TensorDataset, load_dataset
from ..models import build_model
from ..nn import convert, make_optimizer
from .config import Config, check_amp_device, learns_by_targets, load_config, qualify
from .losses import get_loss
from .rundir import CHECKPOINT_FILE, CONFIG_FILE, check_run_files
from .world import World, check_shards, shared_state

__all__ = ["Run", "build_run", "initial_model", "load_data", "run_seeds"]


@dataclass(frozen=True)
class Run:
    """What :func:`build_run` returns: everything a run starts from."""

    config: Config
    seeds: dict[str, int]  # one seed per role (run_seeds)
    device: torch.device
    dtype: torch.dtype  # train.dtype
    splits: Any  # load_dataset's result (num_classes, augment_fn, ...)
    train: Any  # the training split (TensorDataset in train.dtype)
    val: Any  # the validation split, or None
    test: Any  # the test split
    model: nn.Module  # converted to the method (or as built: learns_by_targets)
    optimizer: torch.optim.Optimizer

    @property
    def learns_by_targets(self) -> bool:
        """Trained by a layer-local rule (:class:`alignlab.gaitprop.Trainer`)."""
        return learns_by_targets(self.config.model.name)


def run_seeds(seed: int) -> dict[str, int]:
    """One independent seed per role, all from ``train.seed`` (``alignlab._rng``)."""
    streams = make_streams(seed, "train.seed")

    def one(index: int, tag: int) -> int:
        return torch_seeds(streams.seed_sequence(index, tag))[0]

    return {"model": one(0, TAG_W), "feedback": one(0, TAG_B), "batches": one(0, TAG_AUX),
            "mirror": one(1, TAG_AUX), "probe": one(2, TAG_AUX)}


def run_device(config: Config, world: World) -> torch.device:
    """The device this process trains on (``train.device`` resolved), checked against
    ``train.amp`` and the world."""
    name = config.train.device
    device = resolve_device(name, "train.device")
    if world.distributed and device.type == "cuda" and device.index is not None:
        raise ValueError(f"`train.device` must be 'cuda' or 'auto' in a distributed run (rank "
                         f"r trains on cuda:LOCAL_RANK), got {name!r}.")
    check_amp_device(config.train.amp, device.type)
    return world.device(device)


def run_dtype(config: Config) -> torch.dtype:
    return torch.float64 if config.train.dtype == "float64" else torch.float32


def autocast_factory(device: torch.device, amp: str):
    """A factory of the forward pass's autocast context (``nullcontext`` when amp is off)."""
    if amp == "off":
        return contextlib.nullcontext
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return lambda: torch.autocast(device.type, dtype=dtype)


class Determinism:
    """``torch.use_deterministic_algorithms`` for the run, restored afterwards."""

    def __init__(self, on: bool):
        self.on = on

    def __enter__(self):
        self.before = (torch.are_deterministic_algorithms_enabled(),
                       torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
        if self.on:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True
        return self

    def __exit__(self, *exc):
        det, bench, cudnn_det = self.before
        torch.use_deterministic_algorithms(det)
        torch.backends.cudnn.benchmark = bench
        torch.backends.cudnn.deterministic = cudnn_det
        return False


def load_data(config: Config, device: torch.device, dtype: torch.dtype):
    """``(splits, train, val, test)``: the data set of ``config.data`` on ``device``, the
    tensor splits cast to ``dtype``."""
    d = config.data
    splits = load_dataset(d.name, root=d.root, limit=d.limit, val_size=d.val_size,
                          pad_to=d.pad_to, augment=d.augment, download=d.download, seed=d.seed,
                          normalize=d.normalize, device=device, config_section="data",
                          **dict(d.options))

    def cast(ds):
        return None if ds is None else ds.cast(dtype)

    return splits, cast(splits.train), cast(splits.val), cast(splits.test)


def _build_model(config: Config, seeds: dict[str, int], device: torch.device,
                 dtype: torch.dtype) -> nn.Module:
    """The model, converted to the method; a model that learns by layer-local targets
    (``learns_by_targets``: GAIT-prop and its baselines) stays as built."""
    model = build_model(config.model.name, rng=seeds["model"], **dict(config.model.options))
    model.to(device=device, dtype=dtype)
    if learns_by_targets(config.model.name):
        return model
    if config.train.channels_last:  # before convert: the converted layers keep W as it is
        model.to(memory_format=torch.channels_last)
    options = dict(config.method.options)
    try:
        return convert(model, config.method.name, inplace=True, rng=seeds["feedback"],
                       **options)
    except ValueError as exc:  # e.g. a feedback state too large for memory: `method.<key>`
        raise qualify(exc, "method", list(options), others=False) from None


def _check_fits(model: nn.Module, x: Tensor, num_classes: int, targets: str) -> None:
    """Run two examples through the model: a model that does not fit the data fails here,
    before any training, naming the config keys to fix."""
    try:
        with torch.no_grad():
            out = model.eval()(x[:2])
    except (RuntimeError, ValueError) as exc:  # a shape error, or the model's own check
        raise ValueError(f"`model` does not fit the data (input shape {tuple(x.shape[1:])}): "
                         f"{str(exc).splitlines()[0]} (check model.sizes / model.in_channels "
                         "against data.name and data.pad_to).") from None
    if out.ndim != 2 or out.shape[1] != num_classes:
        what = "classes" if targets == "classes" else "values"
        raise ValueError(f"`model` must output {num_classes} {what} for this data set, got "
                         f"output shape {tuple(out.shape)}.")


def _check_compilable(model: nn.Module) -> None:
    """torch.compile (AOT autograd) traces the backward pass ahead of time, so state that a
    forward hook on the model's root hands to the backward pass through Python (DFA's
    output-error capture, installed by ``Method.install``) cannot be followed."""
    if model._forward_hooks:  # the public API has no accessor for a module's hooks
        raise ValueError("`train.compile` must be false for this model, got true: its root "
                         "has forward hooks (a method's model-level machinery, e.g. DFA's "
                         "output-error capture) whose state the backward pass reads, which "
                         "torch.compile cannot trace.")


def build_run(config: Config, *, world: World | None = None,
              device: torch.device | None = None) -> Run:
    """Seeds, device, data, model and optimiser of ``config`` (see the module doc),
    checked; nothing is written. ``device``: the device already resolved by
    :func:`run_device` (default: resolved here). In a distributed run every rank calls it
    (the process group joined)."""
    world = world or World()
    device = run_device(config, world) if device is None else device
    dtype = run_dtype(config)
    seeds = run_seeds(config.train.seed)
    by_targets = learns_by_targets(config.model.name)
    if by_targets and world.distributed:
        raise ValueError(f"`model.name` {config.model.name!r} trains in one process only (its "
                         "layer-local rules are not wired for DistributedDataParallel); run it "
                         "without torchrun.")
    if world.distributed and not world.is_main:
        world.barrier()  # the main rank loads (and, if needed, downloads) first
    splits, train_ds, val_ds, test_ds = load_data(config, device, dtype)
    if world.distributed and world.is_main:
        world.barrier()
    model = _build_model(config, seeds, device, dtype)
    if by_targets:  # the rule can train this network (an invertible activation, ...)
        from ..gaitprop import check_model, get_rule

        try:
            check_model(model, get_rule(config.method.name))
        except ValueError as exc:
            raise qualify(exc, "model", list(config.model.options), others=False) from None
    get_loss(config.train.loss).check_targets(splits.targets, config.data.name)
    if isinstance(test_ds, TensorDataset):
        _check_fits(model, test_ds.x, splits.num_classes, splits.targets)
    if config.train.compile:
        _check_compilable(model)
    if world.distributed:
        check_shards(len(train_ds), config.train.batch_size, config.train.drop_last,
                     world.world_size)
        # every rank built the same model from the same seeds: check it, bit for bit, rather
        # than broadcast it (DDP's init_sync), so factored PFA's W stays the W it follows
        world.check_identical(shared_state(model), "the models built on each rank")
    o = config.optim
    extra = {"momentum": o.momentum, "nesterov": o.nesterov} if o.name == "sgd" else {
        "betas": o.betas}
    try:
        opt = make_optimizer(model, o.name, lr=o.lr_at(1), weight_decay=o.weight_decay_at(1),
                             layer_lr_scales=o.layer_lr_scales or None, **extra)
    except ValueError as exc:  # per-layer rates that do not fit the model's layers
        raise qualify(exc, "optim", ["layer_lr_scales"], others=False) from None
    return Run(config, seeds, device, dtype, splits, train_ds, val_ds, test_ds, model, opt)


def rebuild_run(run_dir: str | Path) -> Run:
    """The run in ``run_dir`` as it started: :func:`build_run` of its ``config.toml`` on
    the CPU (its data, model at ``W_0`` and fresh optimiser); the folder must also hold a
    ``checkpoint.pt`` for :func:`load_trained` (else a one-line ``ValueError``)."""
    run_dir = Path(run_dir)
    check_run_files(run_dir, (CONFIG_FILE, CHECKPOINT_FILE))
    return build_run(load_config(run_dir / CONFIG_FILE), device=torch.device("cpu"))


def load_trained(run: Run, run_dir: str | Path) -> Run:
    """``run`` (from :func:`rebuild_run`) with the model's and the optimiser's state of the
    checkpoint in ``run_dir``: the run where it stopped."""
    state = torch.load(Path(run_dir) / CHECKPOINT_FILE, map_location=run.device,
                       weights_only=True)
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    return run


def initial_model(config: Config, device: str | torch.device = "cpu") -> nn.Module:
    """The model of a run as :func:`~alignlab.train.train` builds it before the first step.

    The same calls as ``train``: the seeds of ``train.seed`` (:func:`run_seeds`) and the
    model built and converted to the method, feedback drawn, in ``train.dtype``, on
    ``device`` instead of ``train.device``. Its weights are the run's ``W_0``
    (``layers.csv``'s ``w0_sq`` is ``|W_0|_F^2``) and its feedback state the initial one
    (PFA: ``B`` and ``R_0``), bit for bit when ``device`` is the run's. Nothing is
    trained, loaded or written, and torch's global generators are left alone (the model
    and its feedback state draw from generators of their own).
    """
    dev = resolve_device(device, "device")
    return _build_model(config, run_seeds(config.train.seed), dev, run_dtype(config))
