"""Benchmark: the batched teacher-student simulator against a one-seed-at-a-time loop.

Three ways to run the same online SGD (``alignlab.sim.teacher_student``) for ``S`` seeds
from the same initialisation: the batched simulator (``simulate_teacher_student``, all
seeds in one tensor program, inputs drawn in blocks; 'explicit') once, the literal loop
(``simulate_one_seed_literal``, plain numpy, one step and one input row at a time;
'loop') ``S`` times, from the same random streams, and the batched simulator's method
'gram' (the order parameters' Markov chain, exact in law, cost independent of ``N``;
other numbers, same law) once. Draws included in all. Repeats are interleaved
(explicit, gram, loop, explicit, ...) so machine noise hits all alike; the medians and
their ratios are printed, with the time per step (all seeds) and the largest relative
difference between the explicit and the loop's paths (they compute the same numbers).

``--threads`` sets torch's intra-op threads (default 1: one core for both; with more,
the batched simulator draws the seeds' inputs in threads and the next block while it
steps, the loop stays on one core).

    python analysis/bench_teacher_student_sim.py                   # K=2 M=2 N=500 t=50 S=12
    python analysis/bench_teacher_student_sim.py --smoke           # a few seconds
    python analysis/bench_teacher_student_sim.py --N 2000 --t-max 2 --only explicit gram
        # the time per step at N = 2000, to extrapolate to t_max = 1000
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
import torch

import alignlab
from alignlab.sim import draw_teacher_student, simulate_one_seed_literal, simulate_teacher_student


def _rel_diff(batched, loops) -> float:
    worst = 0.0
    for s, lit in enumerate(loops):
        for name in ("Q", "R", "v"):
            a, b = getattr(batched, name)[s].numpy(), getattr(lit, name)[0].numpy()
            worst = max(worst, float(np.abs(a - b).max() / np.abs(b).max()))
    return worst


def main(argv: list[str] | None = None) -> dict[str, float]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--K", type=int, default=2)
    p.add_argument("--M", type=int, default=2)
    p.add_argument("--N", type=int, default=500)
    p.add_argument("--t-max", type=float, default=50.0)
    p.add_argument("--seeds", type=int, default=12)
    p.add_argument("--lr", type=float, default=0.2)
    p.add_argument("--rule", default="dfa")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    p.add_argument("--only", nargs="+", choices=("explicit", "gram", "loop"),
                   default=("explicit", "gram", "loop"), help="which ways to time")
    p.add_argument("--smoke", action="store_true", help="tiny sizes (N=50, t=2, S=3, 1 repeat)")
    args = p.parse_args(argv)
    if args.smoke:
        args.N, args.t_max, args.seeds, args.repeats = 50, 2.0, 3, 1
    if args.threads:
        torch.set_num_threads(args.threads)
    steps = round(args.t_max * args.N)
    print(f"alignlab {alignlab.__version__}, torch {torch.__version__}, "
          f"{platform.processor() or platform.machine()}, torch threads "
          f"{torch.get_num_threads()}")
    print(f"K={args.K} M={args.M} N={args.N} t_max={args.t_max:g} ({steps} steps) "
          f"S={args.seeds} rule={args.rule} lr={args.lr:g}, {args.repeats} repeats")
    init = draw_teacher_student(args.K, args.M, args.N, n_seeds=args.seeds, rng=0)
    kw = dict(lr=args.lr, rule=args.rule, t_max=args.t_max, t_eval=[0.0, args.t_max], rng=1)
    times: dict[str, list[float]] = {name: [] for name in args.only}
    paths = {}
    runs = {
        "explicit": lambda: simulate_teacher_student(init, **kw),
        "gram": lambda: simulate_teacher_student(init, method="gram", **kw),
        "loop": lambda: [simulate_one_seed_literal(init, seed=s, **kw)
                         for s in range(args.seeds)],
    }
    for _ in range(args.repeats):
        for name in args.only:
            t0 = time.perf_counter()
            paths[name] = runs[name]()
            times[name].append(time.perf_counter() - t0)
    out = {"steps": steps}
    for name, ts in times.items():
        med = statistics.median(ts)
        out[name] = med
        print(f"{name:8s} median {med:9.3f} s  (min {min(ts):.3f} s)  "
              f"{1e6 * med / steps:8.1f} us/step for all {args.seeds} seeds")
    if "loop" in out and "explicit" in out:
        out["ratio"] = out["loop"] / out["explicit"]
        out["max_rel_diff"] = _rel_diff(paths["explicit"], paths["loop"])
        print(f"ratio loop / explicit: {out['ratio']:.2f}x; largest relative difference of "
              f"Q, R, v at t_max: {out['max_rel_diff']:.1e}")
    for slow in ("loop", "explicit"):
        if slow in out and "gram" in out:
            print(f"ratio {slow} / gram: {out[slow] / out['gram']:.2f}x")
    return out


if __name__ == "__main__":
    main()
