"""TOML: the package's one reader and one writer, side by side.

Reading is the standard library's ``tomllib`` (Python >= 3.11) or, on Python 3.10 (the
declared floor), the ``tomli`` package it came from (a dependency there). Writing covers
what alignlab writes: tables of scalars and lists (configs, a run's ``config.toml``);
``tomllib`` only reads.

>>> from alignlab._toml import dumps_toml, loads_toml
>>> loads_toml(dumps_toml({"optim": {"lr": 0.1, "lr_milestones": [20, 30]}}))
{'optim': {'lr': 0.1, 'lr_milestones': [20, 30]}}
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

__all__ = ["TOMLDecodeError", "dumps_toml", "load_toml", "loads_toml", "toml_value"]

TOMLDecodeError = tomllib.TOMLDecodeError


def loads_toml(text: str) -> dict[str, Any]:
    """The tables of the TOML document ``text`` (raises :class:`TOMLDecodeError`)."""
    return tomllib.loads(text)


def load_toml(path: str | Path, *, name: str, where: str = "") -> dict[str, Any]:
    """The tables of the TOML file ``path``.

    A file that cannot be read (missing, a folder, unreadable) or is not TOML raises one
    ``ValueError`` naming ``name``, the argument or key that gave the path (``CONFIG``,
    ``base``, ``config.toml``), and ``where`` (e.g. ``" in 'a.toml'"``) after it:
    "`CONFIG` must be a TOML file, got the folder 'configs/mnist'."
    """
    subject = f"`{name}`{where}"
    shown = repr(str(path))
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ValueError(f"{subject} must be an existing TOML file, got {shown}.") from None
    except IsADirectoryError:
        raise ValueError(f"{subject} must be a TOML file, got the folder {shown}.") from None
    except OSError as exc:  # permissions, a device, ...
        raise ValueError(f"{subject} must be a readable TOML file, got {shown} "
                         f"({exc.strerror or exc}).") from None
    except TOMLDecodeError as exc:
        raise ValueError(f"{subject} must be valid TOML, got {shown} ({exc}).") from None
    except UnicodeDecodeError:
        raise ValueError(f"{subject} must be valid TOML, got {shown} (not UTF-8 text)."
                         ) from None


def toml_value(value: Any) -> str:
    """``value`` (bool, int, float, str, path, or a list/tuple of them) as a TOML literal."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        text = repr(value)
        return text if any(c in text for c in ".en") else text + ".0"
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string (same escapes)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Path):
        return json.dumps(str(value))
    raise ValueError(f"`value` must be a TOML scalar or list, got {value!r}.")


def dumps_toml(tables: Mapping[str, Mapping[str, Any]], header: str = "") -> str:
    """``{table: {key: value}}`` as TOML text (``None`` values are left out), after
    ``header`` as ``#`` comment lines."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    for name, table in tables.items():
        if lines:
            lines.append("")
        lines.append(f"[{name}]")
        for key, value in table.items():
            if value is not None:
                k = key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)
                lines.append(f"{k} = {toml_value(value)}")
    return "\n".join(lines) + "\n"
