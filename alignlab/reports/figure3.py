"""Figure 3 of the PFA paper (Li & Benna 2024), regenerated with theory overlaid.

A pure random-matrix simulation of PFA's converged state ``R^T = B W`` (Proposition 1),
no training: for each expansion ratio ``r`` it records the eigenvalues of ``B^T B``
(Proposition 2) and the path alignment between ``W`` and ``(R B)^T = B^T B W``
(Proposition 3). The protocol is ``../shared/spec/figure3.md``; the defaults follow it.

``run_figure3(Figure3Config(), out_dir)`` writes ``figure3.csv`` (one row per ratio),
``figure3.png``, ``figure3.pdf`` and ``figure3.json`` (the resolved config), and checks the
claim the figure makes: the simulated means sit on the finite-size theory within a
tolerance derived from their standard errors.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from alignlab import theory
from alignlab._linalg import mid_width
from alignlab._output import check_output_dir
from alignlab._records import Records
from alignlab._validate import check_choice, check_int, check_positive
from alignlab.reports._figure import versions, write_report

__all__ = [
    "PAPER_RATIOS",
    "Figure3Check",
    "Figure3Config",
    "check_figure3",
    "ensemble_theory",
    "figure3_records",
    "plot_figure3",
    "run_figure3",
]

#: The paper's 11 log-spaced expansion ratios, 1 to 100.
PAPER_RATIOS: tuple[float, ...] = tuple(float(r) for r in np.logspace(0, 2, 11))

#: z for the claim check: |simulated mean - theory| <= Z_CHECK * standard error (+ bias bound).
#: Two-sided normal tail at z = 4 is 6e-5 per check, so 22 checks fail by chance < 0.2%.
Z_CHECK = 4.0

CSV_COLUMNS = (
    "ratio",
    "n_mid",
    "n_samples",
    "eig_mean",
    "eig_sd",
    "eig_sd_se",
    "angle_mean_deg",
    "angle_sd_deg",
    "angle_se_deg",
    "angle_jensen_gap_deg",
    "norm_ratio_mean",
    "norm_ratio_sd",
    "theory_angle_deg",
    "theory_angle_finite_deg",
    "theory_eig_sd",
    "theory_eig_sd_finite",
    "theory_norm_ratio",
    "theory_norm_ratio_finite",
)


@dataclass(frozen=True)
class Figure3Config:
    """Resolved settings of one Figure 3 run (written beside the results).

    Every field is validated on construction, before any work: bad values, a device that
    is not available here and a size whose one sample cannot fit in memory
    (:mod:`alignlab.sim.memory`) raise ``ValueError`` naming the field.
    """

    n_out: int = 100  # paper: W is 100 x 256
    n_in: int = 256
    ratios: tuple[float, ...] = PAPER_RATIOS  # n_mid = floor(n_out * r) (alignlab._linalg)
    n_samples: int = 100  # independent (W, B) draws per ratio
    seed: int = 0  # every ratio gets its own stream derived from (seed, ratio index)
    coupled: bool = False  # True: common random numbers across ratios (nested B; faster)
    ensemble: str = "uniform"  # law of B's entries; the paper's is Xavier-uniform
    density: float | None = None  # sparse B's fraction of nonzeros; None: the ensemble's
    # default. An ensemble without a density option refuses one.
    w_ensemble: str = "uniform"  # law of W's entries (Xavier-uniform)
    method: str = "direct"  # 'wishart' samples B^T B directly (gaussian ensemble only)
    device: str = "cpu"  # must be available on this machine
    dtype: str = "float32"  # statistical error >> float32 rounding at these sizes
    z: float = Z_CHECK  # claim-check width in standard errors

    def __post_init__(self) -> None:
        check_int("n_out", self.n_out)
        check_int("n_in", self.n_in)
        check_int("n_samples", self.n_samples, minimum=2)
        check_int("seed", self.seed, minimum=0)
        if isinstance(self.ratios, (str, bytes)) or np.ndim(self.ratios) != 1 \
                or len(self.ratios) == 0:
            raise ValueError(f"`ratios` must be a non-empty list of ratios > 0, "
                             f"got {self.ratios!r}.")
        ratios = check_positive("ratios", list(self.ratios))
        object.__setattr__(self, "ratios", tuple(float(r) for r in ratios))
        from alignlab.sim import ENSEMBLES

        check_choice("ensemble", self.ensemble, ENSEMBLES)
        b_ens = self.b_ensemble()  # the ensemble refuses a density it does not take
        check_choice("w_ensemble", self.w_ensemble, ENSEMBLES)
        from alignlab.sim import check_method

        check_method(self.method, b_ens)  # 'wishart' only where B^T B is Wishart
        check_choice("dtype", self.dtype, ("float32", "float64"))
        check_positive("z", self.z)
        _check_device_available(self.device)
        self._check_memory(b_ens)

    def b_ensemble(self):
        """The ensemble object of ``B`` (carries its kurtosis, the theory's input), built
        with ``density`` if one is given (an ensemble without that option raises)."""
        from alignlab.sim import get_ensemble

        options = {} if self.density is None else {"density": self.density}
        return get_ensemble(self.ensemble, **options)

    def n_mids(self) -> list[int]:
        """``n_mid`` per ratio by the package's one rounding rule, ``floor(n_out * r)``."""
        return [int(mid_width(self.n_out, r)) for r in self.ratios]

    def _check_memory(self, b_ens) -> None:
        """Refuse a run whose one sample, at the largest ratio, cannot fit in
        :func:`alignlab.sim.memory.memory_budget`; the message names the largest size
        (``ratios`` for ``n_mid``), as the simulators' own check does. (The simulators also
        check the memory of the results, before they start.)"""
        from alignlab.sim import check_sample

        n_mids = self.n_mids()
        big = int(np.argmax(n_mids))
        check_sample(self.n_out, self.n_in, n_mids[big], itemsize=np.dtype(self.dtype).itemsize,
                     method=self.method, ensemble=b_ens, w_ensemble=self.w_ensemble,
                     n_mid_alias=("ratios", self.ratios[big]))

    def resolved(self) -> dict:
        """The settings as written to ``figure3.json``: every field, ``density`` as the
        ensemble actually used it (``None`` for an ensemble without one), and the versions
        of alignlab, torch and numpy."""
        d = asdict(self)
        d["ratios"] = list(self.ratios)
        d["density"] = getattr(self.b_ensemble(), "density", None)
        d["versions"] = versions()
        return d


def _check_device_available(device: str) -> None:
    """``device`` must name a torch device that works here: parsed by the simulator's
    check, then a zero-size tensor is allocated on it (this catches ``cuda`` without a
    GPU, ``cuda:7`` on a one-GPU machine, ``mps`` off macOS)."""
    import torch

    from alignlab.sim.engine import check_device

    dev = check_device(device)
    try:
        torch.empty(0, device=dev)
    except Exception as exc:  # torch raises several types for this (Assertion, Runtime...)
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"`device` must be a device available here, got {device!r} "
                         f"({why}).") from None


def ensemble_theory(ensemble, ratio, n_out: int, n_mid: int) -> dict[str, float]:
    """The six theory columns for ``B`` from ``ensemble`` at one ratio.

    iid entries (``ensemble.iid``): Propositions 2 and 3, in the limit and at finite size
    with the exact ``m2 = 1 + (n_out + k4 - 2)/n_mid`` (``k4 = ensemble.kurtosis``).
    Dependent entries (the registry's one such law, Haar-orthogonal): ``B^T B = I`` for
    ``n_mid >= n_out`` (PFA-o: 0 deg, SD 0, norm ratio 1) and a scaled rank-``n_mid``
    projection below (angle ``arctan(sqrt(1/r - 1))``, 45 deg at ``r = 1/2``; eigenvalue SD
    ``sqrt(1/r - 1)``; norm ratio ``1/sqrt(r)``), exact at finite size with
    ``r = n_mid / n_out`` (:func:`alignlab.theory.path_alignment_angle_orthogonal`).
    """
    if not ensemble.iid:
        r_fin = n_mid / n_out
        return dict(
            theory_angle_deg=float(theory.path_alignment_angle_orthogonal(ratio)),
            theory_angle_finite_deg=float(theory.path_alignment_angle_orthogonal(r_fin)),
            theory_eig_sd=float(theory.eigenvalue_sd_orthogonal(ratio)),
            theory_eig_sd_finite=float(theory.eigenvalue_sd_orthogonal(r_fin)),
            theory_norm_ratio=float(theory.path_norm_ratio_orthogonal(ratio)),
            theory_norm_ratio_finite=float(theory.path_norm_ratio_orthogonal(r_fin)),
        )
    k4 = ensemble.kurtosis
    return dict(
        theory_angle_deg=float(theory.path_alignment_angle(ratio)),
        theory_angle_finite_deg=float(theory.path_alignment_angle_finite(n_out, n_mid, k4)),
        theory_eig_sd=float(theory.eigenvalue_sd(ratio)),
        theory_eig_sd_finite=float(theory.eigenvalue_sd_finite(n_out, n_mid, k4)),
        theory_norm_ratio=float(theory.path_norm_ratio(ratio)),
        theory_norm_ratio_finite=float(theory.path_norm_ratio_finite(n_out, n_mid, k4)),
    )


def _limit_curves(ensemble, r: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """(angle in degrees, eigenvalue SD, legend label) of the limit theory on a grid."""
    if not ensemble.iid:
        return (theory.path_alignment_angle_orthogonal(r), theory.eigenvalue_sd_orthogonal(r),
                r"orthogonal $B$: $\arctan\sqrt{\max(0, 1/r - 1)}$")
    return (theory.path_alignment_angle(r), theory.eigenvalue_sd(r),
            r"Prop. 3: $\arctan(1/\sqrt{r})$")


def figure3_records(
    config: Figure3Config | None = None,
    *,
    progress: Callable[[str], None] | None = None,
) -> Records:
    """Simulate every ratio of ``config`` and return one record per ratio (CSV_COLUMNS).

    The simulation is :func:`alignlab.sim.sweep_expansion_ratio`; this adds the theory
    columns and the figure's column names. ``config`` defaults to the paper's protocol.
    """
    import torch

    config = Figure3Config() if config is None else config
    from alignlab.sim import sweep_expansion_ratio

    t0 = [time.perf_counter()]
    n = len(config.ratios)

    def report(k: int, row: dict) -> None:
        if progress is not None:
            progress(
                f"[{k + 1}/{n}] r = {row['expansion_ratio']:7.2f}  n_mid = {row['n_mid']:6d}  "
                f"angle {row['angle_mean']:6.2f} +/- {row['angle_se']:.2f} deg  "
                f"{time.perf_counter() - t0[0]:5.2f} s"
            )
        t0[0] = time.perf_counter()

    b_ens = config.b_ensemble()
    sim = sweep_expansion_ratio(
        config.n_out,
        config.ratios,
        n_in=config.n_in,
        n_samples=config.n_samples,
        ensemble=b_ens,
        w_ensemble=config.w_ensemble,
        rng=config.seed,
        coupled=config.coupled,
        device=config.device,
        dtype=getattr(torch, config.dtype),
        method=config.method,
        progress=report,
    )
    rows = []
    for ratio, row in zip(config.ratios, sim, strict=True):
        rows.append(dict(
            ratio=float(ratio),
            n_mid=row["n_mid"],
            n_samples=row["n_samples"],
            eig_mean=row["eig_mean"],
            eig_sd=row["eig_sd"],
            eig_sd_se=row["eig_sd_se"],
            angle_mean_deg=row["angle_mean"],
            angle_sd_deg=row["angle_sd"],
            angle_se_deg=row["angle_se"],
            angle_jensen_gap_deg=row["angle_jensen_gap"],
            norm_ratio_mean=row["norm_ratio_mean"],
            norm_ratio_sd=row["norm_ratio_sd"],
            **ensemble_theory(b_ens, ratio, config.n_out, row["n_mid"]),
        ))
    return Records(rows, CSV_COLUMNS)


@dataclass(frozen=True)
class Figure3Check:
    """Outcome of the claim check: one line per failed comparison (empty when it holds)."""

    failures: tuple[str, ...]
    max_angle_dev_asymptotic_deg: float  # max |angle mean - limit theory| over ratios
    max_eig_sd_rel_dev_finite: float  # max |eig sd / finite-size sd - 1| over ratios

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        head = (
            f"max |angle - limit theory| = {self.max_angle_dev_asymptotic_deg:.3f} deg; "
            f"max |eig sd / finite-size sd - 1| = {100 * self.max_eig_sd_rel_dev_finite:.2f}%"
        )
        if self.ok:
            return "claim holds: simulation matches Propositions 2 and 3 at every ratio; " + head
        return "claim FAILED:\n  " + "\n  ".join(self.failures) + "\n" + head


def check_figure3(records: Records, z: float = Z_CHECK, dtype: str = "float32") -> Figure3Check:
    """Check the figure's claim: simulation on theory, within z standard errors.

    The angle is compared with the finite-size form ``arccos(1/sqrt(m2))``, which is exact
    for the ratio of expected traces, not for the mean angle: the two differ by the
    sample's Jensen gap ``angle_jensen_gap_deg`` (mean of the angles minus the angle of
    the means, a variance-like average) plus a standard-error-sized fluctuation. The
    tolerance is ``z * SE + 2 |gap|``; twice the gap covers its own sampling error.
    (At the paper's sizes the bias is -0.009 deg at r = 1 and -0.001 deg at r = 100,
    measured with 20,000 Gaussian samples per ratio.) Each tolerance also has a rounding
    floor of ``100 eps`` of the simulation's dtype (in radians for the angle; times
    ``m2``, the squared RMS norm ratio, for the eigenvalue SD, since eigenvalues reach
    about ``m2``), which matters only where the theory is exact (orthogonal ``B``: no
    sampling error at all in its spectrum).
    """
    rounding = 100.0 * float(np.finfo(dtype).eps)
    failures = []
    dev_asym, dev_sd = [], []
    for row in records:
        r = row["ratio"]
        tol = (z * row["angle_se_deg"] + np.rad2deg(rounding)
               + 2.0 * abs(row["angle_jensen_gap_deg"]))
        d = row["angle_mean_deg"] - row["theory_angle_finite_deg"]
        if not abs(d) <= tol:  # NaN fails
            failures.append(
                f"r = {r:.3g}: angle mean {row['angle_mean_deg']:.4f} deg is {d:+.4f} deg from the "
                f"finite-size theory {row['theory_angle_finite_deg']:.4f} (tolerance {tol:.4f})"
            )
        tol_sd = z * row["eig_sd_se"] + rounding * row["theory_norm_ratio_finite"] ** 2
        d_sd = row["eig_sd"] - row["theory_eig_sd_finite"]
        if not abs(d_sd) <= tol_sd:
            failures.append(
                f"r = {r:.3g}: pooled eigenvalue SD {row['eig_sd']:.5f} is {d_sd:+.5f} from the "
                f"finite-size theory {row['theory_eig_sd_finite']:.5f} (tolerance {tol_sd:.5f})"
            )
        dev_asym.append(abs(row["angle_mean_deg"] - row["theory_angle_deg"]))
        if row["theory_eig_sd_finite"] > 0:
            dev_sd.append(abs(row["eig_sd"] / row["theory_eig_sd_finite"] - 1.0))
    return Figure3Check(
        tuple(failures),
        float(max(dev_asym)),
        float(max(dev_sd)) if dev_sd else 0.0,
    )


def _describe_ensemble(ensemble) -> str:
    """``'sparse (density 0.1)'``: the registry name and the options it was built with."""
    from dataclasses import fields

    opts = ", ".join(f"{f.name} {getattr(ensemble, f.name):g}" for f in fields(ensemble))
    return ensemble.name + (f" ({opts})" if opts else "")


def plot_figure3(records: Records, config: Figure3Config | None = None):
    """Both panels of Figure 3 with the theory overlaid; returns the matplotlib Figure.

    The theory drawn is that of ``config``'s ensemble (:func:`ensemble_theory`); the
    dashed red lines are PFA-o (``B^T B = I``) for reference.
    """
    from matplotlib import ticker
    from matplotlib.figure import Figure  # no pyplot: no backend, no figure manager

    config = Figure3Config() if config is None else config
    ens = config.b_ensemble()
    r = np.array(records.column("ratio"))
    col = {c: np.array(records.column(c)) for c in records.columns}
    r_fine = np.logspace(np.log10(r.min()), np.log10(r.max()), 200)
    angle_fine, sd_fine, angle_label = _limit_curves(ens, r_fine)
    sim_color, theory_color, ortho_color = "#1f77b4", "black", "#d62728"

    fig = Figure(figsize=(14, 4.2), layout="constrained")
    ax_a, ax_b, ax_c = fig.subplots(1, 3, width_ratios=(1, 1, 0.75))

    # (a) spectrum of B^T B: pooled mean +/- pooled SD (spread of the spectrum).
    ax_a.fill_between(r, col["eig_mean"] - col["eig_sd"], col["eig_mean"] + col["eig_sd"],
                      color=sim_color, alpha=0.25, lw=0, label="simulation: ± SD")
    ax_a.plot(r, col["eig_mean"], "o-", color=sim_color, ms=5, lw=1.5, zorder=5,
              label="simulation: mean")
    ax_a.plot(r_fine, 1 + sd_fine, color=theory_color, lw=1.2,
              label=r"Prop. 2: $1 \pm 1/\sqrt{r}$" if ens.iid
              else "theory: 1 ± SD")
    ax_a.plot(r_fine, 1 - sd_fine, color=theory_color, lw=1.2)
    ax_a.plot(r, 1 + col["theory_eig_sd_finite"], "x", color=theory_color, ms=6,
              label="finite size")
    ax_a.plot(r, 1 - col["theory_eig_sd_finite"], "x", color=theory_color, ms=6)
    ax_a.axhline(1.0, color=ortho_color, ls="--", lw=1.2, zorder=1, label="PFA-o")
    ax_a.set_xscale("log")
    ax_a.set_xlabel(r"expansion ratio $r = n_\mathrm{mid}/n_\mathrm{out}$")
    ax_a.set_ylabel(r"eigenvalues of $B^\top B$")
    ax_a.set_title("(a) spectrum of $B^\\top B$", loc="left")
    ax_a.legend(frameon=False, fontsize=9)

    # (b) path alignment angle between W and (R B)^T at R^T = B W.
    ax_b.fill_between(r, col["angle_mean_deg"] - col["angle_sd_deg"],
                      col["angle_mean_deg"] + col["angle_sd_deg"],
                      color=sim_color, alpha=0.25, lw=0, label="simulation: ± SD")
    ax_b.plot(r, col["angle_mean_deg"], "o", color=sim_color, ms=5, zorder=5,
              label="simulation: mean")
    ax_b.plot(r_fine, angle_fine, color=theory_color, lw=1.2, label=angle_label)
    ax_b.plot(r, col["theory_angle_finite_deg"], "x", color=theory_color, ms=6,
              label="finite size")
    ax_b.axhline(0.0, color=ortho_color, ls="--", lw=1.2, zorder=1, label="PFA-o")
    ax_b.set_xscale("log")
    ax_b.set_ylim(-2, 90)
    ax_b.set_yticks([0, 15, 30, 45, 60, 75, 90])
    ax_b.set_xlabel(r"expansion ratio $r = n_\mathrm{mid}/n_\mathrm{out}$")
    ax_b.set_ylabel(r"path alignment: angle($W$, $(RB)^\top$) (deg)")
    ax_b.set_title("(b) path alignment at $R^\\top = BW$", loc="left")
    ax_b.legend(frameon=False, fontsize=9)

    # (c) what (b) cannot show at its scale: simulation minus theory, +/- 2 standard errors.
    ax_c.axhline(0.0, color=theory_color, lw=1.0)
    ax_c.errorbar(r, col["angle_mean_deg"] - col["theory_angle_finite_deg"],
                  yerr=2 * col["angle_se_deg"], fmt="o", color=sim_color, ms=4, capsize=2,
                  label="vs finite size")
    ax_c.plot(r, col["theory_angle_deg"] - col["theory_angle_finite_deg"], "x",
              color=theory_color, ms=6, label="limit vs finite size")
    ax_c.set_xscale("log")
    ax_c.set_xlabel(r"expansion ratio $r$")
    ax_c.set_ylabel("angle deviation (deg)")
    ax_c.set_title("(c) simulation − theory, ± 2 SE", loc="left")
    ax_c.legend(frameon=False, fontsize=8)

    # plain tick labels ("0.5", "2", "100"): matplotlib's 2x10^-1 style overlaps on short ranges
    plain = ticker.FuncFormatter(lambda v, _: f"{v:g}")
    for ax in (ax_a, ax_b, ax_c):
        ax.xaxis.set_major_formatter(plain)
        ax.xaxis.set_minor_formatter(plain if r.max() / r.min() < 10
                                     else ticker.NullFormatter())

    fig.suptitle(
        f"PFA Figure 3: n_out = {config.n_out}, n_in = {config.n_in}, "
        f"{config.n_samples} samples per ratio, B {_describe_ensemble(ens)}, "
        f"seed {config.seed}",
        fontsize=10,
    )
    return fig


#: The files one run writes, in the order they are renamed into place.
OUTPUT_FILES = ("figure3.csv", "figure3.png", "figure3.pdf", "figure3.json")


def run_figure3(
    config: Figure3Config | None = None,
    out_dir: str | Path = "figures",
    *,
    progress: Callable[[str], None] | None = None,
) -> tuple[Records, Figure3Check, dict[str, Path]]:
    """Simulate, write CSV/PNG/PDF/JSON into ``out_dir``, check the claim.

    ``out_dir`` is checked before the simulation starts (it may not exist yet; it must be
    creatable and writable), and the four files are written as one set
    (:func:`alignlab._output.write_together`): an error or an interrupt leaves the
    previous set untouched and creates nothing. Returns the records, the check and
    ``{'csv' | 'png' | 'pdf' | 'json': path}``.
    """

    config = Figure3Config() if config is None else config
    out = check_output_dir(out_dir, name="out_dir")
    records = figure3_records(config, progress=progress)
    check = check_figure3(records, config.z, config.dtype)
    fig = plot_figure3(records, config)
    paths = write_report(out, fig, records, config.resolved(), stem="figure3")
    return records, check, paths


def ratios_from_cli(values: Sequence[float] | None) -> tuple[float, ...]:
    """The paper's ratios when none are given on the command line."""
    return PAPER_RATIOS if not values else tuple(float(v) for v in values)
