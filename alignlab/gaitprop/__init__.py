"""GAIT-prop (Ahmad, van Gerven & Ambrogioni, NeurIPS 2020) and its baselines on invertible
networks: target propagation made equal to BP when the weights are orthogonal.

* :func:`updates` ``(model, x, target, rule="gait", gamma=1e-3)``: every layer's update
  under a rule at the current weights (``'gait'`` / ``'gait-prop'``, ``'itp'``, ``'tp'``,
  ``'bp'``), so rules are compared on identical weights; GAIT-prop and ITP propagate the
  scaled difference ``c_l (t_l - h_l)`` (``form='difference'``, exact at any gamma) unless
  ``form='targets'`` (the literal recipe, :data:`FORMS`);
* :class:`Trainer` / :func:`step`: one training update (rule + soft orthogonality penalty +
  optimiser + inverse refresh), with per-layer diagnostics (angle to BP, ``|W W^T - I|_F``);
* :class:`UncorrectedAdam`: the original code's Adam without bias correction;
* :func:`penalty_grad`, :func:`penalty_value`, :func:`orthogonality_residual`: the
  ``'offdiag'`` (original) and ``'full'`` penalties;
* :func:`limit_errors`, :func:`kink_crossings`, :func:`first_order_angles`: the exact
  nudge limit (and when it holds), the first-order mismatch (``W^{-1} - W^T =
  W^T[(W W^T)^{-1} - I]``); its rough isotropic estimate is the closed form
  :func:`alignlab.theory.isotropic_angle`.

* :func:`method_options`: a training config's ``[method]`` options, checked and completed.

The networks are :class:`alignlab.models.invertible.InvertibleNet` (and its subclasses
:class:`~alignlab.models.invertible.InvertibleSquare`,
:class:`~alignlab.models.invertible.InvertibleTower`). See ``docs/gaitprop.md``.
"""

from __future__ import annotations

from ..models.invertible import InvertibleNet, InvertibleSquare, InvertibleTower
from ..nn.uncorrected_adam import UncorrectedAdam
from .penalty import PENALTIES, orthogonality_residual, penalty_grad, penalty_value
from .rules import (
    FORMS,
    RULES,
    Backprop,
    GaitProp,
    IncrementalTP,
    LayerUpdate,
    Rule,
    TargetProp,
    check_inputs,
    check_model,
    get_rule,
    updates,
)
from .theory import first_order_angles, kink_crossings, limit_errors
from .trainer import (
    DIAGNOSTIC_COLUMNS,
    StepResult,
    Trainer,
    compare_updates,
    method_options,
    step,
)

__all__ = [
    "DIAGNOSTIC_COLUMNS", "FORMS", "PENALTIES", "RULES", "Backprop", "GaitProp", "IncrementalTP",
    "InvertibleNet", "InvertibleSquare", "InvertibleTower", "LayerUpdate", "Rule",
    "StepResult", "TargetProp", "Trainer", "UncorrectedAdam", "check_inputs", "check_model",
    "compare_updates",
    "first_order_angles", "get_rule", "kink_crossings", "limit_errors",
    "method_options", "orthogonality_residual", "penalty_grad", "penalty_value", "step",
    "updates",
]
