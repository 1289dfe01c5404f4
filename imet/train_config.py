"""Configuration of a training run and of masked-autoencoder pretraining.

Each run saves the resolved configuration in its folder (``config.json``), so a
run can be reproduced from the folder alone: the fields below, plus what was
resolved at start (architecture, pretrained source, device, library versions).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

# Fields that may differ when a run is resumed: they change where or how fast
# the run computes, or how long it goes on, not what one epoch computes.
RESUMABLE_OVERRIDES = ("epochs", "device", "num_workers")


class ConfigurationError(ValueError):
    """The configuration cannot be trained (a model that cannot be built with
    it, an empty split); the message says why."""


@dataclass
class TrainConfig:
    """Everything that decides what `imet train` computes."""

    data_dir: str  # iMet-format folder (labels.csv, train.csv, train/)
    model: str = "cnn"  # a name of imet.models.MODELS
    pretrained: str | None = None  # hub id or local folder for the start weights
    arch: dict[str, Any] | None = None  # architecture override, e.g. a vit
    # {"size": "tiny"}; config.json stores the model's full resolved arch
    epochs: int = 10  # passes over the training split
    batch_size: int = 32  # images per optimizer step and process
    image_size: int = 224  # side of the square model input, in pixels
    cache_size: int | None = None  # short side of cached images; None: 8/7 of
    # image_size, the usual resize-then-crop margin
    lr: float = 1e-3  # peak learning rate of AdamW
    weight_decay: float = 0.01  # AdamW decoupled weight decay
    warmup_fraction: float = 0.05  # share of all steps with linear warm-up,
    # then cosine decay to zero
    pos_weight_cap: float = 30.0  # bound on per-label n_neg / n_pos weights so
    # that labels with a handful of positives do not dominate the loss
    seed: int = 0  # initialisation, shuffling and augmentation
    split_seed: int = 0  # train/val/test split when the folder has none
    device: str = "auto"  # auto (CUDA, then MPS, then CPU), cpu, cuda, mps
    num_workers: int = 2  # DataLoader worker processes per training process
    mixed_precision: bool = True  # bf16 autocast on CUDA; ignored elsewhere

    def __post_init__(self) -> None:
        _check_positive(self, ("epochs", "batch_size", "image_size"))
        if self.cache_size is not None and self.cache_size < self.image_size:
            raise ValueError(
                f"cache_size ({self.cache_size}) must be at least image_size "
                f"({self.image_size})"
            )
        if not (self.lr > 0 and self.pos_weight_cap >= 1):
            raise ValueError("lr must be > 0 and pos_weight_cap >= 1")
        if not 0 <= self.warmup_fraction < 1:
            raise ValueError("warmup_fraction must be in [0, 1)")

    @property
    def cache_short_side(self) -> int:
        """Short side, in pixels, of the decoded images kept in the cache."""
        return self.cache_size or math.ceil(self.image_size * 8 / 7)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from a saved ``config.json``; resolved extras are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    def resumed_with(self, given: dict[str, Any]) -> TrainConfig:
        """This (stored) configuration with the options given on resuming.

        Only RESUMABLE_OVERRIDES may change; any other option that differs from
        the stored value is refused, since the resumed run would no longer be
        the run that was started.
        """
        changes = {}
        for name, value in given.items():
            if value is None or value == getattr(self, name):
                continue
            if name not in RESUMABLE_OVERRIDES:
                raise ValueError(
                    f"--{name.replace('_', '-')} {value} differs from the run's "
                    f"{getattr(self, name)}; only {', '.join(RESUMABLE_OVERRIDES)} "
                    "may change on --resume (start a new run or use --overwrite)"
                )
            changes[name] = value
        return dataclasses.replace(self, **changes)


@dataclass
class MAEConfig:
    """Everything that decides what `imet pretrain-mae` computes."""

    data_dir: str  # iMet-format folder; only its training-split images are used
    size: str = "small"  # encoder size of imet.models.vit.mae_config
    epochs: int = 20  # passes over the training images
    batch_size: int = 64  # images per optimizer step
    image_size: int = 64  # side of the square input, in pixels
    cache_size: int | None = None  # short side of cached images (see TrainConfig)
    mask_ratio: float = 0.75  # share of patches hidden from the encoder
    lr: float = 1.5e-3  # peak AdamW learning rate
    weight_decay: float = 0.05  # AdamW decoupled weight decay
    warmup_fraction: float = 0.1  # linear warm-up share, then cosine decay
    seed: int = 0  # initialisation, masking and augmentation
    split_seed: int = 0  # train/val/test split when the folder has none
    device: str = "auto"  # auto (CUDA, then MPS, then CPU), cpu, cuda, mps
    num_workers: int = 2  # DataLoader worker processes

    def __post_init__(self) -> None:
        _check_positive(self, ("epochs", "batch_size", "image_size"))
        if not 0 < self.mask_ratio < 1:
            raise ValueError("mask_ratio must be between 0 and 1")

    @property
    def cache_short_side(self) -> int:
        return self.cache_size or math.ceil(self.image_size * 8 / 7)


def _check_positive(config: Any, names: tuple[str, ...]) -> None:
    for name in names:
        if getattr(config, name) < 1:
            raise ValueError(f"{name} must be at least 1, not {getattr(config, name)}")
