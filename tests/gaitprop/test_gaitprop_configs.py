"""analysis/gaitprop_configs: the original setup, and every [model] / [method] section builds with
alignlab.gaitprop (checked here directly: the harness validates them once it is wired)."""

from pathlib import Path

import pytest
import tomllib
import torch

from alignlab.gaitprop import RULES, UncorrectedAdam, method_options
from alignlab.models.invertible import InvertibleSquare

ROOT = Path(__file__).resolve().parents[2] / "analysis" / "gaitprop_configs"
RUNS = ["gait-prop", "gait-prop-gamma1e-2", "itp", "tp", "bp"]


def _read(path: Path) -> dict:
    """The file with its ``base`` chain merged in key by key (the harness's rule)."""
    raw = tomllib.loads(path.read_text())
    base = raw.pop("base", None)
    if base is None:
        return raw
    merged = _read(path.parent / base)
    for section, table in raw.items():
        merged[section] = {**merged.get(section, {}), **table}
    return merged


@pytest.mark.parametrize("name", RUNS)
def test_sections_build(name):
    cfg = _read(ROOT / f"{name}.toml")
    model = dict(cfg["model"])
    assert model.pop("name") == "invertible"
    with torch.device("meta"):
        net = InvertibleSquare(**model)
    assert net.widths == (784,) * 6  # 4 hidden layers of 784 + the square output layer
    method = dict(cfg["method"])
    rule = method.pop("name")
    assert rule in RULES
    method_options(rule, **method)
    assert cfg["optim"]["name"] == "uncorrected-adam"
    UncorrectedAdam([torch.zeros(1, requires_grad=True)], lr=cfg["optim"]["lr"],
                    betas=tuple(cfg["optim"]["betas"]))


def test_the_original_hyperparameters():
    cfg = {name: _read(ROOT / f"{name}.toml") for name in RUNS}
    for c in cfg.values():
        assert c["data"] == {"name": "fashion-mnist", "val_size": 0, "normalize": False}
        assert (c["train"]["epochs"], c["train"]["batch_size"]) == (100, 60)
        assert c["train"]["shuffle"] is False and c["train"]["dtype"] == "float64"
        assert c["optim"]["betas"] == [0.9, 0.99] and c["model"]["init"] == "haar"
    lr = {k: c["optim"]["lr"] for k, c in cfg.items()}
    assert lr == {"gait-prop": 1e-4, "gait-prop-gamma1e-2": 1e-4, "itp": 1e-4, "tp": 1e-5,
                  "bp": 1e-4}
    strength = {k: c["method"]["penalty_strength"] for k, c in cfg.items()}
    assert strength == {"gait-prop": 0.1, "gait-prop-gamma1e-2": 0.1, "itp": 0.1, "tp": 1000,
                        "bp": 0}
    assert cfg["gait-prop"]["method"]["gamma"] == 1e-3
    assert cfg["gait-prop-gamma1e-2"]["method"]["gamma"] == 1e-2
