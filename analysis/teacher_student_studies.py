"""The teacher-student studies of issue 16 (docs/teacher_student.md): ODE against simulation.

    .venv/bin/python analysis/teacher_student_studies.py trend [--out DIR]
    .venv/bin/python analysis/teacher_student_studies.py align [--out DIR]

``trend``: the ODE against the batched simulator (method 'explicit') from the same draws
at N = 500, 1000, 2000 (K = M = 2, lr 0.2, DFA and BP, t_max 200, 8 draws): the median
relative deviation of eg while eg > 1e-3, and the largest deviation of R, Q, v; the
deviation should shrink as 1/sqrt(N). At N = 500 the first 2 draws are also trained by
alignlab's own layers (simulation (b), ``train_teacher_student``) on the same inputs:
their largest relative difference from (a) and their own deviation from the ODE.

``align``: "align, then memorise" (Refinetti et al. 2021) draw by draw: K = M = 2 and
K = 4, M = 2 at lr 0.2 and 1.0, 12 draws each (the spec's N(0, 1) initialisation),
N = 1000 to t = 1000, simulator method 'gram' (exact in law). For each draw, ODE and
simulation each say whether DFA's cos(v, b) reaches 0.9 and when (the times agree within
10%, or 25% where the curve is flat near 0.9: :func:`time_tolerance`); the eg at that
time against eg at the start and the end; BP's change of cos(v, b) over the same draws as the
contrast. Draws whose peak alignment (in
the ODE) is within 0.02 of 0.9 are borderline and listed apart; draws already at 0.9 at
t = 0 (possible for K = 2) are counted as reaching it but not timed.

Each writes CSV tables and a PNG/PDF figure into ``--out`` (default
docs/results/teacher_student) and prints the tables as markdown.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from alignlab._records import Records
from alignlab.reports._figure import write_figure_set
from alignlab.reports.teacher_student import (
    EG_FLOOR,
    TeacherStudentConfig,
    draw,
    teacher_student_result,
)

THRESHOLD = 0.9  # alignment the "align" phase is said to reach
BORDER = 0.02  # peak alignment within this of THRESHOLD: borderline draw
TIME_TOL, FLAT_TIME_TOL = 0.10, 0.25  # crossing times agree within these (relative)


def time_tolerance(slope: float, band: float) -> float:
    """The crossing-time tolerance: 10%, or 25% where the curve is flat near 0.9. Flat:
    a deviation of the size of the simulation's band in ``cos`` moves the crossing by
    more than 10% of ``t`` (``slope = d cos / d log t < band / 0.10``)."""
    return TIME_TOL if slope >= band / TIME_TOL else FLAT_TIME_TOL


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _markdown(records: Records, digits: int = 4) -> str:
    def fmt(v):
        return f"{v:.{digits}g}" if isinstance(v, float) else str(v)

    head = "| " + " | ".join(records.columns) + " |"
    rule = "|" + "---|" * len(records.columns)
    body = ["| " + " | ".join(fmt(r[c]) for c in records.columns) + " |" for r in records]
    return "\n".join([head, rule, *body])


def _run(K, M, N, lr, t_max, seeds, seed, rules, per_decade, method="gram"):
    """ODE and simulation of each of ``rules`` (the rule and its contrast) from one set of
    draws (the report's :func:`draw`); also returns the draws and each rule's input seed
    (for simulation (b))."""
    config = TeacherStudentConfig(rule=rules[0], contrast=rules[1], K=K, M=M, N=N, lr=lr,
                                  t_max=t_max, seeds=seeds, seed=seed,
                                  per_decade=per_decade, method=method)
    t = config.times()
    init, rule_seqs = draw(config)
    results = {rule: teacher_student_result(init, rule, config, t, rng=seq, progress=True)
               for rule, seq in zip(config.rules, rule_seqs, strict=True)}
    return results, init, dict(zip(config.rules, rule_seqs, strict=True))


def _harness(init, rule, seq, s, lr, t, N):
    """Simulation (b): draw ``s`` trained by alignlab's own layers
    (:func:`alignlab.train.train_teacher_student`) on the inputs the explicit simulator
    drew for it (``InputStream(N, rng=seq, index=s)``)."""
    from alignlab.data.stream import InputStream
    from alignlab.train.teacher_student import train_teacher_student

    a = lambda x: np.asarray(x[s], dtype=np.float64)  # noqa: E731
    return train_teacher_student((a(init.B), a(init.A)), a(init.w), a(init.v),
                                 a(init.feedback), rule=rule, lr=lr,
                                 record_steps=np.round(t * N).astype(int),
                                 inputs=InputStream(N, rng=seq, index=s))


def trend(out: Path, Ns=(500, 1000, 2000), seeds=8, t_max=200.0, harness_draws=2) -> Records:
    from alignlab import theory

    rows, curves = [], {}
    for N in Ns:
        _say(f"trend: N = {N}")
        res, init, seqs = _run(2, 2, N, 0.2, t_max, seeds, 0, ("dfa", "bp"), 10,
                               method="explicit")
        for rule, r in res.items():
            keep = (r.eg_ode > EG_FLOOR) & (r.t > 0)[None, :]
            rel = np.abs(r.eg_sim / r.eg_ode - 1)[keep]
            hb = {"harness_draws": 0, "harness_vs_sim_max_rel": float("nan"),
                  "harness_median_rel_dev_eg": float("nan")}
            if N == Ns[0]:  # simulation (b), alignlab's layers, on the first draws
                _say(f"trend: N = {N}, {rule}, {harness_draws} draws through the harness")
                dev, rel_b = [], []
                T, A = np.asarray(init.order_parameters()[2]), np.asarray(init.A)
                for s in range(harness_draws):
                    run = _harness(init, rule, seqs[rule], s, 0.2, r.t, N)
                    for name in "QRv":
                        ref = getattr(r, f"{name}_sim")[s]
                        dev.append(np.abs(getattr(run, name) - ref).max() / np.abs(ref).max())
                    eg_b = theory.generalisation_error(
                        run.Q, run.R, np.broadcast_to(T[s], (len(r.t), *T.shape[1:])),
                        np.broadcast_to(A[s], (len(r.t), A.shape[1])), run.v)
                    k = keep[s]
                    rel_b.append(np.abs(eg_b / r.eg_ode[s] - 1)[k])
                hb = {"harness_draws": harness_draws,
                      "harness_vs_sim_max_rel": float(max(dev)),
                      "harness_median_rel_dev_eg": float(np.median(np.concatenate(rel_b)))}
            rows.append({
                "rule": rule, "N": N, "draws": seeds,
                "median_rel_dev_eg": float(np.median(rel)),
                "p90_rel_dev_eg": float(np.quantile(rel, 0.9)),
                "median_x_sqrtN": float(np.median(rel) * np.sqrt(N)),
                "max_abs_dev_R": float(np.abs(r.R_sim - r.R_ode).max()),
                "max_abs_dev_Q": float(np.abs(r.Q_sim - r.Q_ode).max()),
                "max_abs_dev_v": float(np.abs(r.v_sim - r.v_ode).max()),
                "max_abs_dev_cos": float(np.abs(r.alignment_sim - r.alignment_ode).max()),
                **hb,
            })
            curves[(rule, N)] = r
    table = Records(rows)

    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4), layout="constrained")
    ax_a, ax_b = fig.subplots(1, 2)
    colors = {500: "#9ecae1", 1000: "#4292c6", 2000: "#08306b"}
    for (rule, N), r in curves.items():
        if rule != "dfa":
            continue
        rel = np.abs(r.eg_sim / r.eg_ode - 1)
        med = np.array([np.median(rel[:, i][r.eg_ode[:, i] > EG_FLOOR])
                        if (r.eg_ode[:, i] > EG_FLOOR).any() else np.nan
                        for i in range(len(r.t))])
        ax_a.plot(r.t[1:], med[1:], color=colors[N], label=f"N = {N}")
    ax_a.axhline(0.03, color="k", ls="--", lw=1, label="3%")
    ax_a.set(xscale="log", yscale="log", xlabel="t", ylabel="median |eg_sim/eg_ode - 1|",
             title="(a) DFA, K = M = 2, lr 0.2: deviation over time")
    ax_a.legend(frameon=False, fontsize=8)
    for rule, marker in (("dfa", "o"), ("bp", "s")):
        sel = [row for row in table if row["rule"] == rule]
        ax_b.plot([row["N"] for row in sel], [row["median_rel_dev_eg"] for row in sel],
                  marker + "-", label=rule.upper())
    n = np.array(Ns, float)
    ax_b.plot(n, 0.03 * np.sqrt(500 / n), "k--", lw=1, label=r"$0.03\sqrt{500/N}$")
    ax_b.set(xscale="log", yscale="log", xlabel="N", ylabel="median |eg_sim/eg_ode - 1|",
             title="(b) the trend with N (eg > 1e-3)")
    ax_b.legend(frameon=False, fontsize=8)
    write_figure_set(out, fig, {"trend.csv": table.to_csv}, stem="trend")
    print(_markdown(table))
    return table


def _crossing(t: np.ndarray, a: np.ndarray, level: float) -> float:
    """First time ``a`` reaches ``level`` (linear in log t between records), NaN if never."""
    idx = np.flatnonzero(a >= level)
    if idx.size == 0:
        return float("nan")
    i = int(idx[0])
    if i == 0:
        return float(t[0])
    lt0, lt1 = np.log(max(t[i - 1], t[1] / 10)), np.log(t[i])
    f = (level - a[i - 1]) / (a[i] - a[i - 1])
    return float(np.exp(lt0 + f * (lt1 - lt0)))


def _slope_at(t, a, tc) -> float:
    """d cos / d log t near the crossing (flatness of the curve there)."""
    i = int(np.clip(np.searchsorted(t, tc), 2, len(t) - 1))
    return float((a[i] - a[i - 1]) / (np.log(t[i]) - np.log(t[i - 1])))


def align(out: Path, seeds=12, N=1000, t_max=1000.0) -> Records:
    band = TeacherStudentConfig(N=N).band
    rows = []
    cases = [(2, 2, 0.2), (2, 2, 1.0), (4, 2, 0.2), (4, 2, 1.0)]
    curves = []
    for case, (K, M, lr) in enumerate(cases):
        _say(f"align: K = {K}, M = {M}, lr {lr}")
        res, _init, _seqs = _run(K, M, N, lr, t_max, seeds, 100 + case, ("dfa", "bp"), 40)
        d, b = res["dfa"], res["bp"]
        curves.append((K, M, lr, d, b))
        for s in range(seeds):
            peak_ode = float(d.alignment_ode[s].max())
            peak_sim = float(d.alignment_sim[s].max())
            t_ode = _crossing(d.t, d.alignment_ode[s], THRESHOLD)
            t_sim = _crossing(d.t, d.alignment_sim[s], THRESHOLD)
            at_start = bool(d.alignment_ode[s, 0] >= THRESHOLD)  # nothing to time
            timed = np.isfinite(t_ode * t_sim) and not at_start
            eg_at = (float(np.interp(np.log(t_ode), np.log(d.t[1:]), d.eg_ode[s, 1:]))
                     if np.isfinite(t_ode) and not at_start else float("nan"))
            rows.append({
                "K": K, "M": M, "lr": lr, "draw": s,
                "peak_cos_ode": peak_ode, "peak_cos_sim": peak_sim,
                "reaches_ode": bool(peak_ode >= THRESHOLD),
                "reaches_sim": bool(peak_sim >= THRESHOLD),
                "borderline": bool(abs(peak_ode - THRESHOLD) <= BORDER),
                "aligned_at_start": at_start,
                "t_align_ode": t_ode, "t_align_sim": t_sim,
                "t_rel_diff": (t_sim / t_ode - 1) if timed else float("nan"),
                "slope_at_cross": _slope_at(d.t, d.alignment_ode[s], t_ode)
                if timed else float("nan"),
                "time_tol": time_tolerance(_slope_at(d.t, d.alignment_ode[s], t_ode), band)
                if timed else float("nan"),
                "eg_start": float(d.eg_ode[s, 0]), "eg_at_align": eg_at,
                "eg_end_ode": float(d.eg_ode[s, -1]), "eg_end_sim": float(d.eg_sim[s, -1]),
                "cos_end_ode": float(d.alignment_ode[s, -1]),
                "bp_cos_change_ode": float(b.alignment_ode[s, -1] - b.alignment_ode[s, 0]),
                "bp_cos_change_sim": float(b.alignment_sim[s, -1] - b.alignment_sim[s, 0]),
            })
    table = Records(rows)

    summary = []
    for K, M, lr in cases:
        sel = [r for r in table if (r["K"], r["M"], r["lr"]) == (K, M, lr)]
        clear = [r for r in sel if not r["borderline"]]
        both = [r for r in clear if r["reaches_ode"] and r["reaches_sim"]
                and not r["aligned_at_start"]]
        summary.append({
            "K": K, "M": M, "lr": lr, "draws": len(sel),
            "borderline": len(sel) - len(clear),
            "aligned_at_start": sum(r["aligned_at_start"] for r in sel),
            "agree_draw_by_draw": sum(r["reaches_ode"] == r["reaches_sim"] for r in clear),
            "of_clear": len(clear),
            "fraction_reaching_0.9_ode": float(np.mean([r["reaches_ode"] for r in sel])),
            "fraction_reaching_0.9_sim": float(np.mean([r["reaches_sim"] for r in sel])),
            "timed": len(both),
            "times_agree": sum(abs(r["t_rel_diff"]) <= r["time_tol"] for r in both),
            "times_agree_10pct": sum(abs(r["t_rel_diff"]) <= TIME_TOL for r in both),
            "max_abs_t_rel_diff": float(max((abs(r["t_rel_diff"]) for r in both),
                                            default=float("nan"))),
            "median_t_align_ode": float(np.median([r["t_align_ode"] for r in both]))
            if both else float("nan"),
            "median_eg_at_align_over_start": float(np.median(
                [r["eg_at_align"] / r["eg_start"] for r in both])) if both else float("nan"),
            "median_eg_end_over_at_align": float(np.median(
                [r["eg_end_ode"] / r["eg_at_align"] for r in both])) if both else float("nan"),
            "median_bp_cos_change_ode": float(np.median([r["bp_cos_change_ode"] for r in sel])),
        })
    summary = Records(summary)

    from matplotlib.figure import Figure

    fig = Figure(figsize=(18, 7.5), layout="constrained")
    axes = fig.subplots(2, len(curves), sharex=True)
    for j, (K, M, lr, d, b) in enumerate(curves):
        ax_a, ax_b = axes[0, j], axes[1, j]
        t = d.t[1:]
        case = [r for r in table if (r["K"], r["M"], r["lr"]) == (K, M, lr)]
        for s in range(d.alignment_ode.shape[0]):
            c = f"C{s % 10}"
            ax_a.plot(t, d.alignment_ode[s, 1:], color=c, lw=1)
            ax_a.plot(t, d.alignment_sim[s, 1:], "o", color=c, ms=1.2)
            ax_a.plot(t, b.alignment_ode[s, 1:], color=c, lw=0.7, ls=":")
            ax_b.plot(t, d.eg_ode[s, 1:], color=c, lw=1)
            ax_b.plot(t, d.eg_sim[s, 1:], "o", color=c, ms=1.2)
            row = case[s]
            if np.isfinite(row["t_rel_diff"]):  # a timed crossing: x, star if 25% applies
                ax_a.plot(row["t_align_ode"], THRESHOLD, "*" if row["time_tol"] > TIME_TOL
                          else "x", color=c, ms=10 if row["time_tol"] > TIME_TOL else 6,
                          mec="k", mew=0.6)
            if row["borderline"]:
                ax_a.plot(t[-1], d.alignment_ode[s, -1], "s", mfc="none", color=c, ms=7)
        ax_a.axhline(THRESHOLD, color="k", ls="--", lw=1)
        ax_a.set(xscale="log", ylabel="cos(v, b)" if j == 0 else None,
                 title=f"K = {K}, M = {M}, lr {lr}: DFA alignment")
        ax_b.set(xscale="log", yscale="log", xlabel="t", ylabel="eg" if j == 0 else None,
                 title="DFA generalisation error, the same draws")
    fig.suptitle("'Align, then memorise', draw by draw: lines ODE, points simulation (N = "
                 f"{N}), dotted BP's cos(v, b); x: a timed crossing of 0.9, star: one on a "
                 "flat curve (25% tolerance), open square: a borderline draw", fontsize=10)
    write_figure_set(out, fig, {"align_draws.csv": table.to_csv,
                                "align_summary.csv": summary.to_csv}, stem="align")
    print(_markdown(summary))
    print()
    print("borderline draws:", [(r["K"], r["M"], r["lr"], r["draw"], round(r["peak_cos_ode"], 4))
                                for r in table if r["borderline"]])
    print("disagreeing clear draws:",
          [(r["K"], r["M"], r["lr"], r["draw"]) for r in table
           if not r["borderline"] and r["reaches_ode"] != r["reaches_sim"]])
    return table


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("study", choices=("trend", "align"))
    ap.add_argument("--out", default="docs/results/teacher_student", type=Path)
    args = ap.parse_args(argv)
    {"trend": trend, "align": align}[args.study](args.out)


if __name__ == "__main__":
    main()
