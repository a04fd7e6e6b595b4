"""The functional core: one ``torch.autograd.Function``, :class:`FeedbackFn`.

Forward is the ordinary layer (``F.linear`` / ``F.conv2d``, by the layer kind's ``ops``).
Backward computes BP's weight and bias gradients and then asks a *feedback rule* two
things: what to send down (the gradient w.r.t. the layer input) and what gradient the
feedback state gets.
The rules are layer-agnostic: they talk to the layer through a small ``ops`` object
(:class:`LinearOps`, :class:`Conv2dOps`) that knows how to compute an input gradient
with a given kernel, a weight gradient, and a 1x1 channel mixing.

Rules (see ``methods/`` for which method uses which):

* :class:`MatrixFeedback` -- a kernel ``F`` in W's layout sends ``delta`` down, as BP
  would send it with ``W`` (BP, FA, uSF, brSF, frSF, KP, WM). With ``learns=True``
  ``F`` receives ``grad_W`` as its gradient (Kolen-Pollack: ``W - F`` then decays).
* :class:`PathFeedback` -- PFA: fixed ``B`` (``(n_mid, n_out/groups)``) and plastic
  ``R^T`` (W's layout with ``n_mid`` rows). ``impl='path'`` is the cheap form
  (``P^T = B^T R^T`` once per call, one BP-priced input gradient, ``grad R^T = B grad_W``);
  ``impl='literal'`` is the recipe of ``pfa.md`` (``e_bar = B delta``,
  ``delta_below = R e_bar``, ``grad R^T = e_bar h^T``); ``impl='auto'`` picks per layer
  and per call whichever is cheaper in flops. All give the same numbers.
* :class:`FactoredPathFeedback` -- PFA in the factored representation (Proposition 1,
  ``state='factored'``): the path ``P^T = M W + c Q_0`` from fixed ``M = B^T B`` and
  ``Q_0 = B^T D_0`` and a scalar ``c``; no ``R`` and no gradient for it.
* :class:`DirectFeedback` -- DFA: the network's output error ``e``, captured by a
  :class:`DFAContext`, is sent to the layer input through a fixed ``B_l``
  (``(n_outputs, n_in)``; conv: ``(n_outputs, C_in)`` tiled over space, divided by the
  number of positions).

AMP: the forward casts its floating inputs to the autocast dtype when autocast is
enabled for the input's device (what ``torch.amp.custom_fwd(cast_inputs=...)`` does,
but for whichever device the tensors live on) and runs with autocast off; the backward
then runs in that dtype and returns gradients in each input's own dtype.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "Conv2dOps",
    "DFAContext",
    "DirectFeedback",
    "FactoredPathFeedback",
    "FeedbackFn",
    "LinearOps",
    "MatrixFeedback",
    "PathFeedback",
    "channel_mix",
    "mid_contract",
    "path_kernel",
]


# ----------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class LinearOps:
    """``a = x W^T + b`` on inputs of any leading shape ``(..., n_in)``."""

    groups: int = 1

    def forward(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        return F.linear(x, weight, bias)

    def input_grad(self, x_shape: torch.Size, kernel: Tensor, delta: Tensor) -> Tensor:
        # delta (..., n_out) @ kernel (n_out, n_in) -> (..., n_in)
        return (delta @ kernel).reshape(x_shape)

    def weight_grad(self, x: Tensor, w_shape: torch.Size, delta: Tensor) -> Tensor:
        # sum over rows of delta h^T: (n_out, rows) @ (rows, n_in)
        return delta.reshape(-1, delta.shape[-1]).t() @ x.reshape(-1, x.shape[-1])

    def bias_grad(self, delta: Tensor) -> Tensor:
        return delta.reshape(-1, delta.shape[-1]).sum(0)

    def mix(self, delta: Tensor, b: Tensor) -> Tensor:
        # e_bar = B delta per row: (..., n_out) @ (n_out, n_mid) -> (..., n_mid)
        return delta @ b.t()

    def rows(self, delta: Tensor) -> int:
        return delta.numel() // delta.shape[-1]

    def error_rows(self, e: Tensor) -> Tensor:
        # DFA: the output error as it is, one row per input row (or per sample)
        return e

    def tile(self, e_proj: Tensor, x_shape: torch.Size) -> Tensor:
        # e_proj (N, n_in) or (..., n_in): broadcast over any extra middle dimensions
        if e_proj.shape == x_shape:
            return e_proj
        n = e_proj.shape[0]
        view = (n,) + (1,) * (len(x_shape) - 2) + (x_shape[-1],)
        return e_proj.reshape(view).expand(x_shape)


@dataclass(frozen=True)
class Conv2dOps:
    """``F.conv2d`` with numeric stride, padding, dilation and groups."""

    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    def forward(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        return F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation, self.groups)

    def input_grad(self, x_shape: torch.Size, kernel: Tensor, delta: Tensor) -> Tensor:
        # one transposed convolution with `kernel` (W's layout)
        return torch.nn.grad.conv2d_input(
            x_shape, kernel, delta, self.stride, self.padding, self.dilation, self.groups
        )

    def weight_grad(self, x: Tensor, w_shape: torch.Size, delta: Tensor) -> Tensor:
        return torch.nn.grad.conv2d_weight(
            x, w_shape, delta, self.stride, self.padding, self.dilation, self.groups
        )

    def bias_grad(self, delta: Tensor) -> Tensor:
        return delta.sum((0, 2, 3))

    def mix(self, delta: Tensor, b: Tensor) -> Tensor:
        # 1x1 grouped conv: (N, C_out, H, W) -> (N, C_mid, H, W); b (C_mid, C_out/groups)
        return F.conv2d(delta, b[:, :, None, None], groups=self.groups)

    def rows(self, delta: Tensor) -> int:
        return delta.shape[0] * delta.shape[2] * delta.shape[3]

    def error_rows(self, e: Tensor) -> Tensor:
        # DFA: one row per sample, (N, outputs) whatever the output's shape
        return e.reshape(e.shape[0], -1)

    def tile(self, e_proj: Tensor, x_shape: torch.Size) -> Tensor:
        # e_proj (N, C_in) -> (N, C_in, H, W): the same value at every position, divided by
        # the number of positions (what a global average pool's backward would send)
        return (e_proj / (x_shape[2] * x_shape[3]))[:, :, None, None].expand(x_shape)


# ----------------------------------------------------------------------- PFA contractions


def mid_contract(b: Tensor, t: Tensor, groups: int = 1) -> Tensor:
    """``B T`` per group: ``b (n_mid, n_out/g)``, ``t (n_out, ...)`` -> ``(n_mid, ...)``.

    This is ``grad R^T = B grad_W`` (W's layout in, R^T's layout out).
    """
    n_mid, n_out_g = b.shape
    rest = t.shape[1:]
    bg = b.reshape(groups, n_mid // groups, n_out_g)  # (g, m, o)
    tg = t.reshape(groups, n_out_g, -1)  # (g, o, K)
    return torch.bmm(bg, tg).reshape((n_mid,) + tuple(rest))


def path_kernel(b: Tensor, rt: Tensor, groups: int = 1) -> Tensor:
    """The PFA path in W's layout, ``P^T = B^T R^T`` per group.

    ``b (n_mid, n_out/g)``, ``rt (n_mid, ...)`` -> ``(n_out, ...)``; the contraction is over
    the ``n_mid`` error neurons, so it costs ``n_mid * n_out * n_in / g`` flops, independent
    of the batch.
    """
    n_mid, n_out_g = b.shape
    rest = rt.shape[1:]
    bg = b.reshape(groups, n_mid // groups, n_out_g)  # (g, m, o)
    rg = rt.reshape(groups, n_mid // groups, -1)  # (g, m, K)
    return torch.bmm(bg.transpose(1, 2), rg).reshape((groups * n_out_g,) + tuple(rest))


def channel_mix(m: Tensor, t: Tensor, groups: int = 1) -> Tensor:
    """``M T`` per group: ``m (n_out, n_out/g)`` (group ``i``'s block is rows
    ``i*n_out/g ...``), ``t (n_out, ...)`` -> ``(n_out, ...)``.

    With ``M = B^T B`` this is factored PFA's ``M W`` (W's layout in and out); it costs
    ``n_out * n_out/g * n_in/g`` flops.
    """
    n_out, k = m.shape
    rest = t.shape[1:]
    return torch.bmm(m.reshape(groups, k, k), t.reshape(groups, k, -1)).reshape(
        (n_out,) + tuple(rest))


# --------------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class MatrixFeedback:
    """Send ``delta`` down through a kernel ``F`` of W's layout (``F = W`` is BP).

    ``learns=True``: ``F`` receives ``grad_W`` (so with the same decay ``W - F`` decays).
    """

    learns: bool = False

    def backward(self, ops, x, w_shape, delta, grad_w, state, needs):
        (kernel,) = state
        grad_x = ops.input_grad(x.shape, kernel, delta) if needs[0] else None
        grad_f = grad_w if (self.learns and needs[1]) else None
        return grad_x, (grad_f,)

    def needs_weight_grad(self, needs_state) -> bool:
        return self.learns and needs_state[0]


@dataclass(frozen=True)
class PathFeedback:
    """PFA: ``delta_below = R B delta``, ``grad R^T = B grad_W``; ``B`` gets no gradient.

    ``state = (B, R^T)`` with ``B (n_mid, n_out/groups)`` and ``R^T`` in W's layout with
    ``n_mid`` output channels.
    """

    impl: str = "auto"  # 'path' (cheap), 'literal' (pfa.md recipe) or 'auto' (cheaper per call)

    def _choose(self, ops, x, w_shape, delta, b):
        """Per-call choice by flop count (both forms give the same numbers)."""
        if self.impl != "auto":
            return self.impl, self.impl
        rows = ops.rows(delta)
        n_out = w_shape[0]
        k = 1
        for s in w_shape[1:]:
            k *= s  # n_in / groups (x kh x kw)
        n_mid = b.shape[0]
        n_out_g = b.shape[1]
        path_down = n_mid * n_out_g * k + rows * n_out * k
        literal_down = rows * n_mid * n_out_g + rows * n_mid * k
        path_r = n_mid * n_out_g * k  # B grad_W (grad_W is computed anyway)
        literal_r = rows * n_mid * k
        return (
            "path" if path_down <= literal_down else "literal",
            "path" if path_r <= literal_r else "literal",
        )

    def backward(self, ops, x, w_shape, delta, grad_w, state, needs):
        b, rt = state
        down, rgrad = self._choose(ops, x, w_shape, delta, b)
        e_bar = None
        grad_x = grad_rt = None
        if needs[0]:
            if down == "path":
                grad_x = ops.input_grad(x.shape, path_kernel(b, rt, ops.groups), delta)
            else:
                e_bar = ops.mix(delta, b)
                grad_x = ops.input_grad(x.shape, rt, e_bar)
        if needs[2]:
            if rgrad == "path":
                grad_rt = mid_contract(b, grad_w, ops.groups)
            else:
                e_bar = ops.mix(delta, b) if e_bar is None else e_bar
                grad_rt = ops.weight_grad(x, rt.shape, e_bar)
        return grad_x, (None, grad_rt)

    def needs_weight_grad(self, needs_state) -> bool:
        return needs_state[1] and self.impl != "literal"


@dataclass(frozen=True)
class FactoredPathFeedback:
    """PFA from Proposition 1: ``delta_below = P delta`` with ``P^T = M W + c Q_0``.

    ``state = (W, M, X)``: ``W`` the layer's weight (detached), ``M = B^T B`` per group
    (``(n_out, n_out/groups)``, symmetric blocks), ``c`` the decay factor at this step, and
    ``X`` either ``Q_0 = B^T D_0`` (``solved=False``) or ``Z_0 = M^{-1} Q_0``
    (``solved=True``, when ``M`` is well conditioned), both in W's layout. Per call, by
    flop count, the cheaper of two equal forms:

    * solved: ``P^T = M (W + c Z_0)``; either form the kernel (``n_out n_out/g K``) and
      send ``delta`` down once, or send ``M delta`` down through ``W + c Z_0`` (one
      BP-priced input gradient plus ``rows n_out n_out/g``);
    * not solved: form ``M W + c Q_0``, or send ``M delta`` through ``W`` and ``delta``
      through ``Q_0`` (two BP-priced input gradients plus ``rows n_out n_out/g``).

    Nothing here learns: ``W``'s gradient is BP's and there is no ``R``.
    """

    c: float = 1.0
    solved: bool = False

    def _form_kernel(self, ops, w_shape, delta, m) -> bool:
        rows = ops.rows(delta)
        n_out, n_out_g = m.shape
        k = 1
        for s in w_shape[1:]:
            k *= s  # n_in / groups (x kh x kw)
        kernel = n_out * n_out_g * k + rows * n_out * k
        split = rows * n_out * n_out_g + (1 if self.solved else 2) * rows * n_out * k
        return kernel <= split

    def backward(self, ops, x, w_shape, delta, grad_w, state, needs):
        w, m, extra = state
        grad_x = None
        if needs[0]:
            kernel_form = self._form_kernel(ops, w_shape, delta, m)
            if self.solved:
                shifted = torch.add(w, extra, alpha=self.c)  # W + c Z_0
                if kernel_form:
                    grad_x = ops.input_grad(x.shape, channel_mix(m, shifted, ops.groups), delta)
                else:
                    grad_x = ops.input_grad(x.shape, shifted, ops.mix(delta, m))
            elif kernel_form:
                kernel = torch.add(channel_mix(m, w, ops.groups), extra, alpha=self.c)
                grad_x = ops.input_grad(x.shape, kernel, delta)
            else:
                grad_x = ops.input_grad(x.shape, w, ops.mix(delta, m))
                grad_x = grad_x.add_(ops.input_grad(x.shape, extra, delta), alpha=self.c)
        return grad_x, (None, None, None)

    def needs_weight_grad(self, needs_state) -> bool:
        return False


@dataclass(eq=False)
class DFAContext:
    """Holds the network's output error for one backward pass (DFA).

    Installed as a forward hook on the converted model's root: the hook passes the
    output through :class:`_CaptureError`, whose backward stores ``e = dL/d(output)``
    here. Every converted layer lies upstream of the output, so autograd runs the
    capture before any layer's backward; each layer then reads ``e`` and sends
    ``B_l e`` to its input (see :class:`DirectFeedback`).
    """

    error: Tensor | None = field(default=None, repr=False)

    def __call__(self, module, inputs, output):
        if not isinstance(output, Tensor):
            raise TypeError(
                "DFA needs the model to return a single tensor (the output whose error is "
                f"broadcast), got {type(output).__name__}."
            )
        if torch.is_grad_enabled() and output.requires_grad:
            return _CaptureError.apply(output, self)
        return output


class _CaptureError(torch.autograd.Function):
    @staticmethod
    def forward(ctx, output, context):
        ctx.context = context
        return output.view_as(output)

    @staticmethod
    def backward(ctx, grad):
        ctx.context.error = grad.detach()
        return grad, None


@dataclass(frozen=True, eq=False)
class DirectFeedback:
    """DFA: send the output error ``e`` to the layer input through fixed ``B_l``."""

    context: DFAContext

    def backward(self, ops, x, w_shape, delta, grad_w, state, needs):
        (bd,) = state  # (n_outputs, n_in)
        grad_x = None
        if needs[0]:
            e = self.context.error
            if e is None:
                raise RuntimeError(
                    "DFA layer found no output error: the loss must be computed from the "
                    "output of the converted model (the DFA hook captures its gradient)."
                )
            grad_x = ops.tile(ops.error_rows(e.to(bd.dtype)) @ bd, x.shape)
        return grad_x, (None,)

    def needs_weight_grad(self, needs_state) -> bool:
        return False


# ------------------------------------------------------------------------------ Functions


def _autocast_dtype(x: Tensor) -> torch.dtype | None:
    dev = x.device.type
    try:
        if torch.is_autocast_enabled(dev):
            return torch.get_autocast_dtype(dev)
    except (RuntimeError, TypeError):  # device type without autocast support
        return None
    return None


def _cast(t: Tensor | None, dtype: torch.dtype | None) -> Tensor | None:
    if t is None or dtype is None or not t.is_floating_point():
        return t
    return t.to(dtype)


def _forward(ctx, ops, x, weight, bias, rule, state):
    dtype = _autocast_dtype(x)
    ctx.dtypes = (x.dtype, weight.dtype, None if bias is None else bias.dtype) + tuple(
        s.dtype for s in state
    )
    x, weight, bias = _cast(x, dtype), _cast(weight, dtype), _cast(bias, dtype)
    state = tuple(_cast(s, dtype) for s in state)
    ctx.ops, ctx.rule, ctx.w_shape = ops, rule, weight.shape
    ctx.has_bias = bias is not None
    ctx.save_for_backward(x, *state)
    with torch.autocast(x.device.type, enabled=False):
        return ops.forward(x, weight, bias)


def _backward(ctx, delta):
    x, *state = ctx.saved_tensors
    ops, rule = ctx.ops, ctx.rule
    needs = ctx.needs_input_grad  # (x, weight, bias, rule, *state)
    needs_state = needs[4:]
    delta = delta.to(x.dtype)
    grad_w = None
    if needs[1] or rule.needs_weight_grad(needs_state):
        grad_w = ops.weight_grad(x, ctx.w_shape, delta)
    grad_b = ops.bias_grad(delta) if (ctx.has_bias and needs[2]) else None
    grad_x, grad_state = rule.backward(
        ops, x, ctx.w_shape, delta, grad_w, state, (needs[0],) + tuple(needs_state)
    )
    grads = [grad_x, grad_w if needs[1] else None, grad_b, None, *grad_state]
    dtypes = ctx.dtypes[:3] + (None,) + ctx.dtypes[3:]
    return tuple(
        g if (g is None or dt is None or g.dtype == dt) else g.to(dt)
        for g, dt in zip(grads, dtypes, strict=True)
    )


class FeedbackFn(torch.autograd.Function):
    """The layer's forward (``ops.forward``) whose backward sends down what ``rule`` says.

    ``FeedbackFn.apply(x, weight, bias, (ops, rule), *state)``: ``ops`` a
    :class:`LinearOps` (``x (..., n_in)``, ``weight (n_out, n_in)``) or a
    :class:`Conv2dOps` (carrying stride, padding, dilation and groups); ``bias (n_out,)``
    or None; ``state`` the rule's tensors. Backward: BP's weight and bias gradients, and
    the rule's input gradient and state gradients.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, spec: Any, *state):
        ops, rule = spec
        return _forward(ctx, ops, x, weight, bias, rule, state)

    @staticmethod
    def backward(ctx, delta):
        return _backward(ctx, delta)
