"""How much memory one simulated sample needs, the budget, and the one refusal.

The simulators cut their samples into chunks of at most ``max_chunk_bytes``, but one
sample cannot be cut: ``n_mid = 10^11`` (``r = 10^9`` at ``n_out = 100``) needs a 400 GB
``B`` whatever the chunk size. Every public simulator therefore checks, before it
allocates anything, that one sample fits in the budget, and refuses with one line
naming the argument that made it large:

    ValueError: `n_mid` must be small enough for one sample to fit in memory
    (4e+10 bytes needed, budget 1.3e+10 bytes; ...), got 100000000000.

* :func:`sample_bytes`: peak bytes of one sample (its random draws, ``M = B^T B``,
  ``M W`` and the angle's temporaries, the eigensolver's copy), exactly the accounting
  the chunking engine uses (:mod:`alignlab.sim.engine`);
* :func:`memory_budget`: ``ALIGNLAB_MEMORY_BUDGET`` (bytes) if set, else half the
  physical memory (or of the container's limit, if lower; or of the GPU's memory for
  a CUDA device);
* :func:`check_memory`: the check and its message; :func:`check_sample` applies it to one
  sample, naming the size that makes it large (what the simulators and Figure 3 call).

The estimate counts the arrays the code allocates (and the temporaries of the libraries
it calls: the eigensolver's copy, the angle's float64 work, ``np.tril_indices``), not
the allocator's or the BLAS library's fixed overhead (a few MB).
``tests/sim/test_sim_memory.py`` measures the peak resident memory of one sample
(``VmHWM``, with glibc's mmap threshold fixed so freed blocks go back to the OS) and
finds the estimate within 1% for B-, W-, M-dominated, Wishart, orthogonal and literal
samples of 40-120 MB; the test allows a factor 1.5 either way.
"""

from __future__ import annotations

import math
import os
from typing import Any

from alignlab._validate import check_choice, check_int

__all__ = [
    "BUDGET_ENV",
    "BUDGET_FRACTION",
    "check_memory",
    "check_sample",
    "footprint",
    "memory_budget",
    "sample_bytes",
]

BUDGET_ENV = "ALIGNLAB_MEMORY_BUDGET"  # bytes, e.g. 8e9; overrides the default below
BUDGET_FRACTION = 0.5  # of physical memory: room for the OS, the caller's own arrays
_FALLBACK_BUDGET = 4 * 2**30  # where the physical memory cannot be read (not POSIX)
_METHODS = ("direct", "wishart", "literal")
_UNSET: Any = object()


def _finish_copies(ensemble: Any) -> int:
    """Extra one-sample-sized arrays the ensemble's ``finish_`` allocates (QR for Haar)."""
    if ensemble is None:
        return 0
    from alignlab.sim.ensembles import resolve_ensemble

    return resolve_ensemble("ensemble", ensemble).finish_copies


def footprint(n_out: int, n_in: int, n_mid: int, *, itemsize: int = 4,
              method: str = "direct", ensemble: Any = None,
              w_ensemble: Any = None) -> tuple[int, int]:
    """``(draw_bytes, work_bytes)`` of one sample (no validation: internal).

    ``draw_bytes``: the buffers the random numbers are drawn into (``B`` or its Bartlett
    factor, and ``W``); the engine double-buffers these when two fit in a chunk.
    ``work_bytes``: the peak of what is computed from them, at the same time.
    """
    it = itemsize
    bw = n_out * n_in  # entries of W (and of M W, the path P^T)
    mm = n_out * n_out  # entries of M = B^T B
    # the angle (alignlab._linalg.angle_deg) works in float64: W and P^T converted,
    # one product temporary and the orthogonal part: 4 arrays of 8 bytes at its peak
    angle = 4 * 8 * bw
    eig = it * mm  # torch.linalg.eigvalsh copies M (LAPACK overwrites its input)
    w_finish = it * bw * _finish_copies(w_ensemble)
    if method == "direct":
        draw = it * (n_mid * n_out + bw)
        finish = max(it * n_mid * n_out * _finish_copies(ensemble), w_finish)
        # finish_ of B and W (one after the other), then M with eig or (M W, angle)
        work = max(finish, it * mm + max(eig, it * bw + angle))
    elif method == "wishart":
        # the Bartlett factor L is float64 (numpy); for n_mid < n_out, B (n_mid x n_out)
        # is drawn instead, never larger than L: either way independent of n_mid
        draw = 8 * mm + it * bw
        # kept while drawing: np.tril_indices (two int64 arrays of mm/2); while filling, a
        # float64 temporary of mm/2 normals; then L in the dtype, M, and eig or (M W, angle)
        work = 8 * mm + max(4 * mm, w_finish, 2 * it * mm + max(eig, it * bw + angle))
    else:  # 'literal': R = (B W)^T and P = R B formed, one sample at a time
        draw = it * (n_mid * n_out + bw)
        work = it * (n_mid * n_in + 2 * bw + 2 * mm) + 8 * n_out  # R, P, W*P^T, B^T B
    return draw, work


def sample_bytes(n_out: int, n_in: int, n_mid: int, *, itemsize: int = 4,
                 method: str = "direct", ensemble: Any = None, w_ensemble: Any = None) -> int:
    """Peak bytes that one sample of the converged-PFA simulators needs.

    Parameters
    ----------
    n_out, n_in, n_mid : int
        Layer sizes (``W`` is ``(n_out, n_in)``, ``B`` is ``(n_mid, n_out)``).
    itemsize : int
        Bytes per number: 4 for float32 (the default dtype), 8 for float64.
    method : {'direct', 'wishart', 'literal'}
        'direct': ``B``, ``W``, ``M = B^T B``, then the eigensolver's copy of ``M`` or
        ``M W`` with the angle's float64 temporaries. 'wishart': the Bartlett factor
        (``n_out x n_out``) instead of ``B``, so the result does not depend on ``n_mid``.
        'literal': :func:`~alignlab.sim.literal_pfa_sample`, which also forms
        ``R`` (``n_in x n_mid``) and ``P``.
    ensemble, w_ensemble : str or Ensemble, optional
        The laws of ``B`` and ``W``, if their sampling needs workspace ('orthogonal': the
        QR factor and its sign-fixed copy, two more arrays of the matrix's size).

    Returns
    -------
    int
        Bytes. Sizes are Python ints, so the product cannot overflow (``n_mid = 10^11``
        gives ``4.0e13``).
    """
    n_out = check_int("n_out", n_out)
    n_in = check_int("n_in", n_in)
    n_mid = check_int("n_mid", n_mid)
    itemsize = check_int("itemsize", itemsize)
    method = check_choice("method", method, _METHODS)
    draw, work = footprint(n_out, n_in, n_mid, itemsize=itemsize, method=method,
                           ensemble=ensemble, w_ensemble=w_ensemble)
    return draw + work


def _physical_memory() -> int | None:
    """Physical memory in bytes (``os.sysconf``), lowered to a cgroup v2 limit if any."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX, or the names are unknown
        return None
    try:
        with open("/sys/fs/cgroup/memory.max") as fh:
            limit = fh.read().strip()
        if limit.isdigit():
            total = min(total, int(limit))
    except OSError:
        pass
    return total if total > 0 else None


def memory_budget(device: Any = None) -> int:
    """The memory a simulation may use, in bytes.

    ``ALIGNLAB_MEMORY_BUDGET`` if set (a number of bytes, ``8e9`` allowed), else
    ``BUDGET_FRACTION`` (half) of the physical memory, or of the container's cgroup
    limit if that is lower; 4 GiB where neither can be read. With a CUDA ``device``
    (where the simulators keep their arrays), half of that device's memory instead.
    """
    raw = os.environ.get(BUDGET_ENV)
    if raw is not None and raw.strip():
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value >= 1):
            raise ValueError(f"`{BUDGET_ENV}` must be a number of bytes >= 1, got {raw!r}.")
        return int(value)
    if device is not None and str(device).startswith("cuda"):
        import torch

        total = torch.cuda.get_device_properties(torch.device(device)).total_memory
        return int(BUDGET_FRACTION * total)
    total = _physical_memory()
    return _FALLBACK_BUDGET if total is None else int(BUDGET_FRACTION * total)


def check_memory(name: str, nbytes: int, budget: int | None = None, *, value: Any = _UNSET,
                 what: str = "one sample", device: Any = None) -> None:
    """Refuse a request that needs more than ``budget`` bytes (default :func:`memory_budget`).

    Raises ``ValueError("`name` must be small enough for one sample to fit in memory
    (1.2e+12 bytes needed, budget 1.3e+10 bytes; ...), got 1e9.")``.

    Parameters
    ----------
    name : str
        The argument (or CLI flag) that made the request large: the message names it.
    nbytes : int
        Bytes needed (e.g. :func:`sample_bytes`).
    budget : int, optional
        Bytes allowed; ``None`` reads :func:`memory_budget` (and the message says how to
        change it).
    value : optional
        The argument's value, shown after "got"; a string is shown as it is (so a CLI
        can pass the flag's text), anything else by ``repr``.
    what : str
        What must fit: "one sample" (default) or e.g. "the results".
    device : optional
        Where the arrays will live, for the default budget (see :func:`memory_budget`).
    """
    hint = ""
    if budget is None:
        budget = memory_budget(device)
        hint = f"; set {BUDGET_ENV} to change it"
    if nbytes <= budget:
        return
    tail = "." if value is _UNSET else f", got {value if isinstance(value, str) else repr(value)}."
    raise ValueError(f"`{name}` must be small enough for {what} to fit in memory "
                     f"({_sci(nbytes)} bytes needed, budget {budget:.2g} bytes{hint}){tail}")


def _sci(n) -> str:
    """``n`` as ``1.2e+13``, also for an integer beyond float's range (``1e+400``)."""
    try:
        return f"{n:.2g}"
    except OverflowError:  # an int too large for a float
        digits = str(int(n))
        return f"{digits[0]}.{digits[1]}e+{len(digits) - 1}"


def check_sample(n_out: int, n_in: int, n_mid: int, *, itemsize: int = 4,
                 method: str = "direct", ensemble: Any = None, w_ensemble: Any = None,
                 n_mid_alias: tuple[str, Any] | None = None,
                 device: Any = None) -> tuple[int, int]:
    """Refuse one sample that does not fit :func:`memory_budget`; return its
    :func:`footprint` ``(draw_bytes, work_bytes)`` (sizes already validated).

    The message names the largest size that enters the sample (``n_out``, ``n_in`` or,
    except for 'wishart', ``n_mid``); ``n_mid_alias = (name, value)`` names the caller's
    argument that set ``n_mid`` instead (``expansion_ratios``, ``--ratios``, ...).
    """
    draw, work = footprint(n_out, n_in, n_mid, itemsize=itemsize, method=method,
                           ensemble=ensemble, w_ensemble=w_ensemble)
    sizes = {"n_out": n_out, "n_in": n_in} | ({} if method == "wishart" else {"n_mid": n_mid})
    name = max(sizes, key=sizes.__getitem__)
    name, value = n_mid_alias if name == "n_mid" and n_mid_alias else (name, sizes[name])
    check_memory(name, draw + work, value=value, device=device)
    return draw, work
