import numpy as np
import polars as pl
import pytest
from sklearn.metrics import f1_score

from factory.trainer.metrics import evaluate, summarise

CATS = ["a", "b", "c"]
# 5 sentences, 3 categories + binary column (any category)
Y_TRUE = np.array([
    [1, 0, 0, 1],
    [1, 1, 0, 1],
    [0, 1, 0, 1],
    [0, 0, 1, 1],
    [0, 0, 0, 0],
])
Y_PROB = np.array([
    [0.9, 0.1, 0.2, 0.8],   # a hit
    [0.7, 0.3, 0.6, 0.9],   # a hit, b missed, c false positive
    [0.2, 0.8, 0.1, 0.4],   # b hit, binary missed
    [0.6, 0.2, 0.1, 0.7],   # a false positive, c missed
    [0.1, 0.1, 0.1, 0.5],   # binary false positive (0.5 counts as positive)
])


def by_name(rows):
    return {r["category"]: r for r in rows}


def test_per_category_micro_macro_binary_match_hand_computed_values():
    m = by_name(evaluate(Y_TRUE, Y_PROB, CATS))
    # a: TP 2, FP 1, FN 0 -> P 2/3, R 1, F1 0.8
    assert m["a"]["precision"] == pytest.approx(2 / 3)
    assert m["a"]["recall"] == pytest.approx(1.0)
    assert m["a"]["f1"] == pytest.approx(0.8)
    assert m["a"]["support"] == 2
    # b: TP 1, FP 0, FN 1 -> P 1, R 0.5, F1 2/3
    assert (m["b"]["precision"], m["b"]["recall"]) == pytest.approx((1.0, 0.5))
    assert m["b"]["f1"] == pytest.approx(2 / 3)
    # c: TP 0, FP 1, FN 1 -> all 0
    assert (m["c"]["precision"], m["c"]["recall"], m["c"]["f1"]) == (0.0, 0.0, 0.0)
    # micro: TP 3, FP 2, FN 2 -> P = R = F1 = 0.6
    assert (m["micro"]["precision"], m["micro"]["recall"], m["micro"]["f1"]) == pytest.approx((0.6, 0.6, 0.6))
    assert m["micro"]["support"] == 5
    # macro F1 = (0.8 + 2/3 + 0) / 3
    assert m["macro"]["f1"] == pytest.approx((0.8 + 2 / 3) / 3)
    # binary: TP 3, FP 1, FN 1 -> 0.75 each
    assert (m["binary"]["precision"], m["binary"]["recall"], m["binary"]["f1"]) == pytest.approx((0.75, 0.75, 0.75))
    assert m["binary"]["support"] == 4
    # and the same as scikit-learn called directly
    y_pred = (Y_PROB >= 0.5).astype(int)
    assert m["macro"]["f1"] == pytest.approx(f1_score(Y_TRUE[:, :3], y_pred[:, :3], average="macro"))


def test_shape_mismatch_is_rejected():
    with pytest.raises(ValueError):
        evaluate(Y_TRUE[:, :3], Y_PROB[:, :3], CATS)


def test_summarise_mean_and_std_over_seeds():
    rows = []
    for seed, f1 in [(0, 0.5), (1, 0.7)]:
        rows.append({"training_set": "gold", "model": "tfidf", "seed": seed, "scope": "micro",
                     "category": "micro", "precision": f1, "recall": f1, "f1": f1, "support": 5})
    rows.append({"training_set": "silver", "model": "tfidf", "seed": 0, "scope": "micro",
                 "category": "micro", "precision": 0.4, "recall": 0.4, "f1": 0.4, "support": 5})
    summary = summarise(pl.DataFrame(rows))
    gold = summary.filter(pl.col("training_set") == "gold").row(0, named=True)
    assert gold["n_seeds"] == 2
    assert gold["f1_mean"] == pytest.approx(0.6)
    assert gold["f1_std"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    silver = summary.filter(pl.col("training_set") == "silver").row(0, named=True)
    assert silver["f1_std"] == 0.0
