"""The training loop: one visible loop, from a validated config to a run directory.

``train(config, run_dir)`` does, in order:

1. resolve the device (``train.device``, ``train.amp``: :mod:`alignlab.train.setup`) and
   check the run directory (a writable folder without a run) before any work; under
   torchrun join the process group (:class:`~alignlab.train.world.World`);
2. build the run (:func:`~alignlab.train.setup.build_run`: seeds from ``train.seed``,
   data, the model converted to the method, the optimiser; all checked), then write
   ``config.toml``; wrap the model in DistributedDataParallel (several ranks) and
   ``torch.compile`` (``train.compile``); choose the step
   (:mod:`alignlab.train.steps`: autograd, or a layer-local rule's ``Trainer``) and its
   probe (:mod:`alignlab.train.probe`); seed the batch order and the weight mirror; on
   ``resume``, restore all of it from ``checkpoint.pt``
   (:mod:`alignlab.train.checkpoint`);
3. log epoch 0 (before training), then for every epoch: set the learning rate and weight
   decay of every parameter group from the schedules, run the step on every minibatch
   (plus weight mirror steps for WM), log (layers.csv: alignment and per-layer scalars;
   the update angle on a fixed probe batch), evaluate on the validation and test sets,
   replace ``checkpoint.pt`` atomically and only then append the epoch's rows.

Nothing in a run draws from torch's global generator: the model, the feedback, the batch
order, the mirror and brSF's per-step draws each have their own generator or stream.
Evaluation runs without gradients (brSF does not advance its draws), and logging leaves
the model as it found it (BatchNorm statistics, brSF's draw count: see
:func:`alignlab.nn.update_angles`), so neither the log frequency nor the evaluation
changes the training trajectory. A NaN/inf loss raises :class:`Diverged`
(``summary.json`` status "diverged"; the checkpoint of the last complete epoch is kept).
An epoch's rows reach the CSV files only after its checkpoint is written, so when writing
fails (a full disk) the run stops with :class:`~alignlab.train.rundir.WriteFailed` and
the folder holds the last complete epoch, which ``--resume`` continues. A
``KeyboardInterrupt`` (Ctrl-C; SIGTERM under the CLI) writes ``summary.json`` with status
"interrupted"; SIGINT and SIGTERM wait while it is written. ``train(config, run_dir,
resume=True)`` continues from the checkpoint and, in deterministic mode, ends with
exactly the numbers of an uninterrupted run.

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
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .. import __version__
from .._output import check_output_dir
from .._signals import signals_deferred
from ..data import batches
from ..nn import converted_layers, mirror_step
from .checkpoint import LoopState, read_checkpoint, restore_checkpoint, save_checkpoint
from .config import Config, dumps_toml, load_config
from .losses import Loss, get_loss
from .rundir import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    LAYER_COLUMNS,
    LAYERS_FILE,
    METRIC_COLUMNS,
    METRICS_FILE,
    SUMMARY_FILE,
    CsvLog,
    WriteFailed,
    check_new_run,
    read_summary,
    write_json,
    write_text_atomic,
    writing,
)
from .setup import Determinism, autocast_factory, build_run, initial_model, run_device
from .steps import Diverged, make_step
from .world import World, shared_state, wrap_ddp

__all__ = ["Diverged", "RunResult", "WriteFailed", "evaluate", "initial_model", "train"]


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
        if math.isnan(f.get("test_acc", 0.0)):  # real-valued targets: the test loss
            what = (f"epoch {f.get('epoch')}  test loss {f.get('test_loss', math.nan):.4g}  "
                    f"train loss {f.get('train_loss', math.nan):.4g}")
        else:
            val = "" if f.get("val_acc") is None else f"  val acc {100 * f['val_acc']:.2f}%"
            what = (f"epoch {f.get('epoch')}  test acc "
                    f"{100 * f.get('test_acc', math.nan):.2f}%{val}  train loss "
                    f"{f.get('train_loss', math.nan):.4g}")
        if not self.trained:
            return (f"nothing to do: {self.run_dir} has completed its {f.get('epoch')} epochs "
                    f"({what}; extend it with --set train.epochs=N)")
        return f"{self.status}: {what}  ({self.wall_s:.1f} s)  -> {self.run_dir}"


@torch.no_grad()
def evaluate(model: nn.Module, dataset, batch_size: int, *, autocast=None,
             loss: Loss | None = None) -> tuple[float, float]:
    """Mean loss and accuracy (fraction; NaN where the loss has no notion of a correct
    prediction) of ``model`` in eval mode on ``dataset`` (``autocast``: a factory of the
    context the forward passes run in, e.g. AMP's; ``loss``: default cross-entropy)."""
    model.eval()
    autocast = autocast or contextlib.nullcontext
    loss = loss or get_loss("cross-entropy")
    loss_sum = torch.zeros((), dtype=torch.float64, device=dataset.device)
    correct = torch.zeros((), dtype=torch.int64, device=dataset.device)
    counted = True
    for xb, yb in batches(dataset, batch_size):
        with autocast():  # (autocast runs cross_entropy in float32)
            logits = model(xb)  # (B, K)
            loss_sum += loss(logits, yb, reduction="sum").double()
        hits = loss.hits(logits, yb)
        counted = hits is not None
        if counted:
            correct += hits
    n = len(dataset)
    return float(loss_sum) / n, int(correct) / n if counted else math.nan




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
            if math.isnan(row["test_acc"]):  # real-valued targets: losses, no accuracy
                val = "" if row["val_loss"] is None else f"  val {row['val_loss']:.4g}"
                scores = f"{val}  test {row['test_loss']:.4g}"
            else:
                val = "" if row["val_acc"] is None else f"  val {100 * row['val_acc']:.2f}%"
                scores = (f"  acc {100 * row['train_acc']:.2f}%{val}  test "
                          f"{100 * row['test_acc']:.2f}%")
            print(f"epoch {row['epoch']:>3}/{self.epochs}  loss {row['train_loss']:.4f}"
                  f"{scores}  lr {row['lr']:.3g}  wd {row['weight_decay']:.3g}  "
                  f"{row['epoch_s']:.1f}+{row['log_s']:.1f} s", flush=True)




def _write_config(run_dir: Path, config: Config) -> None:
    meta = {"alignlab_version": __version__, "torch_version": torch.__version__,
            "python_version": platform.python_version(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    text = dumps_toml({**config.to_dict(), "meta": meta},
                      header="Resolved config of this run (every default filled in).\n"
                             "Continue it with: alignlab train --resume <this folder>")
    write_text_atomic(run_dir / CONFIG_FILE, text)


def _mirror(model: nn.Module, cfg: Config, generator: torch.Generator) -> None:
    w = cfg.wm
    mirror_step(model, lr=w.lr, weight_decay=w.weight_decay, noise_std=w.noise_std,
                n_samples=w.n_samples, rng=generator)


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
    device = run_device(config, world)
    created = world.init(device)
    try:
        if resume:
            run_dir = Path(run_dir)
            done = world.agree(lambda: read_summary(run_dir))
            if (done is not None and done.get("status") == "completed"
                    and done.get("epochs_completed") == config.train.epochs):
                return RunResult(run_dir, "completed", done.get("final", {}),
                                 float(done.get("wall_s", 0.0)), trained=False)
            # the folder is written from the first step on: probe it now, naming it
            world.agree(lambda: check_output_dir(run_dir, name="--resume"))
        else:  # a new or empty folder (created later); refuses one that holds a run
            run_dir = world.agree(lambda: check_new_run(run_dir))
        with Determinism(config.train.deterministic):
            return _train(config, run_dir, resume, quiet, world, device)
    finally:
        if created:
            world.close()


def _train(cfg: Config, run_dir: Path, resume: bool, quiet: bool, world: World,
           device: torch.device) -> RunResult:
    t_start = time.perf_counter()
    main = world.is_main
    metrics_log = CsvLog(run_dir / METRICS_FILE, METRIC_COLUMNS)
    layers_log = CsvLog(run_dir / LAYERS_FILE, LAYER_COLUMNS)
    checkpoint = run_dir / CHECKPOINT_FILE

    # ---- the run: data, model, optimiser (checked); then the folder is written ----------
    run = build_run(cfg, world=world, device=device)
    model, opt, train_ds, val_ds, test_ds = run.model, run.optimizer, run.train, run.val, \
        run.test
    if main and not resume:
        run_dir.mkdir(parents=True, exist_ok=True)
        _write_config(run_dir, cfg)

    # ---- how it trains: the network, the step, the probe, the generators ---------------
    net: nn.Module = model  # DDP over the ranks, optionally compiled
    if world.distributed:
        net = wrap_ddp(model, device)
    if cfg.train.compile:
        net = torch.compile(net, dynamic=False)  # (one recompile for a smaller last batch)
    o = cfg.optim
    tracks_decay = o.name == "sgd" and not o.nesterov  # Proposition 1's c_t is defined
    autocast = autocast_factory(device, cfg.train.amp)
    loss_fn = get_loss(cfg.train.loss)  # train.loss: the step's, the evaluation's
    scaler = torch.amp.GradScaler(device.type) if cfg.train.amp == "fp16" else None
    step_fn = make_step(run, net, world=world, autocast=autocast, scaler=scaler,
                        nan_every=1 if device.type == "cpu" else 50,  # .item() syncs a GPU
                        tracks_decay=tracks_decay)
    log_layers = cfg.train.log_layers and main
    probe = (step_fn.probe(model, train_ds, cfg.train.probe_size, run.seeds["probe"])
             if log_layers else None)
    mirrored = any(layer.method.mirror_trained for _, layer in converted_layers(model))
    batch_gen = torch.Generator().manual_seed(run.seeds["batches"])  # order, augmentation
    mirror_gen = torch.Generator().manual_seed(run.seeds["mirror"])
    bs = cfg.train.batch_size
    n_train = len(train_ds)
    n_batches = n_train // bs if cfg.train.drop_last else -(-n_train // bs)
    k_log = cfg.train.log_every_steps if log_layers else 0
    channels_last = cfg.train.channels_last

    # ---- state (fresh, or from the checkpoint) --------------------------------------------
    state = LoopState()
    if resume:
        ck = world.agree(lambda: read_checkpoint(checkpoint) if checkpoint.is_file() else None)
        if ck is not None:
            state = restore_checkpoint(ck, cfg, run_dir, model=model, optimizer=opt,
                                       scaler=scaler, batch_gen=batch_gen,
                                       mirror_gen=mirror_gen)
    if main and resume and load_config(run_dir / CONFIG_FILE).to_dict() != cfg.to_dict():
        _write_config(run_dir, cfg)  # extended (train.epochs): the folder says what it runs
    if main:  # the files say exactly what the checkpoint says (drops rows of a lost epoch)
        metrics_log.rewrite(state.metrics)
        layers_log.rewrite(state.layers)
    progress = _Progress(main and not quiet, cfg.train.epochs)
    resumed_from = (state.epoch, state.step) if state.metrics else None
    if resumed_from is not None:
        progress.note(f"resumed from epoch {state.epoch} (step {state.step})")

    def wall() -> float:
        return state.wall_before + time.perf_counter() - t_start

    def probe_rows() -> tuple[list[dict[str, Any]], dict[str, float]]:
        if probe is None:
            return [], {"update_angle_deg": math.nan, "update_norm_ratio": math.nan}
        return probe.rows(model, state.epoch, state.step,
                          state.decay[0] if tracks_decay else math.nan)

    pending: list[dict[str, Any]] = []  # this epoch's mid-epoch layer rows

    def finish_row(row: dict[str, Any], t_log: float) -> None:
        """Log point at the end of the epoch (main rank): layers, evaluation, then the
        checkpoint and only then the epoch's CSV rows (a failed write leaves the files at
        the last complete epoch)."""
        if world.distributed:  # the ranks must still be one model (cheap: once an epoch)
            world.check_identical(shared_state(model), f"the models after epoch {state.epoch}")
        if not main:
            return
        rows, upd = probe_rows()
        ev = cfg.train.eval_batch_size
        val = (evaluate(model, val_ds, ev, autocast=autocast, loss=loss_fn)
               if val_ds is not None else None)
        test = evaluate(model, test_ds, ev, autocast=autocast, loss=loss_fn)
        row.update(upd)
        row.update(val_loss=None if val is None else val[0], val_acc=None if val is None
                   else val[1], test_loss=test[0], test_acc=test[1])
        row["log_s"] = time.perf_counter() - t_log
        row["wall_s"] = wall()
        new_layers = [*pending, *rows]
        last = state.metrics[-1]["epoch"] if state.metrics else None
        with writing(run_dir, f"{CHECKPOINT_FILE} of epoch {state.epoch}", last):
            save_checkpoint(checkpoint, cfg, LoopState(
                state.epoch, state.step, state.updates, state.decay, state.wall_before,
                [*state.metrics, row], [*state.layers, *new_layers]), wall_s=wall(),
                model=model, optimizer=opt, scaler=scaler, batch_gen=batch_gen,
                mirror_gen=mirror_gen)
        state.metrics.append(row)
        state.layers.extend(new_layers)
        pending.clear()
        # (a failure here leaves rows behind the checkpoint: --resume rewrites both files)
        with writing(run_dir, f"the CSV rows of epoch {state.epoch}", state.epoch):
            layers_log.append(new_layers)
            metrics_log.append([row])
        progress.end(row)

    def write_summary(status: str, message: str = "") -> RunResult:
        rows = state.metrics
        final = rows[-1] if rows else {}
        vals = [r["val_acc"] for r in rows if r.get("val_acc") is not None]
        summary = {
            "status": status, "message": message,
            "epochs_completed": rows[-1]["epoch"] if rows else 0,
            "epochs": cfg.train.epochs, "steps": state.step, "final": final,
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
        if state.epoch == 0 and not state.metrics:  # ---- epoch 0: before training ---------
            t_log = time.perf_counter()
            loss0, acc0 = math.nan, math.nan
            if main:
                loss0, acc0 = evaluate(model, train_ds, cfg.train.eval_batch_size,
                                       autocast=autocast, loss=loss_fn)
            finish_row({"epoch": 0, "step": 0, "train_loss": loss0, "train_acc": acc0,
                        "lr": o.lr_at(1), "weight_decay": o.weight_decay_at(1),
                        "epoch_s": 0.0}, t_log)

        while state.epoch < cfg.train.epochs:  # ---- training epochs ------------------------
            state.epoch += 1
            lr, wd = o.lr_at(state.epoch), o.weight_decay_at(state.epoch)
            for group in opt.param_groups:  # every group, learned feedback included
                # (lr_scale: per-layer rates, param_groups; absent from older checkpoints)
                group["lr"], group["weight_decay"] = lr * group.get("lr_scale", 1.0), wd
            t0 = time.perf_counter()
            if mirrored and state.epoch == 1:
                for _ in range(cfg.wm.initial_steps):
                    _mirror(model, cfg, mirror_gen)
            model.train()
            progress.start(state.epoch, n_batches)
            loss_sum = torch.zeros((), dtype=torch.float64, device=device)
            correct = torch.zeros((), dtype=torch.int64, device=device)
            seen = 0
            for i, (xb, yb) in enumerate(batches(train_ds, bs, shuffle=cfg.train.shuffle,
                                                 generator=batch_gen,
                                                 drop_last=cfg.train.drop_last,
                                                 augment=run.splits.augment_fn)):
                n_global = yb.shape[0]  # the global batch, drawn as one process draws it
                if world.distributed:  # this rank's contiguous shard of it
                    part = shard(n_global)
                    xb, yb = xb[part], yb[part]
                if channels_last and xb.ndim == 4:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                logits, loss, part_sum = step_fn(state, i, xb, yb, n_global, lr, wd)
                state.step += 1
                if mirrored and cfg.wm.every_steps and state.step % cfg.wm.every_steps == 0:
                    _mirror(model, cfg, mirror_gen)
                loss_sum += part_sum
                hits = loss_fn.hits(logits, yb)  # None: no notion of "correct"
                if hits is not None:
                    correct += hits
                seen += n_global
                progress.step(i, loss, correct, seen // world.world_size)
                if k_log and state.step % k_log == 0 and i < n_batches - 1:  # mid-epoch log
                    pending.extend(probe_rows()[0])  # written with the epoch's checkpoint
            if world.distributed:  # the epoch's loss and hits over every rank's shards
                loss_sum, correct = world.all_reduce_sum(loss_sum), world.all_reduce_sum(correct)
            train_loss = float(loss_sum) / seen
            if not math.isfinite(train_loss):
                raise Diverged(f"loss is {train_loss} over epoch {state.epoch}")
            epoch_s = time.perf_counter() - t0
            finish_row({"epoch": state.epoch, "step": state.step, "train_loss": train_loss,
                        "train_acc": int(correct) / seen if hits is not None else math.nan,
                        "lr": lr, "weight_decay": wd,
                        "epoch_s": epoch_s}, time.perf_counter())
    except Diverged as exc:
        last = state.metrics[-1]["epoch"] if state.metrics else None
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
