"""analysis/bench_train.py runs end to end at a smoke size and reports what it says.

No timing is asserted (a shared machine makes any bound flaky). Checked: one row per
variant, in its part; each part's baseline has ratio exactly 1 and every ratio is the
row's median over its baseline's median; the medians lie within each row's range; the
targets sit on the rows the issue names; the CSV holds the same table.
"""

import csv
import runpy
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "analysis" / "bench_train.py"


@pytest.mark.slow
def test_bench_train_smoke(tmp_path):
    bench = runpy.run_path(str(BENCH), run_name="bench_train")
    out = tmp_path / "bench.csv"
    rec = bench["main"](["--data", "synthetic", "--sizes", "20,16,4", "--n-train", "256",
                         "--steps", "2", "--repeats", "2", "--threads", "1", "--out", str(out),
                         "--quiet"])
    variants = bench["VARIANTS"]
    assert [(r["part"], r["variant"]) for r in rec] == [(p, v) for p, v, _, _ in variants]
    by_part = {}
    for r in rec:
        by_part.setdefault(r["part"], []).append(r)
    assert sorted(by_part) == ["a", "b", "c"]
    for part, rows in by_part.items():
        base = rows[0]
        assert base["ratio"] == 1.0 and base["baseline"] == base["variant"]
        for r in rows:
            assert r["baseline"] == base["variant"] and r["repeats"] == 2
            assert r["ratio"] == r["median_s"] / base["median_s"]
            assert r["min_s"] <= r["median_s"] <= r["max_s"] and r["min_s"] > 0
            assert r["measure"] == ("wall_s" if part == "c" else "epoch_s")
    bp_b = next(r for r in by_part["b"] if r["variant"] == "bp")
    assert bp_b["ratio"] == 1.0
    targets = {r["variant"]: r["target"] for r in rec if r["target"] != ""}
    assert targets == {"alignlab train: bp": 1.10, "pfa (r=10, factored)": 1.25,
                       "bp, default logging": 1.05}
    for r in rec:
        if r["target"] != "":
            assert r["within_target"] == ("yes" if r["ratio"] <= r["target"] else "no")
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [row["variant"] for row in rows] == [r["variant"] for r in rec]
    assert [float(row["ratio"]) for row in rows] == [r["ratio"] for r in rec]
