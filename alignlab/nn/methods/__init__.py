"""Credit-assignment methods: small frozen dataclasses in a name -> class registry.

One module per family; each method's class (and its module docstring) says everything
about that method:

=================  ==========================================  ================
module             methods                                     feedback
=================  ==========================================  ================
``fixed.py``       BP, FA, uSF, brSF, frSF                     never learns
``direct.py``      DFA                                         output error, fixed
``learned.py``     KP, WM                                      a learned kernel
``pfa.py``         PFA, PFA-o, PFA-id, sparse PFA              ``R B``, ``R`` learns
=================  ==========================================  ================

``base.py`` holds :class:`Method`, the hooks and class-level properties through which
the rest of ``alignlab.nn`` talks to a method (it never asks for a method's name).
Each method also says what theory predicts for its layers (``alignment_theory``: an
object of :mod:`alignlab.nn.theory`), which is all ``alignlab compare`` asks.

Adding a method: subclass ``Method`` in the family's module (or a new one), set ``name``
and the properties that apply, implement ``init_state``/``rule_and_state``/
``effective_feedback`` (and any hook it needs, ``alignment_theory`` where a theory
exists), and add the class to ``METHODS`` here.
"""

from __future__ import annotations

from dataclasses import fields

from ..._registry import Registry
from .base import Method, xavier_std
from .direct import DFA
from .fixed import BP, FA, SignBatchRandom, SignFixedRandom, SignUniform
from .learned import KP, WM
from .pfa import PFA, ExplicitR, FactoredR, PFAIdentity, PFAOrthogonal, PFASparse

__all__ = [
    "BP",
    "DFA",
    "FA",
    "KP",
    "METHODS",
    "PFA",
    "ExplicitR",
    "FactoredR",
    "Method",
    "PFAIdentity",
    "PFAOrthogonal",
    "PFASparse",
    "SignBatchRandom",
    "SignFixedRandom",
    "SignUniform",
    "WM",
    "get_method",
    "xavier_std",
]

#: name -> Method class
METHODS: Registry[type[Method]] = Registry("method", {
    cls.name: cls
    for cls in (
        BP, FA, DFA, SignUniform, SignBatchRandom, SignFixedRandom, KP, WM,
        PFA, PFAOrthogonal, PFAIdentity, PFASparse,
    )
})


def get_method(method: str | Method, **options) -> Method:
    """A method instance from its name (``METHODS``) and options, or a ready instance.

    Unknown names or options, and option values of the wrong type or range, raise
    ``ValueError`` naming the argument (and listing the valid names or options).
    """
    if isinstance(method, Method):
        if options:
            raise ValueError(
                f"`options` must be empty when `method` is an instance, got {sorted(options)}."
            )
        return method
    cls = METHODS[method]
    valid = sorted(f.name for f in fields(cls))
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(
            f"`{unknown[0]}` is not an option of method {method!r}; valid options: "
            f"{', '.join(valid) if valid else '(none)'}."
        )
    return cls(**options)
