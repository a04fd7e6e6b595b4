"""The run directory: its files, their columns, and writing them safely.

``config.toml``   the resolved config, plus ``[meta]`` (alignlab, torch, python versions)
``metrics.csv``   one row per epoch (:data:`METRIC_COLUMNS`; epoch 0 = before training)
``layers.csv``    one row per converted layer per log point (:data:`LAYER_COLUMNS`)
``checkpoint.pt`` everything needed to continue exactly, replaced atomically every epoch
``summary.json``  status (completed | diverged | interrupted), final metrics, wall time

Floats are written with ``repr`` (shortest exact round trip), so two runs can be compared
for exact equality from their CSV files. A write that fails mid-run (a full disk) becomes
:class:`WriteFailed` through :func:`writing`: one line naming the folder.

The one reader of the format is :func:`read_run` (a :class:`RunRecord`): every report reads
run directories through it, so the file names, the columns and how a cell becomes a value
(:func:`parse_cell`: numbers as floats, empty as NaN; ``feedback_used`` as a bool) are
defined here once, beside the writer.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import hashlib
import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._output import UnusableOutput, check_output_dir, write_atomic
from .._toml import load_toml

__all__ = [
    "CHECKPOINT_FILE",
    "CONFIG_FILE",
    "FLAG_COLUMNS",
    "LAYERS_FILE",
    "LAYER_COLUMNS",
    "METRICS_FILE",
    "METRIC_COLUMNS",
    "SUMMARY_FILE",
    "TEXT_COLUMNS",
    "CsvLog",
    "RunRecord",
    "WriteFailed",
    "changed_settings",
    "trajectory_settings",
    "default_run_dir",
    "check_new_run",
    "prepare_new_run",
    "EXTENDABLE_KEYS",
    "parse_cell",
    "parse_number",
    "prepare_resume",
    "read_csv",
    "read_run",
    "read_summary",
    "check_run_files",
    "torch_save_atomic",
    "write_json",
    "write_text_atomic",
    "writing",
]

CONFIG_FILE = "config.toml"
METRICS_FILE = "metrics.csv"
LAYERS_FILE = "layers.csv"
CHECKPOINT_FILE = "checkpoint.pt"
SUMMARY_FILE = "summary.json"

METRIC_COLUMNS = [
    "epoch",  # 0 = before training; training epochs 1..train.epochs
    "step",  # optimiser steps taken so far
    "train_loss",  # mean minibatch loss over the epoch (train mode); epoch 0: eval pass
    "train_acc",  # fraction correct over the epoch's minibatches; epoch 0: eval pass
    "val_loss", "val_acc",  # on the validation split (empty without one)
    "test_loss", "test_acc",  # on the test set, eval mode
    "lr",  # learning rate in force during this epoch (row 0: the one training starts with)
    "weight_decay",  # weight decay in force during this epoch (row 0: likewise)
    "update_angle_deg",  # angle (all layers) between this method's and BP's weight update
    "update_norm_ratio",  # |g_method| / |g_bp| on the probe batch
    "epoch_s",  # wall seconds of this epoch's training steps
    "log_s",  # wall seconds of this row's evaluation and logging
    "wall_s",  # wall seconds since the run started (summed over resumes)
]

LAYER_COLUMNS = [
    "epoch", "step",  # the log point: end of `epoch`, or mid-epoch at optimiser step `step`
    "layer", "type", "method", "measure",  # measure: weight | path | none (alignlab.alignment)
    "angle_deg", "norm_ratio",  # W vs the effective feedback (|F| / |W|)
    "feedback_used",  # whether anything below the layer needed its feedback
    "update_angle_deg", "update_norm_ratio",  # weight update vs BP's on the probe batch
    "w_sq",  # |W_t|_F^2
    "w_dot_w0",  # <W_t, W_0>
    "w0_sq",  # |W_0|_F^2
    "fb0_sq",  # |F_0|_F^2, the initial effective feedback (PFA: |B^T R_0^T|^2)
    "w_dot_fb0",  # <W_t, F_0>
    "decay_c",  # Proposition 1's factor c_t (D_t = c_t D_0) for the SGD schedule so far
    "ortho_residual",  # |W W^T - I|_F (models trained by layer-local targets; else empty)
    "condition",  # the 1-norm condition estimate of the layer's LU (idem)
    # GAIT-prop: update_angle_deg as the first-order theory predicts it from the residuals
    # (alignlab.gaitprop.first_order_angles; other rules and models: empty or NaN)
    "update_angle_first_order_deg",
]

#: Columns of the CSV files that hold text (kept as written, stripped); ``measure`` empty
#: reads as ``none``. Every other column of :data:`METRIC_COLUMNS` and
#: :data:`LAYER_COLUMNS` is a number.
TEXT_COLUMNS = ("layer", "type", "method", "measure")
#: Columns that hold a boolean: ``true`` / ``false`` (also 1/0, yes/no); empty: None.
FLAG_COLUMNS = ("feedback_used",)
_TEXT_DEFAULTS = {"measure": "none"}
_CSV_COLUMNS = {METRICS_FILE: METRIC_COLUMNS, LAYERS_FILE: LAYER_COLUMNS}
_NUMBER_COLUMNS = frozenset(METRIC_COLUMNS + LAYER_COLUMNS) - {*TEXT_COLUMNS, *FLAG_COLUMNS}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)
    return str(value)


class CsvLog:
    """A CSV file with fixed columns, appended row by row (flushed), or rewritten."""

    def __init__(self, path: Path, columns: Sequence[str]):
        self.path = Path(path)
        self.columns = list(columns)

    def rewrite(self, rows: Iterable[Mapping[str, Any]]) -> None:
        text = [",".join(self.columns)]
        text += [",".join(_cell(r.get(c)) for c in self.columns) for r in rows]
        write_text_atomic(self.path, "\n".join(text) + "\n")

    def append(self, rows: Iterable[Mapping[str, Any]]) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            for r in rows:
                fh.write(",".join(_cell(r.get(c)) for c in self.columns) + "\n")
            fh.flush()


def read_csv(path: str | Path) -> list[dict[str, str]]:
    """Rows of a CSV file as dicts of strings."""
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


# --------------------------------------------------------------------------- reading


def parse_number(text: str | float | None) -> float:
    """A number cell as a float (``nan``, ``inf`` as written; a value already read passes
    through); empty or absent: NaN. Raises ``ValueError`` (``could not convert ...``) for
    anything else."""
    if text is None or (isinstance(text, str) and text.strip() == ""):
        return math.nan
    return float(text)


def _parse_flag(text: str | None) -> bool | None:
    value = (text or "").strip().lower()
    return True if value in ("true", "1", "yes") else False if value in (
        "false", "0", "no") else None


def parse_cell(column: str, text: str | None) -> Any:
    """The value of one CSV cell of the run directory's format: :data:`TEXT_COLUMNS` as
    stripped text (``measure`` empty: ``none``), :data:`FLAG_COLUMNS` as True / False / None
    (empty or unrecognised), the format's other columns through :func:`parse_number`;
    a column the format does not know stays text. Raises ``ValueError`` (one line, naming
    the column) for a number column that holds no number."""
    if column in TEXT_COLUMNS:
        return (text or "").strip() or _TEXT_DEFAULTS.get(column, "")
    if column in FLAG_COLUMNS:
        return _parse_flag(text)
    if column not in _NUMBER_COLUMNS:
        return text
    try:
        return parse_number(text)
    except ValueError:
        raise ValueError(f"`{column}` must be a number, got {text!r}") from None


@dataclass(frozen=True)
class RunRecord:
    """A run directory as :func:`read_run` read it.

    Rows are dicts of every column of the format (:data:`METRIC_COLUMNS`,
    :data:`LAYER_COLUMNS`; a column the file lacks, as in older run directories, reads as
    an empty cell) plus any other column of the file, parsed by :func:`parse_cell`. An
    absent file is ``None`` (config, checkpoint, summary) or no rows (the CSV files).
    """

    path: Path
    config: dict[str, Any] | None = field(repr=False)  # config.toml's tables, as written
    metrics: tuple[dict[str, Any], ...] = field(repr=False)  # metrics.csv, one per row
    layers: tuple[dict[str, Any], ...] = field(repr=False)  # layers.csv, one per row
    checkpoint: Path | None  # checkpoint.pt, if the run has one
    summary: dict[str, Any] | None = field(repr=False)  # summary.json (None: none yet)

    def rows(self, file: str) -> tuple[dict[str, Any], ...]:
        """The rows of the CSV file named ``file`` (:data:`METRICS_FILE` or
        :data:`LAYERS_FILE`)."""
        return {METRICS_FILE: self.metrics, LAYERS_FILE: self.layers}[file]

    def resolved_config(self):
        """``config.toml`` validated into a :class:`~.config.Config` (every default filled
        in); one ``ValueError`` line naming the file for a config this version refuses."""
        from .config import resolve_config

        where = self.path / CONFIG_FILE
        if self.config is None:
            raise ValueError(f"`run_dir` must hold {CONFIG_FILE}, got {str(self.path)!r}.")
        try:
            return resolve_config(self.config)
        except ValueError as exc:
            raise ValueError(f"{exc} (in {str(where)!r})") from None


def _incomplete(path: Path, name: str, what: str) -> ValueError:
    return ValueError(f"`{name}` must be complete run directories, got {str(path)!r} "
                      f"({what}).")


def check_run_files(run_dir: str | Path, require: Sequence[str] = (CONFIG_FILE, METRICS_FILE),
                    *, name: str = "run_dir") -> Path:
    """``run_dir`` as a Path, after checking (reading nothing) that it is a directory
    holding the files ``require``. One ``ValueError`` line naming ``name`` (the argument
    that gave the folder) and the files missing."""
    path = Path(run_dir)
    if not path.is_dir():
        raise ValueError(f"`{name}` must be existing directories, got {str(path)!r}.")
    missing = [f for f in require if not (path / f).is_file()]
    if missing:
        raise _incomplete(path, name, f"no {', '.join(missing)}")
    return path


def _read_table(path: Path, file: str, required: Sequence[str], nonempty: bool,
                name: str) -> tuple[dict[str, Any], ...]:
    with (path / file).open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = list(reader.fieldnames or [])
        missing = [c for c in required if c not in header]
        if missing:
            raise _incomplete(path, name, f"{file} has no column {', '.join(missing)}")
        raw = list(reader)
    if nonempty and not raw:
        raise _incomplete(path, name, f"{file} has no rows")
    columns = [*header, *(c for c in _CSV_COLUMNS.get(file, ()) if c not in header)]
    rows = []
    for line, r in enumerate(raw, start=2):
        try:
            rows.append({c: parse_cell(c, r.get(c)) for c in columns})
        except ValueError as exc:
            raise _incomplete(path, name, f"{file} line {line}: {exc}") from None
    return tuple(rows)


def read_run(run_dir: str | Path, require: Sequence[str] = (CONFIG_FILE, METRICS_FILE), *,
             columns: Mapping[str, Sequence[str]] | None = None,
             name: str = "run_dir") -> RunRecord:
    """Read a run directory (:data:`CONFIG_FILE`, :data:`METRICS_FILE`,
    :data:`LAYERS_FILE`, :data:`SUMMARY_FILE`; :data:`CHECKPOINT_FILE` by path only).

    ``require``: the files that must be there (:func:`check_run_files`), a CSV file among
    them with at least one row; ``columns``: per CSV file, the columns its header must
    have. Raises one ``ValueError`` line naming ``name`` (the argument that gave the
    folder), the folder, and what is missing or bad (file, column, line).
    """
    path = check_run_files(run_dir, require, name=name)
    columns = dict(columns or {})
    config = None
    if (path / CONFIG_FILE).is_file():
        config = load_toml(path / CONFIG_FILE, name=CONFIG_FILE)
    tables = {}
    for file in (METRICS_FILE, LAYERS_FILE):
        tables[file] = (_read_table(path, file, columns.get(file, ()), file in require, name)
                        if (path / file).is_file() else ())
    checkpoint = path / CHECKPOINT_FILE
    return RunRecord(path=path, config=config, metrics=tables[METRICS_FILE],
                     layers=tables[LAYERS_FILE],
                     checkpoint=checkpoint if checkpoint.is_file() else None,
                     summary=read_summary(path))


def write_text_atomic(path: Path, text: str) -> None:
    """``text`` (UTF-8) into ``path`` through :func:`alignlab._output.write_atomic`."""
    write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def torch_save_atomic(obj: Any, path: Path) -> None:
    """``torch.save(obj)`` into ``path`` through :func:`alignlab._output.write_atomic`: a
    kill -9 at any moment leaves the previous checkpoint or the new one, never half."""
    import torch

    def save(tmp: Path) -> None:
        # through a Python file object: a full disk is OSError(ENOSPC) from its write(),
        # where torch's own file writer raises "[enforce fail at inline_container.cc]"
        with open(tmp, "wb") as fh:
            try:
                torch.save(obj, fh)
            except RuntimeError as exc:
                # torch's zip writer, closed after a write that Ctrl-C or SIGTERM cut short,
                # raises "unexpected pos" in place of the interrupt: a stop, not a failed write
                if isinstance(exc.__context__, KeyboardInterrupt):
                    raise exc.__context__ from None
                raise

    write_atomic(path, save)


class WriteFailed(RuntimeError):
    """The run directory could not be written during training (e.g. no space left on
    device): the run stopped, its checkpoint and CSV files hold the last complete epoch,
    and ``--resume`` continues it once the cause is fixed (exit status 5)."""


def _why_unwritten(exc: BaseException) -> str | None:
    """Why writing failed, in words, if ``exc`` is a failed write: an ``OSError`` (also
    behind :class:`~alignlab._output.UnusableOutput`) or torch's stream writer's
    "[enforce fail at inline_container.cc]"; else None."""
    cause = exc.__cause__ if isinstance(exc, UnusableOutput) else exc
    if isinstance(cause, OSError):
        if cause.errno in (errno.ENOSPC, errno.EDQUOT):
            return "no space left on device"
        return cause.strerror or str(cause)
    if isinstance(exc, RuntimeError) and "inline_container" in str(exc):
        first = (str(exc).strip().splitlines() or [""])[0]
        return f"torch's checkpoint writer failed ({first}; no space left on device?)"
    return None


@contextlib.contextmanager
def writing(run_dir: Path, what: str, last_epoch: int | None):
    """Turn a failed write of ``what`` into ``run_dir`` into :class:`WriteFailed`: one line
    naming the folder and ``last_epoch``, the epoch its checkpoint still holds."""
    try:
        yield
    except (OSError, UnusableOutput, RuntimeError) as exc:
        why = _why_unwritten(exc)
        if why is None:
            raise
        raise WriteFailed(f"{why}: the run folder {str(run_dir)!r} could not be written "
                          f"({what}); stopped at epoch {last_epoch}, its last checkpoint: "
                          f"free space and continue with `alignlab train --resume "
                          f"{run_dir}`.") from None


def write_json(path: Path, obj: Mapping[str, Any]) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"not JSON serialisable: {value!r}")


def read_summary(run_dir: str | Path) -> dict[str, Any] | None:
    """``summary.json`` of a run, or None if it has none (or an unreadable one)."""
    try:
        with open(Path(run_dir) / SUMMARY_FILE, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def default_run_dir(config_path: str | Path, overrides: Sequence[str] = ()) -> Path:
    """``runs/<config-stem>-<YYYYmmdd-HHMMSS>[-<hash of the --set overrides>]``."""
    stem = Path(config_path).stem
    stamp = time.strftime("%Y%m%d-%H%M%S")
    if overrides:
        digest = hashlib.sha1("\n".join(overrides).encode()).hexdigest()[:6]
        stamp = f"{stamp}-{digest}"
    return Path("runs") / f"{stem}-{stamp}"


_RUN_FILES = (CONFIG_FILE, CHECKPOINT_FILE, METRICS_FILE, SUMMARY_FILE)


def check_new_run(out: str | Path) -> Path:
    """Check, creating nothing, that ``out`` can become a new run directory: a writable
    folder (existing and without a run, or creatable) (:func:`alignlab._output.
    check_output_dir`). A folder that already holds a run is refused: resume it instead."""
    path = check_output_dir(out, name="out")
    if path.is_dir() and any((path / f).exists() for f in _RUN_FILES):
        raise ValueError(f"`out` {str(path)!r} already holds a run: continue it with "
                         f"`alignlab train --resume {path}` or choose another folder.")
    return path


def prepare_new_run(out: str | Path) -> Path:
    """:func:`check_new_run`, then create the folder (with its parents)."""
    path = check_new_run(out)
    path.mkdir(parents=True, exist_ok=True)
    return path


#: config keys a resumed run may change (``--set`` with ``--resume``): none alters the
#: trajectory up to the checkpoint, so the continued run is the run a longer one would be.
EXTENDABLE_KEYS = ("train.epochs",)


def prepare_resume(run_dir: str | Path, overrides: Sequence[str] = ()):
    """``(config, path)`` of a run directory to continue (its ``config.toml``, with
    ``overrides`` of :data:`EXTENDABLE_KEYS` only: ``train.epochs=N`` extends a finished
    run to ``N`` epochs)."""
    from .config import load_config

    path = Path(run_dir)
    if not (path / CONFIG_FILE).is_file():
        raise ValueError(f"`--resume` must be a run directory (with {CONFIG_FILE}), got "
                         f"{str(path)!r}.")
    for item in overrides:
        key = str(item).partition("=")[0].strip()
        if key not in EXTENDABLE_KEYS:
            raise ValueError(f"`--set {key}` cannot change a resumed run (only "
                             f"{', '.join(EXTENDABLE_KEYS)} can, to extend it); start a new "
                             f"run instead.")
    return load_config(path / CONFIG_FILE, overrides), path


def trajectory_settings(tables: Mapping[str, Mapping[str, Any]], drop: Sequence[str] = ()
                        ) -> dict[str, Any]:
    """``{"section.key": value}`` of a config's tables (``Config.to_dict()``) without
    :data:`EXTENDABLE_KEYS` (and the dotted keys ``drop``): what decides the steps a run
    takes, the one comparison behind resume, the sweep's reuse and its run names."""
    skip = {*EXTENDABLE_KEYS, *drop}
    return {f"{section}.{key}": value for section, table in tables.items()
            for key, value in table.items() if f"{section}.{key}" not in skip}


def changed_settings(made, asked) -> dict[str, tuple[Any, Any]]:
    """``{"section.key": (made's value, asked's value)}`` for every key whose value differs
    between two configs (:class:`~.config.Config`; ``None``: unset), but
    :data:`EXTENDABLE_KEYS`. Empty: a run made with ``made`` can be reused as a run of
    ``asked`` (continued, or extended to its ``train.epochs``)."""
    a, b = (trajectory_settings(c.to_dict()) for c in (made, asked))
    return {k: (a.get(k), b.get(k)) for k in [*a, *(k for k in b if k not in a)]
            if a.get(k) != b.get(k)}
