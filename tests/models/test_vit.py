"""The ViT-MAE encoder: pretraining round trip, token order, attention maps."""

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import ViTMAEModel

from imet.models import build_model
from imet.models.vit import build_mae_pretraining, mae_config

SIZE = 32


def _pretrain_one_step(mae) -> None:
    optimizer = torch.optim.SGD(mae.parameters(), lr=0.5)
    loss = mae(pixel_values=torch.randn(4, 3, SIZE, SIZE)).loss
    assert torch.isfinite(loss)
    loss.backward()
    optimizer.step()


def test_mae_pretraining_folder_starts_the_vit_encoder(tmp_path):
    mae = build_mae_pretraining(SIZE, "tiny")
    before = mae.vit.layers[0].attention.q_proj.weight.detach().clone()
    _pretrain_one_step(mae)
    trained = mae.vit.layers[0].attention.q_proj.weight.detach()
    assert not torch.equal(before, trained)
    folder = tmp_path / "mae"
    mae.save_pretrained(folder)

    model = build_model("vit", 5, image_size=SIZE, pretrained=str(folder))
    assert model.pretrained == str(folder)
    encoder = model.encoder
    torch.testing.assert_close(encoder.layers[0].attention.q_proj.weight, trained)
    torch.testing.assert_close(
        encoder.embeddings.patch_embeddings.projection.weight,
        mae.vit.embeddings.patch_embeddings.projection.weight,
    )
    torch.testing.assert_close(encoder.layernorm.weight, mae.vit.layernorm.weight)
    # pretraining masks 75% of patches; the fine-tuned encoder sees them all
    assert mae.config.mask_ratio == 0.75
    assert encoder.config.mask_ratio == 0.0
    assert model.arch["config"]["mask_ratio"] == 0.0
    assert model.arch["size"] == "tiny"


def test_checkpoint_missing_encoder_weights_is_refused(tmp_path):
    folder = tmp_path / "mae"
    build_mae_pretraining(SIZE, "tiny").save_pretrained(folder)
    weights = load_file(folder / "model.safetensors")
    dropped = [k for k in weights if k.startswith("vit.layernorm.")]
    assert dropped
    kept = {k: v for k, v in weights.items() if k not in dropped}
    save_file(kept, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ValueError, match="lacks backbone weights"):
        build_model("vit", 5, image_size=SIZE, pretrained=str(folder))


def test_encoder_only_folder_loads_too(tmp_path):
    encoder = ViTMAEModel(mae_config(SIZE, "tiny"))
    encoder.save_pretrained(tmp_path / "encoder")
    model = build_model("vit", 5, image_size=SIZE, pretrained=str(tmp_path / "encoder"))
    torch.testing.assert_close(
        model.encoder.layers[1].mlp.fc1.weight, encoder.layers[1].mlp.fc1.weight
    )


def test_tokens_stay_in_patch_grid_order():
    model = build_model("vit", 5, image_size=SIZE, arch={"size": "tiny"}).eval()
    x = torch.randn(2, 3, SIZE, SIZE)
    seen = []
    model.feature_layers()["block0"].register_forward_hook(
        lambda module, args, output: seen.append(args[0])
    )
    with torch.no_grad():
        model(x)
        embeddings = model.encoder.embeddings
        patches = embeddings.patch_embeddings(x)  # (B, N, D) row-major grid
        expected = patches + embeddings.position_embeddings[:, 1:]
    torch.testing.assert_close(seen[0][:, 1:], expected)


def test_forward_is_deterministic_and_draws_no_random_numbers():
    model = build_model("vit", 5, image_size=SIZE, arch={"size": "tiny"}).eval()
    x = torch.randn(2, 3, SIZE, SIZE)
    state = torch.get_rng_state()
    with torch.no_grad():
        first = model(x)
        second = model(x)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(first, second)


def test_forward_attentions_give_one_probability_map_per_layer():
    model = build_model("vit", 5, image_size=SIZE, arch={"size": "tiny"}).eval()
    config = model.encoder.config
    tokens = 1 + (SIZE // model.patch_size) ** 2
    with torch.no_grad():
        maps = model.forward_attentions(torch.randn(2, 3, SIZE, SIZE))
    assert len(maps) == config.num_hidden_layers
    for attention in maps:
        assert attention.shape == (2, config.num_attention_heads, tokens, tokens)
        torch.testing.assert_close(
            attention.sum(-1), torch.ones(2, config.num_attention_heads, tokens)
        )


def test_encoder_pretrained_at_one_size_fine_tunes_at_another(tmp_path):
    build_mae_pretraining(SIZE, "tiny").save_pretrained(tmp_path / "mae")
    model = build_model("vit", 5, image_size=48, pretrained=str(tmp_path / "mae"))
    with torch.no_grad():
        logits = model.eval()(torch.randn(2, 3, 48, 48))
    assert logits.shape == (2, 5) and torch.isfinite(logits).all()


def test_cls_pooling_uses_the_class_token():
    model = build_model("vit", 5, image_size=SIZE, arch={"size": "tiny", "pool": "cls"})
    x = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        tokens = (
            model.eval()
            .encoder(pixel_values=x, noise=torch.arange(16.0).expand(2, 16))
            .last_hidden_state
        )
        torch.testing.assert_close(
            model.forward_features(x), model.fc_norm(tokens[:, 0])
        )


def test_arch_records_no_preset_for_a_custom_encoder(tmp_path):
    config = mae_config(SIZE, "tiny")
    config.num_hidden_layers = 3
    ViTMAEModel(config).save_pretrained(tmp_path / "custom")
    model = build_model("vit", 5, image_size=SIZE, pretrained=str(tmp_path / "custom"))
    assert model.arch["size"] is None
    assert model.arch["config"]["num_hidden_layers"] == 3


def test_mae_config_checks_size_and_patch():
    assert mae_config(64, "small").patch_size == 8
    with pytest.raises(ValueError, match="multiple"):
        mae_config(60, "small")
    with pytest.raises(ValueError, match="known sizes"):
        mae_config(64, "huge")
    with pytest.raises(ValueError, match="multiple"):
        build_model("vit", 5, image_size=60)
