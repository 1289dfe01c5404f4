"""``imet tanb --run RUN``: learn the tree from a run's training labels, screen
its test scores with every strategy, and store what the dashboard reads.

Written into the run (``imet.runs`` layout)::

    tanb/tree.json       the tree, its tables and the warnings of learning
    tanb/report.json     F2 per strategy and N, what the network changed
    tanb/decisions.npz   per-image decisions of every network strategy
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from imet import runs
from imet.atomic import atomic_path, write_json
from imet.tanb.calibration import CalibrationConfig, fit_calibration
from imet.tanb.evaluate import ScreeningConfig, evaluate, tune_cutoffs
from imet.tanb.inference import TreeInference
from imet.tanb.network import (
    TreeConfig,
    TreeNetwork,
    learn_network,
    network_from_json,
    network_to_json,
)

_logger = logging.getLogger(__name__)

TREE = f"{runs.TANB_DIR}/tree.json"
REPORT = f"{runs.TANB_DIR}/report.json"
DECISIONS = f"{runs.TANB_DIR}/decisions.npz"


@dataclass
class TanbConfig:
    """Everything ``imet tanb --run`` does, as one configuration."""

    tree: TreeConfig = field(default_factory=TreeConfig)  # learning the tree
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    screening: ScreeningConfig = field(default_factory=ScreeningConfig)


def learn_from_run(run: str | Path, config: TreeConfig | None = None) -> TreeNetwork:
    """The tree of a run's training labels, in the run's label order."""
    ids, names = runs.read_labels(run)
    train = runs.read_scores(run, "train")
    if train.targets.shape[1] != len(ids):
        raise runs.RunError(
            f"{run}: train scores have {train.targets.shape[1]} labels, "
            f"labels.csv has {len(ids)}"
        )
    return learn_network(sp.csr_matrix(train.targets), ids, names, config)


def run_tanb(run: str | Path, config: TanbConfig | None = None) -> dict[str, Any]:
    """Learn, calibrate, tune on validation, evaluate on test; write the results."""
    config = config or TanbConfig()
    run = Path(run)
    network = learn_from_run(run, config.tree)
    write_json(run / TREE, network_to_json(network))
    inference = TreeInference(network)
    thresholds = runs.read_thresholds(run).astype(np.float64)

    val = runs.read_scores(run, "val")
    calibration = fit_calibration(
        val.scores, val.targets, network.prior(), config.calibration
    )
    cutoffs = tune_cutoffs(
        inference,
        calibration.log_lr(val.scores),
        val.scores,
        val.targets,
        thresholds,
        config.screening,
    )
    test = runs.read_scores(run, "test")
    outcomes = evaluate(
        inference,
        calibration.log_lr(test.scores),
        test.scores,
        test.targets,
        thresholds,
        cutoffs,
        config.screening,
    )
    report = {
        "split": "test",
        "n_images": int(test.scores.shape[0]),
        "n_labels": network.n_labels,
        "n_train_images": network.n_images,
        "metric": "F2, averaged over images (the iMet competition metric)",
        "keep_probability": cutoffs.keep_probability,
        "tree_probability": cutoffs.tree_probability,
        "config": asdict(config),
        "calibration": {
            "method": "per-label Platt scaling with the training prior as offset,"
            " shrunk to a pooled fit, on the validation split",
            "n_images": int(val.scores.shape[0]),
        },
        "tree_warnings": network.warnings,
        "rows": [outcome.summary() for outcome in outcomes],
    }
    write_json(run / REPORT, report)
    _write_decisions(run / DECISIONS, test.ids, outcomes)
    return report


def _write_decisions(path: Path, ids, outcomes) -> None:
    arrays: dict[str, np.ndarray] = {"ids": np.asarray(ids, dtype=str)}
    for outcome in outcomes:
        prefix = outcome.strategy + (f"_{outcome.n}" if outcome.n else "")
        for key, blocks in outcome.arrays.items():
            arrays[f"{prefix}/{key}"] = np.concatenate(blocks)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, **arrays)


def load_decisions(run: str | Path) -> dict[str, np.ndarray]:
    """Every array of ``tanb/decisions.npz``, keyed ``"{strategy}[_{N}]/{field}"``."""
    path = _require(Path(run) / DECISIONS)
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def image_decisions(run: str | Path, image_id: str) -> dict[str, list[dict]]:
    """What each network strategy did for one test image, and why.

    Per strategy key (``topn_tanb_5``, ``tree_posterior``, ...) a list of the
    labels involved with their score, the network's posterior probability and
    a verdict: ``kept`` / ``dropped`` by the network, ``added`` (tree
    strategies: posterior over the cut but score under the threshold).
    """
    decisions = load_decisions(run)
    ids, names = runs.read_labels(run)
    hits = np.flatnonzero(decisions["ids"] == str(image_id))
    if hits.size == 0:
        raise KeyError(f"image {image_id} is not in the test split of {run}")
    row = int(hits[0])
    out: dict[str, list[dict]] = {}
    prefixes = sorted({key.split("/")[0] for key in decisions if "/" in key})
    for prefix in prefixes:
        if f"{prefix}/selected" in decisions:
            out[prefix] = _slot_decisions(decisions, prefix, row, ids, names)
        elif f"{prefix}/rows" in decisions:
            out[prefix] = _tree_decisions(decisions, prefix, row, ids, names)
    return out


def _slot_decisions(decisions, prefix, row, ids, names) -> list[dict]:
    items = []
    for slot, column in enumerate(decisions[f"{prefix}/selected"][row]):
        if column < 0:
            continue
        kept = bool(decisions[f"{prefix}/kept"][row, slot])
        items.append(
            {
                "attribute_id": int(ids[column]),
                "name": names[column],
                "score": float(decisions[f"{prefix}/score"][row, slot]),
                "probability": float(decisions[f"{prefix}/probability"][row, slot]),
                "verdict": "kept" if kept else "dropped",
            }
        )
    return items


def _tree_decisions(decisions, prefix, row, ids, names) -> list[dict]:
    items = []
    for entry in np.flatnonzero(decisions[f"{prefix}/rows"] == row):
        column = int(decisions[f"{prefix}/cols"][entry])
        threshold = bool(decisions[f"{prefix}/threshold"][entry])
        tree = bool(decisions[f"{prefix}/tree"][entry])
        verdict = {
            (True, True): "kept",
            (True, False): "dropped",
            (False, True): "added",
        }.get((threshold, tree), "map only")
        items.append(
            {
                "attribute_id": int(ids[column]),
                "name": names[column],
                "score": float(decisions[f"{prefix}/score"][entry]),
                "probability": float(decisions[f"{prefix}/probability"][entry]),
                "over_threshold": threshold,
                "in_map": bool(decisions[f"{prefix}/map"][entry]),
                "verdict": verdict,
            }
        )
    return items


def _require(path: Path) -> Path:
    if not path.exists():
        raise runs.RunError(
            f"{path.parent.parent} has no {runs.TANB_DIR}/{path.name}; "
            "run `imet tanb --run RUN`"
        )
    return path


def load_tree(run: str | Path) -> TreeNetwork:
    """The tree ``imet tanb --run`` stored in the run: ``.edges()``, ``.names``,
    ``.mi``, ``.cpt(parent_id, child_id)``."""
    path = _require(Path(run) / TREE)
    return network_from_json(json.loads(path.read_text(encoding="utf-8")))


def load_report(run: str | Path) -> dict[str, Any]:
    return runs.read_json(run, REPORT)
