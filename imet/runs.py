"""The run folder: what a training run writes and how every other part reads it.

A run folder is the only thing the dashboard, ``imet tanb``, ``imet explain``
and ``imet bias`` need. Its layout (all paths relative to the run)::

    config.json            resolved training configuration (reproduce from it)
    labels.csv             attribute_id,attribute_name of the model's outputs,
                           in output-column order
    splits.csv             id,split for every image the run used
    model.safetensors      weights of the best epoch (by validation PR-AUC)
    checkpoint/            last completed epoch, for --resume
    history.jsonl          one JSON object per epoch
    scores/{split}.npz     ids (str), scores float32 (n, L) sigmoid
                           probabilities, targets uint8 (n, L)
    thresholds.json        per-label decision thresholds (F2-optimal)
    metrics.json           every figure of ``imet evaluate``
    embeddings.npz         ids (str), embeddings float32 (n_train, D),
                           L2-normalised pooled features of training images
    tanb/                  tree.json, report.json (``imet tanb``)
    explain/               eval.json and maps (``imet explain-eval``)
    bias.json              label-bias report (``imet bias``)

Scores files are plain NumPy archives so that anyone can recompute the metrics
with scikit-learn: ``np.load(run / "scores/test.npz")``.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imet.atomic import atomic_open, atomic_path, write_json

_logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")

CONFIG = "config.json"
LABELS = "labels.csv"
SPLITS_CSV = "splits.csv"
WEIGHTS = "model.safetensors"
CHECKPOINT_DIR = "checkpoint"
HISTORY = "history.jsonl"
SCORES_DIR = "scores"
THRESHOLDS = "thresholds.json"
METRICS = "metrics.json"
EMBEDDINGS = "embeddings.npz"
TANB_DIR = "tanb"
EXPLAIN_DIR = "explain"
BIAS = "bias.json"


class RunError(RuntimeError):
    """A run folder is missing something a command needs; the message says what."""


@dataclass(frozen=True)
class Scores:
    """Scores of one split: row i belongs to image ``ids[i]``."""

    ids: np.ndarray  # (n,) str
    scores: np.ndarray  # (n, L) float32 probabilities
    targets: np.ndarray  # (n, L) uint8 0/1


def is_run(path: str | Path) -> bool:
    """A folder is a run once its configuration is written. (MAE-pretrained
    encoders also hold a config.json, so they live outside the runs folder.)"""
    return (Path(path) / CONFIG).is_file()


def find_runs(root: str | Path) -> list[Path]:
    """Every run folder under ``root`` (itself included), sorted by path."""
    root = Path(root)
    if not root.exists():
        return []
    found = [p.parent for p in root.rglob(CONFIG) if p.parent.name != CHECKPOINT_DIR]
    return sorted(found)


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise RunError(f"{path.parent} has no {path.name} ({what}); {_hint(path)}")
    return path


def _hint(path: Path) -> str:
    name = path.name
    if name in (SCORES_DIR, THRESHOLDS, METRICS, WEIGHTS, EMBEDDINGS) or (
        path.parent.name == SCORES_DIR
    ):
        return "the run has not finished training: run `imet train` (or --resume)"
    if path.parent.name == TANB_DIR:
        return "run `imet tanb --run RUN`"
    if name == BIAS:
        return "run `imet bias --run RUN`"
    return "is this a run folder made by `imet train`?"


def read_config(run: str | Path) -> dict[str, Any]:
    path = _require(Path(run) / CONFIG, "the run's configuration")
    return json.loads(path.read_text(encoding="utf-8"))


def write_config(run: str | Path, config: dict[str, Any]) -> None:
    write_json(Path(run) / CONFIG, config)


def read_labels(run: str | Path) -> tuple[np.ndarray, list[str]]:
    """Attribute ids (int64) and names of the model's output columns."""
    path = _require(Path(run) / LABELS, "the label vocabulary")
    ids, names = [], []
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            ids.append(int(row["attribute_id"]))
            names.append(row["attribute_name"])
    return np.asarray(ids, dtype=np.int64), names


def write_labels(run: str | Path, ids, names) -> None:
    with atomic_open(Path(run) / LABELS, "w", newline="", encoding="utf-8") as h:
        writer = csv.writer(h)
        writer.writerow(["attribute_id", "attribute_name"])
        writer.writerows(zip((int(i) for i in ids), names, strict=True))


def read_splits(run: str | Path) -> dict[str, list[str]]:
    """Image ids per split."""
    path = _require(Path(run) / SPLITS_CSV, "the image split")
    out: dict[str, list[str]] = {s: [] for s in SPLITS}
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            out.setdefault(row["split"], []).append(row["id"])
    return out


def write_splits(run: str | Path, split_of: dict[str, str]) -> None:
    """``split_of`` maps image id to its split name."""
    with atomic_open(Path(run) / SPLITS_CSV, "w", newline="", encoding="utf-8") as h:
        writer = csv.writer(h)
        writer.writerow(["id", "split"])
        writer.writerows(split_of.items())


def read_history(run: str | Path) -> list[dict[str, Any]]:
    """Per-epoch records; a torn last line (a run killed mid-write) is skipped."""
    path = Path(run) / HISTORY
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            _logger.warning("skipping an unreadable line of %s", path)
    return records


def append_history(run: str | Path, record: dict[str, Any]) -> None:
    with open(Path(run) / HISTORY, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def scores_path(run: str | Path, split: str) -> Path:
    return Path(run) / SCORES_DIR / f"{split}.npz"


def read_scores(run: str | Path, split: str) -> Scores:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    path = _require(scores_path(run, split), f"the {split} scores")
    with np.load(path, allow_pickle=False) as data:
        return Scores(
            ids=data["ids"].astype(str),
            scores=data["scores"].astype(np.float32),
            targets=data["targets"].astype(np.uint8),
        )


def write_scores(run: str | Path, split: str, scores: Scores) -> None:
    if scores.scores.shape != scores.targets.shape:
        raise ValueError("scores and targets must have the same shape")
    with atomic_path(scores_path(run, split)) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(
            handle,
            ids=np.asarray(scores.ids, dtype=str),
            scores=np.asarray(scores.scores, dtype=np.float32),
            targets=np.asarray(scores.targets, dtype=np.uint8),
        )


def read_thresholds(run: str | Path) -> np.ndarray:
    path = _require(Path(run) / THRESHOLDS, "the tuned thresholds")
    return np.asarray(json.loads(path.read_text())["thresholds"], dtype=np.float32)


def write_thresholds(run: str | Path, thresholds, *, note: str) -> None:
    """``note`` says how the thresholds were chosen, the fallback included."""
    write_json(
        Path(run) / THRESHOLDS,
        {"note": note, "thresholds": [float(t) for t in thresholds]},
    )


def read_json(run: str | Path, name: str) -> dict[str, Any]:
    """Read one of the run's JSON reports (``metrics.json``, ``tanb/report.json``)."""
    path = _require(Path(run) / name, name)
    return json.loads(path.read_text(encoding="utf-8"))


def read_embeddings(run: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Training image ids and their L2-normalised embeddings (n_train, D)."""
    path = _require(Path(run) / EMBEDDINGS, "the training embeddings")
    with np.load(path, allow_pickle=False) as data:
        return data["ids"].astype(str), data["embeddings"].astype(np.float32)


def write_embeddings(run: str | Path, ids, embeddings: np.ndarray) -> None:
    with atomic_path(Path(run) / EMBEDDINGS) as tmp, open(tmp, "wb") as handle:
        np.savez(
            handle,
            ids=np.asarray(ids, dtype=str),
            embeddings=np.asarray(embeddings, dtype=np.float32),
        )


def require_run(run: str | Path) -> Path:
    """``run`` as a Path; a RunError when it is not a run folder."""
    run = Path(run)
    if not is_run(run):
        what = "does not exist" if not run.exists() else f"has no {CONFIG}"
        raise RunError(f"{run} is not a run folder made by `imet train` ({what})")
    return run


def load_model(run: str | Path, device: str = "cpu") -> tuple[Any, dict[str, Any]]:
    """The run's best model in evaluation mode, and its configuration.

    The architecture is rebuilt from ``config.json`` (no pretrained weights
    are fetched) and the weights are read from ``model.safetensors``.
    """
    from safetensors.torch import load_model as load_weights

    from imet.models import build_model

    run = Path(run)
    config = read_config(run)
    weights = _require(run / WEIGHTS, "the trained weights")
    model = build_model(
        config["model"],
        int(config["n_labels"]),
        image_size=int(config["image_size"]),
        arch=config["arch"],
    )
    load_weights(model, str(weights), device=str(device))
    return model.to(device).eval(), config
