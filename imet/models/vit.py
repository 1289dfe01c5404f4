"""Vision Transformer from a masked autoencoder (ViT-MAE), fine-tuned with a label head.

The encoder is ``transformers.ViTMAEModel``. MAE pretraining hides 75% of the
patches; for fine-tuning and saliency the encoder must see every patch in grid
order. ``ViTMAEEmbeddings.random_masking`` keeps ``int(N * (1 - mask_ratio))``
patches in the order of ``argsort(noise)`` and draws the noise at random when
none is given, so with ``mask_ratio = 0`` alone all patches are kept but
shuffled (and the random generator advances). This model sets ``mask_ratio``
to 0 *and* passes increasing noise, whose argsort is the identity: tokens stay
in row-major patch order (class token first), the forward pass is
deterministic, and attention maps line up with the image.

Position embeddings are the fixed 2-D sine-cosine table of MAE; the forward
pass always asks transformers to interpolate them, which returns the table
unchanged at the trained size and resizes it for other input sizes (a
``facebook/vit-mae-base`` encoder made for 224 px can be fine-tuned at 96 px).

Pooling follows MAE fine-tuning: the mean of the patch tokens, then a fresh
LayerNorm (``pool="cls"`` takes the class token instead). Attention is computed
eagerly so that :meth:`MAEViT.forward_attentions` can return the attention
probabilities for attention rollout.

``mae_config`` and ``build_mae_pretraining`` make the matching
``ViTMAEForPreTraining`` for pretraining on a collection's own images; a folder
written by its ``save_pretrained`` is a valid ``pretrained`` value here.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from imet.models.base import (
    LabelModel,
    hf_config_record,
    load_hf_backbone,
    parse_arch,
)

_logger = logging.getLogger(__name__)

# Encoder and decoder sizes. "base" is ViT-B/16 as in facebook/vit-mae-base;
# "small" trains on two CPU cores at 64-96 px; "tiny" is for smoke tests.
SIZES: dict[str, dict[str, int]] = {
    "tiny": {
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 128,
        "patch_size": 8,
        "decoder_hidden_size": 32,
        "decoder_num_hidden_layers": 1,
        "decoder_num_attention_heads": 2,
        "decoder_intermediate_size": 64,
    },
    "small": {
        "hidden_size": 192,
        "num_hidden_layers": 6,
        "num_attention_heads": 3,
        "intermediate_size": 768,
        "patch_size": 8,
        "decoder_hidden_size": 128,
        "decoder_num_hidden_layers": 2,
        "decoder_num_attention_heads": 4,
        "decoder_intermediate_size": 512,
    },
    "base": {
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "patch_size": 16,
        "decoder_hidden_size": 512,
        "decoder_num_hidden_layers": 8,
        "decoder_num_attention_heads": 16,
        "decoder_intermediate_size": 2048,
    },
}
POOLS = ("mean", "cls")


def mae_config(
    image_size: int,
    size: str = "small",
    *,
    patch_size: int | None = None,
    mask_ratio: float = 0.75,
    norm_pix_loss: bool = True,
) -> Any:
    """A ``ViTMAEConfig`` of a named size for square images of ``image_size`` px.

    ``norm_pix_loss`` reconstructs per-patch normalised pixels, which the MAE
    paper found gives better representations.
    """
    from transformers import ViTMAEConfig

    if size not in SIZES:
        raise ValueError(f"unknown ViT size {size!r}; known sizes: {sorted(SIZES)}")
    settings = dict(SIZES[size])
    if patch_size is not None:
        settings["patch_size"] = patch_size
    if image_size % settings["patch_size"]:
        raise ValueError(
            f"image_size {image_size} is not a multiple of the patch size "
            f"{settings['patch_size']}"
        )
    if not 0.0 <= mask_ratio < 1.0:
        raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
    return ViTMAEConfig(
        image_size=image_size,
        mask_ratio=mask_ratio,
        norm_pix_loss=norm_pix_loss,
        **settings,
    )


def build_mae_pretraining(
    image_size: int,
    size: str = "small",
    *,
    patch_size: int | None = None,
    mask_ratio: float = 0.75,
) -> Any:
    """A randomly initialised ``ViTMAEForPreTraining`` (encoder and decoder)."""
    from transformers import ViTMAEForPreTraining

    config = mae_config(image_size, size, patch_size=patch_size, mask_ratio=mask_ratio)
    return ViTMAEForPreTraining(config)


@dataclass
class ViTArch:
    """Architecture of :class:`MAEViT`."""

    # size preset (see SIZES) used when neither `config` nor weights are given;
    # recorded as the preset the encoder matches, None when it matches none
    size: str | None = "small"
    # ViTMAEConfig.to_dict() of the encoder; when set it wins over `size`
    config: dict[str, Any] | None = None
    # "mean" of the patch tokens (MAE fine-tuning) or the "cls" token
    pool: str = "mean"
    # dropout on the pooled features before the head
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.pool not in POOLS:
            raise ValueError(f"pool must be one of {POOLS}, got {self.pool!r}")


class MAEViT(LabelModel):
    """ViT-MAE encoder with every patch visible, pooled, with a linear head."""

    name = "vit"
    family = "vit"

    def __init__(
        self, n_labels: int, encoder: nn.Module, arch: ViTArch, pretrained: str | None
    ) -> None:
        config = encoder.config
        config.mask_ratio = 0.0
        encoder.set_attn_implementation("eager")
        arch_dict = dataclasses.asdict(arch) | {
            "size": _preset_of(config),
            "config": hf_config_record(config),
        }
        super().__init__(n_labels=n_labels, arch=arch_dict, pretrained=pretrained)
        self.encoder = encoder
        self.patch_size = int(config.patch_size)
        self.pool = arch.pool
        self.fc_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self._init_head(config.hidden_size, arch.dropout)

    def _encode(self, x: torch.Tensor, **kwargs: Any) -> Any:
        batch, _, height, width = x.shape
        n_patches = (height // self.patch_size) * (width // self.patch_size)
        # argsort of increasing noise is the identity: keep every patch in order.
        noise = torch.arange(n_patches, device=x.device, dtype=torch.float32)
        return self.encoder(
            pixel_values=x,
            noise=noise.expand(batch, n_patches),
            interpolate_pos_encoding=True,
            **kwargs,
        )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self._encode(x).last_hidden_state  # (B, 1 + N, D)
        pooled = tokens[:, 1:].mean(dim=1) if self.pool == "mean" else tokens[:, 0]
        return self.fc_norm(pooled)  # (B, D)

    def forward_attentions(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Attention probabilities of every layer, each ``(B, heads, T, T)``.

        ``T = 1 + N``: the class token, then the patches row by row.
        """
        return list(self._encode(x, output_attentions=True).attentions)

    def feature_layers(self) -> dict[str, nn.Module]:
        layers: dict[str, nn.Module] = {
            "input": self.encoder.embeddings.patch_embeddings.projection,
            "features": self.encoder.layernorm,
        }
        for i, layer in enumerate(self.encoder.layers):
            layers[f"block{i}"] = layer
        for i, layer in enumerate(self.encoder.layers):
            layers[f"attention{i}"] = layer.attention
        return layers


def _preset_of(config: Any) -> str | None:
    """The SIZES preset whose encoder shape ``config`` has, if any."""
    encoder_keys = (
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "intermediate_size",
        "patch_size",
    )
    for name, settings in SIZES.items():
        if all(getattr(config, key) == settings[key] for key in encoder_keys):
            return name
    return None


def _load_encoder(pretrained: str) -> nn.Module:
    from transformers import ViTMAEConfig, ViTMAEForPreTraining, ViTMAEModel

    # Pretraining checkpoints (facebook/vit-mae-base, `imet pretrain-mae`) keep
    # the encoder under `.vit`; the decoder is dropped.
    return load_hf_backbone(
        pretrained,
        config_class=ViTMAEConfig,
        backbone_class=ViTMAEModel,
        wrapper_class=ViTMAEForPreTraining,
        wrapper_attr="vit",
        ignore="decoder.",
        config_overrides={"mask_ratio": 0.0},
    )


def build_vit(
    n_labels: int,
    *,
    image_size: int = 224,
    pretrained: str | None = None,
    arch: dict[str, Any] | None = None,
) -> MAEViT:
    """ViT-MAE encoder with a label head.

    Weights come from ``pretrained`` (hub id or ``save_pretrained`` folder of a
    ``ViTMAEForPreTraining`` or ``ViTMAEModel``) unless ``arch`` records a
    config, which rebuilds the network without reading weights. Otherwise the
    ``arch["size"]`` preset is initialised at random for ``image_size``.
    """
    from transformers import ViTMAEConfig, ViTMAEModel

    parsed = parse_arch(ViTArch, arch)
    if parsed.config is not None:
        encoder = ViTMAEModel(ViTMAEConfig.from_dict(parsed.config))
    elif pretrained is not None:
        encoder = _load_encoder(pretrained)
        _logger.info("ViT-MAE encoder loaded from %s", pretrained)
    else:
        encoder = ViTMAEModel(mae_config(image_size, parsed.size or "small"))
    patch = int(encoder.config.patch_size)
    if image_size % patch:
        raise ValueError(
            f"image_size {image_size} is not a multiple of the patch size {patch}"
        )
    return MAEViT(n_labels, encoder, parsed, pretrained)
