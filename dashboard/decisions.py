"""Decision rules: which labels an image is given, from the run's test scores.

A rule maps scores (n, L) to a boolean prediction matrix. The fixed rules are
the 0.5 cut and the tuned per-label thresholds; when the run has a TANB tree,
each screening strategy of :mod:`imet.tanb` is a rule too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

HALF = "score ≥ 0.5"
TUNED = "tuned thresholds"


@dataclass(frozen=True)
class Outcome:
    """Per-image counts of right and wrong labels under one rule."""

    predicted: np.ndarray  # (n, L) bool
    true_pos: np.ndarray  # (n,) int labels predicted and true
    false_pos: np.ndarray  # (n,) int labels predicted, not true
    false_neg: np.ndarray  # (n,) int labels true, not predicted

    @property
    def exact(self) -> np.ndarray:
        """(n,) bool: the predicted set equals the true set."""
        return (self.false_pos == 0) & (self.false_neg == 0)


def outcome(predicted: np.ndarray, targets: np.ndarray) -> Outcome:
    truth = targets.astype(bool)
    return Outcome(
        predicted=predicted,
        true_pos=(predicted & truth).sum(axis=1),
        false_pos=(predicted & ~truth).sum(axis=1),
        false_neg=(~predicted & truth).sum(axis=1),
    )


def image_table(
    names: list[str],
    scores: np.ndarray,
    targets: np.ndarray,
    predicted: np.ndarray,
    thresholds: np.ndarray,
) -> pd.DataFrame:
    """One image's labels that are predicted or true: score, threshold, verdict.

    ``scores``, ``targets``, ``predicted``, ``thresholds``: (L,) each."""
    truth = targets.astype(bool)
    rows = np.flatnonzero(predicted | truth)
    verdict = np.where(
        predicted[rows] & truth[rows],
        "right",
        np.where(predicted[rows], "wrong: not in truth", "missed"),
    )
    table = pd.DataFrame(
        {
            "label": [names[j] for j in rows],
            "score": scores[rows].astype(np.float64).round(3),
            "threshold": thresholds[rows].astype(np.float64).round(3),
            "predicted": predicted[rows],
            "true": truth[rows],
            "verdict": verdict,
        }
    )
    return table.sort_values("score", ascending=False, ignore_index=True)


# Strategy keys of ``tanb/decisions.npz`` and how the pages name them.
_STRATEGY_TITLES = {
    "topn_tanb": "TANB: top {n}, then the network",
    "threshold_cap_tanb": "TANB: top {n} over threshold, then the network",
}
TREE_POSTERIOR = "TANB: exact tree posterior"
TREE_MAP = "TANB: most probable joint assignment (tree)"


def _slot_rules(decisions: dict[str, np.ndarray]) -> dict[str, str]:
    """Rule title -> key prefix for the strategies that screen N slots."""
    rules = {}
    for key in sorted(k.split("/")[0] for k in decisions if k.endswith("/selected")):
        name, _, n = key.rpartition("_")
        if name in _STRATEGY_TITLES:
            rules[_STRATEGY_TITLES[name].format(n=n)] = key
    return rules


def tanb_rules(decisions: dict[str, np.ndarray]) -> list[str]:
    """The TANB decision rules stored in a run's ``tanb/decisions.npz``."""
    rules = list(_slot_rules(decisions))
    if "tree_posterior/tree" in decisions:
        rules += [TREE_POSTERIOR, TREE_MAP]
    return rules


def tanb_predictions(decisions: dict[str, np.ndarray], rule: str, scores) -> np.ndarray:
    """(n, L) bool labels a TANB rule gives the test images of ``scores``."""
    n, n_labels = scores.scores.shape
    if not np.array_equal(decisions["ids"], scores.ids):
        raise ValueError(
            "tanb/decisions.npz was made from other test scores; "
            "rerun `imet tanb --run RUN`"
        )
    predicted = np.zeros((n, n_labels), dtype=bool)
    slots = _slot_rules(decisions)
    if rule in slots:
        selected = decisions[f"{slots[rule]}/selected"]  # (n, N) columns, -1 empty
        kept = decisions[f"{slots[rule]}/kept"] & (selected >= 0)  # (n, N)
        rows = np.repeat(np.arange(n), selected.shape[1]).reshape(selected.shape)
        predicted[rows[kept], selected[kept]] = True
        return predicted
    if rule in (TREE_POSTERIOR, TREE_MAP):
        field = "tree" if rule == TREE_POSTERIOR else "map"
        chosen = decisions[f"tree_posterior/{field}"]
        rows = decisions["tree_posterior/rows"][chosen]
        cols = decisions["tree_posterior/cols"][chosen]
        predicted[rows, cols] = True
        return predicted
    raise KeyError(f"unknown decision rule {rule!r}")


def strategy_title(key: str) -> str:
    """Readable name of a ``decisions.npz`` strategy key (``topn_tanb_5``)."""
    name, _, n = key.rpartition("_")
    if name in _STRATEGY_TITLES:
        return _STRATEGY_TITLES[name].format(n=n)
    if key == "tree_posterior":
        return f"{TREE_POSTERIOR} (and the joint assignment)"
    return key
