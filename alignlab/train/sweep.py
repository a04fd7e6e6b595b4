"""``alignlab sweep``: a grid of runs, each an ordinary run directory, and their summary.

Every combination of the ``--grid`` values (for each CONFIG given) is one run, named
``<config-stem>__<key>=<value>__...`` under the sweep folder. All points are validated
before anything starts. Runs whose ``summary.json`` says completed (or diverged: that is
deterministic) are skipped and runs with a ``config.toml`` are resumed, so re-running the
same command finishes an interrupted sweep; re-running it with more ``train.epochs``
extends the completed runs (``alignlab train --resume RUN --set train.epochs=N``). The
sweep then writes

* ``runs.csv``: one row per run (grid values, status, exit code, final metrics);
* ``summary.csv``: one row per grid point *without* ``train.seed`` (and per config):
  ``n`` completed runs, mean and SD (ddof 1) over seeds of the final test and validation
  accuracy and training loss, and how many runs diverged or failed.

Launchers say where runs execute; ``local`` runs ``--jobs`` subprocesses
(``python -m alignlab train ...``) at a time on this machine, each with
``cores // jobs`` threads (``OMP_NUM_THREADS``) and its output in ``<run>/train.log``;
``inline`` runs them one after another in this process (debugging, tests); ``submitit``
submits one job per run (a Slurm job array, ``--jobs`` running at a time; or submitit's
local executor) through the optional ``submitit`` package (``pip install
alignlab[cluster]``), waits for them and gathers their run directories the same way.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._exit import ExitStatus
from .._output import check_output_dir
from .._records import Records
from .config import _toml_value, load_config, parse_value
from .rundir import CONFIG_FILE, prepare_resume, read_summary

__all__ = ["LAUNCHERS", "SubmititLauncher", "Task", "parse_grid", "run_sweep", "run_task"]

SEED_KEY = "train.seed"
_FINISHED = ("completed", "diverged")  # deterministic outcomes: not run again


def _split_top(text: str) -> list[str]:
    """Split at commas outside brackets and quotes ("[784,100,10],[784,10]" -> 2 items)."""
    parts, depth, quote, cur = [], 0, None, []
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts]


def parse_grid(items: Sequence[str]) -> list[tuple[str, list[Any]]]:
    """``["method.name=bp,fa", "train.seed=0,1"]`` -> ``[(key, [values...]), ...]``."""
    grid: list[tuple[str, list[Any]]] = []
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][\w-]*\.[A-Za-z_][\w-]*", key) or not text:
            raise ValueError(f"`--grid` must be SECTION.KEY=V1,V2,... (e.g. train.seed=0,1,2), "
                             f"got {item!r}.")
        if any(key == k for k, _ in grid):
            raise ValueError(f"`--grid` must name each key once, got {key!r} twice.")
        grid.append((key, [parse_value(v) for v in _split_top(text)]))
    return grid


def _slug(value: Any) -> str:
    text = _toml_value(value).strip('"') if not isinstance(value, str) else value
    return re.sub(r"[^\w.+-]+", "-", text).strip("-") or "x"


@dataclass(frozen=True)
class Task:
    """One run of the sweep."""

    name: str
    config: Path
    overrides: tuple[tuple[str, Any], ...]  # the grid values of this run
    run_dir: Path
    epochs: int = 0  # train.epochs of the config with the sweep's --set and the grid values

    def extends(self) -> bool:
        """Whether the started run's ``config.toml`` has fewer epochs than this task asks."""
        if not (self.run_dir / CONFIG_FILE).exists():
            return False
        return self.epochs > prepare_resume(self.run_dir)[0].train.epochs

    def argv(self, sets: Sequence[str]) -> list[str]:
        """Arguments of ``python -m alignlab`` for this run (resume if started; extended
        when the sweep now asks for more epochs than the run has)."""
        if (self.run_dir / CONFIG_FILE).exists():
            extend = ["--set", f"train.epochs={self.epochs}"] if self.extends() else []
            return ["train", "--resume", str(self.run_dir), *extend]
        args = ["train", str(self.config), "--out", str(self.run_dir)]
        for s in sets:
            args += ["--set", s]
        for key, value in self.overrides:
            args += ["--set", f"{key}={_toml_value(value)}"]
        return args


class LocalLauncher:
    """Runs tasks as subprocesses of this machine, ``jobs`` at a time."""

    def __init__(self, jobs: int, *, poll_s: float = 0.2, threads: int | None = None,
                 **options):
        self.jobs = jobs
        self.poll_s = poll_s
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
            os.cpu_count() or 1)
        self.threads = threads or max(1, cores // jobs)

    def run(self, tasks: Sequence[Task], sets: Sequence[str], report) -> dict[str, int]:
        env = {**os.environ, "OMP_NUM_THREADS": str(self.threads),
               "MKL_NUM_THREADS": str(self.threads)}
        pending = deque(tasks)
        running: dict[str, tuple[subprocess.Popen, Any, Task]] = {}
        codes: dict[str, int] = {}
        try:
            while pending or running:
                while pending and len(running) < self.jobs:
                    task = pending.popleft()
                    task.run_dir.mkdir(parents=True, exist_ok=True)
                    log = open(task.run_dir / "train.log", "a", encoding="utf-8")  # noqa: SIM115
                    cmd = [sys.executable, "-m", "alignlab", *task.argv(sets)]
                    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                            stdin=subprocess.DEVNULL)
                    running[task.name] = (proc, log, task)
                    report(f"started  {task.name} (pid {proc.pid})")
                for name, (proc, log, _task) in list(running.items()):
                    rc = proc.poll()
                    if rc is not None:
                        log.close()
                        codes[name] = rc
                        del running[name]
                        report(f"finished {name}: exit {rc}")
                if running:
                    time.sleep(self.poll_s)
        except KeyboardInterrupt:
            for proc, _log, _task in running.values():
                proc.send_signal(signal.SIGINT)
            for proc, log, _task in running.values():
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                log.close()
            raise
        return codes


def run_task(task: Task, sets: Sequence[str], cwd: str | None = None,
             threads: int | None = None) -> int:
    """Run one task in this process (``alignlab train ...``), its output appended to
    ``<run>/train.log``; returns the exit status (a crash is logged and returns 1).

    What the ``inline`` launcher calls, and the function each submitit job runs (``cwd``:
    the folder the sweep was started in, so relative paths mean the same; ``threads``:
    torch's intra-op threads).
    """
    import contextlib
    import traceback

    from ..cli import main

    if cwd is not None:
        os.chdir(cwd)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    task.run_dir.mkdir(parents=True, exist_ok=True)
    with open(task.run_dir / "train.log", "a", encoding="utf-8") as log, \
            contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        try:
            return main(task.argv(sets))
        except Exception:  # a crash of one run is reported, not fatal to the others
            traceback.print_exc()
            return ExitStatus.CRASH


class InlineLauncher:
    """Runs tasks one after another in this process (for debugging and tests); each run's
    output still goes to ``<run>/train.log``."""

    def __init__(self, jobs: int = 1, **options):
        self.jobs = 1

    def run(self, tasks: Sequence[Task], sets: Sequence[str], report) -> dict[str, int]:
        codes: dict[str, int] = {}
        for task in tasks:
            report(f"started  {task.name} (in this process)")
            codes[task.name] = run_task(task, sets)
            report(f"finished {task.name}: exit {codes[task.name]}")
        return codes


#: ``--slurm-*`` options (``run_sweep(..., slurm={...})``) -> submitit's parameter names
SLURM_OPTIONS = {"partition": "slurm_partition", "time": "timeout_min",
                 "gpus_per_node": "gpus_per_node", "cpus_per_task": "cpus_per_task",
                 "mem_gb": "mem_gb", "params": "slurm_additional_parameters"}
SUBMITIT_CLUSTERS = ("auto", "slurm", "local")


def _import_submitit():
    try:
        import submitit
    except ImportError:
        raise ValueError("`--launcher` 'submitit' needs the submitit package: pip install "
                         "alignlab[cluster]") from None
    return submitit


class SubmititLauncher:
    """One submitit job per run: a Slurm job array (``--jobs`` of them running at a time,
    ``slurm_array_parallelism``), or submitit's local executor (every run at once, as
    subprocesses: for tests). Waits for every job, then the sweep gathers the run
    directories as for the other launchers.

    ``cluster``: 'auto' (Slurm where ``sbatch`` exists, else local), 'slurm' or 'local'.
    ``slurm``: ``{partition, time (minutes), gpus_per_node, cpus_per_task, mem_gb,
    params (dict of extra #SBATCH options)}``; unset keys keep submitit's defaults.
    submitit's logs go to ``<sweep>/.submitit/``.
    """

    def __init__(self, jobs: int, *, folder: Path, cluster: str = "auto",
                 slurm: dict[str, Any] | None = None, poll_s: float = 1.0):
        self.submitit = _import_submitit()
        if cluster not in SUBMITIT_CLUSTERS:
            raise ValueError(f"`cluster` must be one of {', '.join(SUBMITIT_CLUSTERS)}; got "
                             f"{cluster!r}.")
        self.jobs, self.folder, self.poll_s = jobs, Path(folder), poll_s
        self.cluster = None if cluster == "auto" else cluster
        self.slurm = {k: v for k, v in (slurm or {}).items() if v is not None and v != {}}
        unknown = sorted(set(self.slurm) - set(SLURM_OPTIONS))
        if unknown:
            raise ValueError(f"`slurm` options must be among {', '.join(SLURM_OPTIONS)}; got "
                             f"{unknown[0]!r}.")

    def run(self, tasks: Sequence[Task], sets: Sequence[str], report) -> dict[str, int]:
        if not tasks:
            return {}
        executor = self.submitit.AutoExecutor(folder=self.folder / "%j", cluster=self.cluster)
        params = {SLURM_OPTIONS[k]: v for k, v in self.slurm.items()}
        params.setdefault("name", "alignlab-sweep")
        params["slurm_array_parallelism"] = self.jobs
        executor.update_parameters(**params)
        threads = self.slurm.get("cpus_per_task")
        if executor.cluster == "local" and threads is None:  # every run at once, here
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
                os.cpu_count() or 1)
            threads = max(1, cores // len(tasks))
        n = len(tasks)
        jobs = executor.map_array(run_task, list(tasks), [list(sets)] * n, [os.getcwd()] * n,
                                  [threads] * n)
        for task, job in zip(tasks, jobs, strict=True):
            report(f"submitted {task.name} ({executor.cluster} job {job.job_id})")
        codes: dict[str, int] = {}
        pending = dict(zip((t.name for t in tasks), jobs, strict=True))
        try:
            while pending:
                for name, job in list(pending.items()):
                    if job.done():
                        try:
                            codes[name] = int(job.result())
                        except Exception as exc:  # the job itself failed (killed, timeout)
                            report(f"job of {name} failed: {str(exc).splitlines()[0]}")
                            codes[name] = 1
                        del pending[name]
                        report(f"finished {name}: exit {codes[name]}")
                if pending:
                    time.sleep(self.poll_s)
        except KeyboardInterrupt:
            for job in pending.values():  # their checkpoints stay: re-running resumes them
                job.cancel(check=False)
            raise
        return codes


LAUNCHERS = {"local": LocalLauncher, "inline": InlineLauncher, "submitit": SubmititLauncher}


def _tasks(configs: Sequence[str | Path], grid: Sequence[tuple[str, list[Any]]],
           sets: Sequence[str], out: Path) -> list[Task]:
    keys = [k for k, _ in grid]
    tasks: list[Task] = []
    stems = [Path(c).stem for c in configs]
    if len(set(stems)) != len(stems):
        raise ValueError(f"`CONFIG` files must have distinct names (run folders are named "
                         f"after them), got {stems}.")
    for config in configs:
        for combo in itertools.product(*(values for _, values in grid)):
            overrides = tuple(zip(keys, combo, strict=True))
            name = "__".join([Path(config).stem] + [f"{k}={_slug(v)}" for k, v in overrides])
            try:
                cfg = load_config(config, [*sets, *overrides])
            except ValueError as exc:
                raise ValueError(f"{exc} (grid point {name})") from None
            tasks.append(Task(name, Path(config), overrides, out / name, cfg.train.epochs))
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise ValueError(f"`--grid` values must give distinct run names, got {names}.")
    return tasks


def run_sweep(configs: str | Path | Sequence[str | Path], grid: Sequence[tuple[str, list[Any]]],
              *, sets: Sequence[str] = (), jobs: int = 1, out: str | Path | None = None,
              launcher: str = "local", dry_run: bool = False, quiet: bool = False,
              cluster: str = "auto", slurm: dict[str, Any] | None = None,
              threads: int | None = None) -> int:
    """Run the grid and write ``runs.csv`` and ``summary.csv``; return the exit status
    (0: every run completed or diverged; 1: some run failed, see runs.csv).

    ``threads``: torch threads of each local run (default: this machine's cores // jobs;
    set it when other work shares the cores: oversubscribed threads slow every run).

    ``launcher``: 'local' (``jobs`` subprocesses here), 'inline' (one after another in
    this process) or 'submitit' (one job per run; ``cluster`` and ``slurm`` as in
    :class:`SubmititLauncher`).
    """
    if isinstance(configs, str | Path):
        configs = [configs]
    if not configs:
        raise ValueError("`CONFIG` must name at least one config file, got none.")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"`--jobs` must be an integer >= 1, got {jobs!r}.")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                or threads < 1):
        raise ValueError(f"`--threads` must be an integer >= 1, got {threads!r}.")
    if threads is not None and launcher != "local":
        raise ValueError(f"`--threads` must be left out with --launcher {launcher!r} (it sets "
                         "the threads of local runs; Slurm: --slurm-cpus-per-task), got "
                         f"{threads}.")
    if launcher not in LAUNCHERS:
        raise ValueError(f"`--launcher` must be one of {', '.join(map(repr, LAUNCHERS))}; "
                         f"got {launcher!r}.")
    slurm = {k: v for k, v in (slurm or {}).items() if v is not None and v != {}}
    if launcher != "submitit" and (slurm or cluster != "auto"):
        raise ValueError(f"`--launcher` must be 'submitit' for the --slurm-* and "
                         f"--submitit-cluster options, got {launcher!r}.")
    out = Path(out) if out is not None else Path("runs") / f"{Path(configs[0]).stem}-sweep"
    check_output_dir(out, name="out")
    extra = {} if threads is None else {"threads": threads}
    runner = LAUNCHERS[launcher](jobs, folder=out / ".submitit", cluster=cluster, slurm=slurm,
                                 **extra)
    tasks = _tasks(configs, grid, sets, out)

    def report(msg: str) -> None:
        if not quiet:
            print(f"sweep: {msg}", flush=True)

    todo = []
    for task in tasks:
        done = read_summary(task.run_dir)
        if done is not None and done.get("status") in _FINISHED and not (
                done["status"] == "completed" and task.extends()):
            report(f"skipped  {task.name} ({done['status']})")
        else:
            todo.append(task)
    report(f"{len(tasks)} runs, {len(todo)} to run, {jobs} at a time -> {out}")
    if dry_run:
        for task in todo:
            print(" ".join(["alignlab", *task.argv(sets)]))
        return ExitStatus.OK
    out.mkdir(parents=True, exist_ok=True)
    codes: dict[str, int] = {}
    try:
        codes = runner.run(todo, sets, report)
    finally:
        runs, summary = _collect(tasks, grid, codes)
        runs.to_csv(out / "runs.csv")
        summary.to_csv(out / "summary.csv")
    if not quiet:
        print(summary.format(digits=5))
        print(f"wrote {out / 'runs.csv'} and {out / 'summary.csv'}")
    failed = [r["run"] for r in runs if r["status"] not in _FINISHED]
    if failed:
        print(f"alignlab: sweep: {len(failed)} run(s) did not finish: {', '.join(failed)} "
              f"(see <run>/train.log)", file=sys.stderr)
        return ExitStatus.RUN_FAILED
    return ExitStatus.OK


def _collect(tasks: Sequence[Task], grid: Sequence[tuple[str, list[Any]]],
             codes: dict[str, int]) -> tuple[Records, Records]:
    keys = [k for k, _ in grid]
    rows = []
    for task in tasks:
        s = read_summary(task.run_dir) or {}
        final = s.get("final", {}) or {}
        status = s.get("status", "failed" if task.name in codes else "not run")
        if status not in _FINISHED and task.name in codes and codes[task.name] != 0:
            status = "failed"
        rows.append({"run": task.name, "config": str(task.config),
                     **{k: _toml_value(v).strip('"') for k, v in task.overrides},
                     "status": status, "exit": codes.get(task.name, ""),
                     "epochs": final.get("epoch", ""),
                     "test_acc": _num(final.get("test_acc")),
                     "val_acc": _num(final.get("val_acc")),
                     "train_loss": _num(final.get("train_loss")),
                     "wall_s": _num(s.get("wall_s"))})
    run_cols = ["run", "config", *keys, "status", "exit", "epochs", "test_acc", "val_acc",
                "train_loss", "wall_s"]
    group_keys = [k for k in keys if k != SEED_KEY]
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["config"], *(r[k] for k in group_keys)), []).append(r)
    summary = []
    for gkey, members in groups.items():
        done = [m for m in members if m["status"] == "completed"]
        row = {"config": gkey[0], **dict(zip(group_keys, gkey[1:], strict=True)),
               "n": len(done)}
        for col in ("test_acc", "val_acc", "train_loss"):
            vals = [m[col] for m in done if not math.isnan(m[col])]
            row[f"{col}_mean"] = statistics.fmean(vals) if vals else math.nan
            row[f"{col}_sd"] = statistics.stdev(vals) if len(vals) > 1 else math.nan
        row["n_diverged"] = sum(m["status"] == "diverged" for m in members)
        row["n_failed"] = sum(m["status"] not in _FINISHED for m in members)
        summary.append(row)
    sum_cols = ["config", *group_keys, "n", "test_acc_mean", "test_acc_sd", "val_acc_mean",
                "val_acc_sd", "train_loss_mean", "train_loss_sd", "n_diverged", "n_failed"]
    return Records(rows, run_cols), Records(summary, sum_cols)


def _num(value: Any) -> float:
    return math.nan if value is None else float(value)
