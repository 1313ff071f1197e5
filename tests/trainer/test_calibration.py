"""Per-output sigmoid calibration: fitted on out-of-fold scores, lowers the calibration error, keeps every
decision when the threshold is mapped with the score, and leaves an output it cannot calibrate alone."""

import numpy as np

from factory.trainer.calibration import calibrate, calibrate_thresholds, fit_calibrators
from factory.trainer.metrics import expected_calibration_error


def test_calibration_lowers_ece_and_keeps_decisions():
    rng = np.random.default_rng(1)
    truth = (rng.uniform(size=(2000, 2)) < 0.15).astype(int)
    # Overconfident, class-balanced-like scores: positives near 0.7, negatives near 0.35.
    prob = np.clip(np.where(truth == 1, 0.7, 0.35) + rng.normal(0, 0.12, truth.shape), 0.01, 0.99)
    calibrators = fit_calibrators(truth[:1000], prob[:1000])
    after = calibrate(calibrators, prob[1000:])
    assert expected_calibration_error(truth[1000:], after) < 0.5 * expected_calibration_error(truth[1000:], prob[1000:])
    cuts = np.array([0.4, 0.55])
    mapped = calibrate_thresholds(calibrators, cuts)
    assert ((prob[1000:] >= cuts) == (after >= mapped)).all()  # increasing maps: the same decisions
    assert expected_calibration_error(np.array([[1], [0]]), np.array([[1.0], [0.0]])) == 0.0


def test_an_output_with_one_class_or_a_falling_fit_stays_uncalibrated():
    rng = np.random.default_rng(2)
    prob = rng.uniform(0.05, 0.95, size=(400, 3))
    truth = np.stack([(rng.uniform(size=400) < prob[:, 0]).astype(int),  # scores that mean what they say
                      np.zeros(400, dtype=int),  # never positive: nothing to fit
                      (prob[:, 2] < 0.3).astype(int)], axis=1)  # a higher score means less likely
    calibrators = fit_calibrators(truth, prob)
    assert calibrators[0] is not None and calibrators[1] is None and calibrators[2] is None
    out = calibrate(calibrators, prob)
    np.testing.assert_array_equal(out[:, 1:], prob[:, 1:])  # passed through untouched
    assert not np.array_equal(out[:, 0], prob[:, 0])
    assert np.all(np.diff(out[np.argsort(prob[:, 0]), 0]) >= 0)  # the map is increasing


def test_without_calibrators_scores_and_thresholds_pass_through():
    prob = np.array([[0.2, 0.9], [0.6, 0.1]])
    np.testing.assert_array_equal(calibrate(None, prob), prob)
    np.testing.assert_array_equal(calibrate([], prob), prob)
    np.testing.assert_array_equal(calibrate_thresholds(None, np.array([0.4, 0.5])), [0.4, 0.5])


def test_scores_of_exactly_zero_or_one_are_calibrated_not_infinite():
    rng = np.random.default_rng(3)
    prob = rng.uniform(size=(300, 1))
    truth = (prob > 0.5).astype(int)
    out = calibrate(fit_calibrators(truth, prob), np.array([[0.0], [1.0]]))
    assert np.isfinite(out).all() and 0.0 <= out[0, 0] < out[1, 0] <= 1.0
