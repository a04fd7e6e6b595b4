"""GAIT-prop against BP: the exact nudge limit and the first-order mismatch.

**The limit.** For leaky-ReLU (piecewise linear) and a nudge that moves no unit across the
kink, ``f^{-1}(h_l + gamma D_l^2 (t_l - h_l)) = a_l - gamma D_l (h_l - t_l)``, so GAIT-prop's
errors obey, for *any* ``gamma``,

.. math::

    e_{l-1} = D_{l-1}\\, W_l^{-1} e_l, \\qquad e_L = D_L (h_L - t_L) = \\delta_L,

BP's recursion ``delta_{l-1} = D_{l-1} W_l^T delta_l`` with ``W_l^{-1}`` in place of
``W_l^T`` (:func:`limit_errors`). Orthogonal weights make the two equal (exact).

**The mismatch** is first order in the orthogonality residual ``R_l = W_l W_l^T - I``:

.. math::

    W^{-1} - W^T = W^T\\big[(W W^T)^{-1} - I\\big] = -W^T R + O(R^2),

so with ``e_l = delta_l + epsilon_l``, to first order in the ``R``'s,

.. math::

    \\epsilon_{l-1} = D_{l-1} W_l^T (\\epsilon_l - R_l \\delta_l), \\qquad \\epsilon_L = 0,

and layer ``l``'s update ``U_l + Delta U_l`` (``Delta U_l = -<epsilon_l h_{l-1}^T>``) leaves
BP's ``U_l`` by the angle ``|P_perp Delta U_l| / |U_l|`` radians (``P_perp``: the
projection orthogonal to ``U_l``). :func:`first_order_angles` evaluates this prediction;
it is linear in the residuals: a line of slope 1 on log-log axes, which GAIT-prop follows
as ``|R| -> 0`` (``tests/gaitprop``, ``figures/gaitprop_mismatch.png``). The top layer is
never off (``epsilon_L = 0``): every rule gives it BP's update.

For random perturbations a rougher, isotropic estimate follows: ``|R delta| ~ |R|_F
|delta| / sqrt(n)`` per layer above, independent across layers, so layer ``l`` is off by
about ``|R|_F sqrt((L - l) / n)`` radians (:func:`alignlab.theory.isotropic_angle`, a pure
closed form).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..models.invertible import InvertibleNet
from .rules import (
    Backprop,
    Rule,
    _Incremental,
    check_model,
    get_rule,
    layer_updates,
    pad_zeros,
)

__all__ = ["first_order_angles", "kink_crossings", "limit_errors"]


def limit_errors(model: InvertibleNet, x: Tensor, target: Tensor) -> list[Tensor]:
    """GAIT-prop's errors in the no-kink limit, ``e_{l-1} = D_{l-1} W_l^{-1} e_l`` (exact
    for every ``gamma`` when no unit crosses its kink; zero-padded in the tower). The
    rule's difference form computes the same where no unit crosses, and the exact value
    where some do (which this limit is not)."""
    acts = model.activities(x)
    t = model.output_target(acts.h[-1], target)
    f = model.activation
    e = f.derivative(acts.a[-1]) * (acts.h[-1] - t)
    errs = [e]
    for i in reversed(range(1, model.depth)):
        back = model.layers[i].solve(e)  # rows W^{-1} e
        e = f.derivative(acts.a[i - 1]) * pad_zeros(back, acts.h[i].shape[1])
        errs.append(e)
    return errs[::-1]


def kink_crossings(model: InvertibleNet, x: Tensor, target: Tensor, rule: str | Rule = "gait",
                   gamma: float | None = None) -> list[int]:
    """How many units' nudged activity ``z_l`` lies across the kink from ``h_l``, per layer
    ``[layer 1, ..., layer L]`` (layer 1 is never inverted: 0). Where all are 0, GAIT-prop
    is exactly :func:`limit_errors` (up to rounding); each crossing unit mixes the two slopes
    of ``f^{-1}`` into its target. ``rule``: ``'gait'`` or ``'itp'`` (a name with
    ``gamma``, or a rule instance: its ``form`` decides how the sides are computed)."""
    rule = get_rule(rule, **({} if gamma is None else {"gamma": gamma}))
    if not isinstance(rule, _Incremental):
        raise ValueError(f"`rule` must be 'gait' or 'itp' (a nudging rule), got {rule.name!r}.")
    check_model(model, rule)
    acts = model.activities(x)
    crossed: list[Tensor] = []
    rule.errors(model, acts, model.output_target(acts.h[-1], target), crossed)
    counts = [int(mask.sum()) for mask in crossed]  # crossed[k] belongs to layer L - k
    return [0] + counts[::-1]


def first_order_angles(model: InvertibleNet, x: Tensor, target: Tensor) -> list[float]:
    """Predicted angle (degrees) between GAIT-prop's and BP's weight update of each layer,
    to first order in the residuals ``R_l = W_l W_l^T - I`` (module docstring): ``[layer 1,
    ..., layer L]``; the last is 0."""
    acts = model.activities(x)
    t = model.output_target(acts.h[-1], target)
    f = model.activation
    deltas = Backprop().errors(model, acts, t)
    eps = [torch.zeros_like(d) for d in deltas]
    for i in reversed(range(1, model.depth)):
        w = model.layers[i].weight.detach()
        resid = w @ w.T
        resid.diagonal().sub_(1)
        back = (eps[i] - deltas[i] @ resid) @ w  # rows W^T (eps - R delta); R symmetric
        eps[i - 1] = f.derivative(acts.a[i - 1]) * pad_zeros(back, acts.h[i].shape[1])
    ups = layer_updates(model, acts, deltas)
    shifts = layer_updates(model, acts, eps)
    out = []
    for u, du in zip(ups, shifts, strict=True):
        u, du = u.weight.double(), du.weight.double()
        perp = du - (du * u).sum() / (u * u).sum() * u
        out.append(math.degrees(float(perp.norm() / u.norm())))
    return out
