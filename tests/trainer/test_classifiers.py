import random

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from factory.core.errors import FactoryError
from factory.engines.embedder import Embedder, default_encoder_path
from factory.trainer.metrics import evaluate
from factory.trainer.classifiers import (
    BINARY_OUTPUT,
    FineTunedEncoderModel,
    build_model,
    load_model,
    output_names,
    target_matrix,
)

from tests.conftest import KEYWORDS, toy_records

CATS = list(KEYWORDS)


def toy_split(per_category=8, n_none=16, n_test_per_label=2):
    """Deterministic train/test split with every category (and 'none') in test."""
    records = toy_records(per_category, n_none)
    random.Random(0).shuffle(records)
    seen: dict[str, int] = {}
    train, test = [], []
    for r in records:
        label = r["labels"][0]
        if len(r["labels"]) == 1 and seen.get(label, 0) < n_test_per_label:
            seen[label] = seen.get(label, 0) + 1
            test.append(r)
        else:
            train.append(r)
    def xy(rows):
        return [r["text"] for r in rows], target_matrix([r["labels"] for r in rows], CATS)
    return xy(train), xy(test)


def micro_f1(y, p):
    return {r["category"]: r["f1"] for r in evaluate(y, p, CATS)}["micro"]


def test_target_matrix_adds_binary_column():
    y = target_matrix([["cognitive_impairment", "treatment_and_care"], ["none"]], CATS)
    assert output_names(CATS)[-1] == BINARY_OUTPUT
    assert y.shape == (2, len(CATS) + 1)
    assert y[0].tolist() == [1, 0, 0, 0, 0, 0, 0, 0, 1, 1]
    assert y[1].tolist() == [0] * (len(CATS) + 1)


def test_tfidf_learns_toy_set_and_round_trips(tmp_path):
    (x_tr, y_tr), (x_te, y_te) = toy_split()
    model = build_model("tfidf", CATS, seed=0).fit(x_tr, y_tr)
    probs = model.predict_proba(x_te)
    assert probs.shape == y_te.shape
    assert micro_f1(y_te, probs) > 0.9
    model.save(tmp_path / "m", {"note": "x"})
    again = load_model(tmp_path / "m")
    assert again.meta["note"] == "x" and again.meta["kind"] == "tfidf"
    np.testing.assert_allclose(again.predict_proba(x_te), probs)


def test_category_absent_from_training_predicts_zero_instead_of_failing():
    (x_tr, y_tr), (x_te, _) = toy_split()
    y_tr = y_tr.copy()
    y_tr[:, 0] = 0  # no positives for the first category, as in a bronze-only set missing one category
    probs = build_model("tfidf", CATS, seed=0).fit(x_tr, y_tr).predict_proba(x_te)
    assert np.all(probs[:, 0] == 0.0)


def test_sample_weight_changes_the_fit():
    (x_tr, y_tr), (x_te, _) = toy_split()
    # Mislabel 'none' sentences as cognitive_impairment: with weight ~0 they are ignored.
    noisy = [i for i in range(len(x_tr)) if y_tr[i, -1] == 0]
    y_noisy = y_tr.copy()
    y_noisy[noisy, 0] = 1
    y_noisy[noisy, -1] = 1
    w_ignore = np.ones(len(x_tr))
    w_ignore[noisy] = 1e-6
    clean = build_model("tfidf", CATS, 0).fit(x_tr, y_noisy, w_ignore).predict_proba(x_tr)
    trusted = build_model("tfidf", CATS, 0).fit(x_tr, y_noisy).predict_proba(x_tr)
    assert clean[noisy, 0].mean() < 0.5 < trusted[noisy, 0].mean()


def test_frozen_encoder_learns_and_caches_embeddings(tmp_path):
    (x_tr, y_tr), (x_te, y_te) = toy_split()
    model = build_model("encoder", CATS, seed=0, cache_dir=tmp_path / "cache").fit(x_tr, y_tr)
    probs = model.predict_proba(x_te)
    assert micro_f1(y_te, probs) > 0.8
    assert list((tmp_path / "cache" / "embeddings").glob("*/*.npz"))
    # A fresh embedder answers from the disk cache without loading the encoder.
    fresh = Embedder(default_encoder_path(), tmp_path / "cache")
    vectors = fresh.embed(x_te[:3])
    assert fresh._model is None
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    model.save(tmp_path / "m")
    np.testing.assert_allclose(load_model(tmp_path / "m", tmp_path / "cache").predict_proba(x_te), probs, rtol=1e-5)


def test_finetuning_minilm_beats_chance(tmp_path):
    """A real (tiny) fine-tuning run: ~60 sentences, 3 epochs, multi-label BCE head."""
    (x_tr, y_tr), (x_te, y_te) = toy_split(per_category=7, n_none=9, n_test_per_label=1)
    assert 55 <= len(x_tr) <= 65
    model = FineTunedEncoderModel(output_names(CATS), seed=0, epochs=3).fit(x_tr, y_tr)
    probs = model.predict_proba(x_te)
    # chance: AUC 0.5, micro-F1 about the category prevalence (~0.1)
    assert roc_auc_score(y_te[:, :-1], probs[:, :-1], average="macro") > 0.8
    assert micro_f1(y_te, probs) > 0.3
    model.save(tmp_path / "ft")
    assert (tmp_path / "ft" / "encoder" / "config.json").is_file() and (tmp_path / "ft" / "head.pt").is_file()
    np.testing.assert_allclose(load_model(tmp_path / "ft").predict_proba(x_te), probs, atol=1e-5)


def test_bad_model_inputs_are_factory_errors(tmp_path):
    with pytest.raises(FactoryError, match="no config.json"):
        build_model("encoder", CATS, 0, encoder_path=tmp_path)
    with pytest.raises(FactoryError, match="unknown model family 'svm'"):
        build_model("svm", CATS, 0)
    with pytest.raises(FactoryError, match="not a saved model"):
        load_model(tmp_path)
