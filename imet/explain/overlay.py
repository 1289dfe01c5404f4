"""Saliency overlays drawn the same way for every method.

One normalisation for all maps, so that two methods can be compared by eye:
take the absolute value, divide by the map's 99th percentile (a handful of
extreme pixels would otherwise wash out the rest), clip to [0, 1], colour with
a fixed dark-to-bright colour map, and blend over the image with an opacity
that grows with the value (low-saliency regions keep showing the artwork).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

# Anchors of a perceptually ordered dark-purple -> orange -> pale-yellow ramp
# (after matplotlib's "inferno"), RGB in [0, 255] at values 0, .25, .5, .75, 1.
_RAMP = np.array(
    [[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]],
    dtype=np.float32,
)
_PERCENTILE = 99.0  # values above this percentile are shown at full strength
_MAX_ALPHA = 0.7  # opacity of the colour at the strongest value


def normalise_map(saliency: np.ndarray) -> np.ndarray:
    """|map| / its 99th percentile, clipped to [0, 1]; float32, same shape.
    A map that is zero almost everywhere is scaled by its maximum instead."""
    magnitude = np.abs(np.asarray(saliency, dtype=np.float32))
    scale = float(np.percentile(magnitude, _PERCENTILE))
    if scale <= 0.0:
        scale = float(magnitude.max())
    if scale <= 0.0:
        return np.zeros_like(magnitude)
    return np.clip(magnitude / scale, 0.0, 1.0)


def colourise(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] (H, W) -> RGB float32 (H, W, 3) in [0, 255]."""
    position = np.clip(values, 0.0, 1.0) * (len(_RAMP) - 1)
    low = np.floor(position).astype(int).clip(0, len(_RAMP) - 2)
    frac = (position - low)[..., None]
    return _RAMP[low] * (1.0 - frac) + _RAMP[low + 1] * frac


def render_overlay(image: Image.Image, saliency: np.ndarray) -> Image.Image:
    """The image with its saliency map (H, W) blended over it, RGB, at the
    image's size (a map of another size is resized to it first)."""
    image = image.convert("RGB")
    values = normalise_map(saliency)
    if values.shape != (image.height, image.width):
        resized = Image.fromarray(values, mode="F").resize(
            image.size, Image.Resampling.BILINEAR
        )
        values = np.clip(np.asarray(resized), 0.0, 1.0)
    alpha = (_MAX_ALPHA * values)[..., None]  # (H, W, 1)
    base = np.asarray(image, dtype=np.float32)
    blended = (1.0 - alpha) * base + alpha * colourise(values)
    return Image.fromarray(np.clip(blended, 0, 255).round().astype(np.uint8), "RGB")
