"""The training loop on tiny synthetic data: it learns, it is deterministic, its logs are
what they say, factored PFA equals explicit PFA, NaN stops it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from trainhelpers import write_config

from alignlab.cli import main
from alignlab.theory.decay import decay_factor_schedule
from alignlab.train import Diverged, load_config, resolve_config, train
from alignlab.train.rundir import LAYER_COLUMNS, METRIC_COLUMNS, read_csv, read_summary

TIMING = {"epoch_s", "log_s", "wall_s"}  # the only columns allowed to differ between runs

METHODS = [  # (method, options, lr): one lr (DFA's Xavier-scaled B trains at it too)
    ("bp", {}, 0.05), ("fa", {}, 0.05), ("dfa", {}, 0.05), ("usf", {}, 0.05), ("kp", {}, 0.05),
    ("wm", {}, 0.05), ("pfa", {"expansion_ratio": 4}, 0.05), ("pfa-o", {}, 0.05),
]


def _run(tmp_path, name="run", overrides=(), **changes):
    cfg = write_config(tmp_path / f"{name}.toml", **changes)
    run_dir = tmp_path / name
    result = train(load_config(cfg, list(overrides)), run_dir, quiet=True)
    return result, read_csv(run_dir / "metrics.csv"), read_csv(run_dir / "layers.csv")


def _strip(rows, drop=TIMING):
    return [{k: v for k, v in r.items() if k not in drop} for r in rows]


@pytest.mark.parametrize("method,options,lr", METHODS, ids=[m[0] for m in METHODS])
def test_each_method_learns(tmp_path, method, options, lr):
    result, metrics, layers = _run(tmp_path, method={"name": method, **options},
                                   optim={"lr": lr}, wm={"initial_steps": 20, "lr": 0.05})
    assert result.status == "completed"
    assert [int(r["epoch"]) for r in metrics] == [0, 1, 2, 3]
    assert list(metrics[0]) == METRIC_COLUMNS and list(layers[0]) == LAYER_COLUMNS
    loss = [float(r["train_loss"]) for r in metrics]
    assert loss[-1] < 0.75 * loss[0], loss
    # chance is the majority class's share of the 400 test examples (classes are about
    # balanced, ~0.25); 6 binomial SEs (0.13 at p = 0.25) above it is not luck
    test_y = _test_labels()
    chance = np.bincount(test_y).max() / len(test_y)
    se = math.sqrt(chance * (1 - chance) / len(test_y))
    assert float(metrics[-1]["test_acc"]) > chance + 6 * se, metrics[-1]["test_acc"]
    # one layers.csv row per converted layer per epoch, for the configured method
    assert len(layers) == 3 * 4 and {r["method"] for r in layers} == {method}


def _test_labels():
    from alignlab.data import load_dataset

    s = load_dataset("synthetic", n_train=600, n_test=400, input_shape=(20,), num_classes=4)
    return s.test.y.numpy()


def test_alignment_columns_move_as_the_methods_say(tmp_path):
    # KP's feedback decays towards W^T: its weight angle falls from ~90 deg
    _, _, layers = _run(tmp_path, "kp", method={"name": "kp"}, optim={"weight_decay": 0.05})
    hidden = [r for r in layers if r["layer"] == "3"]
    assert float(hidden[0]["angle_deg"]) > 80 and float(hidden[-1]["angle_deg"]) < 60
    # WM: the mirror phase aligns the feedback before training starts
    _, _, layers = _run(tmp_path, "wm", method={"name": "wm"},
                        wm={"initial_steps": 200, "lr": 0.05, "n_samples": 128})
    hidden = [r for r in layers if r["layer"] == "3"]
    assert float(hidden[0]["angle_deg"]) > 80 and float(hidden[1]["angle_deg"]) < 30
    # per-layer scalars: at epoch 0 W_t = W_0
    r0 = layers[0]
    assert float(r0["w_sq"]) == float(r0["w_dot_w0"]) == float(r0["w0_sq"])


def test_same_seed_same_numbers_and_logging_does_not_change_training(tmp_path):
    torch.manual_seed(1)  # whatever torch's global generator holds: train.seed decides
    _, m1, l1 = _run(tmp_path, "a", method={"name": "brsf"})  # brSF draws every step
    torch.manual_seed(2)
    _, m2, l2 = _run(tmp_path, "b", method={"name": "brsf"})
    assert _strip(m1) == _strip(m2) and l1 == l2  # exact: the CSVs hold repr(float)
    _, m3, l3 = _run(tmp_path, "c", method={"name": "brsf"},
                     train={"log_every_steps": 7, "probe_size": 32})
    drop = TIMING | {"update_angle_deg", "update_norm_ratio"}  # another probe size
    assert _strip(m3, drop) == _strip(m1, drop)
    epoch_ends = {int(r["step"]) for r in m3}
    mid = {int(r["step"]) for r in l3} - epoch_ends  # the extra mid-epoch log points
    assert mid == {s for s in range(1, max(epoch_ends)) if s % 7 == 0} - epoch_ends
    at_ends = [r for r in l3 if int(r["step"]) in epoch_ends]
    assert _strip(at_ends, drop) == _strip(l1, drop)
    _, m4, _ = _run(tmp_path, "d", method={"name": "brsf"}, train={"seed": 1})
    assert _strip(m4) != _strip(m1)


def test_a_run_never_touches_torchs_global_generator(tmp_path):
    # brSF's per-step draws, the probe's F_0 and update angles, evaluation: none of them
    # draws from (or seeds) the global generator
    torch.manual_seed(3)
    before = torch.get_rng_state()
    _run(tmp_path, method={"name": "brsf"}, train={"epochs": 2, "log_every_steps": 7})
    assert torch.equal(torch.get_rng_state(), before)


def test_schedules_and_decay_factor_follow_the_config(tmp_path):
    overrides = ["optim.weight_decay_burst=0.02", "optim.lr_milestones=[2]",
                 "optim.lr_gamma=0.5"]
    _, metrics, layers = _run(tmp_path, overrides=overrides,
                              method={"name": "pfa", "expansion_ratio": 4})
    assert [float(r["lr"]) for r in metrics] == [0.05, 0.05, 0.05, 0.025]
    assert [float(r["weight_decay"]) for r in metrics] == [0.02, 0.02, 1e-4, 1e-4]
    # decay_c is Proposition 1's c_t for the per-step schedule the loop applied ...
    steps = [int(r["step"]) for r in metrics]
    per_epoch = np.diff(steps)  # 19 steps per epoch (600 / 32)
    lr = np.repeat([0.05, 0.05, 0.025], per_epoch)
    wd = np.repeat([0.02, 1e-4, 1e-4], per_epoch)
    c = decay_factor_schedule(lr, wd, 0.9)
    logged = [float(r["decay_c"]) for r in layers if r["layer"] == "1"]
    np.testing.assert_allclose(logged, c[steps], rtol=1e-12)
    # ... and the factored layers' own factor, advanced by the optimiser hook from the
    # param groups' lr and weight decay, is the same number
    ck = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    extra = [v for k, v in ck["model"].items() if k.endswith("_extra_state")]
    cs = [_find_c(e) for e in extra]
    assert cs and all(x is not None for x in cs)
    np.testing.assert_allclose(cs, c[-1], rtol=1e-12)


def _find_c(state):
    if isinstance(state, dict):
        if "c" in state and isinstance(state["c"], float):
            return state["c"]
        for v in state.values():
            found = _find_c(v)
            if found is not None:
                return found
    return None


def test_factored_and_explicit_pfa_give_the_same_run_in_float64(tmp_path):
    common = {"method": {"name": "pfa", "expansion_ratio": 4},
              "train": {"dtype": "float64", "epochs": 2}, "optim": {"weight_decay_burst": 0.02}}
    _, mf, lf = _run(tmp_path, "factored", overrides=["method.state=factored"], **common)
    _, me, le = _run(tmp_path, "explicit", overrides=["method.state=explicit"], **common)
    # float64 rounding (~1e-16 per operation) grown over 38 steps stays far below 1e-10;
    # a wrong decay factor or a missed schedule change moves these by > 1e-4
    for col in ("train_loss", "test_loss", "update_angle_deg", "update_norm_ratio"):
        np.testing.assert_allclose([float(r[col]) for r in mf], [float(r[col]) for r in me],
                                   rtol=1e-10, err_msg=col)
    for col in ("train_acc", "test_acc"):
        assert [r[col] for r in mf] == [r[col] for r in me]
    for col in ("angle_deg", "norm_ratio", "w_sq", "fb0_sq", "w_dot_fb0"):
        np.testing.assert_allclose([float(r[col]) for r in lf], [float(r[col]) for r in le],
                                   rtol=1e-10, err_msg=col)


def test_nan_loss_stops_with_status_4_and_keeps_the_checkpoint(tmp_path, capsys):
    cfg = write_config(tmp_path / "c.toml")
    with pytest.raises(Diverged, match="loss is (nan|inf)"):
        train(load_config(cfg, ["optim.lr=1e6"]), tmp_path / "r1", quiet=True)
    s = read_summary(tmp_path / "r1")
    assert s["status"] == "diverged" and s["epochs_completed"] == 0
    ck = torch.load(tmp_path / "r1" / "checkpoint.pt", weights_only=False)
    assert ck["epoch"] == 0 and all(torch.isfinite(v).all() for v in ck["model"].values()
                                    if isinstance(v, torch.Tensor) and v.is_floating_point())
    code = main(["train", str(cfg), "--set", "optim.lr=1e6", "--out", str(tmp_path / "r2"),
                 "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 4 and len(err) == 1 and err[0].startswith("alignlab: training diverged")


def test_data_normalize_reaches_the_run(tmp_path, monkeypatch):
    """``data.normalize = false`` trains on pixels / 255; true on (x - mean) / SD."""
    from datafiles import SmallMnist

    from alignlab.data import DATASETS
    from alignlab.train.setup import load_data

    files = SmallMnist(n_train=12, n_test=5)
    monkeypatch.setattr(DATASETS["mnist"], "files", files.specs())
    files.write(tmp_path / "data" / "mnist")
    seen = {}
    for normalize in (False, True):
        cfg = resolve_config({"data": {"name": "mnist", "root": str(tmp_path / "data"),
                                       "download": False, "normalize": normalize},
                              "model": {"name": "mlp", "sizes": [784, 10]}})
        _, train_ds, _, _ = load_data(cfg, torch.device("cpu"), torch.float32)
        seen[normalize] = train_ds.x.reshape(12, -1)
    pixels = torch.as_tensor(files.x_train, dtype=torch.float32).reshape(12, -1) / 255
    torch.testing.assert_close(seen[False], pixels)
    mean, std = DATASETS["mnist"].mean[0], DATASETS["mnist"].std[0]
    torch.testing.assert_close(seen[True], (pixels - mean) / std)
