import copy

import pytest
import torch
from torch import nn

from imet.explain import MethodUnsupported, run_method
from imet.explain.modified import (
    conservative_blockers,
    conservative_relevance,
    guided_gradient,
)


def _images(n=1, size=32, seed=1):
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _plain_gradient(model, x, target):
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(x)[:, target].sum(), x)
    return grad


class SharedReLU6(nn.Module):
    """One ReLU6 module called twice per forward pass, as in Lite0 blocks."""

    def __init__(self, act=None):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3)
        self.act1 = nn.ReLU6()
        self.act2 = self.act1 if act is None else act
        self.pool, self.head = nn.AdaptiveAvgPool2d(1), nn.Linear(4, 2)

    def forward(self, x):
        x = self.act2(self.conv2(self.act1(self.conv1(x))))
        return self.head(torch.flatten(self.pool(x), 1))


@pytest.fixture(scope="module")
def tiny_vit():
    from imet.models import build_model

    torch.manual_seed(0)
    return build_model("vit", 3, image_size=32, arch={"size": "tiny"}).eval()


@pytest.fixture(scope="module")
def lite0():
    from imet.models import build_model

    torch.manual_seed(0)
    return build_model("efficientnet-lite0", 3, image_size=32).eval()


def _without_biases(model):
    """A copy whose every additive constant is zero (biases, batch-norm means,
    class token, position table): with its non-linear factors frozen it is
    then a linear function of the input."""
    model = copy.deepcopy(model)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("bias") or "cls_token" in name or "position" in name:
                param.zero_()
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.zero_()
    return model


def test_guided_rule_passes_only_positive_gradient_through_a_gelu():
    torch.manual_seed(0)
    model = nn.Sequential(nn.GELU(), nn.Flatten(), nn.Linear(3 * 8 * 8, 2)).eval()
    x = _images(2, 8)
    plain = _plain_gradient(model, x, 1)
    guided = guided_gradient(model, x.clone().requires_grad_(True), 1)
    assert (plain < 0).any()  # the test could fail: there is something to clamp
    assert (guided >= 0).all() and torch.isfinite(guided).all()
    torch.testing.assert_close(guided, plain.clamp(min=0))


def test_guided_rule_treats_each_call_of_a_shared_activation_separately():
    torch.manual_seed(0)
    shared = SharedReLU6().eval()
    separate = SharedReLU6(act=nn.ReLU6()).eval()
    separate.load_state_dict(shared.state_dict())
    x = _images(2, 12)
    a = run_method("guided_backprop", shared, x, 0)
    b = run_method("guided_backprop", separate, x, 0)
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, _plain_gradient(shared, x, 0).abs().amax(1))


@pytest.mark.parametrize("model_name", ["tiny_vit", "lite0"])
def test_guided_backprop_is_not_the_plain_gradient(model_name, request):
    model = request.getfixturevalue(model_name)
    x = _images(1)
    guided = run_method("guided_backprop", model, x, 1)
    plain = run_method("gradient", model, x, 1)
    assert guided.shape == (1, 32, 32) and torch.isfinite(guided).all()
    assert (guided >= 0).all() and guided.std() > 0
    assert not torch.allclose(guided, plain, rtol=1e-3, atol=1e-7)
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("model_name", ["tiny_vit", "lite0"])
def test_conservative_lrp_conserves_the_logit_without_biases(model_name, request):
    # Biases (and the class token, position table, batch-norm means) are what
    # keeps relevance away from the pixels; without them the frozen network is
    # linear, so the relevance must add up to the logit. float32 rounding over
    # a few thousand terms bounds the tolerance.
    model = _without_biases(request.getfixturevalue(model_name))
    x = _images(2, seed=3).requires_grad_(True)
    relevance = conservative_relevance(model, x, 2)
    logits = model(x)[:, 2].detach()
    torch.testing.assert_close(relevance.sum((1, 2, 3)), logits, rtol=1e-4, atol=1e-5)


def test_conservative_lrp_keeps_the_forward_pass_and_leaves_the_model_as_it_was(
    tiny_vit,
):
    x = _images(2)
    before = tiny_vit(x).detach()
    conservative_relevance(tiny_vit, x.clone().requires_grad_(True), 0)
    torch.testing.assert_close(tiny_vit(x).detach(), before)
    assert tiny_vit.encoder.config._attn_implementation == "eager"
    assert all(not m._forward_hooks for m in tiny_vit.modules())


def test_vit_lrp_uses_the_attention_and_layer_norm_rules(tiny_vit):
    x = _images(1)
    lrp = run_method("lrp", tiny_vit, x, 1)
    gxi = run_method("gradient_x_input", tiny_vit, x, 1)
    assert lrp.shape == (1, 32, 32) and torch.isfinite(lrp).all() and lrp.std() > 0
    assert not torch.allclose(lrp, gxi, rtol=1e-2, atol=1e-6)


def test_lite0_lrp_gives_a_signed_map(lite0):
    lrp = run_method("lrp", lite0, _images(1), 0)
    assert lrp.shape == (1, 32, 32) and torch.isfinite(lrp).all()
    assert (lrp > 0).any() and (lrp < 0).any()


def test_conservative_rules_refuse_models_they_were_not_written_for():
    assert conservative_blockers(SharedReLU6()) == [
        "no conservative propagation rules for the model ''"
    ]
    with pytest.raises(MethodUnsupported, match="Conservative rules exist only"):
        run_method("lrp", SharedReLU6().eval(), _images(1, 12), 0)


def test_conservative_rules_name_unknown_layers(lite0):
    model = copy.deepcopy(lite0)
    model.top_act = nn.Softplus()
    assert conservative_blockers(model) == ["Softplus layers (no LRP rule)"]
