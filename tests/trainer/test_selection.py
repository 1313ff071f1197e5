"""Selection of synthetic rows and thresholds, chosen on CV folds of gold train (issue 11)."""

import json
import random

import numpy as np
import pytest
from click.testing import CliRunner

from factory.cli.trainer import compare, train
from factory.data.gold import import_gold
from factory.trainer.classifiers import load_model, target_matrix
from factory.trainer.compare import CompareOptions, choose_on_gold_train, prepare_data
from factory.trainer.metrics import choose_thresholds, thresholds_of
from factory.trainer.predict import predict
from factory.trainer.selection import MICRO_MARGIN, Setting, agreement_scores, fold_ids

from tests.conftest import KEYWORDS, NONE_PHRASES, SUBJECTS, toy_records, write_jsonl, write_synthetic

CATS = list(KEYWORDS)


def noisy_gold(per_category=10, n_none=20, seed=0):
    """Toy gold where CV has room to move: a third of each category's sentences say it in other words."""
    records = toy_records(per_category, n_none)
    rng = random.Random(seed)
    for r in records:
        if r["labels"] != ["none"] and rng.random() < 0.3:
            words = r["text"].split()
            r["text"] = " ".join(words[:3] + [w[::-1] for w in words[3:6]] + words[6:])
    return records


def good_rows(n_per_category=6):
    """Clean, on-topic, correctly labelled: the category's phrase in new sentences."""
    rows = []
    for cid, phrase in KEYWORDS.items():
        for i in range(n_per_category):
            rows.append({"text": f"On review {SUBJECTS[(i + 5) % len(SUBJECTS)]} {phrase}, per the family (item {i}).",
                         "labels": [cid]})
    for i in range(n_per_category):
        rows.append({"text": f"Today {NONE_PHRASES[i % len(NONE_PHRASES)]} again (item {i}).", "labels": ["none"]})
    return rows


def bad_rows(n=80, seed=1):
    """Planted bad rows: on-topic sentences with shuffled (wrong) labels, and junk text with random labels."""
    rng = random.Random(seed)
    rows = []
    cats = list(KEYWORDS)
    for i in range(n // 2):
        true = cats[i % len(cats)]
        wrong = cats[(i % len(cats) + 1 + rng.randrange(len(cats) - 1)) % len(cats)]
        rows.append({"text": f"{SUBJECTS[i % len(SUBJECTS)]} {KEYWORDS[true]} (bad {i}).", "labels": [wrong]})
    for i in range(n - n // 2):
        junk = " ".join(rng.choice(["qwe", "zzt", "blorp", "fnord", "xyl", "krr", "vop"]) for _ in range(8))
        rows.append({"text": f"{junk} {i}", "labels": [rng.choice(cats)]})
    return rows


@pytest.fixture
def gold_dir(tmp_path, taxonomy):
    import_gold(write_jsonl(tmp_path / "gold.jsonl", noisy_gold()), taxonomy, tmp_path / "gold")
    return tmp_path / "gold"


def selection_for(tmp_path, taxonomy, gold_dir, silver=None, bronze=None, models=("tfidf",)):
    opts = CompareOptions(gold_dir=gold_dir, out_dir=tmp_path / "exp", models=list(models), seeds=[0],
                          silver_dirs=[silver] if silver else [], bronze_dirs=[bronze] if bronze else [],
                          sets=["gold"] + (["gold+silver"] if silver else []) + (["gold+bronze"] if bronze else []),
                          cache_dir=tmp_path / "cache", test_fraction=0.25)
    data = prepare_data(opts, taxonomy)
    return data, choose_on_gold_train(opts, data, taxonomy)


def test_planted_bad_rows_are_dropped_and_cv_f1_does_not_fall(tmp_path, taxonomy, gold_dir):
    silver = write_synthetic(tmp_path / "run" / "silver", "silver", bad_rows())
    data, selection = selection_for(tmp_path, taxonomy, gold_dir, silver=silver)
    choice = selection.choices[("tfidf", "silver")]
    raw = next(s for s in choice.scores if s.setting == "raw")
    assert raw.delta_micro < 0  # the planted rows hurt when all are taken
    kept, _ = selection.picked[("tfidf", "silver")]
    assert len(kept) <= 0.1 * len(data.synthetic["silver"]), choice.reason  # (almost) all dropped
    sel = selection.cv[("tfidf", "gold+silver-sel")]
    gold = selection.cv[("tfidf", "gold")]
    assert sel.micro_mean >= gold.micro_mean - 1e-9  # dev (CV) F1 does not fall
    assert selection.cv[("tfidf", "gold+silver")].micro_mean < gold.micro_mean


def test_planted_good_rows_are_kept(tmp_path, taxonomy, gold_dir):
    bronze = write_synthetic(tmp_path / "run" / "bronze", "bronze", good_rows())
    data, selection = selection_for(tmp_path, taxonomy, gold_dir, bronze=bronze)
    choice = selection.choices[("tfidf", "bronze")]
    kept, weight = selection.picked[("tfidf", "bronze")]
    assert not choice.setting.takes_nothing, choice.reason
    assert len(kept) >= 0.8 * len(data.synthetic["bronze"]) and weight > 0
    assert selection.cv[("tfidf", "gold+bronze-sel")].micro_mean > selection.cv[("tfidf", "gold")].micro_mean


def test_mixed_rows_keep_the_good_and_drop_the_bad(tmp_path, taxonomy, gold_dir):
    good, bad = good_rows(), bad_rows()
    bronze = write_synthetic(tmp_path / "run" / "bronze", "bronze", good + bad)
    data, selection = selection_for(tmp_path, taxonomy, gold_dir, bronze=bronze, models=("tfidf", "encoder"))
    bad_texts = {r["text"] for r in bad}
    for family in ("tfidf", "encoder"):
        kept, _ = selection.picked[(family, "bronze")]
        texts = [data.synthetic["bronze"].texts[i] for i in kept]
        assert sum(t in bad_texts for t in texts) <= 0.1 * len(bad), family
        assert sum(t not in bad_texts for t in texts) >= 0.5 * len(good), family
        assert selection.cv[(family, "gold+bronze-sel")].micro_mean >= selection.cv[(family, "gold")].micro_mean - MICRO_MARGIN


def test_compare_shows_raw_selected_and_gold_and_never_chooses_on_test(tmp_path, taxonomy, gold_dir):
    bronze = write_synthetic(tmp_path / "run" / "bronze", "bronze", good_rows() + bad_rows())
    silver = write_synthetic(tmp_path / "run" / "silver", "silver", bad_rows(60, seed=3))
    out = tmp_path / "exp"
    result = CliRunner().invoke(compare, [str(a) for a in [
        "--gold", gold_dir, "--silver", silver, "--bronze", bronze, "--sets", "gold,gold+silver,gold+bronze",
        "--models", "tfidf", "--seeds", "0,1", "--out", out, "--cache-dir", tmp_path / "cache", "--test-fraction", "0.25"]])
    assert result.exit_code == 0, result.output + repr(result.exception)
    config = json.loads((out / "config.json").read_text())
    assert config["sets_run"] == ["gold", "gold+silver", "gold+silver-sel", "gold+bronze", "gold+bronze-sel"]
    assert "test split chose nothing" in config["selection"]["chosen_on"]
    assert {s["source"]: s["setting"] for s in config["selection"]["sources"]}["silver"] == "none"
    report = (out / "report.md").read_text()
    verdict = report.split("## Verdict", 1)[1].split("\n- gold:", 1)[0]
    assert "Silver against gold alone" in verdict and "Bronze against gold alone" in verdict
    assert "selected silver" in verdict and "setting none: 0 of" in verdict
    assert "± 0.000" not in report  # deterministic fits: one number, no zero spread
    for line in result.output.splitlines():
        if line.startswith(("  gold", "  family", "  training set")):  # table rows fit 100 columns
            assert len(line) <= 100, line
    # --no-select: no -sel sets
    result = CliRunner().invoke(compare, [str(a) for a in [
        "--gold", gold_dir, "--bronze", bronze, "--sets", "gold,gold+bronze", "--models", "tfidf", "--seeds", "0",
        "--out", tmp_path / "exp2", "--cache-dir", tmp_path / "cache", "--no-select"]])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "exp2" / "config.json").read_text())["sets_run"] == ["gold", "gold+bronze"]


def test_train_applies_selection_saves_it_and_predict_uses_the_thresholds(tmp_path, taxonomy, gold_dir):
    bronze = write_synthetic(tmp_path / "run" / "bronze", "bronze", good_rows() + bad_rows())
    negatives = write_jsonl(tmp_path / "neg.jsonl", [{"text": f"Knee x-ray shows mild arthritis, view {i}.",
                                                      "labels": ["none"]} for i in range(12)])
    result = CliRunner().invoke(train, [str(a) for a in [
        "--gold", gold_dir, "--bronze", bronze, "--set", "gold+bronze", "--model", "tfidf", "--out", tmp_path / "m",
        "--cache-dir", tmp_path / "cache", "--negatives", negatives]])
    assert result.exit_code == 0, result.output + repr(result.exception)
    meta = json.loads((tmp_path / "m" / "meta.json").read_text())
    assert meta["training_set"] == "gold+bronze-sel" and meta["selection"]["applied"]
    (source,) = meta["selection"]["sources"]
    assert source["source"] == "bronze" and source["rows_kept"] < source["rows_total"]
    assert meta["training_data"]["rows"]["bronze"] == source["rows_kept"]
    assert meta["training_data"]["rows"]["negatives"] == 12
    assert set(meta["thresholds"]) == set(meta["outputs"]) and meta["thresholds_chosen_on"] == "CV folds of gold train"
    # predict decides each category at the saved threshold
    model = load_model(tmp_path / "m", tmp_path / "cache")
    assert np.allclose(model.threshold, [meta["thresholds"][o] for o in meta["outputs"]])
    src = tmp_path / "in.txt"
    src.write_text("Mrs Jones keeps forgetting recent conversations and gets confused.\n", encoding="utf-8")
    _, frame = predict(tmp_path / "m", src, tmp_path / "p", cache_dir=tmp_path / "cache")
    scores = {c: frame[f"score_{c}"][0] for c in CATS}
    expected = [c for c in CATS if scores[c] >= meta["thresholds"][c]] or ["none"]
    assert frame["labels"].to_list() == [expected]


def test_negatives_are_refused_when_labelled_and_never_reach_the_test_split(tmp_path, taxonomy, gold_dir):
    from factory.core.errors import FactoryError

    labelled = write_jsonl(tmp_path / "bad.jsonl", [{"text": "MoCA 20/30.", "labels": ["cognitive_assessment"]}])
    opts = CompareOptions(gold_dir=gold_dir, out_dir=tmp_path / "e", models=["tfidf"], negatives=labelled,
                          cache_dir=tmp_path / "cache", test_fraction=0.25, sets=["gold"])
    with pytest.raises(FactoryError, match="'none' sentences only"):
        prepare_data(opts, taxonomy)
    negatives = write_jsonl(tmp_path / "neg.jsonl", [{"text": "Abdomen is soft.", "labels": ["none"]}])
    opts.negatives = negatives
    data = prepare_data(opts, taxonomy)
    assert len(data.negatives) == 1 and "Abdomen is soft." not in data.gold_test.texts
    assert len(data.gold_test) == len(data.y_test)


def test_agreement_folds_settings_and_thresholds():
    probs = np.array([[0.9, 0.1, 0.95], [0.2, 0.3, 0.35], [0.6, 0.7, 0.9]])
    y = target_matrix([["a"], ["none"], ["b"]], ["a", "b"])
    assert agreement_scores(probs, y).tolist() == pytest.approx([0.9, 0.7, 0.4])
    folds = fold_ids([["a"]] * 5 + [["b"]] * 10 + [["none"]] * 20, 5)
    assert all(((folds == f) & (np.arange(35) < 5)).sum() == 1 for f in range(5))  # the rarest label spread evenly
    picked = Setting("x", min_agreement=0.5, cap_ratio=0.1).pick(np.array([0.9, 0.2, 0.6, 0.8]), None, 20)
    assert picked.tolist() == [0, 3]  # filter, then the cap keeps the best-agreeing rows
    assert Setting("none", takes_nothing=True).pick(np.ones(3), None, 10).size == 0
    truth = np.array([[1, 0], [1, 0], [0, 0], [1, 0], [0, 1], [1, 1]] * 2)
    prob = np.array([[0.3, 0.1], [0.35, 0.2], [0.1, 0.1], [0.4, 0.1], [0.2, 0.9], [0.45, 0.8]] * 2)
    cuts = thresholds_of(choose_thresholds(truth, prob, np.arange(12) % 3))
    assert 0.3 < cuts[0] < 0.5  # a gain on every fold: the threshold moves below 0.5, shrunk by its 8 positives
    assert cuts[1] == 0.5  # too few positives to tune: 0.5 kept
