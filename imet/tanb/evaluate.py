"""Every screening strategy on one split, scored with the competition's F2.

Images are processed in blocks so that the (B, L) posteriors of the full tree
never exist for all test images at once; per-image F2 and the counts of what
the network changed are accumulated block by block.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import expit

from imet.tanb.inference import TreeInference
from imet.tanb.screening import (
    over_threshold,
    selection_mask,
    tanb_screen,
    threshold_cap,
    top_n,
)

# Images per evaluation block.
EVAL_BLOCK = 2048
# Candidate posterior probabilities tuned on validation.
KEEP_GRID = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
TREE_GRID = tuple(np.round(np.arange(0.05, 0.96, 0.05), 2))


@dataclass
class ScreeningConfig:
    """How the strategies are applied and tuned."""

    # Attribute budgets N of Vanilla, TopN and ThresholdCapN.
    ns: tuple[int, ...] = (4, 5, 6)
    # Posterior a selected attribute needs to stay in the TANB step; None
    # tunes it on validation over KEEP_GRID.
    keep_probability: float | None = None
    # Posterior a label needs in the tree-posterior strategy; None tunes it on
    # validation over TREE_GRID.
    tree_probability: float | None = None
    # Bound on the TANB step's sweeps (it usually settles in 2 or 3).
    max_sweeps: int = 10
    # Validation images used for tuning (the first ones, a fixed subset).
    tune_images: int = 1000


def f2_per_image(truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """(B,) F2 of each image's predicted label set; 1 where both sets are empty
    (nothing to find, nothing claimed), as ``imet.metrics.f2_samples`` and
    scikit-learn's ``fbeta_score(average="samples", zero_division=1)``."""
    tp = (truth & predicted).sum(axis=1).astype(np.float64)
    fp = (~truth & predicted).sum(axis=1)
    fn = (truth & ~predicted).sum(axis=1)
    denominator = 5 * tp + 4 * fn + fp
    return np.divide(5 * tp, denominator, out=np.ones_like(tp), where=denominator > 0)


def changes(truth, before, after) -> dict[str, int]:
    """What going from ``before`` to ``after`` (B, L) did, right and wrong."""
    added, removed = after & ~before, before & ~after
    return {
        "added_right": int((added & truth).sum()),
        "added_wrong": int((added & ~truth).sum()),
        "removed_right": int((removed & ~truth).sum()),
        "removed_wrong": int((removed & truth).sum()),
    }


@dataclass
class StrategyOutcome:
    """One strategy (at one N) on a set of images."""

    strategy: str
    n: int | None
    baseline: str | None  # what the network's changes are counted against
    f2: list[np.ndarray] = field(default_factory=list)  # per block (b,)
    f2_baseline: list[np.ndarray] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    n_predictions: int = 0
    arrays: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def add(self, truth, predicted, before=None, **arrays) -> None:
        self.f2.append(f2_per_image(truth, predicted))
        self.n_predictions += int(predicted.sum())
        if before is not None:
            self.f2_baseline.append(f2_per_image(truth, before))
            for key, value in changes(truth, before, predicted).items():
                self.counts[key] = self.counts.get(key, 0) + value
        for key, value in arrays.items():
            self.arrays.setdefault(key, []).append(value)

    def summary(self) -> dict:
        f2 = np.concatenate(self.f2) if self.f2 else np.zeros(0)
        row = {
            "strategy": self.strategy,
            "n": self.n,
            "f2": float(f2.mean()) if f2.size else 0.0,
            "predictions": self.n_predictions,
        }
        if self.baseline is not None:
            before = np.concatenate(self.f2_baseline)
            row["baseline"] = self.baseline
            row["f2_baseline"] = float(before.mean()) if before.size else 0.0
            row.update(self.counts)
        return row


@dataclass(frozen=True)
class Cutoffs:
    """The decision probabilities used by the network strategies."""

    keep_probability: float
    tree_probability: float


def evaluate(
    inference: TreeInference,
    log_lr: np.ndarray,
    scores: np.ndarray,
    truth: np.ndarray,
    thresholds: np.ndarray,
    cutoffs: Cutoffs,
    config: ScreeningConfig,
) -> list[StrategyOutcome]:
    """Apply every strategy to (B, L) scores and their calibrated log ratios."""
    outcomes = _outcomes(config.ns)
    for s in range(0, scores.shape[0], EVAL_BLOCK):
        block = slice(s, s + EVAL_BLOCK)
        _evaluate_block(
            inference,
            log_lr[block],
            scores[block],
            truth[block].astype(bool),
            thresholds,
            cutoffs,
            config,
            outcomes,
            offset=s,
        )
    return list(outcomes.values())


def _outcomes(ns) -> dict[tuple[str, int | None], StrategyOutcome]:
    out = {}
    for n in ns:
        out["vanilla", n] = StrategyOutcome("vanilla", n, None)
        out["topn_tanb", n] = StrategyOutcome("topn_tanb", n, "vanilla")
    out["threshold", None] = StrategyOutcome("threshold", None, None)
    for n in ns:
        out["threshold_cap_tanb", n] = StrategyOutcome(
            "threshold_cap_tanb", n, "threshold_cap"
        )
    out["tree_posterior", None] = StrategyOutcome("tree_posterior", None, "threshold")
    out["tree_map", None] = StrategyOutcome("tree_map", None, "threshold")
    return out


def _evaluate_block(
    inference, log_lr, scores, truth, thresholds, cutoffs, config, outcomes, *, offset
) -> None:
    n_labels = scores.shape[1]
    for n in config.ns:
        for name, selected in (
            ("topn_tanb", top_n(scores, n)),
            ("threshold_cap_tanb", threshold_cap(scores, thresholds, n)),
        ):
            result = tanb_screen(
                inference,
                log_lr,
                selected,
                keep_probability=cutoffs.keep_probability,
                max_sweeps=config.max_sweeps,
            )
            before = selection_mask(selected, n_labels)
            if name == "topn_tanb":
                outcomes["vanilla", n].add(truth, before)
            outcomes[name, n].add(
                truth,
                selection_mask(selected, n_labels, result.kept),
                before,
                selected=selected.astype(np.int32),
                score=np.where(
                    selected >= 0,
                    np.take_along_axis(scores, selected.clip(0), axis=1),
                    np.nan,
                ).astype(np.float32),
                kept=result.kept,
                probability=expit(result.log_odds).astype(np.float32),
                settled=result.settled,
            )
    passed = over_threshold(scores, thresholds)
    outcomes["threshold", None].add(truth, passed)
    probability = inference.marginals(log_lr).probability  # (b, L)
    tree = probability >= cutoffs.tree_probability
    joint = inference.map_assignment(log_lr)
    rows, cols = np.nonzero(passed | tree | joint)
    outcomes["tree_posterior", None].add(
        truth,
        tree,
        passed,
        rows=(rows + offset).astype(np.int64),
        cols=cols.astype(np.int32),
        score=scores[rows, cols].astype(np.float32),
        probability=probability[rows, cols].astype(np.float32),
        threshold=passed[rows, cols],
        tree=tree[rows, cols],
        map=joint[rows, cols],
    )
    outcomes["tree_map", None].add(truth, joint, passed)


def tune_cutoffs(
    inference: TreeInference,
    log_lr: np.ndarray,
    scores: np.ndarray,
    truth: np.ndarray,
    thresholds: np.ndarray,
    config: ScreeningConfig,
) -> Cutoffs:
    """Pick the decision probabilities that maximise validation F2.

    The keep probability maximises the mean F2 of TopN+TANB and
    ThresholdCapN+TANB at the middle N; the tree probability maximises the
    tree-posterior strategy's F2. A value set in ``config`` is kept as is.
    """
    take = slice(0, config.tune_images)
    log_lr, scores = log_lr[take], scores[take]
    truth = truth[take].astype(bool)
    keep = config.keep_probability
    tree = config.tree_probability
    if scores.shape[0] == 0:
        return Cutoffs(0.5 if keep is None else keep, 0.5 if tree is None else tree)
    if tree is None:
        probability = inference.marginals(log_lr).probability
        gains = [f2_per_image(truth, probability >= p).mean() for p in TREE_GRID]
        tree = float(TREE_GRID[int(np.argmax(gains))])
    if keep is None:
        n = config.ns[len(config.ns) // 2]
        selections = (top_n(scores, n), threshold_cap(scores, thresholds, n))
        gains = []
        for p in KEEP_GRID:
            f2 = [
                f2_per_image(
                    truth,
                    selection_mask(
                        selected,
                        scores.shape[1],
                        tanb_screen(
                            inference,
                            log_lr,
                            selected,
                            keep_probability=p,
                            max_sweeps=config.max_sweeps,
                        ).kept,
                    ),
                ).mean()
                for selected in selections
            ]
            gains.append(np.mean(f2))
        keep = float(KEEP_GRID[int(np.argmax(gains))])
    return Cutoffs(keep, tree)
