"""``convert(model, method)``: every ``nn.Linear`` and ``nn.Conv2d`` of any model."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator

from torch import nn

from .._records import Records
from .._rng import torch_generator
from .layers import FeedbackConv2d, FeedbackLayer, FeedbackLinear
from .methods import Method, get_method

__all__ = ["ConversionReport", "check_state_memory", "conversion_report", "convert",
           "converted_layers"]

_REPORT_COLUMNS = ["module", "type", "trained_by", "note"]


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


def _carries_error(module: nn.Module) -> bool:
    """Does the module hold a weight matrix or kernel (a parameter of 2 or more dimensions)
    through which BP sends the error down? Embeddings do not: their input is indices."""
    if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
        return False
    return any(p.dim() >= 2 for p in module.parameters(recurse=False))


def _plan(model: nn.Module) -> list[dict]:
    """What ``convert`` would do, in module order, without changing ``model``: one entry per
    slot to convert (``convert`` True, with ``parent``/``attr``/``module``) and one report
    row per module that keeps BP (``carries_error``: BP sends the error through its
    weights)."""
    mha_children = {
        id(c) for m in model.modules() if isinstance(m, nn.MultiheadAttention)
        for c in m.modules() if c is not m
    }
    plan = []

    def keep(name, module, why):
        plan.append({"convert": False, "module": name, "type": type(module).__name__,
                     "trained_by": "bp", "note": why, "carries_error": _carries_error(module)})

    if not model._modules:  # a bare module that is not a Linear/Conv2d
        keep("(root)", model, "keeps BP")
    seen_leaves: set[int] = set()
    for name, parent, attr, child in _slots(model):
        if _kind(child) is not None and id(child) not in mha_children:
            plan.append({"convert": True, "module": name, "parent": parent, "attr": attr,
                         "child": child})
        elif not child._modules and id(child) not in seen_leaves:
            seen_leaves.add(id(child))
            why = "keeps BP"
            if id(child) in mha_children:
                why = "keeps BP (inside MultiheadAttention, used functionally)"
            elif isinstance(child, (nn.Linear, nn.Conv2d)):
                why = "keeps BP (subclass with its own forward)"
            elif any(True for _ in child.parameters(recurse=False)):
                why = "keeps BP (has parameters)"
            keep(name, child, why)
    for name, module in model.named_modules():  # parameters held by non-leaf modules
        if module._modules and not isinstance(module, FeedbackLayer):
            own = [n for n, _ in module.named_parameters(recurse=False)]
            if own:
                keep(name or "(root)", module, f"keeps BP (own parameters: {', '.join(own)})")
    return plan


def _listing(rows: list[dict]) -> str:
    return ", ".join(f"{r['module']!r} ({r['type']})" for r in rows)


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
        The method's options (e.g. ``expansion_ratio=10`` for 'pfa'); unknown options and
        values of the wrong type or range raise ``ValueError`` before anything is done.

    Returns
    -------
    The converted model. ``conversion_report(model)`` (also ``model.alignlab_conversion``)
    lists what was converted and what stays on BP.

    Raises
    ------
    ValueError
        Bad method or options, nothing in ``model`` can be converted (no
        ``nn.Linear``/``nn.Conv2d`` with torch's own forward), or a feedback state that
        cannot fit in memory (:func:`check_state_memory`; the message names the method's
        ``size_option``, e.g. ``expansion_ratio``). Nothing is drawn or changed then.

    Warns
    -----
    UserWarning
        One warning listing the modules that keep BP although BP sends the error through
        their weights (modules alignlab cannot convert that hold a weight matrix or kernel:
        ``nn.Conv1d``, ``nn.Conv3d``, ``nn.ConvTranspose2d``, ``nn.LSTM``, ``nn.Bilinear``,
        attention projections, ``Linear`` subclasses with their own forward, parameters
        used functionally). BatchNorm/LayerNorm (per-channel weights) and embeddings
        (indices in, no error sent down) keep BP without a warning.

    Notes
    -----
    Shared layers stay shared (converted once). Layers already converted are converted
    again from their ``weight``/``bias`` with fresh feedback state (the report says so).
    ``nn.Linear`` inside ``nn.MultiheadAttention`` is not converted: attention calls
    its weights functionally, so it keeps BP. Options that depend on the model are filled
    in by the method (``Method.resolve``: DFA's ``output_size``), and model-level machinery
    is put in place by it (``Method.install``: DFA's output-error capture on the root),
    after the machinery of the methods being replaced is removed (``Method.uninstall``).
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"`model` must be a torch.nn.Module, got {type(model).__name__}.")
    for flag, value in (("inplace", inplace), ("verbose", verbose)):
        if not isinstance(value, bool):
            raise ValueError(f"`{flag}` must be True or False, got {value!r}.")
    meth = get_method(method, **options)
    generator = torch_generator(rng)
    root_kind = _kind(model)
    if root_kind is None:
        plan = _plan(model)
        if not any(e["convert"] for e in plan):
            carrying = [e for e in plan if e.get("carries_error")]
            left = (f"its modules with weights keep BP: {_listing(carrying)}" if carrying
                    else "it has no module with a weight matrix")
            raise ValueError(
                f"`model` must contain an nn.Linear or nn.Conv2d that alignlab can convert, "
                f"got none ({left}); nothing was converted."
            )
    meth = meth.resolve(model)
    check_state_memory(meth, [model] if root_kind is not None else
                       [e["child"] for e in plan if e["convert"]])
    if not inplace:
        model = copy.deepcopy(model)

    previous = {type(layer.method): layer.method
                for layer in model.modules() if isinstance(layer, FeedbackLayer)}
    for old in previous.values():
        old.uninstall(model)

    memo: dict[int, nn.Module] = {}
    rows, carrying = [], []

    def convert_one(name: str, module: nn.Module) -> nn.Module:
        if id(module) in memo:
            return memo[id(module)]
        was = module.method.name if isinstance(module, FeedbackLayer) else None
        cls = FeedbackLinear if _kind(module) == "linear" else FeedbackConv2d
        new = cls.from_module(module, meth, generator)
        memo[id(module)] = new
        note = "converted" + (f" (was {was}; fresh feedback state)" if was else "")
        rows.append({"module": name, "type": type(module).__name__, "trained_by": meth.name,
                     "note": note})
        return new

    if root_kind is not None:
        model = convert_one("(root)", model)
    else:
        for entry in _plan(model):
            if entry["convert"]:
                setattr(entry["parent"], entry["attr"], convert_one(entry["module"],
                                                                    entry["child"]))
            else:
                rows.append({k: entry[k] for k in _REPORT_COLUMNS})
                if entry["carries_error"]:
                    carrying.append(entry)
    meth.install(model, list(memo.values()))
    if carrying:
        warnings.warn(
            f"alignlab.convert: {len(carrying)} module(s) with weight matrices keep BP, so "
            f"BP, not {meth.name!r}, sends the error through them (alignlab converts "
            f"nn.Linear and nn.Conv2d only): {_listing(carrying)}. "
            f"See alignlab.nn.conversion_report(model).", UserWarning, stacklevel=2)
    report = ConversionReport(rows, columns=_REPORT_COLUMNS)
    model.alignlab_conversion = report
    if verbose:
        print(report)
    return model


def check_state_memory(method: Method, layers: list[nn.Module]) -> None:
    """Refuse, before anything is drawn, a feedback state that cannot fit in memory.

    ``layers``: the ``nn.Linear``/``nn.Conv2d`` modules ``method`` is about to be given
    (shared ones once). What is needed is the state every layer keeps plus the largest
    one's temporaries (:meth:`Method.state_bytes`); the budget is
    :func:`alignlab.sim.memory.memory_budget` for the layers' device (half the memory, or
    ``ALIGNLAB_MEMORY_BUDGET``). The one-line ``ValueError`` names the method's
    ``size_option`` and its value ("`expansion_ratio` must be small enough for the
    feedback state of 'pfa' to fit in memory (...), got 1000000000.0."), or the ``model``
    for a method whose state merely follows the layers' sizes.
    """
    from ..sim.memory import check_memory  # the package's one memory budget and message

    unique = list({id(layer): layer for layer in layers}.values())
    if not unique:
        return
    sizes = [method.state_bytes(layer) for layer in unique]
    need = sum(kept for kept, _ in sizes) + max(extra for _, extra in sizes)
    option = method.size_option
    named = {"value": getattr(method, option)} if option else {}
    check_memory(option or "model", need, what=f"the feedback state of {method.name!r}",
                 device=unique[0].weight.device, **named)


def conversion_report(model: nn.Module) -> ConversionReport:
    """What ``convert`` did to ``model`` (raises if it was never converted)."""
    report = getattr(model, "alignlab_conversion", None)
    if report is None:
        raise ValueError("`model` must come from alignlab.convert, got an unconverted model.")
    return report


def converted_layers(model: nn.Module) -> list[tuple[str, FeedbackLayer]]:
    """(name, layer) for every converted layer, each shared layer once."""
    return [(n or "(root)", m) for n, m in model.named_modules() if isinstance(m, FeedbackLayer)]
