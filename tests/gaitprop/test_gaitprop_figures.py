"""analysis/gaitprop_figures.py at its smoke size: files, rows, and claim checks that can fail."""

import csv
import runpy
from pathlib import Path

import pytest

from alignlab import Records

SCRIPT = Path(__file__).resolve().parents[2] / "analysis" / "gaitprop_figures.py"


@pytest.mark.slow
def test_figures_smoke(tmp_path):
    mod = runpy.run_path(str(SCRIPT))
    assert mod["main"](["--smoke", "--out", str(tmp_path)]) == 0  # every claim holds
    cfg = mod["SMOKE"]
    for stem in ("gaitprop_mismatch", "gaitprop_gamma"):
        for ext in ("csv", "png", "pdf"):
            assert (tmp_path / f"{stem}.{ext}").stat().st_size > 0
    with open(tmp_path / "gaitprop_mismatch.csv") as fh:
        mis = list(csv.DictReader(fh))
    # (no perturbation + each scale + Gaussian) x layers
    assert len(mis) == (len(cfg.scales) + 2) * cfg.layers
    assert all(float(r["angle_deg"]) == 0 for r in mis if int(r["layer"]) == cfg.layers)
    with open(tmp_path / "gaitprop_gamma.csv") as fh:
        gam = list(csv.DictReader(fh))
    assert len(gam) == 2 * len(cfg.gammas) * cfg.layers
    assert {r["dtype"] for r in gam} == {"float64", "float32"}


def test_claim_checks_flag_a_wrong_record():
    mod = runpy.run_path(str(SCRIPT))
    cfg = mod["SMOKE"]
    rows = []
    for s in (0.0, 1e-4, 1e-3, 1e-2):
        for layer in range(1, cfg.layers + 1):
            top = layer == cfg.layers
            rows.append({"init": "haar", "scale": s, "layer": layer, "residual_mean": 10 * s,
                         "angle_deg": 0.0 if top else 1e-9 + 5 * s ** 2,  # slope 2, not 1
                         "first_order_deg": 0.0 if top else 5 * s, "kink_units": 0})
    rows += [{"init": "gaussian", "scale": float("nan"), "layer": la, "residual_mean": 10.0,
              "angle_deg": 30.0, "first_order_deg": float("nan"), "kink_units": -1}
             for la in range(1, cfg.layers + 1)]
    fails = mod["check_mismatch"](Records(rows), cfg)
    assert any("slope" in f for f in fails)
    assert any("Gaussian" in f for f in fails)
