"""Credit-assignment methods: small frozen dataclasses in a name -> class registry.

A method does three things for a converted layer (``FeedbackLinear``/``FeedbackConv2d``):

* ``init_state(layer, generator)``: register its feedback state on the layer. Feedback
  that never learns is a buffer; feedback that learns is an ``nn.Parameter`` whose name
  is listed in ``learned`` (the optimiser helper puts it in the ``'feedback'`` group).
* ``rule_and_state(layer)``: the backward rule (see ``functional.py``) and the tensors it
  needs this step. This is where the *effective feedback* is built.
* ``effective_feedback(layer)``: the kernel that actually multiplies ``delta`` on its way
  down, in W's layout (``(n_out, n_in)``; conv ``(C_out, C_in/groups, kh, kw)``), for the
  alignment metrics; ``None`` when there is no such kernel (DFA).

Feedback kernels are stored in W's layout, i.e. as the transpose of the matrix that
multiplies ``delta``: FA's ``feedback`` is ``B^T`` in the notation ``delta_below = B delta``,
so ``feedback = W`` is BP. PFA stores ``R^T`` (``pfa_R``, shape ``(n_mid, n_in)``; conv
``(C_mid, C_in/groups, kh, kw)``) so that Proposition 1 reads ``pfa_R - B W``.

PFA, PFA-o and PFA-id also have a *factored* state (``state='factored'``): by
Proposition 1, under SGD with ``W``'s hyperparameters ``R_t^T = B W_t + c_t D_0``
exactly, so the layer keeps ``M = B^T B`` and ``Q_0 = B^T D_0`` (buffers) and the scalars
``(c, u)``, advanced after every optimiser step by the hook of
:func:`alignlab.nn.attach_factored_pfa`; the path is ``P^T = M W + c Q_0``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import ClassVar

import torch
from torch import Tensor, nn

from .._validate import check_choice, check_int, check_positive, check_probability
from ..theory.decay import sgd_decay_step
from .functional import (
    DirectFeedback,
    FactoredPathFeedback,
    MatrixFeedback,
    PathFeedback,
    channel_mix,
    mid_contract,
    path_kernel,
)

__all__ = [
    "BP",
    "DFA",
    "FA",
    "KP",
    "METHODS",
    "PFA",
    "PFAIdentity",
    "PFAOrthogonal",
    "PFASparse",
    "Method",
    "SignBatchRandom",
    "SignFixedRandom",
    "SignUniform",
    "WM",
    "get_method",
    "xavier_std",
]


def xavier_std(weight: Tensor) -> float:
    """Xavier (Glorot) SD of a layer: ``sqrt(2 / (fan_in + fan_out))`` (torch's fans)."""
    fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(weight)
    return math.sqrt(2.0 / (fan_in + fan_out))


def _rand(shape, generator, like: Tensor, kind: str, std: float) -> Tensor:
    """iid zero-mean entries with SD ``std``: 'gaussian' or 'uniform' (U(-a, a), a = sqrt 3 std)."""
    if kind == "gaussian":
        t = torch.randn(shape, generator=generator, dtype=torch.float64) * std
    else:
        a = math.sqrt(3.0) * std
        t = (torch.rand(shape, generator=generator, dtype=torch.float64) * 2 - 1) * a
    return t.to(device=like.device, dtype=like.dtype)


def _set_buffer(layer: nn.Module, name: str, value: Tensor) -> None:
    if name in layer._parameters:
        del layer._parameters[name]
    layer.register_buffer(name, value)


def _set_param(layer: nn.Module, name: str, value: Tensor) -> None:
    if name in layer._buffers:
        del layer._buffers[name]
    layer.register_parameter(name, nn.Parameter(value))


@dataclass(frozen=True)
class Method:
    """Base class. Subclasses set ``name`` and override what they need."""

    name: ClassVar[str] = ""
    measure: ClassVar[str] = "weight"  # what `alignment` compares with W: weight | path | none
    learned: ClassVar[tuple[str, ...]] = ()  # names of feedback Parameters trained by the optimiser
    state_names: ClassVar[tuple[str, ...]] = ()  # every tensor init_state registers

    def init_state(self, layer: nn.Module, generator: torch.Generator | None) -> None:
        """Register the feedback state on ``layer`` (default: none)."""

    def rule_and_state(self, layer: nn.Module):
        raise NotImplementedError

    def effective_feedback(self, layer: nn.Module) -> Tensor | None:
        raise NotImplementedError

    def options(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def scalar_state(self, layer: nn.Module) -> dict:
        """Python scalars of the layer's state, saved in its ``state_dict`` extra state."""
        return {}

    def load_scalar_state(self, layer: nn.Module, scalars: dict) -> None:
        """Restore :meth:`scalar_state` (called by ``load_state_dict`` after the tensors)."""

    def restored(self, layer: nn.Module) -> None:
        """The layer was copied or unpickled (``copy.deepcopy``, ``torch.load``)."""


# ----------------------------------------------------------------------------- BP, FA, DFA


@dataclass(frozen=True)
class BP(Method):
    """Backpropagation: sends ``W^T delta`` down."""

    name: ClassVar[str] = "bp"

    def rule_and_state(self, layer):
        return MatrixFeedback(learns=False), (layer.weight,)

    def effective_feedback(self, layer):
        return layer.weight.detach()


@dataclass(frozen=True)
class FA(Method):
    """Feedback alignment: a fixed random kernel ``feedback`` (buffer) replaces ``W``.

    ``init``: 'uniform' (Xavier-uniform on W's shape) or 'gaussian' (Xavier SD).
    """

    name: ClassVar[str] = "fa"
    state_names: ClassVar[tuple[str, ...]] = ("feedback",)
    init: str = "uniform"

    def __post_init__(self):
        check_choice("init", self.init, ("uniform", "gaussian"))

    def init_state(self, layer, generator):
        w = layer.weight
        _set_buffer(layer, "feedback", _rand(w.shape, generator, w, self.init, xavier_std(w)))

    def rule_and_state(self, layer):
        return MatrixFeedback(learns=False), (layer.feedback,)

    def effective_feedback(self, layer):
        return layer.feedback.detach()


@dataclass(frozen=True)
class DFA(Method):
    """Direct feedback alignment: the output error ``e`` reaches every layer directly.

    Each converted layer owns a fixed ``dfa_B`` (``(output_size, n_in)``; conv
    ``(output_size, C_in)``, tiled over space and divided by H*W, as a global average
    pool would) and sends ``e @ dfa_B`` to its input in
    place of ``W^T delta``; autograd then applies the activation derivative (and any
    BatchNorm) on the way to the layer below, which is Nokland's
    ``delta_l = (B_l e) * f'(a_l)``. The output layer's own ``delta`` is ``e`` exactly.
    Entries are N(0, 1/output_size), so ``B_l e`` has the mean square of ``e``.
    ``output_size`` defaults to the ``out_features`` of the model's last ``nn.Linear``.
    """

    name: ClassVar[str] = "dfa"
    measure: ClassVar[str] = "none"
    state_names: ClassVar[tuple[str, ...]] = ("dfa_B",)
    output_size: int | None = None

    def __post_init__(self):
        if self.output_size is not None:
            check_int("output_size", self.output_size)

    def init_state(self, layer, generator):
        if self.output_size is None:
            raise ValueError(
                "`output_size` must be given for 'dfa' (the size of the network output whose "
                "error is broadcast), got None."
            )
        w = layer.weight
        n_in = w.shape[1] * (getattr(layer, "groups", 1) if w.dim() == 4 else 1)
        std = 1.0 / math.sqrt(self.output_size)
        _set_buffer(layer, "dfa_B", _rand((self.output_size, n_in), generator, w, "gaussian", std))

    def rule_and_state(self, layer):
        ctx = getattr(layer, "dfa_context", None)
        if ctx is None:
            raise RuntimeError(
                "this DFA layer has no DFA context: convert the whole model with "
                "alignlab.convert(model, 'dfa') so the output error can be captured."
            )
        return DirectFeedback(ctx), (layer.dfa_B,)

    def effective_feedback(self, layer):
        return None


# ---------------------------------------------------------------------- sign-concordant


@dataclass(frozen=True)
class SignUniform(Method):
    """uSF: ``s * sign(W)`` with ``s`` the layer's Xavier SD, rebuilt every step."""

    name: ClassVar[str] = "usf"

    def rule_and_state(self, layer):
        return MatrixFeedback(learns=False), (self.effective_feedback(layer),)

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

    def rule_and_state(self, layer):
        return MatrixFeedback(learns=False), (self.effective_feedback(layer),)

    def effective_feedback(self, layer):
        w = layer.weight.detach()
        return torch.sign(w) * torch.randn_like(w).abs_().mul_(xavier_std(w))


@dataclass(frozen=True)
class SignFixedRandom(Method):
    """frSF: ``sign(W) * |M|``, ``M`` iid N(0, s^2) drawn once (buffer ``feedback_magnitude``)."""

    name: ClassVar[str] = "frsf"
    state_names: ClassVar[tuple[str, ...]] = ("feedback_magnitude",)

    def init_state(self, layer, generator):
        w = layer.weight
        mag = _rand(w.shape, generator, w, "gaussian", xavier_std(w)).abs()
        _set_buffer(layer, "feedback_magnitude", mag)

    def rule_and_state(self, layer):
        return MatrixFeedback(learns=False), (self.effective_feedback(layer),)

    def effective_feedback(self, layer):
        return torch.sign(layer.weight.detach()) * layer.feedback_magnitude


# ------------------------------------------------------------------------------- KP, WM


def _init_learned_kernel(layer, generator, init):
    w = layer.weight
    if init == "weight":
        value = w.detach().clone()
    else:
        value = _rand(w.shape, generator, w, init, xavier_std(w))
    _set_param(layer, "feedback", value)


@dataclass(frozen=True)
class _LearnedKernel(Method):
    """A learned kernel ``feedback`` in W's layout (Parameter, ``'feedback'`` group).

    ``init``: 'uniform', 'gaussian' (Xavier SD) or 'weight' (a copy of W: BP from step 0).
    Subclasses say whether the backward pass trains it (``grad_from_backward``).
    """

    learned: ClassVar[tuple[str, ...]] = ("feedback",)
    state_names: ClassVar[tuple[str, ...]] = ("feedback",)
    grad_from_backward: ClassVar[bool] = False
    init: str = "uniform"

    def __post_init__(self):
        check_choice("init", self.init, ("uniform", "gaussian", "weight"))

    def init_state(self, layer, generator):
        _init_learned_kernel(layer, generator, self.init)

    def rule_and_state(self, layer):
        return MatrixFeedback(learns=self.grad_from_backward), (layer.feedback,)

    def effective_feedback(self, layer):
        return layer.feedback.detach()


@dataclass(frozen=True)
class KP(_LearnedKernel):
    """Kolen-Pollack: a learned kernel ``feedback`` that receives ``grad_W`` as its gradient.

    With the same optimiser and weight decay as ``W`` (use ``param_groups``),
    ``W - feedback`` decays whatever the data (Proposition 1 with ``B = I``).
    """

    name: ClassVar[str] = "kp"
    grad_from_backward: ClassVar[bool] = True


@dataclass(frozen=True)
class WM(_LearnedKernel):
    """Weight mirror: a kernel ``feedback`` learned only in the mirror phase.

    The backward pass gives it no gradient; :func:`alignlab.nn.mirror_step` injects noise
    into each layer's input and moves ``feedback`` towards ``E[y xi^T] = s^2 W``.
    """

    name: ClassVar[str] = "wm"


# ----------------------------------------------------------------------------------- PFA

_IMPLS = ("auto", "path", "literal")


def _layer_groups(layer) -> int:
    return layer.groups if layer.weight.dim() == 4 else 1


def _pfa_R(layer, n_mid, generator):
    """R^T, Xavier-uniform on its own shape (pfa.md)."""
    w = layer.weight
    shape = (n_mid,) + tuple(w.shape[1:])
    fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(torch.empty(shape, device="meta"))
    std = math.sqrt(2.0 / (fan_in + fan_out))
    return _rand(shape, generator, w, "uniform", std)


_STATES = ("explicit", "factored")


def _check_pfa_state(method) -> None:
    check_choice("state", method.state, _STATES)
    if not isinstance(method.store_D0, bool):
        raise ValueError(f"`store_D0` must be True or False, got {method.store_D0!r}.")
    if method.state == "explicit" and method.store_D0:
        raise ValueError("`store_D0` must be False when state='explicit' (R is stored "
                         "itself), got True.")
    if method.state == "factored" and method.impl != "auto":
        raise ValueError(f"`impl` must be 'auto' when state='factored' (the factored path "
                         f"has its own per-call choice), got {method.impl!r}.")


# Z_0 = M^{-1} Q_0 turns the path into M (W + c Z_0), one BP-priced product cheaper per
# call. Used only when M is well conditioned (r = 10: cond about 3.7; PFA-o/-id: 1), so
# that W + c Z_0 loses nothing of W and M Z_0 = Q_0 to a few ulps; otherwise (r near 1,
# where MP's lower edge reaches 0, or r < 1, M singular) Q_0 is used as it is.
_Z0_MAX_COND = 100.0


def _solve_Z0(layer) -> None:
    """Set the non-persistent buffer ``pfa_Z0`` (or None) from ``pfa_M`` and ``pfa_Q0``."""
    m, q0 = layer.pfa_M, layer.pfa_Q0
    n_out, k = m.shape
    groups = n_out // k
    mg = m.double().reshape(groups, k, k)
    evals = torch.linalg.eigvalsh(mg)
    z0 = None
    if bool((evals[:, 0] > 0).all()) and float((evals[:, -1] / evals[:, 0]).max()) <= _Z0_MAX_COND:
        z = torch.linalg.solve(mg, q0.double().reshape(groups, k, -1))
        # contiguous: LAPACK returns column-major, and W + c Z_0 is on the hot path
        z0 = z.reshape(q0.shape).to(q0.dtype).contiguous()
    layer.register_buffer("pfa_Z0", z0, persistent=False)


def _record_sync(layer) -> None:
    """Remember which ``W`` (object and in-place version) the factored state describes."""
    w = layer.weight
    layer._pfa_sync = (id(w), w._version)


def _check_sync(layer) -> None:
    w = layer.weight
    if getattr(layer, "_pfa_sync", None) != (id(w), w._version):
        raise RuntimeError(
            f"the weight {tuple(w.shape)} of a factored-PFA layer changed without its decay "
            "factor (c, u) advancing, so its path M W + c Q0 no longer equals the explicit "
            "PFA's. Factored PFA must be trained by torch.optim.SGD with its step hook: "
            "build the optimiser with alignlab.nn.make_optimizer(model, 'sgd', ...) or call "
            "alignlab.nn.attach_factored_pfa(optimizer, model) once after building it. "
            "Weights edited by hand (re-initialisation, a second optimiser) cannot be "
            "followed: convert after initialising, or use state='explicit'."
        )


@dataclass(frozen=True)
class _PFABase(Method):
    """Shared by PFA, PFA-o, PFA-id: the options ``impl``, ``state``, ``store_D0``.

    ``impl``: 'auto' (cheaper form per layer and call), 'path' or 'literal'.
    ``state``: 'explicit' (``R^T`` a Parameter trained by any optimiser) or 'factored'
    (Proposition 1's exact closed form: ``R`` is not stored; SGD only, see
    :func:`alignlab.nn.attach_factored_pfa`). ``store_D0`` (factored only) keeps
    ``D_0 = R_0^T - B W_0`` so that ``feedback_weights`` can rebuild ``R^T``.
    """

    measure: ClassVar[str] = "path"
    impl: str = "auto"
    state: str = "explicit"
    store_D0: bool = False

    def __post_init__(self):
        check_choice("impl", self.impl, _IMPLS)
        _check_pfa_state(self)

    @property
    def factored(self) -> bool:
        return self.state == "factored"

    @property
    def learned(self) -> tuple[str, ...]:  # type: ignore[override]
        return () if self.factored else ("pfa_R",)

    @property
    def state_names(self) -> tuple[str, ...]:  # type: ignore[override]
        if not self.factored:
            return ("pfa_B", "pfa_R")
        return ("pfa_B", "pfa_M", "pfa_Q0", "pfa_Z0") + (("pfa_D0",) if self.store_D0 else ())

    def _n_mid(self, n_out: int, groups: int) -> int:
        return n_out

    def _B(self, n_mid, n_out, groups, generator, like):  # (n_mid, n_out/groups)
        raise NotImplementedError

    def init_state(self, layer, generator):
        w = layer.weight
        groups = _layer_groups(layer)
        n_out = w.shape[0]
        n_mid = self._n_mid(n_out, groups)
        b = self._B(n_mid, n_out, groups, generator, w)
        r0 = _pfa_R(layer, n_mid, generator)  # the same draws in both states
        _set_buffer(layer, "pfa_B", b)
        if not self.factored:
            _set_param(layer, "pfa_R", r0)
            return
        # Proposition 1: R_t^T = B W_t + c_t D_0, so P_t^T = B^T R_t^T = M W_t + c_t Q_0.
        # Formed once, in float64.
        b64, w64 = b.double(), w.detach().double()
        d0 = r0.double() - mid_contract(b64, w64, groups)  # (n_mid, ...)
        k = n_out // groups
        bg = b64.reshape(groups, n_mid // groups, k)
        m = torch.bmm(bg.transpose(1, 2), bg).reshape(n_out, k)  # B^T B per group
        _set_buffer(layer, "pfa_M", m.to(w.dtype))
        _set_buffer(layer, "pfa_Q0", path_kernel(b64, d0, groups).to(w.dtype))
        if self.store_D0:
            _set_buffer(layer, "pfa_D0", d0.to(w.dtype))
        _solve_Z0(layer)  # from the stored M, Q_0, so a loaded state_dict gives the same Z_0
        layer._pfa_c, layer._pfa_u = 1.0, 0.0
        _record_sync(layer)

    def _rt(self, layer):
        return layer.pfa_R

    def rule_and_state(self, layer):
        if self.factored:
            if torch.is_grad_enabled():
                _check_sync(layer)
            z0 = layer.pfa_Z0
            solved = z0 is not None
            state = (layer.weight.detach(), layer.pfa_M, z0 if solved else layer.pfa_Q0)
            return FactoredPathFeedback(layer._pfa_c, solved), state
        return PathFeedback(self.impl), (layer.pfa_B, self._rt(layer))

    def effective_feedback(self, layer):
        """The path ``P^T = B^T R^T`` in W's layout (factored: ``M W + c Q_0``)."""
        if self.factored:
            _check_sync(layer)
            mw = channel_mix(layer.pfa_M, layer.weight.detach(), _layer_groups(layer))
            return mw.add_(layer.pfa_Q0, alpha=layer._pfa_c)
        return path_kernel(layer.pfa_B, self._rt(layer).detach(), _layer_groups(layer))

    def feedback_weights(self, layer) -> Tensor:
        """``R^T`` now (``(n_mid, ...)``, W's layout with ``n_mid`` rows).

        Explicit state: ``pfa_R``. Factored: ``B W + c D_0`` (Proposition 1), which needs
        ``store_D0=True``.
        """
        if not self.factored:
            return self._rt(layer).detach()
        if not self.store_D0:
            raise ValueError("`store_D0` must be True to rebuild R from a factored PFA "
                             "layer, got False.")
        _check_sync(layer)
        bw = mid_contract(layer.pfa_B, layer.weight.detach(), _layer_groups(layer))
        return bw.add_(layer.pfa_D0, alpha=layer._pfa_c)

    def advance(self, layer, lr: float, weight_decay: float, momentum: float,
                has_buffer: bool) -> None:
        """One ``torch.optim.SGD`` step of ``(c, u)`` (factored state; see ``optim.py``).

        The recursion of :func:`alignlab.theory.decay_factor_schedule`, continued from the
        layer's current ``(c, u)``, with torch's buffer rules: the buffer ``v = u D_0`` is
        created as ``v = g`` on the first momentum step and left alone by steps with
        momentum 0; the gradient of ``D`` is ``kappa c D_0``.
        """
        layer._pfa_c, layer._pfa_u = sgd_decay_step(
            layer._pfa_c, layer._pfa_u, lr, weight_decay, momentum, has_buffer
        )

    def scalar_state(self, layer):
        return {"c": layer._pfa_c, "u": layer._pfa_u} if self.factored else {}

    def load_scalar_state(self, layer, scalars):
        if self.factored:
            layer._pfa_c, layer._pfa_u = float(scalars["c"]), float(scalars["u"])
            _solve_Z0(layer)  # not saved: derived from the loaded M and Q_0
            _record_sync(layer)

    def restored(self, layer):
        if self.factored:
            _record_sync(layer)


def _iid_B(n_mid, n_out, groups, generator, like, kind, scale=1.0):
    # per group a (n_mid/g, n_out/g) block with entry variance 1/(n_mid/g): E[B^T B] = I
    std = scale / math.sqrt(n_mid // groups)
    return _rand((n_mid, n_out // groups), generator, like, kind, std)


@dataclass(frozen=True)
class PFA(_PFABase):
    """Product feedback alignment: ``delta_below = R B delta``; see ``pfa.md``.

    ``expansion_ratio`` r: ``n_mid = round(r * n_out)`` (conv: rounded up to a multiple
    of ``groups``). ``b_init``: 'uniform' (the reference's Xavier-uniform with gain
    ``sqrt((1 + 1/r)/2)``, i.e. variance ``1/n_mid``) or 'gaussian' N(0, 1/n_mid).
    ``impl``, ``state``, ``store_D0``: see ``_PFABase``.
    """

    name: ClassVar[str] = "pfa"
    expansion_ratio: float = 10.0
    b_init: str = "uniform"

    def __post_init__(self):
        check_positive("expansion_ratio", self.expansion_ratio)
        check_choice("b_init", self.b_init, ("uniform", "gaussian"))
        super().__post_init__()

    def _n_mid(self, n_out, groups):
        n_mid = max(1, round(self.expansion_ratio * n_out))
        return groups * math.ceil(n_mid / groups)

    def _B(self, n_mid, n_out, groups, generator, like):
        return _iid_B(n_mid, n_out, groups, generator, like, self.b_init)


@dataclass(frozen=True)
class PFAOrthogonal(_PFABase):
    """PFA-o: ``n_mid = n_out`` and ``B`` a fixed Haar-random orthogonal matrix (per group)."""

    name: ClassVar[str] = "pfa-o"

    def _B(self, n_mid, n_out, groups, generator, like):
        k = n_out // groups
        blocks = []
        for _ in range(groups):
            z = torch.randn(k, k, generator=generator, dtype=torch.float64)
            q, r = torch.linalg.qr(z)
            blocks.append(q * torch.sign(torch.diagonal(r)))  # Haar (Mezzadri's sign fix)
        return torch.cat(blocks, 0).to(device=like.device, dtype=like.dtype)


@dataclass(frozen=True)
class PFAIdentity(_PFABase):
    """PFA-id: ``B = I`` (``n_mid = n_out``); this is Kolen-Pollack with ``R^T`` as ``B_KP``."""

    name: ClassVar[str] = "pfa-id"

    def _B(self, n_mid, n_out, groups, generator, like):
        k = n_out // groups
        eye = torch.eye(k, dtype=like.dtype, device=like.device)
        return eye.repeat(groups, 1)


@dataclass(frozen=True)
class PFASparse(PFA):
    """Sparse PFA: fixed Bernoulli(``density``) masks on ``B`` and ``R``.

    ``B``'s scale is multiplied by ``1/sqrt(density)``. ``R`` is used (and so receives
    gradient) only through its mask, so masked entries stay exactly zero under SGD, Adam
    or any optimiser: the mask is in effect re-applied after every update. The exact
    cancellation of Proposition 1 no longer holds.
    """

    name: ClassVar[str] = "pfa-sparse"
    state_names: ClassVar[tuple[str, ...]] = ("pfa_B", "pfa_R", "pfa_R_mask")
    density: float = 0.5

    def __post_init__(self):
        super().__post_init__()
        check_probability("density", self.density)
        if self.state != "explicit":
            raise ValueError(f"`state` must be 'explicit' for 'pfa-sparse' (the masks break "
                             f"Proposition 1's exact cancellation), got {self.state!r}.")

    def _B(self, n_mid, n_out, groups, generator, like):
        b = _iid_B(n_mid, n_out, groups, generator, like, self.b_init, 1 / math.sqrt(self.density))
        mask = torch.rand(b.shape, generator=generator, dtype=torch.float64) < self.density
        return b * mask.to(device=like.device, dtype=like.dtype)

    def init_state(self, layer, generator):
        super().init_state(layer, generator)
        r = layer.pfa_R
        mask = torch.rand(r.shape, generator=generator, dtype=torch.float64) < self.density
        _set_buffer(layer, "pfa_R_mask", mask.to(r.device))
        with torch.no_grad():
            r.mul_(layer.pfa_R_mask)

    def _rt(self, layer):
        return layer.pfa_R * layer.pfa_R_mask


METHODS: dict[str, type[Method]] = {
    cls.name: cls
    for cls in (
        BP, FA, DFA, SignUniform, SignBatchRandom, SignFixedRandom, KP, WM,
        PFA, PFAOrthogonal, PFAIdentity, PFASparse,
    )
}


def get_method(method: str | Method, **options) -> Method:
    """A method instance from its name (``METHODS``) and options, or a ready instance.

    Unknown names or options raise ``ValueError`` listing the valid ones.
    """
    if isinstance(method, Method):
        if options:
            raise ValueError(
                f"`options` must be empty when `method` is an instance, got {sorted(options)}."
            )
        return method
    check_choice("method", method, METHODS)
    cls = METHODS[method]
    valid = sorted(f.name for f in fields(cls))
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(
            f"`{unknown[0]}` is not an option of method {method!r}; valid options: "
            f"{', '.join(valid) if valid else '(none)'}."
        )
    return cls(**options)
