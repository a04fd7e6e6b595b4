"""The layer benchmark runs end to end at its smoke size (timings are not checked)."""

import runpy
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "analysis" / "bench_layers.py"


@pytest.mark.slow
def test_bench_layers_smoke(tmp_path):
    main = runpy.run_path(str(BENCH))["main"]
    rec = main(["--smoke", "--device", "cpu", "--threads", "1", "--csv",
                str(tmp_path / "bench.csv")])
    assert len(rec) == 2 * len(runpy.run_path(str(BENCH))["METHODS"])
    assert set(rec.column("model")) == {"MLP", "ResNet-20"}
    assert all(r > 0 for r in rec.column("ratio_median"))
    assert (tmp_path / "bench.json").exists()
