import itertools

import numpy as np
import pytest

from imet.tanb import TreeInference, learn_network, to_pgmpy

from .conftest import correlated_labels


def _brute_force(network, evidence):
    """Posterior marginals and MAP by enumerating every joint state."""
    n = network.n_labels
    states = np.array(list(itertools.product((0, 1), repeat=n)))
    log_joint = np.zeros(len(states))
    for v in range(n):
        parent = network.parent[v]
        t = network.p_present[v, states[:, parent] if parent >= 0 else 1]
        log_joint += np.log(np.where(states[:, v] == 1, t, 1 - t))
    # Evidence as likelihood (1, rho), with rho = +-inf as hard evidence.
    with np.errstate(divide="ignore"):
        present = np.where(np.isposinf(evidence), 0.0, evidence)
        absent = np.where(np.isposinf(evidence), -np.inf, 0.0)
    log_joint += np.where(states == 1, present, absent).sum(axis=1)
    weight = np.exp(log_joint - log_joint.max())
    weight /= weight.sum()
    return (weight[:, None] * states).sum(axis=0), states[np.argmax(log_joint)]


@pytest.fixture
def small_network():
    return learn_network(correlated_labels(300, 6, seed=14))


def test_marginals_and_map_equal_enumeration_with_soft_and_hard_evidence(
    small_network,
):
    rng = np.random.default_rng(15)
    evidence = rng.normal(0, 2, size=(8, 6))
    evidence[1, 2] = np.inf
    evidence[2, 4] = -np.inf
    evidence[3, [0, 5]] = np.inf
    evidence[4] = 0.0
    inference = TreeInference(small_network)
    marginals = inference.marginals(evidence)
    assignment = inference.map_assignment(evidence)
    for b in range(8):
        expected, best = _brute_force(small_network, evidence[b])
        assert np.allclose(marginals.probability[b], expected, atol=1e-12)
        assert np.array_equal(assignment[b], best.astype(bool))
    # The cavity excludes a label's own evidence: adding it back gives the posterior.
    finite = np.isfinite(evidence)
    assert np.allclose(
        (marginals.cavity + evidence)[finite], marginals.log_odds[finite]
    )


def test_marginals_equal_pgmpy_variable_elimination_with_virtual_evidence(
    small_network,
):
    from pgmpy.factors.discrete import TabularCPD
    from pgmpy.inference import VariableElimination

    rng = np.random.default_rng(16)
    log_lr = rng.normal(0, 1.5, size=6)
    ours = TreeInference(small_network).marginals(log_lr[None]).probability[0]
    model = to_pgmpy(small_network)
    # pgmpy's virtual evidence: P(e | x) for x = 0, 1, any common scale.
    virtual = [
        TabularCPD(
            str(v),
            2,
            [[1 / (1 + np.exp(lr))], [np.exp(lr) / (1 + np.exp(lr))]],
            state_names={str(v): [0, 1]},
        )
        for v, lr in enumerate(log_lr)
    ]
    inference = VariableElimination(model)
    for v in range(6):
        result = inference.query(
            [str(v)], virtual_evidence=virtual, show_progress=False
        )
        assert np.isclose(result.values[1], ours[v], atol=1e-9)


def test_subtrees_give_the_same_cavity_as_the_whole_tree():
    network = learn_network(correlated_labels(400, 20, seed=17))
    inference = TreeInference(network)
    rng = np.random.default_rng(18)
    selected = np.stack([rng.permutation(20)[:4] for _ in range(10)])
    selected[3, 2:] = -1
    present = rng.random(selected.shape) < 0.6
    cavity = inference.subtrees(selected).cavity(present)
    for b in range(10):
        evidence = np.zeros((1, 20))
        for slot, label in enumerate(selected[b]):
            if label >= 0 and present[b, slot]:
                evidence[0, label] = np.inf
        full = inference.marginals(evidence).cavity[0]
        for slot, label in enumerate(selected[b]):
            if label >= 0:
                assert np.isclose(cavity[b, slot], full[label], atol=1e-10)
            else:
                assert np.isnan(cavity[b, slot])


def test_bad_evidence_shapes_and_nan_are_refused(small_network):
    inference = TreeInference(small_network)
    with pytest.raises(ValueError, match="images, 6"):
        inference.marginals(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="NaN"):
        inference.marginals(np.full((1, 6), np.nan))
