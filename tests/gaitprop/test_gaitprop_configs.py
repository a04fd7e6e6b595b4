"""configs/gaitprop: the original setup, validated by the harness's own config loader."""

from pathlib import Path

import pytest

from alignlab.train import load_config

ROOT = Path(__file__).resolve().parents[2] / "configs" / "gaitprop"
RUNS = ["gait-prop", "gait-prop-gamma1e-2", "itp", "tp", "bp"]


@pytest.mark.parametrize("name", RUNS)
def test_configs_load(name):
    cfg = load_config(ROOT / f"{name}.toml")
    assert cfg.model.name == "invertible"
    assert (cfg.model.options["width"], cfg.model.options["hidden_layers"]) == (784, 4)
    assert cfg.optim.name == "uncorrected-adam" and cfg.optim.momentum == 0


def test_the_original_hyperparameters():
    cfg = {name: load_config(ROOT / f"{name}.toml") for name in RUNS}
    for c in cfg.values():
        assert (c.data.name, c.data.val_size, c.data.normalize) == ("fashion-mnist", 0, False)
        assert (c.train.epochs, c.train.batch_size) == (100, 60)
        assert c.train.shuffle is False and c.train.dtype == "float64"
        assert c.optim.betas == (0.9, 0.99) and c.model.options["init"] == "haar"
    lr = {k: c.optim.lr for k, c in cfg.items()}
    assert lr == {"gait-prop": 1e-4, "gait-prop-gamma1e-2": 1e-4, "itp": 1e-4, "tp": 1e-5,
                  "bp": 1e-4}
    strength = {k: c.method.options["penalty_strength"] for k, c in cfg.items()}
    assert strength == {"gait-prop": 0.1, "gait-prop-gamma1e-2": 0.1, "itp": 0.1, "tp": 1000,
                        "bp": 0}
    assert cfg["gait-prop"].method.options["gamma"] == 1e-3
    assert cfg["gait-prop-gamma1e-2"].method.options["gamma"] == 1e-2
    assert cfg["bp"].method.options["penalty"] == "none"
