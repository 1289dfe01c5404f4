"""Faithfulness of every saliency method on a sample of a run's test images.

For each sampled (image, label) pair, with the label among the image's true
labels, every method's map is measured (see :mod:`imet.explain.faithfulness`):
deletion and insertion areas against a random pixel order, localisation
against the object mask where the collection has one, and, on the first
``randomisation_images`` pairs, the rank correlation with the map of a model
whose weights were re-initialised. The per-method means go to
``RUN/explain/eval.json``.

On a collection with object masks, pairs are drawn only among labels that have
a mask in the image, so every pair also measures localisation.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imet.explain.faithfulness import (
    RANDOMISATION_FLAG,
    PerturbationConfig,
    deletion_insertion,
    localisation,
    randomised_copy,
    rank_correlation,
)
from imet.explain.methods import (
    METHODS,
    MethodUnsupported,
    prepare,
    run_method,
    to_input_frame,
)

_logger = logging.getLogger(__name__)

EVAL_FILE = "eval.json"


@dataclass(frozen=True)
class ExplainEvalConfig:
    """Settings of ``imet explain-eval``."""

    images: int = 16  # (image, label) pairs sampled from the test split
    methods: tuple[str, ...] = tuple(METHODS)  # methods to measure
    steps: int = 16  # deletion / insertion steps
    randomisation_images: int = 8  # pairs that also get the randomisation check
    seed: int = 0  # which pairs are sampled


@dataclass
class _Pair:
    image_id: str
    column: int
    attribute_id: int
    path: Path
    mask: np.ndarray | None  # (H, W) bool object mask in the image frame


def sample_pairs(run: Path, config: ExplainEvalConfig) -> list[_Pair]:
    """Test images with a positive label, one label per image, deterministic."""
    from imet import runs
    from imet.data import load_collection
    from imet.data.synthetic import load_mask

    data_dir = Path(runs.read_config(run)["data_dir"])
    attribute_ids, _ = runs.read_labels(run)
    test = runs.read_scores(run, "test")
    collection = load_collection(data_dir, check_images=False, progress=False)
    path_of = dict(zip(collection.ids, collection.paths, strict=True))
    has_masks = (data_dir / "masks").is_dir()
    rng = np.random.default_rng(config.seed)
    pairs: list[_Pair] = []
    for row in rng.permutation(len(test.ids)):
        image_id = str(test.ids[row])
        columns = rng.permutation(np.flatnonzero(test.targets[row]))
        if image_id not in path_of or len(columns) == 0:
            continue
        for column in columns:
            attribute_id = int(attribute_ids[column])
            mask = load_mask(data_dir, image_id, attribute_id) if has_masks else None
            if has_masks and (mask is None or not mask.any()):
                continue
            pairs.append(
                _Pair(image_id, int(column), attribute_id, path_of[image_id], mask)
            )
            break
        if len(pairs) == config.images:
            break
    return pairs


class _Tally:
    """Per-method lists of measurements."""

    def __init__(self) -> None:
        self.values: dict[str, dict[str, list[float]]] = {}
        self.unsupported: dict[str, str] = {}

    def add(self, method: str, **measurements: float) -> None:
        bucket = self.values.setdefault(method, {})
        for key, value in measurements.items():
            bucket.setdefault(key, []).append(float(value))

    def summary(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for method, bucket in self.values.items():
            row: dict[str, Any] = {"pairs": len(bucket["deletion_auc"])}
            for key, values in bucket.items():
                finite = [v for v in values if np.isfinite(v)]
                row[key] = float(np.mean(finite)) if finite else None
            rho = row.get("randomisation_spearman")
            row["randomisation_flagged"] = rho is not None and rho > RANDOMISATION_FLAG
            out[method] = row
        for method, reason in self.unsupported.items():
            out[method] = {"unsupported": reason}
        return out


def _measure_pair(model, random_model, pair: _Pair, config, tally, image_size, check):
    from imet.data import open_image

    prepared = prepare(open_image(pair.path), image_size)
    device = next(model.parameters()).device
    x = prepared.x.to(device)
    mask = None if pair.mask is None else to_input_frame(pair.mask, prepared, mask=True)
    perturbation = PerturbationConfig(steps=config.steps, seed=config.seed)
    for method in config.methods:
        if method in tally.unsupported:
            continue
        start = time.perf_counter()
        try:
            saliency = run_method(method, model, x, pair.column)[0].numpy()  # (S, S)
        except MethodUnsupported as reason:
            tally.unsupported[method] = str(reason)
            continue
        seconds = time.perf_counter() - start
        scores = deletion_insertion(model, x, saliency, pair.column, perturbation)
        found: dict[str, float] = {
            "seconds_per_map": seconds,
            "deletion_auc": scores.deletion_auc,
            "insertion_auc": scores.insertion_auc,
            "random_deletion_auc": scores.random_deletion_auc,
            "random_insertion_auc": scores.random_insertion_auc,
        }
        if mask is not None:
            found |= localisation(saliency, mask)
        if check:
            other = run_method(method, random_model, x, pair.column)[0].numpy()
            found["randomisation_spearman"] = rank_correlation(saliency, other)
        tally.add(method, **found)


def evaluate_run(
    run: str | Path, config: ExplainEvalConfig | None = None, *, progress: bool = True
) -> dict[str, Any]:
    """Measure every method on sampled test pairs; write and return eval.json."""
    from tqdm.auto import tqdm

    from imet import runs
    from imet.atomic import write_json

    run = Path(run)
    config = config or ExplainEvalConfig()
    unknown = [m for m in config.methods if m not in METHODS]
    if unknown:
        raise KeyError(f"unknown saliency methods {unknown}; known: {list(METHODS)}")
    model, settings = runs.load_model(run)
    random_model = randomised_copy(model, seed=config.seed)
    pairs = sample_pairs(run, config)
    if not pairs:
        raise runs.RunError(f"{run}: no test image has a positive label to explain")
    tally = _Tally()
    image_size = int(settings["image_size"])
    for i, pair in enumerate(tqdm(pairs, desc="explain-eval", disable=not progress)):
        check = i < config.randomisation_images
        _measure_pair(model, random_model, pair, config, tally, image_size, check)
    report = {
        "run": str(run),
        "model": settings["model"],
        "image_size": image_size,
        "config": asdict(config),
        "pairs": [{"id": p.image_id, "attribute_id": p.attribute_id} for p in pairs],
        "randomisation_flag_above": RANDOMISATION_FLAG,
        "methods": tally.summary(),
    }
    write_json(run / runs.EXPLAIN_DIR / EVAL_FILE, report)
    return report


def read_eval(run: str | Path) -> dict[str, Any]:
    """The run's ``explain/eval.json`` (written by ``imet explain-eval``)."""
    from imet import runs

    return runs.read_json(run, f"{runs.EXPLAIN_DIR}/{EVAL_FILE}")
