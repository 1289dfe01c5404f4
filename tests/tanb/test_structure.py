import itertools
import logging

import networkx as nx
import numpy as np
import pandas as pd
from pgmpy.estimators import TreeSearch

from imet.tanb import learn_network
from imet.tanb.mutual_info import pairwise_mutual_information
from imet.tanb.structure import chow_liu

from .conftest import correlated_labels


def _total(mi, edges):
    return sum(mi[u, v] for u, v in edges)


def test_tree_carries_the_same_total_mi_as_pgmpy_tree_search():
    labels = correlated_labels(300, 8, seed=5)
    frame = pd.DataFrame(labels, columns=[f"l{i}" for i in range(8)])
    dag = TreeSearch(frame, n_jobs=1).estimate("chow-liu", show_progress=False)
    column = {name: i for i, name in enumerate(frame.columns)}
    mi = pairwise_mutual_information(labels)
    pgmpy_total = _total(mi, [(column[u], column[v]) for u, v in dag.edges()])
    network = learn_network(labels)
    ours = _total(mi, [(network.parent[c], c) for c in network.order[1:]])
    assert len(dag.edges()) == 7
    assert abs(ours - pgmpy_total) < 1e-9
    # Same root rule as pgmpy: the largest total MI to all others.
    (pgmpy_root,) = [n for n in dag.nodes() if dag.in_degree(n) == 0]
    assert network.root == column[pgmpy_root]


def test_tree_is_a_maximum_spanning_tree_of_random_weights():
    rng = np.random.default_rng(6)
    for _ in range(5):
        w = rng.random((12, 12))
        w = np.triu(w, 1) + np.triu(w, 1).T
        tree = chow_liu(w)
        graph = nx.from_numpy_array(w)
        best = nx.maximum_spanning_tree(graph).size(weight="weight")
        assert abs(tree.total_weight - best) < 1e-9
        assert sorted(tree.order) == list(range(12))
        # parents come before children
        position = np.argsort(tree.order)
        assert all(position[tree.parent[c]] < position[c] for c in tree.order[1:])


def test_zero_information_labels_hang_from_the_root_with_a_warning(caplog):
    labels = correlated_labels(200, 5, seed=7)
    labels = np.concatenate([labels, np.zeros((200, 2), np.uint8)], axis=1)
    with caplog.at_level(logging.WARNING):
        network = learn_network(labels)
    assert network.parent[5] == network.root and network.parent[6] == network.root
    assert network.mi[5] == 0 and network.mi[6] == 0
    assert any("zero mutual information" in m for m in caplog.messages)
    assert any("occur in no training image" in m for m in caplog.messages)


def test_ties_in_mi_give_the_same_tree_every_time_and_a_warning(caplog):
    base = correlated_labels(150, 3, seed=8)
    # Columns 0, 1, 2 identical: every pair among them ties.
    labels = np.concatenate([base[:, :1]] * 3 + [base[:, 1:]], axis=1)
    with caplog.at_level(logging.WARNING):
        trees = [learn_network(labels) for _ in range(3)]
    for other in trees[1:]:
        assert np.array_equal(other.parent, trees[0].parent)
    assert any("equal mutual information" in m for m in caplog.messages)
    # Permuting the tied columns permutes nothing but names: same total MI.
    mi = pairwise_mutual_information(labels)
    totals = []
    for perm in itertools.permutations(range(3)):
        order = list(perm) + [3, 4]
        tree = learn_network(labels[:, order])
        totals.append(tree.mi.sum())
    assert np.ptp(totals) < 1e-9
    assert abs(trees[0].mi.sum() - chow_liu(mi).total_weight) < 1e-9
