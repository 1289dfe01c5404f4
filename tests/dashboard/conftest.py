"""Run folders for the dashboard tests.

``written_runs`` builds, with the writers of :mod:`imet.runs`, two small runs
over one iMet-format folder (images included) in seconds; the pages that need
a trained model use the ``tiny_run`` fixture of the top-level conftest.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imet import runs
from imet.atomic import write_json

LABEL_NAMES = [
    "culture::dutch",
    "culture::french",
    "medium::oil on canvas",
    "tags::hourglasses",
    "tags::flowers",
]


def write_collection(data_dir: Path, n_images: int, rng: np.random.Generator):
    """An iMet-format folder: labels.csv, train.csv, train/{id}.png."""
    (data_dir / "train").mkdir(parents=True)
    ids = [f"img{i:03d}" for i in range(n_images)]
    targets = (rng.random((n_images, len(LABEL_NAMES))) < 0.4).astype(np.uint8)
    targets[np.arange(n_images), rng.integers(0, len(LABEL_NAMES), n_images)] = 1
    lines = ["attribute_id,attribute_name"]
    lines += [f"{i},{name}" for i, name in enumerate(LABEL_NAMES)]
    (data_dir / "labels.csv").write_text("\n".join(lines) + "\n")
    rows = ["id,attribute_ids"]
    for image_id, row in zip(ids, targets, strict=True):
        rows.append(f"{image_id},{' '.join(str(j) for j in np.flatnonzero(row))}")
        pixels = rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(data_dir / "train" / f"{image_id}.png")
    (data_dir / "train.csv").write_text("\n".join(rows) + "\n")
    return ids, targets


def write_run(run: Path, data_dir: Path, model: str, ids, targets, rng) -> Path:
    """A finished run folder as `imet train` lays it out (no weights)."""
    n = len(ids)
    runs.write_config(
        run, {"data_dir": str(data_dir), "model": model, "image_size": 32}
    )
    runs.write_labels(run, range(len(LABEL_NAMES)), LABEL_NAMES)
    split_of = {
        i: ("train" if k < n // 2 else "val" if k < 3 * n // 4 else "test")
        for k, i in enumerate(ids)
    }
    runs.write_splits(run, split_of)
    noise = rng.random(targets.shape).astype(np.float32)
    scores = np.clip(0.45 * targets + 0.6 * noise, 0, 1).astype(np.float32)
    for split in runs.SPLITS:
        rows = [k for k, i in enumerate(ids) if split_of[i] == split]
        runs.write_scores(
            run,
            split,
            runs.Scores(np.asarray(ids)[rows], scores[rows], targets[rows]),
        )
    runs.write_thresholds(run, np.full(len(LABEL_NAMES), 0.45), note="test")
    # Curves differ between models so that a page shows which run it reads.
    pace = 1.0 if model == "cnn" else 2.0
    for epoch in range(3):
        record = {"epoch": epoch, "train_loss": pace / (epoch + 1)}
        runs.append_history(run, record | {"val_pr_auc_macro": 0.3 + 0.1 * epoch})
    write_json(
        run / runs.METRICS, {"test": {"pr_auc": {"macro": float(scores.mean())}}}
    )
    return run


def write_tree(run: Path) -> None:
    """tanb/tree.json learned from the run's training labels."""
    from imet.tanb.network import learn_network, network_to_json

    ids, names = runs.read_labels(run)
    train = runs.read_scores(run, "train")
    write_json(
        run / "tanb" / "tree.json",
        network_to_json(learn_network(train.targets, ids, names)),
    )


@pytest.fixture
def written_runs(tmp_path: Path) -> Path:
    """A runs folder with two finished runs (cnn, vit) over one collection."""
    rng = np.random.default_rng(0)
    data_dir = tmp_path / "data"
    ids, targets = write_collection(data_dir, 40, rng)
    root = tmp_path / "runs"
    write_run(root / "demo-cnn", data_dir, "cnn", ids, targets, rng)
    write_run(root / "demo-vit", data_dir, "vit", ids, targets, rng)
    return root


@pytest.fixture(scope="session")
def trained_runs(tiny_run, tmp_path_factory) -> Path:
    """A runs folder holding a copy of the trained ``tiny_run`` (a cnn with
    weights and embeddings) with everything the later commands add: the TANB
    tree and decisions, the bias report, a small saliency evaluation."""
    import shutil

    from imet.bias import build_report
    from imet.explain.evaluate import ExplainEvalConfig, evaluate_run
    from imet.tanb import run_tanb

    root = tmp_path_factory.mktemp("dashboard-runs")
    run = Path(shutil.copytree(tiny_run, root / "tiny-cnn"))
    run_tanb(run)
    build_report(run, progress=False)
    quick = ExplainEvalConfig(
        images=1, methods=("gradient", "lrp"), steps=4, randomisation_images=1
    )
    evaluate_run(run, quick, progress=False)
    return root
