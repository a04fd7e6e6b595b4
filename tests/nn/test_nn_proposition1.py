"""Proposition 1 in the real layers: ``R^T - B W`` after k optimiser steps is ``c(k) D_0``.

``c`` comes from ``alignlab.theory`` (closed form, torch.optim.SGD semantics). The
networks train on fresh random data every step, so the data term must cancel exactly
(``grad R^T = B grad_W``) for the identity to hold. float64; tolerance 1e-9 relative to
``|D_0|`` (rounding of ~50 optimiser steps, each O(1e-16)).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import alignlab
from alignlab.nn import converted_layers, param_groups
from alignlab.theory import decay_factor, decay_factor_schedule

DT = torch.float64


def _mlp():
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 7), nn.Tanh(), nn.Linear(7, 3))


def _cnn():
    return nn.Sequential(nn.Conv2d(2, 4, 3, stride=2, padding=1), nn.ReLU(),
                         nn.Conv2d(4, 6, 3, padding=2, dilation=2, groups=2), nn.ReLU(),
                         nn.Flatten(), nn.Linear(6 * 3 * 3, 3))


def _D(layer):
    """R^T - B W per group (W's layout with n_mid rows); KP: feedback - W."""
    w = layer.weight.detach()
    if layer.method.name == "kp":
        return layer.feedback.detach() - w
    g = layer.groups if w.dim() == 4 else 1
    b = layer.pfa_B
    bw = torch.bmm(b.reshape(g, -1, b.shape[1]), w.reshape(g, w.shape[0] // g, -1))
    return layer.pfa_R.detach() - bw.reshape(layer.pfa_R.shape)


def _train(model, x_shape, steps, lr, wd, momentum, schedule=None):
    opt = torch.optim.SGD(param_groups(model, lr=lr, weight_decay=wd), momentum=momentum)
    gen = torch.Generator().manual_seed(7)
    for t in range(steps):
        if schedule is not None:
            for group in opt.param_groups:
                group["lr"], group["weight_decay"] = schedule[0][t], schedule[1][t]
        x = torch.randn(x_shape, generator=gen, dtype=DT)
        y = torch.randint(0, 3, (x_shape[0],), generator=gen)
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()


CASES = {
    "pfa-mlp": (_mlp, (16, 6), "pfa", {"expansion_ratio": 3.0}),
    "pfa-cnn": (_cnn, (8, 2, 6, 6), "pfa", {"expansion_ratio": 2.0}),
    "pfa-literal-cnn": (_cnn, (8, 2, 6, 6), "pfa", {"expansion_ratio": 2.0, "impl": "literal"}),
    "pfa-o-mlp": (_mlp, (16, 6), "pfa-o", {}),
    "pfa-gaussian-mlp": (_mlp, (16, 6), "pfa", {"b_init": "gaussian"}),
    "kp-mlp": (_mlp, (16, 6), "kp", {}),
}


@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("case", CASES)
def test_feedback_converges_as_the_closed_form(case, momentum):
    factory, x_shape, method, options = CASES[case]
    torch.manual_seed(0)
    model = alignlab.convert(factory().to(DT), method, rng=1, **options)
    d0 = [_D(layer) for _, layer in converted_layers(model)]
    steps, lr, wd = 40, 0.05, 0.05
    _train(model, x_shape, steps, lr, wd, momentum)
    c = float(decay_factor(steps, lr, wd, momentum))
    assert c < 0.95  # the decay is visible
    for (_, layer), d in zip(converted_layers(model), d0, strict=True):
        torch.testing.assert_close(_D(layer), c * d, rtol=0, atol=1e-9 * float(d.abs().max()))


def test_schedule_matches_closed_form():
    torch.manual_seed(0)
    model = alignlab.convert(_mlp().to(DT), "pfa", rng=1, expansion_ratio=2.0)
    d0 = [_D(layer) for _, layer in converted_layers(model)]
    lr = np.r_[np.full(10, 0.1), np.full(15, 0.02)]
    wd = np.r_[np.full(10, 0.2), np.full(15, 0.01)]  # a strong burst, then a normal decay
    _train(model, (16, 6), len(lr), 0.1, 0.2, 0.9, schedule=(lr, wd))
    c = float(decay_factor_schedule(lr, wd, 0.9)[-1])
    for (_, layer), d in zip(converted_layers(model), d0, strict=True):
        torch.testing.assert_close(_D(layer), c * d, rtol=0, atol=1e-9 * float(d.abs().max()))
