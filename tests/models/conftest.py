"""Shared fixtures for the model tests: small inputs, fixed seeds."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _seeded() -> None:
    torch.manual_seed(0)


@pytest.fixture
def images() -> torch.Tensor:
    return torch.randn(2, 3, 32, 32)  # (B, 3, H, W)
