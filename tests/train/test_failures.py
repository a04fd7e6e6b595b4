"""How training fails: an unreadable checkpoint, a full disk, SIGTERM, a second Ctrl-C
while summary.json is written, a read-only run folder, and what ``--resume`` says.
(issue 14 items 5, 6, 8, 11, 15)"""

from __future__ import annotations

import errno
import os
import signal

import pytest
import torch
from trainhelpers import start_training, write_config

from alignlab.cli import ExitStatus, main
from alignlab.train import load_config, train
from alignlab.train.rundir import read_csv, read_summary

TIMING = {"epoch_s", "log_s", "wall_s"}


def _rows(run, name):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in read_csv(run / name)]


def _unfinished_run(cfg, run):
    """A 1-epoch run of ``cfg`` in ``run`` without summary.json (as if killed at the end)."""
    assert main(["train", str(cfg), "--set", "train.epochs=1", "--out", str(run),
                 "--quiet"]) == 0
    (run / "summary.json").unlink()
    return run


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A completed 3-epoch run (with mid-epoch layer rows) and its config file (on one
    thread, as every test here: the autouse fixture is not yet active at module scope)."""
    tmp = tmp_path_factory.mktemp("finished")
    cfg = write_config(tmp / "c.toml", train={"log_every_steps": 7})
    run = tmp / "run"
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(load_config(cfg), run, quiet=True)
    finally:
        torch.set_num_threads(before)
    return cfg, run


# ---------------------------------------------------------------- item 5: bad checkpoint
@pytest.mark.parametrize("content", [
    b"",  # empty
    "truncated",
    b"\x00\x01garbage\xff" * 10,  # not a pickle
    "not a dict",  # a valid torch file of something else
])
def test_resume_with_an_unreadable_checkpoint_is_one_line_naming_it(finished, tmp_path,
                                                                      capsys, content):
    run = _unfinished_run(finished[0], tmp_path / "run")
    ck = run / "checkpoint.pt"
    if content == "truncated":
        ck.write_bytes(ck.read_bytes()[: ck.stat().st_size // 2])
    elif content == "not a dict":
        torch.save([1, 2, 3], ck)
    else:
        ck.write_bytes(content)
    before = ck.read_bytes()
    assert main(["train", "--resume", str(run)]) == ExitStatus.BAD_INPUT
    line = _one_line(capsys)
    assert line.startswith(f"alignlab: error: `--resume` {str(run)!r}: its checkpoint "
                           f"{str(ck)!r} "), line
    assert ck.read_bytes() == before  # left as it was


# ---------------------------------------------------------------- item 6: a full disk
@pytest.mark.parametrize("failure", [
    OSError(errno.ENOSPC, "No space left on device"),
    RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598"),
], ids=["ENOSPC", "torch-writer"])
def test_full_disk_stops_in_one_line_keeps_files_consistent_and_resumes(
        finished, tmp_path, monkeypatch, capsys, failure):
    cfg, whole = finished
    run = tmp_path / "run"
    real_save = torch.save
    calls = []

    def full_at_epoch_2(obj, f, *args, **kwargs):  # checkpoints: epochs 0, 1, then 2
        calls.append(1)
        if len(calls) == 3:
            raise failure
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_at_epoch_2)
    assert main(["train", str(cfg), "--out", str(run), "--quiet"]) == ExitStatus.WRITE_FAILED
    line = _one_line(capsys)
    assert line.startswith("alignlab: error: no space left on device: the run folder") or (
        "no space left on device?" in line), line
    assert f"--resume {run}" in line
    # the files hold epoch 1 exactly: no CSV row of the epoch whose checkpoint failed
    ck = torch.load(run / "checkpoint.pt", weights_only=False)
    assert ck["epoch"] == 1
    assert [r["epoch"] for r in read_csv(run / "metrics.csv")] == ["0", "1"]
    assert {r["epoch"] for r in read_csv(run / "layers.csv")} == {"0", "1"}
    assert _rows(run, "layers.csv") == _rows(whole, "layers.csv")[:len(ck["layers"])]
    summary = read_summary(run)
    assert summary["status"] == "interrupted" and summary["epochs_completed"] == 1
    # space freed: resume continues, and ends as the uninterrupted run
    monkeypatch.setattr(torch, "save", real_save)
    assert main(["train", "--resume", str(run)]) == ExitStatus.OK
    out = capsys.readouterr().out
    assert out.startswith(f"resumed from epoch 1 (step {ck['step']})\n"), out
    assert read_summary(run)["status"] == "completed"
    for name in ("metrics.csv", "layers.csv"):
        assert _rows(run, name) == _rows(whole, name), name


# ---------------------------------------------------------------- item 15: what resume says
def test_resume_of_a_completed_run_says_there_is_nothing_to_do(finished, capsys):
    _, run = finished
    before = (run / "metrics.csv").read_text()
    assert main(["train", "--resume", str(run)]) == ExitStatus.OK
    out = capsys.readouterr().out
    assert out.startswith(f"nothing to do: {run} has completed its 3 epochs"), out
    assert "completed: epoch" not in out
    assert (run / "metrics.csv").read_text() == before


# ---------------------------------------------------------------- item 11: read-only folder
def test_resume_into_a_read_only_folder_names_the_run_folder(finished, tmp_path,
                                                             monkeypatch, capsys):
    run = _unfinished_run(finished[0], tmp_path / "run")
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    # a read-only folder, also for root (who ignores permission bits): nothing can be
    # created in it
    import tempfile

    real_mkstemp, real_replace = tempfile.mkstemp, os.replace

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and os.path.abspath(dir) == str(run):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_mkstemp(*args, dir=dir, **kwargs)

    def replace(src, dst, *args, **kwargs):
        if os.path.dirname(os.path.abspath(dst)) == str(run):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(os, "replace", replace)
    assert main(["train", "--resume", str(run), "--set", "train.epochs=2"]) == 2
    line = _one_line(capsys)
    assert line.startswith(f"alignlab: error: `--resume` must be a writable folder, got "
                           f"{str(run)!r} (cannot create a file in "), line
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


# ---------------------------------------------------------------- item 8: SIGTERM, Ctrl-C
def test_sigterm_mid_training_is_an_interrupt_with_summary(tmp_path):
    cfg = write_config(tmp_path / "c.toml", train={"epochs": 500})
    run = tmp_path / "run"
    proc = start_training(cfg, run)  # returns after epoch 1
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == ExitStatus.TERMINATED == 143, err.decode()
    assert err.decode().strip().splitlines() == ["alignlab: interrupted (SIGTERM)"]
    summary = read_summary(run)
    assert summary["status"] == "interrupted"
    assert 1 <= summary["epochs_completed"] < 500
    assert summary["message"].startswith("interrupted; continue with alignlab train --resume")


def test_sigterm_while_the_checkpoint_is_written_is_an_interrupt_not_a_full_disk(
        tmp_path, monkeypatch, capsys):
    """SIGTERM in the middle of a checkpoint write: torch's zip writer, closed after the cut
    write, raises its own RuntimeError ("unexpected pos"); the run still stops as
    interrupted (143), not as a failed write (5, "no space left on device?")."""
    cfg = write_config(tmp_path / "c.toml")
    real_save = torch.save

    class SignalledFile:  # the checkpoint file; SIGTERM arrives during its third write
        def __init__(self, fh):
            self.fh, self.writes = fh, 0

        def write(self, data):
            self.writes += 1
            if self.writes == 3:
                signal.raise_signal(signal.SIGTERM)  # main()'s handler raises here
            return self.fh.write(data)

        def flush(self):
            self.fh.flush()

    monkeypatch.setattr(torch, "save", lambda obj, f, *args, **kwargs: real_save(
        obj, SignalledFile(f), *args, **kwargs))
    run = tmp_path / "run"
    assert main(["train", str(cfg), "--out", str(run), "--quiet"]) == ExitStatus.TERMINATED
    assert _one_line(capsys) == "alignlab: interrupted (SIGTERM)"
    assert read_summary(run)["status"] == "interrupted"
    assert not list(run.glob(".*.tmp"))  # the cut checkpoint file is removed


def test_a_second_interrupt_while_summary_json_is_written_waits_for_it(tmp_path,
                                                                       monkeypatch):
    # Ctrl-C during training, and again while the interrupted run writes summary.json
    import alignlab._output as output

    cfg = load_config(write_config(tmp_path / "c.toml"))
    real_save, real_write = torch.save, output.write_together
    calls = []

    def interrupted_at_epoch_2(obj, f, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_save(obj, f, *args, **kwargs)

    def write_together(folder, writers, **kwargs):
        if "summary.json" in writers:
            os.kill(os.getpid(), signal.SIGINT)  # the second Ctrl-C
        return real_write(folder, writers, **kwargs)

    monkeypatch.setattr(torch, "save", interrupted_at_epoch_2)
    monkeypatch.setattr(output, "write_together", write_together)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "run", quiet=True)
    summary = read_summary(tmp_path / "run")
    assert summary is not None and summary["status"] == "interrupted"
    assert summary["epochs_completed"] == 1


def test_full_disk_while_appending_rows_names_the_checkpointed_epoch(tmp_path, monkeypatch,
                                                                      capsys):
    # the checkpoint of epoch 2 is written, its CSV rows are not: the run holds epoch 2
    from alignlab.train.rundir import CsvLog

    cfg = write_config(tmp_path / "c.toml")
    real_append, calls = CsvLog.append, []

    def append(self, rows):
        calls.append(1)
        if len(calls) == 5:  # layers.csv of epoch 2 (epochs 0, 1: two files each)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_append(self, rows)

    monkeypatch.setattr(CsvLog, "append", append)
    run = tmp_path / "run"
    assert main(["train", str(cfg), "--out", str(run), "--quiet"]) == ExitStatus.WRITE_FAILED
    assert "(the CSV rows of epoch 2); stopped at epoch 2" in _one_line(capsys)
    assert torch.load(run / "checkpoint.pt", weights_only=False)["epoch"] == 2
    assert read_summary(run)["epochs_completed"] == 2
    monkeypatch.setattr(CsvLog, "append", real_append)
    assert main(["train", "--resume", str(run), "--quiet"]) == ExitStatus.OK
    assert [r["epoch"] for r in read_csv(run / "metrics.csv")] == ["0", "1", "2", "3"]
