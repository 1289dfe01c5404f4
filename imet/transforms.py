"""Image preprocessing for training and evaluation, on PIL images and torch.

Training (``train_transform``), in this order:

1. a random crop covering 20-100% of the image area, with a width / height
   ratio drawn log-uniformly from [3/4, 4/3], resized to ``image_size`` square;
   when ten draws in a row do not fit inside the image (very elongated images),
   a centred crop is taken instead (see ``sample_crop``);
2. a horizontal flip with probability 0.5;
3. a Gaussian blur with a 5x5 kernel, applied with probability 0.5, its sigma
   drawn uniformly from [0.1, 1.0] (half the images stay sharp, so the model
   also sees the detail it meets at evaluation);
4. normalisation with mean 0.5 and std 0.5 per channel, so values lie in
   [-1, 1].

Evaluation (``eval_transform``) resizes the shorter side to
``image_size / crop_fraction`` (``crop_fraction`` 0.875 by default, the usual
256 -> 224 ratio) and takes the centred ``image_size`` square, then normalises
the same way. ``eval_crop_box`` gives that square in source
pixel coordinates, so masks and maps can be brought to the same geometry.

Randomness comes from torch's default generator unless a ``torch.Generator``
is passed. Leave it unset for ``DataLoader`` workers: PyTorch seeds each
worker's default generator differently, while a generator object would be
copied into every worker with the same state, giving every worker the same
augmentations.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

_logger = logging.getLogger(__name__)

MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class TrainAugmentConfig:
    """Settings of the training transform; defaults follow the module docstring."""

    image_size: int = 224  # side of the square output, pixels
    crop_area: tuple[float, float] = (0.2, 1.0)  # crop area / image area range
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)  # crop width / height range
    crop_attempts: int = 10  # draws before falling back to a centred crop
    flip_p: float = 0.5  # probability of a horizontal flip
    blur_p: float = 0.5  # probability of blurring an image at all
    blur_sigma: tuple[float, float] = (0.1, 1.0)  # sigma range, drawn uniformly
    blur_kernel: int = 5  # side of the square blur kernel (odd)

    def __post_init__(self) -> None:
        _check_size(self.image_size, minimum=self.blur_kernel)
        _check_range("crop_area", self.crop_area, high=1.0)
        _check_range("crop_ratio", self.crop_ratio, high=math.inf)
        _check_range("blur_sigma", self.blur_sigma, high=math.inf)
        for name in ("flip_p", "blur_p"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1]; got {value}")
        if self.blur_kernel < 1 or self.blur_kernel % 2 == 0:
            raise ValueError(f"blur_kernel must be odd; got {self.blur_kernel}")
        if self.crop_attempts < 0:
            raise ValueError(f"crop_attempts must be >= 0; got {self.crop_attempts}")


def _check_size(size: int, *, minimum: int) -> None:
    if int(size) != size or size < minimum:
        raise ValueError(f"image_size must be an integer >= {minimum}; got {size}")


def _check_range(name: str, pair: tuple[float, float], *, high: float) -> None:
    low, top = pair
    if not 0.0 < low <= top <= high:
        raise ValueError(
            f"{name} must be (min, max), 0 < min <= max <= {high}; got {pair}"
        )


class CropBox(NamedTuple):
    """A crop in source pixels: columns [left, left + width), rows likewise."""

    left: int
    top: int
    width: int
    height: int


@dataclass(frozen=True)
class TrainParams:
    """Everything random about one training example, drawn before applying."""

    crop: CropBox
    flip: bool
    blur_sigma: float | None  # None: no blur


def _uniform(low: float, high: float, generator: torch.Generator | None) -> float:
    u = float(torch.rand((), dtype=torch.float64, generator=generator))
    return low + (high - low) * u


def _randint(high: int, generator: torch.Generator | None) -> int:
    """An integer in [0, high]."""
    return int(torch.randint(0, high + 1, (), generator=generator))


def sample_crop(
    width: int,
    height: int,
    *,
    area: tuple[float, float] = (0.2, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    attempts: int = 10,
    generator: torch.Generator | None = None,
) -> CropBox:
    """Draw a crop whose area is a uniform fraction in ``area`` of the image's
    and whose width / height is log-uniform in ``ratio``.

    Sides are rounded up, so a crop never covers less than ``area[0]`` of the
    image. When ``attempts`` draws do not fit, the crop is centred, with the
    image's own ratio clamped into ``ratio``; the area bound wins over the
    ratio bound, so a scroll ten times taller than wide still gets a crop of at
    least ``area[0]`` of its area, at a ratio outside ``ratio``.
    """
    if width < 1 or height < 1:
        raise ValueError(f"image must have positive size; got {width}x{height}")
    total = width * height
    log_low, log_high = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(attempts):
        target = total * _uniform(area[0], area[1], generator)
        aspect = math.exp(_uniform(log_low, log_high, generator))
        w = math.ceil(math.sqrt(target * aspect))
        h = math.ceil(math.sqrt(target / aspect))
        if w <= width and h <= height:
            left = _randint(width - w, generator)
            top = _randint(height - h, generator)
            return CropBox(left, top, w, h)
    return _fallback_crop(width, height, area_min=area[0], ratio=ratio)


def _fallback_crop(
    width: int, height: int, *, area_min: float, ratio: tuple[float, float]
) -> CropBox:
    w, h = width, height
    if width / height < ratio[0]:
        h = min(height, round(width / ratio[0]))
    elif width / height > ratio[1]:
        w = min(width, round(height * ratio[1]))
    needed = area_min * width * height
    if w * h < needed:  # too elongated for the ratio range: widen the short cut
        if w == width:
            h = min(height, math.ceil(needed / width))
        else:
            w = min(width, math.ceil(needed / height))
    return CropBox((width - w) // 2, (height - h) // 2, w, h)


def sample_blur_sigma(
    sigma: tuple[float, float] = (0.1, 1.0),
    *,
    generator: torch.Generator | None = None,
) -> float:
    """A blur sigma drawn uniformly from ``sigma``."""
    return _uniform(sigma[0], sigma[1], generator)


def _gaussian_line(sigma: float, size: int) -> torch.Tensor:
    if sigma <= 0:
        raise ValueError(f"sigma must be positive; got {sigma}")
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    line = torch.exp(-(x**2) / (2 * sigma**2))
    return line / line.sum()  # (size,)


def gaussian_kernel(sigma: float, size: int = 5) -> torch.Tensor:
    """A normalised (size, size) float32 Gaussian kernel: sums to 1, symmetric."""
    line = _gaussian_line(sigma, size)
    return torch.outer(line, line).to(torch.float32)  # (size, size)


def gaussian_blur(image: torch.Tensor, sigma: float, size: int = 5) -> torch.Tensor:
    """Convolve a (C, H, W) float tensor with ``gaussian_kernel(sigma, size)``.

    Borders are reflected, so a constant image stays constant and values stay
    within the input's range. The kernel is the outer product of one line, so
    the blur runs as two 1-D passes of shifted slices, which on CPU is several
    times faster than a grouped ``conv2d``.
    """
    line = _gaussian_line(sigma, size).tolist()
    pad = size // 2
    height, width = image.shape[-2:]
    padded = F.pad(image.unsqueeze(0), (pad, pad, pad, pad), mode="reflect")[0]
    rows = sum(w * padded[:, :, i : i + width] for i, w in enumerate(line))
    return sum(w * rows[:, i : i + height, :] for i, w in enumerate(line))


def to_tensor(image: Image.Image) -> torch.Tensor:
    """PIL image (any mode) -> float32 (3, H, W) in [0, 1]."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    array = np.array(image, dtype=np.uint8)  # (H, W, 3), a writable copy
    return torch.from_numpy(array).permute(2, 0, 1).to(torch.float32).div_(255.0)


def normalize(t: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> [-1, 1] with ``MEAN`` and ``STD``; channels on dim -3."""
    mean = torch.tensor(MEAN, dtype=t.dtype).view(3, 1, 1)
    std = torch.tensor(STD, dtype=t.dtype).view(3, 1, 1)
    return (t - mean) / std


def denormalize(t: torch.Tensor) -> torch.Tensor:
    """Undo ``normalize`` for display: (..., 3, H, W) back into [0, 1]."""
    mean = torch.tensor(MEAN, dtype=t.dtype, device=t.device).view(3, 1, 1)
    std = torch.tensor(STD, dtype=t.dtype, device=t.device).view(3, 1, 1)
    return (t * std + mean).clamp(0.0, 1.0)


class TrainTransform:
    """Random crop, flip, blur and normalisation; see the module docstring.

    ``sample`` draws the parameters and ``apply`` uses them, so the random part
    and the image part can be checked apart.
    """

    def __init__(
        self,
        config: TrainAugmentConfig | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        self.config = config or TrainAugmentConfig()
        self.generator = generator

    def __repr__(self) -> str:
        return f"TrainTransform({self.config})"

    def sample(self, width: int, height: int) -> TrainParams:
        c, g = self.config, self.generator
        crop = sample_crop(
            width,
            height,
            area=c.crop_area,
            ratio=c.crop_ratio,
            attempts=c.crop_attempts,
            generator=g,
        )
        flip = _uniform(0.0, 1.0, g) < c.flip_p
        sigma = None
        if _uniform(0.0, 1.0, g) < c.blur_p:
            sigma = sample_blur_sigma(c.blur_sigma, generator=g)
        return TrainParams(crop=crop, flip=flip, blur_sigma=sigma)

    def apply(self, image: Image.Image, params: TrainParams) -> torch.Tensor:
        size = self.config.image_size
        left, top, w, h = params.crop
        if image.mode != "RGB":
            image = image.convert("RGB")
        resized = image.resize(
            (size, size), Image.Resampling.BILINEAR, box=(left, top, left + w, top + h)
        )
        t = to_tensor(resized)  # (3, S, S) in [0, 1]
        if params.flip:
            t = t.flip(-1)
        if params.blur_sigma is not None:
            t = gaussian_blur(t, params.blur_sigma, self.config.blur_kernel)
        return normalize(t)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return self.apply(image, self.sample(*image.size))


def eval_crop_box(
    width: int, height: int, *, crop_fraction: float = 0.875
) -> tuple[float, float, float, float]:
    """The centred square (left, top, right, bottom) in source pixels that the
    evaluation transform keeps: resizing the shorter side to S / crop_fraction
    and cutting the centred S square keeps a square of side
    ``crop_fraction * min(width, height)``."""
    side = crop_fraction * min(width, height)
    left = (width - side) / 2
    top = (height - side) / 2
    return (left, top, left + side, top + side)


class EvalTransform:
    """Deterministic resize, centre crop and normalisation."""

    def __init__(self, image_size: int = 224, *, crop_fraction: float = 0.875):
        _check_size(image_size, minimum=1)
        if not 0.0 < crop_fraction <= 1.0:
            raise ValueError(f"crop_fraction must lie in (0, 1]; got {crop_fraction}")
        self.image_size = int(image_size)
        self.crop_fraction = float(crop_fraction)

    def __repr__(self) -> str:
        return (
            f"EvalTransform(image_size={self.image_size}, "
            f"crop_fraction={self.crop_fraction})"
        )

    def __call__(self, image: Image.Image) -> torch.Tensor:
        if image.mode != "RGB":
            image = image.convert("RGB")
        box = eval_crop_box(*image.size, crop_fraction=self.crop_fraction)
        size = self.image_size
        # One resize from the box: the same pixels as resize-then-crop, one
        # interpolation instead of two.
        resized = image.resize((size, size), Image.Resampling.BILINEAR, box=box)
        return normalize(to_tensor(resized))


def train_transform(
    image_size: int = 224,
    *,
    generator: torch.Generator | None = None,
    **options,
) -> TrainTransform:
    """The training transform; ``options`` are other ``TrainAugmentConfig``
    fields, e.g. ``train_transform(128, blur_p=0.0)``."""
    config = TrainAugmentConfig(image_size=image_size, **options)
    return TrainTransform(config, generator=generator)


def eval_transform(image_size: int = 224, *, crop_fraction: float = 0.875):
    """The evaluation transform: PIL image -> float32 (3, S, S) in [-1, 1]."""
    return EvalTransform(image_size, crop_fraction=crop_fraction)
