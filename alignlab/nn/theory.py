r"""What theory predicts for a trained layer: the objects a method's hook returns.

Every method says what theory predicts for the alignment of one of its layers through
:meth:`alignlab.nn.methods.Method.alignment_theory` (and every layer-local rule of
:mod:`alignlab.gaitprop` through ``Rule.alignment_theory``). The hook returns one of the
objects below; ``alignlab compare`` asks it, and nothing else, for

* ``theory`` (the name printed in the table's ``theory`` column), ``quantity`` (what is
  compared: ``'feedback'``, the angle between ``W`` and the feedback kernel, layers.csv's
  ``angle_deg`` / ``norm_ratio``; or ``'update'``, the angle between the layer's weight
  update and BP's, ``update_angle_deg`` / ``update_norm_ratio``) and ``description`` (the
  feedback law, or why there is no theory);
* :meth:`~AlignmentTheory.predict`: ``(angle_deg, norm_ratio)`` at a log point from the
  logged scalars of one layers.csv row (and, at the checkpoint, the trained ``W``);
* :meth:`~AlignmentTheory.fixed_point`: the value the theory says the layer tends to
  (NaN where there is none);
* :meth:`~AlignmentTheory.band`: at the checkpoint, the finite-size distribution of the
  prediction (a :class:`Band`: mean, SD, draws and what was redrawn).

==========================  ================================  ===============================
object                      methods                           prediction
==========================  ================================  ===============================
:class:`AlignmentTheory`    DFA, TP, ITP, anything without    measured only (``description``
                            a theory                          says why)
:class:`Exact`              BP (both harnesses)               0 deg, norm ratio 1, SD 0
:class:`PathDynamics`       PFA, PFA-o, PFA-id, KP            Props. 1 + 3 from the logged
                                                              scalars; band: the dynamics
                                                              Monte Carlo (``monte_carlo``)
:class:`MaskedPathDynamics` sparse PFA                        the same, marked not
                                                              applicable
:class:`SignIdentity`       uSF                               the angle of ``s sign(W)``,
                                                              exact given ``W``
:class:`RandomMagnitude`    brSF, frSF                        ``sign(W)|M|`` over ``M`` given
                                                              ``W``; band: ``M`` redrawn
:class:`MirrorFloor`        WM                                the mirror's noise floor
:class:`IndependenceNull`   FA                                90 deg if ``W`` is independent
                                                              of ``B``; band: ``B`` redrawn
:class:`FirstOrderUpdate`   GAIT-prop                         the first-order update angle
                                                              (layers.csv)
==========================  ================================  ===============================

(The table names methods; the objects never do: each method's class builds its own.)
Closed forms come from :mod:`alignlab.theory`, samplers from :mod:`alignlab.sim`, both
imported inside the methods (``alignlab.nn`` imports fast).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = [
    "QUANTITIES",
    "AlignmentTheory",
    "Band",
    "Exact",
    "FirstOrderUpdate",
    "IndependenceNull",
    "InitialLaw",
    "MaskedPathDynamics",
    "MirrorFloor",
    "PathDynamics",
    "RandomMagnitude",
    "SignIdentity",
]

#: quantity -> the layers.csv columns of its measured (angle, norm ratio)
QUANTITIES = {"feedback": ("angle_deg", "norm_ratio"),
              "update": ("update_angle_deg", "update_norm_ratio")}

_NAN2 = (math.nan, math.nan)


@dataclass(frozen=True)
class Band:
    """The finite-size distribution of a prediction at the checkpoint.

    mean_deg, sd_deg : its mean and SD (degrees); SD 0 for an exact prediction.
    n : draws behind them (0: exact or closed form, nothing drawn).
    what : what was drawn and what kept ('B redrawn, trained W kept').
    """

    mean_deg: float
    sd_deg: float
    n: int
    what: str


def _band(stats, what: str) -> Band:
    """A :class:`Band` from a simulator's ``AngleStats`` (mean_deg, sd_deg, n)."""
    return Band(float(stats.mean_deg), float(stats.sd_deg), int(stats.n), what)


def _finite(row: Mapping[str, float], *keys: str) -> bool:
    return all(math.isfinite(row.get(k, math.nan)) for k in keys)


@dataclass(frozen=True)
class AlignmentTheory:
    """Base class, and the answer where no theory exists: "measured only".

    description : the feedback law, or (measured only) why there is no prediction.
    quantity : 'feedback' or 'update' (:data:`QUANTITIES`).
    n_mid : rows of ``B`` where the feedback has a middle layer (PFA family), else None.
    expansion_ratio : the method's expansion ratio (its option; 1 where ``n_mid =
        n_out`` by construction), NaN where it has none.
    """

    theory: ClassVar[str] = "measured only"  # the table's `theory` column
    #: compare runs Propositions 1-3's three Monte Carlos (fixed point, conditional,
    #: dynamics) on this layer; the band is then the dynamics Monte Carlo, and the object
    #: carries the law they draw from (:class:`PathDynamics`' kind, n_mid, ensemble, r0)
    monte_carlo: ClassVar[bool] = False
    description: str = "-"
    quantity: str = "feedback"
    n_mid: int | None = None
    expansion_ratio: float = math.nan

    def __post_init__(self):
        if self.quantity not in QUANTITIES:
            raise ValueError(f"`quantity` must be one of {', '.join(QUANTITIES)}, got "
                             f"{self.quantity!r}.")

    @property
    def kurtosis(self) -> float:
        """Entry kurtosis of ``B`` where it has iid entries, else NaN."""
        return math.nan

    def predict(self, row: Mapping[str, float], weight: Any = None) -> tuple[float, float]:
        """``(angle_deg, norm_ratio)`` predicted at the log point of layers.csv ``row`` (a
        dict of floats). ``weight``: the trained ``W`` (torch, ``(n_out, n_in)``), given at
        the checkpoint's row only; a theory that needs ``W`` is NaN without it."""
        return _NAN2

    def predict_cross(self, row: Mapping[str, float], w0_dot_fb0: float = math.nan) -> float:
        """The angle prediction with every logged inner product used (NaN unless the
        theory has such a refinement: :class:`PathDynamics`' cross term). ``w0_dot_fb0``:
        ``<W_0, F_0>``, the layer's ``w_dot_fb0`` at step 0 (NaN: not logged)."""
        return math.nan

    def fixed_point(self) -> tuple[float, float]:
        """``(angle_deg, norm_ratio)`` the theory says the layer tends to (NaN: none)."""
        return _NAN2

    def band(self, weight, weight0, row: Mapping[str, float], *, n_samples: int,
             seed: int, device: str) -> Band | None:
        """The prediction's finite-size distribution at the checkpoint (``weight``: the
        trained ``W``, ``weight0``: ``W_0`` or None, both float64 ``(n_out, n_in)``;
        ``row``: the checkpoint's layers.csv row), ``n_samples`` draws from ``seed``;
        None where there is none."""
        return None


# --------------------------------------------------------------------------- exact


@dataclass(frozen=True)
class Exact(AlignmentTheory):
    """The feedback (or the update) is BP's: 0 deg, norm ratio 1, no spread."""

    theory: ClassVar[str] = "exact (BP)"

    def predict(self, row, weight=None):
        return 0.0, 1.0

    def fixed_point(self):
        return 0.0, 1.0

    def band(self, weight, weight0, row, *, n_samples, seed, device):
        return Band(0.0, 0.0, 0, "exact: nothing random")


# --------------------------------------------------------------------------- Props. 1-3


@dataclass(frozen=True)
class InitialLaw:
    """The law of a layer's initial feedback weights ``R_0^T`` (``(n_mid, n_in)``, ``W``'s
    layout flattened; KP: the initial kernel, ``n_mid = n_out``), which Proposition 1's
    ``D_0 = R_0^T - B W_0`` carries.

    ensemble : the :mod:`alignlab.sim` ensemble of its iid entries; None when
        ``R_0^T = W_0`` exactly (KP with ``init = 'weight'``).
    std : the entries' SD.
    description : how it prints ('uniform, SD 0.0184', 'W_0').
    """

    ensemble: Any = field(default=None, repr=False)
    std: float = 0.0
    description: str = "-"


@dataclass(frozen=True)
class PathDynamics(AlignmentTheory):
    r"""Propositions 1-3 for feedback that learns from ``grad_W`` (PFA family, KP).

    Proposition 1: ``R_t^T = B W_t + c_t D_0``; the path ``P^T = B^T R^T`` then follows
    from the logged scalars (:mod:`alignlab.theory.dynamics`), and at ``c = 0`` sits at
    Proposition 3's finite-size fixed point.

    kind : 'iid' (``B`` with iid entries) or 'orthonormal' (``B^T B = I``: PFA-o, PFA-id,
        KP's ``B = I``).
    n_out : the layer's output width.
    n_mid : rows of ``B`` (``n_out`` for 'orthonormal').
    ensemble : the :mod:`alignlab.sim` ensemble of ``B`` ('iid': its entries;
        'orthonormal': :class:`alignlab.sim.Orthogonal` for a Haar ``B`` (PFA-o), None for
        ``B = I`` (PFA-id, KP), which is not redrawn).
    description : how the law prints ('uniform', 'uniform x Bernoulli(0.5)', 'B^T B = I',
        'B = I', ...).
    r0 : the law of ``R_0^T`` (:class:`InitialLaw`).
    """

    theory: ClassVar[str] = "Props. 1-3 (path dynamics)"
    monte_carlo: ClassVar[bool] = True
    kind: str = "iid"
    n_out: int = 0
    ensemble: Any = field(default=None, repr=False)
    r0: InitialLaw | None = field(default=None, repr=False)

    @property
    def kurtosis(self) -> float:
        return float(self.ensemble.kurtosis) if self.kind == "iid" else math.nan

    @property
    def m2(self) -> float:
        """``E tr (B^T B)^2 / n_out``: Proposition 2's finite-size value, 1 for 'orthonormal'."""
        if self.kind == "orthonormal":
            return 1.0
        from alignlab.theory import mp_second_moment_finite

        return float(mp_second_moment_finite(self.n_out, self.n_mid, self.kurtosis))

    def fixed_point(self):
        """``(angle_deg, norm_ratio)`` at ``R^T = B W`` (Proposition 3, finite size)."""
        if self.kind == "orthonormal":
            return 0.0, 1.0
        from alignlab.theory import path_alignment_angle_finite, path_norm_ratio_finite

        k4 = self.kurtosis
        return (float(path_alignment_angle_finite(self.n_out, self.n_mid, k4)),
                float(path_norm_ratio_finite(self.n_out, self.n_mid, k4)))

    def _args(self, row):
        keys = ("w_sq", "w_dot_w0", "w0_sq", "fb0_sq", "decay_c")
        if not _finite(row, *keys) or row["w_sq"] <= 0:
            return None
        return tuple(row[k] for k in keys) + (self.m2,)

    def predict(self, row, weight=None):
        from alignlab.theory.dynamics import (
            path_alignment_dynamics_angle,
            path_norm_ratio_dynamics,
        )

        args = self._args(row)
        if args is None:  # no c_t (Adam), or nothing logged
            return _NAN2
        return (float(path_alignment_dynamics_angle(*args)),
                float(path_norm_ratio_dynamics(*args)))

    def predict_cross(self, row, w0_dot_fb0=math.nan):
        """With ``<W_t, F_0>`` in the numerator; where ``B^T B = I`` and ``<W_0, F_0>`` is
        known, also the norm's cross term, which makes it exact there (the path is
        ``X_t + c F_0``); with iid ``B`` the norm keeps the expectation's (its cross term
        ``2 c <M X_t, F_0>`` is not logged)."""
        from alignlab.theory.dynamics import path_alignment_dynamics_angle

        args = self._args(row)
        if args is None or not _finite(row, "w_dot_fb0"):
            return math.nan
        exact = self.kind == "orthonormal" and math.isfinite(w0_dot_fb0)
        return float(path_alignment_dynamics_angle(
            *args, w_dot_fb0=row["w_dot_fb0"], w0_dot_fb0=w0_dot_fb0 if exact else None))


@dataclass(frozen=True)
class MaskedPathDynamics(PathDynamics):
    """:class:`PathDynamics` for masked feedback (sparse PFA): the masks break
    Proposition 1's exact cancellation, so the prediction is computed as if it held and
    marked not applicable; the table's measured - predicted is the deviation."""

    theory: ClassVar[str] = "Props. 1-3, not applicable (masks break Proposition 1)"


# --------------------------------------------------------------------------- fixed feedback


def _ratio_from_scale(scale: float, n_entries: int, row) -> float:
    """``s sqrt(N) / |W|_F``: the norm ratio of a kernel whose entries have mean square
    ``s^2``, from the logged ``|W|_F^2``."""
    if not _finite(row, "w_sq") or row["w_sq"] <= 0:
        return math.nan
    return scale * math.sqrt(n_entries / row["w_sq"])


@dataclass(frozen=True)
class SignIdentity(AlignmentTheory):
    r"""``F = s sign(W)``: the angle is a function of ``W`` (exact),
    :math:`\cos = |W|_1 / (\sqrt N |W|_F)` (:func:`alignlab.theory.sign_concordant_cos`);
    the norm ratio ``s sqrt(N) / |W|_F`` follows from the logged ``|W|^2`` at every log
    point, the angle only where ``W`` is known (the checkpoint).

    scale : ``s``; n_entries : ``N``, the entries of ``W``.
    """

    theory: ClassVar[str] = "sign identity (exact given W)"
    scale: float = 1.0
    n_entries: int = 1

    def _angle(self, weight) -> float:
        from alignlab.theory import sign_concordant_cos

        cos = float(sign_concordant_cos(weight.detach().double().cpu().numpy()))
        return math.degrees(math.acos(min(cos, 1.0)))

    def predict(self, row, weight=None):
        angle = math.nan if weight is None else self._angle(weight)
        return angle, _ratio_from_scale(self.scale, self.n_entries, row)

    def band(self, weight, weight0, row, *, n_samples, seed, device):
        return Band(self._angle(weight), 0.0, 0, "exact given the trained W")


@dataclass(frozen=True)
class RandomMagnitude(AlignmentTheory):
    """``F = sign(W) |M|``, ``M`` iid N(0, s^2) (redrawn every step, or drawn once): the
    angle over ``M`` given the trained ``W`` (:func:`alignlab.theory.
    random_magnitude_angle_given_w`), its band from ``M`` redrawn for that ``W``
    (:func:`alignlab.sim.rules.simulate_random_magnitude`); the norm ratio in mean square,
    ``s sqrt(N) / |W|_F``, at every log point.

    scale : ``s``; n_entries : ``N``.
    """

    theory: ClassVar[str] = "random magnitude given W"
    scale: float = 1.0
    n_entries: int = 1

    def predict(self, row, weight=None):
        ratio = _ratio_from_scale(self.scale, self.n_entries, row)
        if weight is None:
            return math.nan, ratio
        from alignlab.theory import random_magnitude_angle_given_w

        mean, _ = random_magnitude_angle_given_w(weight.detach().double().cpu().numpy())
        return float(mean), ratio

    def band(self, weight, weight0, row, *, n_samples, seed, device):
        from alignlab.sim.rules import simulate_random_magnitude

        stats = simulate_random_magnitude(weight, n_samples=n_samples, seed=seed, device=device)
        return _band(stats, "|M| redrawn, trained W kept")


@dataclass(frozen=True)
class MirrorFloor(AlignmentTheory):
    r"""The weight mirror's stationary feedback: ``W`` (scaled by ``noise_std^2 /
    weight_decay``) plus the sampling noise of ``n_samples`` noise vectors per step
    averaged over ``N_eff`` steps (:func:`alignlab.theory.weight_mirror_floor_angle`,
    :func:`alignlab.theory.weight_mirror_norm_ratio`); the band runs the mirror's own
    recursion on the trained ``W`` (:func:`alignlab.sim.rules.simulate_weight_mirror`).

    n_in : the layer's fan-in (``W`` flattened to ``(n_out, n_in)``); n_samples, lr,
    weight_decay, noise_std : the mirror phase's settings (``[wm]`` of the run's config).
    """

    theory: ClassVar[str] = "mirror noise floor"
    n_in: int = 1
    n_samples: int = 64
    lr: float = 0.1
    weight_decay: float = 1.0
    noise_std: float = 1.0

    def fixed_point(self):
        from alignlab.theory import weight_mirror_floor_angle, weight_mirror_norm_ratio

        return (float(weight_mirror_floor_angle(self.n_in, self.n_samples, self.lr,
                                                self.weight_decay)),
                float(weight_mirror_norm_ratio(self.n_in, self.n_samples, self.lr,
                                               self.weight_decay, self.noise_std)))

    def predict(self, row, weight=None):
        return self.fixed_point()

    def band(self, weight, weight0, row, *, n_samples, seed, device):
        from alignlab.sim.rules import simulate_weight_mirror

        stats = simulate_weight_mirror(weight, n_samples=self.n_samples, lr=self.lr,
                                       weight_decay=self.weight_decay,
                                       noise_std=self.noise_std, n_draws=n_samples,
                                       seed=seed, device=device)
        return _band(stats, "mirror noise redrawn, trained W kept")


@dataclass(frozen=True)
class IndependenceNull(AlignmentTheory):
    """Fixed random feedback ``B``: if ``W`` were independent of ``B`` the angle would be 90
    deg with SD ``degrees(1 / sqrt(N))`` (:func:`alignlab.theory.fa_init_cos_sd`); the band
    redraws ``B`` from its law for the trained ``W`` (:func:`alignlab.sim.rules.
    simulate_fa_null`), so its z says how far training aligned ``W`` with ``B``.

    n_entries : ``N``; ensemble : the law of ``B``'s entries ('uniform', 'gaussian').
    """

    theory: ClassVar[str] = "independence null (W independent of B)"
    n_entries: int = 1
    ensemble: str = "uniform"

    def fixed_point(self):
        from alignlab.theory import fa_init_cos_mean

        return math.degrees(math.acos(float(fa_init_cos_mean(self.n_entries)))), math.nan

    def predict(self, row, weight=None):
        return self.fixed_point()

    def band(self, weight, weight0, row, *, n_samples, seed, device):
        from alignlab.sim.rules import simulate_fa_null

        stats = simulate_fa_null(weight, self.ensemble, n_samples=n_samples, seed=seed,
                                 device=device)
        return _band(stats, "B redrawn, trained W kept")


# --------------------------------------------------------------------------- update angles


@dataclass(frozen=True)
class FirstOrderUpdate(AlignmentTheory):
    """The update angle to BP to first order in the residuals ``W W^T - I``
    (:func:`alignlab.gaitprop.first_order_angles`), logged at every log point as
    layers.csv's ``update_angle_first_order_deg``."""

    theory: ClassVar[str] = "first order in W W^T - I"
    quantity: str = "update"

    def predict(self, row, weight=None):
        return row.get("update_angle_first_order_deg", math.nan), math.nan
