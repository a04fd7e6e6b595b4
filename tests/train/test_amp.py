"""CUDA-era options on the CPU: bf16 autocast (train.amp) trains an MLP and ResNet-20,
channels_last runs; fp16 without CUDA and AMP with float64 are refused before any work.
(fp16 with its GradScaler, and everything on CUDA, cannot run here.)"""

from __future__ import annotations

import pytest
import torch
from trainhelpers import write_config

from alignlab.cli import main
from alignlab.train import load_config, train
from alignlab.train.rundir import read_csv

U_BF16 = 2.0**-8  # bf16 unit roundoff (8 significand bits)
RESNET = {"name": "resnet20", "in_channels": 1, "num_classes": 4}
IMAGES = {"input_shape": [1, 16, 16], "n_train": 64, "n_test": 64}  # 2 steps of 32


def _losses(tmp_path, name, **changes):
    cfg = write_config(tmp_path / f"{name}.toml", **changes)
    if changes.get("model", {}).get("name") == "resnet20":  # TINY's MLP sizes do not apply
        text = cfg.read_text().splitlines()
        cfg.write_text("\n".join(line for line in text if not line.startswith("sizes")) + "\n")
    result = train(load_config(cfg), tmp_path / name, quiet=True)
    assert result.status == "completed"
    return [float(r["train_loss"]) for r in read_csv(tmp_path / name / "metrics.csv")]


def _check_bf16_against_float32(bf16, fp32, n_layers):
    # epoch 0 is a forward pass: each of the n_layers converted layers rounds its output to
    # bf16 once (relative error <= U_BF16) and the loss averages over examples, so the
    # two losses differ by less than n_layers * U_BF16 relative; they must differ (else
    # autocast did not engage)
    rel = abs(bf16[0] - fp32[0]) / fp32[0]
    assert 0 < rel < n_layers * U_BF16, (bf16, fp32)
    assert bf16[-1] < bf16[0]  # and it trains


@pytest.mark.parametrize("method", ["bp", "pfa"])
def test_bf16_autocast_trains_an_mlp_on_the_cpu(tmp_path, method):
    common = {"method": {"name": method}, "train": {"epochs": 2}}
    fp32 = _losses(tmp_path, "fp32", **common)
    bf16 = _losses(tmp_path, "bf16", **{**common, "train": {"epochs": 2, "amp": "bf16"}})
    _check_bf16_against_float32(bf16, fp32, n_layers=3)
    assert bf16[-1] < 0.9 * bf16[0]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["bp", "dfa"])
def test_bf16_autocast_and_channels_last_run_resnet20_on_the_cpu(tmp_path, method):
    common = {"model": RESNET, "data": IMAGES, "method": {"name": method},
              "train": {"epochs": 1, "probe_size": 16}}
    fp32 = _losses(tmp_path, "fp32", **common)
    bf16 = _losses(tmp_path, "bf16", **{**common, "train": {
        "epochs": 1, "probe_size": 16, "amp": "bf16", "channels_last": True}})
    n_convs = sum(isinstance(m, torch.nn.Conv2d) for m in _resnet().modules())
    _check_bf16_against_float32(bf16, fp32, n_layers=n_convs + 1)


def _resnet():
    from alignlab.models import build_model

    return build_model("resnet20", in_channels=1, num_classes=4)


def test_amp_settings_are_validated_before_any_work(tmp_path, capsys):
    cfg = write_config(tmp_path / "c.toml")
    out = tmp_path / "run"
    cases = [
        (["train.amp=fp16"], "`train.amp` must be 'off' or 'bf16' on cpu"),
        (["train.amp=fp32"], "`train.amp` must be one of"),
        (["train.amp=bf16", "train.dtype=float64"], "`train.amp` must be 'off' with"),
        (["train.channels_last=1"], "`train.channels_last` must be true or false"),
    ]
    for sets, text in cases:
        argv = ["train", str(cfg), "--out", str(out)]
        for s in sets:
            argv += ["--set", s]
        assert main(argv) == 2, sets
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and text in err[0], err
        assert not out.exists()
    if not torch.cuda.is_available():  # 'auto' resolves to the CPU: refused at start
        argv = ["train", str(cfg), "--out", str(out), "--set", "train.device=auto",
                "--set", "train.amp=fp16"]
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "`train.amp` must be 'off' or 'bf16' on cpu" in err[0]
        assert not out.exists()


def test_compile_is_refused_where_it_cannot_trace_the_backward(tmp_path, capsys):
    # DFA hands the output error to the layers' backward through a hook on the root
    cfg = write_config(tmp_path / "c.toml", method={"name": "dfa"}, train={"compile": True})
    out = tmp_path / "run"
    assert main(["train", str(cfg), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "`train.compile` must be false for this model" in err[0]
    assert not out.exists()
