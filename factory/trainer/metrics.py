"""Scores on the gold test split, via scikit-learn (nothing hand-rolled).

A model outputs one probability per category plus one for the binary task (any category vs 'none').
The decision threshold is one number (0.5, matching class-balanced training) or one per output, chosen on
cross-validation folds of gold train (`choose_thresholds`, used by factory.trainer.selection).
"""

from __future__ import annotations

import numpy as np
import polars as pl
from sklearn.metrics import precision_recall_fscore_support

DEFAULT_THRESHOLD = 0.5
THRESHOLD_GRID = tuple(round(0.1 + 0.05 * i, 2) for i in range(17))  # 0.10 .. 0.90
MIN_POSITIVES_TO_TUNE = 5  # fewer positives on the folds: keep 0.5 (one example would set the threshold)
SCOPES = ("category", "micro", "macro", "binary")
METRIC_COLUMNS = ("precision", "recall", "f1")


def evaluate(y_true: np.ndarray, y_prob: np.ndarray, category_ids: list[str],
             threshold: float | np.ndarray = DEFAULT_THRESHOLD) -> list[dict]:
    """Rows of scope/category/precision/recall/f1/support.

    Columns 0..K-1 of y_true / y_prob are the categories (in `category_ids` order), column K is binary;
    `threshold` is one number or one per column.
    """
    k = len(category_ids)
    y_true = np.asarray(y_true, dtype=int)
    y_pred = (np.asarray(y_prob) >= threshold).astype(int)
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


def choose_thresholds(y_true: np.ndarray, y_prob: np.ndarray, grid: tuple[float, ...] = THRESHOLD_GRID,
                      min_positives: int = MIN_POSITIVES_TO_TUNE) -> np.ndarray:
    """One threshold per column: the grid value with the best F1 on these (out-of-fold) predictions; ties go
    to the value nearest 0.5, and a column with fewer than `min_positives` positives keeps 0.5."""
    y_true = np.asarray(y_true, dtype=int)
    y_prob = np.asarray(y_prob, dtype=float)
    values = np.asarray(grid, dtype=float)
    chosen = np.full(y_true.shape[1], DEFAULT_THRESHOLD)
    for j in range(y_true.shape[1]):
        truth = y_true[:, j].astype(bool)
        if truth.sum() < min_positives:
            continue
        predicted = y_prob[:, j][:, None] >= values[None, :]
        tp = (predicted & truth[:, None]).sum(axis=0)
        fp = (predicted & ~truth[:, None]).sum(axis=0)
        fn = truth.sum() - tp
        f1 = np.where(tp > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)
        best = np.flatnonzero(f1 >= f1.max() - 1e-12)
        chosen[j] = values[best[np.argmin(np.abs(values[best] - DEFAULT_THRESHOLD))]]
    return chosen
