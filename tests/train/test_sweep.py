"""``alignlab sweep``: a grid of runs in parallel subprocesses and the summary over seeds."""

from __future__ import annotations

import json
import math
import os
import statistics
import sys

import pytest
from trainhelpers import write_config

from alignlab.cli import main
from alignlab.train.rundir import read_csv, read_summary
from alignlab.train.sweep import Task, _collect, parse_grid


def test_sweep_runs_the_grid_and_summarises_over_seeds(tmp_path, capsys):
    a = write_config(tmp_path / "bp.toml", train={"epochs": 2})
    b = write_config(tmp_path / "fa.toml", method={"name": "fa"}, train={"epochs": 2})
    out = tmp_path / "sweep"
    argv = ["sweep", str(a), str(b), "--grid", "train.seed=0,1", "--launcher", "inline",
            "--out", str(out)]
    assert main(argv) == 0
    runs = read_csv(out / "runs.csv")
    assert sorted(r["run"] for r in runs) == sorted(
        f"{m}__train.seed={s}" for m in ("bp", "fa") for s in (0, 1))
    assert all(r["status"] == "completed" for r in runs)
    summary = read_csv(out / "summary.csv")
    assert len(summary) == 2 and "train.seed" not in summary[0]
    for row in summary:
        accs = [read_summary(out / f"{row['config'].split('/')[-1][:-5]}__train.seed={s}")
                ["final"]["test_acc"] for s in (0, 1)]
        assert int(row["n"]) == 2
        assert float(row["test_acc_mean"]) == statistics.fmean(accs)
        assert math.isclose(float(row["test_acc_sd"]), statistics.stdev(accs), rel_tol=1e-12)
    assert accs[0] != accs[1]  # the seeds differ
    # running it again finishes nothing new: every run is skipped
    capsys.readouterr()
    assert main(argv) == 0
    assert "4 runs, 0 to run" in capsys.readouterr().out
    # asking for more epochs extends the completed runs (their first epochs kept)
    before = read_csv(out / "bp__train.seed=0" / "metrics.csv")
    assert main([*argv, "--set", "train.epochs=3"]) == 0
    assert "4 runs, 4 to run" in capsys.readouterr().out
    for r in read_csv(out / "runs.csv"):
        assert r["status"] == "completed"
        assert read_summary(out / r["run"])["epochs_completed"] == 3
    after = read_csv(out / "bp__train.seed=0" / "metrics.csv")
    assert [int(r["epoch"]) for r in after] == [0, 1, 2, 3] and after[:3] == before
    assert main(argv) == 0  # fewer epochs than the runs have: nothing to do
    assert "4 runs, 0 to run" in capsys.readouterr().out


@pytest.mark.slow
def test_local_launcher_runs_parallel_subprocesses(tmp_path):
    cfg = write_config(tmp_path / "c.toml", train={"epochs": 1})
    out = tmp_path / "sweep"
    code = main(["sweep", str(cfg), "--grid", "method.name=bp,usf", "--jobs", "2",
                 "--out", str(out)])
    assert code == 0
    runs = read_csv(out / "runs.csv")
    assert [(r["method.name"], r["status"], r["exit"]) for r in runs] == [
        ("bp", "completed", "0"), ("usf", "completed", "0")]
    for r in runs:  # each ran in its own process, one thread each (2 cores // 2 jobs or 1)
        log = (out / r["run"] / "train.log").read_text()
        assert "completed: epoch 1" in log
        assert read_summary(out / r["run"])["threads"] == max(1, len(os.sched_getaffinity(0))
                                                              // 2)


def test_threads_per_run(tmp_path, capsys):
    from alignlab.train.sweep import LocalLauncher

    cores = len(os.sched_getaffinity(0))
    assert LocalLauncher(1).threads == cores and LocalLauncher(1, threads=1).threads == 1
    assert LocalLauncher(2 * cores).threads == 1
    cfg = write_config(tmp_path / "c.toml")
    for extra, message in ((["--threads", "0"], "`--threads` must be an integer >= 1"),
                           (["--threads", "1", "--launcher", "inline"],
                            "`--threads` must be left out with --launcher 'inline'")):
        assert main(["sweep", str(cfg), "--out", str(tmp_path / "s"), *extra]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_failed_runs_are_reported_not_fatal(tmp_path):
    grid = parse_grid(["method.name=bp,fa", "train.seed=0,1"])
    tasks = [Task(f"{m}_{s}", tmp_path / "c.toml", (("method.name", m), ("train.seed", s)),
                  tmp_path / f"{m}_{s}") for m in ("bp", "fa") for s in (0, 1)]
    for t in tasks:
        t.run_dir.mkdir()
    for t, acc in zip(tasks[:3], (0.5, 0.7, 0.9), strict=True):
        (t.run_dir / "summary.json").write_text(json.dumps(
            {"status": "completed", "final": {"epoch": 2, "test_acc": acc, "train_loss": 1.0},
             "wall_s": 1.0}))
    runs, summary = _collect(tasks, grid, {t.name: (0 if i < 3 else 1)
                                           for i, t in enumerate(tasks)})
    assert [r["status"] for r in runs] == ["completed"] * 3 + ["failed"]
    bp, fa = summary
    assert (bp["method.name"], bp["n"], bp["n_failed"]) == ("bp", 2, 0)
    assert bp["test_acc_mean"] == pytest.approx(0.6)
    assert (fa["n"], fa["n_failed"], fa["test_acc_mean"]) == (1, 1, 0.9)
    assert math.isnan(fa["test_acc_sd"])


def test_grid_parsing_and_bad_grids(tmp_path, capsys):
    assert parse_grid(["model.sizes=[20,8,4],[20,4]", "method.name=bp, fa"]) == [
        ("model.sizes", [[20, 8, 4], [20, 4]]), ("method.name", ["bp", "fa"])]
    cfg = write_config(tmp_path / "c.toml")
    for grid, key in (("train.seed", "--grid"), ("optim.lrr=1,2", "optim.lrr"),
                      ("optim.lr=0.1,-1", "optim.lr")):
        assert main(["sweep", str(cfg), "--grid", grid, "--out", str(tmp_path / "s")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"alignlab: error: `{key}`"), err
        assert not (tmp_path / "s").exists()  # nothing started, nothing written


@pytest.mark.slow
def test_submitit_local_executor_runs_one_job_per_run(tmp_path):
    pytest.importorskip("submitit", reason="submitit not installed (pip install "
                                           "alignlab[cluster]): the submitit path is untested")
    cfg = write_config(tmp_path / "c.toml", train={"epochs": 1})
    out = tmp_path / "sweep"
    code = main(["sweep", str(cfg), "--grid", "train.seed=0,1", "--launcher", "submitit",
                 "--submitit-cluster", "local", "--out", str(out)])
    assert code == 0
    runs = read_csv(out / "runs.csv")
    assert [(r["train.seed"], r["status"], r["exit"]) for r in runs] == [
        ("0", "completed", "0"), ("1", "completed", "0")]
    jobs = [p for p in (out / ".submitit").iterdir() if p.is_dir() and p.name.isdigit()]
    assert len(jobs) == 2  # one submitit job (a folder of logs named by its id) per run
    accs = [read_summary(out / r["run"])["final"]["test_acc"] for r in runs]
    (row,) = read_csv(out / "summary.csv")
    assert int(row["n"]) == 2 and float(row["test_acc_mean"]) == statistics.fmean(accs)
    for r in runs:  # each run's output went to its train.log, as with the other launchers
        assert "completed: epoch 1" in (out / r["run"] / "train.log").read_text()


class _FakeJob:
    def __init__(self, i):
        self.job_id = f"42_{i}"

    def done(self):
        return True

    def result(self):
        return 0


class _FakeExecutor:
    seen: dict = {}

    def __init__(self, folder, cluster=None):
        self.cluster = cluster or "slurm"
        _FakeExecutor.seen = {"folder": folder, "cluster": cluster}

    def update_parameters(self, **params):
        _FakeExecutor.seen["params"] = params

    def map_array(self, fn, *iterables):
        _FakeExecutor.seen["calls"] = list(zip(*iterables, strict=True))
        return [_FakeJob(i) for i in range(len(iterables[0]))]


def test_submitit_slurm_options_reach_the_executor(tmp_path, monkeypatch, capsys):
    import types

    monkeypatch.setitem(sys.modules, "submitit", types.SimpleNamespace(
        AutoExecutor=_FakeExecutor))
    cfg = write_config(tmp_path / "c.toml", train={"epochs": 1})
    out = tmp_path / "sweep"
    code = main(["sweep", str(cfg), "--grid", "train.seed=0,1,2", "--launcher", "submitit",
                 "--jobs", "2", "--out", str(out), "--slurm-partition", "gpu",
                 "--slurm-time", "90", "--slurm-gpus-per-node", "1",
                 "--slurm-cpus-per-task", "8", "--slurm-mem-gb", "32",
                 "--slurm-param", "account=lab", "--slurm-param", "qos=high"])
    # the fake jobs ran nothing: every run is reported as not finished (exit 1)
    assert code == 1
    seen = _FakeExecutor.seen
    assert seen["cluster"] is None and str(seen["folder"]).endswith(".submitit/%j")
    assert seen["params"] == {"slurm_partition": "gpu", "timeout_min": 90, "gpus_per_node": 1,
                              "cpus_per_task": 8, "mem_gb": 32.0,
                              "slurm_additional_parameters": {"account": "lab", "qos": "high"},
                              "name": "alignlab-sweep", "slurm_array_parallelism": 2}
    calls = seen["calls"]  # one job per run: (task, sets, cwd, threads)
    assert [c[0].name for c in calls] == [f"c__train.seed={s}" for s in (0, 1, 2)]
    assert all(c[2] == os.getcwd() and c[3] == 8 for c in calls)
    assert "submitted c__train.seed=0 (slurm job 42_0)" in capsys.readouterr().out


def test_submitit_missing_or_misused_is_bad_input(tmp_path, monkeypatch, capsys):
    cfg = write_config(tmp_path / "c.toml", train={"epochs": 1})
    out = tmp_path / "sweep"
    monkeypatch.setitem(sys.modules, "submitit", None)  # as if not installed
    cases = [
        (["--launcher", "submitit"], "pip install alignlab[cluster]"),
        (["--slurm-partition", "gpu"], "`--launcher` must be 'submitit'"),
        (["--launcher", "inline", "--submitit-cluster", "local"], "`--launcher` must be"),
    ]
    for extra, text in cases:
        code = main(["sweep", str(cfg), "--grid", "train.seed=0,1", "--out", str(out), *extra])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and text in err[0], err
        assert not out.exists()
