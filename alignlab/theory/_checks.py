"""Array-valued argument checks for the theory functions (same message form as ``_validate``).

``alignlab._validate.check_int`` takes scalars only; the closed forms are vectorised over
sizes too (e.g. every ``n_mid`` of Figure 3 at once), so the array versions live here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from alignlab._validate import check_finite, check_positive

__all__ = ["check_at_least", "check_momentum", "check_sizes", "check_steps"]


def _fail(name: str, condition: str, value: Any) -> ValueError:
    return ValueError(f"`{name}` must be {condition}, got {value!r}.")


def _integers(name: str, value: Any, minimum: int) -> np.ndarray | int:
    if isinstance(value, bool) or np.asarray(value).dtype == bool:
        raise _fail(name, f"an integer >= {minimum} (or an array of them)", value)
    arr = check_finite(name, value)
    a = np.asarray(arr)
    if not (np.all(a == np.round(a)) and np.all(a >= minimum)):
        raise _fail(name, f"an integer >= {minimum} (or an array of them)", value)
    return int(a) if a.ndim == 0 else a.astype(np.int64)


def check_sizes(name: str, value: Any) -> np.ndarray | int:
    """A layer size: integer >= 1, scalar or integer-valued array (integral floats accepted)."""
    return _integers(name, value, 1)


def check_steps(name: str, value: Any) -> np.ndarray | int:
    """A step count: integer >= 0, scalar or integer-valued array."""
    return _integers(name, value, 0)


def check_at_least(name: str, value: Any, minimum: float) -> np.ndarray | float:
    """Finite and >= ``minimum``, scalar or array."""
    arr = check_finite(name, value)
    if not np.all(np.asarray(arr) >= minimum):
        raise _fail(name, f">= {minimum:g}", value)
    return arr


def check_momentum(value: Any) -> np.ndarray | float:
    """SGD momentum ``mu`` in [0, 1), scalar or array."""
    arr = check_positive("momentum", value, allow_zero=True)
    if not np.all(np.asarray(arr) < 1):
        raise _fail("momentum", "in [0, 1)", value)
    return arr
