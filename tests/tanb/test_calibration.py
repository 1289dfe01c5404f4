import numpy as np
from scipy.special import expit, logit

from imet.tanb.calibration import fit_calibration


def test_recovers_the_likelihood_ratio_of_a_known_score_model():
    rng = np.random.default_rng(23)
    n, prior = 20000, np.array([0.2, 0.4])
    truth = rng.random((n, 2)) < prior
    # Scores whose true posterior log-odds is 1.5 * logit(s) + logit(prior) - 0.3.
    z = rng.normal(0, 2, size=(n, 2))
    truth = rng.random((n, 2)) < expit(1.5 * z - 0.3 + logit(prior))
    calibration = fit_calibration(expit(z), truth, prior)
    assert np.allclose(calibration.slope, 1.5, atol=0.1)
    assert np.allclose(calibration.intercept, -0.3, atol=0.1)


def test_labels_without_positives_or_saturated_scores_stay_finite():
    rng = np.random.default_rng(24)
    scores = rng.random((300, 3)).astype(np.float32)
    scores[:5, 0] = 1.0
    scores[5:10, 0] = 0.0
    truth = rng.random((300, 3)) < 0.3
    truth[:, 1] = False  # never present in validation
    truth[:, 2] = scores[:, 2] > 0.5  # perfectly separated
    calibration = fit_calibration(scores, truth, np.array([0.3, 0.01, 0.5]))
    log_lr = calibration.log_lr(scores)
    assert np.isfinite(log_lr).all()
    assert log_lr[:, 1].mean() < log_lr[:, 0].mean()


def test_no_validation_images_falls_back_to_scores_as_posteriors():
    calibration = fit_calibration(np.zeros((0, 2)), np.zeros((0, 2)), [0.5, 0.2])
    ratio = calibration.log_lr(np.array([[0.5, 0.2]]))
    assert np.allclose(ratio, 0.0)
