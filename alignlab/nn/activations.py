"""Activations chosen by name (a model's ``activation`` option): :data:`ACTIVATIONS`.

Each entry is a ``torch.nn.Module`` class built without arguments. Besides torch's own
(``relu``, ``tanh``, ``sigmoid``, ``leaky_relu``, ``gelu``) there is :class:`Erf`, the
teacher-student literature's ``g(z) = erf(z / sqrt(2))`` (``docs/teacher_student.md``).
Activations keep ordinary autograd under ``alignlab.convert`` (only ``nn.Linear`` and
``nn.Conv2d`` are converted), so their derivative is the one autograd computes.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .._registry import Registry

__all__ = ["ACTIVATIONS", "Erf"]

_INV_SQRT2 = 1.0 / math.sqrt(2.0)


class Erf(nn.Module):
    """``g(z) = erf(z / sqrt(2))``: the Gaussian CDF rescaled to (-1, 1).

    .. math::

        g(z) = \\operatorname{erf}(z / \\sqrt 2) = 2 \\Phi(z) - 1, \\qquad
        g'(z) = \\sqrt{2 / \\pi}\\, e^{-z^2 / 2}.

    The activation of Saad & Solla (1995) and Goldt et al. (2019), for which the
    teacher-student averages are closed forms. The forward is ``torch.erf(z * (1 /
    sqrt(2)))`` (one multiplication, so a float64 reference must use the same rounding to
    agree bit for bit); the backward is autograd's derivative of it.
    """

    def forward(self, z: Tensor) -> Tensor:
        return torch.erf(z * _INV_SQRT2)


#: activation name -> module class (``MLP(..., activation=name)``)
ACTIVATIONS: Registry[type[nn.Module]] = Registry(
    "activation",
    {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "leaky_relu": nn.LeakyReLU,
     "gelu": nn.GELU, "erf": Erf},
)
