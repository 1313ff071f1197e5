"""The review order on items made by hand: contested rows first, then round-robin over label buckets with the
rarest label deciding a row's bucket; a seeded random order; each row's note context; one clear error for an
unknown order or run. (The queue of a real run folder: tests/review/test_store_queue.py.)"""

from __future__ import annotations

import polars as pl
import pytest

from factory.core.errors import FactoryError
from factory.review.queue import Item, _consistency_details, _note_context, build_queue, informative_order, random_order


def item(row_id: str, labels: list[str], doubt: float = 0.0, contested: bool = False) -> Item:
    return Item(row_id, f"text {row_id}", "sha", labels, "", doubt, contested=contested)


def test_contested_rows_come_first_then_buckets_take_turns_by_doubt(taxonomy):
    common, rare, other = taxonomy.category_ids[:3]
    items = [item("c1", [common], 0.9), item("c2", [common], 0.8), item("c3", [common], 0.7),
             item("r1", [common, rare], 0.1),  # its rarest label is its bucket
             item("o1", [other], 0.2), item("x", [common], 0.1, contested=True)]
    order = [it.row_id for it in informative_order(items, taxonomy)]
    assert order[0] == "x"  # contested, whatever its doubt
    assert {it.row_id: it.bucket for it in items}["r1"] == rare
    # first round: one row per bucket, most doubt first; then the common bucket's rest
    assert order[1:] == ["c1", "o1", "r1", "c2", "c3"]


def test_the_informative_order_does_not_depend_on_the_input_order(taxonomy):
    cats = taxonomy.category_ids
    items = [item(f"r{i}", [cats[i % 4]], doubt=(i % 3) / 3) for i in range(20)]
    forward = [it.row_id for it in informative_order([Item(**vars(i)) for i in items], taxonomy, seed=1)]
    backward = [it.row_id for it in informative_order([Item(**vars(i)) for i in items[::-1]], taxonomy, seed=1)]
    assert forward == backward and sorted(forward) == sorted(it.row_id for it in items)


def test_the_random_order_is_a_seeded_shuffle_independent_of_input_order():
    items = [item(f"r{i:02d}", ["none"]) for i in range(30)]
    ids = lambda seq, seed: [it.row_id for it in random_order(seq, seed)]  # noqa: E731
    assert ids(items, 3) == ids(items[::-1], 3) != ids(items, 4)
    assert ids(items, 3) != sorted(ids(items, 3))


def test_each_silver_row_sees_up_to_two_sentences_of_its_note_on_each_side():
    rows = pl.DataFrame({"row_id": [f"s{i}" for i in range(5)] + ["t0"], "text": [f"S{i}." for i in range(5)] + ["T0."],
                         "note_id": ["n"] * 5 + ["m"], "sentence_index": [4, 0, 1, 3, 2, 0]})
    context = _note_context(rows)
    assert context["s4"] == (["S1.", "S2."], ["S3.", "S0."])  # by sentence index, not by row order
    assert context["s1"] == ([], ["S2.", "S4."]) and context["t0"] == ([], [])


def test_a_consistency_vote_becomes_doubt_and_a_contested_flag():
    unanimous = {"agreement": 1.0, "silver_agrees": True, "majority_labels": ["a"], "votes": '{"a": 1.0}',
                 "samples": 5, "valid_samples": 5, "logprob_confidence": 0.95}
    details, doubt, contested = _consistency_details(unanimous)
    assert not contested and doubt == pytest.approx(0.05) and details["votes"] == {"a": 1.0}
    assert _consistency_details({**unanimous, "silver_agrees": False})[1:] == (pytest.approx(2.05), True)
    assert _consistency_details({**unanimous, "logprob_confidence": 0.5})[2] is True  # a low confidence is doubt
    assert _consistency_details({**unanimous, "agreement": 0.6})[2] is True
    assert _consistency_details(None) == (None, 0.5, False)  # never sampled: no evidence either way


def test_an_unknown_order_or_run_is_one_clear_error(tmp_path, taxonomy):
    with pytest.raises(FactoryError, match="unknown order 'newest'; known: informative, random"):
        build_queue(tmp_path, "silver", taxonomy, order="newest")
    with pytest.raises(FactoryError, match="run folder not found"):
        build_queue(tmp_path / "missing", "silver", taxonomy)
