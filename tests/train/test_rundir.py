"""The run directory's one reader (:func:`alignlab.train.rundir.read_run`) against its
writer: what the writer writes reads back as the values written; a missing or bad file is
one line naming the folder and what is wrong."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
from trainhelpers import tables

from alignlab.train.rundir import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    LAYER_COLUMNS,
    LAYERS_FILE,
    METRIC_COLUMNS,
    METRICS_FILE,
    SUMMARY_FILE,
    CsvLog,
    parse_cell,
    read_run,
    write_json,
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A run directory written by the training loop: an FA MLP, one epoch, logged twice."""
    from alignlab.train import resolve_config, train

    run = tmp_path_factory.mktemp("runs") / "fa"
    config = resolve_config(tables(method={"name": "fa"},
                                   train={"epochs": 1, "log_every_steps": 10}))
    train(config, run, quiet=True)
    return run


def test_a_trained_run_reads_back(trained):
    """Every file of a run the loop wrote, read back: the config's tables, the CSV rows as
    numbers (epochs 0 and 1), the layer rows with text, flags and numbers, the checkpoint's
    path and the summary."""
    from alignlab.train.config import resolve_config

    run = read_run(trained, (CONFIG_FILE, METRICS_FILE, LAYERS_FILE, CHECKPOINT_FILE))
    assert run.path == trained
    assert run.config["method"]["name"] == "fa" and run.config["train"]["epochs"] == 1
    assert run.resolved_config() == resolve_config(run.config)
    assert [r["epoch"] for r in run.metrics] == [0.0, 1.0]
    assert set(METRIC_COLUMNS) <= set(run.metrics[0])
    assert all(isinstance(r[c], float) for r in run.metrics for c in METRIC_COLUMNS)
    assert 0.0 <= run.metrics[-1]["test_acc"] <= 1.0
    assert run.metrics[-1]["step"] > 10  # 600 examples / 32 per step
    logged = {r["step"] for r in run.layers}
    assert {0.0, 10.0, run.metrics[-1]["step"]} <= logged  # mid-epoch log points too
    layer = run.layers[-1]
    assert set(LAYER_COLUMNS) <= set(layer)
    assert layer["method"] == "fa" and layer["measure"] == "weight"
    assert isinstance(layer["layer"], str) and layer["layer"]
    assert layer["feedback_used"] in (True, False)
    assert 0.0 < layer["angle_deg"] < 180.0 and layer["w_sq"] > 0
    assert math.isnan(layer["ortho_residual"])  # written empty: not a layer-local model
    assert run.checkpoint == trained / CHECKPOINT_FILE
    assert run.summary["status"] == "completed"


def write_small_run(run: Path, metrics: list[dict], layers: list[dict] | None = None) -> Path:
    """A run directory through the writer's own pieces (CsvLog, write_json)."""
    run.mkdir(parents=True)
    (run / CONFIG_FILE).write_text('[method]\nname = "pfa"\n')
    CsvLog(run / METRICS_FILE, METRIC_COLUMNS).rewrite(metrics)
    if layers is not None:
        CsvLog(run / LAYERS_FILE, LAYER_COLUMNS).rewrite(layers)
    write_json(run / SUMMARY_FILE, {"status": "completed"})
    return run


def test_empty_nan_and_flags(tmp_path):
    """Empty cells (None written) and 'nan' read as NaN, inf as inf; feedback_used as
    True / False / None; measure empty as 'none'."""
    run = write_small_run(tmp_path / "r", [
        {"epoch": 0, "step": 0, "test_acc": 0.25, "val_acc": None},
        {"epoch": 1, "step": 7, "test_acc": math.nan, "lr": math.inf},
    ], [
        {"epoch": 0, "layer": "0", "measure": "path", "angle_deg": 45.5,
         "feedback_used": True},
        {"epoch": 0, "layer": "2", "measure": None, "angle_deg": None,
         "feedback_used": False},
        {"epoch": 1, "layer": "2", "feedback_used": None},
    ])
    rec = read_run(run)
    assert rec.metrics[0]["test_acc"] == 0.25 and math.isnan(rec.metrics[0]["val_acc"])
    assert math.isnan(rec.metrics[1]["test_acc"]) and rec.metrics[1]["lr"] == math.inf
    assert [r["feedback_used"] for r in rec.layers] == [True, False, None]
    assert [r["measure"] for r in rec.layers] == ["path", "none", "none"]
    assert rec.layers[0]["angle_deg"] == 45.5 and math.isnan(rec.layers[1]["angle_deg"])
    assert rec.checkpoint is None and rec.summary == {"status": "completed"}


def test_columns_an_older_file_lacks_read_empty(tmp_path):
    """An older run directory without update_angle_deg, feedback_used: NaN and None, the
    columns the file has as written; a column the format does not know stays text."""
    run = write_small_run(tmp_path / "r", [{"epoch": 0, "test_acc": 0.5}])
    (run / LAYERS_FILE).write_text("epoch,layer,measure,angle_deg,note\n0,fc,weight,3,hi\n")
    row = read_run(run).layers[0]
    assert row["angle_deg"] == 3.0 and row["note"] == "hi" and row["layer"] == "fc"
    assert math.isnan(row["update_angle_deg"]) and row["feedback_used"] is None


@pytest.mark.parametrize(("column", "text", "value"), [
    ("angle_deg", "", math.nan), ("angle_deg", " 1.5 ", 1.5), ("epoch", "3", 3.0),
    ("feedback_used", "false", False), ("feedback_used", "1", True),
    ("feedback_used", "maybe", None), ("measure", " weight ", "weight"),
])
def test_parse_cell(column, text, value):
    got = parse_cell(column, text)
    assert got is value or got == value or (math.isnan(got) and math.isnan(value))


@pytest.mark.parametrize(("break_it", "message"), [
    (lambda run: (run / METRICS_FILE).unlink(), r"\(no metrics.csv\)\.$"),
    (lambda run: (run / CONFIG_FILE).unlink(), r"\(no config.toml\)\.$"),
    (lambda run: (run / METRICS_FILE).write_text("epoch,test_acc\n"),
     r"\(metrics.csv has no rows\)\.$"),
    (lambda run: (run / METRICS_FILE).write_text("epoch,train_loss\n0,2\n"),
     r"\(metrics.csv has no column test_acc\)\.$"),
    (lambda run: (run / LAYERS_FILE).write_text("epoch,layer,angle_deg\n0,fc,1\n1,fc,x\n"),
     r"\(layers.csv line 3: `angle_deg` must be a number, got 'x'\)\.$"),
    (lambda run: shutil.rmtree(run), r"^`run_dirs` must be existing directories, got '.*r'\.$"),
])
def test_errors_name_the_folder_and_what_is_wrong(tmp_path, break_it, message):
    run = write_small_run(tmp_path / "r", [{"epoch": 0, "test_acc": 0.5}],
                          [{"epoch": 0, "layer": "fc", "angle_deg": 1.0}])
    read_run(run, columns={METRICS_FILE: ("epoch", "test_acc")})  # whole, it reads
    break_it(run)
    with pytest.raises(ValueError, match=message) as info:
        read_run(run, columns={METRICS_FILE: ("epoch", "test_acc")}, name="run_dirs")
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith("`run_dirs` must be ") and repr(str(run)) in text


def test_a_missing_optional_file_is_no_rows(tmp_path):
    """layers.csv is required only when asked for; absent, the run has no layer rows."""
    run = write_small_run(tmp_path / "r", [{"epoch": 0, "test_acc": 0.5}])
    assert read_run(run).layers == ()
    with pytest.raises(ValueError, match=r"\(no layers.csv, checkpoint.pt\)\.$"):
        read_run(run, (CONFIG_FILE, METRICS_FILE, LAYERS_FILE, CHECKPOINT_FILE))
