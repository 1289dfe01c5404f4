"""Multi-label metrics: PR-AUC, F-beta, error rates and per-label thresholds.

Inputs follow scikit-learn's multi-label conventions: ``y_true`` is a binary
(n_images, n_labels) array (bool, 0/1 integers or floats, or a scipy sparse
matrix), ``y_score`` a dense float array of the same shape, ``y_pred`` a binary
dense array. They are checked first; a problem raises ``ValueError`` saying
what is wrong.

Conventions, stated once:

- A label with no positive image has no recall and no average precision. Such
  labels are left out of every macro and weighted average, and a
  ``NoPositivesWarning`` says how many there were. Where nothing is left to
  average, the result is ``nan`` (with that warning), never a made-up number.
- A label is predicted when its score is at or above its threshold
  (``y_score >= threshold``), here and in ``predict``.
- Average precision is scikit-learn's ``average_precision_score``: the step
  sum of precision over recall increments, not the trapezoid area.
- Macro precision counts a label with positives but no predictions as 0 and
  macro FPR counts a label with no negatives as 0 (``zero_division``), like
  scikit-learn's ``zero_division=0``.
- F2 averaged over images (the competition metric) scores an image with no
  true and no predicted labels as 1: there was nothing to find and nothing was
  claimed. This equals scikit-learn's
  ``fbeta_score(average="samples", zero_division=1.0)``.

Everything that ranks scores (average precision, thresholds) makes one pass
per label: the scores at or above the label's lowest positive are sorted once
(or, for a label with at most 16 positives, counted against each positive),
and every positive's rank is read from that; see ``tune_thresholds``.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import scipy.sparse as sp

_logger = logging.getLogger(__name__)

AVERAGES = ("macro", "micro", "weighted")

# Scores are copied label-major a few labels at a time, so one label's scores
# are contiguous without copying the matrix: 16 float32 labels are one cache
# line of each image's row, which makes the copy read memory sequentially.
_LABELS_PER_BLOCK = 16
# Rows of the matrix pooled per sort for the micro average (64 MB of float32).
_BLOCK_VALUES = 1 << 24


class NoPositivesWarning(UserWarning):
    """Some labels (or a whole split) have no positive example, so their recall
    and average precision are undefined; they are left out of averages."""


@dataclass(frozen=True)
class _Positives:
    """Where the positives of a binary (n_images, n_labels) matrix are."""

    n_images: int
    n_labels: int
    rows: np.ndarray  # (Q,) int64 image of each positive, grouped by label
    cols: np.ndarray  # (Q,) int64 label of each positive, non-decreasing
    starts: np.ndarray  # (L + 1,) label j's positives are [starts[j], starts[j+1])

    @property
    def support(self) -> np.ndarray:  # (L,) positives per label
        return np.diff(self.starts)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_images, self.n_labels)


# --------------------------------------------------------------------------
# Input checks


def _as_2d(array: np.ndarray, name: str) -> np.ndarray:
    if array.ndim == 1:
        return array.reshape(-1, 1)
    if array.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D (n_images, n_labels); got {array.ndim}-D "
            f"with shape {array.shape}"
        )
    return array


def _check_binary_values(array: np.ndarray, name: str) -> None:
    if array.dtype == bool:
        return
    if array.dtype.kind not in "iuf":
        raise ValueError(f"{name} must be numeric 0/1 or bool; got dtype {array.dtype}")
    bad = (array != 0) & (array != 1)
    if bad.any():
        found = np.unique(array[bad])[:5].tolist()
        raise ValueError(f"{name} must be binary (0/1 or bool); found values {found}")


def _check_targets(y_true: Any) -> _Positives:
    if sp.issparse(y_true):
        return _sparse_positives(y_true)
    array = _as_2d(np.asarray(y_true), "y_true")
    _check_binary_values(array, "y_true")
    if array.shape[0] == 0:
        raise ValueError("y_true has no images (0 rows)")
    rows, cols = np.nonzero(array)
    order = np.argsort(cols, kind="stable")  # group by label, keep image order
    rows, cols = rows[order].astype(np.int64), cols[order].astype(np.int64)
    n_images, n_labels = array.shape
    counts = np.bincount(cols, minlength=n_labels)
    starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return _Positives(n_images, n_labels, rows, cols, starts)


def _sparse_positives(y_true: Any) -> _Positives:
    matrix = sp.csc_array(y_true, copy=True)
    if matrix.ndim != 2:
        raise ValueError(f"y_true must be 2-D; got shape {matrix.shape}")
    matrix.sum_duplicates()
    matrix.eliminate_zeros()
    _check_binary_values(matrix.data, "y_true")
    if matrix.shape[0] == 0:
        raise ValueError("y_true has no images (0 rows)")
    matrix.sort_indices()
    starts = matrix.indptr.astype(np.int64)
    cols = np.repeat(np.arange(matrix.shape[1], dtype=np.int64), np.diff(starts))
    rows = matrix.indices.astype(np.int64)
    return _Positives(matrix.shape[0], matrix.shape[1], rows, cols, starts)


def _check_scores(y_score: Any, positives: _Positives) -> np.ndarray:
    if sp.issparse(y_score):
        raise ValueError("y_score must be a dense array, not a sparse matrix")
    scores = np.asarray(y_score)
    if scores.dtype.kind not in "iufb":
        raise ValueError(f"y_score must be numeric; got dtype {scores.dtype}")
    if scores.dtype.kind != "f":
        scores = scores.astype(np.float64)
    scores = _as_2d(scores, "y_score")
    if scores.shape != positives.shape:
        raise ValueError(
            f"y_true and y_score must have the same shape; got {positives.shape} "
            f"and {scores.shape}"
        )
    # min and max are NaN or infinite exactly when some score is; unlike
    # isfinite they need no (n_images, n_labels) temporary
    if scores.size and not np.isfinite([scores.min(), scores.max()]).all():
        finite = np.isfinite(scores)
        row, col = np.argwhere(~finite)[0]
        raise ValueError(
            f"y_score must be finite; found {scores[row, col]} at row {row}, "
            f"column {col} ({np.count_nonzero(~finite)} non-finite values)"
        )
    return scores


def _check_pred(y_pred: Any, positives: _Positives) -> np.ndarray:
    if sp.issparse(y_pred):
        y_pred = y_pred.toarray()
    pred = _as_2d(np.asarray(y_pred), "y_pred")
    _check_binary_values(pred, "y_pred")
    if pred.shape != positives.shape:
        raise ValueError(
            f"y_true and y_pred must have the same shape; got {positives.shape} "
            f"and {pred.shape}"
        )
    return pred.astype(bool, copy=False)


def _check_thresholds(thresholds: Any, n_labels: int) -> np.ndarray:
    values = np.asarray(thresholds, dtype=np.float64)
    if values.ndim == 0:
        values = np.full(n_labels, float(values))
    if values.shape != (n_labels,):
        raise ValueError(
            f"thresholds must be a scalar or have one value per label ({n_labels}); "
            f"got shape {values.shape}"
        )
    if not np.isfinite(values).all():
        raise ValueError("thresholds must be finite")
    return values


def _check_option(name: str, value: Any, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}; got {value!r}")


def _warn_no_positives(support: np.ndarray, consequence: str, stacklevel: int = 3):
    missing = np.flatnonzero(support == 0)
    if missing.size == 0:
        return
    preview = ", ".join(str(j) for j in missing[:5])
    more = ", ..." if missing.size > 5 else ""
    warnings.warn(
        f"{missing.size} of {support.size} labels have no positive example "
        f"(columns {preview}{more}); {consequence}",
        NoPositivesWarning,
        stacklevel=stacklevel,
    )


# --------------------------------------------------------------------------
# Ranking: one sort per label


# Up to this many positives, comparing the column with each positive score
# (k vectorised passes) is cheaper than sorting the column.
_FEW_POSITIVES = 16


class _Ranking(NamedTuple):
    """One label's positives ranked among all of its scores."""

    positives: np.ndarray  # (k,) positive scores, ascending
    candidates: np.ndarray | None  # scores >= the lowest positive, ascending
    at_or_above: np.ndarray  # (k,) images scoring >= each positive's score
    positives_at_or_above: np.ndarray  # (k,) positives scoring >= it


def _rank(column: np.ndarray, positive_scores: np.ndarray) -> _Ranking:
    positives = np.sort(positive_scores)
    candidates = None
    if positives.size <= _FEW_POSITIVES:
        at_or_above = np.count_nonzero(column >= positives[:, None], axis=1)
    else:
        # No threshold at or above the lowest positive counts a lower score,
        # so only the scores above it need sorting.
        candidates = np.sort(column[column >= positives[0]])
        at_or_above = candidates.size - np.searchsorted(candidates, positives, "left")
    pos_at_or_above = positives.size - np.searchsorted(positives, positives, "left")
    return _Ranking(positives, candidates, at_or_above, pos_at_or_above)


def _ranked_labels(scores: np.ndarray, positives: _Positives):
    """Yield (label, column of scores, its ranking) for labels with positives."""
    n_images, n_labels = scores.shape
    width = _LABELS_PER_BLOCK
    support = positives.support
    for first in range(0, n_labels, width):
        last = min(n_labels, first + width)
        if not support[first:last].any():
            continue
        block = np.ascontiguousarray(scores[:, first:last].T)  # (last - first, N)
        for label in range(first, last):
            lo, hi = positives.starts[label], positives.starts[label + 1]
            if lo == hi:
                continue
            column = block[label - first]
            yield label, column, _rank(column, column[positives.rows[lo:hi]])


def _average_precision(ranking: _Ranking) -> float:
    # A positive's share of the recall is 1/k, earned at the precision of the
    # threshold equal to its score (ties share that threshold), so the step sum
    # is the mean precision at the positives' scores.
    return float(np.mean(ranking.positives_at_or_above / ranking.at_or_above))


def _ap_per_label(scores: np.ndarray, positives: _Positives) -> np.ndarray:
    ap = np.full(positives.n_labels, np.nan)
    for label, _, ranking in _ranked_labels(scores, positives):
        ap[label] = _average_precision(ranking)
    return ap  # (L,), nan where a label has no positives


def _micro_ap(scores: np.ndarray, positives: _Positives) -> float:
    if positives.rows.size == 0:
        return math.nan
    pos = np.sort(scores[positives.rows, positives.cols])  # (Q,)
    at_or_above = np.zeros(pos.size, dtype=np.int64)
    rows_per_block = max(1, _BLOCK_VALUES // positives.n_labels)
    for first in range(0, positives.n_images, rows_per_block):
        flat = scores[first : first + rows_per_block].ravel()
        candidates = np.sort(flat[flat >= pos[0]])
        at_or_above += candidates.size - np.searchsorted(candidates, pos, "left")
    pos_at_or_above = pos.size - np.searchsorted(pos, pos, "left")
    return float(np.mean(pos_at_or_above / at_or_above))


def _average(values: np.ndarray, support: np.ndarray, average: str) -> float:
    keep = support > 0
    if not keep.any():
        return math.nan
    if average == "weighted":
        return float(np.sum(values[keep] * support[keep]) / support[keep].sum())
    return float(np.mean(values[keep]))


def pr_auc(y_true: Any, y_score: Any, *, average: str = "macro") -> float:
    """Area under the precision-recall curve as average precision.

    ``average``: "macro" (mean over labels with positives), "weighted" (the
    same, weighted by positives per label) or "micro" (every image-label pair
    pooled into one ranking). Equals scikit-learn's
    ``average_precision_score`` restricted to labels with positives.
    """
    _check_option("average", average, AVERAGES)
    positives = _check_targets(y_true)
    scores = _check_scores(y_score, positives)
    if average == "micro":
        if positives.rows.size == 0:
            _warn_no_positives(positives.support, "micro PR-AUC is undefined (nan)")
        return _micro_ap(scores, positives)
    _warn_no_positives(positives.support, f"they are left out of the {average} PR-AUC")
    ap = _ap_per_label(scores, positives)
    return _average(ap, positives.support, average)


# --------------------------------------------------------------------------
# Decisions at thresholds


@dataclass(frozen=True)
class _Counts:
    """Confusion counts of binary predictions, per label and per image."""

    n_images: int
    support: np.ndarray  # (L,) true positives + false negatives
    predicted: np.ndarray  # (L,) true positives + false positives
    hits: np.ndarray  # (L,) true positives
    image_true: np.ndarray  # (N,) true labels per image
    image_predicted: np.ndarray  # (N,)
    image_hits: np.ndarray  # (N,)


def _count(positives: _Positives, pred: np.ndarray) -> _Counts:
    hit = pred[positives.rows, positives.cols]  # (Q,) bool
    n, n_labels = positives.shape
    return _Counts(
        n_images=n,
        support=positives.support,
        predicted=pred.sum(axis=0, dtype=np.int64),
        hits=np.bincount(positives.cols[hit], minlength=n_labels),
        image_true=np.bincount(positives.rows, minlength=n),
        image_predicted=pred.sum(axis=1, dtype=np.int64),
        image_hits=np.bincount(positives.rows[hit], minlength=n),
    )


def _divide(num: np.ndarray, den: np.ndarray, zero_division: float) -> np.ndarray:
    out = np.full(num.shape, float(zero_division))
    np.divide(num, den, out=out, where=den != 0)
    return out


def _fbeta_labels(counts: _Counts, beta: float) -> np.ndarray:
    b2 = beta**2
    return _divide(
        (1 + b2) * counts.hits, b2 * counts.support + counts.predicted, math.nan
    )  # (L,), nan only where a label has neither positives nor predictions


def _fbeta_samples(counts: _Counts, beta: float, zero_division: float) -> float:
    b2 = beta**2
    per_image = _divide(
        (1 + b2) * counts.image_hits,
        b2 * counts.image_true + counts.image_predicted,
        zero_division,
    )
    return float(np.mean(per_image))


def _rates(counts: _Counts, zero_division: float) -> dict[str, float]:
    support = counts.support
    false_pos = counts.predicted - counts.hits
    negatives = counts.n_images - support
    recall = _divide(counts.hits, support, math.nan)
    return {
        "precision": _average(
            _divide(counts.hits, counts.predicted, zero_division), support, "macro"
        ),
        "recall": _average(recall, support, "macro"),
        "fpr": _average(_divide(false_pos, negatives, zero_division), support, "macro"),
        "fnr": _average(1.0 - recall, support, "macro"),
    }


def predict(y_score: Any, thresholds: Any) -> np.ndarray:
    """Binary decisions: bool (n_images, n_labels), ``y_score >= thresholds``."""
    scores = np.asarray(y_score)
    scores = _as_2d(scores, "y_score")
    return scores >= _check_thresholds(thresholds, scores.shape[1])


def fbeta(
    y_true: Any,
    y_pred: Any,
    *,
    beta: float = 2.0,
    average: str = "macro",
    zero_division: float = 1.0,
) -> float:
    """F-beta of binary predictions.

    ``average="macro"``: mean over labels with positives of each label's
    F-beta. ``average="samples"``: mean over images of each image's F-beta;
    an image with no true and no predicted label scores ``zero_division``.
    """
    _check_option("average", average, ("macro", "samples"))
    if beta <= 0:
        raise ValueError(f"beta must be positive; got {beta}")
    positives = _check_targets(y_true)
    counts = _count(positives, _check_pred(y_pred, positives))
    if average == "samples":
        return _fbeta_samples(counts, beta, zero_division)
    _warn_no_positives(positives.support, "they are left out of the macro F-beta")
    return _average(_fbeta_labels(counts, beta), positives.support, "macro")


def f2_macro(y_true: Any, y_pred: Any) -> float:
    """Macro F2 over labels with positives."""
    return fbeta(y_true, y_pred, beta=2.0, average="macro")


def f2_samples(y_true: Any, y_pred: Any, *, zero_division: float = 1.0) -> float:
    """F2 per image averaged over images (the iMet competition's metric)."""
    return fbeta(
        y_true, y_pred, beta=2.0, average="samples", zero_division=zero_division
    )


def rates(y_true: Any, y_pred: Any, *, zero_division: float = 0.0) -> dict[str, float]:
    """Macro precision, recall, false-positive and false-negative rates over
    labels with positives. ``zero_division`` is used for the precision of a
    label never predicted and the FPR of a label with no negatives."""
    positives = _check_targets(y_true)
    counts = _count(positives, _check_pred(y_pred, positives))
    _warn_no_positives(positives.support, "they are left out of the macro rates")
    return _rates(counts, zero_division)


# --------------------------------------------------------------------------
# Thresholds


def _between(lower: np.floating | None, upper: np.floating) -> float:
    """A threshold that keeps ``upper`` and drops ``lower``, in the scores'
    own precision so that comparing in float32 or float64 agrees."""
    if lower is None:
        return float(upper)
    middle = lower + (upper - lower) / upper.dtype.type(2)
    return float(middle if lower < middle <= upper else upper)


def _best_threshold(column: np.ndarray, ranking: _Ranking, beta: float) -> float:
    b2 = beta**2
    k = ranking.positives.size
    f = (1 + b2) * ranking.positives_at_or_above / (b2 * k + ranking.at_or_above)
    # Among equal F-beta take the highest threshold: fewer images flagged.
    best = k - 1 - int(np.argmax(f[::-1]))
    chosen = ranking.positives[best]
    sorted_above = ranking.candidates
    if sorted_above is not None and best > 0:
        # the next lower score is at least the lowest positive: already sorted
        lower = sorted_above[np.searchsorted(sorted_above, chosen, "left") - 1]
    else:
        lower = np.max(column, where=column < chosen, initial=-np.inf)
    return _between(lower if np.isfinite(lower) else None, chosen)


def _tune(
    scores: np.ndarray, positives: _Positives, beta: float, fallback: float
) -> np.ndarray:
    thresholds = np.full(positives.n_labels, float(fallback))
    for label, column, ranking in _ranked_labels(scores, positives):
        thresholds[label] = _best_threshold(column, ranking, beta)
    return thresholds


def tune_thresholds(
    y_true: Any, y_score: Any, *, beta: float = 2.0, fallback: float = 0.5
) -> np.ndarray:
    """Per-label thresholds that maximise F-beta on these scores: (L,) float64.

    The best threshold of a label always sits at one of its positives' scores
    (raising it past a negative only removes false positives), so each label
    needs one sort of its scores and a search for every positive. The returned
    threshold lies halfway between that positive's score and the next lower
    score of the label, which gives the same decisions here and a margin on
    new images. Among thresholds with equal F-beta the highest is taken.
    Labels with no positives get ``fallback``.
    """
    if beta <= 0:
        raise ValueError(f"beta must be positive; got {beta}")
    if not math.isfinite(fallback):
        raise ValueError(f"fallback must be finite; got {fallback}")
    positives = _check_targets(y_true)
    scores = _check_scores(y_score, positives)
    _warn_no_positives(positives.support, f"they get the fallback threshold {fallback}")
    return _tune(scores, positives, beta, fallback)


# --------------------------------------------------------------------------
# Tables and curves


def per_label_metrics(
    y_true: Any,
    y_score: Any,
    thresholds: Any,
    *,
    names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per label (in column order): support, ap, threshold, and at that
    threshold f2, precision, recall, fpr, fnr and the number of images
    predicted. Undefined values (a 0/0, such as the recall of a label with
    no positives or the precision of a label never predicted) are NaN.
    """
    positives = _check_targets(y_true)
    scores = _check_scores(y_score, positives)
    limits = _check_thresholds(thresholds, positives.n_labels)
    _warn_no_positives(positives.support, "their ap, recall, fnr and f2 are NaN")
    counts = _count(positives, scores >= limits)
    support = counts.support
    false_pos = counts.predicted - counts.hits
    recall = _divide(counts.hits, support, math.nan)
    table = pd.DataFrame(
        {
            "support": support,
            "ap": _ap_per_label(scores, positives),
            "threshold": limits,
            "f2": np.where(support > 0, _fbeta_labels(counts, 2.0), math.nan),
            "precision": _divide(counts.hits, counts.predicted, math.nan),
            "recall": recall,
            "fpr": _divide(false_pos, counts.n_images - support, math.nan),
            "fnr": 1.0 - recall,
            "predicted": counts.predicted,
        }
    )
    if names is not None:
        if len(names) != positives.n_labels:
            raise ValueError(
                f"names has {len(names)} entries for {positives.n_labels} labels"
            )
        table.insert(0, "label", list(names))
    return table


class PRCurve(NamedTuple):
    """A precision-recall curve as scikit-learn's ``precision_recall_curve``
    returns it: thresholds ascending, and a last point (precision 1, recall 0)
    with no threshold."""

    precision: np.ndarray  # (T + 1,)
    recall: np.ndarray  # (T + 1,)
    thresholds: np.ndarray  # (T,) distinct scores, ascending


def pr_curve(y_true: Any, y_score: Any) -> PRCurve:
    """The precision-recall curve of one label (1-D inputs, or one column).

    A label with no positives has no recall: its recall is NaN, with a
    ``NoPositivesWarning``.
    """
    positives = _check_targets(y_true)
    if positives.n_labels != 1:
        raise ValueError(f"pr_curve takes one label; got {positives.n_labels}")
    scores = _check_scores(y_score, positives)[:, 0]
    truth = np.zeros(positives.n_images, dtype=np.int64)
    truth[positives.rows] = 1
    order = np.argsort(scores, kind="stable")[::-1]  # descending
    ranked, truth = scores[order], truth[order]
    # The last index of each run of equal scores: a threshold's decisions.
    ends = np.r_[np.flatnonzero(np.diff(ranked)), ranked.size - 1]
    hits = np.cumsum(truth)[ends]
    flagged = ends + 1
    precision = hits / flagged
    if hits[-1] == 0:
        _warn_no_positives(np.array([0]), "its recall is NaN")
        recall = np.full(hits.shape, math.nan)
    else:
        recall = hits / hits[-1]
    return PRCurve(
        precision=np.r_[precision[::-1], 1.0],
        recall=np.r_[recall[::-1], 0.0],
        thresholds=ranked[ends][::-1],
    )


# --------------------------------------------------------------------------
# Everything for metrics.json


def _unpack(value: Any) -> tuple[Any, Any]:
    """(y_true, y_score) from a pair or from an object with ``targets`` and
    ``scores`` (such as ``imet.runs.Scores``)."""
    if hasattr(value, "targets") and hasattr(value, "scores"):
        return value.targets, value.scores
    y_true, y_score = value
    return y_true, y_score


def _json_number(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _evaluate_split(
    split: str, y_true: Any, y_score: Any, thresholds: Any
) -> dict[str, Any]:
    positives = _check_targets(y_true)
    scores = _check_scores(y_score, positives)
    limits = _check_thresholds(thresholds, positives.n_labels)
    _warn_no_positives(
        positives.support,
        f"on split {split!r} they are left out of the macro and weighted figures",
        stacklevel=4,
    )
    ap = _ap_per_label(scores, positives)
    support = positives.support
    at_half = _count(positives, scores >= 0.5)
    tuned = _count(positives, scores >= limits)
    tuned_rates = _rates(tuned, 0.0)
    figures = {
        "pr_auc_weighted": _average(ap, support, "weighted"),
        "pr_auc_micro": _micro_ap(scores, positives),
        "pr_auc_macro": _average(ap, support, "macro"),
        "f2_macro_at_0.5": _average(_fbeta_labels(at_half, 2.0), support, "macro"),
        "f2_macro_tuned": _average(_fbeta_labels(tuned, 2.0), support, "macro"),
        "precision_tuned": tuned_rates["precision"],
        "recall_tuned": tuned_rates["recall"],
        "fpr_tuned": tuned_rates["fpr"],
        "fnr_tuned": tuned_rates["fnr"],
        "f2_samples_tuned": _fbeta_samples(tuned, 2.0, 1.0),
    }
    out: dict[str, Any] = {k: _json_number(v) for k, v in figures.items()}
    out["n_images"] = positives.n_images
    out["n_labels"] = positives.n_labels
    out["n_labels_with_positives"] = int(np.count_nonzero(support))
    return out


def evaluate_scores(
    split_scores: Mapping[str, Any], thresholds: Any
) -> dict[str, dict[str, Any]]:
    """Every figure of ``metrics.json``, per split.

    ``split_scores`` maps a split name to ``(y_true, y_score)`` (or to an
    object with ``targets`` and ``scores``); ``thresholds`` are the per-label
    tuned thresholds. Per split: ``pr_auc_weighted``, ``pr_auc_micro``,
    ``pr_auc_macro``, ``f2_macro_at_0.5``, ``f2_macro_tuned``,
    ``precision_tuned``, ``recall_tuned``, ``fpr_tuned``, ``fnr_tuned``,
    ``f2_samples_tuned`` (floats, ``None`` where undefined so the result is
    valid JSON), ``n_images``, ``n_labels``, ``n_labels_with_positives``.
    The macro and weighted figures cover labels with positives in that split.
    """
    results = {}
    for split, value in split_scores.items():
        y_true, y_score = _unpack(value)
        results[split] = _evaluate_split(split, y_true, y_score, thresholds)
        _logger.debug("metrics on %s: %s", split, results[split])
    return results
