"""The context of a stage that asks no LLM: the run and commit settings the runner reads, no engine, and
nothing of an engine in the manifest."""

from __future__ import annotations

import json

import polars as pl
import pytest

from factory.core.errors import FactoryError
from factory.data.run_folder import Run
from factory.data.store import shard_paths
from factory.stages.local import LOCAL_COMMIT_ROWS, LocalContext
from factory.stages.runner import Task, Unit, run_stage


class Lengths(Task[LocalContext]):
    """A stage without an LLM: one row per word, its length."""

    name, stage, title, key_column = "lengths", "words_lengths", "word lengths", "word"
    row_schema = {"word": pl.String, "length": pl.Int64}

    def __init__(self, words):
        self.words = words

    def identity(self, ctx):
        return {"rule": "len"}

    def units(self, ctx, done):
        return (Unit(word, word) for word in self.words if word not in done)

    def rows(self, unit, results, lineage):
        assert results == []  # no request, no result
        return [{"word": unit.item, "length": len(unit.item)}], []


def test_a_local_context_has_no_engine_and_says_so():
    ctx = LocalContext(run=None)
    with pytest.raises(FactoryError, match="asks no LLM: it has no engine"):
        _ = ctx.engine
    assert ctx.engine_workers() == [] and ctx.manifest_info() == {} and ctx.sampling is None
    assert ctx.commit_rows == LOCAL_COMMIT_ROWS and ctx.commit_seconds == 30.0


def test_a_stage_run_in_it_commits_by_its_row_count_and_records_no_engine(tmp_path):
    words = [f"w{'x' * i}" for i in range(7)]
    with Run.open(tmp_path / "run") as run:
        stats = run_stage(Lengths(words), LocalContext(run, commit_rows=3))
    assert stats.rows == 7 and stats.requests == 0
    assert len(shard_paths(tmp_path / "run" / "words_lengths")) == 3  # 3 + 3 + 1 rows
    table = pl.read_parquet(tmp_path / "run" / "words_lengths").sort("length")
    assert table["length"].to_list() == list(range(1, 8))
    entry = json.loads((tmp_path / "run" / "manifest.json").read_text())["stages"]["words_lengths"]
    assert entry["state"] == "complete" and entry["rows"] == 7
    assert not {"engine", "model_hash", "model_path", "sampling", "workers_used"} & set(entry)
    # a rerun finds every unit committed and writes nothing
    with Run.open(tmp_path / "run") as run:
        again = run_stage(Lengths(words), LocalContext(run))
    assert again.rows == 0 and pl.read_parquet(tmp_path / "run" / "words_lengths").height == 7
