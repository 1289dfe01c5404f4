"""The from-scratch CNN stays readable by Captum's LRP and guided backprop."""

import pytest
import torch
from captum.attr import LRP, GuidedBackprop
from torch import nn

from imet.models import build_model


def test_arch_widths_set_embedding_size_and_blocks():
    model = build_model("cnn", 3, image_size=32, arch={"widths": [8, 16, 24]})
    assert model.embed_dim == 24
    assert len(model.blocks) == 3
    assert model.arch["widths"] == [8, 16, 24]


def test_pretrained_weights_are_refused():
    with pytest.raises(ValueError, match="from scratch"):
        build_model("cnn", 3, pretrained="imagenet")


def test_image_too_small_for_the_pooling_blocks_is_refused():
    with pytest.raises(ValueError, match="too small"):
        build_model("cnn", 3, image_size=8)


def test_every_relu_is_its_own_module_called_once(images):
    model = build_model("cnn", 3, image_size=32).eval()
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    assert relus and not any(r.inplace for r in relus)
    calls: dict[int, int] = {}
    for relu in relus:
        relu.register_forward_hook(
            lambda m, a, o: calls.__setitem__(id(m), calls.get(id(m), 0) + 1)
        )
    with torch.no_grad():
        model(images)
    assert sorted(calls.values()) == [1] * len(relus)


@pytest.mark.parametrize("method", [LRP, GuidedBackprop])
def test_captum_attribution_runs_and_is_finite(method, images):
    model = build_model("cnn", 3, image_size=32).eval()
    attribution = method(model).attribute(images.requires_grad_(), target=1)
    assert attribution.shape == images.shape
    assert torch.isfinite(attribution).all()
    assert attribution.abs().sum() > 0
