import numpy as np
import pytest
from sklearn.metrics import precision_score

from imet.bias import (
    LabelEvidence,
    cluster_statistics,
    combine,
    manifest_check,
    percentile_ranks,
    precision_at,
)


def _unit_rows(n, d, rng):
    e = rng.standard_normal((n, d))
    return (e / np.linalg.norm(e, axis=1, keepdims=True)).astype(np.float32)


def test_cluster_statistics_match_brute_force_and_random_sets():
    rng = np.random.default_rng(0)
    # two loose groups, so random sets have a non-trivial spread
    e = _unit_rows(300, 8, rng) + np.repeat([[2.0] * 8, [-2.0] * 8], 150, axis=0)
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    targets = np.zeros((300, 2), dtype=np.uint8)
    targets[:20, 0] = 1  # positives all in the first group
    targets[rng.choice(300, 20, replace=False), 1] = 1
    observed, null_mean, null_std = cluster_statistics(e, targets)
    pos = e[:20]
    pair = pos @ pos.T
    assert observed[0] == pytest.approx((pair.sum() - 20) / (20 * 19), abs=1e-9)
    draws = []
    for _ in range(3000):  # the null by sampling, to check the closed form
        s = e[rng.choice(300, 20, replace=False)]
        draws.append(((s @ s.T).sum() - 20) / (20 * 19))
    assert null_mean[0] == pytest.approx(np.mean(draws), abs=0.01)
    assert null_std[0] == pytest.approx(np.std(draws), rel=0.1)
    z = (observed - null_mean) / null_std
    assert z[0] > 3 and abs(z[1]) < 3


def test_cluster_statistics_leave_labels_with_one_positive_undefined():
    rng = np.random.default_rng(1)
    targets = np.zeros((10, 1), dtype=np.uint8)
    targets[3] = 1
    observed, _, _ = cluster_statistics(_unit_rows(10, 4, rng), targets)
    assert np.isnan(observed[0])


def test_precision_at_thresholds_matches_scikit_learn():
    rng = np.random.default_rng(2)
    targets = (rng.random((50, 3)) < 0.3).astype(np.uint8)
    scores = rng.random((50, 3)).astype(np.float32)
    thresholds = np.array([0.5, 0.2, 1.1])  # the last label is never predicted
    got = precision_at(targets, scores, thresholds)
    for j in range(2):
        expected = precision_score(targets[:, j], scores[:, j] >= thresholds[j])
        assert got[j] == pytest.approx(expected)
    assert np.isnan(got[2])


def test_percentile_ranks_keep_missing_values_missing():
    ranks = percentile_ranks(np.array([3.0, np.nan, 1.0, 2.0]))
    np.testing.assert_allclose(ranks, [1.0, np.nan, 1 / 3, 2 / 3])


def _label(column, **evidence):
    return LabelEvidence(column, 100 + column, f"tags::t{column}", 10, **evidence)


def test_combine_ranks_by_mean_percentile_with_missing_evidence_neutral():
    labels = [
        _label(0, cluster_z=5.0, occlusion_reliance=0.4, precision_gap=0.5),
        _label(1, cluster_z=1.0, occlusion_reliance=-0.3, precision_gap=0.0),
        _label(2, cluster_z=3.0, precision_gap=0.1),  # no mask: no occlusion
    ]
    ordered = combine(labels)
    assert [lb.column for lb in ordered] == [0, 2, 1]
    assert ordered[0].suspicion == pytest.approx(1.0)
    # label 2: cluster 2/3, occlusion missing (0.5), gap 2/3
    assert ordered[1].suspicion == pytest.approx((2 / 3 + 0.5 + 2 / 3) / 3)
    assert ordered[1].ranks["occlusion_reliance"] is None
    assert [lb.rank for lb in ordered] == [1, 2, 3]


def test_manifest_check_reports_recall_and_control_ranks():
    ordered = combine([_label(i, cluster_z=float(10 - i)) for i in range(6)])
    manifest = {
        "planted_biases": [
            {"attribute_id": 100, "name": "a"},
            {"attribute_id": 104, "name": "b"},
        ],
        "controls": [{"attribute_id": 101, "name": "c"}],
    }
    check = manifest_check(ordered, manifest, top_k=3)
    assert check["planted_recall_at_k"] == 0.5
    assert check["planted_ranks"] == {"a": 1, "b": 5}
    assert check["control_ranks"] == {"c": 2}


def test_bias_report_ranks_the_planted_shortcuts_above_the_controls(tiny_run, capsys):
    """The known-answer test: on the synthetic collection, labels whose
    training positives all share a planted cue rank first, controls do not."""
    from imet import runs
    from imet.cli import main

    assert main(["bias", "--run", str(tiny_run), "--top-k", "5"]) == 0
    report = runs.read_json(tiny_run, runs.BIAS)
    check = report["manifest_check"]
    planted = [r for r in check["planted_ranks"].values() if r is not None]
    controls = [r for r in check["control_ranks"].values() if r is not None]
    # two training epochs at 32 px learn three of the four cues; a gold frame
    # a few pixels wide is the one a longer run needs
    assert check["planted_recall_at_k"] >= 0.75
    assert min(controls) > 5
    assert sorted(planted)[2] < min(controls)
    printed = capsys.readouterr().out
    assert "recall of planted labels in the top 5" in printed
    assert report["labels_with_occlusion"] > 0
