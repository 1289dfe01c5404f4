"""Saliency through a modified backward pass: guided backprop and conservative
LRP for models that Captum's module-hook implementations cannot serve.

Both work by hooking the model's *modules* for the length of one attribution,
never by editing the model. Hooks attach to each call of a module, so a module
called twice in one forward pass (every EfficientNet-Lite block reuses one
ReLU6) is treated correctly at both calls.

**Guided backprop** (Springenberg et al., 2015) lets only positive gradient
flow back through each rectifier. Captum's ``GuidedBackprop`` applies this at
``nn.ReLU`` modules only; on a model built from ReLU6, GELU, SiLU or Hardswish
it silently returns the plain gradient. :func:`guided_gradient` instead clamps
at zero the gradient that leaves every activation module towards its input.
For ReLU and ReLU6 this is exactly the guided rule (the activation's own
derivative already zeroes the gradient where the input was not positive, or
above 6). For smooth activations (GELU, SiLU, Hardswish) clamping the outgoing
gradient is the usual generalisation; it is this project's rule, not Captum's
implementation.

**Conservative LRP** is computed as Gradient x Input of a network whose
non-linear factors are frozen in the backward pass (Ali et al., 2022, "XAI for
Transformers: Better Explanations through Conservative Propagation"; Achtibat
et al., 2024, AttnLRP). With every factor below treated as a constant, the
network is linear in its input apart from bias terms, and input x gradient
distributes the label's logit over the pixels (the biases keep the rest):

* element-wise activations (ReLU6, GELU, SiLU, Hardswish): ``x * (act(x) /
  x).detach()``, the identity rule (relevance passes through unchanged);
* LayerNorm: the standard deviation is detached (the LN rule);
* self-attention: the softmax probabilities are detached and act as constant
  mixing weights over the values (the AH-rule / CP-LRP);
* squeeze-and-excitation gates (a Sigmoid that multiplies features): the gate
  is detached, so relevance flows through the features only;
* convolution, linear, batch-norm (evaluation mode), pooling and residual sums
  are linear: their Gradient x Input is the LRP-0 rule, which is conservative.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

_logger = logging.getLogger(__name__)

# Element-wise, monotone-ish activations: guided backprop rectifies at them and
# conservative LRP passes relevance through them unchanged.
_ACTIVATION_TYPES = (
    nn.ReLU,
    nn.ReLU6,
    nn.GELU,
    nn.SiLU,
    nn.Hardswish,
    nn.LeakyReLU,
    nn.ELU,
)
# transformers' own activation modules, matched by class name so that this
# module does not import transformers.
_ACTIVATION_NAMES = {
    "GELUActivation",
    "FastGELUActivation",
    "NewGELUActivation",
    "QuickGELUActivation",
    "SiLUActivation",
    "Swish",
    "MemoryEfficientSwish",
}
# Gates: a sigmoid whose output multiplies features (squeeze-and-excitation).
_GATE_TYPES = (nn.Sigmoid, nn.Hardsigmoid)
# Attention modules whose forward computes its probabilities through
# transformers' attention interface, so a registered function can detach them.
_ATTENTION_NAMES = {"ViTMAEAttention"}
_CP_LRP_ATTENTION = "imet_cp_lrp"
# Leaf modules that are linear in their input in evaluation mode (or select
# inputs, like max pooling): LRP-0 through them is Gradient x Input.
_LINEAR_TYPES = (
    nn.Conv2d,
    nn.Linear,
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.LayerNorm,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool2d,
    nn.MaxPool2d,
    nn.AdaptiveMaxPool2d,
    nn.Dropout,
    nn.Dropout2d,
    nn.Identity,
    nn.Flatten,
    nn.ZeroPad2d,
)
# Registered model names whose forward passes were read for operations outside
# modules, with the rules that apply to them. Anything else is refused: an
# unseen ``F.gelu`` or ``x * gate`` inside a forward would make the result a
# plain Gradient x Input.
CONSERVATIVE_RULES: dict[str, str] = {
    "vit": "LayerNorm with detached deviation, attention probabilities detached "
    "(AH-rule), GELU as identity, LRP-0 through linear layers and residual sums",
    "efficientnet-lite0": "ReLU6 as identity, LRP-0 through convolutions, "
    "batch-norm, pooling and residual sums",
    "efficientnet": "SiLU as identity, squeeze-and-excitation gates detached, "
    "LRP-0 through convolutions, batch-norm, pooling and residual sums",
}


def is_activation(module: nn.Module) -> bool:
    """True for element-wise activation modules this module has rules for."""
    return (
        isinstance(module, _ACTIVATION_TYPES)
        or type(module).__name__ in _ACTIVATION_NAMES
    )


def _select(logits: torch.Tensor, target) -> torch.Tensor:
    """The logits of ``target`` (an int, or one label per image), summed over
    the batch: images do not interact, so one backward gives every gradient."""
    if isinstance(target, int):
        return logits[:, target].sum()
    index = torch.as_tensor(target, device=logits.device).view(-1, 1)
    return logits.gather(1, index.expand(len(logits), 1)).sum()


class _ClampGradient(torch.autograd.Function):
    """Identity forward; the gradient flowing back is clamped at zero."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad.clamp(min=0)


def _clamp_input_gradient(module: nn.Module, args: tuple) -> tuple:
    # Wrapping the input clamps the gradient after the activation's own
    # derivative, i.e. the gradient this call sends towards its input.
    return (_ClampGradient.apply(args[0]), *args[1:])


def guided_gradient(model: nn.Module, x: torch.Tensor, target) -> torch.Tensor:
    """Guided-backprop gradient (B, 3, H, W) of ``target`` for inputs ``x``."""
    activations = [m for m in model.modules() if is_activation(m)]
    handles = [m.register_forward_pre_hook(_clamp_input_gradient) for m in activations]
    try:
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(_select(model(x), target), x)
    finally:
        for handle in handles:
            handle.remove()
    return grad


# ------------------------------------------------------------ conservative LRP


def _identity_rule(module: nn.Module, args: tuple, output: torch.Tensor):
    x = args[0]
    safe = torch.where(x == 0, torch.ones_like(x), x)
    ratio = torch.where(x == 0, torch.zeros_like(x), output / safe).detach()
    return x * ratio


def _detach_gate(module: nn.Module, args: tuple, output: torch.Tensor):
    return output.detach()


def _layer_norm_rule(module: nn.LayerNorm, args: tuple, output: torch.Tensor):
    x = args[0]
    dims = tuple(range(-len(module.normalized_shape), 0))
    mean = x.mean(dim=dims, keepdim=True)
    var = x.var(dim=dims, unbiased=False, keepdim=True)
    y = (x - mean) / torch.sqrt(var + module.eps).detach()
    if module.weight is not None:
        y = y * module.weight
    if module.bias is not None:
        y = y + module.bias
    return y


def _cp_lrp_attention(
    module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs
):
    """Eager attention whose probabilities are constants in the backward."""
    if scaling is None:
        scaling = query.size(-1) ** -0.5
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        scores = scores + attention_mask
    weights = F.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    output = torch.matmul(weights.detach(), value).transpose(1, 2).contiguous()
    return output, weights


@contextlib.contextmanager
def _detached_attention(model: nn.Module) -> Iterator[None]:
    """Points every supported attention module at :func:`_cp_lrp_attention`
    through a private copy of its config; the model's own config is untouched."""
    modules = [m for m in model.modules() if type(m).__name__ in _ATTENTION_NAMES]
    if not modules:
        yield
        return
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    if _CP_LRP_ATTENTION not in ALL_ATTENTION_FUNCTIONS:
        ALL_ATTENTION_FUNCTIONS.register(_CP_LRP_ATTENTION, _cp_lrp_attention)
    originals = [m.config for m in modules]
    try:
        for module, config in zip(modules, originals, strict=True):
            private = copy.copy(config)
            private._attn_implementation = _CP_LRP_ATTENTION
            module.config = private
        yield
    finally:
        for module, config in zip(modules, originals, strict=True):
            module.config = config


def conservative_blockers(model: nn.Module) -> list[str]:
    """Reasons why :func:`conservative_relevance` cannot serve ``model``."""
    name = getattr(model, "name", "")
    if name not in CONSERVATIVE_RULES:
        return [f"no conservative propagation rules for the model {name!r}"]
    unknown = set()
    for module in model.modules():
        kind = type(module).__name__
        unseen_attention = kind.endswith("Attention") and kind not in _ATTENTION_NAMES
        leaf_without_rule = (
            next(module.children(), None) is None
            and not isinstance(module, _LINEAR_TYPES + _GATE_TYPES)
            and not is_activation(module)
        )
        if unseen_attention or leaf_without_rule:
            unknown.add(kind)
    return [f"{kind} layers (no LRP rule)" for kind in sorted(unknown)]


def conservative_relevance(model: nn.Module, x: torch.Tensor, target) -> torch.Tensor:
    """Relevance (B, 3, H, W) of ``target`` for inputs ``x`` under the rules of
    :data:`CONSERVATIVE_RULES`; call only when :func:`conservative_blockers`
    is empty. The relevance sums to the logit minus what the biases carry."""
    handles = []
    for module in model.modules():
        if is_activation(module):
            handles.append(module.register_forward_hook(_identity_rule))
        elif isinstance(module, _GATE_TYPES):
            handles.append(module.register_forward_hook(_detach_gate))
        elif isinstance(module, nn.LayerNorm):
            handles.append(module.register_forward_hook(_layer_norm_rule))
    try:
        with _detached_attention(model), torch.enable_grad():
            (grad,) = torch.autograd.grad(_select(model(x), target), x)
    finally:
        for handle in handles:
            handle.remove()
    return x.detach() * grad
