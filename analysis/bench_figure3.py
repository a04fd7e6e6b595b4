"""Benchmark: the full Figure 3 protocol, alignlab's fast path vs the literal recipe.

Both run in the same process, same dtype, same machine state; the script prints both
times and their ratio (best of ``--repeats``). Then the Wishart option (Gaussian ``B``,
``B^T B`` drawn by the Bartlett decomposition) at expansion ratios up to 10,000, with the
direct method beside it where that is affordable.

    .venv/bin/python analysis/bench_figure3.py [--repeats 3] [--device cpu]

Targets (issue 2, 2-core CPU): Figure 3 under 3 s and >= 5x faster than the literal recipe;
Wishart at r = 10,000 in seconds. No assertion here: the numbers are for the reader.
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    args = ap.parse_args()
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
