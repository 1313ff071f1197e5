"""The review order (the queue); the decisions' own store is tested in tests/review/test_store.py."""

from __future__ import annotations

import polars as pl
import pytest

from factory.core.errors import FactoryError
from factory.data.store import shard_paths
from factory.data.taxonomy import load_taxonomy
from factory.review.queue import build_queue

TAXONOMY = load_taxonomy()


def test_informative_order_puts_doubt_first_round_robin_by_category(review_run):
    queue = build_queue(review_run, "silver", TAXONOMY, "informative")
    texts = [item.text for item in queue]
    # first round: one row per label bucket, most doubt first (majority disagrees; verifier rejected; low agreement)
    assert texts[0].startswith("Her daughter") and texts[1].startswith("He is agitated")
    first_round = [item.bucket for item in queue[:9]]
    assert len(set(first_round)) == 9  # 8 single-row buckets + "none", no bucket twice before every one had a turn
    none_rows = [i for i, item in enumerate(queue) if item.labels == ["none"]]
    assert none_rows[1] >= 9  # the majority label waits for the other categories
    assert queue == build_queue(review_run, "silver", TAXONOMY, "informative")  # stable across restarts


def test_random_order_is_seeded(review_run):
    ids = lambda seed: [item.row_id for item in build_queue(review_run, "silver", TAXONOMY, "random", seed)]
    assert ids(1) == ids(1) and ids(1) != ids(2) and sorted(ids(1)) == sorted(ids(2))


def test_bronze_queue_carries_category_attributes_and_phi(review_run):
    queue = build_queue(review_run, "bronze", TAXONOMY)
    first = queue[0].payload()
    assert first["phi"]["status"] == "quarantined" and first["phi"]["reasons"] == ["PERSON: John Carter"]
    assert first["category"] == "notice_by_others" and first["attributes"]["note_section"] == "HPI"


def test_no_rows_is_one_clear_error(tmp_path):
    (tmp_path / "run").mkdir()
    with pytest.raises(FactoryError, match="no silver shards"):
        build_queue(tmp_path / "run", "silver", TAXONOMY)


def test_the_gold_classifier_puts_contested_rows_first_and_every_row_says_why(review_run_with_gold, review_run):
    queue = build_queue(review_run_with_gold, "silver", TAXONOMY, "informative")
    contested = [item.contested for item in queue]
    assert any(contested) and contested == sorted(contested, reverse=True)  # every contested row comes first
    for item in queue:
        assert item.why.startswith("classifier ") and item.payload()["classifier"] is not None
        view = item.payload()["classifier"]
        if view["disagreements"] or view["margin"] < 0.15:
            assert item.contested
    # without gold the line says so, and the other signals still order the queue
    plain = build_queue(review_run, "silver", TAXONOMY, "informative")
    assert all(item.why.startswith("no classifier: the run has no gold; ") for item in plain)


def test_without_consistency_the_label_stages_confidence_says_why_and_orders_doubt(review_run):
    import shutil

    shutil.rmtree(review_run / "silver_consistency")  # consistency never ran
    shard = shard_paths(review_run / "silver")[0]
    silver = pl.read_parquet(shard)
    confidence = [0.99 - 0.08 * i for i in range(silver.height)]  # the later rows the LLM was less sure of
    silver.with_columns(logprob_confidence=pl.Series(confidence)).write_parquet(shard)
    by_text = dict(zip(silver["text"], confidence))

    queue = build_queue(review_run, "silver", TAXONOMY, "informative")
    assert len(queue) == silver.height
    for item in queue:
        assert f"LLM confidence {by_text[item.text]:.2f} when labelling" in item.why
        assert item.payload()["label_confidence"] == pytest.approx(by_text[item.text], abs=1e-3)
        assert item.contested == (by_text[item.text] < 0.8 or item.payload()["check"]["verdict"] == "reject")
