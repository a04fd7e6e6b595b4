r"""Moments of one entry of ``B`` (or ``W``) per ensemble: the one table.

Three scale-free moments of an iid entry enter the closed forms: the kurtosis
``E b^4 / (E b^2)^2`` (the finite-size ``m2`` of Proposition 2 and everything built on
it), ``E|b| / sqrt(E b^2)`` (sign-concordant feedback) and ``E|b|^3 / (E b^2)^{3/2}``
(the finite-size spread of the sign-concordant angle). :data:`ENTRY_MOMENTS` holds
them for every iid ensemble; ``alignlab.sim``'s ensembles read their ``kurtosis`` from
it, so the simulator and the theory cannot disagree.

================  =============================  ========  ==================  ==================
ensemble          law of one entry               kurtosis  E|b|/sqrt(E b^2)    E|b|^3/(E b^2)^1.5
================  =============================  ========  ==================  ==================
``gaussian``      N(0, s^2)                      3         sqrt(2/pi)          2 sqrt(2/pi)
``uniform``       U(-c, c) (Xavier-uniform)      9/5       sqrt(3)/2           3 sqrt(3)/4
``rademacher``    +-s                            1         1                   1
``sparse``        Bernoulli(d) mask x N(0, s^2)  3/d       sqrt(2d/pi)         2 sqrt(2/(pi d))
================  =============================  ========  ==================  ==================

A masked law ``b = m x`` (``m ~ Bernoulli(d)`` independent of ``x``) has
``E b^k = d E x^k``, so its kurtosis is ``k_x / d``, its absolute-moment ratio
``sqrt(d)`` times that of ``x`` and its third absolute ratio ``x``'s divided by
``sqrt(d)``: the table stores ``x``'s moments and ``masked=True``.
'orthogonal' (Haar) is not in the table: its entries are dependent (and its
``B^T B = I`` exactly), so no entry moment applies.

The package's default law of ``B`` is :data:`DEFAULT_ENSEMBLE` (``'uniform'``, the
paper's Xavier-uniform): the theory's default ``kurtosis`` is its 9/5
(:data:`DEFAULT_KURTOSIS`), and the simulators, the PFA layers, the CLI and Figure 3
default to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from types import MappingProxyType

from alignlab._validate import check_choice, check_probability

__all__ = [
    "DEFAULT_ENSEMBLE",
    "DEFAULT_KURTOSIS",
    "ENTRY_MOMENTS",
    "EntryMoments",
    "abs_moment_ratio",
    "entry_kurtosis",
    "entry_moments",
]


@dataclass(frozen=True)
class EntryMoments:
    """Scale-free moments of one iid entry.

    kurtosis : ``E b^4 / (E b^2)^2``.
    abs_ratio : ``E|b| / sqrt(E b^2)``.
    abs_third : ``E|b|^3 / (E b^2)^{3/2}``.
    masked : the ensemble is a Bernoulli(``density``) mask times this law;
        :meth:`at` gives the moments at a density.
    """

    kurtosis: float
    abs_ratio: float
    abs_third: float
    masked: bool = False

    def at(self, density: float) -> EntryMoments:
        """The moments of the law masked at ``density`` (itself when not ``masked``)."""
        if not self.masked:
            return self
        return replace(self, kurtosis=self.kurtosis / density,
                       abs_ratio=self.abs_ratio * math.sqrt(density),
                       abs_third=self.abs_third / math.sqrt(density), masked=False)


ENTRY_MOMENTS = MappingProxyType({
    # N(0, 1): E|x| = sqrt(2/pi), E|x|^3 = 2 sqrt(2/pi)
    "gaussian": EntryMoments(kurtosis=3.0, abs_ratio=math.sqrt(2.0 / math.pi),
                             abs_third=2.0 * math.sqrt(2.0 / math.pi)),
    # U(-1, 1): E u^2 = 1/3, E u^4 = 1/5, E|u| = 1/2, E|u|^3 = 1/4
    "uniform": EntryMoments(kurtosis=9.0 / 5.0, abs_ratio=math.sqrt(3.0) / 2.0,
                            abs_third=3.0 * math.sqrt(3.0) / 4.0),
    "rademacher": EntryMoments(kurtosis=1.0, abs_ratio=1.0, abs_third=1.0),
    "sparse": EntryMoments(kurtosis=3.0, abs_ratio=math.sqrt(2.0 / math.pi),
                           abs_third=2.0 * math.sqrt(2.0 / math.pi), masked=True),
})

DEFAULT_ENSEMBLE = "uniform"
DEFAULT_KURTOSIS = ENTRY_MOMENTS[DEFAULT_ENSEMBLE].kurtosis  # 9/5


def entry_moments(ensemble: str, density: float = 1.0, *, name: str = "ensemble",
                  density_name: str = "density") -> EntryMoments:
    """The :class:`EntryMoments` of ``ensemble`` (at ``density`` for 'sparse'), validated;
    errors name the arguments ``name`` and ``density_name``."""
    if ensemble == "orthogonal":
        raise ValueError(
            f"`{name}` must be an iid ensemble: 'orthogonal' (Haar) has dependent entries, "
            "so no entry moment applies (its B^T B is I exactly); got 'orthogonal'."
        )
    check_choice(name, ensemble, ENTRY_MOMENTS)
    d = check_probability(density_name, density)
    moments = ENTRY_MOMENTS[ensemble]
    if not moments.masked and d != 1.0:
        raise ValueError(f"`{density_name}` applies only to a sparse (masked) {name}, "
                         f"got {density!r}.")
    return moments.at(d)


def entry_kurtosis(ensemble: str, density: float = 1.0) -> float:
    r"""Kurtosis ``E[b^4] / E[b^2]^2`` of one iid entry (exact; from :data:`ENTRY_MOMENTS`).

    Gaussian 3, uniform (Xavier-uniform) 9/5, Rademacher 1, sparse (Bernoulli(``d``)
    mask times a Gaussian; any rescaling cancels) :math:`3d/d^2 = 3/d`.

    Parameters
    ----------
    ensemble : {'gaussian', 'uniform', 'rademacher', 'sparse'}
        ``'orthogonal'`` (Haar) is rejected: its entries are not independent.
    density : float, optional
        ``d`` in (0, 1], only for ``'sparse'``.
    """
    return entry_moments(ensemble, density).kurtosis


def abs_moment_ratio(ensemble: str, density: float = 1.0) -> float:
    r"""``E|w| / sqrt(E w^2)`` for one iid entry (exact; from :data:`ENTRY_MOMENTS`).

    Gaussian :math:`\sqrt{2/\pi}`, uniform :math:`\sqrt{3}/2`, Rademacher 1, sparse
    (Bernoulli(d) mask times Gaussian) :math:`\sqrt{2d/\pi}`.

    Parameters
    ----------
    ensemble : {'gaussian', 'uniform', 'rademacher', 'sparse'}
        ``'orthogonal'`` is rejected (entries not independent).
    density : float, optional
        ``d`` in (0, 1], only for ``'sparse'``.
    """
    return entry_moments(ensemble, density).abs_ratio
