"""Methods with a learned feedback kernel: Kolen-Pollack (KP) and weight mirror (WM).

Both keep a kernel ``feedback`` in W's layout as an ``nn.Parameter`` (the optimiser
helpers put it in the ``'feedback'`` group) and send ``delta`` down through it. They
differ in how it learns (Akrout et al. 2019):

* KP: the backward pass hands ``feedback`` the same gradient as ``W`` (``grad_W``), so
  with the same optimiser and weight decay ``W - feedback`` decays whatever the data
  (Proposition 1 with ``B = I``);
* WM: the backward pass gives it nothing; :func:`alignlab.nn.mirror_step` runs a mirror
  phase (:meth:`WM.mirror_update`) that moves it towards ``E[y xi^T] = s^2 W``.

``init``: 'uniform', 'gaussian' (Xavier SD) or 'weight' (a copy of W: BP from step 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from ..._validate import check_choice
from ..functional import MatrixFeedback
from ..theory import AlignmentTheory, InitialLaw, MirrorFloor, PathDynamics
from .base import Method, drawn_bytes, random_entries, set_param, xavier_std

__all__ = ["KP", "WM"]


@dataclass(frozen=True)
class _LearnedKernel(Method):
    """A learned kernel ``feedback`` in W's layout (Parameter, ``'feedback'`` group)."""

    learned: ClassVar[tuple[str, ...]] = ("feedback",)
    state_names: ClassVar[tuple[str, ...]] = ("feedback",)
    init: str = "uniform"

    def __post_init__(self):
        check_choice("init", self.init, ("uniform", "gaussian", "weight"))

    def state_bytes(self, layer):
        w = layer.weight
        if self.init == "weight":  # a copy of W
            return w.numel() * w.element_size(), 0
        return drawn_bytes(w.numel(), w)

    def init_state(self, layer, generator):
        w = layer.weight
        if self.init == "weight":
            value = w.detach().clone()
        else:
            value = random_entries(w.shape, generator, w, self.init, xavier_std(w))
        set_param(layer, "feedback", value)

    def rule_and_state(self, layer):
        return MatrixFeedback(learns=self.feedback_learns_from_backward), (layer.feedback,)

    def effective_feedback(self, layer):
        return layer.feedback.detach()


@dataclass(frozen=True)
class KP(_LearnedKernel):
    """Kolen-Pollack: a learned kernel ``feedback`` that receives ``grad_W`` as its gradient.

    With the same optimiser and weight decay as ``W`` (use ``param_groups``),
    ``W - feedback`` decays whatever the data (Proposition 1 with ``B = I``).
    """

    name: ClassVar[str] = "kp"
    feedback_learns_from_backward: ClassVar[bool] = True

    def alignment_theory(self, layer, *, mirror=None):
        """Proposition 1 with ``B = I`` (``n_mid = n_out``): ``W^T - B_KP`` decays; the
        initial kernel's law is the option ``init`` (Xavier SD; 'weight': ``W_0``)."""
        w = layer.weight
        n_out = int(w.shape[0])
        if self.init == "weight":
            r0 = InitialLaw(None, 0.0, "W_0")
        else:
            from ...sim import get_ensemble

            std = xavier_std(w)
            r0 = InitialLaw(get_ensemble(self.init), std, f"{self.init}, SD {std:.3g}")
        return PathDynamics(description="B = I", kind="orthonormal", n_out=n_out,
                            n_mid=n_out, expansion_ratio=1.0, r0=r0)


@dataclass(frozen=True)
class WM(_LearnedKernel):
    """Weight mirror: a kernel ``feedback`` learned only in the mirror phase.

    The backward pass gives it no gradient; :func:`alignlab.nn.mirror_step` calls
    :meth:`mirror_update` on every WM layer.
    """

    name: ClassVar[str] = "wm"
    mirror_trained: ClassVar[bool] = True

    def alignment_theory(self, layer, *, mirror=None):
        """The mirror's noise floor at the run's mirror settings (``mirror``); measured
        only without them, or when no mirror step ran during training."""
        if mirror is None:
            return AlignmentTheory(description="the mirror phase's settings were not given")
        if not mirror.get("every_steps", 1):
            return AlignmentTheory(description="no mirror step during training "
                                               "(every_steps 0): no stationary feedback")
        w = layer.weight
        n, lr, wd = int(mirror["n_samples"]), float(mirror["lr"]), float(mirror["weight_decay"])
        return MirrorFloor(description=f"mirror: {n} samples, lr {lr:g}, decay {wd:g}",
                           n_in=int(w[0].numel()), n_samples=n, lr=lr, weight_decay=wd,
                           noise_std=float(mirror["noise_std"]))

    @torch.no_grad()
    def mirror_update(self, layer, *, lr, weight_decay, noise_std, n_samples, generator):
        r"""Noise ``xi ~ N(0, noise_std^2)`` at the layer's input, ``y = W xi`` (no bias;
        convs with the layer's stride, dilation and groups and no padding, on an input just
        larger than the receptive field), then

        .. math:: F \leftarrow (1 - \eta \lambda) F + \eta \langle y \xi^T \rangle

        averaged over samples (and positions). ``E[y xi^T] = noise_std^2 W``.
        """
        w = layer.weight.detach()
        if w.dim() == 2:
            xi = torch.randn((n_samples, w.shape[1]), generator=generator, dtype=torch.float64)
            xi = (xi * noise_std).to(device=w.device, dtype=w.dtype)
            y = xi @ w.t()  # (n_samples, n_out)
            corr = y.t() @ xi / n_samples
        else:
            sh, sw = layer.stride
            dh, dw = layer.dilation
            kh, kw = w.shape[2:]
            size = (dh * (kh - 1) + 1 + 3 * sh, dw * (kw - 1) + 1 + 3 * sw)
            shape = (n_samples, w.shape[1] * layer.groups) + size
            xi = torch.randn(shape, generator=generator, dtype=torch.float64) * noise_std
            xi = xi.to(device=w.device, dtype=w.dtype)
            y = F.conv2d(xi, w, None, layer.stride, 0, layer.dilation, layer.groups)
            rows = y.shape[0] * y.shape[2] * y.shape[3]
            corr = torch.nn.grad.conv2d_weight(xi, w.shape, y, layer.stride, 0, layer.dilation,
                                               layer.groups) / rows
        layer.feedback.mul_(1 - lr * weight_decay).add_(corr, alpha=lr)
