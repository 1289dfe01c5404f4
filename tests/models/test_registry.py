"""Every registered model: forward, backward, shapes, and rebuilding from ``arch``."""

import json

import pytest
import torch

from imet.models import MODELS, LabelModel, build_model, count_parameters

N_LABELS = 7
SIZE = 32


def _build(name: str) -> LabelModel:
    return build_model(name, N_LABELS, image_size=SIZE)


def test_registry_lists_the_four_models():
    assert sorted(MODELS) == ["cnn", "efficientnet", "efficientnet-lite0", "vit"]


def test_unknown_model_name_is_a_value_error_listing_the_names():
    with pytest.raises(ValueError) as info:
        build_model("resnet", N_LABELS)
    message = str(info.value)
    assert "resnet" in message
    for name in MODELS:
        assert name in message


@pytest.mark.parametrize("name", sorted(MODELS))
def test_forward_gives_finite_logits_per_label(name, images):
    model = _build(name).eval()
    with torch.no_grad():
        logits = model(images)
        features = model.forward_features(images)
    assert logits.shape == (2, N_LABELS)
    assert torch.isfinite(logits).all()
    assert features.shape == (2, model.embed_dim)
    assert torch.isfinite(features).all()
    # the head alone reproduces the full forward pass
    with torch.no_grad():
        torch.testing.assert_close(model.forward_head(features), logits)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_backward_reaches_first_layer_head_and_every_parameter(name, images):
    model = _build(name).train()
    model(images).sum().backward()
    first = model.feature_layers()["input"].weight.grad
    assert first is not None and first.abs().sum() > 0
    assert model.head.weight.grad.abs().sum() > 0
    # DistributedDataParallel fails on parameters that never get a gradient.
    unused = [
        n for n, p in model.named_parameters() if p.requires_grad and p.grad is None
    ]
    assert unused == []


@pytest.mark.parametrize("name", sorted(MODELS))
def test_rebuild_from_recorded_arch_gives_same_network(name, images):
    model = _build(name)
    arch = json.loads(json.dumps(model.arch))  # as stored in a run's config
    rebuilt = build_model(name, N_LABELS, image_size=SIZE, arch=arch)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    rebuilt_shapes = {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()}
    assert rebuilt_shapes == shapes
    assert json.loads(json.dumps(rebuilt.arch)) == arch
    # with the original's weights the rebuilt model computes the same logits
    rebuilt.load_state_dict(model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.eval()(images), model.eval()(images))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_feature_layers_name_input_features_and_blocks(name):
    model = _build(name)
    layers = model.feature_layers()
    assert {"input", "features", "block0"} <= set(layers)
    owned = {id(m) for m in model.modules()}
    assert all(id(layer) in owned for layer in layers.values())
    assert model.family in ("cnn", "vit")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_features_layer_output_matches_family_layout(name, images):
    model = _build(name).eval()
    seen = []
    handle = model.feature_layers()["features"].register_forward_hook(
        lambda module, args, output: seen.append(output)
    )
    with torch.no_grad():
        model(images)
    handle.remove()
    assert len(seen) == 1  # the hook fires once per forward pass
    output = seen[0]
    if model.family == "cnn":
        assert output.dim() == 4 and output.shape[:2] == (2, model.embed_dim)
    else:
        n_patches = (SIZE // model.patch_size) ** 2
        assert output.shape == (2, 1 + n_patches, model.embed_dim)


def test_unknown_arch_key_is_rejected():
    with pytest.raises(ValueError, match="widht"):
        build_model("cnn", N_LABELS, arch={"widht": [8]})


def test_init_head_bias_starts_at_label_prior():
    model = _build("cnn")
    rates = torch.tensor([0.5, 0.1, 0.01, 0.0, 1.0, 0.3, 0.2])
    model.init_head_bias(rates)
    expected = rates.clamp(1e-4, 1 - 1e-4)
    torch.testing.assert_close(torch.sigmoid(model.head.bias.detach()), expected)
    with pytest.raises(ValueError, match="shape"):
        model.init_head_bias(torch.ones(3))


def test_count_parameters_excludes_frozen_when_asked():
    model = _build("vit")
    total = sum(p.numel() for p in model.parameters())
    frozen = model.encoder.embeddings.position_embeddings.numel()
    assert count_parameters(model) == total
    assert count_parameters(model, trainable_only=True) == total - frozen
