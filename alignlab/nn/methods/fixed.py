"""Methods whose feedback kernel does not learn: BP, FA and the sign-concordant family.

Each sends ``delta`` down through one kernel ``F`` in W's layout (``MatrixFeedback``):

============  ======================================  =====================================
method        kernel ``F``                            state on the layer
============  ======================================  =====================================
``bp``        ``W``                                   none
``fa``        a fixed random matrix                   ``feedback`` (buffer)
``usf``       ``s sign(W)``, ``s`` the Xavier SD      none (rebuilt from ``W`` every step)
``brsf``      ``sign(W) * |M|``, ``M`` redrawn        its stream: a seed and a draw count
``frsf``      ``sign(W) * |M|``, ``M`` drawn once     ``feedback_magnitude`` (buffer)
============  ======================================  =====================================

The weight and bias gradients are BP's for all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ..._rng import TAG_AUX, make_streams
from ..._validate import check_choice
from ..functional import MatrixFeedback
from ..theory import Exact, IndependenceNull, RandomMagnitude, SignIdentity
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

    def alignment_theory(self, layer, *, mirror=None):
        return Exact(description="F = W")


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

    def alignment_theory(self, layer, *, mirror=None):
        return IndependenceNull(description=f"B {self.init}, fixed",
                                n_entries=layer.weight.numel(), ensemble=self.init)


@dataclass(frozen=True)
class SignUniform(Method):
    """uSF: ``s * sign(W)`` with ``s`` the layer's Xavier SD, rebuilt every step."""

    name: ClassVar[str] = "usf"

    def rule_and_state(self, layer):
        return _NOT_LEARNED, (self.effective_feedback(layer),)

    def effective_feedback(self, layer):
        w = layer.weight.detach()
        return torch.sign(w) * xavier_std(w)

    def alignment_theory(self, layer, *, mirror=None):
        w = layer.weight
        return SignIdentity(description="s sign(W), s Xavier", scale=xavier_std(w),
                            n_entries=w.numel())


@dataclass(frozen=True)
class SignBatchRandom(Method):
    """brSF: ``sign(W) * |M|``, ``M`` iid N(0, s^2) redrawn at every forward pass.

    The draws come from the layer's own stream, never from torch's global generator: a
    seed, drawn once by :meth:`init_state` from the generator ``convert`` hands over (its
    ``rng``; torch's default generator for ``rng=None``), and the number of draws used so
    far. Draw ``k`` is made on the weight's device from
    ``make_streams(seed).torch(k, TAG_AUX, device)`` (:mod:`alignlab._rng`), so the same
    seed and count give the same magnitudes on the same kind of device, whatever else
    has drawn, and the stream follows ``.to(device)``.

    * A forward pass with gradients enabled (a backward pass may use its feedback) uses
      draw ``count`` and advances the count by one.
    * :meth:`effective_feedback` (``alignment``, the run's probe) and a forward pass
      without gradients (evaluation: no backward, no feedback needed) return that next
      draw, the one the next training pass will use, *without* advancing: reporting
      never moves the training draws. (:func:`~alignlab.nn.update_angles` runs a
      training pass and then restores the count through :meth:`load_scalar_state`.)
    * ``(seed, count)`` is the layer's scalar state (:meth:`scalar_state`): it travels
      with ``state_dict`` (hence the run's checkpoint and the distributed runs' identity
      check) and with ``copy.deepcopy``; a copy continues the same stream.
    """

    name: ClassVar[str] = "brsf"
    feedback_redrawn_each_step: ClassVar[bool] = True

    def init_state(self, layer, generator):
        streams = make_streams(torch.default_generator if generator is None else generator)
        layer._brsf_seed, layer._brsf_draws = streams.entropy, 0  # one draw from generator

    def clear_state(self, layer):
        for attr in ("_brsf_seed", "_brsf_draws"):
            layer.__dict__.pop(attr, None)

    def scalar_state(self, layer):
        return {"seed": layer._brsf_seed, "draws": layer._brsf_draws}

    def load_scalar_state(self, layer, scalars):
        if scalars:  # (a state_dict saved before brSF had its own stream: keep the layer's)
            layer._brsf_seed, layer._brsf_draws = int(scalars["seed"]), int(scalars["draws"])

    def rule_and_state(self, layer):
        # used by a backward pass (gradients enabled): the next pass draws afresh
        return _NOT_LEARNED, (_next_draw(layer, advance=torch.is_grad_enabled()),)

    def effective_feedback(self, layer):
        return _next_draw(layer, advance=False)

    def alignment_theory(self, layer, *, mirror=None):
        return _random_magnitude(layer, "|M| redrawn every step")


@torch.compiler.disable  # torch.compile: one graph break here, not a recompile per count
def _next_draw(layer, *, advance: bool) -> torch.Tensor:
    """brSF's kernel from draw ``count`` of the layer's stream; ``advance``: count += 1."""
    w = layer.weight.detach()
    gen = make_streams(layer._brsf_seed).torch(layer._brsf_draws, TAG_AUX, w.device)
    magnitude = torch.randn(w.shape, generator=gen, dtype=w.dtype, device=w.device)
    if advance:
        layer._brsf_draws += 1
    return torch.sign(w) * magnitude.abs_().mul_(xavier_std(w))


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

    def alignment_theory(self, layer, *, mirror=None):
        return _random_magnitude(layer, "|M| drawn once")


def _random_magnitude(layer, drawn: str) -> RandomMagnitude:
    """brSF's and frSF's theory: ``sign(W) |M|``, ``M`` iid N(0, s^2), ``s`` Xavier."""
    w = layer.weight
    return RandomMagnitude(description=f"sign(W) |M|, M gaussian, {drawn}",
                           scale=xavier_std(w), n_entries=w.numel())
