"""Attention rollout for Vision Transformers, plain and gradient-weighted.

Reads the attention probabilities through the model's ``feature_layers()``:
every ``"attention{i}"`` module returns ``(output, weights)`` with weights
(B, heads, T, T), T = 1 + N tokens (class token first, then the patches row by
row). Forward hooks collect them, so the map comes from the same forward pass
that produced the logit.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from imet.explain.methods import MethodUnsupported


def select_logits(logits: torch.Tensor, target) -> torch.Tensor:
    """The logit of each image's target label, (B,); ``target`` is an int or a
    (B,) tensor of label columns."""
    index = torch.as_tensor(target, device=logits.device).reshape(-1)
    index = index.expand(logits.shape[0]) if index.numel() == 1 else index
    return logits.gather(1, index[:, None].long())[:, 0]


def _attention_modules(model: nn.Module) -> list[nn.Module]:
    if getattr(model, "family", "") != "vit":
        raise MethodUnsupported(
            "attention rollout reads a transformer's attention weights, and "
            "this model is a convolutional network without attention"
        )
    layers = model.feature_layers()
    return [
        layers[f"attention{i}"] for i in range(len(layers)) if f"attention{i}" in layers
    ]


def _collect_attention(model: nn.Module, x: torch.Tensor, target, *, weighted: bool):
    modules = _attention_modules(model)
    captured: list[torch.Tensor] = []

    def keep(module, inputs, output) -> None:
        weights = output[1] if isinstance(output, tuple) else None
        if weights is None:
            raise MethodUnsupported(
                "the model computes attention without returning its weights "
                "(a fused attention kernel); rollout needs eager attention"
            )
        if weighted:
            weights.retain_grad()
        captured.append(weights)

    handles = [m.register_forward_hook(keep) for m in modules]
    try:
        with torch.set_grad_enabled(weighted):
            logits = model(x)  # (B, L)
        if weighted:
            select_logits(logits, target).sum().backward()
    finally:
        for handle in handles:
            handle.remove()
    return captured


def rollout(model: nn.Module, x: torch.Tensor, target, *, weighted: bool):
    """Token relevance (B, S, S) from attention rollout; ``weighted`` uses
    the gradient-weighted rule of Chefer et al. (2021)."""
    captured = _collect_attention(model, x, target, weighted=weighted)
    batch, _, tokens, _ = captured[0].shape
    eye = torch.eye(tokens, device=x.device).expand(batch, tokens, tokens)
    relevance = eye.clone()  # (B, T, T)
    for weights in captured:
        if weighted:
            # keep only attention that raised the label's logit
            attention = (weights.grad * weights).clamp(min=0).mean(dim=1)
            relevance = relevance + torch.bmm(attention.detach(), relevance)
        else:
            # the residual path carries as much as the attention path
            attention = 0.5 * weights.detach().mean(dim=1) + 0.5 * eye
            attention = attention / attention.sum(dim=-1, keepdim=True)
            relevance = torch.bmm(attention, relevance)
    pool = getattr(model, "pool", "mean")
    if pool == "cls":
        patch_relevance = relevance[:, 0, 1:]  # (B, N)
    else:  # the embedding is the mean of the patch tokens
        patch_relevance = relevance[:, 1:, 1:].mean(dim=1)  # (B, N)
    height, width = x.shape[-2:]
    patch = getattr(model, "patch_size", None) or int(
        math.sqrt(height * width / (tokens - 1))
    )
    grid = patch_relevance.reshape(batch, 1, height // patch, width // patch)
    maps = F.interpolate(
        grid, size=(height, width), mode="bilinear", align_corners=False
    )
    return maps[:, 0]  # (B, S, S)
