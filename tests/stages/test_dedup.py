"""Dedup as a stage run by the runner: lock, manifest, exactly-once resume and the interrupted mark."""

from __future__ import annotations

import json

import polars as pl
import pytest

from factory.core.errors import FactoryError
from factory.data.run_folder import Run
from factory.data.side_tables import SideTable, duplicate_row_ids
from factory.data.store import read_dataset
from factory.stages.dedup import DedupTask, Reference, run_dedup
from factory.stages.runner import run_local
from tests.stages.local_runs import BRONZE_TEXTS, WordEncoder, add_bronze, manifest, stop_at


def test_a_killed_dedup_is_marked_interrupted_and_a_rerun_judges_every_row_exactly_once(tmp_path):
    run = tmp_path / "run"
    rows = add_bronze(run, BRONZE_TEXTS)
    encoder = WordEncoder()
    with pytest.raises(KeyboardInterrupt):
        run_local(stop_at(DedupTask(Reference([], [], []), 0.95, encoder), 4), run)
    stage = manifest(run)["stages"]["bronze_dedup"]
    assert stage["state"] == "interrupted" and stage["stopped_by"] == "KeyboardInterrupt"
    assert read_dataset(run / "bronze_dedup").height == 3  # the units finished before the stop are kept
    with Run.open(run):  # the stopped stage let go of the run
        pass

    summary = run_dedup(run, Reference([], [], []), threshold=0.95, embedder=encoder)
    table = read_dataset(run / "bronze_dedup")
    assert sorted(table["row_id"]) == sorted(r["row_id"] for r in rows)  # each row once: 3 kept + 3 new
    stage = manifest(run)["stages"]["bronze_dedup"]
    assert stage["state"] == "complete" and stage["skipped"] == 3 and stage["flagged"] == summary["flagged"] == 1
    assert duplicate_row_ids(run) == {rows[4]["row_id"]}  # the exact copy of row 2
    assert json.loads((run / "bronze_dedup" / "summary.json").read_text())["rows"] == len(rows)


def test_a_rerun_with_nothing_new_does_not_embed_and_appended_bronze_is_judged_alone(tmp_path):
    run = tmp_path / "run"
    rows = add_bronze(run, BRONZE_TEXTS[:4])
    encoder = WordEncoder()
    run_dedup(run, Reference([], [], []), threshold=0.95, embedder=encoder)
    calls = encoder.calls
    run_dedup(run, Reference([], [], []), threshold=0.95, embedder=encoder)
    assert encoder.calls == calls and read_dataset(run / "bronze_dedup").height == 4  # nothing judged twice

    later = add_bronze(run, [BRONZE_TEXTS[0].upper()], start=50)  # a later synthesize wave copies row 0
    summary = run_dedup(run, Reference([], [], []), threshold=0.95, embedder=encoder)
    assert read_dataset(run / "bronze_dedup").height == 5 and summary["rows"] == 5
    current = SideTable(run, "bronze", "dedup").current()
    copy = current.filter(pl.col("row_id") == later[0]["row_id"]).row(0, named=True)
    assert copy["duplicate"] and copy["dup_of"] == rows[0]["row_id"] and copy["reason"] == "exact"


def test_a_rerun_with_another_threshold_judges_again_and_the_latest_verdict_wins(tmp_path):
    run = tmp_path / "run"
    add_bronze(run, BRONZE_TEXTS)
    encoder = WordEncoder()
    run_dedup(run, Reference([], [], []), threshold=0.95, embedder=encoder)
    run_dedup(run, Reference([], [], []), threshold=0.2, embedder=encoder)  # near-anything is a duplicate now
    current = SideTable(run, "bronze", "dedup").current()
    assert current.height == len(BRONZE_TEXTS) and set(current["threshold"]) == {0.2}
    assert manifest(run)["stages"]["bronze_dedup"]["threshold"] == 0.2


def test_dedup_of_a_run_without_bronze_writes_nothing(tmp_path):
    (tmp_path / "run").mkdir()
    with pytest.raises(FactoryError, match="no bronze shards .*bin/generate synthesize"):
        run_dedup(tmp_path / "run", Reference([], [], []), embedder=WordEncoder())
    assert list((tmp_path / "run").iterdir()) == []
