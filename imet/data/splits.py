"""Train / validation / test splits, made once per folder and reused.

A split is made by iterative multi-label stratification (Sechidis, Tsoumakas
and Vlahavas, ECML PKDD 2011), the algorithm of the ``iterative-stratification``
package. That package works on a dense matrix and recounts every label over
every remaining image once per label: about 20 s for 5,000 images and 100 s
for 20,000 images of the 3,474-label vocabulary, so the full 145,000-image
collection would take several minutes and hundreds of MB. This module runs the same
algorithm on the sparse label matrix, updating the counts incrementally; on the
same input and random state it assigns exactly the same folds (a test checks
this against the package).

The split is saved as ``splits.csv`` (``id,split``) in the data folder, or in
the user cache folder when the data folder is read-only, so that every model
trained on a folder sees the same split. A saved split always wins over
``seed``. When the folder gained images since, each new image is assigned by a
hash of its id and the seed (stable, independent of the other images, not
stratified) and a warning says how many; delete ``splits.csv`` to re-split.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse

from imet.atomic import atomic_open
from imet.data.cache import fallback_dir, is_writable
from imet.data.reader import DataError
from imet.runs import SPLITS

if TYPE_CHECKING:
    from imet.data.reader import Collection

_logger = logging.getLogger(__name__)

SPLITS_CSV = "splits.csv"
SPLITS_HEADER = ["id", "split"]


def iterative_stratification(
    targets: scipy.sparse.spmatrix,
    fractions: np.ndarray,
    random_state: np.random.RandomState,
) -> np.ndarray:
    """Fold index (n,) for each row of the 0/1 matrix ``targets`` (n, L).

    Labels are handled rarest first; each image of the label goes to the fold
    that still wants most examples of it (ties: the fold that wants most
    examples overall, then random). Images without labels fill the folds that
    want most examples."""
    rows = scipy.sparse.csr_matrix(targets, dtype=bool)
    rows.sort_indices()
    columns = rows.tocsc()
    columns.sort_indices()
    n_samples = rows.shape[0]
    counts = np.diff(columns.indptr)  # (L,) positives per label
    wanted = fractions * n_samples  # (F,) examples each fold still wants
    wanted_labels = np.outer(fractions, counts)  # (F, L) same, per label
    remaining = counts.astype(np.int64)  # (L,) positives not yet assigned
    assigned = np.zeros(n_samples, dtype=bool)
    folds = np.zeros(n_samples, dtype=int)
    while remaining.any():
        label = _rarest_label(remaining, random_state)
        members = columns.indices[columns.indptr[label] : columns.indptr[label + 1]]
        for sample in members[~assigned[members]]:
            fold = _fold_for_label(wanted_labels[:, label], wanted, random_state)
            sample_labels = rows.indices[rows.indptr[sample] : rows.indptr[sample + 1]]
            folds[sample] = fold
            assigned[sample] = True
            wanted_labels[fold, sample_labels] -= 1
            wanted[fold] -= 1
            remaining[sample_labels] -= 1
    for sample in np.flatnonzero(~assigned):
        fold = _pick(np.flatnonzero(wanted == wanted.max()), random_state)
        folds[sample] = fold
        wanted[fold] -= 1
    return folds


def _rarest_label(remaining: np.ndarray, random_state: np.random.RandomState) -> int:
    fewest = remaining[remaining > 0].min()
    return _pick(np.flatnonzero(remaining == fewest), random_state)


def _fold_for_label(
    wanted_label: np.ndarray, wanted: np.ndarray, random_state: np.random.RandomState
) -> int:
    best = np.flatnonzero(wanted_label == wanted_label.max())
    if len(best) == 1:
        return int(best[0])
    most_wanted = np.flatnonzero(wanted[best] == wanted[best].max())
    return int(best[_pick(most_wanted, random_state)])


def _pick(candidates: np.ndarray, random_state: np.random.RandomState) -> int:
    # One draw only when there is a tie: the random stream then matches the
    # reference implementation's.
    if len(candidates) == 1:
        return int(candidates[0])
    return int(candidates[random_state.choice(len(candidates))])


def make_splits(
    targets: scipy.sparse.spmatrix,
    *,
    seed: int = 0,
    fractions: tuple[float, ...] = (0.8, 0.1, 0.1),
) -> np.ndarray:
    """Fold index (n,) into ``SPLITS`` for each row: shuffled by ``seed``, then
    iteratively stratified."""
    fractions_arr = _check_fractions(fractions)
    random_state = np.random.RandomState(seed)
    order = random_state.permutation(targets.shape[0])  # (n,) shuffled rows
    shuffled = scipy.sparse.csr_matrix(targets)[order]
    folds = iterative_stratification(shuffled, fractions_arr, random_state)
    result = np.empty_like(folds)
    result[order] = folds
    return result


def _check_fractions(fractions: tuple[float, ...]) -> np.ndarray:
    values = np.asarray(fractions, dtype=float)
    if values.shape != (len(SPLITS),) or (values < 0).any() or values.sum() <= 0:
        raise ValueError(
            f"fractions must be {len(SPLITS)} non-negative numbers for "
            f"{'/'.join(SPLITS)}, got {fractions}"
        )
    return values / values.sum()


def splits_path_candidates(data_dir: Path) -> list[Path]:
    """Where a saved split is looked for, in order."""
    return [data_dir / SPLITS_CSV, fallback_dir(data_dir) / SPLITS_CSV]


def load_or_make_splits(
    col: Collection,
    *,
    seed: int = 0,
    fractions: tuple[float, ...] = (0.8, 0.1, 0.1),
) -> dict[str, np.ndarray]:
    """Row indices of ``col`` per split (``train``/``val``/``test``, sorted),
    from the saved ``splits.csv`` or made and saved now."""
    fractions_arr = _check_fractions(fractions)
    saved = next((p for p in splits_path_candidates(col.data_dir) if p.is_file()), None)
    if saved is None:
        folds = make_splits(col.targets, seed=seed, fractions=tuple(fractions_arr))
        path = save_splits(col.data_dir, col.ids, folds)
        _logger.info("made a stratified split (seed %d), saved to %s", seed, path)
    else:
        folds = _folds_from_file(col, saved, seed, fractions_arr)
    result = {name: np.flatnonzero(folds == i) for i, name in enumerate(SPLITS)}
    for name, rows in result.items():
        if len(rows) == 0:
            _logger.warning("split %r is empty (%d images in all)", name, len(col))
    return result


def _folds_from_file(
    col: Collection, path: Path, seed: int, fractions: np.ndarray
) -> np.ndarray:
    assignment = read_splits_csv(path)
    known = set(col.ids)
    unknown = [image_id for image_id in assignment if image_id not in known]
    if unknown:
        _logger.warning(
            "%s names %d images that the collection does not have (skipped or "
            "unusable), e.g. %s",
            path,
            len(unknown),
            ", ".join(unknown[:3]),
        )
    folds = np.empty(len(col), dtype=int)
    missing = []
    for row, image_id in enumerate(col.ids):
        split = assignment.get(image_id)
        if split is None:
            missing.append(image_id)
            folds[row] = hash_fold(image_id, seed, fractions)
        else:
            folds[row] = SPLITS.index(split)
    if missing:
        _logger.warning(
            "%s has no split for %d of %d images (e.g. %s); assigned them by a "
            "hash of their id (not stratified). Delete the file to re-split.",
            path,
            len(missing),
            len(col),
            ", ".join(missing[:3]),
        )
    return folds


def hash_fold(image_id: str, seed: int, fractions: np.ndarray) -> int:
    """A fold for one image from its id alone: the same on every machine."""
    digest = hashlib.blake2b(f"{seed}:{image_id}".encode(), digest_size=8).digest()
    uniform = int.from_bytes(digest, "big") / 2**64  # in [0, 1)
    return int(np.searchsorted(np.cumsum(fractions), uniform, side="right"))


def read_splits_csv(path: Path) -> dict[str, str]:
    """id -> split name; a malformed file raises :class:`DataError` naming the
    line."""
    assignment: dict[str, str] = {}
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [f.strip().lower() for f in next(reader, [])]
        if header != SPLITS_HEADER:
            raise DataError(f"{path}: line 1: expected the header 'id,split'")
        for row in reader:
            if not row:
                continue
            if len(row) != 2 or row[1].strip() not in SPLITS:
                raise DataError(
                    f"{path}: line {reader.line_num}: expected 'id,split' with "
                    f"split one of {', '.join(SPLITS)}, found {row}"
                )
            assignment[row[0].strip()] = row[1].strip()
    return assignment


def save_splits(data_dir: Path, ids: list[str], folds: np.ndarray) -> Path:
    """Write ``splits.csv`` into the data folder, or the user cache folder when
    the data folder is read-only; returns the path written."""
    target_dir = data_dir if is_writable(data_dir) else fallback_dir(data_dir)
    if target_dir != data_dir:
        _logger.warning("%s is read-only; saving the split in %s", data_dir, target_dir)
    path = target_dir / SPLITS_CSV
    with atomic_open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(SPLITS_HEADER)
        for image_id, fold in zip(ids, folds, strict=True):
            writer.writerow([image_id, SPLITS[fold]])
    return path
