"""Label-bias report: which labels a model may have learned from a shortcut.

A label learned from a shortcut (every training hourglass is a sepia drawing,
so "hourglasses" comes to mean "sepia") leaves three kinds of evidence, each
computed per label from the run folder:

1. **Clustering**: its training positives sit unusually close together in the
   model's embedding space. Statistic: the mean pairwise cosine similarity of
   the positives, as a z-score against random training sets of the same size.
   The null mean and variance are exact U-statistic moments (Hoeffding's
   decomposition) computed from the whole training set, so no random draws
   are needed and every label is scored in one pass.
2. **Occlusion** (collections with object masks): on training positives, the
   drop of the label's score when the *object* is hidden against the drop
   when the *background* is hidden. An object-reliant label falls when its
   object is hidden; a shortcut label keeps its score and falls when the
   background goes. Statistic: mean(background drop - object drop). Hidden
   pixels become mid-grey, which removes colour and texture cues (a blur would
   keep a palette or a sepia tint).
3. **Generalisation gap**: training precision minus test precision at the
   run's tuned thresholds (a shortcut that does not hold in the test split
   makes test predictions wrong).

**Combined suspicion**: each statistic becomes a percentile rank among the
labels where it is available (1 = most suspicious); a missing statistic
counts as 0.5 (no evidence either way); the suspicion is the mean of the three.
Labels with fewer than ``min_positives`` training positives are not ranked.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

_logger = logging.getLogger(__name__)

EVIDENCE = ("cluster_z", "occlusion_reliance", "precision_gap")


@dataclass(frozen=True)
class BiasConfig:
    """Settings of the label-bias report."""

    min_positives: int = 5  # training positives a label needs to be ranked
    occlusion_images: int = 12  # training positives per label for occlusion
    batch_size: int = 64  # images per forward pass
    seed: int = 0  # which positives the occlusion test uses
    top_k: int = 5  # planted-label recall is measured among the top k


@dataclass
class LabelEvidence:
    """Evidence of one label; None where it could not be computed."""

    column: int  # output column of the model
    attribute_id: int
    name: str
    train_positives: int
    cluster_cosine: float | None = None  # mean pairwise cosine of positives
    cluster_null: float | None = None  # expected value for a random set
    cluster_z: float | None = None  # (cosine - null) / null std
    occlusion_images: int = 0  # positives with a mask used for occlusion
    occlusion_score: float | None = None  # mean score, nothing hidden
    object_hidden_drop: float | None = None  # mean score drop, object hidden
    background_hidden_drop: float | None = None  # ... background hidden
    occlusion_reliance: float | None = None  # background drop - object drop
    precision_train: float | None = None
    precision_test: float | None = None
    precision_gap: float | None = None  # train - test
    ranks: dict[str, float] = field(default_factory=dict)  # percentile per evidence
    suspicion: float = 0.5
    rank: int = 0  # 1 = most suspicious


# ------------------------------------------------------------- clustering


def cluster_statistics(
    embeddings: np.ndarray, targets: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per label: mean pairwise cosine of its positives, the mean and the
    standard deviation of that statistic for a random set of the same size.

    ``embeddings`` (N, D) are unit rows, ``targets`` (N, L) 0/1. For a random
    set of n rows the mean pairwise cosine is a U-statistic with kernel
    h(i, j) = cos(i, j); Hoeffding: Var = (4 (n-2) zeta1 + 2 zeta2) / (n (n-1))
    with zeta1 the variance of each row's mean similarity to the others and
    zeta2 the variance of h over pairs. Labels with fewer than 2 positives
    get NaN.
    """
    e = np.asarray(embeddings, dtype=np.float64)
    t = np.asarray(targets, dtype=np.float64)
    n_all = len(e)
    total = e.sum(axis=0)  # (D,)
    mu = (total @ total - n_all) / (n_all * (n_all - 1))
    row_mean = (e @ total - 1.0) / (n_all - 1)  # (N,) mean cosine to the others
    zeta1 = float(np.var(row_mean))
    gram = e.T @ e  # (D, D): sum over pairs of cos^2 via the Frobenius norm
    mean_sq = (np.sum(gram * gram) - n_all) / (n_all * (n_all - 1))
    zeta2 = float(mean_sq - mu**2)
    n = t.sum(axis=0)  # (L,)
    sums = t.T @ e  # (L, D) sum of each label's positives
    with np.errstate(invalid="ignore", divide="ignore"):
        observed = (np.einsum("ld,ld->l", sums, sums) - n) / (n * (n - 1))
        var = (4 * (n - 2) * zeta1 + 2 * zeta2) / (n * (n - 1))
        # a set of all N rows has no spread: the finite-population correction
        var *= np.clip((n_all - n) / max(n_all - 1, 1), 0.0, 1.0)
    observed[n < 2] = np.nan
    return observed, np.full_like(observed, mu), np.sqrt(np.maximum(var, 0.0))


# --------------------------------------------------------------- precision


def precision_at(targets: np.ndarray, scores: np.ndarray, thresholds) -> np.ndarray:
    """Per-label precision of ``scores >= thresholds``; NaN where the label
    is never predicted."""
    predicted = scores >= np.asarray(thresholds)[None, :]
    true_pos = (predicted & (targets > 0)).sum(axis=0)
    n_pred = predicted.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_pred > 0, true_pos / n_pred, np.nan)


# --------------------------------------------------------------- occlusion


def occlusion_drops(
    model,
    images: list,
    masks: list[np.ndarray],
    label: int,
    image_size: int,
    batch: int,
) -> np.ndarray:
    """Scores (n, 3): nothing hidden, object hidden, background hidden, for
    PIL images and their object masks (H, W) bool."""
    import torch

    from imet.explain.methods import prepare, to_input_frame

    inputs = []
    for image, mask in zip(images, masks, strict=True):
        prepared = prepare(image, image_size)
        inside = torch.from_numpy(to_input_frame(mask, prepared, mask=True))  # (S, S)
        x = prepared.x[0]  # (3, S, S); 0 is mid-grey after normalisation
        inputs += [x, x * ~inside, x * inside]
    device = next(model.parameters()).device
    stacked = torch.stack(inputs)  # (3n, 3, S, S)
    scores = []
    with torch.no_grad():
        for start in range(0, len(stacked), batch):
            logits = model(stacked[start : start + batch].to(device))
            scores.append(torch.sigmoid(logits[:, label].float()).cpu())
    return torch.cat(scores).numpy().reshape(-1, 3)


# ------------------------------------------------------------ combination


def percentile_ranks(values: np.ndarray) -> np.ndarray:
    """Rank of each finite value among the finite ones, scaled to (0, 1]
    (ties share their mean rank); NaN stays NaN."""
    from scipy.stats import rankdata

    values = np.asarray(values, dtype=np.float64)
    out = np.full(values.shape, np.nan)
    finite = np.isfinite(values)
    if finite.any():
        out[finite] = rankdata(values[finite]) / finite.sum()
    return out


def combine(labels: list[LabelEvidence]) -> list[LabelEvidence]:
    """Fill ranks and suspicion; return the labels sorted, most suspicious first."""
    for name in EVIDENCE:
        values = np.array(
            [
                np.nan if getattr(lb, name) is None else getattr(lb, name)
                for lb in labels
            ]
        )
        for lb, rank in zip(labels, percentile_ranks(values), strict=True):
            lb.ranks[name] = None if np.isnan(rank) else float(rank)
    for lb in labels:
        lb.suspicion = float(
            np.mean([0.5 if lb.ranks[n] is None else lb.ranks[n] for n in EVIDENCE])
        )
    ordered = sorted(labels, key=lambda lb: (-lb.suspicion, lb.column))
    for position, lb in enumerate(ordered, start=1):
        lb.rank = position
    return ordered


def manifest_check(ordered: list[LabelEvidence], manifest: dict, top_k: int) -> dict:
    """Where the planted labels and the controls of a synthetic collection's
    manifest rank, and the recall of the planted labels among the top k."""
    rank_of = {lb.attribute_id: lb.rank for lb in ordered}
    planted = {int(b["attribute_id"]): b["name"] for b in manifest["planted_biases"]}
    controls = {int(c["attribute_id"]): c["name"] for c in manifest.get("controls", [])}
    found = sum(1 for a in planted if rank_of.get(a, 10**9) <= top_k)
    return {
        "top_k": top_k,
        "planted_recall_at_k": found / len(planted) if planted else None,
        "planted_ranks": {n: rank_of.get(a) for a, n in planted.items()},
        "control_ranks": {n: rank_of.get(a) for a, n in controls.items()},
    }


def _finite(value) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def report_dict(ordered: list[LabelEvidence], extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "method": __doc__.split("**Combined suspicion**: ")[1].strip().split("\n\n")[0],
        **extra,
        "labels": [asdict(lb) for lb in ordered],
    }


def read_bias_report(run: str | Path) -> dict[str, Any]:
    """The run's ``bias.json`` (written by ``imet bias``)."""
    from imet import runs

    return runs.read_json(run, runs.BIAS)


# ------------------------------------------------------------------ report


def _evidence_from_scores(run: Path, config: BiasConfig) -> list[LabelEvidence]:
    """Clustering and precision evidence of every label with enough positives."""
    from imet import runs

    attribute_ids, names = runs.read_labels(run)
    train = runs.read_scores(run, "train")
    test = runs.read_scores(run, "test")
    thresholds = runs.read_thresholds(run)
    ids, embeddings = runs.read_embeddings(run)
    row_of = {image_id: i for i, image_id in enumerate(train.ids)}
    missing = [i for i in ids if i not in row_of]
    if missing:
        raise runs.RunError(f"{len(missing)} embedded images lack training labels")
    targets = train.targets[[row_of[i] for i in ids]]  # (N, L) in embedding order
    cosine, null, spread = cluster_statistics(embeddings, targets)
    p_train = precision_at(train.targets, train.scores, thresholds)
    p_test = precision_at(test.targets, test.scores, thresholds)
    positives = train.targets.sum(axis=0)
    labels = []
    for j in np.flatnonzero(positives >= max(config.min_positives, 2)):
        z = (cosine[j] - null[j]) / spread[j] if spread[j] > 0 else np.nan
        labels.append(
            LabelEvidence(
                column=int(j),
                attribute_id=int(attribute_ids[j]),
                name=names[j],
                train_positives=int(positives[j]),
                cluster_cosine=_finite(cosine[j]),
                cluster_null=_finite(null[j]),
                cluster_z=_finite(z),
                precision_train=_finite(p_train[j]),
                precision_test=_finite(p_test[j]),
                precision_gap=_finite(p_train[j] - p_test[j]),
            )
        )
    return labels


def _add_occlusion(
    run: Path, labels: list[LabelEvidence], config: BiasConfig, progress: bool
) -> int:
    """Occlusion evidence for labels whose training positives have object
    masks; returns how many labels got it."""
    from tqdm.auto import tqdm

    from imet import runs
    from imet.data import load_collection, open_image
    from imet.data.synthetic import load_mask

    settings = runs.read_config(run)
    data_dir = Path(settings["data_dir"])
    if not (data_dir / "masks").is_dir():
        _logger.info("%s has no object masks: occlusion evidence skipped", data_dir)
        return 0
    collection = load_collection(data_dir, check_images=False, progress=False)
    path_of = dict(zip(collection.ids, collection.paths, strict=True))
    train = runs.read_scores(run, "train")
    model, _ = runs.load_model(run)
    rng = np.random.default_rng(config.seed)
    done = 0
    for label in tqdm(labels, desc="occlusion", unit="label", disable=not progress):
        rows = rng.permutation(np.flatnonzero(train.targets[:, label.column]))
        images, masks = [], []
        for image_id in train.ids[rows]:
            mask = load_mask(data_dir, image_id, label.attribute_id)
            if mask is not None and mask.any() and image_id in path_of:
                images.append(open_image(path_of[image_id]))
                masks.append(mask)
            if len(images) == config.occlusion_images:
                break
        if not images:
            continue
        scores = occlusion_drops(
            model,
            images,
            masks,
            label.column,
            int(settings["image_size"]),
            config.batch_size,
        )
        object_drop = scores[:, 0] - scores[:, 1]
        background_drop = scores[:, 0] - scores[:, 2]
        label.occlusion_images = len(images)
        label.occlusion_score = float(scores[:, 0].mean())
        label.object_hidden_drop = float(object_drop.mean())
        label.background_hidden_drop = float(background_drop.mean())
        label.occlusion_reliance = float((background_drop - object_drop).mean())
        done += 1
    return done


def build_report(
    run: str | Path, config: BiasConfig | None = None, *, progress: bool = True
) -> dict[str, Any]:
    """Score every label of a run, write ``bias.json`` and return its content."""
    from imet import runs
    from imet.atomic import write_json
    from imet.data.synthetic import read_manifest

    run = Path(run)
    config = config or BiasConfig()
    labels = _evidence_from_scores(run, config)
    n_occluded = _add_occlusion(run, labels, config, progress)
    ordered = combine(labels)
    manifest = read_manifest(runs.read_config(run)["data_dir"])
    extra: dict[str, Any] = {
        "run": str(run),
        "config": asdict(config),
        "labels_ranked": len(ordered),
        "labels_with_occlusion": n_occluded,
        "manifest_check": (
            manifest_check(ordered, manifest, config.top_k) if manifest else None
        ),
    }
    report = report_dict(ordered, extra)
    write_json(run / runs.BIAS, report)
    return report
