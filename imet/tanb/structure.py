"""The Chow-Liu tree: the spanning tree of labels with the largest total mutual
information, directed away from a root label.

The weights form a dense (L, L) matrix, so the tree is grown with Prim's
algorithm on that matrix: L steps of O(L) vector operations, O(L^2) in all,
which is optimal for a dense graph (Kruskal would sort L^2/2 edges). Prim's
algorithm also needs no special case for zero weights: a label with zero
mutual information to every other still joins the tree, through a weight-0
edge, where ``scipy.sparse.csgraph.minimum_spanning_tree`` would drop it and
return a forest.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

_logger = logging.getLogger(__name__)

# Mutual information is rounded to this many decimals before the tree is grown,
# so that pairs whose MI is equal in exact arithmetic but differs in the last
# bit (a pair and its complement) count as ties, and ties are broken by label
# order rather than by rounding noise.
MI_DECIMALS = 12


@dataclass(frozen=True)
class TreeStructure:
    """A rooted spanning tree over L labels (columns 0..L-1)."""

    parent: np.ndarray  # (L,) int64 parent column, -1 for the root
    order: np.ndarray  # (L,) int64 columns, every parent before its children
    weight: np.ndarray  # (L,) float64 MI of the edge to the parent, 0 at root
    root: int  # column of the root label
    isolated: np.ndarray  # (k,) columns with zero MI to every other label
    tied: np.ndarray  # (t,) columns whose parent was chosen among equal-MI ties

    @property
    def total_weight(self) -> float:
        return float(self.weight.sum())

    def edges(self) -> list[tuple[int, int, float]]:
        """(parent, child, weight) in topological order (root excluded)."""
        return [
            (int(self.parent[c]), int(c), float(self.weight[c])) for c in self.order[1:]
        ]


def default_root(weights: np.ndarray) -> int:
    """The label with the largest total MI to all others (first on ties).

    This is the root pgmpy's ``TreeSearch`` picks when none is given; any root
    gives the same undirected tree, the root only fixes edge directions.
    """
    return int(np.argmax(weights.sum(axis=0)))


def chow_liu(weights: np.ndarray, *, root: int | None = None) -> TreeStructure:
    """Maximum-weight spanning tree of a symmetric (L, L) weight matrix.

    Deterministic: among frontier labels with equal best weight the lowest
    column joins first, and a label keeps the first tree label that reached its
    best weight as parent. Labels with zero weight to all others hang from the
    root (they carry no dependence, so any attachment gives the same total).
    """
    n_labels = weights.shape[0]
    if weights.shape != (n_labels, n_labels) or n_labels == 0:
        raise ValueError(
            f"weights must be a non-empty square matrix, not {weights.shape}"
        )
    w = np.round(np.asarray(weights, dtype=np.float64), MI_DECIMALS)
    root = default_root(w) if root is None else int(root)
    if not 0 <= root < n_labels:
        raise ValueError(f"root column {root} is outside 0..{n_labels - 1}")

    in_tree = np.zeros(n_labels, dtype=bool)
    best = w[root].copy()  # (L,) best weight from the tree to each label
    parent = np.full(n_labels, root, dtype=np.int64)
    tie = np.zeros(n_labels, dtype=bool)
    order = np.empty(n_labels, dtype=np.int64)
    order[0] = root
    in_tree[root] = True
    best[root] = -np.inf
    parent[root] = -1
    for step in range(1, n_labels):
        node = int(np.argmax(best))
        order[step] = node
        in_tree[node] = True
        best[node] = -np.inf
        row = w[node]
        better = (row > best) & ~in_tree
        tie |= (row == best) & ~in_tree & (row > 0)
        tie[better] = False
        best[better] = row[better]
        parent[better] = node

    weight = np.zeros(n_labels, dtype=np.float64)
    children = order[1:]
    weight[children] = w[parent[children], children]
    isolated = np.flatnonzero(w.max(axis=1) <= 0)
    tied = np.flatnonzero(tie & (parent >= 0) & (weight > 0))
    return TreeStructure(parent, order, weight, root, isolated, tied)


def depths(parent: np.ndarray, order: np.ndarray) -> np.ndarray:
    """(L,) depth of each node (root 0), from a parent-before-child order."""
    depth = np.zeros(parent.shape[0], dtype=np.int64)
    for node in order[1:]:
        depth[node] = depth[parent[node]] + 1
    return depth
