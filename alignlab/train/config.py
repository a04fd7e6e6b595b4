"""Training configs: TOML validated into frozen dataclasses, one per section.

A config file has the sections ``[data]``, ``[model]``, ``[method]``, ``[optim]``,
``[train]`` and ``[wm]`` (every key optional; defaults below, each commented) and an
optional top-level ``base = "path.toml"``: that file (relative to this one, itself
possibly with a ``base``) is read first and this file's keys replace its keys one by
one, section by section. ``[meta]`` (written into a run's ``config.toml``) is ignored.

On the command line a key is ``section.key`` (``--set optim.lr=0.1``); the value is a
TOML literal (``3``, ``0.5``, ``true``, ``[20, 30]``, ``"pfa"``), a bare word is a string,
and ``none`` resets an optional key to its default ``None``.

Everything is checked before any work starts: an unknown section or key, a wrong type or
an impossible value raises ``ValueError`` whose message names the dotted key
("`optim.lr` must be > 0, got -1.0."). ``[model]`` options are checked against the model's
signature (``alignlab.models.model_options``) by building it on torch's ``meta`` device,
``[method]`` options against the method's dataclass fields, ``[data]`` extra options
against the data set's own options.

Factored PFA by default: when the method has a ``state`` option that the config leaves
unset, the optimiser is SGD without Nesterov, and the method accepts
``state = "factored"`` (Proposition 1: exact under SGD, about BP's cost), the resolved
config says ``state = "factored"``; otherwise the method's default (explicit ``R``).
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

from .._device import check_device_name
from .._toml import TOMLDecodeError, dumps_toml, load_toml, loads_toml  # dumps_toml: re-export
from .._validate import check_choice, check_int, check_momentum, check_positive, invalid

__all__ = [
    "Config",
    "DataConfig",
    "MethodConfig",
    "MirrorConfig",
    "ModelConfig",
    "OptimConfig",
    "TrainSettings",
    "dumps_toml",
    "load_config",
    "parse_override",
    "parse_value",
    "resolve_config",
]

_DTYPES = ("float32", "float64")
_AMP = ("off", "bf16", "fp16")


# ---------------------------------------------------------------------------------------
# type coercion with dotted-key messages


def _is_none(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.lower() == "none")


def _coerce(key: str, value: Any, hint: Any) -> Any:
    """``value`` converted to the annotation ``hint`` (int, float, bool, str, X | None,
    tuple[T, ...], tuple[T1, T2]); a mismatch raises naming ``key``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if _is_none(value):
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(key, value, inner[0])
    if hint is bool:
        if not isinstance(value, bool):
            raise invalid(key, "true or false", value)
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise invalid(key, "an integer", value)
        if isinstance(value, float) and not (math.isfinite(value) and value == int(value)):
            raise invalid(key, "an integer", value)
        return int(value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise invalid(key, "a number", value)
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise invalid(key, "a string", value)
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise invalid(key, "a list", value)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(f"{key}[{i}]", v, args[0]) for i, v in enumerate(value))
        if len(value) != len(args):
            raise invalid(key, f"a list of {len(args)} entries", value)
        return tuple(_coerce(f"{key}[{i}]", v, a) for i, (v, a) in enumerate(zip(value, args,
                                                                                   strict=True)))
    return value


def _tuples(value: Any) -> Any:
    """TOML arrays (lists) as tuples, recursively: options are then hashable and frozen."""
    if isinstance(value, list | tuple):
        return tuple(_tuples(v) for v in value)
    return value


def qualify(exc: Exception, section: str, keys: Sequence[str], *,
            others: bool = True) -> ValueError:
    """A library error about option ``x`` (one of ``keys``) re-raised as one about
    ``section.x``; an error about anything else is prefixed with ``section`` or, with
    ``others=False``, kept as it is (it names what it is about already)."""
    msg = str(exc)
    m = re.match(r"`([^`]+)`", msg)
    if m and (m.group(1) in keys or m.group(1) == section):
        name = m.group(1) if m.group(1) in keys else "name"
        return ValueError(f"`{section}.{name}`" + msg[m.end():])
    return ValueError(f"`{section}`: {msg}" if others else msg)


# ---------------------------------------------------------------------------------------
# the sections


@dataclass(frozen=True)
class DataConfig:
    """``[data]``: which data set, how much of it, its preprocessing."""

    section: ClassVar[str] = "data"
    name: str = "synthetic"  # mnist | fashion-mnist | cifar10 | synthetic (| imagenet)
    limit: int | None = None  # use only the first N training examples (smoke runs); None: all
    root: str | None = None  # data folder; None: $ALIGNLAB_DATA, ~/.cache/alignlab/data, system
    val_size: int | None = None  # held-out validation examples; None: the paper's (CIFAR 5000)
    pad_to: int | None = None  # zero-pad images to pad_to x pad_to (e.g. 32 for ResNet-20)
    augment: bool | None = None  # random crop + flip; None: the paper's (CIFAR yes, others no)
    download: bool = True  # download missing files (checked, atomic) when the network is there
    normalize: bool = True  # per-channel mean/SD normalisation; false: pixels / 255 only
    seed: int = 0  # validation split and synthetic data (fixed across training seeds)
    options: Mapping[str, Any] = field(default_factory=dict)  # the data set's own options

    def __post_init__(self):
        if self.limit is not None:
            check_int("data.limit", self.limit, minimum=1)
        if self.val_size is not None:
            check_int("data.val_size", self.val_size, minimum=0)
        if self.pad_to is not None:
            check_int("data.pad_to", self.pad_to, minimum=1)
        check_int("data.seed", self.seed, minimum=0)


@dataclass(frozen=True)
class ModelConfig:
    """``[model]``: ``name`` (``alignlab.models.MODELS``) and that model's options."""

    section: ClassVar[str] = "model"
    name: str = "mlp"  # mlp | resnet20 | resnet18 | resnet34
    options: Mapping[str, Any] = field(default_factory=dict)  # e.g. sizes, activation


@dataclass(frozen=True)
class MethodConfig:
    """``[method]``: ``name`` and its options: a method of ``alignlab.nn.METHODS`` and its
    dataclass fields, or, for a model trained by layer-local targets (``learns_by_targets``,
    e.g. ``invertible``), a rule of ``alignlab.gaitprop.RULES`` and
    ``alignlab.gaitprop.method_options``."""

    section: ClassVar[str] = "method"
    name: str = "bp"  # bp | fa | dfa | usf | ... | pfa | pfa-o; targets: gait-prop | itp | tp
    options: Mapping[str, Any] = field(default_factory=dict)  # e.g. expansion_ratio, state


@dataclass(frozen=True)
class OptimConfig:
    """``[optim]``: optimiser, learning-rate schedule, weight-decay schedule, per-layer rates.

    Epochs are counted from 1 (epoch 0 is the state before training). The learning rate of
    training epoch ``e`` is ``lr * lr_gamma ** (number of milestones m with m < e)``
    (``torch.optim.lr_scheduler.MultiStepLR``: ``lr_milestones = [20, 30]`` changes it
    after epochs 20 and 30). The weight decay is ``weight_decay_burst`` during epochs
    ``1 .. weight_decay_burst_epochs`` when the burst is set (PFA's strong epoch-0 decay
    that makes ``R`` forget its initialisation, pfa.md), ``weight_decay`` after. Both
    apply to every parameter group, learned feedback included (Proposition 1 needs the
    same decay for ``W`` and ``R``). ``layer_lr_scales`` gives converted layer ``i`` (in
    module order) the rate ``lr * layer_lr_scales[i]`` at every point of the schedule
    (:func:`alignlab.nn.param_groups`; one factor per converted layer, checked when the
    model is built).
    """

    section: ClassVar[str] = "optim"
    name: str = "sgd"  # sgd | adam | adamw | uncorrected-adam (GAIT-prop's original)
    lr: float = 0.01  # initial learning rate
    momentum: float = 0.0  # SGD heavy-ball momentum in [0, 1) (must be 0 for adam/adamw)
    nesterov: bool = False  # SGD only; factored PFA needs False
    weight_decay: float = 0.0  # coupled L2 decay (torch's weight_decay) after the burst
    weight_decay_burst: float | None = None  # decay during the first epochs; None: no burst
    weight_decay_burst_epochs: int = 1  # how many epochs the burst lasts
    lr_milestones: tuple[int, ...] = ()  # epochs after which lr is multiplied by lr_gamma
    lr_gamma: float = 0.1  # the factor at each milestone
    betas: tuple[float, float] = (0.9, 0.999)  # the adam family only
    layer_lr_scales: tuple[float, ...] = ()  # per converted layer, lr x factor; (): all 1

    def __post_init__(self):
        from ..nn.optim import OPTIMIZERS

        check_choice("optim.name", self.name, sorted(OPTIMIZERS))
        check_positive("optim.lr", self.lr, scalar=True)
        check_momentum(self.momentum, name="optim.momentum")
        if self.name != "sgd" and self.momentum != 0:
            raise invalid("optim.momentum", f"0 for optim.name = {self.name!r} (use optim.betas)",
                          self.momentum)
        if self.nesterov and (self.name != "sgd" or self.momentum == 0):
            raise ValueError("`optim.nesterov` must be false unless optim.name = 'sgd' with "
                             "optim.momentum > 0, got true.")
        check_positive("optim.weight_decay", self.weight_decay, allow_zero=True, scalar=True)
        if self.weight_decay_burst is not None:
            check_positive("optim.weight_decay_burst", self.weight_decay_burst,
                           allow_zero=True, scalar=True)
        check_int("optim.weight_decay_burst_epochs", self.weight_decay_burst_epochs)
        ms = self.lr_milestones
        if any(m < 1 for m in ms) or any(b <= a for a, b in zip(ms, ms[1:], strict=False)):
            raise invalid("optim.lr_milestones", "strictly increasing epochs >= 1", list(ms))
        check_positive("optim.lr_gamma", self.lr_gamma, scalar=True)
        check_momentum(list(self.betas), name="optim.betas")
        for i, scale in enumerate(self.layer_lr_scales):
            check_positive(f"optim.layer_lr_scales[{i}]", scale, scalar=True)

    def lr_at(self, epoch: int) -> float:
        """Learning rate in force during training epoch ``epoch`` (1-based)."""
        return self.lr * self.lr_gamma ** sum(1 for m in self.lr_milestones if m < epoch)

    def weight_decay_at(self, epoch: int) -> float:
        """Weight decay in force during training epoch ``epoch`` (1-based)."""
        if self.weight_decay_burst is not None and epoch <= self.weight_decay_burst_epochs:
            return self.weight_decay_burst
        return self.weight_decay


@dataclass(frozen=True)
class TrainSettings:
    """``[train]``: the loop."""

    section: ClassVar[str] = "train"
    epochs: int = 10  # training epochs (metrics rows 0 .. epochs)
    batch_size: int = 64  # training mini-batch
    eval_batch_size: int = 1000  # evaluation batch (no effect on results)
    seed: int = 0  # model init, feedback draws, batch order, WM noise
    device: str = "auto"  # cpu | cuda | cuda:N | auto (cuda if available)
    dtype: str = "float32"  # float32 | float64
    deterministic: bool = True  # torch.use_deterministic_algorithms: same seed, same numbers
    drop_last: bool = False  # drop the last incomplete training batch of each epoch
    shuffle: bool = True  # a new batch order every epoch; false: the stored order every epoch
    log_every_steps: int = 0  # also log layers.csv every k optimiser steps; 0: per epoch only
    probe_size: int = 256  # training examples of the fixed update-angle probe; 0: no probe
    log_layers: bool = True  # layers.csv and the update angle; false: metrics.csv only
    amp: str = "off"  # off | bf16 | fp16: autocast the forward pass (fp16: CUDA + GradScaler)
    channels_last: bool = False  # NHWC memory format for 4-D inputs (convolutions on CUDA)
    compile: bool = False  # torch.compile the training forward/backward
    loss: str = "cross-entropy"  # cross-entropy | squared-error (1/2 sum over outputs)

    def __post_init__(self):
        check_int("train.epochs", self.epochs)
        check_int("train.batch_size", self.batch_size)
        check_int("train.eval_batch_size", self.eval_batch_size)
        check_int("train.seed", self.seed, minimum=0)
        check_choice("train.dtype", self.dtype, _DTYPES)
        check_int("train.log_every_steps", self.log_every_steps, minimum=0)
        check_int("train.probe_size", self.probe_size, minimum=0)
        check_device_name(self.device, "train.device")
        check_choice("train.amp", self.amp, _AMP)
        from .losses import LOSSES  # (torch: imported when a config is built, not before)

        check_choice("train.loss", self.loss, LOSSES)
        check_amp_device(self.amp, self.device)
        if self.amp != "off" and self.dtype == "float64":
            raise invalid("train.amp", "'off' with train.dtype = 'float64'", self.amp)


@dataclass(frozen=True)
class MirrorConfig:
    """``[wm]``: the weight mirror's phase (``alignlab.nn.mirror_step``); used only when the
    model has weight-mirror layers.

    ``initial_steps`` mirror steps run before the first training step; then one mirror step
    after every ``every_steps`` optimiser steps. Each updates ``F <- (1 - lr wd) F + lr
    <(W xi) xi^T>`` with ``xi ~ N(0, noise_std^2)``, ``n_samples`` per step, so ``F``
    tracks ``noise_std^2 W / weight_decay`` with an averaging window of about ``1 / (lr
    wd)`` steps.
    """

    section: ClassVar[str] = "wm"
    every_steps: int = 1  # one mirror step after every k training steps; 0: none during training
    initial_steps: int = 0  # mirror steps before training starts
    lr: float = 0.1  # mirror learning rate eta_m
    weight_decay: float = 1.0  # mirror decay (F -> noise_std^2 W / weight_decay)
    noise_std: float = 1.0  # SD of the injected noise
    n_samples: int = 64  # noise samples per mirror step

    def __post_init__(self):
        check_int("wm.every_steps", self.every_steps, minimum=0)
        check_int("wm.initial_steps", self.initial_steps, minimum=0)
        check_positive("wm.lr", self.lr, scalar=True)
        check_positive("wm.weight_decay", self.weight_decay, allow_zero=True, scalar=True)
        check_positive("wm.noise_std", self.noise_std, scalar=True)
        check_int("wm.n_samples", self.n_samples)


_SECTIONS: dict[str, type] = {
    "data": DataConfig, "model": ModelConfig, "method": MethodConfig, "optim": OptimConfig,
    "train": TrainSettings, "wm": MirrorConfig,
}
_WITH_OPTIONS = ("data", "model", "method")  # sections whose extra keys are options


@dataclass(frozen=True)
class Config:
    """A validated training config (build it with :func:`load_config` or
    :func:`resolve_config`)."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainSettings = field(default_factory=TrainSettings)
    wm: MirrorConfig = field(default_factory=MirrorConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """``{section: {key: value}}`` with options flattened into their section."""
        out: dict[str, dict[str, Any]] = {}
        for name in _SECTIONS:
            sec = getattr(self, name)
            d: dict[str, Any] = {}
            for f in fields(sec):
                if f.name == "options":
                    d.update(sec.options)
                else:
                    d[f.name] = getattr(sec, f.name)
            out[name] = d
        return out

    def get(self, dotted: str) -> Any:
        """The value of ``section.key`` (``None`` when unset)."""
        section, _, key = dotted.partition(".")
        return self.to_dict().get(section, {}).get(key)


# ---------------------------------------------------------------------------------------
# reading, merging, overriding


_TOML_OPENERS = ("[", "{", '"', "'")  # a value starting so is meant as TOML, never a word


def parse_value(text: str, key: str = "value") -> Any:
    """A command-line value of ``key``: a TOML literal, else the bare word as a string;
    ``none`` is None. A value that starts as a TOML list, inline table or string
    (``[``, ``{``, a quote) but does not parse raises ``ValueError`` naming ``key``."""
    if text.strip().lower() == "none":
        return None
    try:
        return loads_toml(f"v = {text}")["v"]
    except TOMLDecodeError as exc:
        if not text.lstrip().startswith(_TOML_OPENERS):
            return text
        # tomllib counts columns of "v = TEXT"; say where in TEXT
        reason = re.sub(r" \(at line 1, column (\d+)\)",
                        lambda m: f" at character {int(m[1]) - 4}", str(exc))
        reason = reason.replace(" (at end of document)", " at the end")
        raise ValueError(f"`{key}` must be a TOML value or a bare word, got {text!r}, which is "
                         f"not valid TOML ({reason[:1].lower()}{reason[1:]}).") from None


def parse_override(item: str) -> tuple[str, Any]:
    """``"section.key=value"`` -> ``("section.key", value)``."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not re.fullmatch(r"[A-Za-z_][\w-]*\.[A-Za-z_][\w-]*", key):
        raise ValueError(f"`--set` must be SECTION.KEY=VALUE (e.g. optim.lr=0.1), got {item!r}.")
    return key, parse_value(text, key)


def _read_toml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The file's tables with its ``base`` chain merged in (base first); ``seen``: the
    files that led here (the last one names ``path`` as its ``base``)."""
    path = path.resolve()
    if path in seen:
        raise ValueError(f"`base` must not form a cycle, got {' -> '.join(map(str, seen))} "
                         f"-> {path}.")
    if seen:
        raw = load_toml(path, name="base", where=f" in {str(seen[-1])!r}")
    else:
        raw = load_toml(path, name="CONFIG")
    base = raw.pop("base", None)
    raw.pop("meta", None)
    if base is None:
        return raw
    if not isinstance(base, str):
        raise ValueError(f"`base` in {str(path)!r} must be a path (string) relative to that "
                         f"file, got {base!r}.")
    merged = _read_toml(path.parent / base, seen + (path,))
    for section, table in raw.items():
        if isinstance(table, dict) and isinstance(merged.get(section), dict):
            merged[section] = {**merged[section], **table}
        else:
            merged[section] = table
    return merged


def _apply_overrides(raw: dict[str, Any], overrides: Sequence[str | tuple[str, Any]]
                     ) -> dict[str, Any]:
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
    for item in overrides:
        key, value = parse_override(item) if isinstance(item, str) else item
        section, _, name = key.partition(".")
        if section not in _SECTIONS:
            raise ValueError(f"`{key}` is not a config key: sections are "
                             f"{', '.join(map(repr, _SECTIONS))}.")
        table = out.setdefault(section, {})
        if value is None:
            table.pop(name, None)  # back to the default
        else:
            table[name] = value
    return out


def load_config(path: str | Path, overrides: Sequence[str | tuple[str, Any]] = ()) -> Config:
    """Read ``path`` (and its ``base`` chain), apply ``--set`` style ``overrides``
    (``"section.key=value"`` strings or ``(dotted_key, value)`` pairs) and validate."""
    return resolve_config(_apply_overrides(_read_toml(Path(path)), overrides))


def _section_kwargs(cls: type, section: str, table: Mapping[str, Any]
                    ) -> tuple[dict[str, Any], dict[str, Any]]:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in fields(cls) if f.name != "options"]
    known, extra = {}, {}
    for key, value in table.items():
        if key in names:
            known[key] = _coerce(f"{section}.{key}", value, hints[key])
        elif section in _WITH_OPTIONS:
            extra[key] = _tuples(value)
        else:
            raise ValueError(f"`{section}.{key}` is not a config key; valid keys: "
                             f"{', '.join(sorted(names))}.")
    return known, extra


def resolve_config(raw: Mapping[str, Any]) -> Config:
    """Validate the tables ``raw`` (``{section: {key: value}}``) into a :class:`Config`,
    filling in every default (model, method and data-set options included) and the
    factored-PFA choice, so that the result written as TOML reproduces the run."""
    raw = dict(raw)
    raw.pop("meta", None)
    raw.pop("base", None)
    for section, table in raw.items():
        if section not in _SECTIONS:
            raise ValueError(f"`{section}` is not a config section; sections: "
                             f"{', '.join(map(repr, _SECTIONS))}.")
        if not isinstance(table, Mapping):
            raise ValueError(f"`{section}` must be a table ([{section}]), got {table!r}.")
    built: dict[str, Any] = {}
    extras: dict[str, dict[str, Any]] = {}
    for section, cls in _SECTIONS.items():
        known, extra = _section_kwargs(cls, section, raw.get(section, {}))
        if section in _WITH_OPTIONS:
            extras[section] = extra
            built[section] = known
        else:
            built[section] = cls(**known)
    optim: OptimConfig = built["optim"]
    data = DataConfig(**built["data"], options=_data_options(built["data"], extras["data"]))
    model = ModelConfig(**built["model"],
                        options=_model_options(built["model"], extras["model"]))
    train: TrainSettings = built["train"]
    if learns_by_targets(model.name):
        _check_targets(model.name, train)
        method_opts = _rule_options(built["method"], extras["method"])
    else:
        method_opts = _method_options(built["method"], extras["method"], optim)
    method = MethodConfig(**built["method"], options=method_opts)
    return Config(data=data, model=model, method=method, optim=optim, train=train,
                  wm=built["wm"])


def check_amp_device(amp: str, device: str) -> None:
    """``train.amp`` against the device (a name such as 'cpu' or 'cuda:1', or a resolved
    device's type): fp16 needs CUDA and its GradScaler. 'auto' passes here and is decided
    once it resolves (:func:`alignlab.train.setup.build_run`)."""
    kind = device.partition(":")[0]
    if amp == "fp16" and kind not in ("cuda", "auto"):
        raise ValueError(f"`train.amp` must be 'off' or 'bf16' on {kind} (fp16 needs CUDA "
                         "and its GradScaler), got 'fp16'.")


def learns_by_targets(model_name: str) -> bool:
    """Whether the model trains by layer-local rules (``alignlab.gaitprop``), not convert."""
    from ..models import MODELS

    return bool(getattr(MODELS[model_name], "learns_by_targets", False))


def _check_targets(model_name: str, train: TrainSettings) -> None:
    why = f"for model {model_name!r} (trained by layer-local rules with exact inverses)"
    if train.amp != "off":
        raise invalid("train.amp", f"'off' {why}", train.amp)
    if train.compile:
        raise ValueError(f"`train.compile` must be false {why}, got true.")
    if train.loss != TrainSettings.loss:  # the rule descends its own quadratic loss
        raise invalid("train.loss", f"{TrainSettings.loss!r} {why}", train.loss)


def _rule_options(known: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    from ..gaitprop import RULES, get_rule, method_options

    name = known.get("name", MethodConfig.name)
    check_choice("method.name", name, sorted(RULES))
    valid = list(get_rule(name).options()) + ["penalty", "penalty_strength"]
    try:
        full = method_options(name, **extra)
    except (ValueError, TypeError) as exc:
        raise qualify(exc, "method", valid + list(extra)) from None
    return {k: _tuples(v) for k, v in full.items() if v is not None}


def _data_options(known: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    from ..data import DATASETS
    from ..data.pipeline import ArgumentNames

    name = known.get("name", DataConfig.name)
    check_choice("data.name", name, sorted(DATASETS))
    own = DATASETS[name].options
    unknown = sorted(set(extra) - set(own))
    if unknown:
        valid = sorted([f.name for f in fields(DataConfig) if f.name != "options"] + list(own))
        raise ValueError(f"`data.{unknown[0]}` is not a config key for data set {name!r}; "
                         f"valid keys: {', '.join(valid)}.")
    # the data set names its options as the config does (`data.n_train`), as load_dataset
    # does for the harness (config_section="data")
    full = DATASETS[name].check_options(extra, ArgumentNames("data"))
    return {k: _tuples(v) for k, v in full.items() if v is not None}


def _model_options(known: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    import torch

    from ..models import MODELS, build_model, model_options

    name = known.get("name", ModelConfig.name)
    check_choice("model.name", name, sorted(MODELS))
    defaults = model_options(name)
    unknown = sorted(set(extra) - set(defaults))
    if unknown:
        raise ValueError(f"`model.{unknown[0]}` is not an option of model {name!r}; valid "
                         f"options: {', '.join(sorted(defaults))}.")
    full = {k: _tuples(v) for k, v in {**defaults, **extra}.items()}
    try:
        with torch.device("meta"):  # checks every value without allocating or drawing
            build_model(name, **full)
    except (ValueError, TypeError) as exc:
        raise qualify(exc, "model", list(defaults)) from None
    return {k: v for k, v in full.items() if v is not None}


def _method_options(known: dict[str, Any], extra: dict[str, Any], optim: OptimConfig
                    ) -> dict[str, Any]:
    from ..nn import METHODS, get_method

    name = known.get("name", MethodConfig.name)
    check_choice("method.name", name, sorted(METHODS))
    valid = [f.name for f in dataclasses.fields(METHODS[name])]
    opts = dict(extra)
    linear = optim.name == "sgd" and not optim.nesterov
    if "state" in valid and "state" not in opts and linear:
        try:  # the method says whether it has a factored state (e.g. pfa-sparse does not)
            get_method(name, **opts, state="factored")
            opts["state"] = "factored"
        except (ValueError, TypeError):
            pass
    try:
        meth = get_method(name, **opts)
    except (ValueError, TypeError) as exc:
        raise qualify(exc, "method", valid + list(opts)) from None
    full = meth.options()
    if full.get("state") == "factored" and not linear:
        raise invalid("method.state", f"'explicit' with optim.name = {optim.name!r}"
                      f"{' and nesterov' if optim.nesterov else ''} (factored PFA is exact "
                      "only under SGD with heavy-ball momentum)", "factored")
    return {k: _tuples(v) for k, v in full.items() if v is not None}
