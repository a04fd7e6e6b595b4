"""Architectures, by name: the registry a training config's ``model.name`` looks up.

* ``mlp``: Flatten + Linear/activation stack, the paper's 784-512-512-10 (``sizes``,
  ``activation``);
* ``resnet20``: CIFAR ResNet-20, option-A shortcuts, BatchNorm (``num_classes``,
  ``in_channels``);
* ``resnet18``, ``resnet34``: torchvision-style ResNets (``num_classes``, ``in_channels``);
* ``invertible``, ``invertible-tower``: square (or shrinking) invertible leaky-ReLU nets
  for GAIT-prop and target propagation (``alignlab.gaitprop``; float64 by default).

Models are plain ``torch.nn`` modules; ``alignlab.convert`` turns them into a method's
layers. ``build_model(name, **options)`` validates the options (an unknown one raises
``ValueError`` listing the valid ones).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

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
    """``{option: default}`` of the model ``name`` (what a config's ``[model]`` may set)."""
    params = inspect.signature(MODELS[name]).parameters
    return {k: p.default for k, p in params.items() if k != "self"}


def build_model(name: str, **options) -> nn.Module:
    """The model ``name`` (see ``MODELS``) built with ``options``; unknown options raise."""
    valid = model_options(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(f"`{unknown[0]}` is not an option of model {name!r}; valid options: "
                         f"{', '.join(sorted(valid))}.")
    return MODELS[name](**options)
