"""DistributedDataParallel: 2 CPU processes (gloo) give the run of 1 process with the same
global batch, for BP, DFA (output-error hook on the root) and factored PFA (optimiser step
hook); every rank holds the same parameters and fixed feedback; only rank 0 writes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from trainhelpers import write_config

from alignlab.train import World, load_config, train
from alignlab.train.rundir import read_csv, read_summary
from alignlab.train.world import check_shards

TIMING = {"epoch_s", "log_s", "wall_s"}
# float64 runs: 2 epochs of 7 steps (200 examples, global batch 32: the last batch of 8
# is split 4 + 4, so the uneven-batch loss scale is exercised too)
SMALL = {"data": {"n_train": 200, "n_test": 100}, "train": {"dtype": "float64", "epochs": 2}}
METHODS = {"bp": {"name": "bp"}, "dfa": {"name": "dfa"},
           "pfa": {"name": "pfa", "expansion_ratio": 4}}  # factored by default under SGD


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world_size: int, port: int, jobs, out: str) -> None:
    """One rank: join the group, run every job, save the trained model's state."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    world = World(rank=rank, world_size=world_size, local_rank=rank)
    world.init(torch.device("cpu"))  # one group for every job (train() leaves it open)
    try:
        for name, cfg, overrides in jobs:
            overrides = [o.format(rank=rank) for o in overrides]
            # rank 1 is given another folder: it must write nothing (rank 0's is used)
            run_dir = Path(out) / (name if rank == 0 else f"{name}-rank{rank}")
            try:
                result = train(load_config(cfg, overrides), run_dir, quiet=True, world=world)
            except RuntimeError as exc:
                (Path(out) / f"{name}-error{rank}.txt").write_text(str(exc))
                continue
            torch.save(result.model.state_dict(), Path(out) / f"{name}-state{rank}.pt")
    finally:
        world.close()


@pytest.fixture(scope="module")
def ddp_runs(tmp_path_factory):
    """The three methods (and one badly seeded run) on 2 gloo ranks, and on 1 process."""
    tmp = tmp_path_factory.mktemp("ddp")
    jobs = [(m, str(write_config(tmp / f"{m}.toml", method=opts, **SMALL)), [])
            for m, opts in METHODS.items()]
    # each rank seeded differently: the ranks' models must be found to differ at once
    jobs.append(("skewed", str(write_config(tmp / "skewed.toml", method={"name": "fa"},
                                            **SMALL)), ["train.seed={rank}"]))
    mp.spawn(_worker, args=(2, _free_port(), jobs, str(tmp)), nprocs=2, join=True)
    for m, cfg, _ in jobs[:3]:
        train(load_config(cfg), tmp / f"{m}-single", quiet=True)
    return tmp


@pytest.mark.slow
@pytest.mark.parametrize("method", list(METHODS))
def test_two_gloo_ranks_give_the_one_process_run(ddp_runs, method):
    ddp, single = ddp_runs / method, ddp_runs / f"{method}-single"
    assert read_summary(ddp)["world_size"] == 2 and read_summary(single)["world_size"] == 1
    a, b = read_csv(ddp / "metrics.csv"), read_csv(single / "metrics.csv")
    assert len(a) == len(b) == 3
    # Not bit-exact: each rank sums its half of the batch's gradient and the all-reduce adds
    # the halves, a different summation order from one process's (float64 rounding, about
    # B eps = 7e-15 relative per step). Over 14 steps that stays below 1e-12 (measured:
    # ~5e-16); a wrong shard, a wrong loss scale, a missed all-reduce or feedback drawn
    # differently per rank moves these columns by more than 1e-3.
    for col in ("train_loss", "test_loss", "update_angle_deg", "update_norm_ratio"):
        np.testing.assert_allclose([float(r[col]) for r in a], [float(r[col]) for r in b],
                                   rtol=1e-12, err_msg=col)
    for col in ("epoch", "step", "train_acc", "test_acc", "lr", "weight_decay"):
        assert [r[col] for r in a] == [r[col] for r in b], col
    la, lb = read_csv(ddp / "layers.csv"), read_csv(single / "layers.csv")
    for col in ("angle_deg", "w_sq", "w_dot_w0", "decay_c"):
        np.testing.assert_allclose([float(r[col]) for r in la], [float(r[col]) for r in lb],
                                   rtol=1e-12, err_msg=col)
    assert not (ddp_runs / f"{method}-rank1").exists()  # only rank 0 wrote


@pytest.mark.slow
@pytest.mark.parametrize("method", list(METHODS))
def test_ranks_hold_identical_parameters_and_fixed_feedback(ddp_runs, method):
    s0 = torch.load(ddp_runs / f"{method}-state0.pt", weights_only=False)
    s1 = torch.load(ddp_runs / f"{method}-state1.pt", weights_only=False)
    assert s0.keys() == s1.keys()
    tensors = [k for k, v in s0.items() if isinstance(v, torch.Tensor)]
    feedback = {"bp": [], "dfa": ["dfa_B"], "pfa": ["pfa_M", "pfa_Q0"]}[method]
    for name in feedback:  # the method's fixed feedback is there, and the same bits
        assert any(k.endswith(name) for k in tensors), (name, tensors)
    for k in tensors:
        assert torch.equal(s0[k], s1[k]), k
    if method == "pfa":  # factored: (c, u) advanced once per optimiser step on each rank
        extra = [k for k in s0 if k.endswith("_extra_state")]
        assert extra and all(s0[k] == s1[k] for k in extra)
        assert load_config(ddp_runs / "pfa.toml").method.options["state"] == "factored"


@pytest.mark.slow
def test_differently_seeded_ranks_are_refused(ddp_runs):
    for rank in (0, 1):
        msg = (ddp_runs / f"skewed-error{rank}.txt").read_text()
        assert "the models built on each rank differ" in msg
    assert not (ddp_runs / "skewed" / "metrics.csv").exists()


@pytest.mark.slow
def test_torchrun_cli_runs_ddp_and_only_rank_0_writes(tmp_path):
    cfg = write_config(tmp_path / "c.toml", method={"name": "dfa"}, **SMALL)
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2",
         "--master-addr=127.0.0.1", f"--master-port={_free_port()}",
         "-m", "alignlab", "train", str(cfg), "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("completed: epoch 2") == 1  # rank 0 alone prints
    assert {p.name for p in out.iterdir()} == {"config.toml", "metrics.csv", "layers.csv",
                                               "checkpoint.pt", "summary.json"}
    assert read_summary(out)["world_size"] == 2
    train(load_config(cfg), tmp_path / "single", quiet=True)
    a, b = read_csv(out / "metrics.csv"), read_csv(tmp_path / "single" / "metrics.csv")
    np.testing.assert_allclose([float(r["train_loss"]) for r in a],  # as above: rounding
                               [float(r["train_loss"]) for r in b], rtol=1e-12)


def test_world_from_env_and_shards():
    assert World.from_env({}) == World(0, 1, 0)
    w = World.from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    assert (w.rank, w.world_size, w.local_rank, w.is_main, w.distributed) == (3, 4, 1, False,
                                                                              True)
    with pytest.raises(ValueError, match="`WORLD_SIZE`"):
        World.from_env({"WORLD_SIZE": "two"})
    with pytest.raises(ValueError, match="`rank` must be < world_size"):
        World(rank=2, world_size=2)
    for n in (5, 32, 33):  # contiguous shards that tile the batch, sizes within one
        parts = [World(r, 3).shard(n) for r in range(3)]
        assert parts[0].start == 0 and parts[-1].stop == n
        assert all(a.stop == b.start for a, b in zip(parts, parts[1:], strict=False))
        sizes = [p.stop - p.start for p in parts]
        assert max(sizes) - min(sizes) <= 1
    single = World()  # one process: collectives are the identity, agree runs the function
    t = torch.tensor([2.0])
    assert single.all_reduce_sum(t) is t and single.agree(lambda: 7) == 7


def test_batches_that_cannot_be_split_over_the_ranks_are_refused():
    check_shards(200, 32, False, 2)  # last batch of 8: 4 + 4
    check_shards(194, 32, True, 4)  # the last batch (2) is dropped
    with pytest.raises(ValueError, match="`train.batch_size` must split into 4"):
        check_shards(194, 32, False, 4)  # a last batch of 2 leaves 2 ranks nothing
    with pytest.raises(ValueError, match="`train.batch_size` must split into 4"):
        check_shards(200, 2, True, 4)
