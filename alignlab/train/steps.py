"""One training step, two ways: what differs between kinds of training, passed to the loop.

The loop (:mod:`alignlab.train.loop`) draws the batch, counts, logs and checkpoints; a
step object does the rest and returns the batch's logits, its loss (for the progress bar)
and the global batch's summed loss (float64, for the epoch's mean):

* :class:`AutogradStep`: forward pass (under autocast with ``train.amp``), the loss
  (``train.loss``, :mod:`alignlab.train.losses`; scaled in a distributed run so that
  DDP's average of the ranks' gradients is the gradient of the global batch's mean
  loss), the NaN/inf check, backward pass and the
  optimiser's step (through the GradScaler with fp16, which skips steps with inf/nan
  gradients), and Proposition 1's decay pair ``(c, u)`` for plain SGD;
* :class:`TargetStep`: one :meth:`alignlab.gaitprop.Trainer.step` (targets, local
  updates, the optimiser's step, inverses) for a model that learns by layer-local targets.

Each also builds the probe that logs its model's layers (:mod:`alignlab.train.probe`).
:func:`make_step` chooses by the run (:attr:`~alignlab.train.setup.Run.learns_by_targets`).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..theory.decay import sgd_decay_step
from .checkpoint import LoopState
from .losses import Loss, get_loss
from .probe import Probe, TargetProbe
from .world import World

__all__ = ["AutogradStep", "Diverged", "TargetStep", "make_step"]


class Diverged(RuntimeError):
    """The training loss became NaN or infinite (the run stopped; exit status 4)."""


def _check_finite(value: float, state: LoopState) -> None:
    if not math.isfinite(value):
        raise Diverged(f"loss is {value} at epoch {state.epoch}, step {state.step + 1}")


class AutogradStep:
    """Forward, backward and the optimiser's step of a converted model (see module doc).

    ``net``: the model as it trains (DDP-wrapped, compiled); ``nan_every``: check the loss
    every that many steps (a GPU syncs on ``.item()``); ``tracks_decay``: update
    ``state.decay`` (plain SGD, where Proposition 1's ``c_t`` is defined).
    """

    def __init__(self, net: nn.Module, optimizer: torch.optim.Optimizer, *, world: World,
                 autocast, scaler, nan_every: int, momentum: float, tracks_decay: bool,
                 loss: Loss):
        self.net, self.optimizer, self.world, self.loss = net, optimizer, world, loss
        self.autocast, self.scaler, self.nan_every = autocast, scaler, nan_every
        self.momentum, self.tracks_decay = momentum, tracks_decay

    def probe(self, model: nn.Module, train_ds, size: int, seed: int) -> Probe:
        return Probe(model, train_ds, size, seed, self.loss)

    def __call__(self, state: LoopState, i: int, xb: Tensor, yb: Tensor, n_global: int,
                 lr: float, wd: float) -> tuple[Tensor, Tensor, Tensor]:
        world = self.world
        with self.autocast():
            logits = self.net(xb)  # (b, K), b = this rank's share of the batch
            if world.distributed:  # DDP averages the ranks' gradients: sum W / B
                ce_sum = self.loss(logits, yb, reduction="sum")
                loss = ce_sum * (world.world_size / n_global)
            else:
                loss = self.loss(logits, yb)
        part_sum = (ce_sum.detach().double() if world.distributed
                    else loss.detach().double() * n_global)
        if i % self.nan_every == 0:
            if world.distributed:  # every rank must stop at the same step
                value = float(world.all_reduce_sum(part_sum.clone())) / n_global
            else:
                value = float(loss.detach())
            _check_finite(value, state)
        opt, scaler = self.optimizer, self.scaler
        opt.zero_grad(set_to_none=True)
        has_buffer = state.updates > 0  # SGD's momentum buffers exist after 1 step
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
            state.updates += 1
            if self.tracks_decay:
                state.decay = sgd_decay_step(*state.decay, lr, wd, self.momentum, has_buffer)
        return logits, loss, part_sum


class TargetStep:
    """One update of a model that learns by layer-local targets
    (:class:`alignlab.gaitprop.Trainer`: the rule replaces forward, backward and
    ``opt.step()``)."""

    def __init__(self, trainer):
        self.trainer = trainer

    def probe(self, model: nn.Module, train_ds, size: int, seed: int) -> TargetProbe:
        return TargetProbe(self.trainer, train_ds, size, seed)

    def __call__(self, state: LoopState, i: int, xb: Tensor, yb: Tensor, n_global: int,
                 lr: float, wd: float) -> tuple[Tensor, Tensor, Tensor]:
        try:
            res = self.trainer.step(xb, yb, log=False)
        except ValueError as exc:  # a weight became singular / ill-conditioned
            raise Diverged(f"{str(exc).rstrip('.')} at epoch {state.epoch}, step "
                           f"{state.step + 1}") from None
        _check_finite(float(res.loss), state)  # the quadratic loss the rule descends
        logits = res.logits  # the read-out before the update, as for autograd
        loss = F.cross_entropy(logits, yb)  # the column every run logs
        state.updates += 1
        return logits, loss, loss.detach().double() * n_global


def make_step(run: Any, net: nn.Module, *, world: World, autocast, scaler, nan_every: int,
              tracks_decay: bool) -> AutogradStep | TargetStep:
    """The step of ``run`` (:class:`~alignlab.train.setup.Run`): a :class:`TargetStep`
    for a model that learns by targets, else an :class:`AutogradStep` on ``net``."""
    cfg = run.config
    if run.learns_by_targets:
        from ..gaitprop import Trainer

        return TargetStep(Trainer(run.model, run.optimizer, cfg.method.name,
                                  **dict(cfg.method.options)))
    return AutogradStep(net, run.optimizer, world=world, autocast=autocast, scaler=scaler,
                        nan_every=nan_every, momentum=cfg.optim.momentum,
                        tracks_decay=tracks_decay, loss=get_loss(cfg.train.loss))
