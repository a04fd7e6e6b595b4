"""``alignlab sweep``: a grid of runs, each an ordinary run directory, and their summary.

Every combination of the ``--grid`` values (for each CONFIG given) is one run, named
``<config>__<key>=<value>__...`` under the sweep folder, where ``<config>`` is the config's
file stem, or, when two CONFIGs share a stem, the shortest tail of their paths that tells
them apart (``gaitprop-bp``, ``fashion-mnist-bp``). The default sweep folder is
``runs/<first config>-sweep-<6 hex digits>``, the digits a hash of the CONFIG paths
(relative to the working folder), so sweeps of different config files never share one.

All points are validated before anything starts, and so is every run the sweep would
reuse: a run folder that already holds a ``config.toml`` is reused only when that resolved
config equals the one this sweep asks for, apart from :data:`~.rundir.EXTENDABLE_KEYS`
(``train.epochs``). Reused runs whose ``summary.json`` says completed (or diverged: that is
deterministic) are skipped, the others resumed, so re-running the same command finishes an
interrupted sweep; re-running it with more ``train.epochs`` extends the completed runs
(``alignlab train --resume RUN --set train.epochs=N``). A run made with other settings
stops the sweep before any work with one line naming the keys that differ (``--on-change
stop``, the default), or, with ``--on-change new``, the sweep writes that point to
``<run>~<6 hex digits of its resolved config>`` beside it. The sweep then writes, as one
set (also when interrupted: Ctrl-C or SIGTERM),

* ``runs.csv``: one row per run (grid values, status, exit code, final metrics);
* ``summary.csv``: one row per grid point *without* ``train.seed`` (and per config):
  ``n`` completed runs, mean and SD (ddof 1) over seeds of the final test and validation
  accuracy and training loss, and how many runs diverged or failed.

Launchers say where runs execute; ``local`` runs ``--jobs`` subprocesses
(``python -m alignlab train ...``) at a time on this machine, each with
``cores // jobs`` threads (``OMP_NUM_THREADS``) and its output in ``<run>/train.log``;
``inline`` runs them one after another in this process (debugging, tests), calling the
``train`` command's handler (:func:`alignlab.train.cli.cmd_train`) directly; ``submitit``
submits one job per run (a Slurm job array, ``--jobs`` running at a time; or submitit's
local executor) through the optional ``submitit`` package (``pip install
alignlab[cluster]``), waits for them and gathers their run directories the same way.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import itertools
import json
import math
import os
import re
import shlex
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
from .._output import check_output_dir, write_together
from .._records import Records
from .._signals import signals_deferred, sigterm_as_interrupt
from .._toml import toml_value
from .config import Config, load_config, parse_value
from .rundir import (
    CONFIG_FILE,
    METRICS_FILE,
    changed_settings,
    prepare_resume,
    read_csv,
    read_summary,
    trajectory_settings,
)

__all__ = ["LAUNCHERS", "ON_CHANGE", "SubmititLauncher", "Task", "default_sweep_dir",
           "parse_grid", "run_sweep", "run_task"]

SEED_KEY = "train.seed"
_FINISHED = ("completed", "diverged")  # deterministic outcomes: not run again
#: exit statuses of a stopped run: it handled Ctrl-C or SIGTERM (130, 143), or was ended by
#: one before its handler was installed (Popen's -2, -15: while Python started)
_STOPPED = (ExitStatus.INTERRUPTED, ExitStatus.TERMINATED, -signal.SIGINT, -signal.SIGTERM)
#: what a sweep does with a run folder made with other settings: stop (exit status 2, before
#: any work) or write that grid point to a new run folder beside it
ON_CHANGE = ("stop", "new")


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
        values = _split_top(text)
        if "" in values:
            raise ValueError(f"`--grid` values must not be empty (two commas in a row, or one "
                             f"at an end), got {item!r}.")
        grid.append((key, [parse_value(v, key) for v in values]))
    return grid


def _slug(value: Any) -> str:
    """A grid value as it appears in a run name: its text with every run of characters
    other than letters, digits and ``. + -`` (brackets, spaces, commas, slashes) made one
    ``-``, and none at the ends (``-0.5`` -> ``-0.5``, ``[784, 100, 10]`` -> ``784-100-10``)."""
    text = value if isinstance(value, str) else toml_value(value)
    return "-".join(part for part in re.split(r"[^\w.+-]+", text) if part)


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
            args += ["--set", f"{key}={toml_value(value)}"]
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

    def run(self, tasks: Sequence[Task], sets: Sequence[str], report,
            codes: dict[str, int]) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": str(self.threads),
               "MKL_NUM_THREADS": str(self.threads)}
        pending = deque(tasks)
        running: dict[str, tuple[subprocess.Popen, Any, Task]] = {}
        try:
            while pending or running:
                while pending and len(running) < self.jobs:
                    task = pending.popleft()
                    task.run_dir.mkdir(parents=True, exist_ok=True)
                    cmd = [sys.executable, "-m", "alignlab", *task.argv(sets)]
                    # a SIGTERM between the start and the record would leave the run running
                    with signals_deferred():
                        log = open(task.run_dir / "train.log", "a", encoding="utf-8")  # noqa: SIM115
                        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                                env=env, stdin=subprocess.DEVNULL)
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
        except BaseException:  # Ctrl-C, SIGTERM (alignlab._signals), or a bug: stop the runs
            _stop(running.values(), codes)
            raise


def _stop(running, codes: dict[str, int], grace_s: float = 2.0,
          timeout_s: float = 30.0) -> None:
    """Stop the running worker processes as Ctrl-C does: each writes its ``summary.json``
    (status interrupted) and exits 130 (143 for SIGTERM); its last checkpoint stays, so
    re-running the sweep resumes it.

    A Ctrl-C typed in the terminal (or a SIGTERM to the whole process group) has reached
    the workers already: they get ``grace_s`` to stop by themselves before the sweep sends
    its own SIGTERM, so none is interrupted twice while writing its summary. SIGTERM, not
    SIGINT: every ``alignlab`` command handles it as Ctrl-C, whereas a sweep started where
    SIGINT is ignored (a background job of a shell script, ``cmd &``) starts workers that
    ignore SIGINT too. Workers still running ``timeout_s`` later, or at a second Ctrl-C,
    are killed."""
    running = list(running)
    try:
        _wait_all(running, grace_s)
        for proc, _log, _task in running:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        _wait_all(running, timeout_s)
    except KeyboardInterrupt:
        pass
    finally:
        for proc, log, task in running:
            if proc.poll() is None:
                proc.kill()
            codes[task.name] = proc.wait()
            log.close()


def _wait_all(running, seconds: float) -> None:
    """Wait until every process has exited or ``seconds`` have passed."""
    deadline = time.monotonic() + seconds
    for proc, _log, _task in running:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            return


def _train_args(argv: Sequence[str]) -> argparse.Namespace:
    """``argv`` (``["train", ...]``, as :meth:`Task.argv` gives it) parsed by the parser of
    the ``train`` command itself, so every option has the command's default."""
    from .cli import register

    parser = argparse.ArgumentParser(prog="alignlab")
    register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(list(argv))


def run_task(task: Task, sets: Sequence[str], cwd: str | None = None,
             threads: int | None = None) -> int:
    """Run one task in this process (the ``train`` command's handler,
    :func:`alignlab.train.cli.cmd_train`), its output appended to ``<run>/train.log``;
    returns the exit status: 0, 2 for bad input (its one line in the log), 4 diverged, 1 a
    crash (its traceback in the log). Ctrl-C (and SIGTERM under
    :func:`alignlab._signals.sigterm_as_interrupt`) propagates: it stops the sweep, not
    just this run.

    What the ``inline`` launcher calls, and the function each submitit job runs (``cwd``:
    the folder the sweep was started in, so relative paths mean the same; ``threads``:
    torch's intra-op threads).
    """
    import contextlib
    import traceback

    from .cli import cmd_train

    if cwd is not None:
        os.chdir(cwd)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    args = _train_args(task.argv(sets))
    task.run_dir.mkdir(parents=True, exist_ok=True)
    with open(task.run_dir / "train.log", "a", encoding="utf-8") as log, \
            contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        try:
            return int(cmd_train(args))
        except ValueError as exc:  # bad input: one line, as the command line says it
            print(f"alignlab: error: {' '.join(str(exc).split())}", file=sys.stderr)
            return ExitStatus.BAD_INPUT
        except Exception:  # a crash of one run is reported, not fatal to the others
            traceback.print_exc()
            return ExitStatus.CRASH


class InlineLauncher:
    """Runs tasks one after another in this process (for debugging and tests); each run's
    output still goes to ``<run>/train.log``."""

    def __init__(self, jobs: int = 1, **options):
        self.jobs = 1

    def run(self, tasks: Sequence[Task], sets: Sequence[str], report,
            codes: dict[str, int]) -> None:
        for task in tasks:
            report(f"started  {task.name} (in this process)")
            codes[task.name] = run_task(task, sets)
            report(f"finished {task.name}: exit {codes[task.name]}")


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

    def run(self, tasks: Sequence[Task], sets: Sequence[str], report,
            codes: dict[str, int]) -> None:
        if not tasks:
            return
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


LAUNCHERS = {"local": LocalLauncher, "inline": InlineLauncher, "submitit": SubmititLauncher}


def _config_names(configs: Sequence[str | Path]) -> list[str]:
    """The run-name prefix of each config: its file stem; configs that share a stem get the
    shortest tail of their paths (folders joined by ``-``) that tells them apart."""
    paths = [Path(c).resolve() for c in configs]
    for i, p in enumerate(paths):
        if p in paths[:i]:
            raise ValueError(f"`CONFIG` must name each file once, got {str(configs[i])!r} "
                             "twice.")
    tails = [p.with_suffix("").parts for p in paths]
    names = []
    for tail in tails:
        group = [t for t in tails if t[-1] == tail[-1]]
        k = 1
        while len({t[-k:] for t in group}) < len(group):
            k += 1
        names.append("-".join(tail[-k:]))
    return names


def default_sweep_dir(configs: Sequence[str | Path]) -> Path:
    """``runs/<first config's name>-sweep-<hash>``: ``<hash>``, 6 hex digits of the CONFIG
    paths (resolved, relative to the working folder, in order), so two sweeps share a
    default folder only when they name the same config files."""
    here = Path.cwd().resolve()
    where = "\n".join(os.path.relpath(Path(c).resolve(), here) for c in configs)
    digest = hashlib.sha1(where.encode()).hexdigest()[:6]
    return Path("runs") / f"{_config_names(configs)[0]}-sweep-{digest}"


def _tasks(configs: Sequence[str | Path], grid: Sequence[tuple[str, list[Any]]],
           sets: Sequence[str], out: Path) -> list[tuple[Task, Config]]:
    """Every run of the sweep with its resolved config (validated: errors name the point)."""
    keys = [k for k, _ in grid]
    tasks: list[tuple[Task, Config]] = []
    for config, label in zip(configs, _config_names(configs), strict=True):
        for combo in itertools.product(*(values for _, values in grid)):
            overrides = tuple(zip(keys, combo, strict=True))
            name = "__".join([label] + [f"{k}={_slug(v)}" for k, v in overrides])
            try:
                cfg = load_config(config, [*sets, *overrides])
            except ValueError as exc:
                raise ValueError(f"{exc} (grid point {name})") from None
            tasks.append((Task(name, Path(config), overrides, out / name, cfg.train.epochs),
                          cfg))
    names = [t.name for t, _ in tasks]
    if len(set(names)) != len(names):
        raise ValueError(f"`--grid` values must give distinct run names, got {names}.")
    return tasks


def _changes(task: Task, config: Config) -> dict[str, tuple[Any, Any]]:
    """How the run already in ``task.run_dir`` (if any) was made differently from
    ``config`` (:func:`~.rundir.changed_settings`); empty: it can be reused."""
    if not (task.run_dir / CONFIG_FILE).is_file():
        return {}
    try:
        made = prepare_resume(task.run_dir)[0]
    except ValueError as exc:
        raise ValueError(f"{exc} (the run of grid point {task.name})") from None
    return changed_settings(made, config)


def _config_digest(config: Config, grid_keys: Sequence[str]) -> str:
    """6 hex digits of ``config`` without :data:`~.rundir.EXTENDABLE_KEYS` and the grid's
    keys (already in the run's name): the suffix of the new runs ``--on-change new`` writes,
    one for every point of the re-run sweep, and the same when that sweep runs again."""
    text = json.dumps(trajectory_settings(config.to_dict(), grid_keys), sort_keys=True,
                      default=list)
    return hashlib.sha1(text.encode()).hexdigest()[:6]


def _plan(tasks: Sequence[tuple[Task, Config]], out: Path, on_change: str) -> list[Task]:
    """The tasks, each pointing at a run folder it may reuse: with ``on_change`` 'new', a
    point whose folder holds a run made with other settings moves to ``<run>~<digest>``;
    with 'stop' (or when that folder too holds another run) the sweep stops here, naming
    the keys that differ."""
    planned, clashes = [], []
    for task, config in tasks:
        changes = _changes(task, config)
        if changes and on_change == "new":
            name = f"{task.name}~{_config_digest(config, [k for k, _ in task.overrides])}"
            task = dataclasses.replace(task, name=name, run_dir=out / name)
            changes = _changes(task, config)
        if changes:
            clashes.append((task.name, changes))
        planned.append(task)
    if clashes:
        keys: dict[str, str] = {}  # key -> "old -> new" (the first run's, when they vary)
        for _name, changes in clashes:
            for key, (old, new) in changes.items():
                keys.setdefault(key, f"{_shown(old)} -> {_shown(new)}")
        names = [n for n, _ in clashes]
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3
                                        else "")
        what = "; ".join(f"{k} {v}" for k, v in keys.items())
        hint = ("(--on-change new found runs with other settings at the new names too)"
                if on_change == "new" else
                "pass --on-change new to write new runs beside them")
        raise ValueError(f"`out` {str(out)!r} holds {len(names)} run(s) made with other "
                         f"settings than this sweep's ({what}): {shown}; {hint}, or choose "
                         "another --out.")
    return planned


def _shown(value: Any) -> str:
    return "unset" if value is None else toml_value(value)


def run_sweep(configs: str | Path | Sequence[str | Path], grid: Sequence[tuple[str, list[Any]]],
              *, sets: Sequence[str] = (), jobs: int = 1, out: str | Path | None = None,
              launcher: str = "local", dry_run: bool = False, quiet: bool = False,
              cluster: str = "auto", slurm: dict[str, Any] | None = None,
              threads: int | None = None, on_change: str = "stop") -> int:
    """Run the grid and write ``runs.csv`` and ``summary.csv``; return the exit status
    (0: every run completed or diverged; 1: some run failed or was interrupted, see
    runs.csv). Ctrl-C, and SIGTERM, stop the runs, write both files and raise
    :class:`KeyboardInterrupt` (the command line's exit status 130; 143 for SIGTERM).

    ``threads``: torch threads of each local run (default: this machine's cores // jobs;
    set it when other work shares the cores: oversubscribed threads slow every run).

    ``launcher``: 'local' (``jobs`` subprocesses here), 'inline' (one after another in
    this process) or 'submitit' (one job per run; ``cluster`` and ``slurm`` as in
    :class:`SubmititLauncher`).

    ``on_change``: what to do with a run folder that holds a run made with other settings
    (its ``config.toml`` differs from the grid point's resolved config in more than
    ``train.epochs``): 'stop' (a ``ValueError`` naming the keys, before any work) or 'new'
    (run that point in ``<run>~<6 hex digits of its config>`` instead; the digits leave out
    the grid's keys, so every point of the re-run sweep gets the same suffix).
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
    if on_change not in ON_CHANGE:
        raise ValueError(f"`on_change` must be one of {', '.join(map(repr, ON_CHANGE))}, got "
                         f"{on_change!r}.")
    slurm = {k: v for k, v in (slurm or {}).items() if v is not None and v != {}}
    if launcher != "submitit" and (slurm or cluster != "auto"):
        raise ValueError(f"`--launcher` must be 'submitit' for the --slurm-* and "
                         f"--submitit-cluster options, got {launcher!r}.")
    out = Path(out) if out is not None else default_sweep_dir(configs)
    check_output_dir(out, name="out")
    extra = {} if threads is None else {"threads": threads}
    runner = LAUNCHERS[launcher](jobs, folder=out / ".submitit", cluster=cluster, slurm=slurm,
                                 **extra)
    tasks = _plan(_tasks(configs, grid, sets, out), out, on_change)

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
            print(shlex.join(["alignlab", *task.argv(sets)]))
        return ExitStatus.OK
    codes: dict[str, int] = {}
    with sigterm_as_interrupt():
        out.mkdir(parents=True, exist_ok=True)
        try:
            runner.run(todo, sets, report, codes)
        finally:  # also when interrupted: the runs so far, as one set
            runs, summary = _collect(tasks, grid, codes)
            write_together(out, {"runs.csv": runs.to_csv, "summary.csv": summary.to_csv},
                           name="out")
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
        status, final, wall_s = _outcome(task, s)
        code = codes.get(task.name)
        if code not in (None, 0) and status not in _FINISHED:  # this sweep's attempt ended so
            stopped = code in _STOPPED
            status = "interrupted" if stopped else "failed"
        elif status is None:
            status = "not run" if code is None else "failed"
        rows.append({"run": task.name, "config": str(task.config),
                     **{k: toml_value(v).strip('"') for k, v in task.overrides},
                     "status": status, "exit": codes.get(task.name, ""),
                     "epochs": final.get("epoch", ""),
                     "test_acc": _num(final.get("test_acc")),
                     "val_acc": _num(final.get("val_acc")),
                     "train_loss": _num(final.get("train_loss")),
                     "wall_s": _num(wall_s)})
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


def _outcome(task: Task, summary: dict[str, Any]) -> tuple[str | None, dict[str, Any], Any]:
    """``(status, final metrics, wall seconds)`` of the run as long as this sweep asks:
    ``summary.json``'s, or, for a run that went further (completed, or diverged after the
    asked epochs), its ``metrics.csv`` row at ``task.epochs``: the first epochs of a longer
    run are the shorter run (:data:`~.rundir.EXTENDABLE_KEYS`)."""
    status, final = summary.get("status"), summary.get("final") or {}
    reached = _num(final.get("epoch"))
    if status in _FINISHED and task.epochs and reached >= task.epochs and (
            status == "diverged" or reached > task.epochs):
        for row in read_csv(task.run_dir / METRICS_FILE):
            if row.get("epoch") == str(task.epochs):
                return "completed", row, row.get("wall_s")
    return status, final, summary.get("wall_s")


def _num(value: Any) -> float:
    return math.nan if value is None or value == "" else float(value)
