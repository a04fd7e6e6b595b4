"""Converted layers: ``torch.nn.Linear`` / ``Conv2d`` whose backward follows a method.

They are subclasses of the torch layers (``isinstance(layer, nn.Linear)`` stays true,
``weight``/``bias`` keep their names in ``state_dict``); the forward is the torch one,
run through the one autograd Function ``FeedbackFn`` with the layer kind's ``ops``. The
method's feedback state (buffers and parameters, see ``methods/``) lives on the layer,
so it follows ``.to()``, ``.double()`` and ``state_dict()``; the method's name and
options are stored as the layer's extra state and checked on ``load_state_dict``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._rng import torch_generator
from .functional import Conv2dOps, FeedbackFn, LinearOps
from .methods import Method, get_method

__all__ = ["FeedbackConv2d", "FeedbackLayer", "FeedbackLinear"]

_LINEAR_OPS = LinearOps()


class FeedbackLayer:
    """Mixin holding the method, its state and the bookkeeping the metrics need."""

    method: Method
    feedback_used: bool | None  # did the last forward (with grad) need a gradient at its input?

    def _setup(self, method: Method, generator: torch.Generator | None) -> None:
        self.method = method
        self.feedback_used = None
        method.init_state(self, generator)

    def set_method(self, method: str | Method, *, rng=None, **options) -> None:
        """Replace the method; the old feedback state is removed and fresh state drawn."""
        self.method.clear_state(self)
        self._setup(get_method(method, **options), torch_generator(rng))

    def feedback_parameters(self) -> list[nn.Parameter]:
        """The feedback parameters the optimiser trains (KP/WM ``feedback``, PFA ``pfa_R``)."""
        return [getattr(self, n) for n in self.method.learned]

    def feedback_state(self) -> dict[str, Tensor]:
        """Every feedback tensor the method keeps on this layer, ``{name: tensor}``
        (buffers and parameters, as registered; the empty ones left out)."""
        out = {}
        for name in self.method.state_names:
            value = getattr(self, name, None)
            if value is not None:
                out[name] = value
        return out

    def effective_feedback(self) -> Tensor | None:
        """The kernel that multiplies ``delta`` on its way down, in W's layout (or None)."""
        return self.method.effective_feedback(self)

    def _note_input(self, x: Tensor) -> None:
        if torch.is_grad_enabled():
            self.feedback_used = bool(x.requires_grad)

    def get_extra_state(self):
        state = {"method": self.method.name, "options": self.method.options()}
        scalars = self.method.scalar_state(self)
        if scalars:  # factored PFA's decay factor (Python floats: no dtype cast, no sync)
            state["scalars"] = scalars
        return state

    def set_extra_state(self, state) -> None:
        mine = {"method": self.method.name, "options": self.method.options()}
        theirs = {k: state.get(k) for k in mine}
        if theirs != mine:
            raise ValueError(
                f"`state_dict` was saved from method {state.get('method')!r} with options "
                f"{state.get('options')}, but this layer uses {mine['method']!r} with "
                f"{mine['options']}."
            )
        # called by load_state_dict after the tensors are copied
        self.method.load_scalar_state(self, state.get("scalars", {}))

    def __setstate__(self, state) -> None:  # copy.deepcopy and pickle
        super().__setstate__(state)
        method = self.__dict__.get("method")
        if method is not None:
            method.restored(self)

    def extra_repr(self) -> str:  # type: ignore[override]
        opts = ", ".join(f"{k}={v!r}" for k, v in self.method.options().items())
        return super().extra_repr() + f", method={self.method.name!r}" + (
            f" ({opts})" if opts else ""
        )


class FeedbackLinear(FeedbackLayer, nn.Linear):
    """``nn.Linear`` (inputs of any leading shape) trained by a feedback-alignment method."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 method: str | Method = "bp", rng=None, device=None, dtype=None, **options):
        nn.Linear.__init__(self, in_features, out_features, bias, device=device, dtype=dtype)
        self._setup(get_method(method, **options), torch_generator(rng))

    @classmethod
    def from_module(cls, module: nn.Linear, method: Method,
                    generator: torch.Generator | None = None) -> FeedbackLinear:
        """Wrap an existing layer; its ``weight``/``bias`` Parameters are reused (not copied)."""
        new = cls.__new__(cls)
        nn.Linear.__init__(new, module.in_features, module.out_features, bias=False,
                           device="meta")
        new.weight = module.weight
        new.bias = module.bias
        new.train(module.training)
        new._setup(method, generator)
        return new

    def forward(self, x: Tensor) -> Tensor:
        self._note_input(x)
        rule, state = self.method.rule_and_state(self)
        return FeedbackFn.apply(x, self.weight, self.bias, (_LINEAR_OPS, rule), *state)


class FeedbackConv2d(FeedbackLayer, nn.Conv2d):
    """``nn.Conv2d`` (any stride, padding, dilation, groups, padding mode) with a method.

    Non-zero padding modes and ``padding='same'`` are applied as an explicit ``F.pad``
    (ordinary autograd, as torch itself does) before a convolution with padding 0.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros", *,
                 method: str | Method = "bp", rng=None, device=None, dtype=None, **options):
        nn.Conv2d.__init__(self, in_channels, out_channels, kernel_size, stride, padding,
                           dilation, groups, bias, padding_mode, device=device, dtype=dtype)
        self._setup(get_method(method, **options), torch_generator(rng))

    @classmethod
    def from_module(cls, module: nn.Conv2d, method: Method,
                    generator: torch.Generator | None = None) -> FeedbackConv2d:
        new = cls.__new__(cls)
        nn.Conv2d.__init__(new, module.in_channels, module.out_channels, module.kernel_size,
                           module.stride, module.padding, module.dilation, module.groups,
                           False, module.padding_mode, device="meta")
        new.weight = module.weight
        new.bias = module.bias
        new.train(module.training)
        new._setup(method, generator)
        return new

    def _ops_and_input(self, x: Tensor) -> tuple[Conv2dOps, Tensor]:
        if self.padding_mode != "zeros" or isinstance(self.padding, str):
            mode = "constant" if self.padding_mode == "zeros" else self.padding_mode
            if any(self._reversed_padding_repeated_twice):
                x = F.pad(x, self._reversed_padding_repeated_twice, mode=mode)
            padding = (0, 0)
        else:
            padding = tuple(self.padding)
        return Conv2dOps(tuple(self.stride), padding, tuple(self.dilation), self.groups), x

    def forward(self, x: Tensor) -> Tensor:
        self._note_input(x)
        if x.dim() == 3:  # unbatched (C, H, W), as nn.Conv2d accepts
            return self.forward(x.unsqueeze(0)).squeeze(0)
        ops, x = self._ops_and_input(x)
        rule, state = self.method.rule_and_state(self)
        return FeedbackFn.apply(x, self.weight, self.bias, (ops, rule), *state)
