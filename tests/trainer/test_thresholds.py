"""Safe per-category thresholds, the label cap, calibration, and one model per training set (issue:
"Per-category thresholds lower F1 on text from another source")."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from factory.cli.trainer import train
from factory.data.gold import import_gold
from factory.trainer.classifiers import load_model
from factory.trainer.metrics import (DEFAULT_THRESHOLD, SHRINK_POSITIVES, choose_thresholds, decide, max_labels_per_row,
                                     thresholds_of)
from factory.trainer.predict import predict

from tests.conftest import write_jsonl, write_synthetic
from tests.trainer.test_selection import bad_rows, good_rows, noisy_gold


def scores_with_low_positives(n_pos: int, n_neg: int, rng, shift: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """A column whose positives score around 0.5 - shift (below 0.5) and negatives around 0.15."""
    truth = np.r_[np.ones(n_pos), np.zeros(n_neg)].astype(int)
    prob = np.r_[rng.uniform(0.5 - shift - 0.1, 0.5 - shift + 0.1, n_pos), rng.uniform(0.0, 0.3, n_neg)]
    return truth, prob


def test_tiny_support_keeps_half_and_clear_gain_moves_shrunk_by_support():
    rng = np.random.default_rng(0)
    n = 300
    folds = np.arange(n) % 5
    # Column 0: 150 positives all scoring below 0.5, cleanly above the negatives: every fold gains.
    big_truth, big_prob = scores_with_low_positives(150, 150, rng)
    # Column 1: 6 positives, scores overlapping the negatives': the best threshold gains on one fold, not the rest.
    small_truth = np.zeros(n, dtype=int)
    small_truth[[0, 5, 10, 15, 1, 6]] = 1  # folds 0, 0, 0, 0, 1, 1
    small_prob = rng.uniform(0.0, 0.45, n)
    small_prob[[0, 5, 10, 15]] = 0.44
    small_prob[[1, 6]] = 0.05
    # Column 2: 3 positives: below the minimum to tune.
    tiny_truth = np.zeros(n, dtype=int)
    tiny_truth[:3] = 1
    tiny_prob = np.where(tiny_truth == 1, 0.3, 0.1)
    y = np.stack([big_truth, small_truth, tiny_truth], axis=1)
    prob = np.stack([big_prob, small_prob, tiny_prob], axis=1)
    big, small, tiny = choose_thresholds(y, prob, folds)
    assert big.best < DEFAULT_THRESHOLD and big.gain > big.noise
    shrunk = DEFAULT_THRESHOLD + (big.best - DEFAULT_THRESHOLD) * 150 / (150 + SHRINK_POSITIVES)
    assert big.threshold == pytest.approx(shrunk, abs=1e-3) and big.best < big.threshold < DEFAULT_THRESHOLD
    assert small.best != DEFAULT_THRESHOLD and small.gain <= small.noise  # a gain inside the fold noise
    assert small.threshold == DEFAULT_THRESHOLD and "fold noise" in small.reason
    assert tiny.threshold == DEFAULT_THRESHOLD and "positives" in tiny.reason
    assert thresholds_of([big, small, tiny]).tolist() == [big.threshold, 0.5, 0.5]


def test_labels_per_sentence_are_capped_at_what_gold_shows():
    assert max_labels_per_row([["a"], ["a", "b"], []], ["a", "b", "c"]) == 2
    probs = np.array([[0.9, 0.6, 0.7, 0.95], [0.2, 0.9, 0.1, 0.9], [0.6, 0.7, 0.8, 0.1]])
    capped = decide(probs, 0.5, max_labels=2)
    assert capped.tolist() == [[1, 0, 1, 1], [0, 1, 0, 1], [0, 1, 1, 0]]  # the two most probable kept; binary untouched
    assert decide(probs, 0.5).tolist() == [[1, 1, 1, 1], [0, 1, 0, 1], [1, 1, 1, 0]]


@pytest.fixture
def gold_dir(tmp_path, taxonomy):
    import_gold(write_jsonl(tmp_path / "gold.jsonl", noisy_gold()), taxonomy, tmp_path / "gold")
    return tmp_path / "gold"


def test_same_training_set_gives_the_same_model_whatever_else_is_loaded(tmp_path, gold_dir):
    """`train --set gold` trains the same rows with and without unrelated silver/bronze loaded: the folds,
    features, thresholds, calibrators and CV score must not depend on the rows it does not train on."""
    silver = write_synthetic(tmp_path / "run" / "silver", "silver", bad_rows(60, seed=3))
    bronze = write_synthetic(tmp_path / "run" / "bronze", "bronze", good_rows() + bad_rows())
    common = ["--gold", gold_dir, "--set", "gold", "--model", "tfidf", "--cache-dir", tmp_path / "cache"]
    for out, extra in (("plain", []), ("loaded", ["--silver", silver, "--bronze", bronze])):
        result = CliRunner().invoke(train, [str(a) for a in common + ["--out", tmp_path / out] + extra])
        assert result.exit_code == 0, result.output + repr(result.exception)
    plain, loaded = (json.loads((tmp_path / m / "meta.json").read_text()) for m in ("plain", "loaded"))
    assert plain["training_data"]["fingerprint"] == loaded["training_data"]["fingerprint"]
    assert plain["selection"]["cv_micro_f1"] == loaded["selection"]["cv_micro_f1"]
    assert plain["thresholds"] == loaded["thresholds"] and plain["raw_thresholds"] == loaded["raw_thresholds"]
    assert plain["selection"]["threshold_choices"] == loaded["selection"]["threshold_choices"]
    assert plain["calibrated"] and plain["max_labels"] == 1  # every toy gold sentence has one label
    texts = ["Mrs Jones keeps forgetting recent conversations and gets confused.", "Knee x-ray shows arthritis."]
    a, b = (load_model(tmp_path / m, tmp_path / "cache").predict_proba(texts) for m in ("plain", "loaded"))
    np.testing.assert_array_equal(a, b)
    # predict shows calibrated scores and decides each category at its saved (calibrated) threshold
    src = tmp_path / "in.txt"
    src.write_text("\n".join(texts) + "\n", encoding="utf-8")
    _, frame = predict(tmp_path / "plain", src, tmp_path / "p", cache_dir=tmp_path / "cache")
    np.testing.assert_allclose(frame["score_any_category"].to_numpy(), a[:, -1], rtol=1e-6)
    for i, labels in enumerate(frame["labels"].to_list()):
        passing = [c for c in plain["outputs"][:-1] if frame[f"score_{c}"][i] >= plain["thresholds"][c]]
        assert len(labels) <= 1 and (labels == ["none"]) == (not passing)


def test_fixed_threshold_keeps_half_uncapped_and_still_calibrates(tmp_path, gold_dir):
    result = CliRunner().invoke(train, [str(a) for a in [
        "--gold", gold_dir, "--set", "gold", "--model", "tfidf", "--cache-dir", tmp_path / "cache",
        "--out", tmp_path / "m", "--fixed-threshold"]])
    assert result.exit_code == 0, result.output + repr(result.exception)
    meta = json.loads((tmp_path / "m" / "meta.json").read_text())
    assert meta["thresholds_chosen_on"] == "fixed" and meta["max_labels"] is None and meta["calibrated"]
    assert set(meta["raw_thresholds"].values()) == {0.5}


def test_a_missing_calibrator_file_is_one_error(tmp_path, gold_dir):
    from factory.core.errors import FactoryError

    result = CliRunner().invoke(train, [str(a) for a in [
        "--gold", gold_dir, "--set", "gold", "--model", "tfidf", "--cache-dir", tmp_path / "cache",
        "--out", tmp_path / "m"]])
    assert result.exit_code == 0, result.output
    (tmp_path / "m" / "calibrators.joblib").unlink()
    with pytest.raises(FactoryError, match="calibrators.joblib"):
        load_model(tmp_path / "m")
