"""Choosing each image's attributes from its scores, with and without the tree.

The four strategies of the study, batched over images:

* **Vanilla**: the N best-scored labels.
* **TopN then TANB**: the N best-scored labels, screened by ``tanb_screen``.
* **Threshold**: every label whose score is at least its tuned threshold.
* **ThresholdCapN then TANB**: the N best-scored labels among those at or over
  their threshold (fewer when fewer pass), screened by ``tanb_screen``.

and the two that use the whole tree at once (``imet.tanb.inference``):

* **Tree posterior**: every label whose exact posterior, given every label's
  score as soft evidence, is at least a probability tuned on validation.
* **Tree MAP**: the most probable joint assignment of all labels.

Selections of the first kind are (B, N) arrays of label columns in descending
score order, padded with -1 where an image has fewer than N.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logit

from imet.tanb.inference import TreeInference


def top_n(scores: np.ndarray, n: int) -> np.ndarray:
    """(B, n) columns of the n highest scores, best first (lower column on ties)."""
    n = min(n, scores.shape[1])
    order = np.argsort(-scores, axis=1, kind="stable")
    return order[:, :n]


def over_threshold(scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """(B, L) bool: score >= the label's threshold."""
    return scores >= thresholds[None, :]


def threshold_cap(scores: np.ndarray, thresholds: np.ndarray, n: int) -> np.ndarray:
    """(B, n) the n best-scored labels among those over threshold, -1 padded."""
    passed = over_threshold(scores, thresholds)
    masked = np.where(passed, scores, -np.inf)
    chosen = top_n(masked, n)
    return np.where(np.take_along_axis(passed, chosen, axis=1), chosen, -1)


def selection_mask(selected: np.ndarray, n_labels: int, keep=None) -> np.ndarray:
    """(B, L) bool from a (B, N) selection (and an optional (B, N) keep mask)."""
    valid = selected >= 0
    if keep is not None:
        valid &= keep
    rows, slots = np.nonzero(valid)
    mask = np.zeros((selected.shape[0], n_labels), dtype=bool)
    mask[rows, selected[rows, slots]] = True
    return mask


@dataclass(frozen=True)
class ScreenResult:
    """Outcome of the TANB step on a (B, N) selection."""

    kept: np.ndarray  # (B, N) bool, False on padding
    log_odds: np.ndarray  # (B, N) final posterior log-odds, NaN on padding
    sweeps: np.ndarray  # (B,) sweeps until nothing changed
    settled: np.ndarray  # (B,) bool, False where max_sweeps ran out


def tanb_screen(
    inference: TreeInference,
    log_lr: np.ndarray,
    selected: np.ndarray,
    *,
    keep_probability: float = 0.5,
    max_sweeps: int = 10,
) -> ScreenResult:
    """Decide which selected attributes stay, one at a time, to a fixed point.

    Every selected attribute starts kept. A sweep visits the selected
    attributes of each image in descending score order; for attribute v it
    computes, exactly on the full tree,

        log-odds(v) = log P(v=1 | every other currently kept attribute = 1)
                      / P(v=0 | ...)  +  log rho_v(score_v)

    that is, the tree's posterior odds of v with the other kept attributes as
    hard evidence (present = 1) and every unselected label marginalised out,
    times the likelihood ratio of v's own calibrated score. v stays when that
    posterior is at least ``keep_probability``. Each decision is applied at
    once, so later attributes of the sweep see it (one at a time, not all
    together). An attribute dropped earlier is re-examined in later sweeps and
    may come back when the evidence changed. Sweeps repeat until a sweep
    changes nothing, or ``max_sweeps`` (the result then says unsettled).
    """
    n_images, n_slots = selected.shape
    valid = selected >= 0
    kept = valid.copy()
    log_odds = np.full(selected.shape, np.nan)
    sweeps = np.zeros(n_images, dtype=np.int64)
    settled = ~valid.any(axis=1)
    own = np.where(
        valid, np.take_along_axis(log_lr, selected.clip(0), axis=1), np.nan
    )  # (B, N) log likelihood ratio of each selected label's score
    cut = float(logit(np.clip(keep_probability, 1e-12, 1 - 1e-12)))
    active = np.flatnonzero(~settled)
    for _ in range(max_sweeps):
        if active.size == 0:
            break
        sweeps[active] += 1
        subtrees = inference.subtrees(selected[active])
        sub_kept = kept[active]
        changed = np.zeros(active.size, dtype=bool)
        for slot in range(n_slots):
            here = valid[active, slot]
            value = subtrees.cavity(sub_kept)[:, slot] + own[active, slot]
            decision = np.where(here, value >= cut, False)
            changed |= decision != sub_kept[:, slot]
            sub_kept[:, slot] = decision
            log_odds[active[here], slot] = value[here]
        kept[active] = sub_kept
        settled[active[~changed]] = True
        active = active[changed]
    return ScreenResult(kept, log_odds, sweeps, settled)
