"""Layer-wise relevance propagation through Captum, and when it does not apply.

Captum's LRP (captum 0.9, ``captum/attr/_core/lrp.py``) attaches a rule to
every *leaf module* of the model and propagates relevance with backward hooks
on those modules. Two consequences decide which models it can explain:

* a leaf module of a type without a default rule (Captum knows Conv2d,
  Linear, pooling, BatchNorm2d, ReLU, Dropout and Tanh) raises ``TypeError``
  unless a rule is attached to it first; a module called twice in one forward
  pass raises ``RuntimeError``;
* operations written inside ``forward`` (``x + residual``, ``torch.matmul``
  in attention, ``F.softmax``, ``x * gate``, ``x.mean()``) have no module to
  hook. Relevance flows through them as a plain gradient, silently, and the
  result is no longer LRP (relevance is duplicated at every residual sum).

This module attaches sound rules where they exist and refuses the rest:

* element-wise activations (GELU, SiLU, ReLU6, ...) get Captum's
  ``IdentityRule``: relevance passes through unchanged, the standard LRP
  treatment of a monotone element-wise non-linearity;
* parameter-free reshapes (Flatten, Identity) and Conv2d subclasses (padding
  wrappers) get ``EpsilonRule``, which is exact for them;
* everything else (LayerNorm, attention, residual sums, gating) makes
  :func:`lrp_blockers` name the obstacle. Such models are explained by the
  conservative rules of :mod:`imet.explain.modified` when it has rules for
  them (the ViT and EfficientNet models); otherwise LRP raises
  :class:`~imet.explain.methods.MethodUnsupported` with that reason.

The check traces the forward pass with ``torch.fx``, treating leaf modules as
opaque, and lists every operation that is not a module call or a pure
reshape.
"""

from __future__ import annotations

import logging
import operator
import warnings

import torch
from captum.attr import LRP
from captum.attr._core.lrp import (
    SUPPORTED_LAYERS_WITH_RULES,
    SUPPORTED_NON_LINEAR_LAYERS,
)
from captum.attr._utils.lrp_rules import EpsilonRule, GammaRule, IdentityRule
from torch import fx, nn

_logger = logging.getLogger(__name__)

# Composite-rule settings (see _composite_rules); activations after batch-norm
# are of order 1, which sets the scale of epsilon.
_GAMMA = 0.25
_EPSILON = 0.25
# Element-wise, monotone activations: relevance passes through unchanged.
_IDENTITY_RULE_TYPES = (
    nn.GELU,
    nn.SiLU,
    nn.ReLU6,
    nn.Hardswish,
    nn.LeakyReLU,
    nn.ELU,
    nn.Sigmoid,
)
# transformers' own element-wise activation modules, matched by class name so
# that this module does not import transformers.
_IDENTITY_RULE_NAMES = {"GELUActivation", "FastGELUActivation", "SiLUActivation"}
# Layers whose output is a rearrangement (or padded convolution) of the
# input, for which the epsilon rule is exact.
_EPSILON_RULE_TYPES = (nn.Flatten, nn.Identity, nn.Unflatten, nn.ZeroPad2d, nn.Conv2d)

# Functions and tensor methods that only rearrange values: relevance passing
# through them as a gradient is exactly what LRP does.
_RESHAPE_FUNCTIONS = {torch.flatten, torch.reshape, operator.getitem, getattr}
_RESHAPE_METHODS = {
    "flatten",
    "view",
    "reshape",
    "contiguous",
    "squeeze",
    "unsqueeze",
    "permute",
    "transpose",
    "size",
    "dim",
}


def _rule_for(module: nn.Module):
    """A rule to attach to a leaf module before Captum sees it, or None when
    Captum's own default applies (or none exists)."""
    if type(module) in SUPPORTED_LAYERS_WITH_RULES:
        return None
    if type(module) in SUPPORTED_NON_LINEAR_LAYERS:
        return None
    if (
        isinstance(module, _IDENTITY_RULE_TYPES)
        or type(module).__name__ in _IDENTITY_RULE_NAMES
    ):
        return IdentityRule()
    if isinstance(module, _EPSILON_RULE_TYPES):
        return EpsilonRule()
    return None


def _has_rule(module: nn.Module) -> bool:
    return (
        type(module) in SUPPORTED_LAYERS_WITH_RULES
        or type(module) in SUPPORTED_NON_LINEAR_LAYERS
        or _rule_for(module) is not None
    )


class _LeafTracer(fx.Tracer):
    """Traces through containers and stops at leaf modules, as Captum does."""

    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        return next(module.children(), None) is None


def lrp_blockers(model: nn.Module) -> list[str]:
    """Reasons why Captum's LRP would not compute LRP for ``model``; empty
    when every operation of its forward pass is covered by a rule."""
    blockers: list[str] = []
    for module in model.modules():
        if type(module).__name__.endswith("Attention"):
            blockers.append("self-attention (softmax and matrix products)")
        elif next(module.children(), None) is None and not _has_rule(module):
            blockers.append(f"{type(module).__name__} layers (no LRP rule)")
    try:
        graph = _LeafTracer().trace(model)
    except Exception as error:  # fx raises many types on dynamic control flow
        blockers.append(
            "a forward pass that cannot be traced to check its operations "
            f"({type(error).__name__})"
        )
        return list(dict.fromkeys(blockers))
    calls: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
        elif node.op == "call_function" and node.target not in _RESHAPE_FUNCTIONS:
            name = getattr(node.target, "__name__", str(node.target))
            blockers.append(f"`{name}` written inside forward")
        elif node.op == "call_method" and node.target not in _RESHAPE_METHODS:
            blockers.append(f"`.{node.target}()` written inside forward")
    reused = [name for name, n in calls.items() if n > 1]
    if reused:
        blockers.append(
            f"modules used twice in one pass ({', '.join(reused[:2])}, ...)"
        )
    return list(dict.fromkeys(blockers))  # unique, first-seen order


def _composite_rules(model: nn.Module) -> dict[nn.Module, object]:
    """Composite LRP (Montavon et al., 2019, "Layer-wise relevance
    propagation: an overview"): the gamma rule in the lowest third of the
    convolutions (favours positive evidence, less noise), the epsilon rule with
    a sizeable epsilon above them (absorbs weak, contradictory relevance), and
    LRP-0 in the linear head. With LRP-0 everywhere a ReLU network's LRP equals
    Gradient x Input exactly, so the composite is what makes LRP add anything.
    """
    rules: dict[nn.Module, object] = {}
    convs = [
        m
        for m in model.modules()
        if isinstance(m, nn.Conv2d) and not hasattr(m, "rule")
    ]
    lower = max(1, len(convs) // 3)
    for i, conv in enumerate(convs):
        rules[conv] = GammaRule(gamma=_GAMMA) if i < lower else EpsilonRule(_EPSILON)
    for module in model.modules():
        if next(module.children(), None) is None and not hasattr(module, "rule"):
            rule = _rule_for(module)
            if rule is not None and module not in rules:
                rules[module] = rule
    return rules


def lrp_attribute(model: nn.Module, x: torch.Tensor, target) -> torch.Tensor:
    """Relevance (B, 3, H, W) of ``target`` for inputs ``x``; call only when
    :func:`lrp_blockers` is empty."""
    rules = _composite_rules(model)
    for module, rule in rules.items():
        module.rule = rule
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return LRP(model).attribute(x, target=target)
    finally:
        # Captum deletes the rules it used; drop any it left on failure.
        for module in rules:
            if hasattr(module, "rule"):
                del module.rule
