"""Exact inference on the label tree, batched over images.

Evidence on label v is a likelihood ratio ``rho_v = P(e_v | v=1) / P(e_v | v=0)``
given as its log (``log_lr``, shape (B, L)): 0 is no evidence, a classifier's
calibrated score gives a finite value (soft evidence), ``+inf`` / ``-inf`` pin
the label present / absent (hard evidence).

Because labels are binary, every message is one number, the log of the ratio
of its two entries, so belief propagation over the tree is a handful of vector
operations per depth level, over all nodes of that level and all images at
once:

* upward (leaves to root): ``b_v = log rho_v + sum of children's messages``,
  and the message to the parent is
  ``log sum_x P(x | parent=1) e^{b_v x} - log sum_x P(x | parent=0) e^{b_v x}``
  (sum-product) or the same with max in place of sum (max-product);
* downward (root to leaves): the parent's posterior without v's own message
  gives v's prior from the rest of the tree, the "cavity" log-odds; adding
  ``log rho_v`` gives v's exact posterior.

Smoothing keeps every table entry strictly between 0 and 1, so messages are
always bounded, hard evidence included (its message is the limit
``log t1 - log t0``).

A subtree without evidence sends a message of exactly 0, so a query that
involves a few labels per image (the screening step) runs on each image's own
small subtree, those labels and their ancestors, instead of the whole tree
(``TreeInference.subtrees``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from imet.tanb.network import TreeNetwork

# Images per block: bounds the (L, block) float64 working arrays.
BLOCK = 1024


@dataclass(frozen=True)
class Marginals:
    """Exact posterior of every label of every image, as log-odds."""

    log_odds: np.ndarray  # (B, L) log P(v=1 | all evidence) / P(v=0 | ...)
    cavity: np.ndarray  # (B, L) the same without v's own evidence

    @property
    def probability(self) -> np.ndarray:
        return expit(self.log_odds)  # (B, L)


@dataclass(frozen=True)
class _Level:
    nodes: np.ndarray  # (k,) nodes of one depth, sorted by parent
    parents: np.ndarray  # (k,) their parents
    targets: np.ndarray  # (u,) distinct parents
    starts: np.ndarray  # (u,) first position of each distinct parent in nodes


@dataclass(frozen=True)
class _Forest:
    """Rooted trees over M nodes, in the arrays message passing needs."""

    t0: np.ndarray  # (M, 1) P(v=1 | parent=0)
    t1: np.ndarray  # (M, 1) P(v=1 | parent=1); both P(v=1) at a root
    roots: np.ndarray  # (r,) root nodes
    levels: list[_Level]  # depth 1, 2, ... (roots are depth 0)

    @classmethod
    def build(cls, parent, depth, t0, t1) -> _Forest:
        levels = []
        for d in range(1, int(depth.max(initial=0)) + 1):
            nodes = np.flatnonzero(depth == d)
            nodes = nodes[np.argsort(parent[nodes], kind="stable")]
            targets, starts = np.unique(parent[nodes], return_index=True)
            levels.append(_Level(nodes, parent[nodes], targets, starts))
        return cls(t0[:, None], t1[:, None], np.flatnonzero(parent < 0), levels)


def _message(lb, t0, t1, *, use_max: bool):
    """Log-ratio message to the parent from ``lb`` (k, B) = log of v's ratio.

    ``t0`` / ``t1`` (k, 1) are P(v=1 | parent=0) / P(v=1 | parent=1). The
    message is ``log((1 - t1) + t1 e^lb) - log((1 - t0) + t0 e^lb)`` (max in
    place of + for max-product); at ``lb = +inf`` (hard evidence) both terms
    are infinite and the limit ``log t1 - log t0`` is used.
    """
    combine = np.maximum if use_max else np.logaddexp
    out = combine(np.log1p(-t1), np.log(t1) + lb)
    with np.errstate(invalid="ignore"):  # inf - inf, replaced just below
        out -= combine(np.log1p(-t0), np.log(t0) + lb)
    hard = np.isposinf(lb)
    if hard.any():
        out[hard] = np.broadcast_to(np.log(t1) - np.log(t0), lb.shape)[hard]
    return out


def _upward(forest: _Forest, evidence: np.ndarray, use_max: bool):
    """Children's summed messages (M, B) and each node's own message (M, B)."""
    incoming = np.zeros_like(evidence)
    sent = np.zeros_like(evidence)
    for level in reversed(forest.levels):
        nodes = level.nodes
        lb = evidence[nodes] + incoming[nodes]  # (k, B)
        msg = _message(lb, forest.t0[nodes], forest.t1[nodes], use_max=use_max)
        sent[nodes] = msg
        incoming[level.targets] += np.add.reduceat(msg, level.starts, axis=0)
    return incoming, sent


def _log_odds(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


def _sum_product(forest: _Forest, evidence: np.ndarray):
    """Posterior and cavity log-odds (M, B) of every node."""
    incoming, sent = _upward(forest, evidence, False)
    cavity = np.empty_like(evidence)
    posterior = np.empty_like(evidence)
    roots = forest.roots
    cavity[roots] = _log_odds(forest.t1[roots]) + incoming[roots]
    posterior[roots] = cavity[roots] + evidence[roots]
    for level in forest.levels:
        nodes = level.nodes
        # The parent's belief without this child's message, mixed through the
        # child's table, is the child's prior from the rest of the tree.
        share = expit(posterior[level.parents] - sent[nodes])  # (k, B)
        t0, t1 = forest.t0[nodes], forest.t1[nodes]
        present = t0 + share * (t1 - t0)
        absent = (1 - t0) - share * (t1 - t0)
        cavity[nodes] = np.log(present) - np.log(absent) + incoming[nodes]
        posterior[nodes] = cavity[nodes] + evidence[nodes]
    return posterior, cavity


def _max_product(forest: _Forest, evidence: np.ndarray) -> np.ndarray:
    """(M, B) bool most probable assignment; ties resolve to absent."""
    incoming, _ = _upward(forest, evidence, True)
    own = evidence + incoming  # (M, B) max-marginal ratio of each subtree
    state = np.zeros(evidence.shape, dtype=bool)
    roots = forest.roots
    state[roots] = _log_odds(forest.t1[roots]) + own[roots] > 0
    for level in forest.levels:
        nodes = level.nodes
        t = np.where(state[level.parents], forest.t1[nodes], forest.t0[nodes])
        state[nodes] = np.log(t) + own[nodes] > np.log1p(-t)
    return state


class TreeInference:
    """Sum-product and max-product over one network, reused across batches."""

    def __init__(self, network: TreeNetwork):
        self.network = network
        self.depth = network.depth()
        self.forest = _Forest.build(
            network.parent, self.depth, network.p_present[:, 0], network.p_present[:, 1]
        )

    def _check(self, log_lr) -> np.ndarray:
        log_lr = np.asarray(log_lr, dtype=np.float64)
        if log_lr.ndim != 2 or log_lr.shape[1] != self.network.n_labels:
            raise ValueError(
                f"log_lr must be (images, {self.network.n_labels}), not {log_lr.shape}"
            )
        if np.isnan(log_lr).any():
            raise ValueError("log_lr contains NaN")
        return log_lr

    def marginals(self, log_lr) -> Marginals:
        """Exact posterior log-odds of every label given every label's evidence."""
        log_lr = self._check(log_lr)
        log_odds = np.empty_like(log_lr)
        cavity = np.empty_like(log_lr)
        for s in range(0, log_lr.shape[0], BLOCK):
            block = slice(s, s + BLOCK)
            posterior, rest = _sum_product(self.forest, log_lr[block].T)
            log_odds[block], cavity[block] = posterior.T, rest.T
        return Marginals(log_odds, cavity)

    def map_assignment(self, log_lr) -> np.ndarray:
        """(B, L) bool: the most probable joint assignment given the evidence.

        Ties between equally probable states resolve to absent.
        """
        log_lr = self._check(log_lr)
        out = np.zeros(log_lr.shape, dtype=bool)
        for s in range(0, log_lr.shape[0], BLOCK):
            out[s : s + BLOCK] = _max_product(self.forest, log_lr[s : s + BLOCK].T).T
        return out

    def subtrees(self, selected: np.ndarray) -> Subtrees:
        """Per-image subtrees spanning each image's (B, N) selected labels."""
        return Subtrees(self, selected)


class Subtrees:
    """One small tree per image: its selected labels and all their ancestors.

    Exact for any evidence placed on the selected labels only: the rest of
    the tree has no evidence and sends messages of exactly 0. All the images'
    subtrees form one forest, so a query over all images is one pass over
    roughly N x depth nodes per image instead of all L labels.
    """

    def __init__(self, inference: TreeInference, selected: np.ndarray):
        network = inference.network
        n_labels = network.n_labels
        parent = network.parent
        images, slots = np.nonzero(selected >= 0)
        keys = images * n_labels + selected[images, slots]
        frontier = keys
        found = [keys]
        while frontier.size:  # climb to the root, one depth a step
            label = frontier % n_labels
            up = parent[label] >= 0
            frontier = np.unique(frontier[up] - label[up] + parent[label[up]])
            found.append(frontier)
        nodes = np.unique(np.concatenate(found))  # (M,) image * L + label
        label = nodes % n_labels
        up = parent[label] >= 0
        node_parent = np.full(nodes.size, -1, dtype=np.int64)
        node_parent[up] = np.searchsorted(
            nodes, nodes[up] - label[up] + parent[label[up]]
        )
        p = network.p_present
        self.forest = _Forest.build(
            node_parent, inference.depth[label], p[label, 0], p[label, 1]
        )
        self.shape = selected.shape
        self.slot_node = np.full(selected.shape, -1, dtype=np.int64)
        self.slot_node[images, slots] = np.searchsorted(nodes, keys)

    def cavity(self, present: np.ndarray) -> np.ndarray:
        """(B, N) log-odds of each selected label given the others marked present.

        ``present`` (B, N) bool puts hard evidence (present = 1) on those
        selected labels; the result for a slot excludes that slot's own
        evidence. Padding slots (-1) give NaN.
        """
        evidence = np.zeros((self.forest.t0.shape[0], 1))
        valid = self.slot_node >= 0
        evidence[self.slot_node[valid & present], 0] = np.inf
        _, cavity = _sum_product(self.forest, evidence)
        out = np.full(self.shape, np.nan)
        out[valid] = cavity[self.slot_node[valid], 0]
        return out


def marginals(network: TreeNetwork, log_lr) -> Marginals:
    """Exact posterior of all labels; see ``TreeInference.marginals``."""
    return TreeInference(network).marginals(log_lr)


def map_assignment(network: TreeNetwork, log_lr) -> np.ndarray:
    """Most probable joint assignment; see ``TreeInference.map_assignment``."""
    return TreeInference(network).map_assignment(log_lr)
