"""Saliency maps: which pixels made the model score a label.

Every method in :data:`METHODS` takes a model, a batch of preprocessed images
``x`` (B, 3, S, S) and the label column(s) to explain, and returns one map
per image, (B, S, S) float32, in the model's input frame. :func:`compute_maps`
wraps them for one PIL image and brings each map back to the image's own size
(zero outside the centred square the model saw).

Maps from gradient-type methods (gradient, SmoothGrad, guided backprop) are
the largest absolute value over the colour channels; Gradient x Input and LRP
keep their sign and are summed over the channels (negative values are evidence
against the label). Rollout maps are non-negative. Display and localisation
use the absolute value, so every method is shown on the same scale.

A method that cannot serve a model raises :class:`MethodUnsupported`, whose
message says why in words meant for the user.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

_logger = logging.getLogger(__name__)


class MethodUnsupported(Exception):
    """A saliency method cannot explain this model; the message says why."""


@dataclass(frozen=True)
class SmoothGradConfig:
    """SmoothGrad settings (Smilkov et al., 2017)."""

    samples: int = 16  # noisy copies averaged per image
    noise: float = 0.15  # noise std as a share of the input's value range (2)
    batch_size: int = 16  # noisy copies per forward pass; 1 = one at a time


SMOOTHGRAD = SmoothGradConfig()
# Inputs are normalised to [-1, 1], so the value range is 2.
_INPUT_RANGE = 2.0


def _abs_max(attributions: torch.Tensor) -> torch.Tensor:
    return attributions.detach().abs().amax(dim=1)  # (B, S, S)


def _channel_sum(attributions: torch.Tensor) -> torch.Tensor:
    return attributions.detach().sum(dim=1)  # (B, S, S)


def gradient(model: nn.Module, x: torch.Tensor, target) -> torch.Tensor:
    """Vanilla gradient of the label's logit (Simonyan et al., 2014)."""
    from captum.attr import Saliency

    return _abs_max(Saliency(model).attribute(x, target=target, abs=True))


def smoothgrad(
    model: nn.Module, x: torch.Tensor, target, config: SmoothGradConfig = SMOOTHGRAD
) -> torch.Tensor:
    """Gradient averaged over noisy copies of the image; the copies go through
    the model ``config.batch_size`` at a time. The noise is drawn from a fixed
    seed, so the same image gives the same map."""
    from captum.attr import NoiseTunnel, Saliency

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        attributions = NoiseTunnel(Saliency(model)).attribute(
            x,
            nt_type="smoothgrad",
            nt_samples=config.samples,
            nt_samples_batch_size=config.batch_size,
            stdevs=config.noise * _INPUT_RANGE,
            target=target,
            abs=True,
        )
    return _abs_max(attributions)


def gradient_x_input(model: nn.Module, x: torch.Tensor, target) -> torch.Tensor:
    """Gradient times the input value (Shrikumar et al., 2016), signed."""
    from captum.attr import InputXGradient

    return _channel_sum(InputXGradient(model).attribute(x, target=target))


def guided_backprop(model: nn.Module, x: torch.Tensor, target) -> torch.Tensor:
    """Gradient with negative gradients stopped at every rectifier
    (Springenberg et al., 2015). Known to fail the model-randomisation sanity
    check (Adebayo et al., 2018): ``imet explain-eval`` measures it.

    Models whose only activations are ``nn.ReLU`` go through Captum's
    ``GuidedBackprop``. Captum rectifies nowhere else, so models with ReLU6,
    GELU, SiLU or Hardswish modules use
    :func:`imet.explain.modified.guided_gradient`, which clamps at zero the
    gradient each activation sends to its input (exact guided backprop at
    ReLU6, the usual generalisation at smooth activations)."""
    from captum.attr import GuidedBackprop

    from imet.explain.modified import guided_gradient, is_activation

    activations = {type(m) for m in model.modules() if is_activation(m)}
    if not activations:
        raise MethodUnsupported(
            "guided backprop rectifies gradients at activation modules, and this "
            "model has none (ReLU, ReLU6, GELU, SiLU, Hardswish): the map would "
            "be a plain gradient mislabelled as guided backprop"
        )
    if activations == {nn.ReLU}:
        with warnings.catch_warnings():  # Captum announces its temporary hooks
            warnings.simplefilter("ignore", UserWarning)
            return _abs_max(GuidedBackprop(model).attribute(x, target=target))
    return _abs_max(guided_gradient(model, x, target))


def lrp(model: nn.Module, x: torch.Tensor, target) -> torch.Tensor:
    """Layer-wise relevance propagation (Bach et al., 2015).

    Models built only from layers Captum has rules for (the ``cnn``) get
    Captum's LRP with a composite of gamma and epsilon rules
    (:mod:`imet.explain.lrp`). The ``vit``, ``efficientnet-lite0`` and
    ``efficientnet`` models get conservative propagation
    (:mod:`imet.explain.modified`): ViT: LayerNorm and attention probabilities
    held constant (AttnLRP / CP-LRP), GELU as identity; Lite0: ReLU6 as
    identity, LRP-0 through convolutions and residual sums; EfficientNet: SiLU
    as identity, squeeze-and-excitation gates held constant. Other models are
    refused with the operations that stand in the way."""
    from imet.explain.lrp import lrp_attribute, lrp_blockers
    from imet.explain.modified import conservative_blockers, conservative_relevance

    blockers = lrp_blockers(model)
    if not blockers:
        return _channel_sum(lrp_attribute(model, x, target))
    if not conservative_blockers(model):
        return _channel_sum(conservative_relevance(model, x, target))
    shown = "; ".join(blockers[:3])
    more = f" (and {len(blockers) - 3} more)" if len(blockers) > 3 else ""
    raise MethodUnsupported(
        "LRP needs a propagation rule for every operation, and Captum only "
        f"applies rules to layer modules; this model has {shown}{more}. "
        "Relevance would flow through those as a plain gradient, which is "
        "not LRP. Conservative rules exist only for the vit, "
        "efficientnet-lite0 and efficientnet models."
    )


def attention_rollout(model: nn.Module, x: torch.Tensor, target) -> torch.Tensor:
    """Attention rollout (Abnar and Zuidema, 2020): the product over layers of
    head-averaged attention plus the residual identity. It does not depend on
    the label: it shows where the model looks, not what it found there."""
    from imet.explain.attention import rollout

    return rollout(model, x, target, weighted=False)


def gradient_attention_rollout(
    model: nn.Module, x: torch.Tensor, target
) -> torch.Tensor:
    """Gradient-weighted attention rollout (Chefer et al., 2021): each layer's
    attention weighted by the positive part of the label's gradient."""
    from imet.explain.attention import rollout

    return rollout(model, x, target, weighted=True)


SaliencyMethod = Callable[[nn.Module, torch.Tensor, object], torch.Tensor]

# Name -> method; every method returns (B, S, S) maps for inputs (B, 3, S, S).
METHODS: dict[str, SaliencyMethod] = {
    "gradient": gradient,
    "smoothgrad": smoothgrad,
    "gradient_x_input": gradient_x_input,
    "guided_backprop": guided_backprop,
    "lrp": lrp,
    "attention_rollout": attention_rollout,
    "gradient_attention_rollout": gradient_attention_rollout,
}


def run_method(name: str, model: nn.Module, x: torch.Tensor, target) -> torch.Tensor:
    """``METHODS[name]`` with the model's gradients left untouched and the
    result as a float32 (B, S, S) CPU tensor."""
    if name not in METHODS:
        raise KeyError(f"unknown saliency method {name!r}; known: {list(METHODS)}")
    was_training = model.training
    model.eval()
    x = x.detach().clone().requires_grad_(True)
    try:
        maps = METHODS[name](model, x, target)
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return maps.detach().float().cpu()


# ------------------------------------------------------------ image geometry


@dataclass(frozen=True)
class Prepared:
    """One image as the model sees it, and where that is in the image."""

    x: torch.Tensor  # (1, 3, S, S) normalised model input
    box: tuple[float, float, float, float]  # left, top, right, bottom, source px
    image_size: tuple[int, int]  # (width, height) of the source image


def prepare(image: Image.Image, image_size: int) -> Prepared:
    """Preprocess like evaluation (``imet.transforms.eval_transform``)."""
    from imet.transforms import eval_crop_box, eval_transform

    transform = eval_transform(image_size)
    box = eval_crop_box(*image.size, crop_fraction=transform.crop_fraction)
    return Prepared(transform(image).unsqueeze(0), box, image.size)


def to_image_frame(saliency: np.ndarray, prepared: Prepared) -> np.ndarray:
    """An input-frame map (S, S) at the source image's size (H, W), float32;
    zero outside the square the model saw."""
    width, height = prepared.image_size
    left, top, right, bottom = prepared.box
    x0, y0 = int(round(left)), int(round(top))
    w = max(1, min(width, int(round(right))) - x0)
    h = max(1, min(height, int(round(bottom))) - y0)
    resized = F.interpolate(
        torch.as_tensor(saliency, dtype=torch.float32)[None, None],
        size=(h, w),
        mode="bilinear",
        align_corners=False,
    )[0, 0]
    out = np.zeros((height, width), dtype=np.float32)
    out[y0 : y0 + h, x0 : x0 + w] = resized.numpy()
    return out


def to_input_frame(array: np.ndarray, prepared: Prepared, *, mask: bool = False):
    """An image-frame array (H, W) (a mask or a map) cut and resized to the
    model's input frame (S, S), the same way the image was."""
    size = prepared.x.shape[-1]
    mode = Image.Resampling.NEAREST if mask else Image.Resampling.BILINEAR
    source = Image.fromarray(np.asarray(array, dtype=np.float32), mode="F")
    out = np.asarray(source.resize((size, size), mode, box=prepared.box))
    return out > 0.5 if mask else out.astype(np.float32)


def compute_maps(
    model: nn.Module,
    image: Image.Image,
    label_index: int,
    methods: list[str] | None = None,
    image_size: int = 224,
) -> dict[str, np.ndarray | str]:
    """Saliency of one label for one image by each method: name -> map (H, W)
    float32 at the image's size, or the reason the method cannot serve this
    model. ``methods=None`` runs every method."""
    prepared = prepare(image.convert("RGB"), image_size)
    device = next(model.parameters()).device
    out: dict[str, np.ndarray | str] = {}
    for name in methods or list(METHODS):
        try:
            maps = run_method(name, model, prepared.x.to(device), int(label_index))
        except MethodUnsupported as reason:
            out[name] = str(reason)
            continue
        out[name] = to_image_frame(maps[0].numpy(), prepared)
    return out
