"""The harness trains models that learn by layer-local targets (GAIT-prop, ITP, TP, BP on an
invertible network) through alignlab.gaitprop.Trainer: configs, logs, determinism, resume."""

from __future__ import annotations

import math

import pytest
import torch
from trainhelpers import tables

import alignlab.train.checkpoint as checkpoint
import alignlab.train.loop as loop
from alignlab.train import load_config, train
from alignlab.train.config import dumps_toml
from alignlab.train.rundir import read_csv, read_summary

TIMING = {"epoch_s", "log_s", "wall_s"}
# a 16-wide invertible net (2 hidden layers + square output) on 16-dim synthetic data
INVERTIBLE = {
    "data": {"input_shape": [16], "normalize": False},
    "model": {"name": "invertible", "width": 16, "hidden_layers": 2, "num_classes": 4},
    "optim": {"name": "uncorrected-adam", "lr": 3e-3, "momentum": 0.0, "betas": [0.9, 0.99],
              "weight_decay": 0.0},
    "train": {"dtype": "float64", "shuffle": False, "log_every_steps": 7},
}
RULES = [("bp", {"penalty": "none"}), ("gait-prop", {"gamma": 1e-2, "penalty_strength": 0.1}),
         ("itp", {"gamma": 1e-2, "penalty_strength": 0.1}),
         ("tp", {"penalty_strength": 1.0})]


def _config(tmp_path, name="run.toml", overrides=(), **changes):
    """The tiny synthetic config (trainhelpers) with INVERTIBLE's sections, then changes."""
    t = tables()
    t["model"] = {}  # the MLP's options do not apply
    for source in (INVERTIBLE, changes):
        for section, values in source.items():
            t.setdefault(section, {}).update(values)
    path = tmp_path / name
    path.write_text(dumps_toml(t))
    return load_config(path, list(overrides))


def _strip(rows):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


@pytest.mark.parametrize("rule,options", RULES, ids=[r for r, _ in RULES])
def test_each_rule_learns_and_logs(tmp_path, rule, options):
    cfg = _config(tmp_path, method={"name": rule, **options})
    result = train(cfg, tmp_path / "run", quiet=True)
    assert result.status == "completed"
    metrics = read_csv(tmp_path / "run" / "metrics.csv")
    layers = read_csv(tmp_path / "run" / "layers.csv")
    loss = [float(r["train_loss"]) for r in metrics]
    assert loss[-1] < loss[1] < loss[0]  # epoch 0 is the untrained eval pass
    assert float(metrics[-1]["test_acc"]) > 0.25 + 0.2  # 4 classes: chance is 0.25
    # every log point has one row per layer; 19 steps/epoch, a row every 7 steps
    assert {r["layer"] for r in layers} == {"layers.0", "layers.1", "layers.2"}
    steps = sorted({int(r["step"]) for r in layers})
    assert steps == [0, 7, 14, 19, 21, 28, 35, 38, 42, 49, 56, 57]
    assert all(r["measure"] == "none" and r["method"] == rule for r in layers)
    for r in layers:
        assert math.isfinite(float(r["ortho_residual"])) and float(r["w_sq"]) > 0
    start = [r for r in layers if r["step"] == "0"]
    assert all(float(r["ortho_residual"]) < 1e-12 for r in start)  # Haar-orthogonal init
    if rule != "bp":  # layers 2.. are inverted: their LU's condition is logged
        assert math.isnan(float(start[0]["condition"]))
        assert all(1 <= float(r["condition"]) < 1e3 for r in start[1:])
    angles = [float(r["update_angle_deg"]) for r in start]
    predicted = [float(r["update_angle_first_order_deg"]) for r in layers]
    if rule == "gait-prop":  # the first-order theory's angle, at every log point
        assert all(math.isfinite(p) for p in predicted)
        assert all(p < 0.01 for p in predicted[:3])  # step 0: orthogonal, predicted 0
    else:
        assert all(math.isnan(p) for p in predicted)
    if rule in ("bp", "gait-prop"):  # orthogonal weights: GAIT-prop's update is BP's
        assert max(angles) < 0.01
        assert float(metrics[0]["update_angle_deg"]) < 0.01
    else:  # ITP lacks the D^2 factor, TP inverts the whole target: not BP
        assert max(angles) > 0.5


def test_same_seed_same_numbers_and_resume_is_exact(tmp_path, monkeypatch):
    cfg = _config(tmp_path, method={"name": "gait-prop", "gamma": 1e-2,
                                    "penalty_strength": 0.1})
    train(cfg, tmp_path / "a", quiet=True)
    a = read_csv(tmp_path / "a" / "metrics.csv"), read_csv(tmp_path / "a" / "layers.csv")
    save, calls = checkpoint.torch_save_atomic, []

    def interrupt_after_epoch_1(obj, path):  # checkpoint of epoch 1 written, then ^C
        save(obj, path)
        calls.append(obj["epoch"])
        if obj["epoch"] == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint, "torch_save_atomic", interrupt_after_epoch_1)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "b", quiet=True)
    assert read_summary(tmp_path / "b")["status"] == "interrupted"
    monkeypatch.setattr(checkpoint, "torch_save_atomic", save)
    train(cfg, tmp_path / "b", resume=True, quiet=True)
    b = read_csv(tmp_path / "b" / "metrics.csv"), read_csv(tmp_path / "b" / "layers.csv")
    assert _strip(a[0]) == _strip(b[0]) and a[1] == b[1]


def test_shuffle_false_visits_the_stored_order(tmp_path, monkeypatch):
    import alignlab.gaitprop as gaitprop  # the loop takes the Trainer from here when needed

    seen = []

    class Recording(gaitprop.Trainer):
        def step(self, x, y, **kw):
            seen.append(y.clone())
            return super().step(x, y, **kw)

    monkeypatch.setattr(gaitprop, "Trainer", Recording)
    for shuffle in (False, True):
        seen.clear()
        train(_config(tmp_path, name=f"{shuffle}.toml", train={"epochs": 2, "shuffle": shuffle,
                                                               "log_every_steps": 0}),
              tmp_path / f"s{shuffle}", quiet=True)
        epoch1, epoch2 = torch.cat(seen[:19]), torch.cat(seen[19:])
        assert torch.equal(epoch1, epoch2) is (not shuffle)


@pytest.mark.parametrize("changes, message", [
    ({"method": {"name": "pfa"}}, "`method.name` must be one of 'bp', 'gait', 'gait-prop'"),
    ({"method": {"name": "tp", "gamma": 0.1}}, "`method.gamma` is not an option of rule 'tp'"),
    ({"method": {"name": "gait-prop", "penalty": "diag"}}, "`method.penalty` must be one of"),
    ({"optim": {"momentum": 0.9}}, "`optim.momentum` must be 0 for optim.name = 'uncorrected"),
    ({"train": {"amp": "bf16", "dtype": "float32"}},
     "`train.amp` must be 'off' for model 'invertible'"),
    ({"train": {"compile": True}}, "`train.compile` must be false for model 'invertible'"),
    ({"data": {"normalize": "no"}}, "`data.normalize` must be true or false"),
    ({"train": {"shuffle": 1}}, "`train.shuffle` must be true or false"),
])
def test_bad_configs_name_the_key(tmp_path, changes, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        _config(tmp_path, **changes)


def test_a_singular_weight_stops_the_run_like_a_divergence(tmp_path, monkeypatch):
    import alignlab.gaitprop as gaitprop

    class Breaking(gaitprop.Trainer):
        def step(self, x, y, **kw):
            if self.steps == 3:
                with torch.no_grad():
                    self.model.layers[1].weight[0] = 0  # rank deficient: no inverse
            return super().step(x, y, **kw)

    monkeypatch.setattr(gaitprop, "Trainer", Breaking)
    cfg = _config(tmp_path, method={"name": "gait-prop", "gamma": 1e-2})
    with pytest.raises(loop.Diverged, match="layers\\[1\\].* at epoch 1, step 4"):
        train(cfg, tmp_path / "run", quiet=True)
    summary = read_summary(tmp_path / "run")
    assert summary["status"] == "diverged" and summary["epochs_completed"] == 0
