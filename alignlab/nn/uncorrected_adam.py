"""The original GAIT-prop code's Adam-like optimiser: Adam without bias correction.

.. math::

    m \\leftarrow \\beta_1 m + (1 - \\beta_1) g, \\qquad
    v \\leftarrow \\beta_2 v + (1 - \\beta_2) g^2, \\qquad
    p \\leftarrow p - \\mathrm{lr}\\, \\frac{m}{\\epsilon + \\sqrt{v}},

with ``beta = (0.9, 0.99)``, ``eps = 1e-8`` outside the root, ``m = v = 0`` at the start,
applied to weights and biases alike. ``torch.optim.Adam`` divides ``m`` and ``v`` by
``1 - beta^t``; without that, a constant gradient moves a parameter by
``lr (1 - 0.9^t) / sqrt(1 - 0.99^t)`` at step ``t``: ``lr`` at ``t = 1``, up to 2.13 ``lr``
near ``t = 14``, and Adam's ``lr`` again after a few hundred steps.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from .._validate import check_positive

__all__ = ["UncorrectedAdam"]


class UncorrectedAdam(torch.optim.Optimizer):
    """Adam without bias correction (the GAIT-prop code's optimiser).

    Parameters
    ----------
    params
        Parameters or parameter groups.
    lr
        Learning rate (1e-4 for BP and GAIT-prop, 1e-5 for TP in the original).
    betas
        ``(beta1, beta2)``, each in [0, 1).
    eps
        Added to ``sqrt(v)`` (outside the root).
    weight_decay
        Coupled L2 decay added to the gradient (0 in the original; here so that a harness
        can set ``weight_decay`` on every group as it does for SGD and Adam).
    """

    def __init__(self, params: Iterable, lr: float = 1e-4,
                 betas: tuple[float, float] = (0.9, 0.99), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        lr = float(check_positive("lr", lr, scalar=True))
        eps = float(check_positive("eps", eps, allow_zero=True, scalar=True))
        weight_decay = float(check_positive("weight_decay", weight_decay, allow_zero=True,
                                            scalar=True))
        if len(betas) != 2 or not all(0 <= float(b) < 1 for b in betas):
            raise ValueError(f"`betas` must be two numbers in [0, 1), got {betas!r}.")
        defaults = {"lr": lr, "betas": (float(betas[0]), float(betas[1])), "eps": eps,
                    "weight_decay": weight_decay}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            b1, b2 = group["betas"]
            lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if wd:
                    g = g.add(p, alpha=wd)
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                m, v = state["exp_avg"], state["exp_avg_sq"]
                state["step"] += 1
                m.mul_(b1).add_(g, alpha=1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                p.addcdiv_(m, v.sqrt().add_(eps), value=-lr)
        return loss
