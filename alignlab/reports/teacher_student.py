"""The teacher-student report: the ODEs of online learning against the simulation.

``alignlab teacher-student`` draws ``seeds`` teacher-student pairs (the spec's N(0, 1)
initialisation, ``../shared/spec/teacher_student.md``), trains each student online with
``rule`` (and with the contrast rule: BP against DFA/FA, DFA against BP) in the batched
simulator :func:`alignlab.sim.simulate_teacher_student`, integrates the order-parameter
ODEs (:func:`alignlab.theory.integrate`) from the same initial order parameters, and writes
``teacher_student.{csv,png,pdf,json}``: the generalisation error over time, the alignment
``cos(v, b)``, the order parameters of one draw and the simulation's relative deviation
from the ODE.

The claim it checks: the finite-``N`` simulation follows the ODE. Its fluctuations are
``O(1/sqrt(N))`` (the order parameters are averages over ``N`` coordinates), so the check
is that the median over draws and record times (where the ODE's ``eg > 1e-3``, away from
the final convergence) of ``|eg_sim / eg_ode - 1|`` and of ``|cos_sim - cos_ode|`` is at
most ``band = c / sqrt(N)``, with ``c = 0.67`` (3% at ``N = 500``, the spec's "a few %";
issue 16). In :mod:`alignlab.theory.teacher_student` ``R`` is the student-teacher overlap
of the literature, not PFA's feedback matrix.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from alignlab._output import check_output_dir
from alignlab._records import Records
from alignlab._validate import check_choice, check_int, check_positive
from alignlab.reports._figure import versions, write_report

__all__ = [
    "BAND_C",
    "EG_FLOOR",
    "RULES",
    "TeacherStudentCheck",
    "TeacherStudentConfig",
    "TeacherStudentResult",
    "check_teacher_student",
    "draw",
    "plot_teacher_student",
    "run_teacher_student",
    "teacher_student_records",
    "teacher_student_result",
]

#: Rules of the two-layer teacher-student model (FA and DFA coincide in two layers).
RULES = ("bp", "dfa", "fa")
#: The claim's band is ``BAND_C / sqrt(N)``: 3% at N = 500.
BAND_C = 0.03 * math.sqrt(500)
#: Record times with the ODE's eg below this are left out of the check (final convergence,
#: where relative deviations are not O(1/sqrt(N)) but grow as eg -> 0).
EG_FLOOR = 1e-3


@dataclass(frozen=True)
class TeacherStudentConfig:
    """Resolved settings of one ``alignlab teacher-student`` run (written beside it).

    ``K``/``M`` student/teacher hidden units, ``N`` the input dimension, ``lr`` the
    learning rate (first layer ``lr / sqrt(N)``, second ``lr2 / N`` per step on the spec's
    weight scales; ``lr2`` defaults to ``lr``), ``t_max`` in the spec's time unit
    (``steps / N``), ``seeds`` independent draws, recorded at ``per_decade`` log-spaced
    times per decade from the first step (:meth:`times`).
    ``contrast`` the rule whose alignment is shown beside ``rule``'s (default BP for DFA/FA,
    DFA for BP; ``"none"`` for none). ``method`` the simulator's
    (:func:`alignlab.sim.simulate_teacher_student`): ``'gram'`` steps the local fields'
    law (exact in distribution, cost independent of ``N``: the default), ``'explicit'``
    the weights themselves (the same draws as alignlab's layers, ``N`` times the cost).
    """

    rule: str = "dfa"
    K: int = 2
    M: int = 2
    N: int = 1000
    lr: float = 0.2
    lr2: float | None = None
    t_max: float = 1000.0
    seeds: int = 5
    seed: int = 0
    sigma: float = 0.0
    weight_decay: float = 0.0
    per_decade: int = 10
    method: str = "gram"  # the simulator's: 'gram' (exact in law, cost free of N) or
    # 'explicit' (the weights in R^N, draw for draw)
    contrast: str | None = None
    band_c: float = BAND_C
    eg_floor: float = EG_FLOOR
    rules: tuple[str, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        check_choice("rule", self.rule, RULES)
        for name in ("K", "M"):
            check_int(name, getattr(self, name))
        check_int("N", self.N, minimum=2)
        check_int("seeds", self.seeds)
        check_int("seed", self.seed, minimum=0)
        check_int("per_decade", self.per_decade)
        from alignlab.sim.teacher_student import METHODS

        check_choice("method", self.method, METHODS)
        check_positive("lr", self.lr)
        if self.lr2 is not None:
            check_positive("lr2", self.lr2)
        check_positive("t_max", self.t_max)
        if self.t_max * self.N < 1:
            raise ValueError(f"`t_max` must be at least one step (1 / N = {1 / self.N:g}), "
                             f"got {self.t_max!r}.")
        check_positive("sigma", self.sigma, allow_zero=True)
        check_positive("weight_decay", self.weight_decay, allow_zero=True)
        check_positive("band_c", self.band_c)
        check_positive("eg_floor", self.eg_floor)
        contrast = self.contrast
        if contrast is None:
            contrast = "bp" if self.rule != "bp" else "dfa"
        check_choice("contrast", contrast, (*RULES, "none"))
        object.__setattr__(self, "contrast", contrast)
        rules = (self.rule,) if contrast in ("none", self.rule) else (self.rule, contrast)
        object.__setattr__(self, "rules", rules)

    def times(self) -> np.ndarray:
        """The record times: :func:`alignlab.theory.log_time_grid` from the first step to
        ``t_max``, rounded to whole steps (``t = step / N``), 0 first."""
        from alignlab.theory import log_time_grid

        return log_time_grid(self.t_max, per_decade=self.per_decade, start=1.0 / self.N,
                             dt=1.0 / self.N)

    @property
    def band(self) -> float:
        """The claim's tolerance on the median deviation, ``band_c / sqrt(N)``."""
        return self.band_c / math.sqrt(self.N)

    def resolved(self) -> dict:
        d = asdict(self)
        d["rules"] = list(self.rules)
        d["band"] = self.band
        d["versions"] = versions()
        return d


@dataclass(frozen=True)
class TeacherStudentResult:
    """ODE and simulation of one rule from the same draws; arrays over (seed, time)."""

    rule: str
    t: np.ndarray  # (n_t,)
    eg_ode: np.ndarray  # (S, n_t)
    eg_sim: np.ndarray  # (S, n_t)
    alignment_ode: np.ndarray  # (S, n_t) cos(v, feedback)
    alignment_sim: np.ndarray
    Q_ode: np.ndarray  # (S, n_t, K, K)
    Q_sim: np.ndarray
    R_ode: np.ndarray  # (S, n_t, K, M)
    R_sim: np.ndarray
    v_ode: np.ndarray  # (S, n_t, K)
    v_sim: np.ndarray


def _array(x) -> np.ndarray:
    """A float64 numpy array from a numpy array or a (CPU) torch tensor."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def teacher_student_result(init, rule: str, config: TeacherStudentConfig, t: np.ndarray, *,
                           rng, progress: bool = False) -> TeacherStudentResult:
    """Simulate ``rule`` from ``init`` (a :class:`alignlab.sim.TeacherStudentInit`) and
    integrate the ODEs from its order parameters, both recorded at ``t``."""
    from alignlab import theory
    from alignlab.sim import simulate_teacher_student

    options = dict(lr=config.lr, lr2=config.lr2, rule=rule, t_max=float(t[-1]),
                   sigma=config.sigma, weight_decay=config.weight_decay)
    path = simulate_teacher_student(init, t_eval=t, rng=rng, progress=progress,
                                    method=config.method, **options)
    Q0, R0, T = (_array(x) for x in init.order_parameters())
    A, v0, fb = _array(init.A), _array(init.v), _array(init.feedback)
    curve = theory.integrate(Q0, R0, T, A, v0, feedback=fb, t_eval=t, **options)
    if not np.allclose(_array(path.t), t, rtol=0, atol=0.5 / config.N):
        raise RuntimeError("the simulation recorded other times than asked")  # a bug
    Q_sim, R_sim, v_sim = _array(path.Q), _array(path.R), _array(path.v)
    n_t = len(t)
    eg_sim = theory.generalisation_error(
        Q_sim, R_sim, np.broadcast_to(T[:, None], (T.shape[0], n_t, *T.shape[1:])),
        np.broadcast_to(A[:, None], (A.shape[0], n_t, A.shape[1])), v_sim)
    return TeacherStudentResult(
        rule=rule, t=t, eg_ode=_array(curve.eg), eg_sim=_array(eg_sim),
        alignment_ode=_array(curve.alignment), alignment_sim=_array(path.alignment),
        Q_ode=_array(curve.Q), Q_sim=Q_sim, R_ode=_array(curve.R), R_sim=R_sim,
        v_ode=_array(curve.v), v_sim=v_sim)


def teacher_student_records(results: list[TeacherStudentResult]) -> Records:
    """One row per (rule, seed, record time): ODE and simulation side by side, the order
    parameters flattened (``Q_ode_0_1``, ``R_sim_1_0``, ``v_ode_0``...)."""
    rows = []
    for res in results:
        S, n_t = res.eg_ode.shape
        K, M = res.R_ode.shape[-2:]
        for s in range(S):
            for i in range(n_t):
                row = {"rule": res.rule, "seed": s, "t": float(res.t[i])}
                for src in ("ode", "sim"):
                    row[f"eg_{src}"] = float(getattr(res, f"eg_{src}")[s, i])
                for src in ("ode", "sim"):
                    row[f"alignment_{src}"] = float(getattr(res, f"alignment_{src}")[s, i])
                for src in ("ode", "sim"):
                    Q, R, v = (getattr(res, f"{n}_{src}")[s, i] for n in "QRv")
                    row.update({f"Q_{src}_{k}_{j}": float(Q[k, j])
                                for k in range(K) for j in range(k, K)})
                    row.update({f"R_{src}_{k}_{m}": float(R[k, m])
                                for k in range(K) for m in range(M)})
                    row.update({f"v_{src}_{k}": float(v[k]) for k in range(K)})
                rows.append(row)
    return Records(rows)


@dataclass(frozen=True)
class TeacherStudentCheck:
    """The claim check: median deviations per rule against the band (empty failures: holds)."""

    band: float
    eg_median_rel_dev: dict[str, float]  # rule -> median |eg_sim / eg_ode - 1|
    alignment_median_abs_dev: dict[str, float]  # rule -> median |cos_sim - cos_ode|
    failures: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        lines = [f"{rule}: median |eg_sim/eg_ode - 1| = {self.eg_median_rel_dev[rule]:.4f}, "
                 f"median |cos_sim - cos_ode| = {self.alignment_median_abs_dev[rule]:.4f} "
                 f"(band {self.band:.4f})" for rule in self.eg_median_rel_dev]
        head = ("claim holds: the simulation follows the ODE within its finite-N band"
                if self.ok else "claim FAILED:\n  " + "\n  ".join(self.failures))
        return head + "\n" + "\n".join(lines)


def check_teacher_student(results: list[TeacherStudentResult], band: float,
                          eg_floor: float = EG_FLOOR) -> TeacherStudentCheck:
    """Median over draws and record times ``t > 0`` with ``eg_ode > eg_floor`` of the
    relative eg deviation and the absolute alignment deviation, each at most ``band``
    (NaN fails; a rule whose ODE never has ``eg > eg_floor`` fails, having nothing to
    compare)."""
    eg_dev, al_dev, failures = {}, {}, []
    for res in results:
        keep = (res.eg_ode > eg_floor) & (res.t > 0)[None, :]
        d_eg = np.abs(res.eg_sim / res.eg_ode - 1.0)[keep]
        d_al = np.abs(res.alignment_sim - res.alignment_ode)[keep]
        eg_dev[res.rule] = float(np.median(d_eg)) if d_eg.size else math.nan
        al_dev[res.rule] = float(np.median(d_al)) if d_al.size else math.nan
        for what, value in (("eg relative", eg_dev[res.rule]),
                            ("alignment", al_dev[res.rule])):
            if not value <= band:
                failures.append(f"{res.rule}: median {what} deviation {value:.4f} "
                                f"exceeds the band {band:.4f}")
    return TeacherStudentCheck(band, eg_dev, al_dev, tuple(failures))


def plot_teacher_student(results: list[TeacherStudentResult], config: TeacherStudentConfig):
    """Four panels: (a) eg over time, each draw's ODE against the simulation's mean and
    range over draws;
    (b) the alignment cos(v, b), rule and contrast; (c) the order parameters of draw 0;
    (d) the simulation's deviation from the ODE against the band. Returns the Figure."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 8.5), layout="constrained")
    (ax_a, ax_b), (ax_c, ax_d) = fig.subplots(2, 2)
    colors = {"bp": "#1f77b4", "dfa": "#d62728", "fa": "#2ca02c"}
    main = results[0]
    t = main.t[1:]  # log axes: t = 0 is drawn nowhere

    for res in results:
        c = colors[res.rule]
        label = res.rule.upper() + (" (contrast)" if res is not main else "")
        # (a) eg: each draw's ODE (thin), the simulation's mean and range over draws (the
        # draws start from different conditions: a range, not an SD, on log axes).
        for s in range(res.eg_ode.shape[0]):
            ax_a.plot(t, res.eg_ode[s, 1:], color=c, lw=0.6, alpha=0.5)
        sim = res.eg_sim[:, 1:]
        ax_a.fill_between(t, sim.min(0), sim.max(0), color=c, alpha=0.15, lw=0)
        ax_a.plot(t, sim.mean(0), "o", color=c, ms=3,
                  label=f"{label}: simulation mean, range over draws")
        ax_a.plot(t, res.eg_ode[:, 1:].mean(0), color=c, lw=1.6, label=f"{label}: ODE mean")
        # (b) alignment: ODE lines, simulation points, per draw.
        for s in range(res.alignment_ode.shape[0]):
            ax_b.plot(t, res.alignment_ode[s, 1:], color=c, lw=1.0, alpha=0.8,
                      ls="-" if res is main else "--",
                      label=f"{label}: ODE" if s == 0 else None)
            ax_b.plot(t, res.alignment_sim[s, 1:], "o", color=c, ms=2.5, alpha=0.7,
                      label=f"{label}: simulation" if s == 0 else None)
        # (d) deviation per draw.
        rel = np.abs(res.eg_sim / res.eg_ode - 1.0)[:, 1:]
        for s in range(rel.shape[0]):
            ok = res.eg_ode[s, 1:] > config.eg_floor
            ax_d.plot(t[ok], rel[s, ok], color=c, lw=0.8, alpha=0.7,
                      label=f"{label}: |eg_sim/eg_ode - 1|" if s == 0 else None)
    ax_d.axhline(config.band, color="black", ls="--", lw=1.2,
                 label=f"band {config.band_c:.2f}/sqrt(N) (median must lie below)")

    # (c) order parameters of draw 0 for the main rule: ODE lines, simulation points.
    K, M = main.R_ode.shape[-2:]
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
               "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
    series = [(f"R[{k},{m}]", main.R_ode[0, 1:, k, m], main.R_sim[0, 1:, k, m])
              for k in range(K) for m in range(M)]
    series += [(f"Q[{k},{k}]", main.Q_ode[0, 1:, k, k], main.Q_sim[0, 1:, k, k])
               for k in range(K)]
    series += [(f"v[{k}]", main.v_ode[0, 1:, k], main.v_sim[0, 1:, k]) for k in range(K)]
    for j, (name, ode, sim) in enumerate(series):
        c = palette[j % len(palette)]
        ax_c.plot(t, ode, color=c, lw=1.2, label=name)
        ax_c.plot(t, sim, "o", color=c, ms=2)

    for ax in (ax_a, ax_b, ax_c, ax_d):
        ax.set_xscale("log")
        ax.set_xlabel("t (steps / N)")
    ax_a.set_yscale("log")
    ax_d.set_yscale("log")
    ax_a.set_ylabel(r"$e_g = \frac{1}{2}E[(y - \phi)^2]$")
    ax_b.set_ylabel(r"alignment $\cos(v, b)$")
    ax_c.set_ylabel("order parameter")
    ax_d.set_ylabel("relative deviation of $e_g$")
    ax_a.set_title("(a) generalisation error: ODE and simulation", loc="left")
    ax_b.set_title("(b) alignment of v with the feedback vector", loc="left")
    ax_c.set_title(f"(c) order parameters, draw 0, {main.rule.upper()} "
                   "(lines ODE, points simulation)", loc="left")
    ax_d.set_title(f"(d) simulation vs ODE where eg > {config.eg_floor:g}", loc="left")
    ax_a.legend(frameon=False, fontsize=8)
    ax_b.legend(frameon=False, fontsize=8)
    ax_c.legend(frameon=False, fontsize=7, ncol=2)
    ax_d.legend(frameon=False, fontsize=8)
    lr2 = "" if config.lr2 is None else f", lr2 {config.lr2:g}"
    fig.suptitle(f"teacher-student (erf, online SGD): K = {config.K}, M = {config.M}, "
                 f"N = {config.N}, lr {config.lr:g}{lr2}, {config.seeds} draws, "
                 f"seed {config.seed}" + (f", sigma {config.sigma:g}" if config.sigma else "")
                 + (f", weight decay {config.weight_decay:g}" if config.weight_decay else ""),
                 fontsize=10)
    return fig


def draw(config: TeacherStudentConfig):
    """The draws of a run: ``(init, seeds)``, the teacher-student pairs
    (:func:`alignlab.sim.draw_teacher_student`) and one ``SeedSequence`` per rule of
    ``config.rules`` for its inputs, all from ``config.seed``."""
    from alignlab.sim import draw_teacher_student

    init_seq, *rule_seqs = np.random.SeedSequence(config.seed).spawn(1 + len(config.rules))
    init = draw_teacher_student(config.K, config.M, config.N, n_seeds=config.seeds,
                                rng=init_seq)
    return init, rule_seqs


def run_teacher_student(config: TeacherStudentConfig | None = None,
                        out_dir: str | Path = "teacher-student", *,
                        progress: Callable[[str], None] | None = None):
    """Draw, simulate and integrate every rule of ``config.rules``, write
    ``teacher_student.{csv,png,pdf,json}`` into ``out_dir`` as one set (checked before any
    work), check the claim. Returns ``(results, records, check, paths)``."""
    config = TeacherStudentConfig() if config is None else config
    out = check_output_dir(out_dir, name="out_dir")
    say = progress or (lambda _m: None)
    t = config.times()
    init, rule_seqs = draw(config)
    results = []
    for rule, seq in zip(config.rules, rule_seqs, strict=True):
        say(f"{rule}: simulating {config.seeds} draws to t = {t[-1]:g} "
            f"({int(round(t[-1] * config.N)):,} steps each) and integrating the ODE")
        results.append(teacher_student_result(
            init, rule, config, t, rng=seq, progress=progress is not None))
    check = check_teacher_student(results, config.band, config.eg_floor)
    records = teacher_student_records(results)
    settings = {**config.resolved(), "check": {
        "ok": check.ok, "failures": list(check.failures),
        "eg_median_rel_dev": check.eg_median_rel_dev,
        "alignment_median_abs_dev": check.alignment_median_abs_dev}}
    fig = plot_teacher_student(results, config)
    paths = write_report(out, fig, records, settings, stem="teacher_student")
    return results, records, check, paths
