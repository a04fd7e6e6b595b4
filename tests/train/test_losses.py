"""train.loss (alignlab.train.losses) and the teacher-student config through the loop."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from trainhelpers import tables

from alignlab.train import resolve_config, train
from alignlab.train.config import load_config
from alignlab.train.losses import LOSSES, get_loss
from alignlab.train.rundir import read_csv

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "teacher-student" / "dfa.toml"


def test_squared_error_is_half_the_sum_over_outputs():
    out = torch.tensor([[1.0, 2.0], [0.0, -1.0], [3.0, 0.5]], dtype=torch.float64,
                       requires_grad=True)
    y = torch.tensor([[0.0, 0.0], [1.0, 1.0], [3.0, 0.0]], dtype=torch.float64)
    loss = get_loss("squared-error")
    per_example = [0.5 * (1 + 4), 0.5 * (1 + 4), 0.5 * 0.25]
    total = float(loss(out, y, reduction="sum").detach())
    assert total == pytest.approx(sum(per_example), rel=1e-15)
    mean = loss(out, y)
    assert float(mean.detach()) == pytest.approx(sum(per_example) / 3, rel=1e-15)
    (grad,) = torch.autograd.grad(loss(out, y, reduction="sum"), out)
    torch.testing.assert_close(grad, out.detach() - y)  # d/d out of 1/2 (y - out)^2
    assert loss.hits(out, y) is None


def test_squared_error_of_class_labels_is_one_hot():
    out = torch.tensor([[0.2, 0.9, 0.1], [0.5, 0.1, 0.0]])
    labels = torch.tensor([1, 2])
    loss = get_loss("squared-error")
    onehot = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    torch.testing.assert_close(loss(out, labels), loss(out, onehot))
    assert int(loss.hits(out, labels)) == 1
    ce = get_loss("cross-entropy")
    torch.testing.assert_close(ce(out, labels), torch.nn.functional.cross_entropy(out, labels))
    assert int(ce.hits(out, labels)) == 1
    assert sorted(LOSSES) == ["cross-entropy", "squared-error"]


def test_loss_is_checked_in_one_line():
    with pytest.raises(ValueError, match=r"^`train.loss` must be one of 'cross-entropy', "
                                         r"'squared-error'; got 'mse'\.$"):
        resolve_config(tables(train={"loss": "mse"}))
    with pytest.raises(ValueError, match=r"^`train.loss` must be 'cross-entropy' for model "
                                         r"'invertible'"):
        resolve_config({"model": {"name": "invertible", "width": 6, "num_classes": 3},
                        "method": {"name": "gait-prop"}, "train": {"loss": "squared-error"}})


def test_cross_entropy_on_real_targets_is_refused(tmp_path):
    cfg = load_config(CONFIG, ["train.loss=cross-entropy", "data.n_train=4"])
    with pytest.raises(ValueError) as info:
        train(cfg, tmp_path / "run", quiet=True)
    assert str(info.value) == ("`train.loss` must be 'squared-error' for data set "
                               "'teacher-stream' (its targets are values), got "
                               "'cross-entropy'.")
    assert not (tmp_path / "run").exists()


def test_layer_rates_must_fit_the_model(tmp_path):
    cfg = load_config(CONFIG, ["optim.layer_lr_scales=[1.0]", "data.n_train=4"])
    with pytest.raises(ValueError, match=r"^`optim.layer_lr_scales` must be one factor per "
                                         r"converted layer of the model \(2: '1', '3'\), "
                                         r"got \[1.0\]\.$"):
        train(cfg, tmp_path / "run", quiet=True)
    with pytest.raises(ValueError, match=r"^`optim.layer_lr_scales\[0\]` must be > 0, "
                                         r"got 0.0\.$"):
        load_config(CONFIG, ["optim.layer_lr_scales=[0.0, 1.0]"])


def test_teacher_student_config_trains_end_to_end(tmp_path):
    """configs/teacher-student/dfa.toml at a smoke size: the stream, the bias-free erf MLP,
    the half squared error and the per-layer rates, through `alignlab train`."""
    cfg = load_config(CONFIG, ["train.epochs=2", "data.n_train=300", "data.n_test=200",
                               "optim.layer_lr_scales=[1.0, 0.5]"])
    assert cfg.model.options["activation"] == "erf" and cfg.model.options["bias"] is False
    result = train(cfg, tmp_path / "run", quiet=True)
    assert result.status == "completed"
    rows = read_csv(tmp_path / "run" / "metrics.csv")
    assert [int(r["step"]) for r in rows] == [0, 300, 600]  # batch size 1: a step an example
    assert all(math.isnan(float(r["test_acc"])) for r in rows)  # no accuracy for real targets
    assert float(rows[-1]["test_loss"]) < float(rows[0]["test_loss"])
    groups = {g["name"]: g for g in train_optimizer(cfg)}
    assert groups["layer:3"]["lr"] == pytest.approx(0.5 * cfg.optim.lr)
    model = result.model
    assert [n for n, _ in model.named_parameters()] == ["1.weight", "3.weight"]


def train_optimizer(cfg):
    from alignlab.train.setup import build_run

    return build_run(cfg).optimizer.param_groups


def test_extending_a_stream_run_by_resume_is_exact(tmp_path):
    """Each epoch's fresh examples come from the checkpointed batch generator: a run
    extended by resume draws what the uninterrupted run drew."""
    def config(epochs):
        return load_config(CONFIG, [f"train.epochs={epochs}", "data.n_train=50",
                                    "data.n_test=20", "data.n_inputs=30",
                                    "model.sizes=[30, 2, 1]", "data.sigma=0.1"])

    whole = train(config(3), tmp_path / "whole", quiet=True)
    train(config(1), tmp_path / "part", quiet=True)
    torch.manual_seed(5)  # torch's global generator plays no part
    part = train(config(3), tmp_path / "part", resume=True, quiet=True)
    assert part.resumed_from == (1, 50)
    timing = {"epoch_s", "log_s", "wall_s"}
    rows = [[{k: v for k, v in r.items() if k not in timing} for r in read_csv(p / "metrics.csv")]
            for p in (tmp_path / "whole", tmp_path / "part")]
    assert rows[0] == rows[1]
    for a, b in zip(whole.model.parameters(), part.model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert len({r["train_loss"] for r in rows[0]}) == 4  # the epochs differ
