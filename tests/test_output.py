"""Output locations: checked before any work (nothing created), written as one set."""

import os
import signal

import pytest

from alignlab import _output
from alignlab._output import (
    UnusableOutput,
    check_output_dir,
    check_output_file,
    write_atomic,
    write_together,
)


def listing(path):
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*"))


def test_usable_folders_pass_and_nothing_is_created(tmp_path):
    assert check_output_dir(tmp_path) == tmp_path
    assert check_output_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert check_output_file(tmp_path / "c" / "t.csv") == tmp_path / "c" / "t.csv"
    assert listing(tmp_path) == []  # the probes are gone, no folder was made


@pytest.mark.parametrize("where, why", [
    ("file", "an existing file"),
    ("file/sub", "is a file"),
    ("file/sub/deeper", "is a file"),
])
def test_folder_that_is_or_lies_under_a_file(tmp_path, where, why):
    (tmp_path / "file").write_text("keep")
    with pytest.raises(UnusableOutput, match=rf"^`out` must be a writable folder, got .*{why}"):
        check_output_dir(tmp_path / where, name="out")
    assert (tmp_path / "file").read_text() == "keep"
    assert listing(tmp_path) == ["file"]


@pytest.mark.parametrize("where", ["/proc/alignlab-out", "/proc/self/alignlab-out", "/proc"])
def test_pseudo_filesystem_is_refused(where):
    with pytest.raises(UnusableOutput, match="cannot create a (file|folder) in '/proc"):
        check_output_dir(where, name="out")


def test_unwritable_folder_is_refused_even_as_root(tmp_path, monkeypatch):
    # permission bits do not stop root, so the probe itself is made to fail
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(_output.tempfile, "mkstemp", refuse)
    monkeypatch.setattr(_output.tempfile, "mkdtemp", refuse)
    for target in (tmp_path, tmp_path / "new"):
        with pytest.raises(UnusableOutput, match="Permission denied"):
            check_output_dir(target, name="out")
    with pytest.raises(UnusableOutput, match="^`csv` must be a writable file path"):
        check_output_file(tmp_path / "t.csv", name="csv")


def test_file_path_that_is_a_folder(tmp_path):
    with pytest.raises(UnusableOutput, match="`csv` must be a writable file path.*a folder"):
        check_output_file(tmp_path, name="csv")
    (tmp_path / "f").write_text("")
    with pytest.raises(UnusableOutput, match="is a file"):
        check_output_file(tmp_path / "f" / "t.csv", name="csv")


def _old_set(folder):
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("a.csv", "b.png", "c.json"):
        (folder / name).write_text(f"old {name}")


def _writers(fail_on=None, exc=RuntimeError):
    def make(name):
        def write(path):
            if name == fail_on:
                path.write_text("partial")
                raise exc("injected")
            path.write_text(f"new {name}")
        return write
    return {name: make(name) for name in ("a.csv", "b.png", "c.json")}


def test_write_together_replaces_the_set(tmp_path):
    _old_set(tmp_path)
    paths = write_together(tmp_path, _writers())
    assert list(paths) == ["a.csv", "b.png", "c.json"]
    assert [p.read_text() for p in paths.values()] == ["new a.csv", "new b.png", "new c.json"]
    assert listing(tmp_path) == ["a.csv", "b.png", "c.json"]


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt, OSError])
@pytest.mark.parametrize("fail_on", ["b.png", "c.json"])
def test_failure_between_files_keeps_the_old_set(tmp_path, fail_on, exc):
    _old_set(tmp_path)
    expected = UnusableOutput if exc is OSError else exc
    with pytest.raises(expected):
        write_together(tmp_path, _writers(fail_on, exc), name="out")
    # the first file was written (to its temporary name) before the failure: not visible
    assert [(tmp_path / n).read_text() for n in ("a.csv", "b.png", "c.json")] == [
        "old a.csv", "old b.png", "old c.json"]
    assert listing(tmp_path) == ["a.csv", "b.png", "c.json"]  # no temporary file left


def test_failure_removes_the_folders_it_created(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        write_together(tmp_path / "x" / "y", _writers("b.png", KeyboardInterrupt))
    assert listing(tmp_path) == []


def test_disk_errors_are_one_line_bad_output(tmp_path):
    def full(path):
        raise OSError(28, "No space left on device")

    with pytest.raises(UnusableOutput, match=r"^`out` could not be written: .*No space left"):
        write_together(tmp_path, {"a.csv": full}, name="out")
    assert listing(tmp_path) == []


def test_interrupt_during_the_renames_is_held_until_the_set_is_complete(tmp_path, monkeypatch):
    """Ctrl-C arriving between two renames is delivered after the last one (without the
    deferral, the old c.json would sit beside the new a.csv)."""
    _old_set(tmp_path)
    # Python's own Ctrl-C handler, whatever an earlier test in this worker left installed
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    real_replace = os.replace
    calls = []

    def replace_then_interrupt(src, dst):
        calls.append(dst)
        real_replace(src, dst)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(_output.os, "replace", replace_then_interrupt)
    try:
        with pytest.raises(KeyboardInterrupt):
            write_together(tmp_path, _writers(), durable=False)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert len(calls) == 3
    assert [(tmp_path / n).read_text() for n in ("a.csv", "b.png", "c.json")] == [
        "new a.csv", "new b.png", "new c.json"]


def test_write_atomic_one_file(tmp_path):
    target = tmp_path / "ckpt" / "checkpoint.pt"
    assert write_atomic(target, lambda p: p.write_bytes(b"v1")) == target

    def crash_midway(path):
        path.write_bytes(b"v2-partial")
        raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        write_atomic(target, crash_midway)
    assert target.read_bytes() == b"v1"
    assert listing(tmp_path) == ["ckpt", "ckpt/checkpoint.pt"]


def test_writer_names_must_be_plain(tmp_path):
    with pytest.raises(ValueError, match="plain file names"):
        write_together(tmp_path, {"../x.csv": lambda p: None})
