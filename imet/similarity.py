"""Nearest training images by cosine similarity of the model's embeddings.

Every run stores the L2-normalised pooled features of its training images
(``embeddings.npz``). For unit vectors the cosine similarity is a dot product,
so a query is one matrix-vector product followed by a partial sort.

Searching 150,000 embeddings is limited by memory bandwidth, not arithmetic:
at D=1280 the float32 matrix is 768 MB, and reading it once takes longer than
the 50 ms a query may take on two cores. The index therefore scans a float16
copy (half the bytes) and re-scores a shortlist in float32. The shortlist is
chosen with a proven margin, so the answer equals the exact float32 search:
each float16 score is within ``_FLOAT16_ERROR`` of the float32 one, so every
true top-k item scores at least (k-th best float16 score - 2 * that error).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy import sparse

_logger = logging.getLogger(__name__)

# Bound on |float16 score - float32 score| for unit vectors: storage and query
# rounding (2 * 2**-11) plus rounding of the result (2**-11), with headroom.
_FLOAT16_ERROR = 2e-3
# Below this many rows a plain float32 scan is as fast and simpler.
_FLOAT16_MIN_ROWS = 20_000


@dataclass(frozen=True)
class Neighbour:
    """One similar training image."""

    id: str  # image id
    similarity: float  # cosine similarity to the query, in [-1, 1]
    row: int  # row in the run's embeddings.npz


class SimilarityIndex:
    """Cosine nearest-neighbour search over a run's training embeddings.

    ``targets`` (n, L) 0/1 and ``label_names`` allow restricting a query to the
    training images that carry one label.
    """

    def __init__(
        self,
        ids,
        embeddings: np.ndarray,
        *,
        targets: np.ndarray | None = None,
        label_names: list[str] | None = None,
    ) -> None:
        embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        if embeddings.ndim != 2 or len(ids) != len(embeddings):
            raise ValueError("embeddings must be (n, D) with one id per row")
        if targets is not None and len(targets) != len(embeddings):
            raise ValueError("targets must have one row per embedding")
        self.ids = np.asarray(ids, dtype=str)
        self.embeddings = embeddings  # (n, D) float32, unit rows
        self.label_names = list(label_names) if label_names is not None else None
        self._rows_of_label = _RowsPerLabel(targets) if targets is not None else None
        self._half = None
        if len(embeddings) >= _FLOAT16_MIN_ROWS:
            self._half = torch.from_numpy(embeddings.astype(np.float16))  # (n, D)

    @classmethod
    def from_run(cls, run: str | Path) -> SimilarityIndex:
        """Index a run's training embeddings; label filtering needs the stored
        training targets (``scores/train.npz``) and is off without them."""
        from imet import runs

        ids, embeddings = runs.read_embeddings(run)
        _, names = runs.read_labels(run)
        try:
            train = runs.read_scores(run, "train")
        except runs.RunError:
            _logger.info("no training targets in %s: label filter disabled", run)
            return cls(ids, embeddings)
        row_of = {image_id: i for i, image_id in enumerate(train.ids)}
        targets = np.zeros((len(ids), len(names)), dtype=np.uint8)
        found = np.array([image_id in row_of for image_id in ids])
        targets[found] = train.targets[[row_of[i] for i in ids[found]]]
        if not found.all():
            _logger.warning("%d embedded images have no stored labels", (~found).sum())
        return cls(ids, embeddings, targets=targets, label_names=names)

    def __len__(self) -> int:
        return len(self.ids)

    def label_column(self, label: int | str) -> int:
        if isinstance(label, str):
            if self.label_names is None or label not in self.label_names:
                raise KeyError(f"unknown label {label!r}")
            return self.label_names.index(label)
        return int(label)

    def query(
        self, embedding, k: int = 10, label: int | str | None = None
    ) -> list[Neighbour]:
        """The ``k`` most similar training images, best first; with ``label``
        (column index or name) only images carrying that label."""
        q = _unit(np.asarray(embedding, dtype=np.float32).reshape(-1))  # (D,)
        if q.shape[0] != self.embeddings.shape[1]:
            raise ValueError(
                f"query has {q.shape[0]} dimensions, the index has "
                f"{self.embeddings.shape[1]}"
            )
        if label is None:
            rows = None
        elif self._rows_of_label is None:
            raise ValueError("this index has no training labels to filter by")
        else:
            rows = self._rows_of_label[self.label_column(label)]
        candidates = self._shortlist(q, k, rows)  # row indices, unordered
        scores = self.embeddings[candidates] @ q  # exact float32
        order = np.argsort(-scores, kind="stable")[:k]
        return [
            Neighbour(
                str(self.ids[candidates[i]]), float(scores[i]), int(candidates[i])
            )
            for i in order
        ]

    def _shortlist(self, q: np.ndarray, k: int, rows: np.ndarray | None) -> np.ndarray:
        """Rows guaranteed to contain the exact top ``k`` (among ``rows``)."""
        if rows is not None and len(rows) <= k:
            return rows
        if self._half is None or (rows is not None and len(rows) < _FLOAT16_MIN_ROWS):
            pool = np.arange(len(self.ids)) if rows is None else rows
            scores = self.embeddings[pool] @ q  # (m,)
            if len(pool) <= k:
                return pool
            return pool[np.argpartition(-scores, k - 1)[:k]]
        # (n,) approximate scores from the float16 copy, accumulated in float32
        approx = (self._half @ torch.from_numpy(q.astype(np.float16))).float().numpy()
        if rows is not None:
            approx_pool, pool = approx[rows], rows
        else:
            approx_pool, pool = approx, None
        k = min(k, len(approx_pool))
        kth = np.partition(approx_pool, len(approx_pool) - k)[len(approx_pool) - k]
        keep = np.flatnonzero(approx_pool >= kth - 2 * _FLOAT16_ERROR)
        return keep if pool is None else pool[keep]


class _RowsPerLabel:
    """Rows carrying each label, from a column-compressed copy of the targets."""

    def __init__(self, targets) -> None:
        self._csc = sparse.csc_matrix(targets, dtype=np.uint8)
        self._csc.eliminate_zeros()

    def __getitem__(self, column: int) -> np.ndarray:
        if not 0 <= column < self._csc.shape[1]:
            raise KeyError(f"label column {column} is out of range")
        start, stop = self._csc.indptr[column], self._csc.indptr[column + 1]
        return np.sort(self._csc.indices[start:stop]).astype(np.int64)


def _unit(v: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    if norm == 0.0:
        raise ValueError("the query embedding is all zeros")
    return v / norm


def embed_image(model, image, image_size: int) -> np.ndarray:
    """The model's L2-normalised pooled embedding (D,) of one PIL image,
    preprocessed as for evaluation."""
    from imet.transforms import eval_transform

    x = eval_transform(image_size)(image).unsqueeze(0)  # (1, 3, S, S)
    device = next(model.parameters()).device
    with torch.no_grad():
        features = model.forward_features(x.to(device))  # (1, D)
    return _unit(features[0].float().cpu().numpy())
