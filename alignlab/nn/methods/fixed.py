"""Methods whose feedback kernel does not learn: BP, FA and the sign-concordant family.

Each sends ``delta`` down through one kernel ``F`` in W's layout (``MatrixFeedback``):

============  ======================================  =====================================
method        kernel ``F``                            state on the layer
============  ======================================  =====================================
``bp``        ``W``                                   none
``fa``        a fixed random matrix                   ``feedback`` (buffer)
``usf``       ``s sign(W)``, ``s`` the Xavier SD      none (rebuilt from ``W`` every step)
``brsf``      ``sign(W) * |M|``, ``M`` redrawn        none (drawn at every forward pass)
``frsf``      ``sign(W) * |M|``, ``M`` drawn once     ``feedback_magnitude`` (buffer)
============  ======================================  =====================================

The weight and bias gradients are BP's for all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ..._validate import check_choice
from ..functional import MatrixFeedback
from .base import Method, drawn_bytes, random_entries, set_buffer, xavier_std

__all__ = ["BP", "FA", "SignBatchRandom", "SignFixedRandom", "SignUniform"]

_NOT_LEARNED = MatrixFeedback(learns=False)


@dataclass(frozen=True)
class BP(Method):
    """Backpropagation: sends ``W^T delta`` down."""

    name: ClassVar[str] = "bp"

    def rule_and_state(self, layer):
        return _NOT_LEARNED, (layer.weight,)

    def effective_feedback(self, layer):
        return layer.weight.detach()


@dataclass(frozen=True)
class FA(Method):
    """Feedback alignment (Lillicrap et al. 2016): a fixed random kernel replaces ``W``.

    ``init``: 'uniform' (Xavier-uniform on W's shape) or 'gaussian' (Xavier SD). The
    kernel is the buffer ``feedback``, in W's layout.
    """

    name: ClassVar[str] = "fa"
    state_names: ClassVar[tuple[str, ...]] = ("feedback",)
    init: str = "uniform"

    def __post_init__(self):
        check_choice("init", self.init, ("uniform", "gaussian"))

    def state_bytes(self, layer):
        return drawn_bytes(layer.weight.numel(), layer.weight)

    def init_state(self, layer, generator):
        w = layer.weight
        set_buffer(layer, "feedback", random_entries(w.shape, generator, w, self.init,
                                                     xavier_std(w)))

    def rule_and_state(self, layer):
        return _NOT_LEARNED, (layer.feedback,)

    def effective_feedback(self, layer):
        return layer.feedback.detach()


@dataclass(frozen=True)
class SignUniform(Method):
    """uSF: ``s * sign(W)`` with ``s`` the layer's Xavier SD, rebuilt every step."""

    name: ClassVar[str] = "usf"

    def rule_and_state(self, layer):
        return _NOT_LEARNED, (self.effective_feedback(layer),)

    def effective_feedback(self, layer):
        w = layer.weight.detach()
        return torch.sign(w) * xavier_std(w)


@dataclass(frozen=True)
class SignBatchRandom(Method):
    """brSF: ``sign(W) * |M|``, ``M`` iid N(0, s^2) redrawn at every forward pass.

    The draws use torch's default generator on the weight's device (seed it with
    ``torch.manual_seed`` for reproducibility); ``alignment`` reports one fresh draw.
    """

    name: ClassVar[str] = "brsf"
    feedback_redrawn_each_step: ClassVar[bool] = True

    def rule_and_state(self, layer):
        return _NOT_LEARNED, (self.effective_feedback(layer),)

    def effective_feedback(self, layer):
        w = layer.weight.detach()
        return torch.sign(w) * torch.randn_like(w).abs_().mul_(xavier_std(w))


@dataclass(frozen=True)
class SignFixedRandom(Method):
    """frSF: ``sign(W) * |M|``, ``M`` iid N(0, s^2) drawn once (buffer ``feedback_magnitude``)."""

    name: ClassVar[str] = "frsf"
    state_names: ClassVar[tuple[str, ...]] = ("feedback_magnitude",)

    def state_bytes(self, layer):
        return drawn_bytes(layer.weight.numel(), layer.weight)

    def init_state(self, layer, generator):
        w = layer.weight
        magnitude = random_entries(w.shape, generator, w, "gaussian", xavier_std(w)).abs()
        set_buffer(layer, "feedback_magnitude", magnitude)

    def rule_and_state(self, layer):
        return _NOT_LEARNED, (self.effective_feedback(layer),)

    def effective_feedback(self, layer):
        return torch.sign(layer.weight.detach()) * layer.feedback_magnitude
