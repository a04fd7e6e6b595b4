r"""Product feedback alignment (Li & Benna 2024): PFA, PFA-o, PFA-id and sparse PFA.

The error reaches the layer below through two matrices, ``delta_below = R B delta``:

* ``B`` (buffer ``pfa_B``, ``(n_mid, n_out/groups)``) fixed: ``e_bar = B delta`` is an
  error population of ``n_mid = mid_width(n_out, r)`` neurons (``r`` the expansion ratio);
* ``R`` plastic, stored in W's layout as ``R^T`` (``(n_mid, n_in)``; conv
  ``(C_mid, C_in/groups, kh, kw)``) so that ``R^T - B W`` is the quantity of
  Proposition 1. It learns ``grad R^T = B grad_W`` (and W's weight decay), which makes
  the path ``P^T = B^T R^T`` align with ``W``.

For convolutions ``B`` is a 1x1 channel mixing, block-diagonal over ``groups``.
The variants differ only in ``B``: iid with variance ``1/n_mid`` (PFA; Bernoulli-masked
for sparse PFA, whose ``R`` is masked too), Haar orthogonal (PFA-o) or the identity
(PFA-id, which is Kolen-Pollack with ``R^T`` as its kernel).

How ``R`` is represented is one strategy object, chosen by the option ``state``:

``'explicit'`` (:class:`ExplicitR`)
    ``R^T`` is the Parameter ``pfa_R``, trained by any optimiser.
``'factored'`` (:class:`FactoredR`)
    Proposition 1 as the implementation. Under SGD with ``W``'s hyperparameters
    ``R_t^T = B W_t + c_t D_0`` exactly, so the layer keeps ``M = B^T B`` and
    ``Q_0 = B^T D_0`` (buffers) and the scalars ``(c, u)``, advanced after every optimiser
    step by :func:`alignlab.theory.decay.sgd_decay_step` (the step hook of
    :func:`alignlab.nn.attach_factored_pfa`); the path is ``P^T = M W + c Q_0``.

The method classes below choose ``B`` and ``n_mid``; everything that depends on the
representation of ``R`` is delegated to ``method.r_state``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..._linalg import haar_orthogonal_, mid_width
from ..._validate import check_choice, check_positive, check_probability
from ...theory.decay import sgd_decay_step
from ..functional import (
    FactoredPathFeedback,
    PathFeedback,
    channel_mix,
    mid_contract,
    path_kernel,
)
from ..theory import AlignmentTheory, InitialLaw, MaskedPathDynamics, PathDynamics
from .base import (
    Method,
    drawn_bytes,
    layer_groups,
    random_entries,
    set_buffer,
    set_param,
)

__all__ = [
    "PFA",
    "R_STATES",
    "ExplicitR",
    "FactoredR",
    "PFAIdentity",
    "PFAOrthogonal",
    "PFASparse",
]


# ------------------------------------------------------------------ representations of R


class _RState:
    """How a PFA layer holds ``R``: the interface both representations implement.

    Every method takes the converted layer; ``init_state`` also gets the drawn ``B`` and
    ``R_0^T`` (the same draws in both representations, so an explicit and a factored
    layer converted with the same ``rng`` describe the same network).
    """

    state_names: tuple[str, ...] = ()  # tensors registered on the layer besides pfa_B
    learned: tuple[str, ...] = ()  # Parameters the optimiser trains
    follows_optimizer_step: bool = False  # needs before_step/after_step around each step

    def state_bytes(self, weight: Tensor, n_mid: int, groups: int) -> tuple[int, int]:
        """``(kept, extra)`` bytes of what this representation keeps (besides ``pfa_B``)
        and forms on the way, from ``R_0^T``'s draw on; see :meth:`Method.state_bytes`."""
        raise NotImplementedError

    def init_state(self, layer: nn.Module, b: Tensor, r0: Tensor) -> None:
        raise NotImplementedError

    def clear_state(self, layer: nn.Module) -> None:
        """Remove non-tensor state (the tensors are removed by name)."""

    def rule_and_state(self, layer: nn.Module):
        raise NotImplementedError

    def effective_feedback(self, layer: nn.Module) -> Tensor:
        raise NotImplementedError

    def feedback_weights(self, layer: nn.Module) -> Tensor:
        raise NotImplementedError

    def scalar_state(self, layer: nn.Module) -> dict:
        return {}

    def load(self, layer: nn.Module, scalars: dict) -> None:
        """After ``load_state_dict`` copied the tensors (``scalars``: :meth:`scalar_state`)."""

    def restored(self, layer: nn.Module) -> None:
        """After ``copy.deepcopy`` or unpickling."""

    def advance(self, layer: nn.Module, lr: float, weight_decay: float, momentum: float,
                has_buffer: bool) -> None:
        raise NotImplementedError

    def check_training(self, *, optimizer_name: str | None, weight_decay: float,
                       feedback_weight_decay: float) -> None:
        """Raise if these optimiser settings cannot train ``R`` (default: anything goes)."""

    def check_optimizer(self, optimizer: torch.optim.Optimizer, group: dict) -> None:
        """Raise if ``optimizer`` cannot step a ``follows_optimizer_step`` layer."""

    def before_step(self, layer: nn.Module, optimizer: torch.optim.Optimizer,
                    group: dict) -> Any:
        return None

    def after_step(self, layer: nn.Module, note: Any) -> None:
        """After the optimiser step, with what :meth:`before_step` returned."""


@dataclass(frozen=True)
class ExplicitR(_RState):
    """``R^T`` stored as the Parameter ``pfa_R`` and trained by any optimiser.

    ``impl``: how the backward pass computes with it (see ``PathFeedback``): 'auto' (the
    cheaper form per layer and call), 'path' or 'literal'. ``masked``: ``R`` is used only
    through the layer's ``pfa_R_mask`` (sparse PFA), so masked entries get no gradient.
    """

    impl: str = "auto"
    masked: bool = False
    learned: ClassVar[tuple[str, ...]] = ("pfa_R",)
    state_names: ClassVar[tuple[str, ...]] = ("pfa_R",)

    @classmethod
    def for_method(cls, method: _PFAFamily) -> ExplicitR:
        if method.store_D0:
            raise ValueError("`store_D0` must be False when state='explicit' (R is stored "
                             "itself), got True.")
        return cls(method.impl, masked=method.masks_R)

    def rt(self, layer) -> Tensor:
        """``R^T`` as the backward pass uses it (masked for sparse PFA)."""
        return layer.pfa_R * layer.pfa_R_mask if self.masked else layer.pfa_R

    def state_bytes(self, weight, n_mid, groups):
        return drawn_bytes(n_mid * weight[0].numel(), weight)  # R_0^T, kept as pfa_R

    def init_state(self, layer, b, r0):
        set_param(layer, "pfa_R", r0)

    def rule_and_state(self, layer):
        return PathFeedback(self.impl), (layer.pfa_B, self.rt(layer))

    def effective_feedback(self, layer):
        return path_kernel(layer.pfa_B, self.rt(layer).detach(), layer_groups(layer))

    def feedback_weights(self, layer):
        return self.rt(layer).detach()

    def advance(self, layer, lr, weight_decay, momentum, has_buffer):
        raise RuntimeError("explicit PFA is trained by the optimiser itself: nothing to advance")


# Z_0 = M^{-1} Q_0 turns the path into M (W + c Z_0), one BP-priced product cheaper per
# call. Used only when M is well conditioned (r = 10: cond about 3.7; PFA-o/-id: 1), so
# that W + c Z_0 loses nothing of W and M Z_0 = Q_0 to a few ulps; otherwise (r near 1,
# where MP's lower edge reaches 0, or r < 1, M singular) Q_0 is used as it is.
_Z0_MAX_COND = 100.0


def _check_sgd_group(group: dict) -> None:
    """The settings under which factored PFA equals explicit PFA trained by SGD."""
    name = group.get("name", "")
    where = f" (param group {name!r})" if name else ""
    if group.get("nesterov", False):
        raise ValueError(f"`nesterov` must be False for factored PFA{where}: Proposition 1's "
                         "recursion is for heavy-ball momentum, got True.")
    if group.get("dampening", 0) != 0:
        raise ValueError(f"`dampening` must be 0 for factored PFA{where}, got "
                         f"{group['dampening']!r}.")
    if group.get("maximize", False):
        raise ValueError(f"`maximize` must be False for factored PFA{where}, got True.")


@dataclass(frozen=True)
class FactoredR(_RState):
    """``R`` not stored: Proposition 1's closed form ``R_t^T = B W_t + c_t D_0``.

    The layer keeps ``pfa_M = B^T B`` (per group, ``(n_out, n_out/groups)``),
    ``pfa_Q0 = B^T D_0`` (W's layout), the non-persistent ``pfa_Z0 = M^{-1} Q_0`` when
    ``M`` is well conditioned, with ``store_D0`` also ``pfa_D0 = R_0^T - B W_0`` (to
    rebuild ``R``), and the Python floats ``(c, u)`` of :func:`sgd_decay_step`
    (``layer._pfa_c``, ``layer._pfa_u``; saved in the extra state). It is exact only if
    ``W`` moves by ``torch.optim.SGD`` steps carrying the step hook, so the layer records
    which ``W`` (object and in-place version) its state describes and refuses to compute
    with any other.
    """

    store_D0: bool = False
    follows_optimizer_step: ClassVar[bool] = True

    @classmethod
    def for_method(cls, method: _PFAFamily) -> FactoredR:
        if method.impl != "auto":
            raise ValueError(f"`impl` must be 'auto' when state='factored' (the factored path "
                             f"has its own per-call choice), got {method.impl!r}.")
        return cls(method.store_D0)

    @property
    def state_names(self) -> tuple[str, ...]:  # type: ignore[override]
        return ("pfa_M", "pfa_Q0", "pfa_Z0") + (("pfa_D0",) if self.store_D0 else ())

    # ---- state
    def state_bytes(self, weight, n_mid, groups):
        it, n_w = weight.element_size(), weight.numel()
        k = weight.shape[0] // groups
        n_b, n_r = n_mid * k, n_mid * weight[0].numel()  # entries of B and R_0^T
        n_m = weight.shape[0] * k  # entries of M
        kept = it * (n_m + 2 * n_w)  # M, Q_0, Z_0
        if self.store_D0:
            kept += it * n_r
        # R_0^T is drawn (float64 and its scaled copy), then held while, from B and W_0 in
        # float64, D_0 = R_0^T - B W_0 is formed (R_0^T and B W_0 converted, D_0), and then
        # while Z_0 = M^{-1} Q_0 is solved (M and its factors, Q_0 and Z_0 in float64)
        held = it * n_r + 8 * (n_b + n_w + n_r)
        return kept, max(16 * n_r, held + 8 * 2 * n_r, held + 8 * (2 * n_m + 2 * n_w))

    def init_state(self, layer, b, r0):
        # Proposition 1: R_t^T = B W_t + c_t D_0, so P_t^T = B^T R_t^T = M W_t + c_t Q_0.
        # Formed once, in float64.
        w = layer.weight
        groups = layer_groups(layer)
        n_mid, k = b.shape  # k = n_out / groups
        b64, w64 = b.double(), w.detach().double()
        d0 = r0.double() - mid_contract(b64, w64, groups)  # (n_mid, ...)
        bg = b64.reshape(groups, n_mid // groups, k)
        m = torch.bmm(bg.transpose(1, 2), bg).reshape(groups * k, k)  # B^T B per group
        set_buffer(layer, "pfa_M", m.to(w.dtype))
        set_buffer(layer, "pfa_Q0", path_kernel(b64, d0, groups).to(w.dtype))
        if self.store_D0:
            set_buffer(layer, "pfa_D0", d0.to(w.dtype))
        self._solve_z0(layer)  # from the stored M, Q_0: a loaded state_dict gives the same Z_0
        layer._pfa_c, layer._pfa_u = 1.0, 0.0
        self._record_sync(layer)

    def clear_state(self, layer):
        for attr in ("_pfa_c", "_pfa_u", "_pfa_sync"):
            layer.__dict__.pop(attr, None)

    @staticmethod
    def _solve_z0(layer) -> None:
        """Set the non-persistent buffer ``pfa_Z0`` (or None) from ``pfa_M`` and ``pfa_Q0``."""
        m, q0 = layer.pfa_M, layer.pfa_Q0
        n_out, k = m.shape
        groups = n_out // k
        mg = m.double().reshape(groups, k, k)
        evals = torch.linalg.eigvalsh(mg)
        z0 = None
        if bool((evals[:, 0] > 0).all()) and float((evals[:, -1] / evals[:, 0]).max()) <= (
                _Z0_MAX_COND):
            z = torch.linalg.solve(mg, q0.double().reshape(groups, k, -1))
            # contiguous: LAPACK returns column-major, and W + c Z_0 is on the hot path
            z0 = z.reshape(q0.shape).to(q0.dtype).contiguous()
        set_buffer(layer, "pfa_Z0", z0, persistent=False)

    @staticmethod
    def _record_sync(layer) -> None:
        """Remember which ``W`` (object and in-place version) the factored state describes."""
        w = layer.weight
        layer._pfa_sync = (id(w), w._version)

    @staticmethod
    def _check_sync(layer) -> None:
        w = layer.weight
        if getattr(layer, "_pfa_sync", None) != (id(w), w._version):
            raise RuntimeError(
                f"the weight {tuple(w.shape)} of a factored-PFA layer changed without its "
                "decay factor (c, u) advancing, so its path M W + c Q0 no longer equals the "
                "explicit PFA's. Factored PFA must be trained by torch.optim.SGD with its step "
                "hook: build the optimiser with alignlab.nn.make_optimizer(model, 'sgd', ...) "
                "or call alignlab.nn.attach_factored_pfa(optimizer, model) once after building "
                "it. Weights edited by hand (re-initialisation, a second optimiser) cannot be "
                "followed: convert after initialising, or use state='explicit'."
            )

    def scalar_state(self, layer):
        return {"c": layer._pfa_c, "u": layer._pfa_u}

    def load(self, layer, scalars):
        layer._pfa_c, layer._pfa_u = float(scalars["c"]), float(scalars["u"])
        self._solve_z0(layer)  # not saved: derived from the loaded M and Q_0
        self._record_sync(layer)

    def restored(self, layer):
        self._record_sync(layer)

    # ---- the path
    def rule_and_state(self, layer):
        if torch.is_grad_enabled():
            self._check_sync(layer)
        z0 = layer.pfa_Z0
        solved = z0 is not None
        state = (layer.weight.detach(), layer.pfa_M, z0 if solved else layer.pfa_Q0)
        return FactoredPathFeedback(layer._pfa_c, solved), state

    def effective_feedback(self, layer):
        self._check_sync(layer)
        mw = channel_mix(layer.pfa_M, layer.weight.detach(), layer_groups(layer))
        return mw.add_(layer.pfa_Q0, alpha=layer._pfa_c)

    def feedback_weights(self, layer):
        if not self.store_D0:
            raise ValueError("`store_D0` must be True to rebuild R from a factored PFA "
                             "layer, got False.")
        self._check_sync(layer)
        bw = mid_contract(layer.pfa_B, layer.weight.detach(), layer_groups(layer))
        return bw.add_(layer.pfa_D0, alpha=layer._pfa_c)

    # ---- the optimiser step
    def advance(self, layer, lr, weight_decay, momentum, has_buffer):
        """One ``torch.optim.SGD`` step of ``(c, u)``: :func:`sgd_decay_step` continued from
        the layer's current values, with torch's buffer rules (the buffer ``v = u D_0`` is
        created as ``v = g`` on the first momentum step and left alone by steps with
        momentum 0)."""
        layer._pfa_c, layer._pfa_u = sgd_decay_step(
            layer._pfa_c, layer._pfa_u, lr, weight_decay, momentum, has_buffer
        )

    def check_training(self, *, optimizer_name, weight_decay, feedback_weight_decay):
        if feedback_weight_decay != weight_decay:
            raise ValueError(
                f"`feedback_weight_decay` must equal `weight_decay` ({weight_decay}) for "
                f"factored PFA (Proposition 1 needs the same decay for W and R), got "
                f"{feedback_weight_decay}.")
        if optimizer_name is not None and optimizer_name != "sgd":
            raise ValueError(
                f"`optimizer` must be SGD for factored PFA (Proposition 1 needs a linear "
                f"optimiser; use state='explicit' otherwise), got {optimizer_name!r}.")

    def check_optimizer(self, optimizer, group):
        if not isinstance(optimizer, torch.optim.SGD):
            raise ValueError(
                f"`optimizer` must be torch.optim.SGD for factored PFA (Proposition 1 needs "
                f"a linear optimiser; use state='explicit' otherwise), got "
                f"{type(optimizer).__name__}.")
        _check_sgd_group(group)

    def before_step(self, layer, optimizer, group):
        """Check the group and ``W``; note what SGD is about to do to ``W`` (nothing when
        ``W.grad`` is None; momentum buffer present or not)."""
        _check_sgd_group(group)
        self._check_sync(layer)
        w = layer.weight
        if w.grad is None:  # SGD leaves W (and would leave R) alone
            return None
        has_buffer = optimizer.state.get(w, {}).get("momentum_buffer") is not None
        return (float(group["lr"]), float(group["weight_decay"]), float(group["momentum"]),
                has_buffer)

    def after_step(self, layer, note):
        if note is not None:
            self.advance(layer, *note)
        self._record_sync(layer)


#: ``state=`` option -> representation of R
R_STATES: dict[str, type[_RState]] = {"explicit": ExplicitR, "factored": FactoredR}


# ------------------------------------------------------------------------------- methods


_IMPLS = ("auto", "path", "literal")


def initial_rt_std(weight: Tensor, n_mid: int) -> float:
    """SD of ``R_0^T``'s entries: Xavier on its own shape ``(n_mid,) + W.shape[1:]``."""
    shape = (n_mid,) + tuple(weight.shape[1:])
    fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(torch.empty(shape, device="meta"))
    return math.sqrt(2.0 / (fan_in + fan_out))


def _initial_rt(layer, n_mid: int, generator) -> Tensor:
    """``R_0^T``: Xavier-uniform on its own shape ``(n_mid,) + W.shape[1:]`` (pfa.md)."""
    w = layer.weight
    shape = (n_mid,) + tuple(w.shape[1:])
    return random_entries(shape, generator, w, "uniform", initial_rt_std(w, n_mid))


def _iid_B(n_mid, n_out, groups, generator, like, kind, scale=1.0) -> Tensor:
    # per group a (n_mid/g, n_out/g) block with entry variance 1/(n_mid/g): E[B^T B] = I
    std = scale / math.sqrt(n_mid // groups)
    return random_entries((n_mid, n_out // groups), generator, like, kind, std)


@dataclass(frozen=True)
class _PFAFamily(Method):
    """Shared by every PFA method: the options ``impl``, ``state``, ``store_D0``.

    ``impl``: 'auto' (cheaper form per layer and call), 'path' or 'literal' (explicit
    state only). ``state``: 'explicit' or 'factored' (see the module docstring);
    ``store_D0`` (factored only) keeps ``D_0 = R_0^T - B W_0`` so that
    ``feedback_weights`` can rebuild ``R^T``. Subclasses choose ``n_mid`` and ``B``.
    """

    measure: ClassVar[str] = "path"
    feedback_learns_from_backward: ClassVar[bool] = True
    masks_R: ClassVar[bool] = False  # R used only through pfa_R_mask (sparse PFA)
    impl: str = "auto"
    state: str = "explicit"
    store_D0: bool = False

    def __post_init__(self):
        check_choice("impl", self.impl, _IMPLS)
        check_choice("state", self.state, R_STATES)
        if not isinstance(self.store_D0, bool):
            raise ValueError(f"`store_D0` must be True or False, got {self.store_D0!r}.")
        # the representation of R: one strategy object, fixed for the method's lifetime
        object.__setattr__(self, "r_state", R_STATES[self.state].for_method(self))

    # ---- what the representation decides
    @property
    def learned(self) -> tuple[str, ...]:  # type: ignore[override]
        return self.r_state.learned

    @property
    def state_names(self) -> tuple[str, ...]:  # type: ignore[override]
        return ("pfa_B",) + self.r_state.state_names

    @property
    def follows_optimizer_step(self) -> bool:  # type: ignore[override]
        return self.r_state.follows_optimizer_step

    # ---- B and n_mid (subclasses)
    def n_mid(self, n_out: int, groups: int) -> int:
        return n_out

    def draw_B(self, n_mid: int, n_out: int, groups: int, generator,
               like: Tensor) -> Tensor:
        """``B`` of shape ``(n_mid, n_out/groups)``: ``groups`` stacked blocks."""
        raise NotImplementedError

    def draw_B_bytes(self, numel: int, like: Tensor) -> tuple[int, int]:
        """``(kept, extra)`` bytes of :meth:`draw_B` for a ``B`` of ``numel`` entries
        (default: iid entries drawn in float64, :func:`drawn_bytes`)."""
        return drawn_bytes(numel, like)

    # ---- the laws of B and R_0 (subclasses; for alignment_theory)
    def ratio(self) -> float:
        """The expansion ratio: ``n_mid = n_out`` by construction (PFA: its option)."""
        return 1.0

    def b_law(self) -> tuple[str, Any, str]:
        """``(kind, ensemble, description)`` of ``B``'s law (:class:`~alignlab.nn.theory.
        PathDynamics`): how :meth:`draw_B` draws it."""
        raise NotImplementedError

    def r0_law(self, std: float) -> InitialLaw:
        """The law of ``R_0^T`` (:func:`_initial_rt`: Xavier-uniform, SD ``std``)."""
        from ...sim import get_ensemble

        return InitialLaw(get_ensemble("uniform"), std, f"uniform, SD {std:.3g}")

    # ---- the Method hooks
    def state_bytes(self, layer):
        w = layer.weight
        groups = layer_groups(layer)
        n_mid = self.n_mid(w.shape[0], groups)
        b_kept, b_extra = self.draw_B_bytes(n_mid * (w.shape[0] // groups), w)
        r_kept, r_extra = self.r_state.state_bytes(w, n_mid, groups)
        return b_kept + r_kept, max(b_extra, r_extra)

    def init_state(self, layer, generator):
        w = layer.weight
        groups = layer_groups(layer)
        n_out = w.shape[0]
        n_mid = self.n_mid(n_out, groups)
        b = self.draw_B(n_mid, n_out, groups, generator, w)
        r0 = _initial_rt(layer, n_mid, generator)  # the same draws in both states
        set_buffer(layer, "pfa_B", b)
        self.r_state.init_state(layer, b, r0)

    def clear_state(self, layer):
        super().clear_state(layer)
        self.r_state.clear_state(layer)

    def rule_and_state(self, layer):
        return self.r_state.rule_and_state(layer)

    def effective_feedback(self, layer):
        """The path ``P^T = B^T R^T`` in W's layout (factored: ``M W + c Q_0``)."""
        return self.r_state.effective_feedback(layer)

    def feedback_weights(self, layer) -> Tensor:
        """``R^T`` now (``(n_mid, ...)``, W's layout with ``n_mid`` rows).

        Explicit state: ``pfa_R`` (masked for sparse PFA). Factored: ``B W + c D_0``
        (Proposition 1), which needs ``store_D0=True``.
        """
        return self.r_state.feedback_weights(layer)

    def scalar_state(self, layer):
        return self.r_state.scalar_state(layer)

    def load_scalar_state(self, layer, scalars):
        self.r_state.load(layer, scalars)

    def restored(self, layer):
        self.r_state.restored(layer)

    def check_training(self, *, optimizer_name, weight_decay, feedback_weight_decay):
        self.r_state.check_training(optimizer_name=optimizer_name, weight_decay=weight_decay,
                                    feedback_weight_decay=feedback_weight_decay)

    def check_optimizer(self, optimizer, group):
        self.r_state.check_optimizer(optimizer, group)

    def before_step(self, layer, optimizer, group):
        return self.r_state.before_step(layer, optimizer, group)

    def after_step(self, layer, note):
        self.r_state.after_step(layer, note)

    def alignment_theory(self, layer, *, mirror=None):
        """Propositions 1-3 with this method's laws of ``B`` (:meth:`b_law`) and ``R_0``
        (:meth:`r0_law`); masked feedback (``masks_R``) marked not applicable. A grouped
        convolution (``B`` block-diagonal) has no theory here: measured only."""
        w = layer.weight
        groups = layer_groups(layer)
        if groups != 1:
            return AlignmentTheory(description=f"grouped convolution ({groups} groups, B "
                                               "block-diagonal): no theory here")
        n_out = int(w.shape[0])
        n_mid = self.n_mid(n_out, groups)
        kind, ensemble, description = self.b_law()
        cls = MaskedPathDynamics if self.masks_R else PathDynamics
        return cls(description=description, kind=kind, n_out=n_out, n_mid=n_mid,
                   ensemble=ensemble, r0=self.r0_law(initial_rt_std(w, n_mid)),
                   expansion_ratio=self.ratio())


@dataclass(frozen=True)
class PFA(_PFAFamily):
    """Product feedback alignment: ``delta_below = R B delta``; see ``pfa.md``.

    ``expansion_ratio`` r: ``n_mid = mid_width(n_out, r, groups)`` (``floor(r n_out)``, at
    least 1, rounded up to a multiple of ``groups``). ``b_init``: 'uniform' (the
    reference's Xavier-uniform with gain ``sqrt((1 + 1/r)/2)``, i.e. variance
    ``1/n_mid``) or 'gaussian' N(0, 1/n_mid). ``impl``, ``state``, ``store_D0``: see
    ``_PFAFamily``.
    """

    name: ClassVar[str] = "pfa"
    size_option: ClassVar[str | None] = "expansion_ratio"
    expansion_ratio: float = 10.0
    b_init: str = "uniform"

    def __post_init__(self):
        check_positive("expansion_ratio", self.expansion_ratio, scalar=True)
        check_choice("b_init", self.b_init, ("uniform", "gaussian"))
        super().__post_init__()

    def n_mid(self, n_out, groups):
        return mid_width(n_out, self.expansion_ratio, groups)

    def draw_B(self, n_mid, n_out, groups, generator, like):
        return _iid_B(n_mid, n_out, groups, generator, like, self.b_init)

    def ratio(self):
        return float(self.expansion_ratio)

    def b_law(self):
        from ...sim import get_ensemble

        return "iid", get_ensemble(self.b_init), self.b_init


@dataclass(frozen=True)
class PFAOrthogonal(_PFAFamily):
    """PFA-o: ``n_mid = n_out`` and ``B`` a fixed Haar-random orthogonal matrix (per group)."""

    name: ClassVar[str] = "pfa-o"

    def draw_B(self, n_mid, n_out, groups, generator, like):
        k = n_out // groups
        z = torch.randn((groups, k, k), generator=generator, dtype=torch.float64)
        return haar_orthogonal_(z).reshape(n_out, k).to(device=like.device, dtype=like.dtype)

    def draw_B_bytes(self, numel, like):
        kept = numel * like.element_size()
        return kept, 3 * 8 * numel - kept  # the float64 draw and its QR factors Q and R

    def b_law(self):
        from ...sim import get_ensemble

        return "orthonormal", get_ensemble("orthogonal"), "B^T B = I"  # Haar: the same law


@dataclass(frozen=True)
class PFAIdentity(_PFAFamily):
    """PFA-id: ``B = I`` (``n_mid = n_out``); this is Kolen-Pollack with ``R^T`` as ``B_KP``."""

    name: ClassVar[str] = "pfa-id"

    def draw_B(self, n_mid, n_out, groups, generator, like):
        k = n_out // groups
        return torch.eye(k, dtype=like.dtype, device=like.device).repeat(groups, 1)

    def draw_B_bytes(self, numel, like):
        return numel * like.element_size(), 0  # nothing drawn

    def b_law(self):
        return "orthonormal", None, "B = I"  # nothing to redraw


@dataclass(frozen=True)
class PFASparse(PFA):
    """Sparse PFA: fixed Bernoulli(``density``) masks on ``B`` and ``R``.

    ``B``'s scale is multiplied by ``1/sqrt(density)``. ``R`` is used (and so receives
    gradient) only through its mask ``pfa_R_mask``, so masked entries stay exactly zero
    under SGD, Adam or any optimiser: the mask is in effect re-applied after every update.
    The exact cancellation of Proposition 1 no longer holds, so only ``state='explicit'``.
    """

    name: ClassVar[str] = "pfa-sparse"
    masks_R: ClassVar[bool] = True
    density: float = 0.5

    def __post_init__(self):
        check_probability("density", self.density)
        if self.state != "explicit":
            raise ValueError(f"`state` must be 'explicit' for 'pfa-sparse' (the masks break "
                             f"Proposition 1's exact cancellation), got {self.state!r}.")
        super().__post_init__()

    @property
    def state_names(self) -> tuple[str, ...]:  # type: ignore[override]
        return super().state_names + ("pfa_R_mask",)

    def draw_B(self, n_mid, n_out, groups, generator, like):
        b = _iid_B(n_mid, n_out, groups, generator, like, self.b_init,
                   1 / math.sqrt(self.density))
        mask = torch.rand(b.shape, generator=generator, dtype=torch.float64) < self.density
        return b * mask.to(device=like.device, dtype=like.dtype)

    def state_bytes(self, layer):
        kept, extra = super().state_bytes(layer)
        w = layer.weight
        return kept + self.n_mid(w.shape[0], layer_groups(layer)) * w[0].numel(), extra  # mask

    def b_law(self):
        from ...sim import Masked, get_ensemble

        d = self.density
        return "iid", Masked(base=get_ensemble(self.b_init), density=d), \
            f"{self.b_init} x Bernoulli({d:g})"

    def r0_law(self, std):
        from ...sim import Masked, get_ensemble

        d = self.density
        # R_0 * mask: the kept entries keep Xavier's SD, the variance is density * std^2
        return InitialLaw(Masked(base=get_ensemble("uniform"), density=d),
                          std * math.sqrt(d), f"uniform x Bernoulli({d:g}), SD {std:.3g}")

    def init_state(self, layer, generator):
        super().init_state(layer, generator)
        r = layer.pfa_R
        mask = torch.rand(r.shape, generator=generator, dtype=torch.float64) < self.density
        set_buffer(layer, "pfa_R_mask", mask.to(r.device))
        with torch.no_grad():
            r.mul_(layer.pfa_R_mask)
