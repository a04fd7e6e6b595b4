"""The teacher-student network trained by alignlab's own layers (simulation (b), issue 16).

:func:`train_teacher_student` builds the spec's two-layer student (``docs/teacher_student.md``:
``phi = sum_k v_k g(lambda_k)``, ``lambda = w x / sqrt(N)``, ``g(z) = erf(z / sqrt(2))``, no
biases) from the harness's pieces — :class:`~alignlab.models.MLP` with ``activation="erf"``
and ``bias=False``, converted to ``bp`` / ``dfa`` / ``fa`` by :func:`alignlab.convert` —
and trains it online, batch size 1, with the half squared error
(:class:`~alignlab.train.losses.SquaredError`) and per-layer rates
(:func:`alignlab.nn.make_optimizer`'s ``layer_lr_scales``), so the theory is checked
against the layers users train. It is the batched simulator's
(:mod:`alignlab.sim.teacher_student`) step computed another way.

Weight scales and rates (the derivation)
----------------------------------------
The network's weights are ``W1 = w / sqrt(N)`` (K, N) and ``W2 = v`` (1, K), so
``W1 x = lambda`` and the output is ``W2 g(W1 x) = phi``. With ``L = 1/2 (y - phi)^2`` and
``e = y - phi``, the gradients are ``dL/dW2 = -e g(lambda)^T`` and, for BP,
``dL/dW1 = -e (v * g'(lambda)) x^T``; FA and DFA send ``e b`` down instead of ``e v`` (the
output layer's fixed feedback, ``(1, K)``, set to ``b``), so ``dL/dW1 = -e (b * g'(lambda))
x^T``. An SGD step at rate ``eta1`` on ``W1`` moves ``w = sqrt(N) W1`` by
``sqrt(N) eta1 e (b * g') x^T``: the spec's ``(lr / sqrt(N)) b g' e x`` for ``eta1 = lr / N``.
A step at rate ``eta2`` on ``W2 = v`` is the spec's ``(lr2 / N) g e`` for ``eta2 = lr2 / N``.
So both layers train at ``lr / N`` on these scales (the second at ``lr2 / N``: per-layer
scales ``(1, lr2 / lr)``). The update is simultaneous from the pre-step state, as the spec's.

Weight decay ``w <- (1 - wd / N) w + ...``, ``v <- (1 - wd / N) v + ...`` (decoupled, on the
pre-step weights; per unit time ``dQ -= 2 wd Q``, ``dR -= wd R``, ``dv -= wd v``) is linear
in the weights, so it is the same factor on ``W1`` and ``W2``. torch's SGD applies coupled
decay ``kappa``: ``W <- W - eta (grad + kappa W) = (1 - eta kappa) W - eta grad``, the spec's
step exactly when ``eta kappa = wd / N``; each layer's group gets ``kappa = (wd / N) / eta``
(equal to ``wd / lr`` in both layers when ``lr2 = lr``).

Order parameters, from the trained weights (``w = sqrt(N) W1``): ``Q = w w^T / N``,
``R = w B^T / N`` (the student-teacher overlap of the literature, not PFA's feedback matrix)
and ``v``, at the requested steps.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .._validate import check_choice, check_finite, check_int, check_positive, invalid
from ..data.stream import InputStream, Teacher
from ..models import MLP
from ..nn import convert, converted_layers, make_optimizer
from .losses import get_loss

__all__ = ["RULES", "TeacherStudentRun", "train_teacher_student"]

RULES = ("bp", "dfa", "fa")  # fa == dfa in a two-layer network (one feedback vector)
_BLOCK = 1024  # steps whose inputs are labelled at once


@dataclass(frozen=True)
class TeacherStudentRun:
    """What :func:`train_teacher_student` returns (numpy float64 arrays)."""

    steps: np.ndarray  # (n_t,) the recorded steps
    t: np.ndarray  # (n_t,) steps / N
    Q: np.ndarray  # (n_t, K, K) w w^T / N
    R: np.ndarray  # (n_t, K, M) w B^T / N
    v: np.ndarray  # (n_t, K)
    wall_s: float  # training time (the steps and the recording)

    @property
    def seconds_per_step(self) -> float:
        return self.wall_s / max(int(self.steps[-1]), 1) if len(self.steps) else math.nan


def _matrix(name: str, value: Any, shape: tuple[int | None, ...]) -> np.ndarray:
    a = np.array(check_finite(name, value), dtype=np.float64)
    if a.ndim != len(shape) or any(s is not None and s != n for s, n in zip(shape, a.shape,
                                                                         strict=True)):
        want = str(tuple("n" if s is None else s for s in shape)).replace("'", "")
        raise invalid(name, f"an array of shape {want}", a.shape)
    return a


class _Rows:
    """The rows of ``blocks`` (arrays ``(n, *shape)``, any ``n``) handed out ``n`` at a time,
    whatever the blocks' sizes; ``name`` for messages."""

    def __init__(self, blocks: Iterable[Any], shape: tuple[int, ...], name: str):
        self.blocks, self.shape, self.name = iter(blocks), shape, name
        self.pending: list[np.ndarray] = []
        self.held = 0  # rows received and not yet handed out
        self.given = 0  # rows handed out

    def take(self, n: int) -> np.ndarray:
        while self.held < n:
            block = next(self.blocks, None)
            if block is None:
                raise invalid(self.name, f"blocks covering every step (step "
                              f"{self.given + n} was asked for)",
                              f"{self.given + self.held} rows")
            a = np.asarray(block, dtype=np.float64)
            if a.ndim != 1 + len(self.shape) or a.shape[1:] != self.shape:
                raise invalid(self.name, f"blocks of shape (n, {', '.join(map(str, self.shape))})"
                              if self.shape else "blocks of shape (n,)", a.shape)
            self.pending.append(a)
            self.held += a.shape[0]
        rows = np.concatenate(self.pending) if len(self.pending) > 1 else self.pending[0]
        self.pending = [rows[n:]] if rows.shape[0] > n else []
        self.held -= n
        self.given += n
        return rows[:n]


def train_teacher_student(
    teacher: Teacher | tuple[Any, Any],
    w: Any,
    v: Any,
    feedback: Any,
    *,
    rule: str = "bp",
    lr: float,
    lr2: float | None = None,
    weight_decay: float = 0.0,
    record_steps: Sequence[int],
    inputs: InputStream | Iterable[Any] | None = None,
    noise: Iterable[Any] | None = None,
    sigma: float = 0.0,
    rng: Any = None,
    dtype: torch.dtype = torch.float64,
) -> TeacherStudentRun:
    """Train the spec's two-layer student with alignlab's layers, online; its order
    parameters at ``record_steps`` (see the module docstring for the derivation).

    Parameters
    ----------
    teacher
        A :class:`~alignlab.data.Teacher` or ``(B, A)``: ``B`` (M, N), ``A`` (M,).
    w, v, feedback
        The student's initial first layer (K, N), second layer (K,) and the fixed
        feedback vector (K,) (used by 'dfa' and 'fa'; ignored by 'bp').
    rule
        'bp', 'dfa' or 'fa' (the method ``alignlab.convert`` gives the layers).
    lr, lr2
        The spec's learning rates (``lr2``: the second layer's, default ``lr``).
    weight_decay
        ``wd`` of the decoupled step ``w <- (1 - wd / N) w + ...`` (and ``v``).
    record_steps
        Non-decreasing step counts in ``[0, steps]`` (0: the initial state); the run
        lasts ``max(record_steps)`` steps.
    inputs
        The inputs, consumed in order, one step per row: an :class:`InputStream` (of
        ``N`` inputs) or an iterable of blocks ``(n, N)`` (any ``n``); default
        ``InputStream(N, rng=rng)``.
    noise, sigma
        Output noise: ``y = teacher(x) + sigma xi``, with ``xi`` from ``noise`` (blocks
        ``(n,)``), else from ``inputs``' noise stream when it is an :class:`InputStream`
        (drawn only when ``sigma > 0``).
    rng
        Seed of the default ``inputs``.
    dtype
        The network's dtype (float64: the exact comparison with a float64 simulator).

    Returns
    -------
    TeacherStudentRun
        ``steps``, ``t = steps / N``, ``Q`` (n_t, K, K), ``R`` (n_t, K, M), ``v`` (n_t, K).
    """
    if not isinstance(teacher, Teacher):
        if not (isinstance(teacher, tuple) and len(teacher) == 2):
            raise invalid("teacher", "a Teacher or a pair (B, A)", type(teacher).__name__)
        teacher = Teacher(*teacher)
    N = teacher.N
    w = _matrix("w", w, (None, N))
    K = w.shape[0]
    v = _matrix("v", v, (K,))
    feedback = _matrix("feedback", feedback, (K,))
    check_choice("rule", rule, RULES)
    lr = float(check_positive("lr", lr, scalar=True))
    lr2 = lr if lr2 is None else float(check_positive("lr2", lr2, scalar=True))
    wd = float(check_positive("weight_decay", weight_decay, allow_zero=True, scalar=True))
    sigma = float(check_positive("sigma", sigma, allow_zero=True, scalar=True))
    rec = np.asarray([check_int("record_steps", s, minimum=0) for s in record_steps],
                     dtype=np.int64)
    if rec.size == 0 or np.any(np.diff(rec) < 0):
        raise invalid("record_steps", "a non-empty, non-decreasing list of steps >= 0",
                      list(record_steps))
    if dtype not in (torch.float32, torch.float64):
        raise invalid("dtype", "torch.float32 or torch.float64", dtype)
    n_steps = int(rec[-1])
    stream = inputs if isinstance(inputs, InputStream) else None
    if inputs is None:
        stream = InputStream(N, rng=rng)
    if stream is not None and stream.n_inputs != N:
        raise invalid("inputs", f"an InputStream of N = {N} inputs", stream.n_inputs)
    if sigma > 0 and noise is None and stream is None:
        raise invalid("noise", "blocks of xi when sigma > 0 and the inputs are blocks", None)
    xs = _Rows(stream.blocks(n_steps) if stream is not None else inputs, (N,), "inputs")
    xis = None
    if sigma > 0:
        xis = _Rows(stream.noise_blocks(n_steps) if noise is None else noise, (), "noise")

    # ---- the network: MLP (N, K, 1), erf, no biases; converted; weights as derived ------
    model = MLP((N, K, 1), activation="erf", bias=False, rng=0).to(dtype)
    model = convert(model, rule, inplace=True, rng=0)
    (_, first), (_, second) = converted_layers(model)
    with torch.no_grad():
        first.weight.copy_(torch.from_numpy(w / math.sqrt(N)))  # W1 = w / sqrt(N)
        second.weight.copy_(torch.from_numpy(v)[None, :])  # W2 = v, (1, K)
        fixed = second.feedback_state()  # the output layer's fixed feedback, (1, K)
        for tensor in fixed.values():  # (none for BP)
            tensor.copy_(torch.from_numpy(feedback).view_as(tensor))
    eta = lr / N
    opt = make_optimizer(model, "sgd", lr=eta, layer_lr_scales=(1.0, lr2 / lr))
    for group in opt.param_groups:  # coupled decay kappa with eta kappa = wd / N
        group["weight_decay"] = (wd / N) / group["lr"]
    loss_fn = get_loss("squared-error")
    B = teacher.B

    Qs, Rs, vs = [], [], []

    def record() -> None:
        W1 = first.weight.detach().double().numpy()
        w_now = W1 * math.sqrt(N)  # (K, N)
        Qs.append(w_now @ w_now.T / N)
        Rs.append(w_now @ B.T / N)
        vs.append(second.weight.detach().double().numpy()[0].copy())

    model.train()
    step, r = 0, 0
    t0 = time.perf_counter()
    while r < rec.size and rec[r] == 0:
        record()
        r += 1
    for start in range(0, n_steps, _BLOCK):
        x = xs.take(min(_BLOCK, n_steps - start))  # (n, N)
        y = teacher(x)  # (n,)
        if xis is not None:
            y = y + sigma * xis.take(x.shape[0])
        xt = torch.from_numpy(x).to(dtype)  # (n, N)
        yt = torch.from_numpy(y).to(dtype)[:, None]  # (n, 1)
        for i in range(xt.shape[0]):
            loss = loss_fn(model(xt[i:i + 1]), yt[i:i + 1])  # 1/2 (y - phi)^2
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            while r < rec.size and rec[r] == step:
                record()
                r += 1
    wall = time.perf_counter() - t0
    return TeacherStudentRun(rec, rec / N, np.array(Qs), np.array(Rs), np.array(vs), wall)
