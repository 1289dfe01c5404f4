import json
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import (
    average_precision_score,
    fbeta_score,
    multilabel_confusion_matrix,
    precision_recall_curve,
    precision_score,
    recall_score,
)

import imet.metrics as metrics
from imet.metrics import (
    NoPositivesWarning,
    evaluate_scores,
    f2_macro,
    f2_samples,
    fbeta,
    per_label_metrics,
    pr_auc,
    pr_curve,
    predict,
    rates,
    tune_thresholds,
)

SEEDS = [0, 1, 2]


def _case(seed, n=150, n_labels=10, ties=False, empty_labels=(3,), dtype=np.float64):
    """Random multi-label truth with varied prevalence, and scores that lean
    toward the truth; ``empty_labels`` get no positives."""
    rng = np.random.default_rng(seed)
    prevalence = rng.uniform(0.02, 0.5, size=n_labels)
    y_true = (rng.random((n, n_labels)) < prevalence).astype(np.uint8)
    y_true[:, list(empty_labels)] = 0
    y_true[0, 0] = 1  # at least one positive somewhere
    logits = 1.5 * y_true + rng.normal(size=(n, n_labels))
    y_score = 1 / (1 + np.exp(-logits))
    if ties:  # coarse scores: many images share a score
        y_score = np.round(y_score, 1)
    return y_true, y_score.astype(dtype)


def _with_positives(y_true):
    return np.asarray(y_true).sum(axis=0) > 0


def _quiet(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoPositivesWarning)
        return function(*args, **kwargs)


# ---------------------------------------------------------------- PR-AUC


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("average", ["macro", "weighted"])
def test_pr_auc_matches_sklearn_on_labels_with_positives(seed, ties, average):
    y_true, y_score = _case(seed, ties=ties)
    keep = _with_positives(y_true)
    expected = average_precision_score(
        y_true[:, keep], y_score[:, keep], average=average
    )
    with pytest.warns(NoPositivesWarning, match="1 of 10 labels"):
        assert pr_auc(y_true, y_score, average=average) == pytest.approx(expected)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("ties", [False, True])
def test_pr_auc_micro_matches_sklearn(seed, ties):
    y_true, y_score = _case(seed, ties=ties)
    expected = average_precision_score(y_true, y_score, average="micro")
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoPositivesWarning)  # micro needs no warning
        assert pr_auc(y_true, y_score, average="micro") == pytest.approx(expected)


def test_pr_auc_on_float32_scores_matches_sklearn():
    y_true, y_score = _case(4, empty_labels=(), dtype=np.float32)
    for average in ("macro", "micro", "weighted"):
        expected = average_precision_score(y_true, y_score, average=average)
        assert pr_auc(y_true, y_score, average=average) == pytest.approx(expected)


def test_pr_auc_accepts_sparse_and_bool_targets():
    y_true, y_score = _case(5)
    dense = _quiet(pr_auc, y_true, y_score)
    assert _quiet(pr_auc, sp.csr_matrix(y_true), y_score) == pytest.approx(dense)
    assert _quiet(pr_auc, sp.csr_array(y_true), y_score) == pytest.approx(dense)
    assert _quiet(pr_auc, y_true.astype(bool), y_score) == pytest.approx(dense)


def _all_rankings(y_true, y_score):
    aps = [_quiet(pr_auc, y_true, y_score, average=a) for a in metrics.AVERAGES]
    return aps, _quiet(tune_thresholds, y_true, y_score)


@pytest.mark.parametrize(
    "settings",
    [
        {"_LABELS_PER_BLOCK": 3, "_BLOCK_VALUES": 50},  # several blocks
        {"_FEW_POSITIVES": 0},  # every label sorted
        {"_FEW_POSITIVES": 10**6},  # every label counted
    ],
)
def test_results_do_not_depend_on_blocks_or_ranking_path(monkeypatch, settings):
    y_true, y_score = _case(6, n=80, n_labels=9, empty_labels=(0, 4), ties=True)
    y_true[0, 0] = 0
    assert 0 < y_true.sum(axis=0).min(where=y_true.any(axis=0), initial=99) <= 16
    aps, thresholds = _all_rankings(y_true, y_score)
    for name, value in settings.items():
        monkeypatch.setattr(metrics, name, value)
    other_aps, other_thresholds = _all_rankings(y_true, y_score)
    assert other_aps == pytest.approx(aps)
    assert np.array_equal(other_thresholds, thresholds)


def test_pr_auc_of_perfect_and_reversed_rankings():
    y_true = np.array([[1], [1], [0], [0]])
    assert pr_auc(y_true, np.array([0.9, 0.8, 0.2, 0.1])) == 1.0
    # positives ranked last: precision 1/3 then 2/4
    assert pr_auc(y_true, np.array([0.1, 0.2, 0.8, 0.9])) == pytest.approx(
        (1 / 3 + 2 / 4) / 2
    )


def test_pr_auc_warns_and_returns_nan_when_no_label_has_positives():
    y_true = np.zeros((5, 3), dtype=np.uint8)
    with pytest.warns(NoPositivesWarning, match="3 of 3 labels"):
        assert np.isnan(pr_auc(y_true, np.random.default_rng(0).random((5, 3))))
    with pytest.warns(NoPositivesWarning, match="micro"):
        assert np.isnan(pr_auc(y_true, np.ones((5, 3)), average="micro"))


# ---------------------------------------------------------------- F-beta, rates


@pytest.mark.parametrize("seed", SEEDS)
def test_f2_macro_matches_sklearn_on_labels_with_positives(seed):
    y_true, y_score = _case(seed)
    y_pred = y_score >= 0.6
    keep = _with_positives(y_true)
    expected = fbeta_score(
        y_true[:, keep], y_pred[:, keep], beta=2, average="macro", zero_division=0
    )
    with pytest.warns(NoPositivesWarning, match="left out of the macro F-beta"):
        assert f2_macro(y_true, y_pred) == pytest.approx(expected)


@pytest.mark.parametrize("beta", [0.5, 1.0, 3.0])
def test_fbeta_follows_beta(beta):
    y_true, y_score = _case(7, empty_labels=())
    y_pred = y_score >= 0.5
    expected = fbeta_score(y_true, y_pred, beta=beta, average="macro")
    assert fbeta(y_true, y_pred, beta=beta) == pytest.approx(expected)


@pytest.mark.parametrize("seed", SEEDS)
def test_f2_samples_matches_sklearn_with_empty_images(seed):
    y_true, y_score = _case(seed)
    y_pred = y_score >= 0.7
    y_true[5], y_pred[5] = 0, False  # nothing to find, nothing claimed: 1
    y_true[6], y_pred[6] = 0, True  # nothing to find, all claimed: 0
    y_true[7, :2], y_pred[7] = 1, False  # labels missed: 0
    expected = fbeta_score(y_true, y_pred, beta=2, average="samples", zero_division=1.0)
    assert f2_samples(y_true, y_pred) == pytest.approx(expected)
    strict = fbeta_score(y_true, y_pred, beta=2, average="samples", zero_division=0.0)
    assert f2_samples(y_true, y_pred, zero_division=0.0) == pytest.approx(strict)


@pytest.mark.parametrize("seed", SEEDS)
def test_rates_match_sklearn_and_confusion_matrices(seed):
    y_true, y_score = _case(seed)
    y_pred = y_score >= 0.8  # high: some labels are never predicted
    keep = _with_positives(y_true)
    t, p = y_true[:, keep], y_pred[:, keep]
    cm = multilabel_confusion_matrix(t, p)  # (L, 2, 2): [[tn, fp], [fn, tp]]
    tn, fp, fn, tp = cm[:, 0, 0], cm[:, 0, 1], cm[:, 1, 0], cm[:, 1, 1]
    with pytest.warns(NoPositivesWarning):
        got = rates(y_true, y_pred)
    assert got["precision"] == pytest.approx(
        precision_score(t, p, average="macro", zero_division=0)
    )
    assert got["recall"] == pytest.approx(recall_score(t, p, average="macro"))
    assert got["fpr"] == pytest.approx(np.mean(fp / (fp + tn)))
    assert got["fnr"] == pytest.approx(np.mean(fn / (fn + tp)))


def test_rates_use_zero_division_for_labels_never_predicted_or_always_true():
    y_true = np.array([[1, 1], [0, 1], [1, 1]])
    y_pred = np.array([[0, 1], [0, 0], [0, 1]])
    got = rates(y_true, y_pred, zero_division=0.0)
    # label 0: never predicted -> precision 0; label 1: precision 1, no negatives
    assert got["precision"] == pytest.approx(0.5)
    assert got["recall"] == pytest.approx((0 + 2 / 3) / 2)
    assert got["fpr"] == pytest.approx(0.0)
    assert rates(y_true, y_pred, zero_division=1.0)["precision"] == pytest.approx(1.0)


# ---------------------------------------------------------------- thresholds


def _brute_force_thresholds(y_true, y_score, beta=2.0):
    """Try every unique score of every label; best F-beta, and the fewest
    predicted images among thresholds reaching it."""
    best, fewest = [], []
    for j in range(y_true.shape[1]):
        truth, column = y_true[:, j].astype(bool), y_score[:, j]
        if not truth.any():
            best.append(np.nan)
            fewest.append(-1)
            continue
        found = []
        for t in np.unique(column):
            pred = column >= t
            tp = np.sum(pred & truth)
            f = (1 + beta**2) * tp / (beta**2 * truth.sum() + pred.sum())
            found.append((f, -pred.sum()))
        f, neg_count = max(found)
        best.append(f)
        fewest.append(-neg_count)
    return np.array(best), np.array(fewest)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("beta", [1.0, 2.0])
def test_tuned_thresholds_reach_the_brute_force_optimum(seed, ties, beta):
    y_true, y_score = _case(seed, n=120, ties=ties)
    with pytest.warns(NoPositivesWarning, match="fallback threshold 0.5"):
        thresholds = tune_thresholds(y_true, y_score, beta=beta)
    best, fewest = _brute_force_thresholds(y_true, y_score, beta)
    pred = predict(y_score, thresholds)
    keep = _with_positives(y_true)
    got = fbeta_score(y_true, pred, beta=beta, average=None, zero_division=0)
    assert np.allclose(got[keep], best[keep])
    assert np.array_equal(pred.sum(axis=0)[keep], fewest[keep])
    assert np.all(thresholds[~keep] == 0.5)


def test_tuned_threshold_sits_halfway_below_the_chosen_positive():
    y_true = np.array([[1], [0], [0], [1]])
    y_score = np.array([0.9, 0.1, 0.8, 0.3])
    # F2 at 0.9: 5*1/(4*2+1) = 0.556; at 0.3 (3 flagged): 5*2/(8+3) = 0.909
    assert tune_thresholds(y_true, y_score)[0] == pytest.approx(0.2)
    # the lowest score is a positive: nothing lies below, keep the score itself
    assert tune_thresholds(np.array([[0], [1]]), np.array([0.7, 0.4]))[0] == 0.4


def test_tuned_thresholds_give_the_same_decisions_in_float32():
    y_true, y_score = _case(8, n=300, dtype=np.float32)
    thresholds = _quiet(tune_thresholds, y_true, y_score)
    as64 = y_score >= thresholds  # float64 comparison
    as32 = y_score >= thresholds.astype(np.float32)
    assert np.array_equal(as64, as32)
    assert thresholds.dtype == np.float64


def test_tune_thresholds_uses_the_stated_fallback():
    y_true, y_score = _case(9, empty_labels=(2, 5))
    with pytest.warns(NoPositivesWarning, match="2 of 10 labels"):
        thresholds = tune_thresholds(y_true, y_score, fallback=0.25)
    assert thresholds[2] == thresholds[5] == 0.25


def test_tune_thresholds_from_sparse_targets_equals_dense():
    y_true, y_score = _case(10)
    dense = _quiet(tune_thresholds, y_true, y_score)
    assert np.array_equal(
        _quiet(tune_thresholds, sp.csr_matrix(y_true), y_score), dense
    )


# ---------------------------------------------------------------- table, curve


def test_per_label_table_matches_sklearn_per_label():
    y_true, y_score = _case(11)
    thresholds = _quiet(tune_thresholds, y_true, y_score)
    names = [f"tags::thing {j}" for j in range(10)]
    with pytest.warns(NoPositivesWarning):
        table = per_label_metrics(y_true, y_score, thresholds, names=names)
    assert list(table["label"]) == names
    pred = predict(y_score, thresholds)
    for j in range(10):
        row = table.iloc[j]
        assert row["support"] == y_true[:, j].sum()
        assert row["threshold"] == thresholds[j]
        assert row["predicted"] == pred[:, j].sum()
        if row["support"] == 0:
            assert np.isnan(row["ap"]) and np.isnan(row["recall"])
            assert np.isnan(row["f2"]) and np.isnan(row["fnr"])
            continue
        truth = y_true[:, j]
        assert row["ap"] == pytest.approx(average_precision_score(truth, y_score[:, j]))
        assert row["f2"] == pytest.approx(fbeta_score(truth, pred[:, j], beta=2))
        assert row["recall"] == pytest.approx(recall_score(truth, pred[:, j]))
        assert row["precision"] == pytest.approx(precision_score(truth, pred[:, j]))
        tn, fp, fn, tp = multilabel_confusion_matrix(truth, pred[:, j]).ravel()[-4:]
        assert row["fpr"] == pytest.approx(fp / (fp + tn))
        assert row["fnr"] == pytest.approx(fn / (fn + tp))


@pytest.mark.parametrize("ties", [False, True])
def test_pr_curve_equals_sklearn(ties):
    y_true, y_score = _case(12, ties=ties)
    curve = pr_curve(y_true[:, 1], y_score[:, 1])
    precision, recall, thresholds = precision_recall_curve(y_true[:, 1], y_score[:, 1])
    assert np.allclose(curve.precision, precision)
    assert np.allclose(curve.recall, recall)
    assert np.allclose(curve.thresholds, thresholds)


def test_pr_curve_of_a_label_without_positives_warns():
    with pytest.warns(NoPositivesWarning, match="recall is NaN"):
        curve = pr_curve(np.zeros(5), np.linspace(0, 1, 5))
    assert np.isnan(curve.recall[:-1]).all()
    with pytest.raises(ValueError, match="one label"):
        pr_curve(np.ones((4, 2)), np.ones((4, 2)))


# ---------------------------------------------------------------- metrics.json


def test_evaluate_scores_equals_sklearn_for_every_figure():
    splits = {"val": _case(13), "test": _case(14, empty_labels=(3, 7))}
    train_true, train_score = _case(15, empty_labels=())
    thresholds = tune_thresholds(train_true, train_score)
    with pytest.warns(NoPositivesWarning) as caught:
        result = evaluate_scores(splits, thresholds)
    said = " ".join(str(w.message) for w in caught)
    assert "1 of 10 labels" in said and "split 'val'" in said
    assert "2 of 10 labels" in said and "split 'test'" in said
    assert set(result) == {"val", "test"}
    for name, (y_true, y_score) in splits.items():
        got = result[name]
        keep = _with_positives(y_true)
        t, s = y_true[:, keep], y_score[:, keep]
        tuned = (y_score >= thresholds)[:, keep]
        expected = {
            "pr_auc_weighted": average_precision_score(t, s, average="weighted"),
            "pr_auc_micro": average_precision_score(y_true, y_score, average="micro"),
            "pr_auc_macro": average_precision_score(t, s, average="macro"),
            "f2_macro_at_0.5": fbeta_score(t, s >= 0.5, beta=2, average="macro"),
            "f2_macro_tuned": fbeta_score(t, tuned, beta=2, average="macro"),
            "precision_tuned": precision_score(
                t, tuned, average="macro", zero_division=0
            ),
            "recall_tuned": recall_score(t, tuned, average="macro"),
            "f2_samples_tuned": fbeta_score(
                y_true,
                y_score >= thresholds,
                beta=2,
                average="samples",
                zero_division=1.0,
            ),
        }
        for key, value in expected.items():
            assert got[key] == pytest.approx(value), key
        assert got["fnr_tuned"] == pytest.approx(1 - got["recall_tuned"])
        assert got["n_images"] == 150 and got["n_labels"] == 10
        assert got["n_labels_with_positives"] == keep.sum()
    json.dumps(result, allow_nan=False)  # plain JSON, no NaN


def test_evaluate_scores_reads_score_objects_and_reports_undefined_as_none():
    y_true = np.zeros((4, 2), dtype=np.uint8)
    stored = SimpleNamespace(targets=y_true, scores=np.full((4, 2), 0.3))
    with pytest.warns(NoPositivesWarning):
        result = evaluate_scores({"test": stored}, np.array([0.5, 0.5]))
    figures = result["test"]
    assert figures["pr_auc_macro"] is None and figures["pr_auc_micro"] is None
    assert figures["n_labels_with_positives"] == 0
    assert figures["f2_samples_tuned"] == 1.0  # nothing to find, nothing claimed
    json.dumps(result, allow_nan=False)


# ---------------------------------------------------------------- input checks


@pytest.mark.parametrize(
    ("y_true", "y_score", "message"),
    [
        (np.ones((3, 2)), np.ones((3, 3)), r"same shape; got \(3, 2\) and \(3, 3\)"),
        (np.array([[0, 2], [1, 0]]), np.ones((2, 2)), r"binary .* found values \[2\]"),
        (np.array([[0.5], [1.0]]), np.ones((2, 1)), r"found values \[0.5\]"),
        (np.ones((2, 2)), np.array([[0.1, np.nan], [1, 1]]), "row 0, column 1"),
        (np.ones((2, 2)), np.array([[0.1, np.inf], [1, 1]]), "must be finite"),
        (np.ones((2, 2, 2)), np.ones((2, 2, 2)), "must be 2-D"),
        (np.ones((0, 2)), np.ones((0, 2)), "no images"),
        (np.array([["a"], ["b"]]), np.ones((2, 1)), "numeric 0/1 or bool"),
        (np.ones((2, 1)), np.array([["x"], ["y"]]), "must be numeric"),
        (sp.csr_matrix(np.array([[0, 3]])), np.ones((1, 2)), r"found values \[3\]"),
    ],
)
def test_bad_inputs_raise_clear_errors(y_true, y_score, message):
    with pytest.raises(ValueError, match=message):
        pr_auc(y_true, y_score)


def test_bad_options_raise_clear_errors():
    y_true, y_score = _case(16, empty_labels=())
    with pytest.raises(ValueError, match="average must be one of"):
        pr_auc(y_true, y_score, average="samples")
    with pytest.raises(ValueError, match="beta must be positive"):
        tune_thresholds(y_true, y_score, beta=0)
    with pytest.raises(ValueError, match="one value per label"):
        evaluate_scores({"val": (y_true, y_score)}, np.ones(3))
    with pytest.raises(ValueError, match="y_pred must have the same shape"):
        f2_samples(y_true, np.ones((2, 10)))
    with pytest.raises(ValueError, match="y_pred must be binary"):
        f2_macro(y_true, y_score)
    with pytest.raises(ValueError, match="names has 2 entries"):
        per_label_metrics(y_true, y_score, 0.5, names=["a", "b"])
