"""kill -9 at an arbitrary moment, then --resume: exactly the numbers of an uninterrupted run."""

from __future__ import annotations

import shutil
import signal
import time

import pytest
import torch
from trainhelpers import start_training, write_config

from alignlab.train import load_config, train
from alignlab.train.rundir import read_csv, read_summary

TIMING = {"epoch_s", "log_s", "wall_s"}


def _strip(rows):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


@pytest.mark.slow
def test_resume_after_sigkill_is_exact(tmp_path):
    # factored PFA keeps its decay pair (c, u) outside the tensors, and the weight-decay
    # burst and the lr milestone change the optimiser's groups mid-run: all must come back
    # from the checkpoint, with the batch order's generator, not only the weights
    cfg = write_config(tmp_path / "c.toml", method={"name": "pfa", "expansion_ratio": 4},
                       data={"n_train": 1200}, train={"epochs": 6, "batch_size": 16,
                                                      "log_every_steps": 20},
                       optim={"weight_decay_burst": 0.02, "lr_milestones": [3]})
    config = load_config(cfg)
    train(config, tmp_path / "whole", quiet=True)

    run = tmp_path / "killed"
    proc = start_training(cfg, run)  # returns after epoch 1
    metrics = run / "metrics.csv"
    time.sleep(0.05)  # into epoch 2 (or wherever: any moment must do)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
    assert read_summary(run) is None  # killed before the end
    killed_at = len(read_csv(metrics)) - 1
    assert 1 <= killed_at < 6

    result = train(config, run, resume=True, quiet=True)
    assert result.status == "completed"
    for name in ("metrics.csv", "layers.csv"):
        assert _strip(read_csv(run / name)) == _strip(read_csv(tmp_path / "whole" / name)), name
    # resuming a completed run does nothing
    assert train(config, run, resume=True, quiet=True).status == "completed"


def test_extending_a_brsf_run_by_resume_is_exact(tmp_path):
    # brSF draws its feedback at every step from each layer's own stream: its seed and draw
    # count come back from the checkpoint (mid-epoch logging must not move them)
    def config(name, epochs):
        return load_config(write_config(tmp_path / f"{name}.toml", method={"name": "brsf"},
                                        train={"epochs": epochs, "log_every_steps": 7}))

    train(config("whole", 4), tmp_path / "whole", quiet=True)
    train(config("part", 2), tmp_path / "part", quiet=True)
    torch.manual_seed(123)  # what torch's global generator holds does not matter
    result = train(config("whole", 4), tmp_path / "part", resume=True, quiet=True)
    assert result.status == "completed" and result.resumed_from == (2, 38)
    for name in ("metrics.csv", "layers.csv"):
        assert (_strip(read_csv(tmp_path / "part" / name))
                == _strip(read_csv(tmp_path / "whole" / name))), name


def _as_format_1(path) -> None:
    """Rewrite a checkpoint as format 1 wrote it (torch's global generator saved too)."""
    ck = torch.load(path, weights_only=False)
    ck.update(format=1, torch_rng=torch.get_rng_state(), cuda_rng=None)
    torch.save(ck, path)


@pytest.mark.parametrize("method", ["bp", "brsf"])
def test_a_checkpoint_of_the_old_format_resumes_unless_it_needs_the_global_generator(
        tmp_path, method):
    """Format 1 held torch's global generator, from which only brSF drew: another method's
    run continues exactly (the same rows as an uninterrupted run); brSF's is refused in
    one line."""
    def cfg(epochs):
        return load_config(write_config(tmp_path / f"c{epochs}.toml",
                                        method={"name": method}, train={"epochs": epochs}))

    train(cfg(1), tmp_path / "run", quiet=True)
    _as_format_1(tmp_path / "run" / "checkpoint.pt")
    if method == "brsf":
        with pytest.raises(ValueError, match="format 1.*start a new run") as err:
            train(cfg(2), tmp_path / "run", resume=True, quiet=True)
        assert "\n" not in str(err.value)
        return
    train(cfg(2), tmp_path / "run", resume=True, quiet=True)
    train(cfg(2), tmp_path / "whole", quiet=True)
    for name in ("metrics.csv", "layers.csv"):
        assert _strip(read_csv(tmp_path / "run" / name)) == _strip(
            read_csv(tmp_path / "whole" / name))


def _edit_recorded_config(path, edit) -> None:
    """Rewrite the config a checkpoint records (as a run made by another version would)."""
    import json

    ck = torch.load(path, weights_only=False)
    tables = json.loads(ck["config"])
    edit(tables)
    ck["config"] = json.dumps(tables, sort_keys=True)
    torch.save(ck, path)


def test_a_run_made_before_a_key_was_added_resumes_exactly(tmp_path):
    """A checkpoint written before a setting existed (its config lacks the key) resumes when
    the key's default is what that version did, and continues exactly; a checkpoint of
    another value of a setting, or with a key this version does not know, is refused."""
    def cfg(epochs):
        return load_config(write_config(tmp_path / f"c{epochs}.toml", method={"name": "fa"},
                                        train={"epochs": epochs}))

    train(cfg(2), tmp_path / "whole", quiet=True)
    train(cfg(1), tmp_path / "run", quiet=True)
    ckpt = tmp_path / "run" / "checkpoint.pt"
    shutil.copytree(tmp_path / "run", tmp_path / "epoch1")

    def older(tables):  # keys added by later versions, absent from an older checkpoint
        del tables["train"]["loss"], tables["model"]["bias"]
        del tables["optim"]["layer_lr_scales"]

    _edit_recorded_config(ckpt, older)
    train(cfg(2), tmp_path / "run", resume=True, quiet=True)
    for name in ("metrics.csv", "layers.csv"):
        assert _strip(read_csv(tmp_path / "run" / name)) == _strip(
            read_csv(tmp_path / "whole" / name))

    for i, edit in enumerate((lambda t: t["optim"].update(lr=t["optim"]["lr"] * 2),
                              lambda t: t["train"].update(no_such_key=1))):
        run = shutil.copytree(tmp_path / "epoch1", tmp_path / f"refused{i}")
        _edit_recorded_config(run / "checkpoint.pt", edit)
        with pytest.raises(ValueError, match="another config or format"):
            train(cfg(2), run, resume=True, quiet=True)
