import numpy as np
import pytest
import torch
from torch import nn

from imet.explain import (
    PerturbationConfig,
    deletion_insertion,
    localisation,
    randomised_copy,
    rank_correlation,
    run_method,
)
from imet.explain.faithfulness import area


class RegionDetector(nn.Module):
    """Logit = brightness of the top-left 4x4 patch: the known evidence."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(3 * 16 * 16, 2)
        with torch.no_grad():
            weight = torch.zeros(2, 3, 16, 16)
            weight[:, :, :4, :4] = 1.0
            self.head.weight.copy_(weight.flatten(1))
            self.head.bias.fill_(-10.0)

    def forward(self, x):
        return self.head(torch.flatten(x, 1))


def _bright_patch_image():
    x = torch.full((1, 3, 16, 16), -1.0)
    x[:, :, :4, :4] = 1.0
    return x


def test_a_map_of_the_true_evidence_beats_random_order_and_its_inverse():
    model, x = RegionDetector().eval(), _bright_patch_image()
    truth = np.zeros((16, 16), dtype=np.float32)
    truth[:4, :4] = 1.0
    config = PerturbationConfig(steps=8, blur_factor=16)
    good = deletion_insertion(model, x, truth, 0, config)
    bad = deletion_insertion(model, x, -truth, 0, config)
    assert good.deletion_auc < good.random_deletion_auc
    assert good.insertion_auc > good.random_insertion_auc
    assert bad.deletion_auc > good.random_deletion_auc
    assert len(good.deletion_curve) == 9
    assert good.deletion_curve[0] == pytest.approx(good.insertion_curve[-1])


def test_area_of_a_constant_curve_is_its_value():
    assert area(np.full(11, 0.3)) == pytest.approx(0.3)
    assert area(np.linspace(0, 1, 5)) == pytest.approx(0.5)


def test_randomised_copy_changes_every_weight_and_leaves_the_model_alone():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Linear(4, 2))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    clone = randomised_copy(model, seed=1)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key])
    assert not torch.equal(clone[0].weight, model[0].weight)
    assert not torch.equal(clone[2].weight, model[2].weight)


def test_rank_correlation_of_the_same_and_of_unrelated_maps():
    rng = np.random.default_rng(0)
    a = rng.random((32, 32))
    assert rank_correlation(a, -a) == pytest.approx(1.0)  # magnitudes are compared
    assert abs(rank_correlation(a, rng.random((32, 32)))) < 0.1
    assert np.isnan(rank_correlation(np.zeros((4, 4)), a[:4, :4]))


def test_gradient_of_a_randomised_model_decorrelates():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 2),
    ).eval()
    x = torch.randn(1, 3, 24, 24, generator=torch.Generator().manual_seed(2))
    same = rank_correlation(
        run_method("gradient", model, x, 0), run_method("gradient", model, x, 0)
    )
    random = rank_correlation(
        run_method("gradient", model, x, 0),
        run_method("gradient", randomised_copy(model, seed=3), x, 0),
    )
    assert same == pytest.approx(1.0) and random < 0.5


def test_localisation_share_and_pointing_game():
    mask = np.zeros((10, 10), dtype=bool)
    mask[:5] = True
    inside = np.where(mask, 1.0, 0.0)
    assert localisation(inside, mask) == {
        "mask_share": 1.0,
        "mask_area": 0.5,
        "pointing_hit": 1.0,
    }
    uniform = localisation(np.ones((10, 10)), mask)
    assert uniform["mask_share"] == pytest.approx(uniform["mask_area"])
    outside = np.where(mask, 0.0, -2.0)  # magnitude counts, sign does not
    assert localisation(outside, mask)["pointing_hit"] == 0.0
    with pytest.raises(ValueError):
        localisation(np.ones((4, 4)), mask)
