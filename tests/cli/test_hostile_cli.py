"""Hostile commands of a new user (issue 13): one `error:` line, exit code 2, and no file that existed before
changed (the folder is hashed before and after)."""

from __future__ import annotations

import json

import polars as pl
import pytest

from factory.data.store import SILVER_SCHEMA, ShardWriter
from tests.cli.helpers import assert_refused, generate, tree_hashes
from tests.conftest import toy_records, write_jsonl
from tests.quality.test_export import _make_run


@pytest.fixture
def run_with_silver(tmp_path):
    run = tmp_path / "run"
    writer = ShardWriter(run / "silver", SILVER_SCHEMA)
    for start in (0, 2):
        writer.write([{"row_id": f"{i:032x}", "source": "silver", "text": f"Sentence {i}.", "labels": ["none"]}
                      for i in range(start, start + 2)])
    return run


def test_gold_import_into_a_runs_silver_folder_deletes_nothing(tmp_path, run_with_silver):
    gold = write_jsonl(tmp_path / "gold.jsonl", toy_records())
    before = tree_hashes(tmp_path)
    result = generate("gold", "import", gold, "--out", run_with_silver / "silver")
    assert_refused(result, "not written by `gold import`", "nothing was changed")
    assert tree_hashes(tmp_path) == before
    assert len(list((run_with_silver / "silver").glob("part-*.parquet"))) == 2


def test_gold_import_into_a_user_folder_of_parquet_deletes_nothing(tmp_path):
    gold = write_jsonl(tmp_path / "gold.jsonl", toy_records())
    mine = tmp_path / "analysis"
    mine.mkdir()
    for name in ("cohort.parquet", "labels.parquet"):
        pl.DataFrame({"x": [1, 2]}).write_parquet(mine / name)
    before = tree_hashes(tmp_path)
    assert_refused(generate("gold", "import", gold, "--out", mine), str(mine))
    assert tree_hashes(tmp_path) == before


@pytest.mark.parametrize("inside", ["bronze/bundle", "silver", "failed/x", "bronze_phi/share", "silver_check"])
def test_export_into_the_runs_dataset_folders_is_refused(tmp_path, inside):
    run, _, _ = _make_run(tmp_path)
    before = tree_hashes(tmp_path)
    result = generate("export", "--run", run, "--out", run / inside)
    assert_refused(result, "inside the run's dataset folder")
    assert tree_hashes(tmp_path) == before


def test_compare_out_pointing_at_a_file_is_refused_before_training(tmp_path):
    gold = write_jsonl(tmp_path / "gold.jsonl", toy_records())
    assert generate("gold", "import", gold, "--out", tmp_path / "g").returncode == 0
    (tmp_path / "report.md").write_text("my report\n")
    before = tree_hashes(tmp_path)
    result = generate("compare", "--gold", tmp_path / "g", "--classifiers", "tfidf", "--seeds", "0",
                      "--out", tmp_path / "report.md")
    assert_refused(result, "is a file")
    assert tree_hashes(tmp_path) == before


def test_check_phi_with_broken_notes_names_the_line_and_writes_nothing(tmp_path):
    run, _, _ = _make_run(tmp_path)
    notes = tmp_path / "notes.jsonl"
    notes.write_text("".join(json.dumps({"text": f"Note {i}."}) + "\n" for i in range(300)) + "{broken\n",
                     encoding="utf-8")
    before = tree_hashes(tmp_path)
    assert_refused(generate("check-phi", "--run", run, "--notes", notes, "--no-ner"), "line 301 is not valid JSON")
    assert tree_hashes(tmp_path) == before


def test_check_phi_reading_notes_advances_within_one_huge_note(tmp_path):
    from factory.quality.privacy import _note_texts_with_progress

    class Recorder:
        def __init__(self):
            self.completed = []

        def update(self, task, completed):
            self.completed.append(completed)

    notes = tmp_path / "big.txt"
    text = "".join(f"Patient {i} reports forgetting appointments and needs reminders. " for i in range(3000))
    notes.write_text(text, encoding="utf-8")  # one line, ~200 KB
    progress = Recorder()
    texts = list(_note_texts_with_progress(notes, "text", progress, task=0))
    assert len(texts) == 3000
    assert len(set(progress.completed)) > 1000  # moves sentence by sentence, not once per note
    assert progress.completed[-1] == len(text) and progress.completed == sorted(progress.completed)
