"""Benchmark: the teacher-student ODEs, adaptive integrator against the authors' forward Euler.

One K = 4, M = 2 curve to t = 1000 from the spec's initialisation at N = 500 (``w``, ``B*``,
``A``, ``v``, ``b`` iid N(0, 1); the initial order parameters are those of the drawn
weights), per rule (BP and DFA), integrated two ways by ``alignlab.theory.integrate``:

* the adaptive integrator (``dt=None``: LSODA at the default tolerances), and
* forward Euler at ``dt = 1/N`` (the authors' scheme: N t_max = 500,000 steps), the same
  right-hand side.

Both are compared with the dt -> 0 limit, taken as DOP853 at ``rtol=1e-13, atol=1e-16``
and cross-checked against Radau (an implicit method of another family) at ``rtol=1e-12``;
``--methods`` sweeps the tolerance of LSODA, DOP853 and RK45 (one run each);
``--richardson`` adds a third, independent estimate: Richardson-extrapolated Euler,
``2 E(dt/2) - E(dt)`` from Euler at ``1/N`` and ``1/(2N)`` (second order in dt, so
within O(dt^2) of the limit). The error of a curve is the largest relative deviation of
``eg`` over the log-spaced time grid (0 and 20 points per decade from 0.01 to t_max,
rounded to Euler's step grid).

Timing: one thread, repeats interleaved (adaptive, Euler, adaptive, Euler, ...), the
median and minimum of the wall time and of the process's CPU time of each, and the
ratios of the medians (on a shared machine the CPU time is the steadier measure). Not a test: the
acceptance figures (adaptive within 1e-4 of the limit, under 1 s on one core) are printed
with the measured numbers and recorded in docs/teacher_student.md.

    python analysis/bench_teacher_student.py                   # full run (~3 min)
    python analysis/bench_teacher_student.py --richardson      # + the Euler extrapolation
    python analysis/bench_teacher_student.py --methods         # + LSODA/DOP853/RK45 sweep
    python analysis/bench_teacher_student.py --smoke           # tiny sizes, seconds
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core (before numpy loads its BLAS)

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from alignlab.theory import integrate  # noqa: E402
from alignlab.theory import teacher_student as ts  # noqa: E402


def initial_state(K: int, M: int, N: int, seed: int):
    """The spec's initialisation: all of w, B*, A, v, b iid N(0, 1); order parameters of
    the drawn weights."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((K, N))
    B = rng.standard_normal((M, N))
    A = rng.standard_normal(M)
    v = rng.standard_normal(K)
    b = rng.standard_normal(K)
    return {"Q": w @ w.T / N, "R": w @ B.T / N, "T": B @ B.T / N, "A": A, "v": v,
            "feedback": b}


def rel_error(eg, ref):
    return float(np.max(np.abs(eg / ref - 1.0)))


def timed(fn):
    """(wall seconds, this process's CPU seconds, result): on a shared machine the CPU
    time is the steadier measure of the work (the wall time includes waiting for a core)."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--K", type=int, default=4)
    parser.add_argument("--M", type=int, default=2)
    parser.add_argument("--N", type=int, default=500, help="Euler's dt = 1/N")
    parser.add_argument("--t-max", type=float, default=1000.0)
    parser.add_argument("--lr", type=float, default=0.2)
    parser.add_argument("--rules", nargs="+", default=["bp", "dfa"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=12,
                        help="draws integrated at once against one at a time (0: skip)")
    parser.add_argument("--richardson", action="store_true",
                        help="also Euler at dt = 1/(2N) and the extrapolation (slow)")
    parser.add_argument("--methods", action="store_true",
                        help="also a tolerance sweep of LSODA, DOP853 and RK45 (one run each)")
    parser.add_argument("--smoke", action="store_true", help="t_max 10, N 50, 1 repeat")
    args = parser.parse_args(argv)
    if args.smoke:
        args.t_max, args.N, args.repeats, args.batch = 10.0, 50, 1, 3

    state = initial_state(args.K, args.M, args.N, args.seed)
    dt = 1.0 / args.N
    # the default grid, on Euler's step grid so that every curve has the same times
    t_eval = np.unique(np.rint(ts._default_t_eval(args.t_max) / dt)) * dt
    print(f"K={args.K} M={args.M} lr={args.lr} t_max={args.t_max:g} seed={args.seed}; "
          f"Euler dt=1/N=1/{args.N} ({round(args.t_max * args.N):,} steps); "
          f"{t_eval.size} time points; python {platform.python_version()}, numpy "
          f"{np.__version__}, {platform.processor() or platform.machine()}")
    integrate(**state, lr=args.lr, t_max=1.0)  # warm-up: imports, caches

    for rule in args.rules:
        kw = {**state, "lr": args.lr, "rule": rule, "t_max": args.t_max, "t_eval": t_eval}
        limit = integrate(**kw, method="DOP853", rtol=1e-13, atol=1e-16)
        radau = integrate(**kw, method="Radau", rtol=1e-12, atol=1e-15)
        wall = {"adaptive": [], "euler": []}
        cpu = {"adaptive": [], "euler": []}
        for _ in range(args.repeats):  # interleaved
            for key, extra in (("adaptive", {}), ("euler", {"dt": dt})):
                sec, cpu_sec, curve = timed(lambda kw=kw, extra=extra: integrate(**kw, **extra))
                wall[key].append(sec)
                cpu[key].append(cpu_sec)
                if key == "adaptive":
                    adaptive = curve
                else:
                    euler = curve
        med = {k: statistics.median(v) for k, v in wall.items()}
        med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
        print(f"\n[{rule}] eg: {limit.eg[0, 0]:.4g} at t=0 -> {limit.eg[0, -1]:.4g} at "
              f"t={args.t_max:g}; alignment cos(v, b): {limit.alignment[0, 0]:+.3f} -> "
              f"{limit.alignment[0, -1]:+.3f}")
        print(f"  limit: DOP853 rtol 1e-13 ({limit.n_evaluations} evaluations); Radau "
              f"rtol 1e-12 differs by {rel_error(radau.eg[0], limit.eg[0]):.1e} (relative eg)")
        if args.richardson:
            half = integrate(**kw, dt=dt / 2)
            extrapolated = 2.0 * half.eg[0] - euler.eg[0]
            print(f"  Richardson Euler 2E(dt/2) - E(dt) differs from the limit by "
                  f"{rel_error(extrapolated, limit.eg[0]):.1e}; Euler at dt/2 by "
                  f"{rel_error(half.eg[0], limit.eg[0]):.1e}")
        for key, curve, name in (("adaptive", adaptive, "adaptive (LSODA, defaults)"),
                                 ("euler", euler, f"Euler dt=1/{args.N}")):
            print(f"  {name}: wall {med[key]:.3f} s median (min {min(wall[key]):.3f}), CPU "
                  f"{med_cpu[key]:.3f} s median (min {min(cpu[key]):.3f}); "
                  f"{curve.n_evaluations} evaluations, "
                  f"error {rel_error(curve.eg[0], limit.eg[0]):.1e}")
        print(f"  Euler / adaptive (medians): wall {med['euler'] / med['adaptive']:.0f}x, "
              f"CPU {med_cpu['euler'] / med_cpu['adaptive']:.0f}x")
        if args.methods:
            for method in ("LSODA", "DOP853", "RK45"):
                for rtol in (1e-8, 1e-9, 1e-10, 1e-11):
                    sec, cpu_sec, curve = timed(lambda kw=kw, m=method, r=rtol: integrate(
                        **kw, method=m, rtol=r, atol=r / 100))
                    print(f"  {method:6s} rtol {rtol:.0e} atol {rtol / 100:.0e}: wall {sec:.3f} "
                          f"s, CPU {cpu_sec:.3f} s, {curve.n_evaluations} evaluations, "
                          f"error {rel_error(curve.eg[0], limit.eg[0]):.1e}")

    if args.batch:
        bench_batch(args)


def bench_batch(args) -> None:
    """Draws (seeds seed..seed+S-1) integrated as one batch against one at a time, with
    the default integrator; the largest relative deviation of the batch's eg from each
    draw's limit."""
    states = [initial_state(args.K, args.M, args.N, args.seed + s) for s in range(args.batch)]
    stacked = {k: np.stack([st[k] for st in states]) for k in states[0]}
    print(f"\nbatch of {args.batch} draws (seeds {args.seed}..{args.seed + args.batch - 1}), "
          f"adaptive, to t={args.t_max:g}:")
    for rule in args.rules:
        kw = {"lr": args.lr, "rule": rule, "t_max": args.t_max}
        cpu = {"batch": [], "loop": []}
        for _ in range(args.repeats):  # interleaved
            _, sec, batch = timed(lambda kw=kw: integrate(**stacked, **kw))
            cpu["batch"].append(sec)
            _, sec, _ = timed(lambda kw=kw: [integrate(**st, **kw) for st in states])
            cpu["loop"].append(sec)
        limits = [integrate(**st, **kw, method="DOP853", rtol=1e-13, atol=1e-16)
                  for st in states]
        error = max(rel_error(batch.eg[s], lim.eg[0]) for s, lim in enumerate(limits))
        med = {k: statistics.median(v) for k, v in cpu.items()}
        print(f"  [{rule}] batch: CPU {med['batch']:.3f} s median ({batch.n_evaluations} "
              f"evaluations of the batch), error {error:.1e}; one at a time: CPU "
              f"{med['loop']:.3f} s; loop / batch {med['loop'] / med['batch']:.1f}x")


if __name__ == "__main__":
    main()
