"""Multi-layer perceptron (the paper's MNIST network is ``MLP((784, 512, 512, 10))``)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .._rng import torch_generator
from .._validate import check_choice, check_int
from ..nn.activations import ACTIVATIONS
from ._init import linear

__all__ = ["MLP"]


class MLP(nn.Sequential):
    """Flatten, then ``Linear -> activation`` per hidden layer, then a linear read-out.

    ``sizes`` = (n_input, hidden..., n_output), e.g. (784, 512, 512, 10). ``activation``:
    a name of :data:`alignlab.nn.activations.ACTIVATIONS` ('relu', 'tanh', 'sigmoid',
    'leaky_relu', 'gelu', 'erf'). ``bias``: whether the linear layers have biases (False:
    the bias-free networks of the teacher-student theory). Weights are
    Xavier-uniform and biases zero (pfa.md's initialisation), drawn from ``rng``: ``None``
    (torch's global generator), an int seed or a ``torch.Generator``. (Each layer first
    draws torch's own initialisation, then the Xavier weights: the draws of
    ``torch.manual_seed(s); MLP(...)``, so ``MLP(..., rng=s)`` gives the same numbers.)
    """

    def __init__(self, sizes: Sequence[int] = (784, 512, 512, 10), activation: str = "relu",
                 bias: bool = True, *, rng: int | torch.Generator | None = None):
        sizes = [check_int("sizes", s) for s in sizes]
        if len(sizes) < 2:
            raise ValueError(f"`sizes` must have at least 2 entries, got {sizes!r}.")
        check_choice("activation", activation, ACTIVATIONS)
        if not isinstance(bias, bool):
            raise ValueError(f"`bias` must be true or false, got {bias!r}.")
        gen = torch_generator(rng)
        layers: list[nn.Module] = [nn.Flatten()]
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            layers.append(linear(a, b, gen, bias=bias))
            if i < len(sizes) - 2:
                layers.append(ACTIVATIONS[activation]())
        super().__init__(*layers)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight, generator=gen)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
