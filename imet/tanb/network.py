"""The label network: a Chow-Liu tree over all labels with its probability tables.

The network is the Tree-Augmented Naive Bayes model of the screening step.
In the classic single-class TAN a class node is the parent of every feature.
Here every label is itself a hidden class with one observed feature, its
classifier score (which enters at inference time as soft evidence, see
``imet.tanb.inference``), and the tree over labels is what augments the
naive-Bayes independence between them. The tree is directed away from a root
label, by default the label with the largest total mutual information to all
others (pgmpy's default too); the root only fixes which tables are
conditional, not the joint distribution.

Tables are binary: absent (0) / present (1). With Dirichlet smoothing of
strength ``alpha`` on every table row::

    P(root = 1)             = (n_root + alpha) / (n + 2 alpha)
    P(child = 1 | parent=b) = (n_child&parent=b + alpha) / (n_parent=b + 2 alpha)

so no probability is 0 or 1 (a label seen in no image, or in all of them,
still gets a finite log-odds) and a label never seen gets alpha / (n + 2 alpha).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from imet.tanb.mutual_info import as_label_matrix, cooccurrence, mutual_information
from imet.tanb.structure import TreeStructure, chow_liu, depths

_logger = logging.getLogger(__name__)

FORMAT = "imet-tanb-tree/1"


@dataclass
class TreeConfig:
    """How the tree and its tables are learned."""

    # Dirichlet pseudo-count added to each cell of every table row (1 = Laplace).
    alpha: float = 1.0
    # Root label as an attribute id; None picks the label with the largest
    # total mutual information to all others.
    root_id: int | None = None


@dataclass
class TreeNetwork:
    """A rooted tree over L binary labels with one table per label."""

    ids: np.ndarray  # (L,) int64 attribute ids, column order
    names: list[str]  # (L,) label names
    parent: np.ndarray  # (L,) int64 parent column, -1 at the root
    order: np.ndarray  # (L,) int64 columns, parents before children
    mi: np.ndarray  # (L,) float64 MI (nats) of the edge to the parent
    p_present: np.ndarray  # (L, 2) P(label=1 | parent=0), P(label=1 | parent=1);
    # both equal P(root=1) on the root's row
    counts: np.ndarray  # (L,) int64 training images carrying each label
    n_images: int  # training images the tables were counted on
    alpha: float  # Dirichlet smoothing of the tables
    warnings: list[str] = field(default_factory=list)

    @property
    def root(self) -> int:
        return int(self.order[0])

    @property
    def n_labels(self) -> int:
        return int(self.ids.shape[0])

    def depth(self) -> np.ndarray:
        return depths(self.parent, self.order)

    def column(self, attribute_id: int) -> int:
        hits = np.flatnonzero(self.ids == int(attribute_id))
        if hits.size == 0:
            raise KeyError(f"attribute id {attribute_id} is not in the tree")
        return int(hits[0])

    def edges(self) -> list[dict[str, Any]]:
        """Edges in topological order, by attribute id, with MI in nats."""
        return [
            {
                "parent": int(self.ids[self.parent[c]]),
                "child": int(self.ids[c]),
                "mi": float(self.mi[c]),
            }
            for c in self.order[1:]
        ]

    def cpt(self, parent_id: int, child_id: int) -> np.ndarray:
        """(2, 2) table ``P(child = j | parent = i)`` at ``[i, j]``."""
        child = self.column(child_id)
        if self.parent[child] != self.column(parent_id):
            raise KeyError(f"{parent_id} -> {child_id} is not an edge of the tree")
        p1 = self.p_present[child]
        return np.stack([1.0 - p1, p1], axis=1)

    def prior(self) -> np.ndarray:
        """(L,) marginal P(label = 1) under the network (exact, top-down)."""
        marginal = np.empty(self.n_labels, dtype=np.float64)
        root = self.root
        marginal[root] = self.p_present[root, 1]
        for node in self.order[1:]:
            q = marginal[self.parent[node]]
            marginal[node] = (1 - q) * self.p_present[node, 0] + q * self.p_present[
                node, 1
            ]
        return marginal


def _tables(counts, n, structure: TreeStructure, alpha: float) -> np.ndarray:
    present = np.diag(counts).astype(np.float64)
    children = structure.order[1:]
    parents = structure.parent[children]
    both = counts[children, parents].astype(np.float64)
    p_present = np.empty((counts.shape[0], 2), dtype=np.float64)
    # parent absent: child-only count over images without the parent
    p_present[children, 0] = (present[children] - both + alpha) / (
        n - present[parents] + 2 * alpha
    )
    p_present[children, 1] = (both + alpha) / (present[parents] + 2 * alpha)
    root = structure.root
    p_present[root] = (present[root] + alpha) / (n + 2 * alpha)
    return p_present


def learn_network(
    labels, ids=None, names=None, config: TreeConfig | None = None
) -> TreeNetwork:
    """Learn the tree and its tables from a (n_images, L) 0/1 label matrix.

    ``labels`` may be a SciPy sparse matrix or a dense array. Problems that
    would make a naive estimator return NaN (no image carries a label, every
    image carries it, a single image, ties in mutual information) are handled
    and each is reported with a warning saying what was done.
    """
    config = config or TreeConfig()
    matrix = as_label_matrix(labels)
    n_images, n_labels = matrix.shape
    if n_images == 0 or n_labels == 0:
        raise ValueError(f"need at least one image and one label, got {matrix.shape}")
    ids = np.arange(n_labels, dtype=np.int64) if ids is None else np.asarray(ids)
    names = [str(i) for i in ids] if names is None else list(names)
    if len(ids) != n_labels or len(names) != n_labels:
        raise ValueError("ids and names must have one entry per label column")

    counts, n = cooccurrence(matrix)
    weights = mutual_information(counts, n)
    root = None
    if config.root_id is not None:
        root = int(np.flatnonzero(ids == config.root_id)[0])
    structure = chow_liu(weights, root=root)
    present = np.diag(counts).copy()
    warnings = _describe_problems(present, n, structure, ids, names)
    for message in warnings:
        _logger.warning(message)
    return TreeNetwork(
        ids=ids.astype(np.int64),
        names=names,
        parent=structure.parent,
        order=structure.order,
        mi=structure.weight,
        p_present=_tables(counts, n, structure, config.alpha),
        counts=present,
        n_images=int(n),
        alpha=float(config.alpha),
        warnings=warnings,
    )


def _examples(columns: np.ndarray, ids, names, limit: int = 5) -> str:
    shown = ", ".join(f"{ids[c]} ({names[c]})" for c in columns[:limit])
    more = f" and {columns.size - limit} more" if columns.size > limit else ""
    return shown + more


def _describe_problems(present, n, structure, ids, names) -> list[str]:
    messages = []
    root_name = f"{ids[structure.root]} ({names[structure.root]})"
    if n == 1:
        messages.append(
            "only one training image: every label is constant, so the tree "
            "carries no dependence; tables are the smoothed counts of that image"
        )
    never = np.flatnonzero(present == 0)
    always = np.flatnonzero(present == n)
    if never.size and n > 1:
        messages.append(
            f"{never.size} labels occur in no training image: "
            f"{_examples(never, ids, names)}; they get P(present) = alpha/(n+2 alpha)"
        )
    if always.size and n > 1:
        messages.append(
            f"{always.size} labels occur in every training image: "
            f"{_examples(always, ids, names)}; smoothing keeps P(absent) above 0"
        )
    isolated = np.setdiff1d(structure.isolated, [structure.root])
    if isolated.size and structure.parent.size > 1:
        messages.append(
            f"{isolated.size} labels have zero mutual information with every "
            f"other label: {_examples(isolated, ids, names)}; they hang from the "
            f"root {root_name} through edges that carry no dependence"
        )
    if structure.tied.size:
        messages.append(
            f"{structure.tied.size} labels could join the tree through more than "
            f"one edge of equal mutual information: "
            f"{_examples(structure.tied, ids, names)}; each took the parent that "
            "joined the tree first (another tree with the same total MI exists)"
        )
    return messages


def network_to_json(network: TreeNetwork) -> dict[str, Any]:
    """JSON body of ``tree.json``: every edge by attribute id with its MI and
    table, the root's table, the smoothing, and the warnings of learning."""
    root = network.root
    edges = network.edges()
    for edge, child in zip(edges, network.order[1:], strict=True):
        edge["p_child_given_parent_absent"] = float(network.p_present[child, 0])
        edge["p_child_given_parent_present"] = float(network.p_present[child, 1])
    return {
        "format": FORMAT,
        "n_images": network.n_images,
        "n_labels": network.n_labels,
        "mi_unit": "nats",
        "smoothing": {
            "kind": "dirichlet",
            "alpha": network.alpha,
            "rule": "P(x=1 | parent=b) = (n(x=1, parent=b) + alpha) "
            "/ (n(parent=b) + 2 alpha)",
        },
        "root": {
            "attribute_id": int(network.ids[root]),
            "p_present": float(network.p_present[root, 1]),
        },
        "total_mi": float(network.mi.sum()),
        "labels": [
            {"attribute_id": int(i), "name": name, "count": int(c)}
            for i, name, c in zip(
                network.ids, network.names, network.counts, strict=True
            )
        ],
        "edges": edges,
        "warnings": list(network.warnings),
    }


def network_from_json(body: dict[str, Any]) -> TreeNetwork:
    """Rebuild a network from ``network_to_json`` output."""
    if body.get("format") != FORMAT:
        raise ValueError(f"not a tree file of format {FORMAT}: {body.get('format')!r}")
    labels = body["labels"]
    ids = np.asarray([label["attribute_id"] for label in labels], dtype=np.int64)
    column = {int(i): c for c, i in enumerate(ids)}
    n_labels = ids.shape[0]
    parent = np.full(n_labels, -1, dtype=np.int64)
    mi = np.zeros(n_labels, dtype=np.float64)
    p_present = np.empty((n_labels, 2), dtype=np.float64)
    root = column[int(body["root"]["attribute_id"])]
    p_present[root] = body["root"]["p_present"]
    order = [root]
    for edge in body["edges"]:
        child = column[int(edge["child"])]
        parent[child] = column[int(edge["parent"])]
        mi[child] = edge["mi"]
        p_present[child, 0] = edge["p_child_given_parent_absent"]
        p_present[child, 1] = edge["p_child_given_parent_present"]
        order.append(child)
    if len(order) != n_labels:
        raise ValueError(f"{len(order) - 1} edges do not span {n_labels} labels")
    return TreeNetwork(
        ids=ids,
        names=[label["name"] for label in labels],
        parent=parent,
        order=np.asarray(order, dtype=np.int64),
        mi=mi,
        p_present=p_present,
        counts=np.asarray([label["count"] for label in labels], dtype=np.int64),
        n_images=int(body["n_images"]),
        alpha=float(body["smoothing"]["alpha"]),
        warnings=list(body.get("warnings", [])),
    )
