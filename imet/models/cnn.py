"""A plain convolutional network trained from scratch.

Blocks of convolution, batch-norm and ReLU followed by 2x2 max-pooling, then
global average pooling and a linear head. No residual paths: every layer is a
type that Captum's LRP has a rule for (Conv2d, BatchNorm2d, ReLU, MaxPool2d,
AdaptiveAvgPool2d, Dropout, Linear), and every ReLU is its own non-inplace
module, so LRP and guided backprop can hook each one exactly once.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from imet.models.base import LabelModel, parse_arch

_logger = logging.getLogger(__name__)


@dataclass
class CNNArch:
    """Architecture of :class:`SimpleCNN`."""

    # output channels of each block; each block halves the resolution
    widths: list[int] = field(default_factory=lambda: [32, 64, 128, 256])
    # 3x3 convolutions per block (1 keeps a 64 px model fast on two CPU cores)
    convs_per_block: int = 1
    # batch-norm after each convolution (trains much faster from scratch)
    batch_norm: bool = True
    # dropout on the pooled features before the linear head
    dropout: float = 0.2

    def __post_init__(self) -> None:
        self.widths = [int(w) for w in self.widths]
        if not self.widths or min(self.widths) < 1:
            raise ValueError(f"widths must be positive integers, got {self.widths}")
        if self.convs_per_block < 1:
            raise ValueError("convs_per_block must be at least 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


def _conv_block(in_ch: int, out_ch: int, arch: CNNArch) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(arch.convs_per_block):
        conv_in = in_ch if i == 0 else out_ch
        # The bias is redundant when batch-norm follows.
        layers.append(
            nn.Conv2d(conv_in, out_ch, 3, padding=1, bias=not arch.batch_norm)
        )
        if arch.batch_norm:
            layers.append(nn.BatchNorm2d(out_ch))
        layers.append(nn.ReLU(inplace=False))
    layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class SimpleCNN(LabelModel):
    """Conv / ReLU / max-pool blocks, global average pool, linear head."""

    name = "cnn"
    family = "cnn"

    def __init__(self, n_labels: int, arch: CNNArch) -> None:
        super().__init__(
            n_labels=n_labels, arch=dataclasses.asdict(arch), pretrained=None
        )
        blocks = []
        in_ch = 3
        for width in arch.widths:
            blocks.append(_conv_block(in_ch, width, arch))
            in_ch = width
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self._init_head(in_ch, arch.dropout)
        self._init_weights()

    def _init_weights(self) -> None:
        # He initialisation suits ReLU networks trained from scratch.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(x)  # (B, C, H / 2^n, W / 2^n)
        # Flatten with a function, not a module: LRP has no rule for nn.Flatten.
        return torch.flatten(self.pool(x), 1)  # (B, C)

    def feature_layers(self) -> dict[str, nn.Module]:
        last_block = self.blocks[-1]
        layers: dict[str, nn.Module] = {
            "input": self.blocks[0][0],
            # the last ReLU: its output is the final map before max-pooling
            "features": last_block[len(last_block) - 2],
        }
        for i, block in enumerate(self.blocks):
            layers[f"block{i}"] = block
        return layers


def build_cnn(
    n_labels: int,
    *,
    image_size: int = 224,
    pretrained: str | None = None,
    arch: dict[str, Any] | None = None,
) -> SimpleCNN:
    """The from-scratch CNN; ``arch`` may override any field of :class:`CNNArch`."""
    if pretrained is not None:
        raise ValueError(
            "the cnn model is trained from scratch and takes no pretrained "
            f"weights (got pretrained={pretrained!r})"
        )
    parsed = parse_arch(CNNArch, arch)
    min_size = 2 ** len(parsed.widths)
    if image_size < min_size:
        raise ValueError(
            f"image_size {image_size} is too small for {len(parsed.widths)} "
            f"pooling blocks (at least {min_size} px)"
        )
    return SimpleCNN(n_labels, parsed)
