"""Monte Carlos around a trained layer: the finite-size distribution of an alignment angle.

:func:`alignlab.sim.simulate_path_alignment` draws ``B`` and ``W`` from their laws; a
trained layer has one ``W`` that training chose. The simulators here answer what the angle
would be had training left that ``W`` independent of the random feedback, each mirroring
its theory function and returning an :class:`AngleStats`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from alignlab.sim.estimators import estimate

__all__ = ["AngleStats"]


@dataclass(frozen=True)
class AngleStats:
    """The Monte Carlo distribution of an alignment angle over ``n`` independent draws.

    mean_deg, sd_deg : mean and SD (ddof 1; NaN for ``n = 1``) of the angle in degrees.
    norm_ratio_mean : mean of ``|feedback|_F / |W|_F`` (NaN where a simulator has none).
    n : draws.
    angles_deg, norm_ratios : the per-draw values (``(n,)`` float64), when kept.
    """

    mean_deg: float
    sd_deg: float
    norm_ratio_mean: float
    n: int
    angles_deg: np.ndarray | None = field(default=None, repr=False, compare=False)
    norm_ratios: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def se_deg(self) -> float:
        """Standard error of ``mean_deg``: ``sd_deg / sqrt(n)``."""
        return self.sd_deg / math.sqrt(self.n)

    @classmethod
    def from_samples(cls, angles_deg: Any, norm_ratios: Any = None) -> AngleStats:
        """The statistics of per-draw angles (degrees) and norm ratios (optional), both
        kept (:func:`alignlab.sim.estimate`: mean, SD with ddof 1)."""
        a = estimate(angles_deg)
        ratios = None if norm_ratios is None else np.asarray(norm_ratios, dtype=float).ravel()
        return cls(a.mean, a.sd, math.nan if ratios is None else float(ratios.mean()), a.n,
                   np.asarray(angles_deg, dtype=float).ravel(), ratios)
