"""``nn.Linear`` and ``nn.Conv2d`` whose initial weights come from a model's ``rng``.

torch's layers initialise themselves from torch's global generator as they are built
(``reset_parameters``: ``kaiming_uniform_(a=sqrt(5))`` for the weight, ``U(-1/sqrt(fan_in),
1/sqrt(fan_in))`` for the bias). The models here take ``rng`` instead and build their
layers with :func:`linear` and :func:`conv2d`:

* ``generator=None``: the torch layer as torch builds it (the global generator);
* a ``torch.Generator``: the layer is built on the ``meta`` device (nothing drawn), moved
  to the default device and given torch's own initialisation drawn from the generator.

The draws are the same, in the same order: a model built with ``rng=s`` has, bit for bit,
the parameters of the same model built after ``torch.manual_seed(s)`` with ``rng=None``
(``tests/models/test_models.py`` holds the two against each other for every model).
Under ``with torch.device("meta")`` (config validation) nothing is drawn or allocated.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["conv2d", "linear"]


def linear(in_features: int, out_features: int, generator: torch.Generator | None, *,
           bias: bool = True) -> nn.Linear:
    """``nn.Linear(in_features, out_features, bias)`` initialised from ``generator``."""
    if generator is None:
        return nn.Linear(in_features, out_features, bias=bias)
    return _default_init(nn.Linear(in_features, out_features, bias=bias, device="meta"),
                         generator)


def conv2d(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
           padding: int = 0, *, bias: bool = True,
           generator: torch.Generator | None) -> nn.Conv2d:
    """``nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=bias)``
    initialised from ``generator``."""
    if generator is None:
        return nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=bias)
    return _default_init(nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding,
                                   bias=bias, device="meta"), generator)


@torch.no_grad()
def _default_init(layer: nn.Linear | nn.Conv2d, generator: torch.Generator):
    """Move the meta-built ``layer`` to the default device and draw torch's own
    ``reset_parameters`` from ``generator`` (the same calls, so the same numbers)."""
    layer = layer.to_empty(device=torch.get_default_device())
    nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
    if layer.bias is not None:
        fan_in = layer.weight[0].numel()  # in_features (x kernel area): torch's fan_in
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
    return layer
