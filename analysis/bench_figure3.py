"""Benchmark: the full Figure 3 protocol, alignlab's fast path vs the literal recipe.

Both run in the same process, same dtype, same machine state; the script prints both
times and their ratio (best of ``--repeats``). Then the Wishart option (Gaussian ``B``,
``B^T B`` drawn by the Bartlett decomposition) at expansion ratios up to 10,000, with the
direct method beside it where that is affordable.

    .venv/bin/python analysis/bench_figure3.py [--repeats 3] [--device cpu]
    .venv/bin/python analysis/bench_figure3.py --processes 5   # whole commands, interleaved
    .venv/bin/python analysis/bench_figure3.py --processes 1 --samples 4   # smoke size (CI)

``--processes N``: what a user waits for. N interleaved rounds of two whole processes, each
started fresh: ``alignlab figure3`` (the main job: imports, simulation, theory, CSV, PNG,
PDF, JSON) and the literal script (:data:`LITERAL_SCRIPT`: the literal per-sample recipe at
every ratio, then the same two panels with pyplot, PNG + PDF). Prints each process's
median wall time, their ratio, and alignlab's median overhead beyond its simulation (the
sum of the per-ratio times it prints).

Targets (issue 2, 2-core CPU): Figure 3 under 3 s and >= 5x faster than the literal recipe;
Wishart at r = 10,000 in seconds. No assertion here: the numbers are for the reader.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time

import torch

from alignlab.reports.figure3 import Figure3Config
from alignlab.sim import literal_pfa_sample, sample_converged_pfa, sweep_expansion_ratio


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


#: The literal recipe as a user's own script would run it, start to finish.
LITERAL_SCRIPT = """
import sys
import numpy as np
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from alignlab.sim import literal_pfa_sample
out, n_samples = sys.argv[1], int(sys.argv[2])
ratios = np.logspace(0, 2, 11)
eig, ang = [], []
for i, r in enumerate(ratios):
    s = literal_pfa_sample(100, int(100 * r), 256, n_samples=n_samples, rng=i)
    eig.append((s.eigenvalues.mean(), s.eigenvalues.std()))
    ang.append((s.angle_deg.mean(), s.angle_deg.std()))
eig, ang = np.array(eig), np.array(ang)
np.savetxt(out + "/literal.csv", np.column_stack([ratios, eig, ang]), delimiter=",")
fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
a.fill_between(ratios, eig[:, 0] - eig[:, 1], eig[:, 0] + eig[:, 1], alpha=0.3)
a.plot(ratios, eig[:, 0], "o-"); a.plot(ratios, 1 + 1 / np.sqrt(ratios), "k")
a.plot(ratios, 1 - 1 / np.sqrt(ratios), "k"); a.set_xscale("log")
b.fill_between(ratios, ang[:, 0] - ang[:, 1], ang[:, 0] + ang[:, 1], alpha=0.3)
b.plot(ratios, ang[:, 0], "o"); b.plot(ratios, np.degrees(np.arctan(1 / np.sqrt(ratios))), "k")
b.set_xscale("log")
fig.savefig(out + "/literal.png", dpi=150); fig.savefig(out + "/literal.pdf")
"""


def whole_processes(rounds: int, samples: int = 100) -> dict[str, list[float]]:
    """Interleaved rounds of ``alignlab figure3`` and the literal script, fresh processes,
    ``samples`` per ratio (100: the paper's); returns the times of every round."""
    alignlab_s, literal_s, overhead_s, sim_s = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(rounds):
            t0 = time.perf_counter()
            run = subprocess.run([sys.executable, "-m", "alignlab", "figure3", "--samples",
                                  str(samples), "--out", tmp], capture_output=True, text=True)
            alignlab_s.append(time.perf_counter() - t0)
            if run.returncode not in (0, 3):  # 3: a claim check failed (timed all the same)
                raise RuntimeError(f"alignlab figure3 failed: {run.stderr.strip()}")
            sim_s.append(sum(float(m) for m in re.findall(
                r"deg\s+([0-9.]+) s$", run.stdout + run.stderr, re.MULTILINE)))
            overhead_s.append(alignlab_s[-1] - sim_s[-1])
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", LITERAL_SCRIPT, tmp, str(samples)],
                           check=True)
            literal_s.append(time.perf_counter() - t0)
            print(f"round {k + 1}/{rounds}: alignlab figure3 {alignlab_s[-1]:.2f} s (overhead "
                  f"{overhead_s[-1]:.2f} s), literal script {literal_s[-1]:.2f} s", flush=True)
    a, lit = statistics.median(alignlab_s), statistics.median(literal_s)
    print(f"\nmedians over {rounds} interleaved rounds: alignlab figure3 {a:.2f} s, literal "
          f"script {lit:.2f} s, ratio {lit / a:.2f}x; alignlab's overhead beyond its "
          f"simulation {statistics.median(overhead_s):.2f} s")
    return {"alignlab_s": alignlab_s, "literal_s": literal_s, "simulation_s": sim_s,
            "overhead_s": overhead_s}


def main(argv=None) -> dict | None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    ap.add_argument("--processes", type=int, default=0, metavar="N",
                    help="time N interleaved rounds of whole processes instead")
    ap.add_argument("--samples", type=int, default=100,
                    help="samples per ratio of --processes (default 100, the paper's)")
    args = ap.parse_args(argv)
    if args.processes:
        return whole_processes(args.processes, args.samples)
    dtype = getattr(torch, args.dtype)
    cfg = Figure3Config()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, "
          f"{args.dtype}; Figure 3: {len(cfg.ratios)} ratios x {cfg.n_samples} samples, "
          f"n_out {cfg.n_out}, n_in {cfg.n_in}, uniform B and W")

    def fast(coupled: bool = False):
        sweep_expansion_ratio(cfg.n_out, cfg.ratios, n_in=cfg.n_in, n_samples=cfg.n_samples,
                              rng=0, coupled=coupled, device=args.device, dtype=dtype)

    def literal():
        for i, n_mid in enumerate(cfg.n_mids()):
            literal_pfa_sample(cfg.n_out, n_mid, cfg.n_in, n_samples=cfg.n_samples, rng=i,
                               device=args.device, dtype=dtype)

    fast()  # warm-up: thread pool, allocator, BLAS
    t_fast = best_of(fast, args.repeats)
    t_coupled = best_of(lambda: fast(coupled=True), args.repeats)
    t_lit = best_of(literal, max(1, args.repeats - 1))
    print(f"\n{'Figure 3 protocol':<44}{'time (s)':>10}{'vs literal':>12}")
    print(f"{'literal per-sample recipe (R, P formed)':<44}{t_lit:>10.2f}{1.0:>11.1f}x")
    print(f"{'alignlab, independent ratios (default)':<44}{t_fast:>10.2f}{t_lit / t_fast:>11.1f}x")
    print(f"{'alignlab, coupled ratios (common numbers)':<44}{t_coupled:>10.2f}"
          f"{t_lit / t_coupled:>11.1f}x")

    print(f"\n{'Gaussian B, 100 samples, n_out 100':<36}{'n_mid':>10}{'wishart (s)':>13}"
          f"{'direct (s)':>12}")
    for r in (10, 100, 1000, 10000):
        n_mid = cfg.n_out * r
        kw = dict(n_samples=cfg.n_samples, ensemble="gaussian", rng=0, device=args.device,
                  dtype=dtype)
        def run(method, n_mid=n_mid, kw=kw):
            return sample_converged_pfa(cfg.n_out, n_mid, cfg.n_in, method=method, **kw)

        t_w = best_of(lambda: run("wishart"), args.repeats)
        if r <= 1000:
            t_d = best_of(lambda: run("direct"), 1)
            direct = f"{t_d:>12.2f}"
        else:
            direct = f"{'(skipped)':>12}"
        print(f"{'r = ' + str(r):<36}{n_mid:>10}{t_w:>13.3f}{direct}")


if __name__ == "__main__":
    main()
