"""How far a saliency map can be trusted, measured.

* **Deletion and insertion** (Petsiuk et al., 2018): hide the pixels in the
  map's order, most salient first, in ``steps`` equal steps, and follow the
  label's sigmoid score; insertion starts from the hidden image and reveals
  pixels in the same order. Hidden pixels take the value of a heavily blurred
  copy of the image (a black or grey fill is itself a strong signal that the
  model never saw in training). A faithful map makes the deletion curve fall
  fast (small area) and the insertion curve rise fast (large area); each area
  is reported next to the same protocol with a random pixel order.
* **Model randomisation** (Adebayo et al., 2018): the Spearman rank
  correlation between a method's map for the trained model and for the same
  architecture with re-initialised weights. A map that barely changes explains
  the image, not the model; such methods are flagged.
* **Localisation** against an object mask: the share of the map's absolute
  mass inside the mask (a uniform map scores the mask's area) and the
  pointing game (is the map's maximum inside the mask).
"""

from __future__ import annotations

import copy
import logging
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

_logger = logging.getLogger(__name__)

# Spearman correlation above which a method's maps count as unchanged by
# randomising the model.
RANDOMISATION_FLAG = 0.5


@dataclass(frozen=True)
class PerturbationConfig:
    """Settings of the deletion and insertion curves."""

    steps: int = 16  # pixel-hiding steps from 0% to 100%
    blur_factor: int = 8  # baseline: image shrunk by this factor and enlarged
    batch_size: int = 34  # perturbed images per forward pass
    seed: int = 0  # random pixel order of the baseline curves


@dataclass(frozen=True)
class Faithfulness:
    """Deletion / insertion areas of one map, with the random-order baseline."""

    deletion_auc: float  # area under the deletion curve; lower is better
    insertion_auc: float  # area under the insertion curve; higher is better
    random_deletion_auc: float  # deletion area with a random pixel order
    random_insertion_auc: float  # insertion area with a random pixel order
    deletion_curve: list[float]  # label score after each step
    insertion_curve: list[float]

    def to_dict(self) -> dict:
        return asdict(self)


def blurred_baseline(x: torch.Tensor, factor: int) -> torch.Tensor:
    """A heavily blurred copy of images (B, 3, S, S): shrink, then enlarge."""
    size = x.shape[-2:]
    small = F.interpolate(
        x, size=(max(1, size[0] // factor), max(1, size[1] // factor)), mode="area"
    )
    return F.interpolate(small, size=size, mode="bilinear", align_corners=False)


def _ranks(order_values: torch.Tensor) -> torch.Tensor:
    """Rank (0 = first to hide) of each pixel when sorted by value, highest
    first; ties keep raster order."""
    flat = order_values.reshape(-1)
    order = torch.argsort(-flat, stable=True)
    ranks = torch.empty_like(order)
    ranks[order] = torch.arange(flat.numel())
    return ranks  # (S * S,)


@torch.no_grad()
def _label_scores(model: nn.Module, images: torch.Tensor, label: int, batch: int):
    scores = []
    for start in range(0, len(images), batch):
        logits = model(images[start : start + batch])  # (b, L)
        scores.append(torch.sigmoid(logits[:, label].float()))
    return torch.cat(scores).cpu().numpy()


def perturbation_curves(
    model: nn.Module,
    x: torch.Tensor,
    ranks: torch.Tensor,
    label: int,
    config: PerturbationConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """Deletion and insertion curves (steps + 1,) of one image (1, 3, S, S)
    for the pixel order ``ranks`` (S * S,)."""
    n_pixels = ranks.numel()
    counts = torch.round(torch.linspace(0, n_pixels, config.steps + 1)).long()
    hidden = ranks.to(x.device)[None] < counts.to(x.device)[:, None]  # (K+1, P)
    hidden = hidden.reshape(-1, 1, *x.shape[-2:])  # (K+1, 1, S, S)
    baseline = blurred_baseline(x, config.blur_factor)
    deleted = torch.where(hidden, baseline, x)  # (K+1, 3, S, S)
    inserted = torch.where(hidden, x, baseline)
    scores = _label_scores(
        model, torch.cat([deleted, inserted]), label, config.batch_size
    )
    return scores[: config.steps + 1], scores[config.steps + 1 :]


def area(curve: np.ndarray) -> float:
    """Area under a curve sampled at equal steps over [0, 1]."""
    curve = np.asarray(curve, dtype=np.float64)
    return float(np.trapezoid(curve, dx=1.0 / (len(curve) - 1)))


def deletion_insertion(
    model: nn.Module,
    x: torch.Tensor,
    saliency: np.ndarray | torch.Tensor,
    label: int,
    config: PerturbationConfig | None = None,
) -> Faithfulness:
    """Deletion and insertion areas of one map (S, S) for image x
    (1, 3, S, S), hiding pixels in the order of the map's values (highest
    first: for signed maps, the strongest evidence for the label)."""
    config = config or PerturbationConfig()
    was_training = model.training
    model.eval()
    try:
        ranks = _ranks(torch.as_tensor(np.asarray(saliency), dtype=torch.float32))
        deletion, insertion = perturbation_curves(model, x, ranks, label, config)
        generator = torch.Generator().manual_seed(config.seed)
        shuffled = torch.randperm(ranks.numel(), generator=generator)
        rnd_deletion, rnd_insertion = perturbation_curves(
            model, x, shuffled, label, config
        )
    finally:
        model.train(was_training)
    return Faithfulness(
        deletion_auc=area(deletion),
        insertion_auc=area(insertion),
        random_deletion_auc=area(rnd_deletion),
        random_insertion_auc=area(rnd_insertion),
        deletion_curve=[float(v) for v in deletion],
        insertion_curve=[float(v) for v in insertion],
    )


def faithfulness(
    model: nn.Module,
    image,
    saliency: np.ndarray,
    label_index: int,
    image_size: int,
    config: PerturbationConfig | None = None,
) -> Faithfulness:
    """:func:`deletion_insertion` for a PIL image and a map at the image's
    size (H, W), as :func:`imet.explain.compute_maps` returns it."""
    from imet.explain.methods import prepare, to_input_frame

    prepared = prepare(image.convert("RGB"), image_size)
    device = next(model.parameters()).device
    in_frame = to_input_frame(saliency, prepared)
    return deletion_insertion(
        model, prepared.x.to(device), in_frame, int(label_index), config
    )


# ---------------------------------------------------------- randomisation


def randomised_copy(model: nn.Module, seed: int = 0) -> nn.Module:
    """The same architecture with every layer re-initialised (the cascading
    randomisation of Adebayo et al. carried to the input layer)."""
    clone = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in clone.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
    return clone.eval()


def rank_correlation(a, b) -> float:
    """Spearman correlation of the absolute values of two maps of one shape;
    NaN when either map is constant."""
    from scipy.stats import spearmanr

    a = np.abs(np.asarray(a, dtype=np.float64)).ravel()
    b = np.abs(np.asarray(b, dtype=np.float64)).ravel()
    if a.shape != b.shape:
        raise ValueError(f"maps differ in shape: {a.shape} vs {b.shape}")
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


# ---------------------------------------------------------- localisation


def localisation(saliency, mask) -> dict[str, float]:
    """Share of |map| inside a boolean mask of the same shape, the share a
    uniform map would get (the mask's area), and the pointing-game hit."""
    magnitude = np.abs(np.asarray(saliency, dtype=np.float64))
    mask = np.asarray(mask, dtype=bool)
    if magnitude.shape != mask.shape:
        raise ValueError(f"map {magnitude.shape} and mask {mask.shape} differ")
    total = magnitude.sum()
    share = float(magnitude[mask].sum() / total) if total > 0 else float("nan")
    hit = float(mask.flat[int(np.argmax(magnitude))]) if total > 0 else float("nan")
    return {"mask_share": share, "mask_area": float(mask.mean()), "pointing_hit": hit}
