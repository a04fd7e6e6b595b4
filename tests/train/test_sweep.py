"""``alignlab sweep``: a grid of runs in parallel subprocesses and the summary over seeds."""

from __future__ import annotations

import json
import math
import os
import shlex
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
from trainhelpers import write_config

from alignlab.cli import main
from alignlab.train.rundir import read_csv, read_summary
from alignlab.train.sweep import Task, _collect, _slug, default_sweep_dir, parse_grid, run_task


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
    # ... and the runs are reported at the epochs asked (the longer run's epoch-2 row), not
    # with the numbers of 3 epochs
    for r in read_csv(out / "runs.csv"):
        row = read_csv(out / r["run"] / "metrics.csv")[2]
        assert (r["status"], r["epochs"], r["test_acc"], r["train_loss"]) == (
            "completed", "2", row["test_acc"], row["train_loss"])


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


# --------------------------------------------------------------------------- reusing runs


def snapshot(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_run_made_with_other_settings_is_never_reused(tmp_path, capsys):
    """Re-running a sweep with another setting into the same folder stops before any work,
    naming the key (old -> new); --on-change new writes new runs beside the old ones and
    finds them again; train.epochs alone still extends (test above)."""
    cfg = write_config(tmp_path / "c.toml", train={"epochs": 1})
    out = tmp_path / "sweep"
    argv = ["sweep", str(cfg), "--grid", "train.seed=0,1", "--launcher", "inline",
            "--out", str(out)]
    assert main(argv) == 0
    old = {r["run"]: r["test_acc"] for r in read_csv(out / "runs.csv")}
    before = snapshot(out)
    capsys.readouterr()
    for extra in (["--set", "optim.lr=0.01"], ["--set", "optim.lr=0.01", "--dry-run"]):
        assert main([*argv, *extra]) == 2
        io = capsys.readouterr()
        err = io.err.strip().splitlines()
        assert io.out == "" and len(err) == 1, (io.out, err)
        assert err[0].startswith(f"alignlab: error: `--out` {str(out)!r} holds 2 run(s) made "
                                 "with other settings than this sweep's (optim.lr 0.05 -> "
                                 "0.01): c__train.seed=0, c__train.seed=1; pass --on-change "
                                 "new"), err[0]
        assert snapshot(out) == before  # nothing written, nothing run
    # an interrupted run (a config.toml, no summary) is not resumed with other settings
    (out / "c__train.seed=1" / "summary.json").unlink()
    before = snapshot(out)
    assert main([*argv, "--set", "model.sizes=[20,32,4]"]) == 2
    assert "model.sizes [20, 64, 64, 4] -> [20, 32, 4]" in capsys.readouterr().err
    assert snapshot(out) == before
    # --on-change new: new run folders beside the old ones, reported under their names
    new = [*argv, "--set", "optim.lr=0.01", "--on-change", "new"]
    assert main(new) == 0
    runs = read_csv(out / "runs.csv")
    names = [r["run"] for r in runs]
    assert [n.partition("~")[0] for n in names] == ["c__train.seed=0", "c__train.seed=1"]
    assert len({n.partition("~")[2] for n in names}) == 1  # one config digest: one setting
    for r in runs:
        assert r["status"] == "completed" and r["test_acc"] != old[r["run"].partition("~")[0]]
        made = (out / r["run"] / "config.toml").read_text()
        assert "lr = 0.01" in made
    assert (out / "c__train.seed=0" / "summary.json").is_file()  # the old runs stay
    capsys.readouterr()
    assert main(new) == 0  # the same sweep again finds its new runs: nothing to do
    assert "2 runs, 0 to run" in capsys.readouterr().out
    assert main([*new, "--set", "train.epochs=2"]) == 0  # and extends them
    assert all(r["epochs"] == "2" for r in read_csv(out / "runs.csv"))


def test_default_run_names_and_folders_differ_between_configs(tmp_path, monkeypatch,
                                                               capsys):
    """Two configs with one file stem (configs/gaitprop/bp.toml, configs/fashion-mnist/
    bp.toml) get different default sweep folders, and different run names in one sweep."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = write_config(tmp_path / "a" / "bp.toml")
    b = write_config(tmp_path / "b" / "bp.toml", model={"sizes": [20, 32, 4]})
    dirs = {default_sweep_dir([c]) for c in ("a/bp.toml", "b/bp.toml")}
    assert len(dirs) == 2 and all(d.parent == Path("runs") for d in dirs)
    assert all(d.name.startswith("bp-sweep-") for d in dirs)
    # stable: the same file, named another way, gives the same folder
    assert default_sweep_dir([a]) == default_sweep_dir(["./a/../a/bp.toml"])
    assert main(["sweep", "a/bp.toml", "b/bp.toml", "--grid", "train.seed=0", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    runs = [shlex.split(ln) for ln in lines if ln.startswith("alignlab train")]
    assert [r[r.index("--out") + 1] for r in runs] == [
        str(default_sweep_dir(["a/bp.toml", "b/bp.toml"]) / f"{d}-bp__train.seed=0")
        for d in ("a", "b")]
    assert main(["sweep", "a/bp.toml", str(a), "--dry-run"]) == 2
    assert "`CONFIG` must name each file once" in capsys.readouterr().err
    del b


def test_dry_run_commands_paste_into_a_shell(tmp_path, capsys):
    cfg = write_config(tmp_path / "my config.toml")
    out = tmp_path / "s"
    assert main(["sweep", str(cfg), "--grid", "model.sizes=[20,8,4],[20,4]", "--set",
                 "method.name=fa", "--out", str(out), "--dry-run"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("alignlab ")]
    assert len(lines) == 2
    argv = shlex.split(lines[0])
    assert argv == ["alignlab", "train", str(cfg), "--out",
                    str(out / "my config__model.sizes=20-8-4"), "--set", "method.name=fa",
                    "--set", "model.sizes=[20, 8, 4]"]
    assert not out.exists()
    assert main(argv[1:]) == 0  # pasted: it runs
    capsys.readouterr()


def test_grid_names_keep_every_sign_and_empty_values_are_refused(tmp_path, capsys):
    assert [_slug(v) for v in (-1, -0.5, 1e-3, "pfa-o", [20, 8, 4], ["a", "b/c"])] == [
        "-1", "-0.5", "0.001", "pfa-o", "20-8-4", "a-b-c"]
    assert _slug(-1) != _slug(1)
    cfg = write_config(tmp_path / "c.toml")
    for grid in ("train.seed=0,,1", "train.seed=0,1,", "train.seed=,0"):
        assert main(["sweep", str(cfg), "--grid", grid, "--out", str(tmp_path / "s")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(
            "alignlab: error: `--grid` values must not be empty"), err
    assert not (tmp_path / "s").exists()


# --------------------------------------------------------------------------- the in-process run


def test_run_task_calls_train_without_the_top_level_cli(tmp_path, monkeypatch):
    cfg = write_config(tmp_path / "c.toml", train={"epochs": 1})
    monkeypatch.delitem(sys.modules, "alignlab.cli")
    task = Task("c", cfg, (), tmp_path / "c", 1)
    assert run_task(task, []) == 0
    assert "alignlab.cli" not in sys.modules
    assert read_summary(tmp_path / "c")["status"] == "completed"
    bad = Task("bad", tmp_path / "missing.toml", (), tmp_path / "bad", 1)
    assert run_task(bad, []) == 2  # bad input: its one line in the log, no traceback
    log = (tmp_path / "bad" / "train.log").read_text().splitlines()
    assert log == [f"alignlab: error: `CONFIG` must be an existing TOML file, got "
                   f"{str(tmp_path / 'missing.toml')!r}."]


# --------------------------------------------------------------------------- SIGTERM


class _Terminated(Exception):
    pass


def test_sigterm_stops_an_inline_sweep_like_ctrl_c(tmp_path, monkeypatch, capsys):
    """SIGTERM during a sweep: runs.csv and summary.csv written (the run under way
    interrupted, the next not run), exit status 143, the old handler back afterwards."""
    from alignlab.train import sweep

    cfg = write_config(tmp_path / "c.toml", train={"epochs": 1})
    out = tmp_path / "sweep"
    real = sweep.run_task

    def terminated_in_second(task, sets):
        if task.name.endswith("seed=1"):
            task.run_dir.mkdir(parents=True)
            (task.run_dir / "summary.json").write_text('{"status": "interrupted"}')
            signal.raise_signal(signal.SIGTERM)
        return real(task, sets)

    def outside(signum, frame):  # without the sweep's handler the test fails cleanly
        raise _Terminated

    monkeypatch.setattr(sweep, "run_task", terminated_in_second)
    previous = signal.signal(signal.SIGTERM, outside)
    try:
        code = main(["sweep", str(cfg), "--grid", "train.seed=0,1,2", "--launcher", "inline",
                     "--out", str(out)])
        assert signal.getsignal(signal.SIGTERM) is outside
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert code == 143  # SIGTERM: ExitStatus.TERMINATED
    assert capsys.readouterr().err.strip().endswith("alignlab: interrupted (SIGTERM)")
    assert [r["status"] for r in read_csv(out / "runs.csv")] == [
        "completed", "interrupted", "not run"]
    (row,) = read_csv(out / "summary.csv")
    assert row["n"] == "1" and row["n_failed"] == "2"
    assert not list(out.glob(".*.tmp"))


def _sigint_ignored():
    """As a shell without job control starts a background job (``alignlab sweep ... &`` in
    a script, or under ``nohup``-style wrappers): SIGINT ignored, inherited by its children."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.slow
def test_sigterm_stops_a_local_sweep_and_its_runs(tmp_path):
    """SIGTERM to a sweep started with SIGINT ignored: the run under way stops cleanly
    (summary.json "interrupted", exit 143), not killed after 30 s or left to complete. Its
    runs inherit the ignored SIGINT, so the sweep stops them with SIGTERM."""
    cfg = write_config(tmp_path / "c.toml", train={"epochs": 100_000})  # cannot complete
    out = tmp_path / "sweep"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-m", "alignlab", "sweep", str(cfg), "--grid",
                             "train.seed=0,1", "--threads", "1", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=_sigint_ignored)
    metrics = out / "c__train.seed=0" / "metrics.csv"
    deadline = time.monotonic() + 300  # a ceiling for a loaded machine, not a wait
    # signalled once the run trains: its epoch-1 row is written (header, epoch 0, epoch 1)
    while not (metrics.is_file() and len(metrics.read_text().splitlines()) >= 3):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err  # SIGTERM: ExitStatus.TERMINATED
    assert err.strip().endswith("alignlab: interrupted (SIGTERM)")
    runs = read_csv(out / "runs.csv")
    assert [(r["status"], r["exit"]) for r in runs] == [("interrupted", "143"),
                                                         ("not run", "")]
    summary = read_summary(out / "c__train.seed=0")
    assert summary["status"] == "interrupted"  # the run handled the SIGTERM, cleanly
    assert (out / "summary.csv").is_file()


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads /proc (Linux)")
def test_a_sigterm_as_a_run_starts_stops_that_run_too(tmp_path, monkeypatch):
    """The local launcher records a run's process before a SIGTERM can stop the sweep (else
    that run would go on alone), passes on the sweep's ignored SIGINT, and stops its runs
    with SIGTERM; a run ended by it before it could handle it counts as interrupted."""
    from alignlab._signals import Terminated, sigterm_as_interrupt
    from alignlab.train import sweep

    real_popen, started, sigint_ignored = subprocess.Popen, [], []

    def popen_then_sigterm(cmd, **kwargs):
        proc = real_popen(["sleep", "60"], **kwargs)  # stands in for the run
        started.append(proc)
        status = Path(f"/proc/{proc.pid}/status").read_text()  # once exec'd (Popen waits)
        mask = int(next(ln for ln in status.splitlines() if ln.startswith("SigIgn:"))
                   .split()[1], 16)  # a bit per ignored signal: SIGINT's is 1 << (2 - 1)
        sigint_ignored.append(bool(mask >> (signal.SIGINT - 1) & 1))
        signal.raise_signal(signal.SIGTERM)
        return proc

    monkeypatch.setattr(sweep.subprocess, "Popen", popen_then_sigterm)
    task = Task("c", tmp_path / "c.toml", (), tmp_path / "c", 1)
    codes: dict[str, int] = {}
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a background job's sweep
    try:
        with pytest.raises(Terminated), sigterm_as_interrupt():
            sweep.LocalLauncher(1, poll_s=0.01).run([task], [], lambda msg: None, codes)
    finally:
        signal.signal(signal.SIGINT, previous)
        for proc in started:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    (proc,) = started
    assert codes == {"c": -signal.SIGTERM} and proc.returncode == -signal.SIGTERM
    assert sigint_ignored == [True]  # as the sweep's: a Ctrl-C it ignores stops no run
    (row,), _ = _collect([task], [], codes)
    assert (row["status"], row["exit"]) == ("interrupted", -signal.SIGTERM)


# --------------------------------------------------------------------------- the README


def readme_commands(prefix: str) -> list[list[str]]:
    """The ``alignlab PREFIX ...`` lines of the README's Training block, as argv."""
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    block = readme.split("\n## Training\n", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    lines = [shlex.split(ln, comments=True) for ln in block.splitlines()]
    return [argv[1:] for argv in lines if argv[:2] == [".venv/bin/alignlab", prefix]]


def shell_words(argv: list[str]) -> list[str]:
    """``argv`` with what bash expands: ``{a,b}`` braces and ``*`` globs (sorted, no hidden
    entries), in the working folder."""
    import glob
    import re

    out = []
    for word in argv:
        m = re.fullmatch(r"(.*)\{(.*)\}(.*)", word)
        words = [m[1] + part + m[3] for part in m[2].split(",")] if m else [word]
        for w in words:
            out += sorted(glob.glob(w)) if "*" in w else [w]
    return out


@pytest.mark.slow
def test_the_readme_sweep_then_plot_runs_as_written(tmp_path, monkeypatch, capsys):
    """README's Training block: the sweep (tiny configs at the paths it names, in this
    process), then its ``plot runs/sweep/*`` line as written once the sweep folder holds
    runs.csv, plot/ and compare/, and ``plot runs/sweep``."""
    monkeypatch.chdir(tmp_path)
    (sweep_line,) = readme_commands("sweep")
    plot_lines = readme_commands("plot")
    assert any("runs/sweep/*" in argv for argv in plot_lines), plot_lines
    small = {"n_train": 128, "n_test": 128}
    folder = tmp_path / "configs" / "fashion-mnist"
    folder.mkdir(parents=True)
    for name in ("bp", "pfa"):
        write_config(folder / f"{name}.toml", method={"name": name}, data=small,
                     train={"epochs": 1, "probe_size": 16})
    assert main([*shell_words(sweep_line), "--launcher", "inline"]) == 0
    runs = sorted(p.name for p in (tmp_path / "runs" / "sweep").iterdir() if p.is_dir())
    assert len(runs) == 6 and {r.partition("__")[0] for r in runs} == {"bp", "pfa"}
    for name in ("plot", "compare"):  # as the README's plot and compare lines leave it
        (tmp_path / "runs" / "sweep" / name).mkdir()
        (tmp_path / "runs" / "sweep" / name / f"{name}.csv").write_text("x\n")
    for argv in [*plot_lines, ["plot", "runs/sweep"]]:
        capsys.readouterr()
        assert main(shell_words(argv)) == 0, capsys.readouterr().err
        out = capsys.readouterr().out
        assert "bp" in out and "pfa" in out and "3/3" in out
    assert (tmp_path / "runs" / "sweep" / "plot" / "curves.png").is_file()
