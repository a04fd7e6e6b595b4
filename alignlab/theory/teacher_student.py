r"""Teacher-student ODEs of online learning in two-layer networks: BP, FA and DFA.

The exact theory of Saad & Solla (1995) and Goldt et al. (2019) for backpropagation and of
Refinetti et al. (2021, "Align, then memorise") for direct feedback alignment, in the
conventions of the authors' code; ``docs/teacher_student.md`` states them, derives the
equations and says how they are checked.

The model: inputs :math:`x \sim N(0, I_N)`, a teacher
:math:`y = \sum_m A_m g(\nu_m)`, :math:`\nu_m = B^*_m \cdot x/\sqrt N` (``M`` hidden
units), a student :math:`\phi = \sum_k v_k g(\lambda_k)`,
:math:`\lambda_k = w_k \cdot x/\sqrt N` (``K`` hidden units),
:math:`g(z) = \mathrm{erf}(z/\sqrt 2)`, one SGD step per sample with rates
``lr / sqrt(N)`` (first layer) and ``lr2 / N`` (second layer), time ``t = steps / N``.
As ``N -> inf`` the order parameters

.. math::

    Q_{kl} = \frac{w_k \cdot w_l}{N},\qquad R_{km} = \frac{w_k \cdot B^*_m}{N},\qquad
    T_{mn} = \frac{B^*_m \cdot B^*_n}{N}

and ``v`` follow closed ODEs (:func:`order_parameter_derivatives`), and the
generalisation error is a closed form of them (:func:`generalisation_error`).

**Notation warning.** Here ``R`` is the student-teacher overlap of this literature, not
PFA's plastic feedback matrix ``R`` of the rest of ``alignlab.theory``.

The local fields :math:`u = (\lambda_1..\lambda_K, \nu_1..\nu_M)` are jointly Gaussian
with covariance :func:`covariance` ``C = [[Q, R], [R^T, T]]`` (``n = K + M`` fields); the
averages :func:`i2`, :func:`i3`, :func:`i4`, :func:`j2` over them are exact closed forms
for erf. Everything is vectorised over the index sums (whole arrays, einsum/matmul) and
over a batch of initial conditions; nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alignlab._validate import check_choice, check_finite, check_int, check_positive, invalid

__all__ = [
    "TeacherStudentCurve",
    "covariance",
    "generalisation_error",
    "i2",
    "i3",
    "i4",
    "integrate",
    "j2",
    "log_time_grid",
    "order_parameter_derivatives",
]

RULES = ("bp", "dfa", "fa")
METHODS = ("LSODA", "DOP853", "RK45", "Radau", "BDF")  # scipy.integrate.solve_ivp's
_TWO_PI = 2.0 / np.pi
_FOUR_PI2 = 4.0 / np.pi**2
# symmetry and positive semi-definiteness are checked to this relative tolerance (inputs
# computed as w w^T / N in floating point are symmetric and PSD only up to rounding)
_TOL = 1e-10


# --- the averages over the local fields (private: a, b restricted to the first k fields) ---

def _i2(C, k):
    """I2[a, b] for a < k: (..., k, n)."""
    d = 1.0 + np.diagonal(C, axis1=-2, axis2=-1)
    return _TWO_PI * np.arcsin(C[..., :k, :] / np.sqrt(d[..., :k, None] * d[..., None, :]))


def _i3(C, k):
    """I3[a, b, c] for a < k: (..., k, n, n)."""
    d = 1.0 + np.diagonal(C, axis1=-2, axis2=-1)
    da = d[..., :k, None, None]
    cab = C[..., :k, :, None]
    cac = C[..., :k, None, :]
    return (_TWO_PI * (C[..., None, :, :] * da - cab * cac)
            / (da * np.sqrt(da * d[..., None, None, :] - cac * cac)))


def _i4(C, k):
    """I4[a, b, c, d] for a, b < k: (..., k, k, n, n).

    The spec's L0, L1, L2 as one quadratic form: with ``S_ab = [[1 + C_aa, C_ab],
    [C_ab, 1 + C_bb]]`` (``L4 = det S_ab``), its adjugate ``adj S_ab`` and
    ``x_c = (C_ac, C_bc)``, ``L0 = L4 C_cd - x_c^T adj(S_ab) x_d``, ``L1 = L0[c, c] + L4``
    and ``L2 = L0[d, d] + L4`` (expand the products to see the spec's five terms): two
    matrix products instead of some forty elementwise operations.
    """
    d = 1.0 + np.diagonal(C, axis1=-2, axis2=-1)
    n = C.shape[-1]
    da = d[..., :k, None]
    db = d[..., None, :k]
    cab = C[..., :k, :k]
    l4 = da * db - cab * cab  # (..., k, k)
    adj = np.empty((*cab.shape, 2, 2))
    adj[..., 0, 0] = db
    adj[..., 1, 1] = da
    adj[..., 0, 1] = adj[..., 1, 0] = -cab
    x = np.empty((*cab.shape, 2, n))
    x[..., 0, :] = C[..., :k, None, :]  # C_ac
    x[..., 1, :] = C[..., None, :k, :]  # C_bc
    l0 = l4[..., None, None] * C[..., None, None, :, :] - np.swapaxes(x, -1, -2) @ (adj @ x)
    l1 = np.diagonal(l0, axis1=-2, axis2=-1) + l4[..., None]  # (..., k, k, n)
    return (_FOUR_PI2 / np.sqrt(l4)[..., None, None]
            * np.arcsin(l0 / np.sqrt(l1[..., :, None] * l1[..., None, :])))


def _j2(C, k):
    """J2[a, b] for a, b < k: (..., k, k)."""
    d = 1.0 + np.diagonal(C, axis1=-2, axis2=-1)
    return _TWO_PI / np.sqrt(d[..., :k, None] * d[..., None, :k] - C[..., :k, :k] ** 2)


# --- validation ---

def _shape(x):
    return f"shape {x.shape}"


def _check_symmetric(name, x):
    scale = max(1.0, float(np.max(np.abs(x)))) if x.size else 1.0
    if np.max(np.abs(x - np.swapaxes(x, -1, -2)), initial=0.0) > _TOL * scale:
        raise invalid(name, "symmetric", f"{name} - {name}^T up to "
                      f"{np.max(np.abs(x - np.swapaxes(x, -1, -2))):.3g}")
    return 0.5 * (x + np.swapaxes(x, -1, -2))


def _check_psd(name, C):
    if C.size == 0:
        return C
    lo = np.min(np.linalg.eigvalsh(C))
    scale = max(1.0, float(np.max(np.abs(C))))
    if lo < -_TOL * scale:
        raise invalid(name, "positive semi-definite", f"smallest eigenvalue {lo:.3g}")
    return C


def _check_c(C):
    C = np.asarray(check_finite("C", C), dtype=float)
    if C.ndim < 2 or C.shape[-1] != C.shape[-2] or C.shape[-1] == 0:
        raise invalid("C", "a square covariance, shape (..., n, n) with n >= 1", _shape(C))
    return _check_psd("C", _check_symmetric("C", C))


def _blocks(Q, R, T):
    K, M = R.shape[-2:]
    C = np.empty((*np.broadcast_shapes(Q.shape[:-2], R.shape[:-2], T.shape[:-2]),
                  K + M, K + M))
    C[..., :K, :K] = Q
    C[..., :K, K:] = R
    C[..., K:, :K] = np.swapaxes(R, -1, -2)
    C[..., K:, K:] = T
    return C


def _check_qrt(Q, R, T):
    Q = np.asarray(check_finite("Q", Q), dtype=float)
    R = np.asarray(check_finite("R", R), dtype=float)
    T = np.asarray(check_finite("T", T), dtype=float)
    if Q.ndim < 2 or Q.shape[-1] != Q.shape[-2] or Q.shape[-1] == 0:
        raise invalid("Q", "square, shape (..., K, K) with K >= 1", _shape(Q))
    if T.ndim < 2 or T.shape[-1] != T.shape[-2] or T.shape[-1] == 0:
        raise invalid("T", "square, shape (..., M, M) with M >= 1", _shape(T))
    K, M = Q.shape[-1], T.shape[-1]
    if R.ndim < 2 or R.shape[-2:] != (K, M):
        raise invalid("R", f"of shape (..., K, M) = (..., {K}, {M})", _shape(R))
    try:
        np.broadcast_shapes(Q.shape[:-2], R.shape[:-2], T.shape[:-2])
    except ValueError:
        raise invalid("Q, R, T", "of broadcastable leading (batch) shapes",
                      f"{Q.shape}, {R.shape}, {T.shape}") from None
    Q = _check_symmetric("Q", Q)
    T = _check_symmetric("T", T)
    _check_psd("covariance [[Q, R], [R^T, T]]", _blocks(Q, R, T))
    return Q, R, T


# --- public closed forms ---

def covariance(Q, R, T) -> np.ndarray:
    r"""Covariance of the local fields ``u = (lambda_1..lambda_K, nu_1..nu_M)`` (exact).

    .. math::

        C = \begin{pmatrix} Q & R \\ R^T & T \end{pmatrix},

    ``Q`` (..., K, K) and ``T`` (..., M, M) symmetric, ``R`` (..., K, M) the
    student-teacher overlap (not PFA's feedback matrix), batched over broadcastable leading
    axes; ``C`` must be positive semi-definite (checked to a relative ``1e-10``).

    Returns
    -------
    numpy.ndarray
        ``C`` of shape (..., K + M, K + M).
    """
    return _blocks(*_check_qrt(Q, R, T))


def i2(C) -> np.ndarray:
    r"""``I2[a, b] = E[g(u_a) g(u_b)]`` for ``g(z) = erf(z / sqrt 2)``, ``u ~ N(0, C)`` (exact).

    .. math::

        I_2(a, b) = \frac{2}{\pi} \arcsin\frac{C_{ab}}{\sqrt{(1 + C_{aa})(1 + C_{bb})}} .

    ``C`` (..., n, n) symmetric positive semi-definite; returns (..., n, n).
    """
    C = _check_c(C)
    return _i2(C, C.shape[-1])


def i3(C) -> np.ndarray:
    r"""``I3[a, b, c] = E[g'(u_a) u_b g(u_c)]``, ``u ~ N(0, C)`` (exact, erf).

    .. math::

        I_3(a, b, c) = \frac{2}{\pi} \frac{C_{bc}(1 + C_{aa}) - C_{ab} C_{ac}}
        {(1 + C_{aa}) \sqrt{(1 + C_{aa})(1 + C_{cc}) - C_{ac}^2}} .

    ``C`` (..., n, n) symmetric positive semi-definite; returns (..., n, n, n).
    """
    C = _check_c(C)
    return _i3(C, C.shape[-1])


def i4(C) -> np.ndarray:
    r"""``I4[a, b, c, d] = E[g'(u_a) g'(u_b) g(u_c) g(u_d)]``, ``u ~ N(0, C)`` (exact, erf).

    .. math::

        I_4 = \frac{4}{\pi^2} \frac{1}{\sqrt{L_4}}
        \arcsin\frac{L_0}{\sqrt{L_1 L_2}},\qquad
        L_4 = (1 + C_{aa})(1 + C_{bb}) - C_{ab}^2,

        L_0 = L_4 C_{cd} - C_{bc} C_{bd} (1 + C_{aa}) - C_{ac} C_{ad} (1 + C_{bb})
              + C_{ab} C_{ac} C_{bd} + C_{ab} C_{ad} C_{bc},

        L_1 = L_4 (1 + C_{cc}) - C_{bc}^2 (1 + C_{aa}) - C_{ac}^2 (1 + C_{bb})
              + 2 C_{ab} C_{ac} C_{bc},

    and ``L_2`` as ``L_1`` with ``d`` for ``c``. ``C`` (..., n, n) symmetric positive
    semi-definite; returns (..., n, n, n, n).
    """
    C = _check_c(C)
    return _i4(C, C.shape[-1])


def j2(C) -> np.ndarray:
    r"""``J2[a, b] = E[g'(u_a) g'(u_b)]``, ``u ~ N(0, C)`` (exact, erf).

    .. math::

        J_2(a, b) = \frac{2}{\pi} \frac{1}{\sqrt{(1 + C_{aa})(1 + C_{bb}) - C_{ab}^2}} .

    ``C`` (..., n, n) symmetric positive semi-definite; returns (..., n, n).
    """
    C = _check_c(C)
    return _j2(C, C.shape[-1])


def _error_weights(v, A):
    """``a = (-v, A)``: the error is ``e = sum_c a_c g(u_c)`` (without output noise)."""
    K = v.shape[-1]
    a = np.empty((*np.broadcast_shapes(v.shape[:-1], A.shape[:-1]), K + A.shape[-1]))
    np.negative(v, out=a[..., :K])
    a[..., K:] = A
    return a


def _check_vector(name, x, size, size_name):
    x = np.asarray(check_finite(name, x), dtype=float)
    if x.ndim < 1 or x.shape[-1] != size:
        raise invalid(name, f"of shape (..., {size_name}) = (..., {size})", _shape(x))
    return x


def generalisation_error(Q, R, T, A, v) -> np.ndarray:
    r"""Generalisation error of the student, ``eg = 1/2 E[(y - phi)^2]`` (exact, erf).

    .. math::

        \epsilon_g = \frac{1}{\pi}\Big[\sum_{kl} v_k v_l
        \arcsin\frac{Q_{kl}}{\sqrt{(1+Q_{kk})(1+Q_{ll})}}
        + \sum_{mn} A_m A_n \arcsin\frac{T_{mn}}{\sqrt{(1+T_{mm})(1+T_{nn})}}
        - 2\sum_{km} v_k A_m \arcsin\frac{R_{km}}{\sqrt{(1+Q_{kk})(1+T_{mm})}}\Big],

    i.e. ``1/2 a^T I2 a`` with ``a = (-v, A)``. The 1/2 convention of the spec, without the
    output-noise term ``sigma^2 / 2``.

    Parameters
    ----------
    Q, R, T : array_like
        Order parameters, shapes (..., K, K), (..., K, M), (..., M, M) (``R`` the
        student-teacher overlap); ``[[Q, R], [R^T, T]]`` positive semi-definite.
    A, v : array_like
        Teacher's (..., M) and student's (..., K) second layers.

    Returns
    -------
    numpy.ndarray
        ``eg`` over the broadcast leading (batch) axes (a 0-d array when there are none).
    """
    C = covariance(Q, R, T)
    K, M = np.shape(R)[-2:]
    a = _error_weights(_check_vector("v", v, K, "K"), _check_vector("A", A, M, "M"))
    i2_ = _i2(C, C.shape[-1])
    return 0.5 * np.einsum("...a,...ab,...b->...", a, i2_, a)


# --- the equations ---

def _derivatives(Q, R, T, A, v, b, lr, lr2, sigma, weight_decay):
    """dQ, dR, dv of the spec's equations, batched over a leading axis (no validation).

    With ``a = (-v, A)`` and ``F[i, b] = sum_c I3(i, b, c) a_c``:
    ``dR_in = lr b_i F[i, K + n]``, ``dQ_ik = lr (b_i F[i, k] + b_k F[k, i])
    + lr^2 b_i b_k (sum_cd a_c a_d I4(i, k, c, d) + sigma^2 J2(i, k))``,
    ``dv_i = lr2 sum_c a_c I2(i, c)``; weight decay adds ``-2 wd Q``, ``-wd R``, ``-wd v``.
    """
    K = Q.shape[-1]
    C = _blocks(Q, R, T)
    a = _error_weights(v, A)  # (S, n)
    f = np.matmul(_i3(C, K), a[..., None, :, None])[..., 0]  # (S, K, n): E[g'(u_i) u_b e]
    bf = b[..., :, None] * f
    dR = lr * bf[..., K:]
    first = bf[..., :K]
    dQ = lr * (first + np.swapaxes(first, -1, -2))
    # sum_cd a_c a_d I4(i, k, c, d): E[g'(u_i) g'(u_k) e^2]
    g = np.matmul(np.matmul(_i4(C, K), a[..., None, None, :, None])[..., 0],
                  a[..., None, :, None])[..., 0]
    if sigma:
        g = g + sigma * sigma * _j2(C, K)
    g = 0.5 * (g + np.swapaxes(g, -1, -2))  # exactly symmetric (I4 is, up to rounding)
    dQ = dQ + (lr * lr) * (b[..., :, None] * b[..., None, :]) * g
    dv = lr2 * np.matmul(_i2(C, K), a[..., :, None])[..., 0]
    if weight_decay:
        dQ = dQ - 2.0 * weight_decay * Q
        dR = dR - weight_decay * R
        dv = dv - weight_decay * v
    return dQ, dR, dv


@dataclass(frozen=True)
class _Problem:
    """Validated inputs of :func:`integrate` / :func:`order_parameter_derivatives`,
    broadcast to one leading batch axis of size S."""

    Q: np.ndarray  # (S, K, K)
    R: np.ndarray  # (S, K, M)
    T: np.ndarray  # (S, M, M)
    A: np.ndarray  # (S, M)
    v: np.ndarray  # (S, K)
    b: np.ndarray  # (S, K): the first layer's feedback (for BP the initial v; the
    # integrator uses the current v)
    feedback: np.ndarray | None  # (S, K) or None
    rule: str
    lr: float
    lr2: float
    sigma: float
    weight_decay: float

    @property
    def sizes(self):
        return self.Q.shape[0], self.Q.shape[-1], self.T.shape[-1]


def _problem(Q, R, T, A, v, lr, rule, feedback, sigma, weight_decay, lr2) -> _Problem:
    rule = check_choice("rule", rule, RULES)
    lr = float(check_positive("lr", lr, scalar=True))
    lr2 = lr if lr2 is None else float(check_positive("lr2", lr2, allow_zero=True, scalar=True))
    sigma = float(check_positive("sigma", sigma, allow_zero=True, scalar=True))
    weight_decay = float(check_positive("weight_decay", weight_decay, allow_zero=True,
                                        scalar=True))
    Q, R, T = _check_qrt(Q, R, T)
    K, M = R.shape[-2:]
    A = _check_vector("A", A, M, "M")
    v = _check_vector("v", v, K, "K")
    if rule != "bp" and feedback is None:
        raise invalid("feedback", f"a (K,) or (S, K) vector for rule={rule!r}", None)
    if feedback is not None:
        feedback = _check_vector("feedback", feedback, K, "K")
    given = {"Q": (Q, 2), "R": (R, 2), "T": (T, 2), "A": (A, 1), "v": (v, 1),
             "feedback": (feedback, 1)}
    for name, (x, core) in given.items():
        if x is not None and x.ndim > core + 1:
            raise invalid(name, f"unbatched or with one leading batch axis (S, ...), "
                          f"{core + 1} dimensions at most", _shape(x))
    sizes = {x.shape[0] for x, core in given.values() if x is not None and x.ndim == core + 1}
    sizes.discard(1)
    if len(sizes) > 1:
        raise invalid("Q, R, T, A, v, feedback", "batched with one batch size S (or 1)",
                      f"batch sizes {sorted(sizes)}")
    S = sizes.pop() if sizes else 1

    def batch(x, core):
        return np.ascontiguousarray(np.broadcast_to(x, (S, *x.shape[x.ndim - core:])))

    Q, R, T = batch(Q, 2), batch(R, 2), batch(T, 2)
    A, v = batch(A, 1), batch(v, 1)
    feedback = None if feedback is None else batch(feedback, 1)
    b = v if rule == "bp" else feedback
    return _Problem(Q, R, T, A, v, b, feedback, rule, lr, lr2, sigma, weight_decay)


def order_parameter_derivatives(Q, R, T, A, v, *, lr, rule="bp", feedback=None, sigma=0.0,
                                weight_decay=0.0, lr2=None):
    r"""Time derivatives ``(dQ/dt, dR/dt, dv/dt)`` of the order parameters (exact, N -> inf).

    The teacher-student equations (Saad & Solla 1995; Goldt et al. 2019 for BP, Refinetti
    et al. 2021 for DFA), with student indices i, j, k, l and teacher indices n, m:

    .. math::

        \frac{dR_{in}}{dt} = \eta\, b_i \Big[\sum_m A_m I_3(i, n, m)
                              - \sum_j v_j I_3(i, n, j)\Big] - \kappa R_{in},

        \frac{dQ_{ik}}{dt} = \eta\, b_i \Big[\sum_m A_m I_3(i, k, m)
                              - \sum_j v_j I_3(i, k, j)\Big] + (i \leftrightarrow k)
            + \eta^2 b_i b_k \Big[\sum_{nm} A_n A_m I_4(i,k,n,m)
              - 2\sum_{jn} v_j A_n I_4(i,k,j,n) + \sum_{jl} v_j v_l I_4(i,k,j,l)\Big]
            + \eta^2 \sigma^2 b_i b_k J_2(i, k) - 2\kappa Q_{ik},

        \frac{dv_i}{dt} = \eta_2 \Big[\sum_n A_n I_2(i, n) - \sum_k v_k I_2(i, k)\Big]
                          - \kappa v_i,

    where the field of teacher ``n`` is ``K + n``, ``b = v`` for ``rule="bp"`` and
    ``b = feedback`` (fixed) for ``"dfa"`` and ``"fa"`` (the same rule in two layers),
    :math:`\eta` = ``lr``, :math:`\eta_2` = ``lr2`` (default ``lr``), :math:`\kappa` =
    ``weight_decay`` (per unit time; the SGD step is in ``docs/teacher_student.md``),
    :math:`\sigma` the output noise. ``R`` is the student-teacher overlap (not PFA's
    feedback matrix). Assumes ``N -> inf`` at fixed ``K, M`` and online learning (a fresh
    Gaussian input per step, ``t = steps / N``).

    Inputs as in :func:`integrate`; returns three arrays of shapes (S, K, K), (S, K, M),
    (S, K), with the batch axis S always present.
    """
    p = _problem(Q, R, T, A, v, lr, rule, feedback, sigma, weight_decay, lr2)
    return _derivatives(p.Q, p.R, p.T, p.A, p.v, p.b, p.lr, p.lr2, p.sigma, p.weight_decay)


@dataclass(frozen=True)
class TeacherStudentCurve:
    """A solution of the teacher-student ODEs on a time grid (:func:`integrate`)."""

    t: np.ndarray  # (n_t,) time, steps / N
    eg: np.ndarray  # (S, n_t) generalisation error, 1/2 convention, no noise term
    Q: np.ndarray  # (S, n_t, K, K) student-student overlaps
    R: np.ndarray  # (S, n_t, K, M) student-teacher overlaps (not PFA's feedback matrix)
    v: np.ndarray  # (S, n_t, K) student's second layer
    alignment: np.ndarray  # (S, n_t) cos(v, feedback); NaN where no feedback was given
    n_evaluations: int = 0  # right-hand-side evaluations (of the whole batch) it took


def _on_step_grid(t, dt):
    """The step numbers nearest to the times ``t`` (duplicates dropped)."""
    return np.unique(np.rint(np.asarray(t) / dt).astype(np.int64))


def log_time_grid(t_max, *, per_decade=20, start=1e-2, dt=None) -> np.ndarray:
    """The default time grid of :func:`integrate`: 0 and ``per_decade`` log-spaced
    points per decade from ``min(start, t_max)`` to ``t_max``, for log-log plots.

    With ``dt`` (a simulation's ``1/N``, or Euler's step) the times are rounded to
    multiples of ``dt``, duplicates dropped, so a simulation can record at exactly these
    times and Euler reports them unchanged. Returns an increasing float array.
    """
    t_max = float(check_positive("t_max", t_max, scalar=True))
    start = min(float(check_positive("start", start, scalar=True)), t_max)
    per_decade = check_int("per_decade", per_decade)
    n = int(np.ceil(per_decade * np.log10(t_max / start))) + 1  # 1 when start == t_max
    grid = np.concatenate([[0.0], np.geomspace(start, t_max, n)])
    if dt is None:
        return grid
    dt = float(check_positive("dt", dt, scalar=True))
    return _on_step_grid(grid, dt) * dt


def integrate(Q, R, T, A, v, *, lr, rule="bp", feedback=None, t_max, dt=None, sigma=0.0,
              weight_decay=0.0, lr2=None, t_eval=None, rtol=1e-10, atol=1e-12,
              method="LSODA") -> TeacherStudentCurve:
    r"""Integrate the teacher-student ODEs from the initial order parameters.

    Solves :func:`order_parameter_derivatives` (the equations, exact as ``N -> inf``) from
    ``Q(0), R(0), v(0)`` for the whole batch at once, and reports ``eg``
    (:func:`generalisation_error`), the order parameters and the alignment
    :math:`\cos(v, b) = v \cdot b / (|v| |b|)` on the grid ``t_eval``.

    Parameters
    ----------
    Q, R, T : array_like
        Initial ``Q`` (K, K), student-teacher overlap ``R`` (K, M) (not PFA's feedback
        matrix) and the teacher's ``T`` (M, M), each unbatched or with one leading batch
        axis S: (S, K, K), (S, K, M), (S, M, M). ``T`` is constant.
    A, v : array_like
        Teacher's second layer (M,) or (S, M), constant; student's initial ``v`` (K,) or
        (S, K).
    lr : float
        Learning rate ``eta > 0``: the first layer's SGD rate is ``lr / sqrt(N)``.
    rule : {"bp", "dfa", "fa"}
        ``"dfa"`` and ``"fa"`` (identical in two layers) use ``feedback`` in place of ``v``
        in the first layer's update.
    feedback : array_like, optional
        The fixed feedback vector ``b`` (K,) or (S, K): required for ``"dfa"``/``"fa"``;
        for ``"bp"`` only the contrast ``cos(v, feedback)`` is reported. Without it the
        alignment is NaN.
    t_max : float
        End time (> 0), in units of ``steps / N``.
    dt : float, optional
        Given: forward Euler at this step, each right-hand side evaluated at the state at
        the start of the step (the authors' scheme; ``dt = 1/N`` is theirs); ``t_eval`` is
        rounded to the step grid (duplicates dropped) and the steps stop at its last point
        (``round(t_max / dt) * dt`` for the default grid). None (default):
        ``scipy.integrate.solve_ivp`` with ``method``, ``rtol``, ``atol``, whose curve is
        the ``dt -> 0`` limit (``docs/teacher_student.md`` measures how close).
    sigma : float
        Output-noise standard deviation (enters the ``lr^2`` term of ``dQ``), >= 0.
    weight_decay : float
        ``kappa >= 0`` per unit time: ``dQ -= 2 kappa Q``, ``dR -= kappa R``,
        ``dv -= kappa v`` (the SGD step ``w <- (1 - kappa / N) w + ...``, ``v <- (1 -
        kappa / N) v + ...``).
    lr2 : float, optional
        The second layer's rate ``eta_2 >= 0`` (its SGD rate is ``lr2 / N``); default ``lr``.
    t_eval : array_like, optional
        Increasing times in [0, t_max]; default :func:`log_time_grid` ``(t_max)``: 0 and 20
        log-spaced points per decade from ``min(0.01, t_max)`` to ``t_max``.
    rtol, atol : float
        Tolerances of the adaptive integrator (ignored with ``dt``).
    method : {"LSODA", "DOP853", "RK45", "Radau", "BDF"}
        The adaptive integrator (ignored with ``dt``). LSODA (Adams multistep, switching to
        BDF if the problem turns stiff; the default) takes about a third of DOP853's
        evaluations for the same accuracy on these equations (the benchmark).

    Returns
    -------
    TeacherStudentCurve
        ``t`` (n_t,), ``eg`` (S, n_t), ``Q`` (S, n_t, K, K), ``R`` (S, n_t, K, M), ``v``
        (S, n_t, K), ``alignment`` (S, n_t); the batch axis is always present (S = 1 for
        unbatched inputs).
    """
    p = _problem(Q, R, T, A, v, lr, rule, feedback, sigma, weight_decay, lr2)
    t_max = float(check_positive("t_max", t_max, scalar=True))
    if dt is not None:
        dt = float(check_positive("dt", dt, scalar=True))
        if round(t_max / dt) < 1:
            raise invalid("dt", f"<= t_max = {t_max:g} (at least one step)", dt)
    if t_eval is None:
        t_eval = log_time_grid(t_max)
    else:
        t_eval = np.atleast_1d(np.asarray(check_finite("t_eval", t_eval), dtype=float))
        if t_eval.ndim != 1 or t_eval.size == 0:
            raise invalid("t_eval", "a non-empty 1-d array of times", _shape(t_eval))
        if np.any(np.diff(t_eval) <= 0) or t_eval[0] < 0 or t_eval[-1] > t_max:
            raise invalid("t_eval", f"increasing and within [0, t_max = {t_max:g}]",
                          f"{t_eval.min():g}..{t_eval.max():g}, increasing: "
                          f"{bool(np.all(np.diff(t_eval) > 0))}")
    rtol = float(check_positive("rtol", rtol, scalar=True))
    atol = float(check_positive("atol", atol, scalar=True))
    method = check_choice("method", method, METHODS)

    S, K, M = p.sizes
    sizes = (K * K, K * M, K)

    def unpack(y):  # (S * state,) -> Q (S, K, K), R (S, K, M), v (S, K)
        y = y.reshape(S, -1)
        q, r, w = np.split(y, np.cumsum(sizes)[:-1], axis=-1)
        return q.reshape(S, K, K), r.reshape(S, K, M), w

    def rhs(_t, y):
        q, r, w = unpack(y)
        b = w if p.rule == "bp" else p.b
        dq, dr, dw = _derivatives(q, r, p.T, p.A, w, b, p.lr, p.lr2, p.sigma,
                                  p.weight_decay)
        return np.concatenate([dq.reshape(S, -1), dr.reshape(S, -1), dw], -1).ravel()

    y0 = np.concatenate([p.Q.reshape(S, -1), p.R.reshape(S, -1), p.v], -1).ravel()
    if dt is None:
        from scipy.integrate import solve_ivp  # scipy.integrate only when integrating

        # the draws are independent: the Jacobian is block diagonal, one block per draw;
        # LSODA told its bandwidth estimates it from 2 D - 1 evaluations, not S D (for one
        # draw the dense Jacobian: its banded solver took 1.5x the steps there)
        width = y0.size // S - 1
        band = {"lband": width, "uband": width} if method == "LSODA" and S > 1 else {}
        sol = solve_ivp(rhs, (0.0, t_max), y0, method=method, t_eval=t_eval, rtol=rtol,
                        atol=atol, **band)
        if sol.status != 0:
            raise RuntimeError(f"solve_ivp failed: {sol.message}")
        t, ys, n_evaluations = sol.t, sol.y.T, int(sol.nfev)
    else:
        steps = _on_step_grid(t_eval, dt)
        ys = np.empty((steps.size, y0.size))
        y, done = y0.copy(), 0
        for j, target in enumerate(steps):
            for _ in range(target - done):
                y = y + dt * rhs(None, y)
            done = target
            ys[j] = y
        t, n_evaluations = steps * dt, int(steps[-1])

    n_t = t.size
    q, r, vt = np.split(ys.reshape(n_t, S, -1).swapaxes(0, 1), np.cumsum(sizes)[:-1], axis=-1)
    Qt = q.reshape(S, n_t, K, K)
    # Q is symmetric and its derivative exactly so, but an implicit step's linear solve
    # (LSODA's stiff mode) can leave Q and Q^T an ulp apart: the mean of the two
    Qt = 0.5 * (Qt + np.swapaxes(Qt, -1, -2))
    Rt = r.reshape(S, n_t, K, M)
    a = _error_weights(vt, p.A[:, None, :])
    eg = 0.5 * np.einsum("...a,...ab,...b->...", a,
                         _i2(_blocks(Qt, Rt, p.T[:, None]), K + M), a)
    if p.feedback is None:
        alignment = np.full((S, n_t), np.nan)
    else:
        fb = p.feedback[:, None, :]
        with np.errstate(invalid="ignore", divide="ignore"):
            alignment = np.sum(vt * fb, -1) / (np.linalg.norm(vt, axis=-1)
                                               * np.linalg.norm(fb, axis=-1))
    return TeacherStudentCurve(t=t, eg=eg, Q=Qt, R=Rt, v=vt, alignment=alignment,
                               n_evaluations=n_evaluations)
