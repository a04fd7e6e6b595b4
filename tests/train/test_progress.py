"""Progress: a tqdm bar only on a terminal outside CI (when tqdm is installed); one plain
line per epoch otherwise."""

from __future__ import annotations

import io

import pytest
import torch

from alignlab.train.loop import _Progress

ROW = {"epoch": 1, "train_loss": 0.5, "train_acc": 0.8, "val_acc": None, "test_acc": 0.75,
       "lr": 0.1, "weight_decay": 1e-4, "epoch_s": 1.0, "log_s": 0.5}


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_only_on_a_terminal_outside_ci(monkeypatch, capsys):
    tqdm = pytest.importorskip("tqdm")
    monkeypatch.delenv("CI", raising=False)
    assert _Progress(True, 3, stream=_Tty()).tqdm is tqdm.tqdm
    assert _Progress(True, 3, stream=io.StringIO()).tqdm is None  # not a terminal
    assert _Progress(False, 3, stream=_Tty()).tqdm is None  # quiet / not the main rank
    monkeypatch.setenv("CI", "true")
    assert _Progress(True, 3, stream=_Tty()).tqdm is None
    monkeypatch.delenv("CI")
    p = _Progress(True, 3, stream=_Tty())
    p.start(1, 10)
    for i in range(10):
        p.step(i, torch.tensor(0.5), torch.tensor(3), 4 * (i + 1))
    assert p.bar.n == 10 and "acc" in str(p.bar.postfix)
    p.end(ROW)
    assert p.bar is None
    assert capsys.readouterr().out.startswith("epoch   1/3  loss 0.5000  acc 80.00%")


def test_plain_lines_without_tqdm(monkeypatch, capsys):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setitem(__import__("sys").modules, "tqdm", None)  # as if not installed
    p = _Progress(True, 3, stream=_Tty())
    assert p.tqdm is None
    p.start(1, 10)
    p.step(0, torch.tensor(0.5), torch.tensor(3), 4)
    p.end(ROW)
    out = capsys.readouterr().out.splitlines()
    assert out == ["epoch   1/3  loss 0.5000  acc 80.00%  test 75.00%  lr 0.1  wd 0.0001  "
                   "1.0+0.5 s"]
    _Progress(False, 3).end(ROW)  # quiet: nothing
    assert capsys.readouterr().out == ""


def test_the_bar_reads_a_loss_that_requires_grad_without_a_warning(monkeypatch):
    # the loop hands over the step's loss, still attached to its graph: float() on it
    # warned (UserWarning) in the middle of the bar
    import warnings

    pytest.importorskip("tqdm")
    monkeypatch.delenv("CI", raising=False)
    p = _Progress(True, 3, stream=_Tty())
    p.start(1, 10)
    loss = (torch.ones(3, requires_grad=True) * 0.5).mean()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p.step(0, loss, torch.tensor(3), 4)
    assert "0.5000" in str(p.bar.postfix)
    p.bar.close()
