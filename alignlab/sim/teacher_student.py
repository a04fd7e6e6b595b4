"""Online SGD of a two-layer teacher-student network, many seeds at once (BP, FA, DFA).

The finite-``N`` simulation that the teacher-student ODEs (``alignlab.theory``) describe in
the limit ``N -> infinity``; the model, conventions and SGD step are those of
``shared/spec/teacher_student.md`` (Saad & Solla 1995; Goldt et al. 2019; Refinetti et al.
2021, whose public code uses the same conventions):

* inputs ``x ~ N(0, I_N)``, a fresh one per step (batch size 1);
* teacher ``y = sum_m A_m g(nu_m) + sigma xi``, ``nu = B x / sqrt(N)`` (``B`` is the
  spec's ``B*``); student ``phi = sum_k v_k g(lambda_k)``, ``lambda = w x / sqrt(N)``;
  ``g(z) = erf(z / sqrt(2))``, ``g'(z) = sqrt(2/pi) exp(-z^2 / 2)``; ``e = y - phi``;
* one step, simultaneous from the pre-step state, with ``a = 1 - weight_decay / N``::

      w_k <- a w_k + (lr / sqrt(N)) b_k g'(lambda_k) e x
      v_k <- a v_k + (lr2 / N) g(lambda_k) e

  ``b = v`` (pre-step) for BP; ``b = feedback`` (fixed) for DFA, and for FA, which is the
  same rule in a two-layer network. Per unit time ``t = steps / N`` the decay factor
  ``a^N -> exp(-weight_decay)`` gives the ODE's ``dR -= wd R``, ``dQ -= 2 wd Q``,
  ``dv -= wd v``.

Order parameters: ``Q = w w^T / N`` (K, K), ``R = w B^T / N`` (K, M; the student-teacher
overlap of the literature, not PFA's feedback matrix), ``T = B B^T / N`` (M, M).

:func:`simulate_teacher_student` runs all seeds in one batched tensor program (the per-step
update is sequential; the seeds are a batch dimension), by one of two methods:

* 'explicit' (default): the weights themselves, ``(S, K, N)``; takes given inputs, so a
  network trained on the same draws can be compared number for number. Its cost per step
  is ``O(S K N)``, and drawing the ``S N`` input numbers dominates it;
* 'gram': the order parameters' own Markov chain (the step needs ``x`` only through the
  local fields and ``|x|^2``, whose joint law given ``Q, R, T`` is known by the rotation
  invariance of ``N(0, I_N)``): the same process in law, exactly, at ``O(S (K+M)^3)`` per
  step whatever ``N``; draws its own fields (no given inputs).

:func:`simulate_one_seed_literal` is the explicit step written plainly for one seed in
numpy: the test oracle and the benchmark's baseline (``analysis/bench_teacher_student_sim.py``,
which also times 'gram').

Random streams (:mod:`alignlab._rng`; seed ``s`` never depends on ``n_seeds`` or on the
block size): :func:`draw_teacher_student` draws seed ``s``'s student from stream
``(s, TAG_W)`` in the order ``w`` (row by row), ``v``, ``feedback``, and its teacher from
``(s, TAG_B)`` in the order ``B``, ``A``. The simulators draw seed ``s``'s inputs from
``child(0)``'s stream ``(s, TAG_AUX)``, one row of ``N`` per step in step order, and, when
``sigma > 0``, its output noise from ``child(1)``'s stream ``(s, TAG_AUX)``, one number per
step. On the CPU these are numpy ``PCG64DXSM`` streams (so the literal loop, drawing row by
row, gets the very numbers the batched simulator draws in blocks); on other devices
``torch.Generator`` s seeded from the same streams. The draws are made in the
simulation's dtype, so float32 and float64 runs of one seed draw different numbers.
Method 'gram' draws seed ``s``'s fields from ``child(2)``'s stream ``(s, TAG_AUX)`` and
its chi-squares from ``child(3)``'s (numpy, float64, on every device), its noise as above.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from alignlab._rng import TAG_AUX, TAG_B, TAG_W, RngLike, Streams, make_streams
from alignlab._validate import check_choice, check_finite, check_int, check_positive, invalid
from alignlab.sim.engine import check_device, check_dtype, draw_for, run_parallel
from alignlab.sim.memory import check_memory

__all__ = [
    "METHODS",
    "RULES",
    "TeacherStudentInit",
    "TeacherStudentPath",
    "default_t_eval",
    "draw_teacher_student",
    "simulate_one_seed_literal",
    "simulate_teacher_student",
]

RULES = ("bp", "dfa", "fa")  # fa == dfa in a two-layer network (one feedback vector)
BLOCK_BYTES = 16 * 2**20  # inputs drawn per block (x2 while the next block is drawn)
MAX_BLOCK_STEPS = 1024
METHODS = ("explicit", "gram")
# Streams.child keys: inputs and output noise; method 'gram''s fields and chi-squares
INPUTS_KEY, NOISE_KEY, GRAM_Z_KEY, GRAM_CHI_KEY = 0, 1, 2, 3
_SQRT2 = math.sqrt(2.0)
_GPRIME0 = math.sqrt(2.0 / math.pi)  # g'(0)


@dataclass(frozen=True, eq=False)
class TeacherStudentInit:
    """Initial student and teacher of ``S`` independent seeds (tensors, one dtype/device).

    w : (S, K, N) student first layer.   v : (S, K) student second layer.
    B : (S, M, N) teacher first layer (the spec's ``B*``).   A : (S, M) teacher second layer.
    feedback : (S, K) the fixed feedback vector of DFA/FA (BP reports ``cos(v, feedback)``
    as the contrast).

    Built by :func:`draw_teacher_student`, or directly from given weights (numpy arrays are
    converted to ``w``'s dtype; e.g. a network's own initial weights).
    """

    w: torch.Tensor
    v: torch.Tensor
    B: torch.Tensor
    A: torch.Tensor
    feedback: torch.Tensor

    def __post_init__(self) -> None:
        w = torch.as_tensor(self.w)
        if w.ndim != 3 or not w.is_floating_point() or 0 in w.shape:
            raise invalid("w", "a non-empty floating (S, K, N) tensor", tuple(w.shape))
        S, K, N = w.shape
        shapes = {"v": (S, K), "B": (S, None, N), "A": (S, None), "feedback": (S, K)}
        for name, want in shapes.items():
            t = torch.as_tensor(getattr(self, name), dtype=w.dtype, device=w.device)
            if t.ndim != len(want) or any(d not in (None, n) for d, n in
                                          zip(want, t.shape, strict=True)):
                shown = tuple("M" if d is None else d for d in want)
                raise invalid(name, f"of shape {shown} (from w's (S, K, N) = {(S, K, N)})",
                              tuple(t.shape))
            object.__setattr__(self, name, t)
        object.__setattr__(self, "w", w)
        if self.A.shape[1] != self.B.shape[1] or self.B.shape[1] == 0:
            raise invalid("A", f"of shape (S, M) with B's M = {self.B.shape[1]} >= 1",
                          tuple(self.A.shape))

    def __repr__(self) -> str:
        return (f"TeacherStudentInit(n_seeds={self.n_seeds}, K={self.K}, M={self.M}, "
                f"N={self.N}, dtype={self.w.dtype}, device={self.w.device})")

    @property
    def n_seeds(self) -> int:
        return self.w.shape[0]

    @property
    def K(self) -> int:
        return self.w.shape[1]

    @property
    def M(self) -> int:
        return self.B.shape[1]

    @property
    def N(self) -> int:
        return self.w.shape[2]

    def order_parameters(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(Q (S, K, K), R (S, K, M), T (S, M, M))``: ``w w^T / N``, ``w B^T / N``,
        ``B B^T / N``."""
        return _order_parameters(self.w, self.B)


@dataclass(frozen=True, eq=False)
class TeacherStudentPath:
    """Order parameters of ``S`` seeds at the recorded times (tensors, the init's dtype,
    on the CPU).

    t : (n_t,) times ``steps / N``.   Q : (S, n_t, K, K).   R : (S, n_t, K, M).
    v : (S, n_t, K).   T : (S, M, M) and A : (S, M), the (fixed) teacher.
    feedback : (S, K).   alignment : (S, n_t), ``cos(v, feedback)`` (NaN where ``v = 0``).
    """

    t: np.ndarray
    Q: torch.Tensor
    R: torch.Tensor
    v: torch.Tensor
    T: torch.Tensor
    A: torch.Tensor
    feedback: torch.Tensor
    alignment: torch.Tensor

    def __repr__(self) -> str:
        S, n_t, K, M = self.R.shape
        return (f"TeacherStudentPath(n_seeds={S}, K={K}, M={M}, n_t={n_t}, "
                f"t=[{self.t[0]:g} .. {self.t[-1]:g}])")


def _order_parameters(w: torch.Tensor, B: torch.Tensor):
    N = w.shape[-1]
    return w @ w.mT / N, w @ B.mT / N, B @ B.mT / N


def _cos(v: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """cos of the angle between the last axes of ``v`` (..., K) and ``b`` (..., K)."""
    return (v * b).sum(-1) / (torch.linalg.vector_norm(v, dim=-1)
                              * torch.linalg.vector_norm(b, dim=-1))


# ------------------------------------------------------------------------ the draws
def draw_teacher_student(
    K: int,
    M: int,
    N: int,
    *,
    n_seeds: int,
    rng: RngLike = None,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "cpu",
) -> TeacherStudentInit:
    """The spec's initialisation for ``n_seeds`` seeds: ``w``, ``v``, ``B``, ``A`` and the
    feedback vector all iid ``N(0, 1)`` (so ``Q(0) ~ I``, ``T ~ I``, ``R(0) = O(N^-1/2)``).
    Streams as in the module docstring: seed ``s`` is the same whatever ``n_seeds``."""
    K, M, N = check_int("K", K), check_int("M", M), check_int("N", N)
    S = check_int("n_seeds", n_seeds)
    dev, dt = check_device(device), check_dtype(dtype)
    itemsize = torch.empty((), dtype=dt).element_size()  # w, B, and the run's copy of w:
    check_memory("N", S * (2 * K + M) * N * itemsize, value=N, device=dev,
                 what=f"the weights of {S} seeds (n_seeds)")
    streams = make_streams(rng)
    w = torch.empty((S, K, N), dtype=dt, device=dev)
    v, feedback = (torch.empty((S, K), dtype=dt, device=dev) for _ in range(2))
    B, A = torch.empty((S, M, N), dtype=dt, device=dev), torch.empty((S, M), dtype=dt, device=dev)
    cpu = dev.type == "cpu"
    for s in range(S):
        for tag, arrays in ((TAG_W, (w, v, feedback)), (TAG_B, (B, A))):
            draw = draw_for(streams, s, tag, dev)
            for t in arrays:  # in this order, from this seed's stream
                draw.normal_(t[s].numpy() if cpu else t[s], 1.0)
    return TeacherStudentInit(w=w, v=v, B=B, A=A, feedback=feedback)


def default_t_eval(t_max: float, N: int) -> np.ndarray:
    """The default recording times: :func:`alignlab.theory.log_time_grid` from the first
    step, 20 per decade, rounded to whole steps (``dt = 1/N``), so the ODE
    (:func:`alignlab.theory.integrate`) can be evaluated at exactly these times."""
    from alignlab.theory import log_time_grid

    return log_time_grid(t_max, start=1.0 / N, dt=1.0 / N)


def _record_steps(t_eval: Any, t_max: Any, N: int) -> tuple[np.ndarray, int]:
    """``(steps at which to record, non-decreasing; the last step to simulate)``."""
    t_max = float(check_positive("t_max", t_max, scalar=True))
    total = round(t_max * N)
    if total < 1:
        raise invalid("t_max", f">= 1/N (one step; N = {N})", t_max)
    if t_eval is None:
        t_eval = default_t_eval(t_max, N)
    t = np.asarray(check_finite("t_eval", t_eval), dtype=float)
    if t.ndim != 1 or t.size == 0:
        raise invalid("t_eval", "a non-empty 1-D array of times", t_eval)
    if np.any(t < 0) or np.any(t > t_max) or np.any(np.diff(t) < 0):
        raise invalid("t_eval", f"non-decreasing times in [0, t_max = {t_max:g}]", t_eval)
    steps = np.round(t * N).astype(np.int64)
    return steps, int(steps[-1])


def _check_run(init: Any, lr: Any, rule: Any, sigma: Any, weight_decay: Any, lr2: Any):
    if not isinstance(init, TeacherStudentInit):
        raise invalid("init", "a TeacherStudentInit (see draw_teacher_student)", type(init))
    lr = float(check_positive("lr", lr, scalar=True))
    rule = check_choice("rule", rule, RULES)
    sigma = float(check_positive("sigma", sigma, allow_zero=True, scalar=True))
    wd = float(check_positive("weight_decay", weight_decay, allow_zero=True, scalar=True))
    if wd >= init.N:
        raise invalid("weight_decay", f"< N = {init.N} (the step's factor 1 - weight_decay/N "
                      "must stay > 0)", weight_decay)
    lr2 = lr if lr2 is None else float(check_positive("lr2", lr2, allow_zero=True, scalar=True))
    return lr, rule, sigma, wd, lr2


# ---------------------------------------------------------------- inputs, in blocks
def _drawn_blocks(streams: Streams, S: int, N: int, n_steps: int, sigma: float,
                  dev: torch.device, dt: torch.dtype, threads: int) -> Iterator[tuple[Any, Any]]:
    """Blocks ``(x (S, n, N), xi (S, n) or None)`` covering ``n_steps`` steps, from the
    per-seed streams of the module docstring. On the CPU with ``threads > 1``, the seeds'
    blocks are filled in threads (numpy releases the GIL) and the next block is drawn
    while the caller steps through this one."""
    itemsize = torch.empty((), dtype=dt).element_size()
    n_block = max(1, min(MAX_BLOCK_STEPS, BLOCK_BYTES // (S * N * itemsize)))
    x_draws = [draw_for(streams.child(INPUTS_KEY), s, TAG_AUX, dev) for s in range(S)]
    xi_draws = [draw_for(streams.child(NOISE_KEY), s, TAG_AUX, dev) for s in range(S)] \
        if sigma > 0 else None
    starts = list(range(0, n_steps, n_block))
    cpu = dev.type == "cpu"

    def fill(n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = torch.empty((S, n, N), dtype=dt, device=dev)
        xi = torch.empty((S, n), dtype=dt, device=dev) if sigma > 0 else None

        def one(s: int) -> None:  # seed s's rows, then its noises: separate streams
            x_draws[s].normal_(x[s].numpy() if cpu else x[s], 1.0)
            if xi_draws is not None:
                xi_draws[s].normal_(xi[s].numpy() if cpu else xi[s], 1.0)

        run_parallel(one, range(S), workers if cpu else 1, pool)
        return x, xi

    workers = max(1, min(threads, S))
    ahead = cpu and threads > 1  # a core to spare for the next block
    with ThreadPoolExecutor(max_workers=workers) as pool, \
            ThreadPoolExecutor(max_workers=1) as drawer:
        pending = drawer.submit(fill, min(n_block, n_steps)) if ahead and starts else None
        for i, start in enumerate(starts):
            block = pending.result() if ahead else fill(min(n_block, n_steps - start))
            if ahead and i + 1 < len(starts):  # draw the next block meanwhile
                pending = drawer.submit(fill, min(n_block, n_steps - starts[i + 1]))
            yield block


def _given_blocks(inputs: Iterable[Any], noise: Iterable[Any] | None, S: int, N: int,
                  sigma: float, n_steps: int, dev: torch.device,
                  dt: torch.dtype) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """The caller's input blocks (S, n, N) (and noise blocks (S, n')), converted and
    re-cut so each yielded noise block matches its input block."""
    if n_steps == 0:
        return
    noise_it = None if noise is None else iter(noise)
    xi_buf = torch.empty((S, 0), dtype=dt, device=dev)
    done = 0
    for block in inputs:
        x = torch.as_tensor(block, dtype=dt, device=dev)
        if x.ndim != 3 or x.shape[0] != S or x.shape[2] != N:
            raise invalid("inputs", f"blocks of shape (S, n, N) = ({S}, n, {N})", tuple(x.shape))
        x = x[:, :n_steps - done]
        xi = None
        if sigma > 0 and noise_it is not None:
            while xi_buf.shape[1] < x.shape[1]:
                nb = next(noise_it, None)
                if nb is None:
                    raise invalid("noise", f"blocks covering the {n_steps} steps",
                                  f"only {done + xi_buf.shape[1]}")
                nb = torch.as_tensor(nb, dtype=dt, device=dev)
                if nb.ndim != 2 or nb.shape[0] != S:
                    raise invalid("noise", f"blocks of shape (S, n) = ({S}, n)", tuple(nb.shape))
                xi_buf = torch.cat([xi_buf, nb], dim=1)
            xi, xi_buf = xi_buf[:, :x.shape[1]], xi_buf[:, x.shape[1]:]
        yield x, xi
        done += x.shape[1]
        if done >= n_steps:
            return
    raise invalid("inputs", f"blocks covering the {n_steps} steps (rows per seed)",
                  f"only {done}")


def _with_rng_noise(blocks: Iterator[tuple[torch.Tensor, Any]], streams: Streams, S: int,
                    dev: torch.device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Given inputs without given noise: the noise from ``rng``'s noise streams."""
    draws = [draw_for(streams.child(NOISE_KEY), s, TAG_AUX, dev) for s in range(S)]
    for x, _ in blocks:
        xi = torch.empty(x.shape[:2], dtype=x.dtype, device=dev)
        for s in range(S):
            draws[s].normal_(xi[s].numpy() if dev.type == "cpu" else xi[s], 1.0)
        yield x, xi


class _Bar:
    """Progress over the steps on stderr, as ``alignlab train`` shows it: a tqdm bar on a
    terminal (if tqdm is installed, the 'progress' extra, and ``CI`` is unset), else a
    line per tenth of the run; nothing when disabled."""

    def __init__(self, enabled: bool, total: int):
        self.bar, self.total, self.done, self.shown = None, total, 0, 0
        self.enabled = enabled
        if enabled and sys.stderr.isatty() and not os.environ.get("CI"):
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, desc="teacher-student", unit="step",
                                unit_scale=True, leave=False, dynamic_ncols=True)
            except ImportError:
                pass

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.enabled and self.done * 10 >= (self.shown + 1) * self.total:
            self.shown = self.done * 10 // self.total
            print(f"teacher-student: {self.done}/{self.total} steps", file=sys.stderr,
                  flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ------------------------------------------------------------------ the simulators
class _Recorder:
    """The order parameters at the recording steps (on the CPU)."""

    def __init__(self, steps: np.ndarray, S: int, K: int, M: int, dt: torch.dtype):
        self.steps, self.i = steps, 0
        self.Q = torch.empty((S, len(steps), K, K), dtype=dt)
        self.R = torch.empty((S, len(steps), K, M), dtype=dt)
        self.v = torch.empty((S, len(steps), K), dtype=dt)

    def due(self, step: int) -> bool:
        return self.i < len(self.steps) and self.steps[self.i] == step

    def take(self, step: int, Q: torch.Tensor, R: torch.Tensor, v: torch.Tensor) -> None:
        """Record ``(Q, R, v)`` at every recording step equal to ``step``."""
        while self.due(step):
            self.Q[:, self.i], self.R[:, self.i], self.v[:, self.i] = Q.cpu(), R.cpu(), v.cpu()
            self.i += 1

    def path(self, init: TeacherStudentInit, N: int) -> TeacherStudentPath:
        _, _, T = init.order_parameters()
        fb = init.feedback.cpu()
        return TeacherStudentPath(
            t=self.steps / N, Q=self.Q, R=self.R, v=self.v, T=T.cpu(), A=init.A.cpu(),
            feedback=fb, alignment=_cos(self.v, fb[:, None, :]))


@contextmanager
def _small_ops(dev: torch.device) -> Iterator[None]:
    """One torch thread on the CPU for the duration (then restored): the step loop's
    tensors are small, and torch's intra-op threads cost more than they save on them
    (25x slower per step with 2 threads on a busy 2-core machine, S = 12, N = 2000); the
    other cores draw the next inputs (:func:`_drawn_blocks`)."""
    threads = torch.get_num_threads()
    if dev.type != "cpu" or threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def simulate_teacher_student(
    init: TeacherStudentInit,
    *,
    lr: float,
    rule: str = "bp",
    t_max: float,
    sigma: float = 0.0,
    weight_decay: float = 0.0,
    lr2: float | None = None,
    t_eval: Any = None,
    inputs: Iterable[Any] | None = None,
    noise: Iterable[Any] | None = None,
    rng: RngLike = None,
    method: str = "explicit",
    progress: bool = False,
) -> TeacherStudentPath:
    """Online SGD (the module docstring's step) of all ``init.n_seeds`` seeds at once.

    Parameters
    ----------
    init : the initial weights (:func:`draw_teacher_student`); its dtype and device are
        the simulation's (float64 on the CPU by default; float32 allowed).
    lr, lr2 : the first layer's rate (``lr / sqrt(N)`` per step) and the second's
        (``lr2 / N`` per step; default ``lr``; 0 freezes ``v``).
    rule : 'bp' (``b = v``), 'dfa' or 'fa' (``b = init.feedback``; the same here).
    t_max : the run's length in time units (``round(t_max N)`` steps).
    sigma : output-noise standard deviation.   weight_decay : per unit time (see above).
    t_eval : recording times in ``[0, t_max]``, non-decreasing, rounded to whole steps
        (default :func:`default_t_eval`); the run stops at the last one.
    inputs : optional iterable of input blocks ``(S, n, N)`` (any ``n``), consumed in
        order, one row per step per seed; default: drawn from ``rng`` (module docstring).
    noise : optional iterable of output-noise blocks ``(S, n)`` (standard normal ``xi``),
        used with ``sigma > 0``; default: drawn from ``rng``'s noise streams.
    rng : seeds the draws that are not given (see :mod:`alignlab._rng`).
    method : 'explicit' (the weights in ``R^N``: exact, draw for draw) or 'gram' (the
        order parameters' own Markov chain: exact in law, ``O((K+M)^2)`` per step
        whatever ``N``; see :func:`_run_gram`; needs ``N > K + M``, no ``inputs``).
    progress : a progress bar over the steps on stderr.

    Returns
    -------
    :class:`TeacherStudentPath`. The spec's SGD without approximation ('explicit': draw
    for draw; 'gram': in law); per step the seeds are one batch, the steps run one after
    another.
    """
    lr, rule, sigma, wd, lr2 = _check_run(init, lr, rule, sigma, weight_decay, lr2)
    method = check_choice("method", method, METHODS)
    S, K, N = init.w.shape
    rec_steps, n_steps = _record_steps(t_eval, t_max, N)
    dev, dt = init.w.device, init.w.dtype
    streams = make_streams(rng)
    if method == "gram" and (inputs is not None or noise is not None):
        raise invalid("inputs", "None with method 'gram' (it draws the local fields, not the "
                      "inputs; use method 'explicit')", "given")
    if method == "gram" and N <= K + init.M:
        raise invalid("method", f"'explicit' when N <= K + M (here {N} <= {K + init.M}; "
                      "'gram' needs N > K + M)", method)
    rec = _Recorder(rec_steps, S, K, init.M, dt)
    run = dict(rule=rule, lr=lr, lr2=lr2, decay=1.0 - wd / N, sigma=sigma, rec=rec,
               bar=_Bar(progress, n_steps))
    if method == "gram":
        blocks = _gram_blocks(streams, S, K + init.M, N, n_steps, sigma, dev, dt)
    elif inputs is None:
        blocks = _drawn_blocks(streams, S, N, n_steps, sigma, dev, dt, torch.get_num_threads())
    else:
        blocks = _given_blocks(inputs, noise, S, N, sigma, n_steps, dev, dt)
        if sigma > 0 and noise is None:
            blocks = _with_rng_noise(blocks, streams, S, dev)
    try:
        with _small_ops(dev):
            (_run_gram if method == "gram" else _run_explicit)(init, blocks, **run)
    finally:
        run["bar"].close()
    return rec.path(init, N)


def _run_explicit(init: TeacherStudentInit, blocks: Iterable[tuple[Any, Any]], *, rule: str,
                  lr: float, lr2: float, decay: float, sigma: float, rec: _Recorder,
                  bar: _Bar) -> None:
    """The spec's step on the weights themselves, for the input blocks ``blocks``."""
    N = init.N
    w = init.w.clone()  # (S, K, N)
    v = init.v.clone()  # (S, K)
    B, A = init.B, init.A  # (S, M, N), (S, M)
    # The loop works with x' = x / sqrt(2N), so lambda' = w x' = lambda / sqrt(2) and
    # g(lambda) = erf(lambda'), g'(lambda) = g'(0) exp(-lambda'^2), (lr / sqrt(N)) x =
    # lr sqrt(2) x': the spec's step with two fewer operations per step.
    scale = 1.0 / math.sqrt(2.0 * N)
    c1, c2 = lr * _SQRT2 * _GPRIME0, lr2 / N
    step = 0
    rec.take(step, w @ w.mT / N, w @ B.mT / N, v)
    for x_blk, xi_blk in blocks:
        x_blk = (x_blk * scale).unsqueeze(2)  # (S, n, 1, N): x'
        y_blk = (torch.special.erf(x_blk.squeeze(2) @ B.mT) * A[:, None, :]).sum(-1)  # (S, n)
        if sigma > 0:
            y_blk = y_blk + sigma * xi_blk
        y_blk = y_blk.T.contiguous()  # (n, S): the teacher's outputs, step by step
        for j in range(x_blk.shape[1]):
            x = x_blk[:, j]  # (S, 1, N)
            lam = (w * x).sum(-1)  # (S, K): lambda'
            g_lam = torch.special.erf(lam)  # (S, K)
            e = (y_blk[j] - (v * g_lam).sum(-1)).unsqueeze(-1)  # (S, 1)
            b = v if rule == "bp" else init.feedback  # (S, K), pre-step v
            coef = torch.exp(lam.square_().neg_()).mul_(b).mul_(e).mul_(c1)  # (S, K)
            v = torch.addcmul(v * decay, g_lam, e, value=c2)  # (S, K); decay 1.0 is exact
            if decay != 1.0:
                w.mul_(decay)
            w.addcmul_(coef.unsqueeze(-1), x)  # w_k += coef_k x'
            step += 1
            if rec.due(step):
                rec.take(step, w @ w.mT / N, w @ B.mT / N, v)
        bar.update(x_blk.shape[1])


def _gram_blocks(streams: Streams, S: int, d: int, N: int, n_steps: int, sigma: float,
                 dev: torch.device, dt: torch.dtype) -> Iterator[tuple[Any, Any, Any]]:
    """Blocks ``(z (S, n, d), |x|^2 (S, n), xi (S, n) or None)`` for method 'gram'.

    Seed ``s`` draws ``z`` from ``child(GRAM_Z_KEY)``'s stream ``(s, TAG_AUX)`` (``d``
    numbers per step), the chi-square ``|x_perp|^2`` (``N - d`` degrees of freedom) from
    ``child(GRAM_CHI_KEY)``'s, and the noise from the explicit method's noise stream; with
    numpy on the host in float64 on every device (as the Wishart sampler does)."""
    n_block = MAX_BLOCK_STEPS
    gz = [streams.child(GRAM_Z_KEY).numpy(s, TAG_AUX) for s in range(S)]
    gchi = [streams.child(GRAM_CHI_KEY).numpy(s, TAG_AUX) for s in range(S)]
    gxi = [streams.child(NOISE_KEY).numpy(s, TAG_AUX) for s in range(S)] if sigma > 0 else None
    for start in range(0, n_steps, n_block):
        n = min(n_block, n_steps - start)
        z = np.stack([g.standard_normal((n, d)) for g in gz])  # (S, n, d)
        xx = np.einsum("snd,snd->sn", z, z) + np.stack([g.chisquare(N - d, n) for g in gchi])
        xi = None if gxi is None else np.stack([g.standard_normal(n) for g in gxi])
        yield tuple(None if a is None else torch.from_numpy(a).to(device=dev, dtype=dt)
                    for a in (z, xx, xi))


def _run_gram(init: TeacherStudentInit, blocks: Iterable[tuple[Any, Any, Any]], *, rule: str,
              lr: float, lr2: float, decay: float, sigma: float, rec: _Recorder,
              bar: _Bar) -> None:
    """Method 'gram': the same SGD as a Markov chain of the order parameters (exact in law).

    The state is ``C = [[Q, R], [R^T, T]]`` (the Gram matrix of the rows of ``w`` and
    ``B``, over ``N``) and ``v``. Given it, a fresh ``x ~ N(0, I_N)`` enters the step only
    through the local fields ``u = (lambda, nu) = L z`` (``C = L L^T``, ``z ~ N(0, I_d)``,
    ``d = K + M``: the coordinates of ``x`` in the rows' orthonormalised span) and
    ``|x|^2 = |z|^2 + chi^2_{N - d}`` (the rest of ``x``, independent of ``z``, by the
    rotation invariance of ``N(0, I_N)``). With ``kappa = lr b g'(lambda) e`` (so
    ``w' = a w + kappa x^T / sqrt(N)``) and ``D = diag(a 1_K, 1_M)``::

        C' = D C D + (D u kappa~^T + kappa~ u^T D) / N + kappa~ kappa~^T |x|^2 / N^2

    (``kappa~ = (kappa, 0_M)``), which is ``w' w'^T / N``, ``w' B^T / N`` and ``T``
    exactly; ``v`` as in the explicit step. One small Cholesky factorisation per step.
    ``blocks``: :func:`_gram_blocks` (``z``, ``|x|^2``, ``xi``)."""
    K, M = init.K, init.M
    Q0, R0, T0 = init.order_parameters()
    C = torch.cat([torch.cat([Q0, R0], -1), torch.cat([R0.mT, T0], -1)], -2)  # (S, d, d)
    opts = dict(dtype=C.dtype, device=C.device)
    zeros_m = torch.zeros((init.n_seeds, M), **opts)
    v_full = torch.cat([init.v, zeros_m], -1)  # (S, d): v, 0 on the teacher's fields
    fb_full = torch.cat([init.feedback, zeros_m], -1)  # (S, d)
    a_full = torch.cat([torch.zeros_like(init.v), init.A], -1)  # (S, d): 0, A
    student = torch.cat([torch.ones(K, **opts), torch.zeros(M, **opts)])  # (d,)
    D = torch.cat([torch.full((K,), decay, **opts), torch.ones(M, **opts)])  # (d,)
    DD = D[:, None] * D[None, :]  # (d, d)
    c1, c2 = lr * _GPRIME0 / init.N, lr2 / init.N
    step = 0
    rec.take(step, C[:, :K, :K], C[:, :K, K:], v_full[:, :K])
    try:
        for z_blk, xx_blk, xi_blk in blocks:
            half_xx = (0.5 * xx_blk).T.contiguous().unsqueeze(-1)  # (n, S, 1)
            noise = (sigma * xi_blk).T.contiguous().unsqueeze(-1) if sigma > 0 else None
            z_blk = z_blk.transpose(0, 1).unsqueeze(-1).contiguous()  # (n, S, d, 1)
            for j in range(z_blk.shape[0]):
                u = (torch.linalg.cholesky(C) @ z_blk[j]).squeeze(-1)  # (S, d): lambda, nu
                g_u = torch.special.erf(u / _SQRT2)  # (S, d)
                e = ((a_full - v_full) * g_u).sum(-1, keepdim=True)  # (S, 1): y - phi
                if noise is not None:
                    e = e + noise[j]
                b = v_full if rule == "bp" else fb_full  # (S, d), pre-step v; 0 on nu
                kappa = torch.exp(u.square().mul_(-0.5)).mul_(b).mul_(e).mul_(c1)  # kappa~/N
                h = torch.addcmul(u * D, kappa, half_xx[j])  # D u + kappa~ |x|^2 / (2N)
                outer = h.unsqueeze(-1) * kappa.unsqueeze(-2)  # (S, d, d)
                if decay != 1.0:
                    C = C * DD
                C = C + outer + outer.mT
                v_full = torch.addcmul(v_full * decay, g_u * student, e, value=c2)
                step += 1
                if rec.due(step):
                    rec.take(step, C[:, :K, :K], C[:, :K, K:], v_full[:, :K])
            bar.update(z_blk.shape[0])
    except torch.linalg.LinAlgError:
        raise ValueError("`method` 'gram' needs the Gram matrix C = [[Q, R], [R^T, T]] to "
                         f"stay positive definite, got a singular C after {step} steps (use "
                         "method 'explicit').") from None


def simulate_one_seed_literal(
    init: TeacherStudentInit,
    *,
    seed: int = 0,
    lr: float,
    rule: str = "bp",
    t_max: float,
    sigma: float = 0.0,
    weight_decay: float = 0.0,
    lr2: float | None = None,
    t_eval: Any = None,
    inputs: Iterable[Any] | None = None,
    noise: Iterable[Any] | None = None,
    rng: RngLike = None,
) -> TeacherStudentPath:
    """The same SGD for seed ``seed`` of ``init`` alone, one step at a time, written
    plainly in numpy float64: the test oracle of :func:`simulate_teacher_student` and the
    benchmark's baseline. Arguments as there, except that ``inputs`` yields blocks
    ``(n, N)`` and ``noise`` blocks ``(n,)`` of this one seed; drawn, they come from the
    same streams of ``rng`` (the same numbers, one row at a time). Returns a path with
    ``S = 1`` (float64, on the CPU)."""
    lr, rule, sigma, wd, lr2 = _check_run(init, lr, rule, sigma, weight_decay, lr2)
    seed = check_int("seed", seed, minimum=0)
    if seed >= init.n_seeds:
        raise invalid("seed", f"< n_seeds = {init.n_seeds}", seed)
    N = init.N
    rec_steps, n_steps = _record_steps(t_eval, t_max, N)
    w = init.w[seed].double().cpu().numpy().copy()  # (K, N)
    v = init.v[seed].double().cpu().numpy().copy()  # (K,)
    B = init.B[seed].double().cpu().numpy()  # (M, N)
    A = init.A[seed].double().cpu().numpy()  # (M,)
    fb = init.feedback[seed].double().cpu().numpy()  # (K,)
    streams = make_streams(rng)
    if inputs is None:
        gen_x = streams.child(INPUTS_KEY).numpy(seed, TAG_AUX)
        xs = (gen_x.standard_normal(N) for _ in range(n_steps))
    else:
        xs = (row for block in inputs for row in np.asarray(block, dtype=np.float64))
    if noise is None:
        gen_xi = streams.child(NOISE_KEY).numpy(seed, TAG_AUX)
        xis = (gen_xi.standard_normal() for _ in range(n_steps))
    else:
        xis = (float(z) for block in noise for z in np.asarray(block, dtype=np.float64))

    def g(z):
        return np.array([math.erf(zk / math.sqrt(2.0)) for zk in z])

    def g_prime(z):
        return math.sqrt(2.0 / math.pi) * np.exp(-z * z / 2.0)

    Qs, Rs, Vs = [], [], []
    for step in range(n_steps + 1):
        while len(Qs) < len(rec_steps) and rec_steps[len(Qs)] == step:
            Qs.append(w @ w.T / N)
            Rs.append(w @ B.T / N)
            Vs.append(v.copy())
        if step == n_steps:
            break
        x = next(xs, None)
        if x is None:
            raise invalid("inputs", f"blocks covering the {n_steps} steps", f"only {step}")
        lam = w @ x / math.sqrt(N)
        nu = B @ x / math.sqrt(N)
        y = A @ g(nu)
        if sigma > 0:
            y = y + sigma * next(xis)
        e = y - v @ g(lam)
        b = v if rule == "bp" else fb
        w_new = (1 - wd / N) * w + (lr / math.sqrt(N)) * np.outer(b * g_prime(lam) * e, x)
        v_new = (1 - wd / N) * v + (lr2 / N) * g(lam) * e
        w, v = w_new, v_new
    V = torch.from_numpy(np.array(Vs))[None]
    fbt = torch.from_numpy(fb)[None]
    return TeacherStudentPath(
        t=rec_steps / N, Q=torch.from_numpy(np.array(Qs))[None],
        R=torch.from_numpy(np.array(Rs))[None], v=V,
        T=torch.from_numpy(B @ B.T / N)[None], A=torch.from_numpy(A)[None], feedback=fbt,
        alignment=_cos(V, fbt[:, None, :]),
    )
