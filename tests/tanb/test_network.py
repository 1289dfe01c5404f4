import itertools
import json
import logging

import numpy as np

from imet.tanb import (
    TreeConfig,
    learn_network,
    network_from_json,
    network_to_json,
    to_pgmpy,
)

from .conftest import correlated_labels


def test_tables_are_the_smoothed_counts_of_each_edge():
    labels = correlated_labels(250, 6, seed=9)
    alpha = 0.5
    network = learn_network(labels, config=TreeConfig(alpha=alpha))
    for child in network.order[1:]:
        parent = network.parent[child]
        for state in (0, 1):
            rows = labels[:, parent] == state
            expected = (labels[rows, child].sum() + alpha) / (rows.sum() + 2 * alpha)
            assert np.isclose(network.p_present[child, state], expected)
    root = network.root
    assert np.isclose(
        network.p_present[root, 1], (labels[:, root].sum() + alpha) / (250 + 2 * alpha)
    )


def test_cpt_by_attribute_ids_and_prior_match_brute_force():
    labels = correlated_labels(200, 5, seed=10)
    ids = np.array([11, 22, 33, 44, 55])
    network = learn_network(labels, ids=ids, names=list("abcde"))
    child = network.order[1]
    table = network.cpt(ids[network.parent[child]], ids[child])
    assert table.shape == (2, 2) and np.allclose(table.sum(axis=1), 1)
    # Marginals by enumerating all 2^5 joint states.
    joint = np.zeros(5)
    for x in itertools.product((0, 1), repeat=5):
        p = 1.0
        for v in range(5):
            parent = network.parent[v]
            t = network.p_present[v, x[parent] if parent >= 0 else 1]
            p *= t if x[v] else 1 - t
        joint += p * np.array(x)
    assert np.allclose(network.prior(), joint)


def test_never_always_and_single_image_give_finite_tables_and_warnings(caplog):
    labels = correlated_labels(100, 4, seed=11)
    labels[:, 0] = 0
    labels[:, 1] = 1
    with caplog.at_level(logging.WARNING):
        network = learn_network(labels)
    assert np.isfinite(network.p_present).all()
    assert ((network.p_present > 0) & (network.p_present < 1)).all()
    assert any("in no training image" in m for m in caplog.messages)
    assert any("in every training image" in m for m in caplog.messages)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        single = learn_network(labels[:1])
    assert np.isfinite(single.p_present).all() and np.isfinite(single.mi).all()
    assert any("only one training image" in m for m in caplog.messages)
    assert single.n_images == 1 and len(single.edges()) == 3


def test_json_round_trip_keeps_every_number():
    labels = correlated_labels(150, 7, seed=12)
    network = learn_network(labels, ids=np.arange(7) * 10, names=list("abcdefg"))
    body = json.loads(json.dumps(network_to_json(network)))
    again = network_from_json(body)
    assert np.array_equal(again.parent, network.parent)
    assert np.array_equal(again.order, network.order)
    assert np.array_equal(again.p_present, network.p_present)
    assert again.names == network.names and again.n_images == 150
    assert body["edges"][0]["parent"] == int(network.ids[network.root])


def test_pgmpy_export_has_the_same_edges_and_tables():
    labels = correlated_labels(120, 5, seed=13)
    network = learn_network(labels, ids=np.arange(5) + 1)
    model = to_pgmpy(network)
    assert model.check_model()
    for child in network.order[1:]:
        parent = str(network.parent[child] + 1)
        cpd = model.get_cpds(str(child + 1))
        assert cpd.get_evidence() == [parent]
        assert np.allclose(cpd.values[1], network.p_present[child])
    root_cpd = model.get_cpds(str(network.root + 1))
    assert np.isclose(root_cpd.values[1], network.p_present[network.root, 1])
