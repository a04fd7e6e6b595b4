"""Argument checks shared by every public function.

One message form everywhere: "`name` must be <condition>, got <value>." Checks run once,
at the top of public functions, never inside hot loops. Each returns the validated value
(converted where that is lossless) so a call site reads ``n = check_int("n_out", n_out)``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = [
    "check_at_least",
    "check_choice",
    "check_finite",
    "check_int",
    "check_int_array",
    "check_momentum",
    "check_positive",
    "check_probability",
    "invalid",
]


def invalid(name: str, condition: str, value: Any) -> ValueError:
    """The error of the one message form: "`name` must be <condition>, got <value>."
    (returned, for the caller to raise)."""
    return ValueError(f"`{name}` must be {condition}, got {value!r}.")


def check_finite(name: str, value: Any, *, scalar: bool = False) -> np.ndarray | float:
    """Return ``value`` as float (scalar) or float array; reject NaN/inf and non-numbers."""
    try:
        if value is None or np.asarray(value).dtype.kind in "bSU":  # never silently numbers
            raise TypeError
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise invalid(name, "a real number or array of real numbers", value) from None
    if scalar and arr.ndim != 0:
        raise invalid(name, "a real number (a scalar)", value)
    if not np.all(np.isfinite(arr)):
        raise invalid(name, "finite (no NaN or inf)", value)
    return float(arr) if arr.ndim == 0 else arr


def check_positive(name: str, value: Any, *, allow_zero: bool = False,
                   scalar: bool = False) -> np.ndarray | float:
    """Finite and > 0 (or >= 0 with ``allow_zero``), scalar or array (scalar only with
    ``scalar=True``)."""
    arr = check_finite(name, value, scalar=scalar)
    ok = np.all(np.asarray(arr) >= 0) if allow_zero else np.all(np.asarray(arr) > 0)
    if not ok:
        raise invalid(name, ">= 0" if allow_zero else "> 0", value)
    return arr


def check_int(name: str, value: Any, *, minimum: int = 1) -> int:
    """An integer (bool excluded; integral floats such as 100.0 accepted) that is >= minimum."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise invalid(name, f"an integer >= {minimum}", value)
    if isinstance(value, numbers.Integral):
        ivalue = int(value)
    else:
        if not math.isfinite(value) or value != int(value):
            raise invalid(name, f"an integer >= {minimum}", value)
        ivalue = int(value)
    if ivalue < minimum:
        raise invalid(name, f"an integer >= {minimum}", value)
    return ivalue


def check_int_array(name: str, value: Any, *, minimum: int = 1) -> np.ndarray | int:
    """Integers >= minimum, scalar or integer-valued array (integral floats accepted, bool
    not): for functions vectorised over sizes or step counts. Returns a Python int, an int64
    array, or a float64 array where a value is past int64 (never a silent wrap)."""
    if isinstance(value, bool) or np.asarray(value).dtype == bool:
        raise invalid(name, f"an integer >= {minimum} (or an array of them)", value)
    a = np.asarray(check_finite(name, value))
    if not (np.all(a == np.round(a)) and np.all(a >= minimum)):
        raise invalid(name, f"an integer >= {minimum} (or an array of them)", value)
    if a.ndim and not np.all(a < 2.0**63):  # astype(int64) would wrap silently
        return a  # float64: the sizes' own scale (callers compute in floats past 2**53)
    return int(a) if a.ndim == 0 else a.astype(np.int64)


def check_at_least(name: str, value: Any, minimum: float) -> np.ndarray | float:
    """Finite and >= ``minimum``, scalar or array."""
    arr = check_finite(name, value)
    if not np.all(np.asarray(arr) >= minimum):
        raise invalid(name, f">= {minimum:g}", value)
    return arr


def check_momentum(value: Any, name: str = "momentum") -> np.ndarray | float:
    """A momentum coefficient in [0, 1) (SGD's ``mu``, Adam's betas), scalar or array."""
    arr = check_positive(name, value, allow_zero=True)
    if not np.all(np.asarray(arr) < 1):
        raise invalid(name, "in [0, 1)", value)
    return arr


def check_probability(name: str, value: Any, *, open_left: bool = True) -> float:
    """A scalar in (0, 1] (or [0, 1] with ``open_left=False``)."""
    v = check_finite(name, value)
    if np.ndim(v) != 0:
        raise invalid(name, "a scalar", value)
    lo_ok = v > 0 if open_left else v >= 0
    if not (lo_ok and v <= 1):
        raise invalid(name, "in (0, 1]" if open_left else "in [0, 1]", value)
    return float(v)


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """One of ``choices``; the message lists them."""
    choices = list(choices)
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {', '.join(map(repr, choices))}; got {value!r}.")
    return value
