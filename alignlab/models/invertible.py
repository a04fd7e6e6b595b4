"""Invertible networks for GAIT-prop and target propagation (Ahmad et al. 2020).

Every layer is square, ``a_l = W_l h_{l-1}[:n_l] + b_l``, ``h_l = f(a_l)``, with ``W_l`` of
shape ``(n_l, n_l)`` (torch's ``(out, in)`` layout) and ``f`` leaky-ReLU (slope 0.1 by
default) at **every** layer, the output included (the original code's choice). Widths
never grow: layer ``l`` reads the *first* ``n_l`` units of the layer below, so

* the **square** network (:class:`InvertibleSquare`, the original ``SquareInvNet``) has
  ``n_l = n`` everywhere (784: the input size of MNIST-like data), ``hidden_layers``
  hidden layers and a square ``n x n`` output layer;
* the **tower** (:class:`InvertibleTower`, the original ``TowerInvNet``) shrinks,
  e.g. ``(784, 784, 500, 200, 10)``: nothing non-square is ever inverted; the units a
  layer does not read are carried down with their forward values as targets.

The class is read from the first ``num_classes`` output units (``forward`` returns them, so
``model(x).argmax(1)`` is the prediction); the other output units are targeted at their own
forward values (:meth:`InvertibleNet.output_target`) and so carry no error.

Inverses are exact and cheap: each layer keeps one LU factorisation of ``W_l``
(``torch.linalg.lu_factor``), made when the weight has changed since the last one (the
tensor's version counter, bumped by every in-place optimiser step, says so) and reused for
every inverse application (``lu_solve``; nothing is ever inverted explicitly). Each
factorisation also estimates the 1-norm condition number (Hager-Higham, four small solves)
and refuses a singular or ill-conditioned weight with a one-line ``ValueError`` that
reports the condition number.

Float64 by default: GAIT-prop multiplies layer ``l``'s error by ``gamma^-(L-l)``, which
amplifies rounding (see ``docs/gaitprop.md``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._linalg import haar_orthogonal_
from .._rng import torch_generator
from .._validate import check_choice, check_int, check_positive

__all__ = [
    "ACTIVATIONS", "Activities", "InvertibleLinear", "InvertibleNet", "InvertibleSquare",
    "InvertibleTower", "LeakyReLU",
]


@dataclass(frozen=True)
class LeakyReLU:
    """``f(a) = a`` for ``a >= 0``, ``slope * a`` below: leaky-ReLU (0 < slope < 1), the
    identity (slope 1: ``'linear'``) or ReLU (slope 0: ``'relu'``, not invertible).

    ``f'(a)`` is 1 for ``a >= 0`` and ``slope`` below (the original code's convention at 0);
    ``f^{-1}(h) = h`` for ``h >= 0`` and ``h / slope`` below.
    """

    slope: float = 0.1

    @property
    def invertible(self) -> bool:
        return self.slope > 0

    def __call__(self, a: Tensor) -> Tensor:
        return a if self.slope == 1 else F.leaky_relu(a, self.slope)

    def derivative(self, a: Tensor) -> Tensor:
        """``f'(a)``, from the pre-activation ``a``."""
        one = torch.ones((), dtype=a.dtype, device=a.device)
        return torch.where(a >= 0, one, one * self.slope)

    def inverse(self, h: Tensor) -> Tensor:
        """``f^{-1}(h)`` (only for ``slope > 0``; callers check :attr:`invertible`)."""
        return h if self.slope == 1 else torch.where(h >= 0, h, h / self.slope)

    def inverse_step(self, h: Tensor, nudge: Tensor, scale: float = 1.0
                     ) -> tuple[Tensor, Tensor]:
        """``(f^{-1}(h + scale * nudge) - f^{-1}(h)) / scale``, exact elementwise without
        forming ``h + scale * nudge`` (only its sign is used), and the mask of the units
        whose nudge crosses the kink (``h + scale * nudge`` on the other side of 0 from
        ``h``). Only for ``slope > 0``.

        With ``s_old`` / ``s_new`` the slopes on the sides of ``h`` / ``h + scale * nudge``:
        ``nudge / s_new + h (1/s_new - 1/s_old) / scale``. Where no kink is crossed the second
        term is 0 and the result is ``nudge / s_new``, whatever ``scale``; where one is,
        ``|h| < scale |nudge|``, so every term is of the nudge's size: the rounding is
        relative to the nudge, not to ``h`` (``docs/gaitprop.md``)."""
        if self.slope == 1:
            return nudge, torch.zeros_like(h, dtype=torch.bool)
        old, new = h >= 0, h + scale * nudge >= 0  # (B, n): the sides of the kink
        crossed = old != new
        step = torch.where(new, nudge, nudge / self.slope)
        # crossing up: h / s_new - h / s_old = h - h / slope; down: h / slope - h
        jump = torch.where(new, h - h / self.slope, h / self.slope - h) / scale
        return torch.where(crossed, step + jump, step), crossed


# activation name -> slope (None: the model's ``slope`` option)
ACTIVATIONS: dict[str, float | None] = {"leaky_relu": None, "linear": 1.0, "relu": 0.0}


class Activities(NamedTuple):
    """One forward pass: ``h[0]`` the (flattened) input, ``h[l]`` and ``a[l - 1]`` the
    activity and pre-activation of layer ``l = 1..L`` (each ``(B, n_l)``)."""

    h: list[Tensor]
    a: list[Tensor]


def _eps(dtype: torch.dtype) -> float:
    return float(torch.finfo(dtype).eps)


class InvertibleLinear(nn.Module):
    """``a = W h + b`` with ``W`` square ``(n, n)``, and exact inverse solves through a cached
    LU factorisation (refreshed only when ``W`` has changed).

    Attributes
    ----------
    n_factorisations : int
        How many LU factorisations this layer has made (tests count them).
    condition_estimate : float
        The 1-norm condition number estimated at the last factorisation (NaN before one).
    max_condition : float or None
        A factorisation whose condition estimate exceeds this raises ``ValueError``;
        ``None``: ``1e-3 / eps`` of the weight's dtype (4.5e12 in float64, 8.4e3 in
        float32: beyond it a solve's relative error bound, ``cond * eps``, passes 0.1%).
    """

    def __init__(self, n: int, *, dtype: torch.dtype = torch.float64, device=None,
                 name: str = "layer"):
        super().__init__()
        self.n = n
        self.name = name  # how error messages call it
        self.weight = nn.Parameter(torch.empty(n, n, dtype=dtype, device=device))
        self.bias = nn.Parameter(torch.zeros(n, dtype=dtype, device=device))
        self.max_condition: float | None = None
        self.n_factorisations = 0
        self.condition_estimate = float("nan")
        self._lu: tuple[Tensor, Tensor] | None = None
        self._lu_key: tuple | None = None

    def extra_repr(self) -> str:
        return f"n={self.n}"

    def forward(self, h: Tensor) -> Tensor:
        """Pre-activation ``a = h W^T + b`` for rows ``h`` ``(B, n)``."""
        return F.linear(h, self.weight, self.bias)

    # ---- the inverse ------------------------------------------------------------------
    def _key(self) -> tuple:
        w = self.weight
        return (w.data_ptr(), w._version, w.dtype, w.device, tuple(w.shape))

    def factors(self) -> tuple[Tensor, Tensor]:
        """``(LU, pivots)`` of the current ``W``: factorised now if ``W`` changed since the
        last call (one factorisation per update), else the cached pair."""
        key = self._key()
        if self._lu is None or self._lu_key != key:
            self._lu = self._factorise()
            self._lu_key = key
        return self._lu

    def _factorise(self) -> tuple[Tensor, Tensor]:
        w = self.weight.detach()
        if w.ndim != 2 or w.shape[0] != w.shape[1]:
            raise ValueError(f"`{self.name}.weight` must be square (n x n) to be inverted, got "
                             f"shape {tuple(w.shape)}.")
        lu, piv, info = torch.linalg.lu_factor_ex(w)
        self.n_factorisations += 1
        singular = int(info) > 0  # an exactly zero pivot
        cond = math.inf if singular else _condition_1norm(w, lu, piv)
        self.condition_estimate = cond
        limit = self.max_condition if self.max_condition is not None else 1e-3 / _eps(w.dtype)
        if cond <= limit:
            return lu, piv
        if not bool(torch.isfinite(w).all()):  # NaN/inf weights: a diverged run, not a
            return lu, piv  # conditioning problem (the loss reports it)
        exact = math.inf if singular else float(torch.linalg.cond(w))
        kind = "a singular" if singular or not math.isfinite(exact) else "an ill-conditioned"
        raise ValueError(
            f"`{self.name}.weight` must be well conditioned to be inverted, got {kind} "
            f"matrix: condition number {exact:.3g} (2-norm; 1-norm estimate {cond:.3g}) > "
            f"{limit:.3g} (max_condition for {str(w.dtype).removeprefix('torch.')}).")

    def solve(self, z: Tensor) -> Tensor:
        """Rows ``W^{-1} z_b`` for ``z`` ``(B, n)``: ``Y W^T = Z``, one triangular solve pair
        with the cached factors (no inverse is formed)."""
        lu, piv = self.factors()
        return torch.linalg.lu_solve(lu, piv, z, left=False, adjoint=True)


def _condition_1norm(w: Tensor, lu: Tensor, piv: Tensor) -> float:
    """``|W|_1 * est(|W^{-1}|_1)``: Hager's estimator (as LAPACK's ``gecon``), two steps,
    plus Higham's alternating test vector; a lower bound, in practice within a factor ~3.
    Costs a few solves with single vectors (``O(n^2)`` each) next to the ``O(n^3)`` LU."""
    n = w.shape[0]
    i = torch.arange(n, dtype=w.dtype, device=w.device)
    alt = torch.where(i % 2 == 0, 1.0, -1.0).to(w.dtype) * (1 + i / max(n - 1, 1))
    x = torch.stack([torch.full_like(i, 1.0 / n), alt], dim=1)  # (n, 2)
    y = torch.linalg.lu_solve(lu, piv, x)  # W^{-1} x
    est = torch.maximum(y[:, 0].abs().sum(), 2 * y[:, 1].abs().sum() / (3 * n))
    v = y[:, :1]
    for _ in range(2):
        xi = torch.where(v >= 0, 1.0, -1.0).to(w.dtype)
        z = torch.linalg.lu_solve(lu, piv, xi, adjoint=True)  # W^{-T} sign(y)
        e = torch.zeros_like(xi)
        e[z.abs().argmax()] = 1.0
        v = torch.linalg.lu_solve(lu, piv, e)
        est = torch.maximum(est, v.abs().sum())
    return float(w.abs().sum(0).max() * est)


class InvertibleNet(nn.Module):
    """A stack of square invertible layers with widths ``widths = (n_0, n_1, ..., n_L)``
    (non-increasing; ``n_0`` is the input size): layer ``l`` maps the first ``n_l`` units
    of ``h_{l-1}`` to ``h_l = f(W_l h_{l-1}[:n_l] + b_l)``, ``f`` at every layer.

    Parameters
    ----------
    widths
        ``(n_0, ..., n_L)``; ``n_L >= num_classes``.
    num_classes
        The class is read from the first ``num_classes`` output units.
    activation
        ``'leaky_relu'`` (slope ``slope``), ``'linear'`` or ``'relu'`` (BP only: not
        invertible).
    slope
        Leaky-ReLU's slope below zero (0.1 in the original).
    init
        ``'haar'``: Haar-orthogonal weights (the original, every rule); ``'gaussian'``: iid
        ``N(0, 1/n)`` (Xavier-normal for a square layer). Biases start at 0.
    rng
        ``None`` (torch's global generator), an int seed or a ``torch.Generator``.
    dtype
        Parameter dtype (float64: see the module docstring).
    """

    #: Trained by layer-local rules (``alignlab.gaitprop``), not by ``alignlab.convert``.
    learns_by_targets: ClassVar[bool] = True

    def __init__(self, widths: Sequence[int] = (784,) * 6, num_classes: int = 10,
                 activation: str = "leaky_relu", slope: float = 0.1, init: str = "haar",
                 rng: int | torch.Generator | None = None, dtype: torch.dtype = torch.float64):
        super().__init__()
        if isinstance(widths, str | bytes) or not isinstance(widths, Sequence):
            raise ValueError(f"`widths` must be a sequence of layer widths, got {widths!r}.")
        widths = tuple(check_int("widths", w) for w in widths)
        if len(widths) < 2:
            raise ValueError(f"`widths` must have at least 2 entries (input, output), got "
                             f"{widths!r}.")
        if any(b > a for a, b in zip(widths, widths[1:], strict=False)):
            raise ValueError(f"`widths` must be non-increasing (each layer is square on the "
                             f"first units of the layer below), got {widths!r}.")
        num_classes = check_int("num_classes", num_classes)
        if num_classes > widths[-1]:
            raise ValueError(f"`num_classes` must be <= the output width {widths[-1]}, got "
                             f"{num_classes}.")
        check_choice("activation", activation, ACTIVATIONS)
        fixed = ACTIVATIONS[activation]
        if fixed is None:
            slope = float(check_positive("slope", slope, allow_zero=True, scalar=True))
        check_choice("init", init, ("haar", "gaussian"))
        self.widths = widths
        self.num_classes = num_classes
        self.activation_name = activation
        self.activation = LeakyReLU(fixed if fixed is not None else slope)
        self.init = init
        self.layers = nn.ModuleList(
            InvertibleLinear(n, dtype=dtype, name=f"layers[{i}]")
            for i, n in enumerate(widths[1:]))
        self.reset_parameters(rng)

    @torch.no_grad()
    def reset_parameters(self, rng: int | torch.Generator | None = None) -> None:
        """Redraw every weight (``init``) and zero the biases."""
        gen = torch_generator(rng)
        for layer in self.layers:
            w = layer.weight
            layer.bias.zero_()
            if w.device.type == "meta":  # config validation builds on meta: nothing to draw
                continue
            noise = torch.randn(w.shape, dtype=w.dtype, generator=gen).to(w.device)
            if self.init == "haar":
                haar_orthogonal_(noise)
            else:
                noise /= w.shape[1] ** 0.5
            w.copy_(noise)

    def extra_repr(self) -> str:
        return (f"widths={self.widths}, num_classes={self.num_classes}, "
                f"activation={self.activation}")

    @property
    def depth(self) -> int:
        """``L``, the number of weight layers (hidden layers + the output layer)."""
        return len(self.layers)

    # ---- forward ----------------------------------------------------------------------
    def activities(self, x: Tensor) -> Activities:
        """Every layer's activity and pre-activation (no graph is built)."""
        h = x.flatten(1)
        if h.shape[1] != self.widths[0]:
            raise ValueError(f"`x` must have {self.widths[0]} features per example (the "
                             f"network's input width), got {h.shape[1]}.")
        hs, pre = [h], []
        f = self.activation
        with torch.no_grad():
            for layer in self.layers:
                a = layer(hs[-1][:, :layer.n])
                pre.append(a)
                hs.append(f(a))
        return Activities(hs, pre)

    def forward(self, x: Tensor) -> Tensor:
        """The class read-out: the first ``num_classes`` output units ``(B, num_classes)``
        (differentiable: autograd gives BP on this network)."""
        h = x.flatten(1)
        if h.shape[1] != self.widths[0]:
            raise ValueError(f"`x` must have {self.widths[0]} features per example (the "
                             f"network's input width), got {h.shape[1]}.")
        return self.output(h)[:, :self.num_classes]

    def output(self, x: Tensor) -> Tensor:
        """All ``n_L`` output units (differentiable)."""
        h = x.flatten(1)
        for layer in self.layers:
            h = self.activation(layer(h[:, :layer.n]))
        return h

    def output_target(self, h_out: Tensor, y: Tensor) -> Tensor:
        """The output target ``(B, n_L)``: one-hot ``y`` on the first ``num_classes`` units,
        the other units at their forward values ``h_out`` (so they carry no error).
        ``y``: class indices ``(B,)``, or float class targets ``(B, num_classes)`` or full
        targets ``(B, n_L)``."""
        if not y.is_floating_point():
            t = F.one_hot(y, self.num_classes).to(h_out.dtype)
        else:
            t = y.to(h_out.dtype)
        if t.shape[1] == h_out.shape[1]:
            return t
        return torch.cat([t, h_out[:, t.shape[1]:]], dim=1)

    # ---- inverses ---------------------------------------------------------------------
    def invert_layer(self, index: int, h: Tensor) -> Tensor:
        """``g_l(h) = W_l^{-1} (f^{-1}(h) - b_l)`` for layer ``index`` (0-based): the
        ``n_l`` units of ``h_{l-1}`` the layer reads that would produce ``h``."""
        layer = self.layers[index]
        return layer.solve(self.activation.inverse(h) - layer.bias.detach())

    def refresh_inverses(self, first: int = 1) -> None:
        """Factorise (if changed) every layer from ``first`` on (layer 0's inverse is never
        needed: no rule uses a target for the input)."""
        for layer in self.layers[first:]:
            layer.factors()

    def set_max_condition(self, value: float | None) -> None:
        """The condition limit of every layer (``None``: ``1e-3 / eps``)."""
        if value is not None:
            value = float(check_positive("max_condition", value, scalar=True))
        for layer in self.layers:
            layer.max_condition = value


class InvertibleSquare(InvertibleNet):
    """The original ``SquareInvNet``: ``hidden_layers`` square hidden layers of ``width``
    units and a square ``width x width`` output layer (``hidden_layers + 1`` weight layers),
    leaky-ReLU everywhere, class from the first ``num_classes`` outputs. Float64.
    (Registered as model ``'invertible'``.)"""

    def __init__(self, width: int = 784, hidden_layers: int = 4, num_classes: int = 10,
                 activation: str = "leaky_relu", slope: float = 0.1, init: str = "haar", *,
                 rng: int | torch.Generator | None = None):
        width = check_int("width", width)
        hidden_layers = check_int("hidden_layers", hidden_layers, minimum=0)
        super().__init__((width,) * (hidden_layers + 2), num_classes=num_classes,
                         activation=activation, slope=slope, init=init, rng=rng)


class InvertibleTower(InvertibleNet):
    """The original ``TowerInvNet``: shrinking widths ``(784, 784, 500, 200, 10)``, each
    layer square on the first units of the layer below. Float64. (Registered as model
    ``'invertible-tower'``.)"""

    def __init__(self, widths: Sequence[int] = (784, 784, 500, 200, 10), num_classes: int = 10,
                 activation: str = "leaky_relu", slope: float = 0.1, init: str = "haar", *,
                 rng: int | torch.Generator | None = None):
        super().__init__(widths, num_classes=num_classes, activation=activation, slope=slope,
                         init=init, rng=rng)
