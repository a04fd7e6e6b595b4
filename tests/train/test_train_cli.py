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
