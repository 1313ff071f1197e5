"""Scores on the gold test split, via scikit-learn (nothing hand-rolled).

A model outputs one probability per category plus one for the binary task (any category vs 'none');
the decision threshold is 0.5 throughout, matching class-balanced training.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from sklearn.metrics import precision_recall_fscore_support

DEFAULT_THRESHOLD = 0.5
SCOPES = ("category", "micro", "macro", "binary")
METRIC_COLUMNS = ("precision", "recall", "f1")


def evaluate(y_true: np.ndarray, y_prob: np.ndarray, category_ids: list[str], threshold: float = DEFAULT_THRESHOLD) -> list[dict]:
    """Rows of scope/category/precision/recall/f1/support.

    Columns 0..K-1 of y_true / y_prob are the categories (in `category_ids` order), column K is binary.
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
