import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from imet.cli.explain import METHOD_NAMES
from imet.explain import METHODS, MethodUnsupported, compute_maps, run_method
from imet.explain.lrp import lrp_blockers
from imet.explain.methods import SmoothGradConfig, prepare, smoothgrad, to_input_frame
from imet.transforms import eval_transform

CNN_METHODS = ["gradient", "smoothgrad", "gradient_x_input", "guided_backprop", "lrp"]


class SmallCNN(nn.Module):
    """Only layers Captum's LRP has rules for."""

    family = "cnn"

    def __init__(self, n_labels=3):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Linear(16, n_labels)

    def forward(self, x):
        return self.head(torch.flatten(self.features(x), 1))


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.act = nn.Conv2d(3, 4, 3), nn.ReLU()
        self.pool, self.head = nn.AdaptiveAvgPool2d(1), nn.Linear(4, 2)

    def forward(self, x):
        h = self.conv(x)
        return self.head(torch.flatten(self.pool(h + self.act(h)), 1))


class SharedActivation(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3)
        self.act = nn.ReLU6()
        self.pool, self.head = nn.AdaptiveAvgPool2d(1), nn.Linear(4, 2)

    def forward(self, x):
        x = self.act(self.conv2(self.act(self.conv1(x))))
        return self.head(torch.flatten(self.pool(x), 1))


@pytest.fixture(scope="module")
def cnn():
    torch.manual_seed(0)
    return SmallCNN().eval()


def _images(n=2, size=16):
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(1))


def test_method_names_of_the_command_match_the_registry():
    assert tuple(METHODS) == METHOD_NAMES


@pytest.mark.parametrize("method", CNN_METHODS)
def test_cnn_methods_give_one_finite_map_per_image(cnn, method):
    maps = run_method(method, cnn, _images(), 1)
    assert maps.shape == (2, 16, 16) and maps.dtype == torch.float32
    assert torch.isfinite(maps).all() and maps.abs().sum() > 0
    assert all(p.grad is None for p in cnn.parameters())  # no gradient left behind


def test_maps_depend_on_the_label(cnn):
    x = _images(1)
    assert not torch.allclose(
        run_method("gradient_x_input", cnn, x, 0),
        run_method("gradient_x_input", cnn, x, 2),
    )


def test_smoothgrad_sends_noisy_copies_through_the_model_in_batches(cnn):
    sizes = []
    handle = cnn.register_forward_pre_hook(lambda m, args: sizes.append(len(args[0])))
    x = _images(1).requires_grad_(True)
    try:
        batched = smoothgrad(cnn, x, 0, SmoothGradConfig(samples=8, batch_size=8))
        assert sizes == [8]
        sizes.clear()
        looped = smoothgrad(cnn, x, 0, SmoothGradConfig(samples=8, batch_size=1))
        assert sizes == [1] * 8
    finally:
        handle.remove()
    # same noise level and count: the two averages agree in what they highlight
    rho = np.corrcoef(batched.ravel(), looped.ravel())[0, 1]
    assert rho > 0.5


def test_smoothgrad_is_deterministic(cnn):
    x = _images(1)
    torch.testing.assert_close(
        run_method("smoothgrad", cnn, x, 0), run_method("smoothgrad", cnn, x, 0)
    )


def test_lrp_conserves_the_logit_of_a_bias_free_linear_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2, bias=False)).eval()
    x = _images(1, 8)
    relevance = run_method("lrp", model, x, 1)
    expected = (x * model[1].weight[1].view(1, 3, 8, 8)).sum(1)
    torch.testing.assert_close(relevance, expected.detach(), rtol=1e-4, atol=1e-5)
    assert relevance.sum().item() == pytest.approx(model(x)[0, 1].item(), rel=1e-4)


def test_lrp_is_not_just_gradient_times_input_on_a_relu_network(cnn):
    x = _images(1)
    lrp_map = run_method("lrp", cnn, x, 0)
    gxi = run_method("gradient_x_input", cnn, x, 0)
    assert not torch.allclose(lrp_map, gxi, atol=1e-6)


def test_lrp_blockers_name_operations_captum_cannot_see(cnn):
    assert lrp_blockers(cnn) == []
    assert "`add` written inside forward" in lrp_blockers(Residual())
    assert any("used twice" in b for b in lrp_blockers(SharedActivation()))


def test_lrp_refuses_a_residual_model_with_the_reason():
    with pytest.raises(MethodUnsupported, match="`add` written inside forward"):
        run_method("lrp", Residual().eval(), _images(1), 0)


def test_guided_backprop_refuses_models_without_activation_modules():
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2)).eval()
    with pytest.raises(MethodUnsupported, match="has none"):
        run_method("guided_backprop", model, _images(1, 8), 0)


def test_attention_rollout_refuses_a_cnn(cnn):
    with pytest.raises(MethodUnsupported, match="without attention"):
        run_method("attention_rollout", cnn, _images(1), 0)


@pytest.fixture(scope="module")
def tiny_vit():
    from imet.models import build_model

    torch.manual_seed(0)
    return build_model("vit", 3, image_size=32, arch={"size": "tiny"}).eval()


@pytest.mark.parametrize("method", ["attention_rollout", "gradient_attention_rollout"])
def test_vit_rollout_maps_cover_the_input_and_are_non_negative(tiny_vit, method):
    maps = run_method(method, tiny_vit, torch.randn(2, 3, 32, 32), 1)
    assert maps.shape == (2, 32, 32) and (maps >= 0).all() and maps.sum() > 0


def test_gradient_weighted_rollout_depends_on_the_label(tiny_vit):
    x = torch.randn(1, 3, 32, 32)
    a = run_method("gradient_attention_rollout", tiny_vit, x, 0)
    b = run_method("gradient_attention_rollout", tiny_vit, x, 2)
    assert not torch.allclose(a, b)


def test_vit_lrp_and_guided_backprop_give_maps_at_the_image_size(tiny_vit):
    rng = np.random.default_rng(0)
    image = Image.fromarray((rng.random((36, 40, 3)) * 255).astype(np.uint8))
    maps = compute_maps(tiny_vit, image, 0, ["lrp", "guided_backprop"], 32)
    for method in ("lrp", "guided_backprop"):
        assert isinstance(maps[method], np.ndarray), maps[method]
        assert maps[method].shape == (36, 40) and np.isfinite(maps[method]).all()
        assert maps[method].std() > 0


def test_compute_maps_returns_maps_at_the_image_size(cnn):
    rng = np.random.default_rng(0)
    image = Image.fromarray((rng.random((30, 50, 3)) * 255).astype(np.uint8))
    maps = compute_maps(cnn, image, 1, CNN_METHODS + ["attention_rollout"], 16)
    for method in CNN_METHODS:
        assert maps[method].shape == (30, 50) and maps[method].dtype == np.float32
        # the model saw the centred square of side 0.875 * 30: nothing outside
        assert np.all(maps[method][:, :9] == 0) and np.all(maps[method][:, -9:] == 0)
        assert np.abs(maps[method][3:27, 13:37]).min() >= 0
    assert isinstance(maps["attention_rollout"], str)


def test_prepare_matches_the_evaluation_transform_and_masks_follow_it():
    image = Image.new("RGB", (60, 40), "black")
    image.paste((255, 255, 255), (30, 10, 45, 30))  # white box (x 30-45, y 10-30)
    prepared = prepare(image, 20)
    torch.testing.assert_close(prepared.x[0], eval_transform(20)(image))
    mask = np.zeros((40, 60), dtype=bool)
    mask[10:30, 30:45] = True
    in_frame = to_input_frame(mask, prepared, mask=True)
    white = prepared.x[0].mean(0).numpy() > 0.0  # more than half white
    assert in_frame.shape == (20, 20)
    assert (in_frame == white).mean() > 0.95
