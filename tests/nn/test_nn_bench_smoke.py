"""The layer benchmark runs end to end at its smoke size and times what it says it times.

No timing is asserted (a shared machine makes any bound flaky). What is checked is what a
broken benchmark would get wrong: one row per (model, method) entry; each row timed the
model it names (the method and options of its converted layers, all of them; the plain
row an unconverted model); the timed steps trained (the weights moved); and every ratio is
the row's own time over the baseline's, so BP's ratio is exactly 1 and no row is compared
with itself.
"""

import json
import runpy
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "analysis" / "bench_layers.py"

# converted layers of the smoke models: MLP (32, 16, 16, 10): 3 Linear; ResNet-20: 19
# Conv2d + the final Linear
N_LAYERS = {"MLP": 3, "ResNet-20": 20}


@pytest.mark.slow
def test_bench_layers_smoke(tmp_path):
    bench = runpy.run_path(str(BENCH))
    entries = bench["METHODS"]
    steps = 2  # the smoke size's timed steps
    rec = bench["main"](["--smoke", "--device", "cpu", "--threads", "1", "--csv",
                         str(tmp_path / "bench.csv")])
    assert (tmp_path / "bench.json").exists() and (tmp_path / "bench.csv").exists()
    assert json.loads((tmp_path / "bench.json").read_text())["config"]["steps"] == steps

    rows = {(r["model"], r["method"]): r for r in rec}
    assert len(rows) == len(rec) == len(N_LAYERS) * len(entries)  # no duplicates
    for model, n_layers in N_LAYERS.items():
        bp = rows[(model, "bp")]
        plain = rows[(model, "torch.nn (plain BP)")]
        for label, method, options in entries:
            row = rows[(model, label)]
            assert row["steps"] == steps and row["weights_moved"] is True
            if method is None:  # the plain torch model: nothing converted
                assert row["trained_by"] == "torch.nn" and row["n_layers"] == 0
            else:
                assert row["trained_by"] == method and row["n_layers"] == n_layers
                timed = json.loads(row["options"])  # one option set for all its layers
                assert {k: timed[k] for k in options} == options
            # the ratios are this row's statistic over the baseline's
            assert row["ratio_median"] == pytest.approx(row["median_ms"] / bp["median_ms"],
                                                        rel=1e-12)
            assert row["ratio_min"] == pytest.approx(row["min_ms"] / bp["min_ms"], rel=1e-12)
            assert row["ratio_median_vs_torch"] == pytest.approx(
                row["median_ms"] / plain["median_ms"], rel=1e-12)
        assert bp["ratio_median"] == 1.0 and bp["ratio_min"] == 1.0
        assert plain["ratio_median_vs_torch"] == 1.0
        # the factored and explicit PFA rows timed different models
        assert json.loads(rows[(model, "pfa r=10 factored")]["options"])["state"] == "factored"
        assert json.loads(rows[(model, "pfa r=10 (auto)")]["options"])["state"] == "explicit"
    for row in rec:  # the median of the step times is not below their minimum
        assert 0 < row["min_ms"] <= row["median_ms"]
