"""Architectures, by name: the registry a training config's ``model.name`` looks up.

* ``mlp``: Flatten + Linear/activation stack, the paper's 784-512-512-10 (``sizes``,
  ``activation``);
* ``resnet20``: CIFAR ResNet-20, option-A shortcuts, BatchNorm (``num_classes``,
  ``in_channels``);
* ``resnet18``, ``resnet34``: torchvision-style ResNets (``num_classes``, ``in_channels``);
* ``invertible``, ``invertible-tower``: square (or shrinking) invertible leaky-ReLU nets
  for GAIT-prop and target propagation (``alignlab.gaitprop``; float64 by default).

Models are plain ``torch.nn`` modules; ``alignlab.convert`` turns them into a method's
layers. ``build_model(name, rng=..., **options)`` validates the options (an unknown one
raises ``ValueError`` listing the valid ones) and draws the initial weights from ``rng``:
``None`` (torch's global generator), an int seed or a ``torch.Generator``; nothing here
seeds torch's global generator. Every model takes ``rng`` (keyword-only); ``rng=s`` gives
the parameters that ``torch.manual_seed(s)`` followed by ``rng=None`` gives, bit for bit.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
from torch import nn

from .._registry import Registry
from .invertible import InvertibleNet, InvertibleSquare, InvertibleTower
from .mlp import MLP
from .resnet import BasicBlock, CifarResNet, ResNet, resnet18, resnet20, resnet34

__all__ = [
    "MLP", "MODELS", "BasicBlock", "CifarResNet", "InvertibleNet", "InvertibleSquare",
    "InvertibleTower", "ResNet", "build_model", "model_options", "resnet18", "resnet20",
    "resnet34",
]

MODELS: Registry[Callable[..., nn.Module]] = Registry(
    "model",
    {"mlp": MLP, "resnet20": resnet20, "resnet18": resnet18, "resnet34": resnet34,
     "invertible": InvertibleSquare, "invertible-tower": InvertibleTower},
)


def model_options(name: str) -> dict[str, object]:
    """``{option: default}`` of the model ``name`` (what a config's ``[model]`` may set:
    every constructor argument but ``rng``, which the harness derives from ``train.seed``)."""
    params = inspect.signature(MODELS[name]).parameters
    return {k: p.default for k, p in params.items() if k not in ("self", "rng")}


def build_model(name: str, rng: int | torch.Generator | None = None, **options) -> nn.Module:
    """The model ``name`` (see ``MODELS``) built with ``options``, its initial weights drawn
    from ``rng`` (None: torch's global generator; an int seed; a ``torch.Generator``).
    Unknown options raise."""
    valid = model_options(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(f"`{unknown[0]}` is not an option of model {name!r}; valid options: "
                         f"{', '.join(sorted(valid))}.")
    return MODELS[name](**options, rng=rng)
