"""The interface every attribute model shares: features, then one logit per label.

A :class:`LabelModel` is split the way saliency, embeddings and similar-image
search need it: ``forward_features`` gives one pooled vector per image and
``forward_head`` turns it into logits. ``arch`` records the architecture as
plain JSON so that a run folder alone can rebuild the model without fetching
any pretrained weights.

``feature_layers()`` names the modules that saliency methods hook. Every model
provides these keys:

``"input"``
    the first layer that reads pixels (convolution stem or patch projection);
``"features"``
    the layer whose output is the model's last activation map, the one that
    pooling summarises into the embedding (the Grad-CAM layer). For
    ``family == "cnn"`` its output is ``(B, C, h, w)``; for ``family == "vit"``
    it is ``(B, 1 + N, D)`` tokens, the class token first and then the
    ``N = (H / patch) * (W / patch)`` patches row by row;
``"block{i}"``
    each stage (CNN) or encoder layer (ViT), in order from the input.

ViT models add ``"attention{i}"``: the self-attention module of layer ``i``,
whose forward returns ``(output, weights)`` with weights ``(B, heads, T, T)``.
"""

from __future__ import annotations

import abc
import dataclasses
import logging
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

_logger = logging.getLogger(__name__)

ArchT = TypeVar("ArchT")


class LabelModel(nn.Module, abc.ABC):
    """A multi-label image classifier split into pooled features and a linear head.

    Subclasses build their backbone, call :meth:`_init_head`, and implement
    :meth:`forward_features` and :meth:`feature_layers`.
    """

    name: str = ""  # registry name, e.g. "cnn"
    family: str = ""  # "cnn" (spatial feature maps) or "vit" (tokens)

    def __init__(
        self, *, n_labels: int, arch: dict[str, Any], pretrained: str | None
    ) -> None:
        super().__init__()
        if n_labels < 1:
            raise ValueError(f"n_labels must be at least 1, got {n_labels}")
        self.n_labels = n_labels
        self.arch = arch
        self.pretrained = pretrained
        self.embed_dim = 0

    def _init_head(self, embed_dim: int, dropout: float) -> None:
        self.embed_dim = embed_dim
        # Dropout is a module (not functional) so that LRP treats it as identity.
        self.head_dropout = nn.Dropout(dropout)
        self.head = nn.Linear(embed_dim, self.n_labels)

    @abc.abstractmethod
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled embedding ``(B, D)`` of images ``(B, 3, H, W)``."""

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, L)`` from pooled features ``(B, D)``."""
        return self.head(self.head_dropout(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))  # (B, L)

    @abc.abstractmethod
    def feature_layers(self) -> dict[str, nn.Module]:
        """Modules useful for saliency; the keys are described in the module doc."""

    @torch.no_grad()
    def init_head_bias(self, positive_rate: torch.Tensor | Any) -> None:
        """Start each label's logit at the log-odds of its training frequency.

        With thousands of rare labels a zero bias predicts 0.5 everywhere and
        the first steps are spent pushing every logit down; starting from the
        prior avoids that. Rates are clipped to [1e-4, 1 - 1e-4].
        """
        rate = torch.as_tensor(positive_rate, dtype=torch.float32)
        if rate.shape != (self.n_labels,):
            raise ValueError(
                f"positive_rate must have shape ({self.n_labels},), "
                f"got {tuple(rate.shape)}"
            )
        rate = rate.clamp(1e-4, 1 - 1e-4)
        self.head.bias.copy_(torch.log(rate / (1 - rate)))


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters (optionally only those that require gradients)."""
    return sum(
        p.numel() for p in model.parameters() if p.requires_grad or not trainable_only
    )


def parse_arch(arch_cls: type[ArchT], arch: dict[str, Any] | None) -> ArchT:
    """Build an architecture dataclass from a (possibly partial) dict.

    Unknown keys are an error rather than silently ignored, so a typo in a
    configuration cannot train a different model than the one asked for.
    """
    if arch is None:
        return arch_cls()
    if not isinstance(arch, dict):
        raise ValueError(f"arch must be a dict, got {type(arch).__name__}")
    known = {f.name for f in dataclasses.fields(arch_cls)}  # type: ignore[arg-type]
    unknown = sorted(set(arch) - known)
    if unknown:
        raise ValueError(
            f"unknown arch keys {unknown} for {arch_cls.__name__}; "
            f"known keys: {sorted(known)}"
        )
    return arch_cls(**arch)


def hf_source(pretrained: str) -> str:
    """Check a ``pretrained`` value that names a local folder or a hub id.

    An existing path must be a folder written by ``save_pretrained``. A value
    shaped like a path (``./x``, ``/x``, ``~/x``, ``a/b/c``) that does not exist
    is an error; anything else is passed on as a hub id (``owner/name``).
    """
    path = Path(pretrained).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ValueError(
                f"pretrained folder {str(path)!r} has no config.json; expected "
                "a folder written by save_pretrained"
            )
        return str(path)
    looks_like_path = pretrained.startswith((".", "/", "~", "\\")) or (
        pretrained.count("/") > 1
    )
    if looks_like_path:
        raise ValueError(f"pretrained folder {pretrained!r} does not exist")
    return pretrained


def hf_config_record(config: Any) -> dict[str, Any]:
    """A transformers config as plain JSON for ``arch``, without class names.

    The checkpoint's own label names (1,000 ImageNet classes for a
    classification checkpoint) describe a head this model replaces.
    """
    record = config.to_dict()
    for key in ("id2label", "label2id"):
        record.pop(key, None)
    return record


def require_loaded(pretrained: str, info: dict[str, Any], *, ignore: str) -> None:
    """Fail when a checkpoint left backbone weights at their random start.

    ``info`` is ``from_pretrained(..., output_loading_info=True)``'s report;
    keys starting with ``ignore`` (the part this model drops, such as the MAE
    decoder) may be missing. Fine-tuning a partly random backbone would waste
    the run without any error.
    """
    missing = sorted(k for k in info["missing_keys"] if not k.startswith(ignore))
    if missing:
        raise ValueError(
            f"{pretrained!r} lacks backbone weights {missing[:5]} "
            f"({len(missing)} missing)"
        )


def hf_load_error(pretrained: str, error: Exception) -> ValueError:
    """A readable error for weights that could neither be read nor downloaded."""
    return ValueError(
        f"could not load pretrained weights from {pretrained!r}: it is not a "
        "local folder written by save_pretrained, and the Hugging Face hub "
        f"could not provide it ({type(error).__name__}: {error})"
    )


def load_hf_backbone(
    pretrained: str,
    *,
    config_class: type,
    backbone_class: type,
    wrapper_class: type,
    wrapper_attr: str,
    ignore: str,
    config_overrides: dict[str, Any] | None = None,
) -> nn.Module:
    """The backbone of a Hugging Face checkpoint (hub id or local folder).

    A checkpoint saved from ``wrapper_class`` (an image classifier, the MAE
    pretraining model) keeps the backbone under ``wrapper_attr``: it is loaded
    whole and the backbone taken, so that its extra part (whose keys start
    with ``ignore``) is not reported as unused weights.
    """
    source = hf_source(pretrained)
    try:
        config = config_class.from_pretrained(source)
        for key, value in (config_overrides or {}).items():
            setattr(config, key, value)
        if wrapper_class.__name__ in (config.architectures or []):
            full, info = wrapper_class.from_pretrained(
                source, config=config, output_loading_info=True
            )
            backbone = getattr(full, wrapper_attr)
        else:
            backbone, info = backbone_class.from_pretrained(
                source, config=config, output_loading_info=True
            )
    except OSError as error:
        raise hf_load_error(pretrained, error) from error
    require_loaded(pretrained, info, ignore=ignore)
    return backbone
