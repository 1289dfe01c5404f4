"""Turn classifier scores into likelihood ratios the label tree can use.

A score s_v enters the network as soft evidence on label v, through the ratio
``rho_v(s) = P(s | v=1) / P(s | v=0)``. By Bayes' rule the log of that ratio is
the calibrated posterior log-odds minus the prior log-odds, so it is fitted as
a per-label Platt scaling with the prior as an offset::

    logit P(v=1 | s) = a_v * logit(s) + c_v + logit(prior_v)
    log rho_v(s)     = a_v * logit(s) + c_v

fitted on the validation split (scores the model was not trained on), with
``prior_v`` the network's marginal from the training labels. Rare labels have
few validation positives, so each label's (a_v, c_v) is shrunk toward one
pooled fit over all labels by a ridge penalty of weight ``shrinkage``
(a label with no positives ends near the pooled curve, not at -inf).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.special import expit, logit

_logger = logging.getLogger(__name__)

# Scores are clipped into [EPS, 1 - EPS] before the logit so that a saturated
# sigmoid (exactly 0.0 or 1.0 in float32) gives a finite ratio.
EPS = 1e-6
# Entries of the (n, L) validation matrix used for the pooled fit.
POOLED_SAMPLE = 2_000_000
# Largest slope of the pooled curve (a slope of 1 takes scores as calibrated).
POOLED_SLOPE_MAX = 4.0


@dataclass
class CalibrationConfig:
    """Per-label Platt scaling with a prior offset, shrunk to a pooled fit."""

    # Ridge weight pulling each label's (slope, intercept) to the pooled fit,
    # in units of validation images.
    shrinkage: float = 10.0
    # Damped Newton steps of each fit (the problem is convex).
    steps: int = 25


@dataclass(frozen=True)
class ScoreCalibration:
    """Per-label map from a score to the log likelihood ratio of presence."""

    slope: np.ndarray  # (L,) a_v
    intercept: np.ndarray  # (L,) c_v

    def log_lr(self, scores) -> np.ndarray:
        """(B, L) log rho from (B, L) probabilities."""
        z = logit(np.clip(np.asarray(scores, dtype=np.float64), EPS, 1 - EPS))
        return z * self.slope + self.intercept

    @classmethod
    def identity(cls, prior: np.ndarray) -> ScoreCalibration:
        """Take scores as calibrated posteriors under the training prior."""
        prior = np.clip(prior, EPS, 1 - EPS)
        return cls(np.ones_like(prior), -logit(prior))


# Validation rows per chunk of a pass: bounds the (rows, L) temporaries.
CHUNK = 2048


def _statistics(z, y, offset, theta, center, ridge):
    """Penalised log-likelihood (L,), gradient (2, L), Hessian terms (3, L)."""
    sums = np.zeros((6, z.shape[1]))  # loglik, r z, r, w z z, w z, w
    for s in range(0, z.shape[0], CHUNK):
        zc, yc = z[s : s + CHUNK], y[s : s + CHUNK]
        eta = theta[0] * zc + theta[1] + offset[s : s + CHUNK]  # (r, L)
        p = expit(eta)
        r = yc - p
        w = p * (1 - p)
        wz = w * zc
        loglik = -(yc * np.logaddexp(0, -eta) + (1 - yc) * np.logaddexp(0, eta))
        sums += np.stack(
            [loglik.sum(0), (r * zc).sum(0), r.sum(0), (wz * zc).sum(0), wz.sum(0)]
            + [w.sum(0)]
        )
    penalty = theta - center
    objective = sums[0] - 0.5 * ridge * (penalty**2).sum(0)
    grad = sums[1:3] - ridge * penalty
    hessian = np.stack([sums[3] + ridge, sums[4], sums[5] + ridge])
    return objective, grad, hessian


def _newton(z, y, offset, theta, center, ridge, steps):
    """Batched logistic fits, one per column of z, y (n, L); theta (2, L).

    Newton's method with backtracking, per label: a step that lowers the
    penalised likelihood is halved and retried (a few saturated scores carry
    enough leverage to make a full step overshoot). Sums over rows are
    accumulated chunk by chunk; one pass over the data per iteration.
    """
    offset = np.broadcast_to(offset, z.shape)
    best = theta.copy()
    best_objective = np.full(z.shape[1], -np.inf)
    step = np.zeros_like(theta)
    for _ in range(steps):
        objective, grad, (h_aa, h_ac, h_cc) = _statistics(
            z, y, offset, theta, center, ridge
        )
        better = objective >= best_objective
        best[:, better] = theta[:, better]
        best_objective[better] = objective[better]
        det = h_aa * h_cc - h_ac * h_ac
        newton = (
            np.stack([h_cc * grad[0] - h_ac * grad[1], h_aa * grad[1] - h_ac * grad[0]])
            / det
        )
        step = np.where(better, newton, step / 2)
        if np.abs(step).max() < 1e-8:
            break
        theta = best + step
    return best


def fit_calibration(
    scores, targets, prior, config: CalibrationConfig | None = None
) -> ScoreCalibration:
    """Fit per-label likelihood ratios on held-out (n, L) scores and 0/1 targets.

    ``prior`` (L,) is the label's training marginal (``TreeNetwork.prior()``).
    """
    config = config or CalibrationConfig()
    scores = np.asarray(scores, dtype=np.float64)
    y = np.asarray(targets, dtype=np.float64)
    if scores.shape != y.shape or scores.ndim != 2:
        raise ValueError(f"scores {scores.shape} and targets {y.shape} must match")
    if scores.shape[0] == 0:
        _logger.warning("no validation images: scores are taken as calibrated")
        return ScoreCalibration.identity(np.asarray(prior, dtype=np.float64))
    z = logit(np.clip(scores, EPS, 1 - EPS))  # (n, L)
    offset = logit(np.clip(np.asarray(prior, dtype=np.float64), EPS, 1 - EPS))
    # Pooled fit: one (a, c) for all labels, on at most POOLED_SAMPLE entries
    # spread over the matrix. Its slope is bounded so that a few labels the
    # scores separate perfectly cannot drag every label's curve to a step.
    picked = np.arange(0, z.size, max(1, z.size // POOLED_SAMPLE))
    start = np.array([[1.0], [0.0]])
    pooled = _newton(
        z.reshape(-1)[picked, None],
        y.reshape(-1)[picked, None],
        offset[picked % z.shape[1], None],
        start,
        start,
        1.0,
        config.steps,
    )
    pooled[0] = np.clip(pooled[0], 0.0, POOLED_SLOPE_MAX)
    center = np.repeat(pooled, z.shape[1], axis=1)  # (2, L)
    theta = _newton(z, y, offset, center.copy(), center, config.shrinkage, config.steps)
    _logger.info(
        "calibration: pooled slope %.3f intercept %.3f on %d validation images",
        pooled[0, 0],
        pooled[1, 0],
        z.shape[0],
    )
    return ScoreCalibration(theta[0], theta[1])
