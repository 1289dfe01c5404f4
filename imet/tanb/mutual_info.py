"""Mutual information between every pair of binary labels, from one sparse product.

For binary labels every pairwise statistic comes from four counts per pair:
how often both are present, and the two marginal counts. The co-occurrence
counts of all pairs are one sparse product ``X^T X`` of the (images, labels)
matrix, so the mutual information of all pairs costs about as much as reading
the labels once, where a pair-by-pair estimator reads the whole column pair
for every one of the L(L-1)/2 pairs.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.special import xlogy

# Rows of the (L, L) result computed at a time: bounds the temporaries to
# a few times ROW_BLOCK * L float64 values.
ROW_BLOCK = 512


def as_label_matrix(labels) -> sp.csr_matrix:
    """A (n_images, L) 0/1 matrix as CSR int32; dense arrays are accepted."""
    matrix = sp.csr_matrix(labels)
    matrix.data = (matrix.data != 0).astype(np.int32)
    matrix.eliminate_zeros()
    return matrix


def cooccurrence(labels) -> tuple[np.ndarray, int]:
    """Dense co-occurrence counts (L, L) int64 and the number of images.

    ``counts[i, j]`` is how many images carry both labels i and j; the diagonal
    holds each label's count.
    """
    matrix = as_label_matrix(labels)
    counts = (matrix.T @ matrix).toarray().astype(np.int64)  # (L, L)
    return counts, matrix.shape[0]


def mutual_information(counts: np.ndarray, n_images: int) -> np.ndarray:
    """Mutual information (nats) of every label pair from co-occurrence counts.

    Uses ``n * I(i; j) = sum_ab n_ab log n_ab - sum_a n_a log n_a
    - sum_b n_b log n_b + n log n`` over the 2x2 table of the pair, with
    ``0 log 0 = 0``, which is the plug-in (maximum-likelihood) estimate that
    ``sklearn.metrics.mutual_info_score`` also returns. The result is exactly
    symmetric, has a zero diagonal, and is clipped at 0 (rounding can leave
    -1e-17 on independent pairs).
    """
    if n_images <= 0:
        raise ValueError("mutual information needs at least one image")
    n = float(n_images)
    present = np.diag(counts).astype(np.float64)  # (L,)
    # Entropy-like term of each label's marginal, n_1 log n_1 + n_0 log n_0.
    marginal = xlogy(present, present) + xlogy(n - present, n - present)  # (L,)
    n_labels = counts.shape[0]
    out = np.empty((n_labels, n_labels), dtype=np.float64)
    for start in range(0, n_labels, ROW_BLOCK):
        rows = slice(start, min(start + ROW_BLOCK, n_labels))
        both = counts[rows].astype(np.float64)  # (r, L)
        only_row = present[rows, None] - both
        only_col = present[None, :] - both
        neither = n - present[rows, None] - present[None, :] + both
        # Grouping the two off-diagonal cells keeps I(i; j) == I(j; i) bit
        # for bit: floating-point addition is commutative.
        joint = (xlogy(both, both) + xlogy(neither, neither)) + (
            xlogy(only_row, only_row) + xlogy(only_col, only_col)
        )
        out[rows] = joint - (marginal[rows, None] + marginal[None, :])
    out += n * np.log(n)
    out /= n
    np.fill_diagonal(out, 0.0)
    np.clip(out, 0.0, None, out=out)
    return out


def pairwise_mutual_information(labels) -> np.ndarray:
    """(L, L) mutual information in nats of a (n_images, L) 0/1 label matrix."""
    counts, n_images = cooccurrence(labels)
    return mutual_information(counts, n_images)
