"""Shared code talks to a method only through ``Method``'s properties and hooks.

A probe method defined here (not registered, not known to ``alignlab.nn``) declares every
property and records every hook call; converting, measuring and training a model with it
must call each hook where ``methods/base.py`` says. This is what lets a new method
(GAIT-prop next) plug in without touching ``convert``, ``metrics`` or ``optim``. The
second half checks the layout: no import loop inside ``alignlab.nn``, and no method
named in the shared modules.
"""

from __future__ import annotations

import ast
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import alignlab
from alignlab.models import MLP
from alignlab.nn import (
    METHODS,
    Method,
    alignment,
    converted_layers,
    make_optimizer,
    mirror_step,
    param_groups,
)
from alignlab.nn.functional import MatrixFeedback

CALLS: list[tuple] = []


@dataclass(frozen=True)
class Probe(Method):
    """FA-like kernel that declares every property and logs every hook."""

    name: ClassVar[str] = "probe"
    state_names: ClassVar[tuple[str, ...]] = ("probe_kernel",)
    learned: ClassVar[tuple[str, ...]] = ("probe_kernel",)
    feedback_learns_from_backward: ClassVar[bool] = True
    feedback_redrawn_each_step: ClassVar[bool] = True
    mirror_trained: ClassVar[bool] = True
    follows_optimizer_step: ClassVar[bool] = True
    size: int | None = None

    def resolve(self, model):
        CALLS.append(("resolve",))
        return dataclasses.replace(self, size=sum(1 for _ in model.modules()))

    def install(self, model, layers):
        CALLS.append(("install", model, tuple(layers)))

    def uninstall(self, model):
        CALLS.append(("uninstall", model))

    def init_state(self, layer, generator):
        layer.register_parameter("probe_kernel", nn.Parameter(layer.weight.detach() * 2))

    def rule_and_state(self, layer):
        return MatrixFeedback(learns=True), (layer.probe_kernel,)

    def effective_feedback(self, layer):
        return layer.probe_kernel.detach()

    def check_training(self, *, optimizer_name, weight_decay, feedback_weight_decay):
        CALLS.append(("check_training", optimizer_name))
        if optimizer_name == "adamw":
            raise ValueError("`optimizer` must not be AdamW for 'probe', got 'adamw'.")

    def check_optimizer(self, optimizer, group):
        CALLS.append(("check_optimizer", group["name"]))

    def before_step(self, layer, optimizer, group):
        CALLS.append(("before_step", layer))
        return float(group["lr"])

    def after_step(self, layer, note):
        CALLS.append(("after_step", layer, note))

    def mirror_update(self, layer, *, lr, weight_decay, noise_std, n_samples, generator):
        CALLS.append(("mirror_update", layer, lr))


def _calls(kind):
    return [c for c in CALLS if c[0] == kind]


def test_convert_metrics_and_optimiser_use_the_hooks():
    CALLS.clear()
    net = alignlab.convert(MLP((6, 5, 3)), Probe(), rng=0)
    layers = tuple(layer for _, layer in converted_layers(net))
    assert _calls("resolve") == [("resolve",)] and len(layers) == 2
    assert all(layer.method.size == 5 for layer in layers)  # resolve()'s result is used
    assert _calls("install") == [("install", net, layers)] and not _calls("uninstall")

    # feedback_learns_from_backward: the unused first layer is still measured;
    # feedback_redrawn_each_step: the row says it is one draw
    F.cross_entropy(net(torch.randn(4, 6)), torch.randint(0, 3, (4,))).backward()
    rec = alignment(net)
    assert rec[0]["feedback_used"] is False and rec[0]["angle_deg"] == pytest.approx(0, abs=1e-5)
    assert rec[0]["norm_ratio"] == pytest.approx(2.0) and "one draw" in rec[1]["note"]

    # learned -> 'feedback' group; check_training sees the optimiser's name
    groups = param_groups(net, lr=0.1, optimizer="sgd")
    assert {id(p) for p in groups[1]["params"]} == {id(layer.probe_kernel) for layer in layers}
    assert _calls("check_training")[-1] == ("check_training", "sgd")
    with pytest.raises(ValueError, match="must not be AdamW for 'probe'"):
        make_optimizer(net, "adamw", lr=0.1)

    # follows_optimizer_step: make_optimizer attaches the step hooks
    opt = make_optimizer(net, "sgd", lr=0.25)
    assert [c[1] for c in _calls("check_optimizer")] == ["forward", "forward"]
    CALLS.clear()
    opt.step()
    assert [c[0] for c in CALLS] == ["before_step", "before_step", "after_step", "after_step"]
    assert [c[1:] for c in _calls("after_step")] == [(layers[0], 0.25), (layers[1], 0.25)]

    # mirror_trained: mirror_step calls mirror_update on each layer
    assert mirror_step(net, lr=0.5) == 2
    assert [c[1:] for c in _calls("mirror_update")] == [(layers[0], 0.5), (layers[1], 0.5)]

    # converting again uninstalls what the old method installed, once per method
    CALLS.clear()
    bp = alignlab.convert(net, "bp")
    assert _calls("uninstall") == [("uninstall", bp)] and not _calls("install")


def test_dfa_installs_and_uninstalls_its_error_capture():
    net = alignlab.convert(MLP((4, 3, 2)), "dfa", rng=0)
    contexts = [h for h in net._forward_hooks.values()
                if isinstance(h, alignlab.nn.DFAContext)]
    assert len(contexts) == 1
    assert all(layer.dfa_context is contexts[0] for _, layer in converted_layers(net))
    layer = net[1]
    layer.set_method("fa", rng=0)  # set_method clears DFA's state, context included
    assert "dfa_context" not in layer.__dict__ and "dfa_B" not in dict(layer.named_buffers())
    assert not alignlab.convert(net, "fa")._forward_hooks


# ----------------------------------------------------------------------------- layout

NN = Path(alignlab.nn.__file__).parent


def _modules():
    """alignlab.nn's modules, as dotted names relative to alignlab.nn, with their files."""
    out = {}
    for path in NN.rglob("*.py"):
        rel = path.relative_to(NN).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        out[".".join(parts)] = path
    return out


def _imports(name, path):
    """The alignlab.nn modules that module ``name`` imports (relative imports resolved)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    package = [p for p in package if p]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                if node.level - 1 > len(package):
                    continue  # above alignlab.nn
                target = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.startswith("alignlab.nn"):
                target = node.module.split(".")[2:]
            else:
                continue
            found.add(".".join(target))
            for alias in node.names:  # `from . import x` may name a submodule
                found.add(".".join(target + [alias.name]))
    return found


def test_no_import_loop_in_alignlab_nn():
    modules = _modules()
    graph = {name: {m for m in _imports(name, path) if m in modules and m != name}
             for name, path in modules.items()}
    assert graph["layers"] >= {"functional", "methods"} and "convert" not in graph["layers"]
    state: dict[str, int] = {}  # 1: on the stack, 2: done

    def visit(node, stack):
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                raise AssertionError(f"import loop: {' -> '.join(stack + [node, nxt])}")
            if nxt not in state:
                visit(nxt, stack + [node])
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name, [])


SHARED = ["convert", "metrics", "optim", "layers", "functional"]


@pytest.mark.parametrize("module", SHARED)
def test_shared_code_never_names_a_method(module):
    """No ``== 'brsf'``, no ``isinstance(..., WM)``, no private method helpers imported."""
    tree = ast.parse((NN / f"{module}.py").read_text())
    names = set(METHODS)
    classes = {cls.__name__ for cls in METHODS.values()} - {"BP"}  # bp_twin switches to BP
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for c in [node.left, *node.comparators]:
                assert not (isinstance(c, ast.Constant) and c.value in names), ast.unparse(node)
        if isinstance(node, ast.Name):
            assert node.id not in classes, f"{module} names {node.id}"
        if isinstance(node, ast.ImportFrom) and node.module and "methods" in node.module:
            assert all(not a.name.startswith("_") for a in node.names), ast.unparse(node)
