"""The ``train`` subcommand's arguments and exit statuses (bad input: 2, one line, nothing
written)."""

from __future__ import annotations

import argparse

from trainhelpers import write_config

from alignlab.cli import main
from alignlab.train.cli import register


def test_register_adds_train_and_sweep_without_importing_torch():
    import subprocess
    import sys

    code = ("import argparse, sys; from alignlab.train.cli import register; "
            "p = argparse.ArgumentParser(); register(p.add_subparsers(dest='c'), None); "
            "a = p.parse_args(['train', 'x.toml', '--set', 'a.b=1']); "
            "print(a.func.__name__, a.sets, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["cmd_train", "['a.b=1']", "False"]
    p = argparse.ArgumentParser()
    register(p.add_subparsers(dest="c"), argparse.ArgumentParser)
    a = p.parse_args(["sweep", "a.toml", "b.toml", "--grid", "train.seed=0,1", "--jobs", "2"])
    assert (a.configs, a.grid, a.jobs, a.launcher) == (["a.toml", "b.toml"],
                                                       ["train.seed=0,1"], 2, "local")


def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys):
    cfg = write_config(tmp_path / "c.toml")
    out = tmp_path / "run"
    cases = [
        (["train", str(cfg), "--set", "train.epochs=-1", "--out", str(out)], "`train.epochs`"),
        (["train", str(tmp_path / "nope.toml"), "--out", str(out)], "`CONFIG`"),
        (["train", "--resume", str(tmp_path)], "`--resume`"),
        (["train", str(cfg), "--resume", str(tmp_path)], "`--resume`"),
        (["train"], "`CONFIG`"),
        (["train", str(cfg), "--out", str(cfg)], "`--out`"),
    ]
    for argv, key in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"alignlab: error: {key}"), err
        assert not out.exists()


def test_train_writes_the_run_directory_and_refuses_to_overwrite_it(tmp_path, capsys):
    cfg = write_config(tmp_path / "c.toml", train={"epochs": 1})
    out = tmp_path / "run"
    assert main(["train", str(cfg), "--out", str(out)]) == 0
    assert "completed: epoch 1" in capsys.readouterr().out
    assert {p.name for p in out.iterdir()} == {"config.toml", "metrics.csv", "layers.csv",
                                               "checkpoint.pt", "summary.json"}
    assert main(["train", str(cfg), "--out", str(out)]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert main(["train", "--resume", str(out)]) == 0  # completed: nothing to do


def test_resume_with_more_epochs_extends_the_run_exactly(tmp_path, capsys):
    # a 2-epoch run extended to 3 is the 3-epoch run (its files and config say 3)
    from alignlab.train.rundir import read_csv, read_summary

    timing = {"epoch_s", "log_s", "wall_s"}

    def rows(run, name):
        return [{k: v for k, v in r.items() if k not in timing} for r in read_csv(run / name)]

    cfg = write_config(tmp_path / "c.toml", data={"n_train": 300},
                       train={"epochs": 3, "batch_size": 32, "log_every_steps": 5})
    whole, short = tmp_path / "whole", tmp_path / "short"
    assert main(["train", str(cfg), "--out", str(whole), "--quiet"]) == 0
    assert main(["train", str(cfg), "--set", "train.epochs=2", "--out", str(short),
                 "--quiet"]) == 0
    for argv, key in [
        (["train", "--resume", str(short), "--set", "train.epochs=1"], "`train.epochs`"),
        (["train", "--resume", str(short), "--set", "optim.lr=0.5"], "`--set optim.lr`"),
        (["train", "--resume", str(short), "--out", str(tmp_path / "x")], "`--resume`"),
    ]:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"alignlab: error: {key}"), err
    assert read_summary(short)["epochs_completed"] == 2
    assert main(["train", "--resume", str(short), "--set", "train.epochs=3", "--quiet"]) == 0
    assert read_summary(short)["epochs_completed"] == 3
    assert "epochs = 3" in (short / "config.toml").read_text()
    for name in ("metrics.csv", "layers.csv"):
        assert rows(short, name) == rows(whole, name), name


def test_an_invertible_network_that_cannot_run_is_refused_naming_the_config_key(tmp_path,
                                                                               capsys):
    """Issue 14 item 11: the network's own checks reach the user as the config's words
    (`model` does not fit the data; `model.activation`), one line, nothing written."""
    from trainhelpers import tables

    from alignlab._toml import dumps_toml

    t = tables(method={"name": "gait-prop"}, train={"dtype": "float64", "epochs": 1},
               optim={"name": "uncorrected-adam", "momentum": 0, "weight_decay": 0})
    t["model"] = {"name": "invertible", "width": 6, "hidden_layers": 1, "num_classes": 4}
    cfg = tmp_path / "c.toml"
    cfg.write_text(dumps_toml(t))
    out = tmp_path / "run"
    cases = [([], "`model` does not fit the data (input shape (20,)): `x` must have 6 features"),
             (["--set", "data.input_shape=[6]", "--set", "model.activation=relu"],
              "`model.activation` must be invertible for rule 'gait-prop'")]
    for sets, message in cases:
        assert main(["train", str(cfg), *sets, "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith(f"alignlab: error: {message}"), err
        assert not out.exists()
