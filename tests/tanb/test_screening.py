import numpy as np

from imet.tanb import TreeInference, learn_network, tanb_screen, threshold_cap, top_n
from imet.tanb.evaluate import f2_per_image
from imet.tanb.screening import over_threshold, selection_mask

from .conftest import correlated_labels


def test_top_n_orders_by_score_and_breaks_ties_by_column():
    scores = np.array([[0.1, 0.9, 0.5, 0.9], [0.2, 0.2, 0.2, 0.2]])
    assert top_n(scores, 3).tolist() == [[1, 3, 2], [0, 1, 2]]


def test_threshold_cap_keeps_the_best_over_threshold_and_pads():
    scores = np.array([[0.9, 0.2, 0.6, 0.8], [0.1, 0.1, 0.1, 0.1]])
    thresholds = np.array([0.5, 0.1, 0.7, 0.5])
    assert over_threshold(scores, thresholds).tolist() == [
        [True, True, False, True],
        [False, True, False, False],
    ]
    assert threshold_cap(scores, thresholds, 2).tolist() == [[0, 3], [1, -1]]
    mask = selection_mask(threshold_cap(scores, thresholds, 2), 4)
    assert mask.tolist() == [[True, False, False, True], [False, True, False, False]]


def _slow_screen(inference, log_lr, selected, keep, max_sweeps):
    """Reference: one image at a time, whole-tree marginals for every decision."""
    n_labels = log_lr.shape[0]
    kept = [label >= 0 for label in selected]
    for _ in range(max_sweeps):
        changed = False
        for slot, label in enumerate(selected):
            if label < 0:
                continue
            evidence = np.zeros((1, n_labels))
            for other, (lab, on) in enumerate(zip(selected, kept, strict=True)):
                if other != slot and lab >= 0 and on:
                    evidence[0, lab] = np.inf
            value = inference.marginals(evidence).cavity[0, label] + log_lr[label]
            decision = bool(value >= np.log(keep / (1 - keep)))
            changed |= decision != kept[slot]
            kept[slot] = decision
        if not changed:
            break
    return np.array(kept)


def test_tanb_step_matches_a_slow_one_image_at_a_time_reference():
    network = learn_network(correlated_labels(500, 15, seed=19))
    inference = TreeInference(network)
    rng = np.random.default_rng(20)
    log_lr = rng.normal(-0.5, 2.0, size=(12, 15))
    selected = top_n(log_lr, 5)
    selected[0, 3:] = -1
    result = tanb_screen(inference, log_lr, selected, keep_probability=0.4)
    assert result.settled.all()
    for b in range(12):
        expected = _slow_screen(inference, log_lr[b], selected[b], 0.4, 10)
        assert np.array_equal(result.kept[b], expected)
    assert np.isnan(result.log_odds[0, 3:]).all()


def test_tanb_step_drops_an_attribute_the_others_rule_out():
    # Labels 0 and 1 never occur together; 2 goes with 0.
    rng = np.random.default_rng(21)
    first = rng.random(400) < 0.5
    labels = np.stack([first, ~first, first & (rng.random(400) < 0.9)], axis=1)
    network = learn_network(labels.astype(np.uint8))
    inference = TreeInference(network)
    # Strong scores for 0 and 2, a weak score for the incompatible 1.
    log_lr = np.array([[3.0, 0.5, 3.0]])
    selected = np.array([[0, 2, 1]])
    result = tanb_screen(inference, log_lr, selected, keep_probability=0.5)
    assert result.kept.tolist() == [[True, True, False]]
    # Alone, label 1's prior and score would have kept it.
    prior = network.prior()[1]
    assert np.log(prior / (1 - prior)) + 0.5 >= 0


def test_f2_per_image_equals_sklearn_samples_average():
    from sklearn.metrics import fbeta_score

    rng = np.random.default_rng(22)
    truth = rng.random((40, 10)) < 0.3
    predicted = rng.random((40, 10)) < 0.3
    truth[0] = False  # an image with no labels at all
    predicted[0] = False  # and none predicted: F2 of 1
    expected = fbeta_score(truth, predicted, beta=2, average="samples", zero_division=1)
    assert np.isclose(f2_per_image(truth, predicted).mean(), expected)
