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
    assert len(gam) == 2 * 2 * len(cfg.gammas) * cfg.layers  # forms x dtypes x ...
    assert {r["dtype"] for r in gam} == {"float64", "float32"}
    assert {r["form"] for r in gam} == {"difference", "targets"}
    # the difference form: BP's update at every gamma where no kink is crossed
    clean = [r for r in gam if r["form"] == "difference" and r["kink_units"] == "0"]
    assert clean and all(float(r["angle_deg"]) < (1e-6 if r["dtype"] == "float64" else 0.01)
                         for r in clean)


def test_gamma_claim_checks_flag_a_difference_form_that_is_the_literal_one():
    """check_gamma fails a record whose difference-form rows carry the literal form's
    rounding (as they would if the default form did not reach the rule)."""
    mod = runpy.run_path(str(SCRIPT))
    cfg = mod["SMOKE"]
    rows = []
    for form in ("difference", "targets"):
        for dtype, u in (("float64", 1.1e-16), ("float32", 6e-8)):
            for g in cfg.gammas:
                for layer in range(1, cfg.layers + 1):
                    k = cfg.layers - layer
                    ang = 0.0 if k == 0 else min(90.0, 1e4 * u * g ** -k * 57.3)
                    rows.append({"form": form, "dtype": dtype, "gamma": g, "layer": layer,
                                 "amplification": g ** -k, "angle_deg": ang,
                                 "kink_units": 0, "bp_vs_float64_deg": 0.0})
    fails = mod["check_gamma"](Records(rows), cfg)
    assert any("difference form, float64: worst layer" in f for f in fails)
    assert any("angles vary" in f for f in fails)


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
