"""The training loop: one visible loop, from a validated config to a run directory.

``train(config, run_dir)`` does, in order:

1. check the device (``train.device``, ``train.amp``) and the run directory (a writable
   folder without a run) before any work; under torchrun join the process group
   (:class:`~alignlab.train.world.World`);
2. seed every stream from ``train.seed`` (``alignlab._rng``: model init, feedback draws,
   batch order, weight-mirror noise, the probe batch, torch's global generator) and, when
   ``train.deterministic``, make torch deterministic;
3. load the data as tensors on the device; build the model, convert it to the method
   (check that it fits the data; in a distributed run, that every rank built the same
   bits), then write ``config.toml``; build the optimiser with
   :func:`alignlab.nn.make_optimizer` (factored PFA's step hook included); wrap the model
   in DistributedDataParallel (several ranks) and ``torch.compile`` (``train.compile``);
4. log epoch 0 (before training), then for every epoch: set the learning rate and weight
   decay of every parameter group from the schedules, run the minibatch steps (plus weight
   mirror steps for WM; the forward pass under autocast with ``train.amp``), log
   (layers.csv: alignment and per-layer scalars; the update angle on a fixed probe batch),
   evaluate on the validation and test sets, append the rows and replace
   ``checkpoint.pt`` atomically.

Logging and evaluation run inside ``torch.random.fork_rng`` (logging also restores
BatchNorm statistics), so neither the log frequency nor the evaluation changes the
training trajectory. A NaN/inf loss raises :class:`Diverged` (``summary.json`` status
"diverged"; the checkpoint of the last complete epoch is kept). An epoch's rows reach the
CSV files only after its checkpoint is written, so when writing fails (a full disk) the
run stops with :class:`WriteFailed` and the folder holds the last complete epoch, which
``--resume`` continues. A ``KeyboardInterrupt`` (Ctrl-C; SIGTERM under the CLI) writes
``summary.json`` with status "interrupted"; SIGINT and SIGTERM wait while it is written.
``train(config, run_dir, resume=True)`` continues from the checkpoint and, in
deterministic mode, ends with exactly the numbers of an uninterrupted run.

Distributed (DDP): every rank draws the same global batch of ``train.batch_size``
examples and trains on its contiguous shard; the loss is scaled so that DDP's average of
the ranks' gradients is the gradient of the global batch's mean loss, hence the run is
that of one process with the same global batch (up to the summation order of floating
point). The main rank alone logs, evaluates, checkpoints and prints; the parameters and
the converted layers' feedback state are checked to be bit-identical on every rank after
every epoch.
"""

from __future__ import annotations

import contextlib
import errno
import inspect
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import __version__
from .._output import UnusableOutput, check_output_dir
from .._rng import TAG_AUX, TAG_B, TAG_W, make_streams
from .._signals import signals_deferred
from ..data import TensorDataset, batches, load_dataset
from ..models import build_model
from ..nn import alignment, convert, converted_layers, make_optimizer, mirror_step, update_angles
from ..theory.decay import sgd_decay_step
from .config import Config, dumps_toml, load_config
from .rundir import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    EXTENDABLE_KEYS,
    LAYER_COLUMNS,
    LAYERS_FILE,
    METRIC_COLUMNS,
    METRICS_FILE,
    SUMMARY_FILE,
    CsvLog,
    check_new_run,
    read_summary,
    torch_save_atomic,
    write_json,
    write_text_atomic,
)
from .world import World

__all__ = ["Diverged", "RunResult", "WriteFailed", "evaluate", "initial_model", "train"]

_CHECKPOINT_FORMAT = 1


class Diverged(RuntimeError):
    """The training loss became NaN or infinite (the run stopped; exit status 4)."""


class WriteFailed(RuntimeError):
    """The run directory could not be written during training (e.g. no space left on
    device): the run stopped, its checkpoint and CSV files hold the last complete epoch,
    and ``--resume`` continues it once the cause is fixed (exit status 5)."""


@dataclass(frozen=True)
class RunResult:
    """What :func:`train` returns."""

    run_dir: Path
    status: str  # completed | diverged | interrupted
    final: dict[str, Any]  # the last metrics.csv row
    wall_s: float
    model: nn.Module | None = field(default=None, repr=False, compare=False)  # trained model
    resumed_from: tuple[int, int] | None = None  # (epoch, step) of the checkpoint resumed
    trained: bool = True  # False: a resumed run that had completed already (nothing done)

    def describe(self) -> str:
        f = self.final
        val = "" if f.get("val_acc") is None else f"  val acc {100 * f['val_acc']:.2f}%"
        what = (f"epoch {f.get('epoch')}  test acc {100 * f.get('test_acc', math.nan):.2f}%"
                f"{val}  train loss {f.get('train_loss', math.nan):.4g}")
        if not self.trained:
            return (f"nothing to do: {self.run_dir} has completed its {f.get('epoch')} epochs "
                    f"({what}; extend it with --set train.epochs=N)")
        return f"{self.status}: {what}  ({self.wall_s:.1f} s)  -> {self.run_dir}"


# ---------------------------------------------------------------------------------------
# setup


def _seeds(seed: int) -> dict[str, int]:
    """One independent seed per role, all from ``train.seed`` (``alignlab._rng``)."""
    streams = make_streams(seed, "train.seed")

    def one(index: int, tag: int) -> int:
        return int(streams.seed_sequence(index, tag).generate_state(1, np.uint64)[0]) & (
            2**63 - 1)

    return {"model": one(0, TAG_W), "feedback": one(0, TAG_B), "batches": one(0, TAG_AUX),
            "mirror": one(1, TAG_AUX), "probe": one(2, TAG_AUX), "global": one(3, TAG_AUX)}


def _device(name: str, world: World) -> torch.device:
    if name == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"`train.device` must be a device torch can use, got {name!r} (no "
                             "CUDA device is available; use 'cpu' or 'auto').")
    if world.distributed and device.type == "cuda" and device.index is not None:
        raise ValueError(f"`train.device` must be 'cuda' or 'auto' in a distributed run (rank "
                         f"r trains on cuda:LOCAL_RANK), got {name!r}.")
    return world.device(device)


def _check_amp(amp: str, device: torch.device) -> None:
    """What ``train.device = 'auto'`` resolved to must support ``train.amp``."""
    if amp == "fp16" and device.type != "cuda":
        raise ValueError(f"`train.amp` must be 'off' or 'bf16' on {device.type} (fp16 needs CUDA "
                         "and its GradScaler), got 'fp16'.")


def _autocast(device: torch.device, amp: str):
    """A factory of the forward pass's autocast context (``nullcontext`` when amp is off)."""
    if amp == "off":
        return contextlib.nullcontext
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return lambda: torch.autocast(device.type, dtype=dtype)


class _Determinism:
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


def _load_data(config: Config, device: torch.device, dtype: torch.dtype):
    d = config.data
    splits = load_dataset(d.name, root=d.root, limit=d.limit, val_size=d.val_size,
                          pad_to=d.pad_to, augment=d.augment, download=d.download, seed=d.seed,
                          normalize=d.normalize, device=device, **dict(d.options))

    def cast(ds):
        if ds is None or not isinstance(ds, TensorDataset) or ds.x.dtype == dtype:
            return ds
        return TensorDataset(ds.x.to(dtype), ds.y)

    return splits, cast(splits.train), cast(splits.val), cast(splits.test)


def _build_model(config: Config, seeds: dict[str, int], device: torch.device,
                 dtype: torch.dtype) -> nn.Module:
    """The model, converted to the method; a model that learns by layer-local targets
    (``learns_by_targets``: GAIT-prop and its baselines) stays as built."""
    torch.manual_seed(seeds["model"])  # the model's own initialisers use the global generator
    model = build_model(config.model.name, **dict(config.model.options))
    model.to(device=device, dtype=dtype)
    if _learns_by_targets(model):
        return model
    if config.train.channels_last:  # before convert: the converted layers keep W as it is
        model.to(memory_format=torch.channels_last)
    return convert(model, config.method.name, inplace=True, rng=seeds["feedback"],
                   **dict(config.method.options))


def _learns_by_targets(model: nn.Module) -> bool:
    return bool(getattr(model, "learns_by_targets", False))


def _check_fits(model: nn.Module, x: Tensor, num_classes: int) -> None:
    """Run two examples through the model: a model that does not fit the data fails here,
    before any training, naming the config keys to fix."""
    try:
        with torch.no_grad():
            out = model.eval()(x[:2])
    except RuntimeError as exc:
        raise ValueError(f"`model` does not fit the data (input shape {tuple(x.shape[1:])}): "
                         f"{str(exc).splitlines()[0]} (check model.sizes / model.in_channels "
                         "against data.name and data.pad_to).") from None
    if out.ndim != 2 or out.shape[1] != num_classes:
        raise ValueError(f"`model` must output {num_classes} classes for this data set, got "
                         f"output shape {tuple(out.shape)}.")


@torch.no_grad()
def evaluate(model: nn.Module, dataset, batch_size: int, *, autocast=None
             ) -> tuple[float, float]:
    """Mean cross-entropy and accuracy (fraction) of ``model`` in eval mode on ``dataset``
    (``autocast``: a factory of the context the forward passes run in, e.g. AMP's)."""
    model.eval()
    autocast = autocast or contextlib.nullcontext
    loss_sum = torch.zeros((), dtype=torch.float64, device=dataset.device)
    correct = torch.zeros((), dtype=torch.int64, device=dataset.device)
    for xb, yb in batches(dataset, batch_size):
        with autocast():  # (autocast runs cross_entropy in float32)
            logits = model(xb)  # (B, K)
            loss_sum += F.cross_entropy(logits, yb, reduction="sum").double()
        correct += (logits.argmax(dim=1) == yb).sum()
    n = len(dataset)
    return float(loss_sum) / n, int(correct) / n


def _dot(a: Tensor, b: Tensor) -> float:
    return float(torch.dot(a.reshape(-1).double(), b.reshape(-1).double()))


class _Probe:
    """The per-layer references (``W_0``, ``F_0`` on the device) and the fixed probe batch
    behind layers.csv."""

    def __init__(self, model: nn.Module, train_ds, size: int, seed: int):
        self.layers = converted_layers(model)
        self.w0 = [layer.weight.detach().clone() for _, layer in self.layers]
        self.fb0 = []
        for _, layer in self.layers:
            fb = layer.effective_feedback()
            self.fb0.append(None if fb is None else fb.detach().clone())
        self.w0_sq = [_dot(w, w) for w in self.w0]
        self.fb0_sq = [math.nan if f is None else _dot(f, f) for f in self.fb0]
        self.batch = None
        if size and isinstance(train_ds, TensorDataset):
            gen = torch.Generator().manual_seed(seed)
            idx = torch.randperm(len(train_ds), generator=gen)[:size].to(train_ds.device)
            self.batch = (train_ds.x.index_select(0, idx), train_ds.y.index_select(0, idx))

    def rows(self, model: nn.Module, epoch: int, step: int, decay_c: float
             ) -> tuple[list[dict[str, Any]], dict[str, float]]:
        """layers.csv rows at this point, and the all-layer update angle."""
        was_training = model.training
        model.train()
        cuda = [d.index or 0 for d in {p.device for p in model.parameters()}
                if d.type == "cuda"]
        with torch.random.fork_rng(devices=cuda):
            upd = (update_angles(model, F.cross_entropy, *self.batch)
                   if self.batch is not None else None)
            align = {r["layer"]: r for r in alignment(model)}
        model.train(was_training)
        by_layer = {} if upd is None else {r["layer"]: r for r in upd}
        rows = []
        for i, (name, layer) in enumerate(self.layers):
            a, u = align[name], by_layer.get(name, {})
            w = layer.weight.detach()
            fb0 = self.fb0[i]
            rows.append({
                "epoch": epoch, "step": step, "layer": name, "type": a["type"],
                "method": a["method"], "measure": a["measure"], "angle_deg": a["angle_deg"],
                "norm_ratio": a["norm_ratio"], "feedback_used": a["feedback_used"],
                "update_angle_deg": u.get("angle_deg", math.nan),
                "update_norm_ratio": u.get("norm_ratio", math.nan),
                "w_sq": _dot(w, w), "w_dot_w0": _dot(w, self.w0[i]), "w0_sq": self.w0_sq[i],
                "fb0_sq": self.fb0_sq[i],
                "w_dot_fb0": math.nan if fb0 is None else _dot(w, fb0),
                "decay_c": decay_c,
            })
        total = by_layer.get("(all)", {})
        return rows, {"update_angle_deg": total.get("angle_deg", math.nan),
                      "update_norm_ratio": total.get("norm_ratio", math.nan)}


class _TargetProbe:
    """layers.csv for a model trained by a layer-local rule (``alignlab.gaitprop``): per
    layer, the rule's update against BP's on the fixed probe batch, ``|W W^T - I|_F``, the
    LU's condition estimate and (GAIT-prop) the first-order theory's angle
    (:meth:`alignlab.gaitprop.Trainer.diagnostics`), plus the
    weight scalars; no feedback, so no alignment (``measure`` 'none')."""

    def __init__(self, trainer, train_ds, size: int, seed: int):
        self.trainer = trainer
        self.layers = list(trainer.model.layers)
        self.w0 = [layer.weight.detach().clone() for layer in self.layers]
        self.w0_sq = [_dot(w, w) for w in self.w0]
        gen = torch.Generator().manual_seed(seed)
        idx = torch.randperm(len(train_ds), generator=gen)[:max(size, 1)].to(train_ds.device)
        self.batch = (train_ds.x.index_select(0, idx), train_ds.y.index_select(0, idx))

    def rows(self, model: nn.Module, epoch: int, step: int, decay_c: float
             ) -> tuple[list[dict[str, Any]], dict[str, float]]:
        diag = {r["layer"]: r for r in self.trainer.diagnostics(*self.batch)}
        rows = []
        for i, layer in enumerate(self.layers):
            d = diag[f"layers[{i}]"]
            w = layer.weight.detach()
            rows.append({
                "epoch": epoch, "step": step, "layer": f"layers.{i}",
                "type": type(layer).__name__, "method": self.trainer.rule.name,
                "measure": "none", "angle_deg": math.nan, "norm_ratio": math.nan,
                "update_angle_deg": d["update_angle_deg"],
                "update_norm_ratio": d["update_norm_ratio"],
                "w_sq": _dot(w, w), "w_dot_w0": _dot(w, self.w0[i]), "w0_sq": self.w0_sq[i],
                "fb0_sq": math.nan, "w_dot_fb0": math.nan, "decay_c": decay_c,
                "ortho_residual": d["ortho_residual"], "condition": d["condition"],
                "update_angle_first_order_deg": d["first_order_angle_deg"],
            })
        total = diag["(all)"]
        return rows, {"update_angle_deg": total["update_angle_deg"],
                      "update_norm_ratio": total["update_norm_ratio"]}


class _Progress:
    """A tqdm bar (loss and accuracy so far) on a terminal, if tqdm is installed and ``CI``
    is unset; otherwise (or also, at the end of each epoch) one plain line per epoch on
    stdout. Nothing when quiet or not the main process. The bar goes to stderr, so it is
    shown only when stderr is a terminal."""

    def __init__(self, enabled: bool, epochs: int, stream=None):
        self.enabled, self.epochs, self.bar = enabled, epochs, None
        self.tqdm = None
        stream = sys.stderr if stream is None else stream
        if enabled and stream.isatty() and not os.environ.get("CI"):
            try:
                from tqdm import tqdm

                self.tqdm = tqdm
            except ImportError:
                pass

    def start(self, epoch: int, n_batches: int) -> None:
        if self.tqdm is not None:
            self.bar = self.tqdm(total=n_batches, desc=f"epoch {epoch}/{self.epochs}",
                                 leave=False, dynamic_ncols=True)

    def step(self, i: int, loss: Tensor, correct: Tensor, seen: int) -> None:
        if self.bar is not None:
            self.bar.update(1)
            if i % 50 == 0:  # .item() syncs a GPU: not every step
                self.bar.set_postfix(loss=f"{float(loss.detach()):.4f}",
                                     acc=f"{100 * int(correct) / max(seen, 1):.1f}%")

    def note(self, text: str) -> None:
        """One line on stdout (e.g. where a resumed run continues from)."""
        if self.enabled:
            print(text, flush=True)

    def end(self, row: dict[str, Any]) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.enabled:
            val = "" if row["val_acc"] is None else f"  val {100 * row['val_acc']:.2f}%"
            print(f"epoch {row['epoch']:>3}/{self.epochs}  loss {row['train_loss']:.4f}  "
                  f"acc {100 * row['train_acc']:.2f}%{val}  test {100 * row['test_acc']:.2f}%  "
                  f"lr {row['lr']:.3g}  wd {row['weight_decay']:.3g}  "
                  f"{row['epoch_s']:.1f}+{row['log_s']:.1f} s", flush=True)


def _config_key(config: Config) -> str:
    return json.dumps(config.to_dict(), sort_keys=True, default=list)


def _trajectory_key(key: str | None) -> str | None:
    """A checkpoint's config key without :data:`~.rundir.EXTENDABLE_KEYS` (what a resumed
    run may change without changing the steps already taken)."""
    if key is None:
        return None
    table = json.loads(key)
    for dotted in EXTENDABLE_KEYS:
        section, _, name = dotted.partition(".")
        table.get(section, {}).pop(name, None)
    return json.dumps(table, sort_keys=True)


def _write_config(run_dir: Path, config: Config) -> None:
    meta = {"alignlab_version": __version__, "torch_version": torch.__version__,
            "python_version": platform.python_version(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    text = dumps_toml({**config.to_dict(), "meta": meta},
                      header="Resolved config of this run (every default filled in).\n"
                             "Continue it with: alignlab train --resume <this folder>")
    write_text_atomic(run_dir / CONFIG_FILE, text)


def initial_model(config: Config, device: str | torch.device = "cpu") -> nn.Module:
    """The model of a run as :func:`train` builds it before the first step.

    The same calls as ``train``: the seeds of ``train.seed`` (``_seeds``) and
    ``_build_model`` (model built and converted to the method, feedback drawn, in
    ``train.dtype``), on ``device`` instead of ``train.device``. Its weights are the run's
    ``W_0`` (``layers.csv``'s ``w0_sq`` is ``|W_0|_F^2``) and its feedback state the
    initial one (PFA: ``B`` and ``R_0``), bit for bit when ``device`` is the run's.
    Nothing is trained, loaded or written. The initialisers seed torch's global
    generators; the CPU's and those of CUDA devices already initialised are forked (left
    as they were; CUDA is not initialised here just to save its state).
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"`device` must be a torch device such as 'cpu' or 'cuda', got "
                         f"{device!r}.") from None
    dtype = torch.float64 if config.train.dtype == "float64" else torch.float32
    cuda = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=cuda):
        return _build_model(config, _seeds(config.train.seed), dev, dtype)


# ---------------------------------------------------------------------------------------
# the loop


def train(config: Config, run_dir: str | Path, *, resume: bool = False, quiet: bool = False,
          world: World | None = None) -> RunResult:
    """Train as ``config`` says, writing the run directory ``run_dir`` (see module doc).

    ``world``: this process among the processes of a distributed run (default: one
    process; ``World.from_env()`` under torchrun). Every rank calls ``train`` with the same
    config; the process group is joined (and left) here unless it exists already; only the
    main rank writes ``run_dir`` (the other ranks use the main rank's ``run_dir``).

    Raises
    ------
    Diverged
        The loss became NaN/inf (``summary.json`` says "diverged"; the last checkpoint is
        the last complete epoch).
    ValueError
        A config that cannot run here (no GPU, fp16 without CUDA, a model that does not fit
        the data), an unusable ``run_dir``, or a ``resume`` whose checkpoint belongs to
        another config or cannot be read. Nothing is written.
    WriteFailed
        ``run_dir`` could not be written during training (e.g. no space left on device);
        it holds the last complete epoch (``summary.json`` "interrupted", if it could be
        written) and ``resume`` continues it.
    KeyboardInterrupt
        Re-raised after ``summary.json`` says "interrupted".
    """
    world = world or World()
    cfg = config
    device = _device(cfg.train.device, world)
    _check_amp(cfg.train.amp, device)
    dtype = torch.float64 if cfg.train.dtype == "float64" else torch.float32
    created = world.init(device)
    try:
        if resume:
            run_dir = Path(run_dir)
            done = world.agree(lambda: read_summary(run_dir))
            if (done is not None and done.get("status") == "completed"
                    and done.get("epochs_completed") == cfg.train.epochs):
                return RunResult(run_dir, "completed", done.get("final", {}),
                                 float(done.get("wall_s", 0.0)), trained=False)
            # the folder is written from the first step on: probe it now, naming it
            world.agree(lambda: check_output_dir(run_dir, name="--resume"))
        else:  # a new or empty folder (created later); refuses one that holds a run
            run_dir = world.agree(lambda: check_new_run(run_dir))
        with _Determinism(cfg.train.deterministic):
            return _train(cfg, run_dir, resume, quiet, world, device, dtype)
    finally:
        if created:
            world.close()


def _train(cfg: Config, run_dir: Path, resume: bool, quiet: bool, world: World,
           device: torch.device, dtype: torch.dtype) -> RunResult:
    t_start = time.perf_counter()
    seeds = _seeds(cfg.train.seed)
    main = world.is_main
    metrics_log = CsvLog(run_dir / METRICS_FILE, METRIC_COLUMNS)
    layers_log = CsvLog(run_dir / LAYERS_FILE, LAYER_COLUMNS)
    checkpoint = run_dir / CHECKPOINT_FILE

    # ---- data, model, optimiser ----------------------------------------------------------
    if world.distributed and not main:
        world.barrier()  # the main rank loads (and, if needed, downloads) first
    splits, train_ds, val_ds, test_ds = _load_data(cfg, device, dtype)
    if world.distributed and main:
        world.barrier()
    model = _build_model(cfg, seeds, device, dtype)
    by_targets = _learns_by_targets(model)
    if by_targets and world.distributed:
        raise ValueError(f"`model.name` {cfg.model.name!r} trains in one process only (its "
                         "layer-local rules are not wired for DistributedDataParallel); run it "
                         "without torchrun.")
    if isinstance(test_ds, TensorDataset):
        _check_fits(model, test_ds.x, splits.num_classes)
    if cfg.train.compile:
        _check_compilable(model)
    n_train = len(train_ds)
    bs = cfg.train.batch_size
    if world.distributed:
        _check_shards(n_train, bs, cfg.train.drop_last, world.world_size)
        # every rank built the same model from the same seeds: check it, bit for bit, rather
        # than broadcast it (DDP's init_sync), so factored PFA's W stays the W it follows
        world.check_identical(_shared_state(model), "the models built on each rank")
    if main and not resume:  # every check passed: now the run directory is written
        run_dir.mkdir(parents=True, exist_ok=True)
        _write_config(run_dir, cfg)
    o = cfg.optim
    extra = {"momentum": o.momentum, "nesterov": o.nesterov} if o.name == "sgd" else {
        "betas": o.betas}
    opt = make_optimizer(model, o.name, lr=o.lr_at(1), weight_decay=o.weight_decay_at(1),
                         **extra)
    layers = converted_layers(model)
    log_layers = cfg.train.log_layers and main
    trainer = None
    if by_targets:  # GAIT-prop & co.: the rule replaces forward, backward and opt.step()
        from ..gaitprop import Trainer

        trainer = Trainer(model, opt, cfg.method.name, **dict(cfg.method.options))
        probe = (_TargetProbe(trainer, train_ds, cfg.train.probe_size, seeds["probe"])
                 if log_layers else None)
    else:
        probe = (_Probe(model, train_ds, cfg.train.probe_size, seeds["probe"]) if log_layers
                 else None)
    mirrored = any(layer.method.mirror_trained for _, layer in layers)
    tracks_decay = o.name == "sgd" and not o.nesterov  # Proposition 1's c_t is defined
    batch_gen = torch.Generator().manual_seed(seeds["batches"])  # order and augmentation
    mirror_gen = torch.Generator().manual_seed(seeds["mirror"])
    torch.manual_seed(seeds["global"])  # anything else random (e.g. brSF's redraws)
    n_batches = n_train // bs if cfg.train.drop_last else -(-n_train // bs)
    nan_every = 1 if device.type == "cpu" else 50  # .item() syncs a GPU: check less often
    k_log = cfg.train.log_every_steps if log_layers else 0
    autocast = _autocast(device, cfg.train.amp)
    scaler = torch.amp.GradScaler(device.type) if cfg.train.amp == "fp16" else None
    channels_last = cfg.train.channels_last
    cuda_devices = [device.index or 0] if device.type == "cuda" else []

    # ---- state (fresh, or from the checkpoint) --------------------------------------------
    epoch, step, updates, c, u, wall_before = 0, 0, 0, 1.0, 0.0, 0.0
    metric_rows: list[dict[str, Any]] = []
    layer_rows: list[dict[str, Any]] = []
    if resume:
        ck = world.agree(lambda: _read_checkpoint(checkpoint) if checkpoint.is_file() else None)
        if ck is not None:
            if (ck.get("format") != _CHECKPOINT_FORMAT
                    or _trajectory_key(ck.get("config")) != _trajectory_key(_config_key(cfg))):
                raise ValueError(f"`--resume` {str(run_dir)!r}: its checkpoint was written for "
                                 "another config or format; start a new run instead.")
            if ck["epoch"] > cfg.train.epochs:
                raise ValueError(f"`train.epochs` must be at least the {ck['epoch']} epochs "
                                 f"{str(run_dir)!r} has trained, got {cfg.train.epochs}.")
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
            batch_gen.set_state(ck["batch_gen"])
            mirror_gen.set_state(ck["mirror_gen"])
            torch.set_rng_state(ck["torch_rng"])
            if ck.get("cuda_rng") is not None and device.type == "cuda":
                torch.cuda.set_rng_state(ck["cuda_rng"], device)
            if scaler is not None and ck.get("scaler") is not None:
                scaler.load_state_dict(ck["scaler"])
            epoch, step, (c, u), wall_before = ck["epoch"], ck["step"], ck["decay"], ck["wall_s"]
            updates = ck.get("updates", step)
            metric_rows, layer_rows = ck["metrics"], ck["layers"]
    if main and resume and load_config(run_dir / CONFIG_FILE).to_dict() != cfg.to_dict():
        _write_config(run_dir, cfg)  # extended (train.epochs): the folder says what it runs
    if main:  # the files say exactly what the checkpoint says (drops rows of a lost epoch)
        metrics_log.rewrite(metric_rows)
        layers_log.rewrite(layer_rows)
    progress = _Progress(main and not quiet, cfg.train.epochs)
    resumed_from = (epoch, step) if metric_rows else None
    if resumed_from is not None:
        progress.note(f"resumed from epoch {epoch} (step {step})")

    # ---- the network that trains: DDP over the ranks, optionally compiled ----------------
    net: nn.Module = model
    if world.distributed:
        net = _ddp(model, device)
    if cfg.train.compile:
        net = torch.compile(net, dynamic=False)  # (one recompile for a smaller last batch)

    def wall() -> float:
        return wall_before + time.perf_counter() - t_start

    def save_checkpoint(metric_rows, layer_rows) -> None:
        torch_save_atomic({
            "format": _CHECKPOINT_FORMAT, "config": _config_key(cfg), "epoch": epoch,
            "step": step, "updates": updates, "decay": (c, u), "wall_s": wall(),
            "model": model.state_dict(), "optimizer": opt.state_dict(),
            "scaler": None if scaler is None else scaler.state_dict(),
            "batch_gen": batch_gen.get_state(), "mirror_gen": mirror_gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
            "metrics": metric_rows, "layers": layer_rows,
        }, checkpoint)

    def probe_rows() -> tuple[list[dict[str, Any]], dict[str, float]]:
        if probe is None:
            return [], {"update_angle_deg": math.nan, "update_norm_ratio": math.nan}
        return probe.rows(model, epoch, step, c if tracks_decay else math.nan)

    pending: list[dict[str, Any]] = []  # this epoch's mid-epoch layer rows

    def finish_row(row: dict[str, Any], t_log: float) -> None:
        """Log point at the end of ``epoch`` (main rank): layers, evaluation, then the
        checkpoint and only then the epoch's CSV rows (a failed write leaves the files at
        the last complete epoch)."""
        if world.distributed:  # the ranks must still be one model (cheap: once an epoch)
            world.check_identical(_shared_state(model), f"the models after epoch {epoch}")
        if not main:
            return
        with torch.random.fork_rng(devices=cuda_devices):  # (brSF draws at every forward)
            rows, upd = probe_rows()
            ev = cfg.train.eval_batch_size
            val = evaluate(model, val_ds, ev, autocast=autocast) if val_ds is not None else None
            test = evaluate(model, test_ds, ev, autocast=autocast)
        row.update(upd)
        row.update(val_loss=None if val is None else val[0], val_acc=None if val is None
                   else val[1], test_loss=test[0], test_acc=test[1])
        row["log_s"] = time.perf_counter() - t_log
        row["wall_s"] = wall()
        new_layers = [*pending, *rows]
        with _writing(run_dir, f"{CHECKPOINT_FILE} of epoch {epoch}", metric_rows):
            save_checkpoint([*metric_rows, row], [*layer_rows, *new_layers])
            metric_rows.append(row)
            layer_rows.extend(new_layers)
            pending.clear()
            layers_log.append(new_layers)
            metrics_log.append([row])
        progress.end(row)

    def write_summary(status: str, message: str = "") -> RunResult:
        final = metric_rows[-1] if metric_rows else {}
        vals = [r["val_acc"] for r in metric_rows if r.get("val_acc") is not None]
        summary = {
            "status": status, "message": message,
            "epochs_completed": metric_rows[-1]["epoch"] if metric_rows else 0,
            "epochs": cfg.train.epochs, "steps": step, "final": final,
            "best_val_acc": max(vals) if vals else None, "wall_s": wall(),
            "device": str(device), "threads": torch.get_num_threads(),
            "world_size": world.world_size,
            "alignlab_version": __version__, "torch_version": torch.__version__,
        }
        if main:
            with signals_deferred():  # a second Ctrl-C must not cut this file short
                write_json(run_dir / SUMMARY_FILE, summary)
        return RunResult(run_dir, status, final, summary["wall_s"], model,
                         resumed_from=resumed_from)

    shard = world.shard
    try:
        if epoch == 0 and not metric_rows:  # ---- epoch 0: the state before training --------
            t_log = time.perf_counter()
            loss0, acc0 = math.nan, math.nan
            if main:
                with torch.random.fork_rng(devices=cuda_devices):
                    loss0, acc0 = evaluate(model, train_ds, cfg.train.eval_batch_size,
                                           autocast=autocast)
            finish_row({"epoch": 0, "step": 0, "train_loss": loss0, "train_acc": acc0,
                        "lr": o.lr_at(1), "weight_decay": o.weight_decay_at(1),
                        "epoch_s": 0.0}, t_log)

        while epoch < cfg.train.epochs:  # ---- training epochs --------------------------------
            epoch += 1
            lr, wd = o.lr_at(epoch), o.weight_decay_at(epoch)
            for group in opt.param_groups:  # every group, learned feedback included
                group["lr"], group["weight_decay"] = lr, wd
            t0 = time.perf_counter()
            if mirrored and epoch == 1:
                for _ in range(cfg.wm.initial_steps):
                    _mirror(model, cfg, mirror_gen)
            model.train()
            progress.start(epoch, n_batches)
            loss_sum = torch.zeros((), dtype=torch.float64, device=device)
            correct = torch.zeros((), dtype=torch.int64, device=device)
            seen = 0
            for i, (xb, yb) in enumerate(batches(train_ds, bs, shuffle=cfg.train.shuffle,
                                                 generator=batch_gen,
                                                 drop_last=cfg.train.drop_last,
                                                 augment=splits.augment_fn)):
                n_global = yb.shape[0]  # the global batch, drawn as one process draws it
                if world.distributed:  # this rank's contiguous shard of it
                    part = shard(n_global)
                    xb, yb = xb[part], yb[part]
                if channels_last and xb.ndim == 4:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                if trainer is not None:  # one call: targets, local updates, opt.step, inverses
                    try:
                        res = trainer.step(xb, yb, log=False)
                    except ValueError as exc:  # a weight became singular / ill-conditioned
                        raise Diverged(f"{str(exc).rstrip('.')} at epoch {epoch}, step "
                                       f"{step + 1}") from None
                    value = float(res.loss)  # the quadratic loss the rule descends
                    if not math.isfinite(value):
                        raise Diverged(f"loss is {value} at epoch {epoch}, step {step + 1}")
                    logits = res.logits  # the read-out before the update, as for autograd
                    loss = F.cross_entropy(logits, yb)  # the column every run logs
                    part_sum = loss.detach().double() * n_global
                    updates += 1
                else:  # autograd: forward, backward, the optimiser's step
                    with autocast():
                        logits = net(xb)  # (b, K), b = this rank's share of the batch
                        if world.distributed:  # DDP averages the ranks' gradients: sum W / B
                            ce_sum = F.cross_entropy(logits, yb, reduction="sum")
                            loss = ce_sum * (world.world_size / n_global)
                        else:
                            loss = F.cross_entropy(logits, yb)
                    part_sum = (ce_sum.detach().double() if world.distributed
                                else loss.detach().double() * n_global)
                    if i % nan_every == 0:
                        if world.distributed:  # every rank must stop at the same step
                            value = float(world.all_reduce_sum(part_sum.clone())) / n_global
                        else:
                            value = float(loss.detach())
                        if not math.isfinite(value):
                            raise Diverged(f"loss is {value} at epoch {epoch}, step {step + 1}")
                    opt.zero_grad(set_to_none=True)
                    has_buffer = updates > 0  # SGD's momentum buffers exist after 1 step
                    if scaler is None:
                        loss.backward()
                        opt.step()
                        stepped = True
                    else:  # fp16: a step with inf/nan gradients is skipped (and the scale cut)
                        scaler.scale(loss).backward()
                        before = scaler.get_scale()
                        scaler.step(opt)
                        scaler.update()
                        stepped = scaler.get_scale() >= before
                    if stepped:
                        updates += 1
                        if tracks_decay:
                            c, u = sgd_decay_step(c, u, lr, wd, o.momentum, has_buffer)
                step += 1
                if mirrored and cfg.wm.every_steps and step % cfg.wm.every_steps == 0:
                    _mirror(model, cfg, mirror_gen)
                loss_sum += part_sum
                correct += (logits.argmax(dim=1) == yb).sum()
                seen += n_global
                progress.step(i, loss, correct, seen // world.world_size)
                if k_log and step % k_log == 0 and i < n_batches - 1:  # mid-epoch log point
                    pending.extend(probe_rows()[0])  # written with the epoch's checkpoint
            if world.distributed:  # the epoch's loss and hits over every rank's shards
                loss_sum, correct = world.all_reduce_sum(loss_sum), world.all_reduce_sum(correct)
            train_loss = float(loss_sum) / seen
            if not math.isfinite(train_loss):
                raise Diverged(f"loss is {train_loss} over epoch {epoch}")
            epoch_s = time.perf_counter() - t0
            finish_row({"epoch": epoch, "step": step, "train_loss": train_loss,
                        "train_acc": int(correct) / seen, "lr": lr, "weight_decay": wd,
                        "epoch_s": epoch_s}, time.perf_counter())
    except Diverged as exc:
        last = metric_rows[-1]["epoch"] if metric_rows else None
        msg = (f"{exc}; stopped. Last good checkpoint: {checkpoint} (epoch {last}).")
        write_summary("diverged", msg)
        raise Diverged(msg) from None
    except WriteFailed as exc:
        with contextlib.suppress(OSError, ValueError):  # the disk may still be full
            write_summary("interrupted", str(exc))
        raise
    except KeyboardInterrupt:
        write_summary("interrupted", "interrupted; continue with alignlab train --resume")
        raise
    world.barrier()  # the other ranks leave once the main rank has written everything
    return write_summary("completed")


def _read_checkpoint(path: Path) -> dict[str, Any]:
    """``checkpoint.pt`` as written by the loop; a file that cannot be read as one (empty,
    truncated, garbage) is a one-line ``ValueError`` naming it."""
    try:
        ck = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises RuntimeError, UnpicklingError, EOFError, ...
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ValueError(f"`--resume` {str(path.parent)!r}: its checkpoint {str(path)!r} "
                         f"cannot be read ({type(exc).__name__}: {why}); it is empty, "
                         "truncated or not a checkpoint: restore it or start a new run."
                         ) from None
    if not isinstance(ck, dict) or "format" not in ck:
        raise ValueError(f"`--resume` {str(path.parent)!r}: its checkpoint {str(path)!r} is "
                         f"not an alignlab checkpoint (a {type(ck).__name__}); restore it or "
                         "start a new run.")
    return ck


def _why_unwritten(exc: BaseException) -> str | None:
    """Why writing failed, in words, if ``exc`` is a failed write of the run directory:
    an ``OSError`` (also behind :class:`~alignlab._output.UnusableOutput`) or torch's
    stream writer's "[enforce fail at inline_container.cc]"; else None."""
    cause = exc.__cause__ if isinstance(exc, UnusableOutput) else exc
    if isinstance(cause, OSError):
        if cause.errno in (errno.ENOSPC, errno.EDQUOT):
            return "no space left on device"
        return cause.strerror or str(cause)
    if isinstance(exc, RuntimeError) and "inline_container" in str(exc):
        first = (str(exc).strip().splitlines() or [""])[0]
        return f"torch's checkpoint writer failed ({first}; no space left on device?)"
    return None


@contextlib.contextmanager
def _writing(run_dir: Path, what: str, saved: list[dict[str, Any]]):
    """Turn a failed write of ``what`` into the run directory into :class:`WriteFailed`,
    one line naming the folder and the epoch it still holds (the last row of ``saved``)."""
    try:
        yield
    except (OSError, UnusableOutput, RuntimeError) as exc:
        why = _why_unwritten(exc)
        if why is None:
            raise
        last = saved[-1]["epoch"] if saved else None
        raise WriteFailed(f"{why}: the run folder {str(run_dir)!r} could not be written "
                          f"({what}); stopped at epoch {last}, its last checkpoint: free "
                          f"space and continue with `alignlab train --resume {run_dir}`."
                          ) from None


def _check_shards(n_train: int, batch_size: int, drop_last: bool, world_size: int) -> None:
    """Every global batch must give every rank at least one example."""
    last = 0 if drop_last else n_train % batch_size
    if batch_size < world_size or 0 < last < world_size:
        raise ValueError(
            f"`train.batch_size` must split into {world_size} non-empty shards (one per rank) "
            f"for every batch, got batch_size = {batch_size} with a last batch of {last} "
            "examples (set train.drop_last = true or change data.limit).")


def _check_compilable(model: nn.Module) -> None:
    """torch.compile (AOT autograd) traces the backward pass ahead of time, so state that a
    forward hook on the model's root hands to the backward pass through Python (DFA's
    output-error capture, installed by ``Method.install``) cannot be followed."""
    if model._forward_hooks:  # the public API has no accessor for a module's hooks
        raise ValueError("`train.compile` must be false for this model, got true: its root "
                         "has forward hooks (a method's model-level machinery, e.g. DFA's "
                         "output-error capture) whose state the backward pass reads, which "
                         "torch.compile cannot trace.")


def _shared_state(model: nn.Module) -> dict[str, Any]:
    """What must be identical on every rank of a distributed run: the parameters, the
    converted layers' feedback state (buffers such as fixed ``B``; BatchNorm's running
    statistics are per rank, as in any DDP run) and their Python scalars (factored PFA's
    ``(c, u)``)."""
    out: dict[str, Any] = dict(model.named_parameters())
    for name, layer in converted_layers(model):
        for bname, buf in layer.named_buffers(recurse=False):
            if buf is not None:
                out[f"{name}.{bname}"] = buf
        scalars = layer.method.scalar_state(layer)
        if scalars:
            out[f"{name}.<scalars>"] = scalars
    return out


def _ddp(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` wrapped in DistributedDataParallel.

    * ``init_sync=False``: the ranks built identical models (checked by the caller), so
      nothing is broadcast (a broadcast would rewrite factored PFA's ``W`` behind its hook);
    * no buffer sync (``forward_sync_buffers=False``): fixed feedback is identical by
      construction and checked every epoch; re-broadcasting it every forward pass would
      cost a model's worth of traffic per step (BatchNorm statistics stay per rank);
    * feedback learned outside the backward pass (``Method.mirror_trained``: the weight
      mirror) gets no gradient: DDP is told to ignore it, and every rank applies the same
      mirror step (same generator, same ``W``).

    The wrapper calls ``model`` itself, so hooks on the model's root (DFA's output-error
    capture) run as in one process; factored PFA's step hooks live on the optimiser, which
    steps once per global batch on every rank.
    """
    from torch.nn.parallel import DistributedDataParallel as DDP

    outside = {id(p) for _, layer in converted_layers(model) if layer.method.mirror_trained
               for p in layer.feedback_parameters()}
    ignore = [name for name, p in model.named_parameters() if id(p) in outside]
    if ignore:
        DDP._set_params_and_buffers_to_ignore_for_model(model, ignore)
    ids = [device.index] if device.type == "cuda" else None
    # torch 2.13 renamed broadcast_buffers; with init_sync=False neither syncs at init
    no_sync = ("forward_sync_buffers" if "forward_sync_buffers" in
               inspect.signature(DDP.__init__).parameters else "broadcast_buffers")
    return DDP(model, device_ids=ids, init_sync=False, **{no_sync: False})


def _mirror(model: nn.Module, cfg: Config, generator: torch.Generator) -> None:
    w = cfg.wm
    mirror_step(model, lr=w.lr, weight_decay=w.weight_decay, noise_std=w.noise_std,
                n_samples=w.n_samples, rng=generator)
