"""The compare study's numbers as Markdown tables: ``OUT/<question>/compare.csv`` ->
``OUT/summary.md`` (what ``docs/compare_study.md`` quotes).

    python analysis/compare_study/summarise.py [OUT]        # default docs/compare_study

``run.py`` calls :func:`write_summary` after its comparisons. Per question, one row per
label (method and the options that differ, seeds pooled) and layer:

* ``c``: Proposition 1's decay factor at the end (mean over seeds);
* measured, predicted (Props. 1 + 3 dynamics) and fixed-point angles at the end, mean over
  seeds (measured also +/- SD over seeds);
* ``max |m - p|``: the largest end-of-training ``|measured - predicted|`` over seeds;
* ``max |m - p|, t >= 1``: the largest ``|measured - predicted|`` over every log point
  from the end of epoch 1 on, over seeds (the time course);
* the finite-size distributions at the end (``alignlab compare``): the MC at the fixed
  point (its SD and ``z``), and the dynamics MC at the run's ``c_t`` (``dyn`` mean, SD and
  ``z``): ranges over seeds.

Nothing is computed here that ``compare.csv`` does not hold; NaN columns print as ``-``.

Issue 15's table of every rule (:func:`write_rules`, ``OUT/rules.md`` and
``OUT/rules.{png,pdf}``): the questions of :data:`RULE_QUESTIONS` that have a
``compare.csv``, one row per label and layer with its theory and quantity, measured at the
end (mean +/- SD over seeds), predicted, the band's SD and ``z`` (ranges over seeds), and
one figure of measured against predicted across all of them (``alignlab compare``'s panel
(e), every question's final rows together).
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SUMMARY_FILE = "summary.md"
RULES_FILE = "rules"  # .md, .png, .pdf
#: the questions whose final rows make the table of every rule (issue 15); ``gaitprop`` is
#: an ``alignlab compare`` of GAIT-prop and BP runs (docs/compare_study.md says which)
RULE_QUESTIONS = ("fixedpoint", "kp", "mirror", "sign", "other", "gaitprop")
#: compare.csv columns read as numbers for the table and the figure
_NUMBERS = ("measured_deg", "predicted_deg", "band_mean_deg", "band_sd_deg", "band_z")


def _float(text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def _fmt(x: float, digits: int = 2) -> str:
    return "-" if not math.isfinite(x) else f"{x:.{digits}f}"


def _span(values: list[float], digits: int = 2) -> str:
    vals = [v for v in values if math.isfinite(v)]
    if not vals:
        return "-"
    lo, hi = min(vals), max(vals)
    return _fmt(lo, digits) if lo == hi else f"{_fmt(lo, digits)} .. {_fmt(hi, digits)}"


def _mean(values: list[float]) -> float:
    vals = [v for v in values if math.isfinite(v)]
    return statistics.fmean(vals) if vals else math.nan


def question_table(path: Path) -> str:
    """The Markdown table of one ``compare.csv``."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    groups: dict[tuple[str, str], dict[str, list]] = defaultdict(lambda: defaultdict(list))
    order: list[tuple[str, str]] = []
    for r in rows:
        key = (r["label"], r["layer"])
        if key not in groups:
            order.append(key)
        g = groups[key]
        g["n_out"] = [int(r["n_out"])]
        g["n_mid"] = [r["n_mid"]]
        m, p = _float(r["measured_deg"]), _float(r["predicted_deg"])
        if _float(r["epoch_frac"]) >= 1:
            g["late"].append(abs(m - p))
        if r["final"] == "True":
            for col in ("decay_c", "measured_deg", "predicted_deg", "fixed_point_deg",
                        "mc_sd_deg", "z", "dyn_mean_deg", "dyn_sd_deg", "dyn_z"):
                g[col].append(_float(r.get(col, "")))
            g["end"].append(abs(m - p))
            g["runs"].append(r["run"])
    head = ("| label | layer | n_out | n_mid | seeds | c | measured (mean +/- SD) | predicted "
            "| fixed pt | max abs(m - p) | max abs(m - p), t >= 1 | MC SD | z | dyn mean "
            "| dyn SD | dyn z |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for key in order:
        g = groups[key]
        meas = [v for v in g["measured_deg"] if math.isfinite(v)]
        sd = statistics.stdev(meas) if len(meas) > 1 else math.nan
        mean_meas = _mean(meas)
        lines.append(
            f"| {key[0]} | {key[1]} | {g['n_out'][0]} | {g['n_mid'][0] or '-'} | "
            f"{len(g['runs'])} | {_fmt(_mean(g['decay_c']), 3)} | {_fmt(mean_meas)}"
            f"{'' if not math.isfinite(sd) else ' +/- ' + _fmt(sd)} | "
            f"{_fmt(_mean(g['predicted_deg']))} | {_fmt(_mean(g['fixed_point_deg']))} | "
            f"{_fmt(max(g['end'], default=math.nan))} | "
            f"{_fmt(max((v for v in g['late'] if math.isfinite(v)), default=math.nan))} | "
            f"{_span(g['mc_sd_deg'], 3)} | {_span(g['z'], 1)} | "
            f"{_span(g['dyn_mean_deg'])} | {_span(g['dyn_sd_deg'], 3)} | "
            f"{_span(g['dyn_z'], 1)} |")
    return "\n".join(lines)


def write_summary(out_root: Path) -> Path | None:
    """``out_root/summary.md`` from every ``out_root/<question>/compare.csv`` (written
    atomically); ``None`` when there is no ``compare.csv``."""
    from alignlab._output import write_atomic

    parts = []
    for csv_path in sorted(Path(out_root).glob("*/compare.csv")):
        parts.append(f"### {csv_path.parent.name}\n\n{question_table(csv_path)}\n")
    if not parts:
        return None
    text = ("<!-- written by analysis/compare_study/summarise.py from */compare.csv -->\n\n"
            + "\n".join(parts))
    target = Path(out_root) / SUMMARY_FILE
    write_atomic(target, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return target


def final_records(path: Path, question: str) -> list[dict]:
    """The final rows of one ``compare.csv``, numbers parsed, the question added."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["final"] == "True"]
    for r in rows:
        r.update({k: _float(r.get(k, "")) for k in _NUMBERS}, question=question)
    return rows


def rules_table(final: list[dict]) -> str:
    """The Markdown table of every rule: one row per (question, label, layer), seeds
    pooled."""
    groups: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for r in final:
        groups[(r["question"], r["label"], r["layer"])].append(r)
    head = ("| question | label | layer | theory | quantity | seeds | measured (mean +/- SD) "
            "| predicted | measured - predicted | band SD | band z |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for (question, label, layer), rs in groups.items():
        meas = [r["measured_deg"] for r in rs if math.isfinite(r["measured_deg"])]
        sd = statistics.stdev(meas) if len(meas) > 1 else math.nan
        pred = _mean([r["predicted_deg"] if math.isfinite(r["predicted_deg"])
                      else r["band_mean_deg"] for r in rs])
        diff = _mean(meas) - pred
        lines.append(
            f"| {question} | {label} | {layer} | {rs[0]['theory']} | {rs[0]['quantity']} | "
            f"{len(rs)} | {_fmt(_mean(meas))}{'' if not math.isfinite(sd) else ' +/- ' + _fmt(sd)}"
            f" | {_fmt(pred)} | {_fmt(diff)} | {_span([r['band_sd_deg'] for r in rs], 3)} | "
            f"{_span([r['band_z'] for r in rs], 1)} |")
    return "\n".join(lines)


def write_rules(out_root: Path) -> list[Path]:
    """``rules.md`` and ``rules.{png,pdf}`` in ``out_root`` from the questions of
    :data:`RULE_QUESTIONS` there (each written atomically); ``[]`` when none has a
    ``compare.csv``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from alignlab.reports._figure import write_figure_set
    from alignlab.reports.compare import plot_measured_against_predicted

    final = []
    for question in RULE_QUESTIONS:
        path = Path(out_root) / question / "compare.csv"
        if path.is_file():
            final += final_records(path, question)
    if not final:
        return []
    text = ("<!-- written by analysis/compare_study/summarise.py from */compare.csv -->\n\n"
            + rules_table(final) + "\n")
    fig, ax = plt.subplots(figsize=(8, 7), layout="constrained")
    plot_measured_against_predicted(  # one marker per question and label
        ax, [dict(r, label=f"{r['question']}: {r['label']}") for r in final])
    ax.set_title("measured against predicted at the end of training, every rule and layer "
                 "(issue 15)", loc="left", fontsize=9)
    written = write_figure_set(Path(out_root), fig, {
        f"{RULES_FILE}.md": lambda p: p.write_text(text, encoding="utf-8")}, stem=RULES_FILE)
    return [written[f"{RULES_FILE}.{ext}"] for ext in ("md", "png", "pdf")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="?", type=Path, default=REPO / "docs/compare_study",
                        help="the study's results folder (default docs/compare_study)")
    args = parser.parse_args(argv)
    target = write_summary(args.out)
    if target is None:
        print(f"summarise: no */compare.csv under {args.out}", file=sys.stderr)
        return 2
    print(target.read_text())
    for path in write_rules(args.out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
