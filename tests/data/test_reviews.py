"""Clinician review decisions as every command reads them: one current decision per (row, reviewer), undo,
text changes, and the consensus of several reviewers."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl

from factory.data.reviews import (Event, consensus, current_decisions, has_reviews, resolve,
                                  reviewer_rejected_row_ids)
from factory.data.store import read_dataset, shard_paths
from tests.data.review_runs import reviewed_run, write_decisions

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _event(n, decision, reviewer="dr_a", row="r1", retracts=None, corrected=()):
    return Event(f"e{n}", row, "sha", "silver", reviewer, decision, ("none",), corrected, False, "", retracts,
                 T0 + timedelta(seconds=n))


def test_the_latest_decision_not_taken_back_is_current_per_reviewer():
    events = [_event(3, "correct", corrected=("p",)), _event(1, "accept"), _event(2, "reject", reviewer="dr_b"),
              _event(4, "retract", retracts="e3"), _event(5, "skip"), _event(6, "unsure", row="r2")]
    current = resolve(events)  # given out of order: time decides
    assert {k: e.event_id for k, e in current.items()} == {("r1", "dr_a"): "e1", ("r1", "dr_b"): "e2",
                                                           ("r2", "dr_a"): "e6"}
    assert current[("r1", "dr_a")].final_labels == ("none",) and current[("r1", "dr_b")].final_labels == ()
    assert _event(7, "correct", corrected=("p", "q")).final_labels == ("p", "q")


def _row_of(run, dataset, start):
    return next(r["row_id"] for r in read_dataset(run / dataset).iter_rows(named=True) if r["text"].startswith(start))


def test_consensus_of_several_reviewers(tmp_path):
    run = reviewed_run(tmp_path / "run")
    write_decisions(run, "silver", [("Lungs are clear", "dr_b", "unsure", (), False)])  # deferred: no verdict
    verdicts = consensus(current_decisions(run, "silver"))
    row = lambda start: _row_of(run, "silver", start)  # noqa: E731
    assert verdicts.agreed[row("She keeps forgetting")] == ("cognitive_impairment",)
    assert verdicts.agreed[row("MoCA today")] == ("cognitive_assessment", "diagnostic_tests")
    assert verdicts.reviewers[row("Lungs are clear")] == ("dr_a",)
    assert verdicts.rejected == {row("He is agitated")} == reviewer_rejected_row_ids(run, "silver")
    assert verdicts.disagreed == {row("He was started on donepezil")}
    assert verdicts.reviewed == 6 and verdicts.phi_flagged == set()
    bronze = consensus(current_decisions(run, "bronze"))
    assert bronze.phi_flagged == {_row_of(run, "bronze", "Her son fills")}
    assert bronze.rejected == {_row_of(run, "bronze", "Clock drawing")}


def test_a_decision_applies_only_while_the_text_is_unchanged(tmp_path):
    run = reviewed_run(tmp_path / "run", bronze=False)
    assert has_reviews(run, "silver") and not has_reviews(run, "bronze")
    assert current_decisions(run, "bronze").height == 0
    agitated = _row_of(run, "silver", "He is agitated")
    assert agitated in current_decisions(run, "silver")["row_id"].to_list()
    shard = shard_paths(run / "silver")[0]
    silver = pl.read_parquet(shard)
    silver.with_columns(pl.when(pl.col("row_id") == agitated).then(pl.lit("He is calm.")).otherwise(pl.col("text"))
                        .alias("text")).write_parquet(shard)
    decisions = current_decisions(run, "silver")
    assert agitated not in decisions["row_id"].to_list() and decisions.height == 7
    assert reviewer_rejected_row_ids(run, "silver") == set()
    only_b = current_decisions(run, "silver", reviewer="dr_b")
    assert set(only_b["reviewer"]) == {"dr_b"} and only_b.height == 3
    assert current_decisions(run, "silver", rows=read_dataset(run / "silver")).equals(decisions)
