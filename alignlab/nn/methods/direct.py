"""DFA, direct feedback alignment (Nokland 2016): the output error reaches every layer.

Each converted layer owns a fixed ``dfa_B`` (``(output_size, n_in)``; conv
``(output_size, C_in)``, tiled over space and divided by H*W, as a global average pool
would) and sends ``e @ dfa_B`` to its input in place of ``W^T delta``, ``e`` being the
error at the network's output. Autograd then applies the activation derivative (and any
BatchNorm) on the way to the layer below, which is Nokland's
``delta_l = (B_l e) * f'(a_l)``; the output layer's own ``delta`` is ``e`` exactly.

The output error is captured by a :class:`~alignlab.nn.functional.DFAContext`, a forward
hook on the model's root that :meth:`DFA.install` puts there when ``convert`` has
converted the model (and :meth:`DFA.uninstall` removes when it is converted again).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

from torch import nn

from ..._validate import check_choice, check_int
from ..functional import DFAContext, DirectFeedback
from ..theory import AlignmentTheory
from .base import Method, drawn_bytes, layer_groups, random_entries, set_buffer

__all__ = ["DFA"]


@dataclass(frozen=True)
class DFA(Method):
    """Direct feedback alignment: ``B_l e`` (output error ``e``) in place of ``W^T delta``.

    ``output_size``: the size of the output whose error is broadcast; ``convert`` fills
    it in with the ``out_features`` of the model's last ``nn.Linear`` (in module order)
    when it is None. ``scale``: the SD of ``dfa_B``'s Gaussian entries, 'xavier' (default,
    ``sqrt(2 / (output_size + n_in))``, Glorot on ``dfa_B``'s own shape as FA's feedback and
    BioTorch's DFA use) or 'unit' (``1/sqrt(output_size)``, so ``B_l e`` has the mean square
    of ``e``). With 'unit' the first updates of a 512-wide MLP are about 6x BP's and the
    paper's MNIST settings (SGD lr 0.01, momentum 0.9) diverge in the first epoch.
    """

    name: ClassVar[str] = "dfa"
    measure: ClassVar[str] = "none"
    state_names: ClassVar[tuple[str, ...]] = ("dfa_B",)
    output_size: int | None = None
    scale: str = "xavier"

    def __post_init__(self):
        if self.output_size is not None:
            check_int("output_size", self.output_size)
        check_choice("scale", self.scale, ("xavier", "unit"))

    def resolve(self, model):
        if self.output_size is not None:
            return self
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        if not linears:
            raise ValueError(
                "`output_size` must be given for 'dfa' when the model has no nn.Linear "
                "to infer it from, got None."
            )
        return dataclasses.replace(self, output_size=linears[-1].out_features)

    def install(self, model, layers):
        """Capture the output error: one :class:`DFAContext` on the root, shared by ``layers``."""
        context = DFAContext()
        for layer in layers:
            layer.dfa_context = context
        # stored without its handle: a handle holds a weakref that deepcopy would not follow
        model.register_forward_hook(context)

    def uninstall(self, model):
        for key, hook in list(model._forward_hooks.items()):
            if isinstance(hook, DFAContext):
                del model._forward_hooks[key]

    def state_bytes(self, layer):
        n_in = layer.weight.shape[1] * layer_groups(layer)
        return drawn_bytes((self.output_size or 0) * n_in, layer.weight)

    def init_state(self, layer, generator):
        if self.output_size is None:
            raise ValueError(
                "`output_size` must be given for 'dfa' (the size of the network output whose "
                "error is broadcast), got None."
            )
        w = layer.weight
        n_in = w.shape[1] * layer_groups(layer)
        if self.scale == "xavier":
            std = math.sqrt(2.0 / (self.output_size + n_in))
        else:
            std = 1.0 / math.sqrt(self.output_size)
        set_buffer(layer, "dfa_B",
                   random_entries((self.output_size, n_in), generator, w, "gaussian", std))
        layer.dfa_context = None  # set by install()

    def clear_state(self, layer):
        super().clear_state(layer)
        layer.__dict__.pop("dfa_context", None)

    def rule_and_state(self, layer):
        context = layer.dfa_context
        if context is None:
            raise RuntimeError(
                "this DFA layer has no DFA context: convert the whole model with "
                "alignlab.convert(model, 'dfa') so the output error can be captured."
            )
        return DirectFeedback(context), (layer.dfa_B,)

    def effective_feedback(self, layer):
        return None

    def alignment_theory(self, layer, *, mirror=None):
        return AlignmentTheory(
            quantity="update",
            description="B_l e from the output error: no feedback matrix per layer; the "
                        "update angle to BP is measured")
