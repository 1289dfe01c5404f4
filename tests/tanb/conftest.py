"""Label matrices and a run folder with known structure, made by the tests."""

from __future__ import annotations

import numpy as np
import pytest

from imet import runs


def correlated_labels(n_images: int, n_labels: int, seed: int) -> np.ndarray:
    """(n, L) uint8 labels driven by a hidden group per image, so pairs of labels
    carry clearly different mutual information."""
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, 4, size=n_images)
    rates = rng.random((4, n_labels)) ** 2 * 0.7
    return (rng.random((n_images, n_labels)) < rates[groups]).astype(np.uint8)


def write_fake_run(run, *, n_images=600, n_labels=12, seed=0) -> None:
    """A run folder as training writes it: labels, scores of three splits,
    thresholds, config; the scores are noisy functions of the true labels."""
    rng = np.random.default_rng(seed)
    truth = correlated_labels(n_images, n_labels, seed)
    logits = np.where(truth == 1, 1.0, -1.5) + rng.normal(0, 1.2, truth.shape)
    scores = (1 / (1 + np.exp(-logits))).astype(np.float32)
    ids = np.array([f"img{i:04d}" for i in range(n_images)])
    bounds = {"train": (0, n_images // 2), "val": (n_images // 2, 3 * n_images // 4)}
    bounds["test"] = (3 * n_images // 4, n_images)
    runs.write_config(run, {"model": "test-fixture"})
    runs.write_labels(
        run, np.arange(100, 100 + n_labels), [f"tags::t{i}" for i in range(n_labels)]
    )
    for split, (a, b) in bounds.items():
        runs.write_scores(run, split, runs.Scores(ids[a:b], scores[a:b], truth[a:b]))
    runs.write_thresholds(run, np.full(n_labels, 0.35), note="fixed for the test")


@pytest.fixture
def fake_run(tmp_path):
    run = tmp_path / "run"
    write_fake_run(run)
    return run
