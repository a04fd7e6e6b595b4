"""One training step of an invertible network under a rule, and what to log about it.

:class:`Trainer` holds the model, the optimiser, the rule and the penalty;
``trainer.step(x, y)`` performs one update (in order):

1. the forward pass (every layer's activity and pre-activation);
2. the output target (one-hot on the class units, forward values elsewhere) and the rule's
   local errors, using the layers' cached LU factors (refreshed after the last update);
3. the gradient-like quantity ``-update`` plus the penalty's gradient, written into
   ``.grad`` of every weight and bias (the penalty before the optimiser's normalisation,
   as in the original), then ``optimizer.step()``;
4. for rules that invert: refactorise every layer that needs an inverse (layers 2..L; one
   LU each), so a singular or ill-conditioned weight fails in the step that made it.

It returns the quadratic loss ``1/2 <|h_L - t_L|^2>`` and the class read-out of the batch
*before* the update (what the step trained on), and, every ``log_every`` steps, per-layer
rows (:meth:`Trainer.diagnostics`): the update's angle to BP's on the same batch and
weights, the norm ratio, ``|W W^T - I|_F``, the LU's condition estimate and, for
GAIT-prop, the angle the first-order theory predicts from the residuals
(:func:`~alignlab.gaitprop.first_order_angles`).
:func:`step` is the same as a function.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .._linalg import angle_deg
from .._validate import check_int
from ..models.invertible import Activities, InvertibleNet
from .penalty import _check as _check_penalty
from .penalty import orthogonality_residual, penalty_grad
from .rules import (
    Backprop,
    LayerUpdate,
    Rule,
    check_inputs,
    check_model,
    get_rule,
    layer_updates,
)
from .theory import first_order_angles

__all__ = ["DIAGNOSTIC_COLUMNS", "StepResult", "Trainer", "compare_updates", "method_options",
           "step"]

DIAGNOSTIC_COLUMNS = ("layer", "width", "update_angle_deg", "update_norm_ratio",
                      "ortho_residual", "condition", "first_order_angle_deg")


@dataclass(frozen=True)
class StepResult:
    """What one step returns (all about the batch *before* the update)."""

    loss: Tensor  # 0-dim: 1/2 <|h_L - t_L|^2>, the quadratic loss the rules descend
    logits: Tensor  # (B, num_classes): the class read-out
    layers: list[dict[str, Any]] | None = None  # diagnostics rows on a log step, else None


def _angle_ratio(ref: Tensor, x: Tensor) -> tuple[float, float]:
    nr, nx = float(ref.norm()), float(x.norm())
    if nr == 0 or nx == 0:
        return math.nan, math.nan
    return float(angle_deg(ref, x)), nx / nr


def compare_updates(model: InvertibleNet, reference: list[LayerUpdate],
                    other: list[LayerUpdate], predicted: list[float] | None = None
                    ) -> list[dict[str, Any]]:
    """Per layer (and ``'(all)'`` over every layer's weight): the angle (degrees) between
    the weight updates ``other`` and ``reference`` (BP's), ``|other| / |reference|``,
    ``|W W^T - I|_F`` (``'(all)'``: the root sum of squares), the 1-norm condition
    estimate of the layer's last LU (NaN for a layer never factorised, e.g. layer 1;
    ``'(all)'``: the largest) and ``predicted[i]``, the theory's angle for the layer
    (:func:`~alignlab.gaitprop.first_order_angles`; NaN without it, and for ``'(all)'``)."""
    rows = []
    for i, (ref, up) in enumerate(zip(reference, other, strict=True)):
        layer = model.layers[i]
        angle, ratio = _angle_ratio(ref.weight, up.weight)
        rows.append({"layer": f"layers[{i}]", "width": layer.n, "update_angle_deg": angle,
                     "update_norm_ratio": ratio,
                     "ortho_residual": float(orthogonality_residual(layer.weight)),
                     "condition": layer.condition_estimate,
                     "first_order_angle_deg": math.nan if predicted is None else predicted[i]})
    ref_all = torch.cat([u.weight.reshape(-1) for u in reference])
    all_ = torch.cat([u.weight.reshape(-1) for u in other])
    angle, ratio = _angle_ratio(ref_all, all_)
    res = math.sqrt(sum(r["ortho_residual"] ** 2 for r in rows))
    conds = [r["condition"] for r in rows if not math.isnan(r["condition"])]
    rows.append({"layer": "(all)", "width": sum(r["width"] for r in rows),
                 "update_angle_deg": angle, "update_norm_ratio": ratio,
                 "ortho_residual": res, "condition": max(conds) if conds else math.nan,
                 "first_order_angle_deg": math.nan})
    return rows


class Trainer:
    """Train an :class:`~alignlab.models.invertible.InvertibleNet` with a rule.

    Parameters
    ----------
    model
        The invertible network (checked against the rule once, here).
    optimizer
        Any ``torch.optim.Optimizer`` over the model's parameters (the original:
        :class:`~alignlab.gaitprop.UncorrectedAdam`).
    rule
        ``'gait-prop'`` (``'gait'``), ``'itp'``, ``'tp'``, ``'bp'`` or a ``Rule``.
    gamma, **options
        The rule's options (its dataclass fields): GAIT-prop's / ITP's nudge ``gamma``
        (default 1e-3) and ``form`` (``'difference'``, default, or ``'targets'``); an error
        for a rule without them.
    penalty, penalty_strength
        Soft orthogonality penalty ``'offdiag'`` (original), ``'full'`` or ``'none'``, and
        its strength (original: GAIT-prop 0.1, TP 1000, BP 0).
    log_every
        Return diagnostics rows every ``log_every`` steps (0: never; step 0 is logged).
    """

    def __init__(self, model: InvertibleNet, optimizer: torch.optim.Optimizer,
                 rule: str | Rule = "gait-prop", *, gamma: float | None = None,
                 penalty: str = "offdiag", penalty_strength: float = 0.0, log_every: int = 0,
                 **options):
        self.rule = get_rule(rule, **({} if gamma is None else {"gamma": gamma}), **options)
        self.model = check_model(model, self.rule)
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise ValueError(f"`optimizer` must be a torch.optim.Optimizer, got "
                             f"{type(optimizer).__name__}.")
        self.optimizer = optimizer
        self.penalty = penalty
        self.penalty_strength = _check_penalty(penalty, penalty_strength)
        self.log_every = check_int("log_every", log_every, minimum=0)
        self.steps = 0
        self._bp = Backprop()
        if self.rule.needs_inverse:
            model.refresh_inverses()  # fails now, not mid-run, on a bad initial weight

    def _errors(self, acts: Activities, target: Tensor) -> list[Tensor]:
        return self.rule.errors(self.model, acts, target)

    def _predicted(self, x: Tensor, y: Tensor) -> list[float] | None:
        """The first-order theory's angle to BP per layer, for a rule it describes."""
        if not self.rule.first_order_theory:
            return None
        return first_order_angles(self.model, x, y)

    def step(self, x: Tensor, y: Tensor, *, log: bool | None = None) -> StepResult:
        """One update on the batch ``(x, y)`` (``y``: class indices or targets, as in
        :func:`~alignlab.gaitprop.updates`, of the model's dtype). ``log`` overrides
        ``log_every``."""
        model = self.model
        check_inputs(model, x, y)
        acts = model.activities(x)
        target = model.output_target(acts.h[-1], y)
        ups = layer_updates(model, acts, self._errors(acts, target))
        if log is None:
            log = bool(self.log_every) and self.steps % self.log_every == 0
        rows = None
        if log:
            bp = ups if isinstance(self.rule, Backprop) else layer_updates(
                model, acts, self._bp.errors(model, acts, target))
            rows = compare_updates(model, bp, ups, self._predicted(x, y))
        for layer, up in zip(model.layers, ups, strict=True):
            grad = up.weight.neg()
            extra = penalty_grad(layer.weight, self.penalty, self.penalty_strength)
            if extra is not None:
                grad += extra
            layer.weight.grad = grad
            layer.bias.grad = up.bias.neg()
        self.optimizer.step()
        if self.rule.needs_inverse:
            model.refresh_inverses()
        self.steps += 1
        out = acts.h[-1]
        loss = 0.5 * (out - target).square().sum(1).mean()
        return StepResult(loss, out[:, :model.num_classes], rows)

    def diagnostics(self, x: Tensor, y: Tensor) -> list[dict[str, Any]]:
        """Rows of :data:`DIAGNOSTIC_COLUMNS` for the batch ``(x, y)`` at the current
        weights (nothing changes): per layer and ``'(all)'``."""
        model = self.model
        check_inputs(model, x, y)
        acts = model.activities(x)
        target = model.output_target(acts.h[-1], y)
        ups = layer_updates(model, acts, self._errors(acts, target))
        bp = layer_updates(model, acts, self._bp.errors(model, acts, target))
        return compare_updates(model, bp, ups, self._predicted(x, y))


def method_options(rule: str, **options) -> dict[str, Any]:
    """A training config's ``[method]`` options for ``rule``, checked and completed: the
    rule's fields (``gamma`` and ``form`` for ``'gait-prop'`` / ``'itp'``) plus ``penalty`` (default
    ``'offdiag'``) and ``penalty_strength`` (default 0), i.e. the keyword arguments of
    :class:`Trainer` after ``rule``. An unknown option or a bad value raises ``ValueError``
    naming it."""
    r = get_rule(rule)  # the name first (lists the rules)
    valid = list(r.options()) + ["penalty", "penalty_strength"]
    for key in options:
        if key not in valid:
            raise ValueError(f"`{key}` is not an option of rule {rule!r}; valid options: "
                             f"{', '.join(valid)}.")
    penalty = options.pop("penalty", "offdiag")
    strength = _check_penalty(penalty, options.pop("penalty_strength", 0.0))
    return {**get_rule(rule, **options).options(), "penalty": penalty,
            "penalty_strength": strength}


def step(model: InvertibleNet, optimizer: torch.optim.Optimizer, x: Tensor, y: Tensor,
         rule: str | Rule = "gait-prop", *, gamma: float | None = None,
         penalty: str = "offdiag", penalty_strength: float = 0.0,
         log: bool = False, **options) -> StepResult:
    """One update of ``model`` by ``rule`` on ``(x, y)``: ``Trainer(...).step(x, y)``
    (see :class:`Trainer`; ``options``: the rule's, e.g. ``form``). For a loop, build one
    :class:`Trainer` and call its ``step``."""
    trainer = Trainer(model, optimizer, rule, gamma=gamma, penalty=penalty,
                      penalty_strength=penalty_strength, **options)
    return trainer.step(x, y, log=log)
