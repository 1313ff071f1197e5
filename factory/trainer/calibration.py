"""Per-output probability calibration, fitted on out-of-fold (CV) predictions over gold train.

Class-balanced logistic regression puts a rare category's score near 0.5 where the category is still
unlikely, so the raw score of an output is not a probability. Each output gets a sigmoid (Platt) map fitted
by scikit-learn on the CV models' out-of-fold scores, which never saw the sentence they score. A sigmoid,
not isotonic regression: a minority category has 14-15 positives on gold train, which a step function
overfits, and a strictly increasing map keeps every decision (score >= threshold) the same when the
threshold is mapped with it.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-6
PLATT_C = 100.0  # weak regularisation: two parameters per output, a few hundred out-of-fold scores


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)
    return np.log(p / (1 - p)).reshape(-1, 1)


def fit_calibrators(y_true: np.ndarray, y_prob: np.ndarray) -> list:
    """One fitted sklearn LogisticRegression per column (on the score's logit), or None where a column
    cannot be calibrated (one class only) or the fit is not increasing: that output stays uncalibrated."""
    from sklearn.linear_model import LogisticRegression

    y_true = np.asarray(y_true, dtype=int)
    calibrators: list = []
    for j in range(y_true.shape[1]):
        column = y_true[:, j]
        if column.min() == column.max():
            calibrators.append(None)
            continue
        model = LogisticRegression(C=PLATT_C).fit(_logit(y_prob[:, j]), column)
        calibrators.append(model if model.coef_[0, 0] > 0 else None)
    return calibrators


def calibrate(calibrators: list | None, y_prob: np.ndarray) -> np.ndarray:
    """Calibrated probabilities (columns without a calibrator are passed through)."""
    y_prob = np.asarray(y_prob, dtype=float)
    if not calibrators:
        return y_prob
    out = y_prob.copy()
    for j, model in enumerate(calibrators):
        if model is not None:
            out[:, j] = model.predict_proba(_logit(y_prob[:, j]))[:, 1]
    return out


def calibrate_thresholds(calibrators: list | None, thresholds: np.ndarray) -> np.ndarray:
    """The thresholds on the calibrated scale (each output's map is increasing, so decisions do not change)."""
    thresholds = np.asarray(thresholds, dtype=float)
    return calibrate(calibrators, thresholds[None, :])[0]
