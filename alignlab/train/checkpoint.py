"""``checkpoint.pt``: everything a run needs to continue exactly, written and read here.

One writer (:func:`save_checkpoint`) and one reader (:func:`read_checkpoint`, then
:func:`restore_checkpoint`), side by side. A checkpoint (format :data:`FORMAT`) holds, at
the end of an epoch: the model and optimiser state (momentum buffers included; the
converted layers' scalar state, such as brSF's draw count, rides in the model's
``state_dict``), the AMP scaler, the batch-order and weight-mirror generators, the loop's
counters (:class:`LoopState`: epoch, optimiser steps, applied
updates, Proposition 1's decay pair ``(c, u)``, wall time) and every ``metrics.csv`` /
``layers.csv`` row so far (a resume rewrites both files from them). It is replaced
atomically (:func:`~alignlab.train.rundir.torch_save_atomic`).

A checkpoint continues only the config it was written for, apart from
:data:`~alignlab.train.rundir.EXTENDABLE_KEYS` (``train.epochs``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..nn import converted_layers
from .config import Config, resolve_config
from .rundir import torch_save_atomic, trajectory_settings

__all__ = ["FORMAT", "LoopState", "read_checkpoint", "restore_checkpoint", "save_checkpoint"]

#: the layout of the checkpoint's dict (bump when it changes). 2: torch's global
#: generators are no longer saved (nothing in a run draws from them) and brSF layers carry
#: their own stream. A format-1 checkpoint still resumes exactly, unless the model has
#: feedback redrawn at every step (brSF drew it from the global generator): refused.
FORMAT = 2
READABLE = (1, 2)


@dataclass
class LoopState:
    """The loop's counters and rows: what a checkpoint carries besides tensors."""

    epoch: int = 0  # epochs completed
    step: int = 0  # optimiser steps taken (minibatches)
    updates: int = 0  # steps that changed the weights (fp16 skips steps with inf gradients)
    decay: tuple[float, float] = (1.0, 0.0)  # Proposition 1's (c_t, u_t) for SGD
    wall_before: float = 0.0  # wall seconds of the run before this process
    metrics: list[dict[str, Any]] = field(default_factory=list)  # metrics.csv rows
    layers: list[dict[str, Any]] = field(default_factory=list)  # layers.csv rows


def config_key(config: Config) -> str:
    """The config as the checkpoint records it (canonical JSON)."""
    return json.dumps(config.to_dict(), sort_keys=True, default=list)


def _trajectory_key(key: str | None) -> str | None:
    """A checkpoint's config key without :data:`~.rundir.EXTENDABLE_KEYS` (what a resumed
    run may change without changing the steps already taken), resolved by this version:
    a key added since the checkpoint was written takes its default (which keeps the old
    behaviour), so adding a setting does not orphan every run made before it. None when
    this version cannot resolve it (a key it no longer knows)."""
    if key is None:
        return None
    try:
        tables = resolve_config(json.loads(key)).to_dict()
    except (ValueError, TypeError):
        return None
    return json.dumps(trajectory_settings(tables), sort_keys=True, default=list)


def save_checkpoint(path: Path, config: Config, state: LoopState, *, wall_s: float, model,
                    optimizer, scaler, batch_gen: torch.Generator,
                    mirror_gen: torch.Generator) -> None:
    """Write the checkpoint of ``state`` (its rows included) atomically to ``path``."""
    torch_save_atomic({
        "format": FORMAT, "config": config_key(config), "epoch": state.epoch,
        "step": state.step, "updates": state.updates, "decay": state.decay, "wall_s": wall_s,
        "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "scaler": None if scaler is None else scaler.state_dict(),
        "batch_gen": batch_gen.get_state(), "mirror_gen": mirror_gen.get_state(),
        "metrics": state.metrics, "layers": state.layers,
    }, path)


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint at ``path`` as a dict; a file that cannot be read as one (empty,
    truncated, garbage, another object) is a one-line ``ValueError`` naming it."""
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


def restore_checkpoint(ck: dict[str, Any], config: Config, run_dir: Path, *, model,
                       optimizer, scaler, batch_gen: torch.Generator,
                       mirror_gen: torch.Generator) -> LoopState:
    """Load ``ck`` (from :func:`read_checkpoint`) into the run's objects and
    generators; returns the loop's state. Raises ``ValueError`` if ``ck`` belongs to
    another config (apart from the extendable keys) or format, or has trained more
    epochs than ``config`` asks for."""
    if (ck.get("format") not in READABLE
            or _trajectory_key(ck.get("config")) != _trajectory_key(config_key(config))):
        raise ValueError(f"`--resume` {str(run_dir)!r}: its checkpoint was written for "
                         "another config or format; start a new run instead.")
    if ck["format"] == 1 and any(layer.method.feedback_redrawn_each_step
                                 for _, layer in converted_layers(model)):
        raise ValueError(f"`--resume` {str(run_dir)!r}: its checkpoint (format 1) was written "
                         "when feedback redrawn at every step drew from torch's global "
                         "generator, which this version does not restore; start a new run "
                         "instead.")
    if ck["epoch"] > config.train.epochs:
        raise ValueError(f"`train.epochs` must be at least the {ck['epoch']} epochs "
                         f"{str(run_dir)!r} has trained, got {config.train.epochs}.")
    model.load_state_dict(ck["model"])
    optimizer.load_state_dict(ck["optimizer"])
    batch_gen.set_state(ck["batch_gen"])
    mirror_gen.set_state(ck["mirror_gen"])
    if scaler is not None and ck.get("scaler") is not None:
        scaler.load_state_dict(ck["scaler"])
    return LoopState(epoch=ck["epoch"], step=ck["step"], updates=ck.get("updates", ck["step"]),
                     decay=tuple(ck["decay"]), wall_before=ck["wall_s"],
                     metrics=ck["metrics"], layers=ck["layers"])
