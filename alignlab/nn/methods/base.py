"""The ``Method`` base class: what a credit-assignment method tells the rest of ``alignlab.nn``.

A method is a small frozen dataclass (its fields are its options). Shared code (layers,
``convert``, metrics, optimiser helpers) never asks a method for its *name*; it reads
the class-level properties and calls the hooks below, and each method overrides only
what it needs.

What a method says about itself (class-level properties):

``measure``
    What :func:`alignlab.alignment` compares with ``W``: ``'weight'`` (a kernel in W's
    layout), ``'path'`` (PFA's ``P^T = B^T R^T``) or ``'none'`` (nothing weight-shaped).
``state_names``
    Every tensor ``init_state`` registers on the layer (buffers and parameters).
``learned``
    The feedback Parameters an optimiser trains (they go to the ``'feedback'`` group).
``feedback_learns_from_backward``
    The feedback state learns from ``grad_W`` at every backward pass (KP, PFA), so its
    alignment is meaningful even in a layer whose feedback is never used.
``feedback_redrawn_each_step``
    The feedback is random afresh at every forward pass (brSF): a reported angle is one draw.
``mirror_trained``
    The feedback learns in a separate mirror phase (:meth:`mirror_update`; WM).
``size_option``
    The option that sets how large the state is (PFA's ``expansion_ratio``), or None: a
    state that cannot fit in memory is refused naming it (else naming the ``model``).
``follows_optimizer_step``
    The layer's state must be advanced after every optimiser step (factored PFA; see
    :meth:`before_step` / :meth:`after_step` and :func:`alignlab.nn.attach_factored_pfa`).

The hooks, in the order a layer's life calls them:

* ``resolve(model)``: fill in options that depend on the model (DFA's ``output_size``);
* ``state_bytes(layer)``: the memory ``init_state`` will need, from the layer's shape
  alone (``convert`` refuses a state that cannot fit before anything is drawn);
* ``init_state(layer, generator)``: register the feedback state on a converted layer;
* ``install(model, layers)`` / ``uninstall(model)``: model-level machinery (DFA's output
  error capture on the root); ``convert`` calls them, nothing else does;
* ``rule_and_state(layer)``: the backward rule (``functional.py``) and its tensors, at
  every forward pass; ``effective_feedback(layer)``: the kernel that multiplies
  ``delta`` on its way down, in W's layout, for the metrics (``None`` if there is none);
* ``check_training(...)``, ``check_optimizer``, ``before_step``, ``after_step``: what
  the optimiser helpers of ``optim.py`` ask and do;
* ``mirror_update(layer, ...)``: one mirror-phase step (``mirror_trained`` methods);
* ``scalar_state`` / ``load_scalar_state`` / ``restored``: Python scalars saved in the
  layer's extra state, and what to redo after ``load_state_dict``, deepcopy or unpickling;
* ``clear_state(layer)``: remove the state (``set_method``);
* ``alignment_theory(layer, mirror=...)``: what theory predicts for the layer's alignment,
  an object of :mod:`alignlab.nn.theory` (``alignlab compare`` asks nothing else).

Feedback kernels are stored in W's layout, i.e. as the transpose of the matrix that
multiplies ``delta``: FA's ``feedback`` is ``B^T`` in the notation ``delta_below = B delta``,
so ``feedback = W`` is BP.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..theory import AlignmentTheory

__all__ = [
    "Method",
    "layer_groups",
    "drawn_bytes",
    "random_entries",
    "set_buffer",
    "set_param",
    "xavier_std",
]


# ------------------------------------------------------------------------------- helpers


def xavier_std(weight: Tensor) -> float:
    """Xavier (Glorot) SD of a layer: ``sqrt(2 / (fan_in + fan_out))`` (torch's fans)."""
    fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(weight)
    return math.sqrt(2.0 / (fan_in + fan_out))


def random_entries(shape, generator: torch.Generator | None, like: Tensor, kind: str,
                   std: float) -> Tensor:
    """iid zero-mean entries with SD ``std``, drawn in float64 and cast to ``like``'s dtype
    and device: 'gaussian' or 'uniform' (U(-a, a), a = sqrt(3) std)."""
    if kind == "gaussian":
        t = torch.randn(shape, generator=generator, dtype=torch.float64) * std
    else:
        a = math.sqrt(3.0) * std
        t = (torch.rand(shape, generator=generator, dtype=torch.float64) * 2 - 1) * a
    return t.to(device=like.device, dtype=like.dtype)


def drawn_bytes(numel: int, like: Tensor) -> tuple[int, int]:
    """``(kept, extra)`` bytes of :func:`random_entries` with ``numel`` entries: the result
    in ``like``'s dtype, and what the peak of the draw needs beyond it (two float64 arrays
    at once: the draw and its scaled copy)."""
    kept = numel * like.element_size()
    return kept, max(2 * 8 * numel - kept, 0)


def set_buffer(layer: nn.Module, name: str, value: Tensor | None, *,
               persistent: bool = True) -> None:
    """Register ``value`` as buffer ``name`` (replacing a parameter of that name)."""
    layer._parameters.pop(name, None)
    layer.register_buffer(name, value, persistent=persistent)


def set_param(layer: nn.Module, name: str, value: Tensor) -> None:
    """Register ``value`` as a new Parameter ``name`` (replacing a buffer of that name)."""
    layer._buffers.pop(name, None)
    layer.register_parameter(name, nn.Parameter(value))


def layer_groups(layer: nn.Module) -> int:
    """The layer's convolution groups (1 for a linear layer)."""
    return layer.groups if layer.weight.dim() == 4 else 1


# ---------------------------------------------------------------------------------- Method


@dataclass(frozen=True)
class Method:
    """Base class of every method. Subclasses set ``name`` and override what they need."""

    name: ClassVar[str] = ""
    measure: ClassVar[str] = "weight"  # what `alignment` compares with W: weight | path | none
    state_names: ClassVar[tuple[str, ...]] = ()  # every tensor init_state registers
    learned: ClassVar[tuple[str, ...]] = ()  # feedback Parameters trained by the optimiser
    feedback_learns_from_backward: ClassVar[bool] = False  # KP, PFA: learns from grad_W
    feedback_redrawn_each_step: ClassVar[bool] = False  # brSF: a fresh random kernel per step
    mirror_trained: ClassVar[bool] = False  # WM: learns in mirror_update, not by gradient
    follows_optimizer_step: ClassVar[bool] = False  # factored PFA: before_step / after_step
    size_option: ClassVar[str | None] = None  # the option that sets the state's size

    # ---- options
    def options(self) -> dict:
        """The method's options (its dataclass fields), as saved in the layer's extra state."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def resolve(self, model: nn.Module) -> Method:
        """This method with options that depend on ``model`` filled in (default: itself)."""
        return self

    # ---- model-level machinery (called by ``convert`` only)
    def install(self, model: nn.Module, layers: list[nn.Module]) -> None:
        """After ``convert`` made ``layers`` of ``model`` use this method (default: nothing)."""

    def uninstall(self, model: nn.Module) -> None:
        """Before ``convert`` replaces layers that used this method (default: nothing)."""

    # ---- per-layer state
    def state_bytes(self, layer: nn.Module) -> tuple[int, int]:
        """``(kept, extra)``: the bytes of the tensors :meth:`init_state` registers on
        ``layer`` (an ``nn.Linear``/``nn.Conv2d``, converted or not), and the most it
        allocates besides at one time while forming them (float64 draws, temporaries).
        From the weight's shape and dtype alone: nothing is drawn (a ``meta`` weight
        will do). ``convert`` adds ``kept`` over the layers, plus the largest ``extra``,
        and refuses a total that cannot fit in memory. Default: no state, ``(0, 0)``."""
        return 0, 0

    def init_state(self, layer: nn.Module, generator: torch.Generator | None) -> None:
        """Register the feedback state on ``layer`` (default: none)."""

    def clear_state(self, layer: nn.Module) -> None:
        """Remove what :meth:`init_state` registered."""
        for name in self.state_names:
            layer._parameters.pop(name, None)
            layer._buffers.pop(name, None)

    def rule_and_state(self, layer: nn.Module) -> tuple[Any, tuple[Tensor, ...]]:
        """The backward rule for this step and the tensors it needs (``functional.py``)."""
        raise NotImplementedError

    def effective_feedback(self, layer: nn.Module) -> Tensor | None:
        """The kernel multiplying ``delta`` on its way down, in W's layout (None: none)."""
        raise NotImplementedError

    def scalar_state(self, layer: nn.Module) -> dict:
        """Python scalars of the layer's state, saved in its ``state_dict`` extra state."""
        return {}

    def load_scalar_state(self, layer: nn.Module, scalars: dict) -> None:
        """Restore :meth:`scalar_state` (called by ``load_state_dict`` after the tensors)."""

    def restored(self, layer: nn.Module) -> None:
        """The layer was copied or unpickled (``copy.deepcopy``, ``torch.load``)."""

    # ---- optimiser (``optim.py``)
    def check_training(self, *, optimizer_name: str | None, weight_decay: float,
                       feedback_weight_decay: float) -> None:
        """Raise ``ValueError`` if these optimiser settings cannot train this method.

        ``optimizer_name``: ``'sgd'`` for ``torch.optim.SGD`` and its subclasses, else the
        given name or class name; None when not known.
        """

    def check_optimizer(self, optimizer: torch.optim.Optimizer, group: dict) -> None:
        """Raise ``ValueError`` if ``optimizer`` (whose ``group`` holds the layer's ``W``)
        cannot step a ``follows_optimizer_step`` layer."""

    def before_step(self, layer: nn.Module, optimizer: torch.optim.Optimizer,
                    group: dict) -> Any:
        """Just before ``optimizer`` steps the group holding ``layer.weight``; the return
        value is handed to :meth:`after_step` (``follows_optimizer_step`` methods)."""
        return None

    def after_step(self, layer: nn.Module, note: Any) -> None:
        """Just after that step, with what :meth:`before_step` returned."""

    def mirror_update(self, layer: nn.Module, *, lr: float, weight_decay: float,
                      noise_std: float, n_samples: int,
                      generator: torch.Generator | None) -> None:
        """One mirror-phase step of the layer's feedback (``mirror_trained`` methods)."""
        raise NotImplementedError(f"method {self.name!r} has no mirror phase")

    # ---- theory (``alignlab compare``)
    def alignment_theory(self, layer: nn.Module, *,
                         mirror: Mapping[str, Any] | None = None) -> AlignmentTheory:
        """What theory predicts for the alignment of ``layer`` (converted to this method, at
        its current state): an :class:`~alignlab.nn.theory.AlignmentTheory` built from the
        method's options and the layer's state. ``mirror``: the run's mirror-phase settings
        (:func:`alignlab.nn.mirror_step`'s keywords ``lr``, ``weight_decay``,
        ``noise_std``, ``n_samples``, plus ``every_steps`` and ``initial_steps``), read by
        ``mirror_trained`` methods. Default: measured only."""
        return AlignmentTheory(description="no theory for this method's feedback")
