"""The data room's messages as ``alignlab train`` shows them: one line naming the config
key the user wrote (``data.limit``, ``--set data.root=DIR``), exit 2, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from trainhelpers import tables, write_config

from alignlab._toml import dumps_toml
from alignlab.cli import main

# A tiny synthetic problem: 50 training examples of 20 inputs, 4 classes.
TINY = {"data": {"n_train": 50, "n_test": 20}, "model": {"sizes": [20, 8, 4]},
        "train": {"epochs": 1, "batch_size": 10}}


@pytest.fixture
def config(tmp_path) -> Path:
    return write_config(tmp_path / "tiny.toml", **TINY)


def _fails_in_one_line(argv: list[str], capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("alignlab: error: "), err
    return err[0].removeprefix("alignlab: error: ")


@pytest.mark.parametrize("setting, message", [
    ("data.limit=1000000", "`data.limit` must be <= 50 (the training examples of 'synthetic' "
                           "after the validation split), got 1000000."),
    ("data.val_size=50", "`data.val_size` must be < 50 (the training examples of "
                         "'synthetic'), got 50."),
    ("data.pad_to=32", "`data.pad_to` must be unset for 'synthetic' (its inputs have shape "
                       "(20,), not (C, H, W)), got 32."),
])
def test_train_names_the_data_key(tmp_path, config, capsys, setting, message):
    out = tmp_path / "run"
    assert _fails_in_one_line(["train", str(config), "--set", setting, "--out", str(out)],
                              capsys) == message
    assert not out.exists()


@pytest.fixture
def no_fashion_mnist(tmp_path, monkeypatch) -> Path:
    """A CONFIG on Fashion-MNIST, on a machine without it: no Debian package (its folder
    points nowhere), $ALIGNLAB_DATA unset (so ~/.cache/alignlab/data, under an empty
    $HOME), no network (tests/data/conftest.py)."""
    from alignlab.data import DATASETS

    monkeypatch.delenv("ALIGNLAB_DATA")
    monkeypatch.setattr(DATASETS["fashion-mnist"], "system_folders",
                        (str(tmp_path / "usr-share" / "fashion-mnist"),))
    (tmp_path / "home").mkdir()
    t = tables(**{**TINY, "model": {"sizes": [784, 8, 10]}})
    t["data"] = {"name": "fashion-mnist"}
    path = tmp_path / "fmnist.toml"
    path.write_text(dumps_toml(t))
    return path


def test_train_without_the_data_writes_nothing(tmp_path, no_fashion_mnist, capsys):
    """Issue 14 item 12: exit 2 writes nothing, not even ~/.cache/alignlab/data/..., and
    the line names the Debian package the README names."""
    out = tmp_path / "run"
    for extra in ([], ["--set", "data.download=false"]):
        message = _fails_in_one_line(["train", str(no_fashion_mnist), *extra, "--out",
                                      str(out)], capsys)
        assert message.startswith("Fashion-MNIST not found: put train-images-idx3-ubyte.gz")
        assert "apt-get install dataset-fashion-mnist" in message
        assert list((tmp_path / "home").iterdir()) == [] and not out.exists()


def test_train_without_the_data_says_what_to_set(tmp_path, no_fashion_mnist, capsys):
    """Issue 14 item 12: the command line's words (`--set data.root=DIR`,
    `--set data.download=true`), not Python's (`root=DIR`, `download=False`)."""
    out = tmp_path / "run"
    message = _fails_in_one_line(["train", str(no_fashion_mnist), "--set",
                                  "data.download=false", "--out", str(out)], capsys)
    assert "(or use --set data.root=DIR, or set $ALIGNLAB_DATA=DIR, to use " \
           "DIR/fashion-mnist)" in message
    assert message.endswith("; downloading is off (use --set data.download=true to fetch "
                            "them).")
