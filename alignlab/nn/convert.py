"""``convert(model, method)``: every ``nn.Linear`` and ``nn.Conv2d`` of any model."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator

from torch import nn

from .._records import Records
from .._rng import torch_generator
from .functional import DFAContext
from .layers import FeedbackConv2d, FeedbackLayer, FeedbackLinear
from .methods import DFA, Method, get_method

__all__ = ["ConversionReport", "conversion_report", "convert", "converted_layers"]


class ConversionReport(Records):
    """One row per leaf module: ``module``, ``type``, ``trained_by``, ``note``.

    ``trained_by`` is the method's name for converted layers and ``'bp'`` for everything
    that keeps ordinary autograd (BatchNorm, pooling, attention, embeddings, ...).
    """

    @property
    def converted(self) -> list[str]:
        return [r["module"] for r in self if r["note"].startswith("converted")]

    @property
    def kept_bp(self) -> list[str]:
        return [r["module"] for r in self if not r["note"].startswith("converted")]


def _slots(model: nn.Module) -> Iterator[tuple[str, nn.Module, str, nn.Module]]:
    """(qualified name, parent, attribute, child) for every module slot, shared ones included."""
    for pname, parent in model.named_modules(remove_duplicate=False):
        for attr, child in parent._modules.items():
            if child is not None:
                yield (f"{pname}.{attr}" if pname else attr), parent, attr, child


def _kind(module: nn.Module) -> str | None:
    if isinstance(module, nn.Linear):
        if type(module).forward is nn.Linear.forward or isinstance(module, FeedbackLinear):
            return "linear"
    if isinstance(module, nn.Conv2d):
        if type(module).forward is nn.Conv2d.forward or isinstance(module, FeedbackConv2d):
            return "conv2d"
    return None


def convert(model: nn.Module, method: str | Method, *, inplace: bool = False, rng=None,
            verbose: bool = False, **options) -> nn.Module:
    """Convert every ``nn.Linear`` and ``nn.Conv2d`` of ``model`` to ``method``.

    Parameters
    ----------
    model
        Any ``nn.Module`` (a bare ``nn.Linear`` too). Its weights are kept (reused when
        ``inplace``, deep-copied otherwise); each method adds its own feedback state.
    method
        A name in ``METHODS`` ('bp', 'fa', 'dfa', 'usf', 'brsf', 'frsf', 'kp', 'wm', 'pfa',
        'pfa-o', 'pfa-id', 'pfa-sparse') or a ``Method`` instance.
    inplace
        Modify ``model`` itself instead of a deep copy.
    rng
        None (torch's default generator), an int seed or a ``torch.Generator`` for the
        feedback state's random draws.
    verbose
        Print the conversion report.
    **options
        The method's options (e.g. ``expansion_ratio=10`` for 'pfa'); unknown ones raise.

    Returns
    -------
    The converted model. ``conversion_report(model)`` (also ``model.alignlab_conversion``)
    lists what was converted and what stays on BP.

    Notes
    -----
    Shared layers stay shared (converted once). Layers already converted are converted
    again from their ``weight``/``bias`` with fresh feedback state (the report says so).
    ``nn.Linear`` inside ``nn.MultiheadAttention`` is not converted: attention calls
    its weights functionally, so it keeps BP. Subclasses of ``Linear``/``Conv2d`` with
    their own ``forward`` are left on BP too. For 'dfa', the model's output (a single
    tensor) is the error source; ``output_size`` defaults to the ``out_features`` of the
    last ``nn.Linear`` in module order.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"`model` must be a torch.nn.Module, got {type(model).__name__}.")
    meth = get_method(method, **options)
    if isinstance(meth, DFA) and meth.output_size is None:
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        if not linears:
            raise ValueError(
                "`output_size` must be given for 'dfa' when the model has no nn.Linear "
                "to infer it from, got None."
            )
        meth = dataclasses.replace(meth, output_size=linears[-1].out_features)
    generator = torch_generator(rng)
    if not inplace:
        model = copy.deepcopy(model)

    # a bare layer is its own root
    root_kind = _kind(model)
    memo: dict[int, nn.Module] = {}
    rows = []
    mha_children = {
        id(c) for m in model.modules() if isinstance(m, nn.MultiheadAttention)
        for c in m.modules() if c is not m
    }

    def convert_one(name: str, module: nn.Module) -> nn.Module:
        if id(module) in memo:
            return memo[id(module)]
        kind = _kind(module)
        was = module.method.name if isinstance(module, FeedbackLayer) else None
        cls = FeedbackLinear if kind == "linear" else FeedbackConv2d
        new = cls.from_module(module, meth, generator)
        memo[id(module)] = new
        note = "converted" + (f" (was {was}; fresh feedback state)" if was else "")
        rows.append({"module": name, "type": type(module).__name__, "trained_by": meth.name,
                     "note": note})
        return new

    if root_kind is not None:
        model = convert_one("(root)", model)
    else:
        seen_leaves: set[int] = set()
        for name, parent, attr, child in list(_slots(model)):
            if _kind(child) is not None and id(child) not in mha_children:
                setattr(parent, attr, convert_one(name, child))
            elif not child._modules and id(child) not in seen_leaves:
                seen_leaves.add(id(child))
                why = "keeps BP"
                if id(child) in mha_children:
                    why = "keeps BP (inside MultiheadAttention, used functionally)"
                elif isinstance(child, (nn.Linear, nn.Conv2d)):
                    why = "keeps BP (subclass with its own forward)"
                elif any(True for _ in child.parameters(recurse=False)):
                    why = "keeps BP (has parameters)"
                rows.append({"module": name, "type": type(child).__name__, "trained_by": "bp",
                             "note": why})
        _warn_direct_params(model, rows)

    _install_dfa(model, meth)
    report = ConversionReport(rows, columns=["module", "type", "trained_by", "note"])
    model.alignlab_conversion = report
    if verbose:
        print(report)
    return model


def _warn_direct_params(model: nn.Module, rows: list) -> None:
    """Parameters held directly by non-leaf modules (e.g. attention in_proj) keep BP."""
    for name, module in model.named_modules():
        if module._modules and not isinstance(module, FeedbackLayer):
            own = [n for n, _ in module.named_parameters(recurse=False)]
            if own:
                rows.append({"module": name or "(root)", "type": type(module).__name__,
                             "trained_by": "bp",
                             "note": f"keeps BP (own parameters: {', '.join(own)})"})


def _install_dfa(model: nn.Module, meth: Method) -> None:
    """(Re)install the DFA capture hook on the root; drop any previous one."""
    for key, hook in list(model._forward_hooks.items()):
        if isinstance(hook, DFAContext):
            del model._forward_hooks[key]
    layers = [m for m in model.modules() if isinstance(m, FeedbackLayer)]
    if not any(isinstance(m.method, DFA) for m in layers):
        for m in layers:
            m.dfa_context = None
        return
    context = DFAContext()
    for m in layers:
        m.dfa_context = context
    # stored without its handle: a handle holds a weakref that deepcopy would not follow
    model.register_forward_hook(context)


def conversion_report(model: nn.Module) -> ConversionReport:
    """What ``convert`` did to ``model`` (raises if it was never converted)."""
    report = getattr(model, "alignlab_conversion", None)
    if report is None:
        raise ValueError("`model` must come from alignlab.convert, got an unconverted model.")
    return report


def converted_layers(model: nn.Module) -> list[tuple[str, FeedbackLayer]]:
    """(name, layer) for every converted layer, each shared layer once."""
    return [(n or "(root)", m) for n, m in model.named_modules() if isinstance(m, FeedbackLayer)]
