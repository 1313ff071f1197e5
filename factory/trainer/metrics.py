"""Scores on the gold test split, via scikit-learn (nothing hand-rolled).

A model outputs one probability per category plus one for the binary task (any category vs 'none').
The decision threshold is one number (0.5, matching class-balanced training) or one per output, chosen on
cross-validation folds of gold train (`choose_thresholds`, used by factory.trainer.selection). Tuned
thresholds come with a cap on the categories per sentence (`decide`). `expected_calibration_error` says
whether a probability means what it says.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from sklearn.metrics import precision_recall_fscore_support

DEFAULT_THRESHOLD = 0.5
THRESHOLD_GRID = tuple(round(0.1 + 0.05 * i, 2) for i in range(17))  # 0.10 .. 0.90
MIN_POSITIVES_TO_TUNE = 5  # fewer positives on the folds: keep 0.5 (one example would set the threshold)
NOISE_MULTIPLE = 1.0  # a threshold moves off 0.5 only when its mean CV F1 gain exceeds this many standard errors
SHRINK_POSITIVES = 20  # a moved threshold keeps n / (n + this) of its distance from 0.5 (n: the output's positives)
ECE_BINS = 10
SCOPES = ("category", "micro", "macro", "binary")
METRIC_COLUMNS = ("precision", "recall", "f1")


def decide(y_prob: np.ndarray, threshold: float | np.ndarray = DEFAULT_THRESHOLD,
           max_labels: int | None = None) -> np.ndarray:
    """0/1 decisions: each column at its threshold; with `max_labels`, a sentence keeps at most that many
    categories (the most probable ones; the last, binary column is never capped). The cap exists because
    low thresholds on text unlike gold stack up labels no gold sentence has."""
    y_prob = np.asarray(y_prob, dtype=float)
    y_pred = (y_prob >= threshold).astype(int)
    cats = y_pred[:, :-1]
    if max_labels is None or cats.shape[1] <= max_labels:
        return y_pred
    over = np.flatnonzero(cats.sum(axis=1) > max_labels)
    for i in over:
        ranked = np.argsort(-np.where(cats[i] == 1, y_prob[i, :-1], -np.inf), kind="stable")
        cats[i, ranked[max_labels:]] = 0
    return y_pred


def evaluate(y_true: np.ndarray, y_prob: np.ndarray, category_ids: list[str],
             threshold: float | np.ndarray = DEFAULT_THRESHOLD, max_labels: int | None = None) -> list[dict]:
    """Rows of scope/category/precision/recall/f1/support.

    Columns 0..K-1 of y_true / y_prob are the categories (in `category_ids` order), column K is binary;
    `threshold` is one number or one per column; `max_labels` caps the categories per sentence (`decide`).
    """
    k = len(category_ids)
    y_true = np.asarray(y_true, dtype=int)
    y_pred = decide(y_prob, threshold, max_labels)
    if y_true.shape != y_pred.shape or y_true.shape[1] != k + 1:
        raise ValueError(f"expected {k + 1} columns (categories + binary), got {y_true.shape} and {y_pred.shape}")
    cats_true, cats_pred = y_true[:, :k], y_pred[:, :k]
    rows: list[dict] = []
    p, r, f, s = precision_recall_fscore_support(cats_true, cats_pred, average=None, zero_division=0)
    for j, cid in enumerate(category_ids):
        rows.append(_row("category", cid, p[j], r[j], f[j], s[j]))
    support = int(cats_true.sum())
    for average in ("micro", "macro"):
        p, r, f, _ = precision_recall_fscore_support(cats_true, cats_pred, average=average, zero_division=0)
        rows.append(_row(average, average, p, r, f, support))
    p, r, f, _ = precision_recall_fscore_support(y_true[:, k], y_pred[:, k], average="binary", zero_division=0)
    rows.append(_row("binary", "binary", p, r, f, int(y_true[:, k].sum())))
    return rows


def _row(scope: str, category: str, precision, recall, f1, support) -> dict:
    return {"scope": scope, "category": category, "precision": float(precision), "recall": float(recall),
            "f1": float(f1), "support": int(support)}


def summarise(metrics: pl.DataFrame, keys: tuple[str, ...] = ("training_set", "model")) -> pl.DataFrame:
    """Mean and standard deviation over seeds (sample std; 0 when only one seed was run)."""
    group = [*keys, "scope", "category"]
    aggregations = [pl.len().alias("n_seeds"), pl.col("support").first()]
    for m in METRIC_COLUMNS:
        aggregations += [pl.col(m).mean().alias(f"{m}_mean"), pl.col(m).std().fill_null(0.0).alias(f"{m}_std")]
    return metrics.group_by(group, maintain_order=True).agg(aggregations)


@dataclass
class ThresholdChoice:
    """One output's threshold and why: the best grid value on the folds, its mean F1 gain over 0.5 and the
    gain's standard error across folds, the positives it was chosen on."""

    threshold: float
    best: float
    gain: float
    noise: float
    positives: int
    reason: str

    def to_json(self) -> dict:
        return {"threshold": self.threshold, "best_on_cv": self.best, "cv_f1_gain": round(self.gain, 4),
                "gain_standard_error": round(self.noise, 4), "positives": self.positives, "reason": self.reason}


def choose_thresholds(y_true: np.ndarray, y_prob: np.ndarray, folds: np.ndarray,
                      grid: tuple[float, ...] = THRESHOLD_GRID) -> list[ThresholdChoice]:
    """One threshold per column, chosen on out-of-fold predictions so that it does no harm off the folds.

    Thresholds tuned on a few hundred sentences fit their writing style; a category with 14 positives moves
    its threshold on two or three of them. So a threshold leaves 0.5 only when the best grid value's F1 gain
    over 0.5, per fold, has a mean above NOISE_MULTIPLE standard errors across folds, and then keeps only
    n / (n + SHRINK_POSITIVES) of its distance from 0.5 (n: the column's positives). A column with fewer than
    MIN_POSITIVES_TO_TUNE positives keeps 0.5."""
    y_true = np.asarray(y_true, dtype=int)
    y_prob = np.asarray(y_prob, dtype=float)
    folds = np.asarray(folds)
    return [_choose_one(y_true[:, j].astype(bool), y_prob[:, j], folds, np.asarray(grid, dtype=float))
            for j in range(y_true.shape[1])]


def thresholds_of(choices: list[ThresholdChoice]) -> np.ndarray:
    return np.array([c.threshold for c in choices])


def _choose_one(truth: np.ndarray, prob: np.ndarray, folds: np.ndarray, values: np.ndarray) -> ThresholdChoice:
    positives = int(truth.sum())
    if positives < MIN_POSITIVES_TO_TUNE:
        return ThresholdChoice(DEFAULT_THRESHOLD, DEFAULT_THRESHOLD, 0.0, 0.0, positives,
                               f"{positives} positives (< {MIN_POSITIVES_TO_TUNE}): 0.5 kept")
    values = np.union1d(values, [DEFAULT_THRESHOLD])
    half = int(np.flatnonzero(values == DEFAULT_THRESHOLD)[0])
    per_fold = np.array([f1_by_threshold(truth[folds == f], prob[folds == f], values) for f in np.unique(folds)])
    gains = per_fold - per_fold[:, [half]]  # per fold: F1 at each value minus F1 at 0.5
    mean = gains.mean(axis=0)
    noise = gains.std(axis=0, ddof=1) / np.sqrt(len(gains)) if len(gains) > 1 else np.full(len(values), np.inf)
    top = np.flatnonzero(mean >= mean.max() - 1e-12)
    j = top[np.argmin(np.abs(values[top] - DEFAULT_THRESHOLD))]  # ties go to the value nearest 0.5
    best, gain, se = float(values[j]), float(mean[j]), float(noise[j])
    if best == DEFAULT_THRESHOLD or gain <= NOISE_MULTIPLE * se:
        why = ("0.5 is best on CV" if best == DEFAULT_THRESHOLD else
               f"best {best:g} gains {gain:+.3f} F1 per fold, within the fold noise (standard error {se:.3f}): 0.5 kept")
        return ThresholdChoice(DEFAULT_THRESHOLD, best, gain, se, positives, why)
    kept = positives / (positives + SHRINK_POSITIVES)
    threshold = round(DEFAULT_THRESHOLD + (best - DEFAULT_THRESHOLD) * kept, 3)
    return ThresholdChoice(threshold, best, gain, se, positives,
                           f"best {best:g} gains {gain:+.3f} F1 per fold (standard error {se:.3f}); shrunk toward 0.5 "
                           f"by support {positives}/({positives}+{SHRINK_POSITIVES})")


def f1_by_threshold(truth: np.ndarray, prob: np.ndarray, values: np.ndarray) -> np.ndarray:
    """F1 of one column at each threshold in `values` (0 where nothing is true and nothing predicted)."""
    predicted = prob[:, None] >= values[None, :]
    tp = (predicted & truth[:, None]).sum(axis=0)
    fp = (predicted & ~truth[:, None]).sum(axis=0)
    fn = truth.sum() - tp
    return np.where(tp > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)


def max_labels_per_row(labels: list[list[str]], category_ids: list[str]) -> int:
    """The most categories any of these (gold) sentences carries: tuned decisions never give more."""
    known = set(category_ids)
    return max((sum(label in known for label in row) for row in labels), default=1) or 1


def expected_calibration_error(y_true: np.ndarray, y_prob: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE over every (sentence, output) cell: equal-width probability bins, the gap between the mean
    probability and the share of positives in each bin, weighted by the bin's share of cells."""
    truth = np.asarray(y_true, dtype=float).ravel()
    prob = np.asarray(y_prob, dtype=float).ravel()
    if not len(prob):
        return 0.0
    which = np.minimum((prob * bins).astype(int), bins - 1)
    total = 0.0
    for b in np.unique(which):
        members = which == b
        total += members.mean() * abs(prob[members].mean() - truth[members].mean())
    return float(total)
