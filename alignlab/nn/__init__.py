"""Feedback-alignment layers: autograd Functions, methods, conversion and metrics.

Usage::

    model = alignlab.convert(mlp, "pfa", expansion_ratio=10)      # every Linear/Conv2d
    opt = torch.optim.SGD(alignlab.nn.param_groups(model, lr=0.01, weight_decay=1e-4),
                          momentum=0.9)
    print(alignlab.alignment(model))                              # W vs effective feedback
    print(alignlab.nn.update_angles(model, loss_fn, x, y))        # vs BP on the same batch

Methods (``METHODS``): 'bp', 'fa', 'dfa', 'usf', 'brsf', 'frsf', 'kp', 'wm', 'pfa',
'pfa-o', 'pfa-id', 'pfa-sparse'. PFA's ``state='factored'`` stores no ``R``
(Proposition 1) and trains with ``make_optimizer(model, 'sgd', ...)`` or
``attach_factored_pfa``. See ``docs/methods.md`` and ``docs/nn.md``.

Layout (each module imports only from the ones above it):

* ``functional.py``: the one autograd Function ``FeedbackFn``, the per-kind ``ops`` and the
  backward *rules*;
* ``methods/``: one module per family (``fixed``, ``direct``, ``learned``, ``pfa``), the
  ``Method`` base class and its hooks in ``methods/base.py``;
* ``layers.py``: ``FeedbackLinear`` / ``FeedbackConv2d``;
* ``convert.py``: ``convert``, the conversion report, ``converted_layers``,
  ``check_state_memory`` (the feedback state against the memory budget of
  ``alignlab.sim.memory``);
* ``metrics.py`` and ``optim.py``: alignment metrics, optimiser groups and step hooks.
"""

from .convert import (
    ConversionReport,
    check_state_memory,
    conversion_report,
    convert,
    converted_layers,
)
from .functional import DFAContext, FeedbackFn
from .layers import FeedbackConv2d, FeedbackLayer, FeedbackLinear
from .methods import METHODS, Method, get_method
from .metrics import alignment, angle_deg, bp_twin, norm_ratio, update_angles
from .optim import attach_factored_pfa, make_optimizer, mirror_step, param_groups

__all__ = [
    "METHODS",
    "ConversionReport",
    "DFAContext",
    "FeedbackConv2d",
    "FeedbackFn",
    "FeedbackLayer",
    "FeedbackLinear",
    "Method",
    "alignment",
    "angle_deg",
    "attach_factored_pfa",
    "bp_twin",
    "check_state_memory",
    "conversion_report",
    "convert",
    "converted_layers",
    "get_method",
    "make_optimizer",
    "mirror_step",
    "norm_ratio",
    "param_groups",
    "update_angles",
]
