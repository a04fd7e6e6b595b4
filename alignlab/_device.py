"""Devices, parsed once: what a device setting may say, and the torch device it means.

``train.device``, ``initial_model(config, device)``, the simulators' ``device`` and
``alignlab figure3 --device`` all go through here:

* :func:`check_device_name` checks a config's spelling without torch (``'auto'``,
  ``'cpu'``, ``'cuda'``, ``'cuda:N'``, ``'mps'``), so a config written for a GPU machine
  loads anywhere;
* :func:`resolve_device` turns a name (or a ``torch.device``) into the ``torch.device``
  to use here: ``'auto'`` is CUDA when available, else the CPU; a CUDA device that this
  machine lacks is a one-line ``ValueError`` naming the setting.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["DEVICE_NAMES", "check_device_name", "resolve_device"]

#: the device names a config may give
DEVICE_NAMES = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


def check_device_name(value: Any, name: str = "device") -> str:
    """``value`` if it is a device name of :data:`DEVICE_NAMES`, else a ``ValueError``."""
    if not isinstance(value, str) or not DEVICE_NAMES.fullmatch(value):
        raise ValueError(f"`{name}` must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got "
                         f"{value!r}.")
    return value


def resolve_device(value: Any, name: str = "device"):
    """The ``torch.device`` that ``value`` (a name, ``'auto'``, or a ``torch.device``)
    means on this machine; CUDA must be available when asked for."""
    import torch

    if isinstance(value, str) and value == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(value)
    except (TypeError, RuntimeError, ValueError):
        raise ValueError(f"`{name}` must be a torch device such as 'cpu' or 'cuda', got "
                         f"{value!r}.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"`{name}` must be an available device, got {value!r} "
                         "(torch.cuda.is_available() is False).")
    return device
