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


def test_gold_import_reimport_into_its_own_folder_works(tmp_path):
    gold = write_jsonl(tmp_path / "gold.jsonl", toy_records())
    for _ in range(2):
        result = generate("gold", "import", gold, "--out", tmp_path / "g")
        assert result.returncode == 0, result.stderr
    assert "wrote 90 gold sentences" in result.stderr


@pytest.mark.parametrize("rows", [
    [{"text": "She forgets.", "labels": ["none", "cognitive_impairment"]}],
    [{"text": "She forgets.", "labels": []}],
])
def test_gold_import_label_mistakes_are_one_error_line(tmp_path, rows):
    gold = write_jsonl(tmp_path / "gold.jsonl", toy_records()[:3] + rows)
    before = tree_hashes(tmp_path)
    assert_refused(generate("gold", "import", gold, "--out", tmp_path / "g"), "(row 4)")
    assert tree_hashes(tmp_path) == before


def test_gold_import_of_a_non_utf8_jsonl_is_one_error_line(tmp_path):
    gold = tmp_path / "gold.jsonl"
    gold.write_bytes(b'{"text": "ok", "labels": ["none"]}\n{"text": "caf\xe9", "labels": ["none"]}\n')
    before = tree_hashes(tmp_path)
    assert_refused(generate("gold", "import", gold, "--out", tmp_path / "g"), "line 2: not UTF-8")
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


def test_label_with_a_list_typed_text_column_is_one_error_line(tmp_path):
    notes = tmp_path / "notes.parquet"
    pl.DataFrame({"text": [["She forgets.", "Lungs clear."]]}).write_parquet(notes)
    before = tree_hashes(tmp_path)
    assert_refused(generate("label", "--notes", notes, "--out", tmp_path / "run"), "not text")
    assert tree_hashes(tmp_path) == before


def test_label_embedding_with_non_utf8_gold_is_one_error_line(tmp_path):
    notes = tmp_path / "n.txt"
    notes.write_text("She keeps forgetting her keys.\n", encoding="utf-8")
    gold = tmp_path / "gold.jsonl"
    gold.write_bytes(b'{"text": "caf\xe9", "labels": ["none"]}\n')
    before = tree_hashes(tmp_path)
    result = generate("label", "--notes", notes, "--strategy", "embedding", "--gold", gold, "--out", tmp_path / "run")
    assert_refused(result, "line 1: not UTF-8")
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


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
def test_label_finds_a_line_broken_at_row_50001_before_an_engine_starts(tmp_path, kind):
    notes = tmp_path / f"notes.{kind}"
    good = [f"Note {i}: she keeps forgetting her keys." for i in range(50_000)]
    if kind == "jsonl":
        notes.write_text("".join(json.dumps({"text": t}) + "\n" for t in good) + '{"text": "broken\n', encoding="utf-8")
        where = "line 50001 is not valid JSON"
    else:  # a ragged line the table reader would pass over without a word
        notes.write_text("text\n" + "".join(f'"{t}"\n' for t in good) + "a,b\n", encoding="utf-8")
        where = "line 50002 has 2 fields, the header has 1"
    before = tree_hashes(tmp_path)
    result = generate("label", "--notes", notes, "--out", tmp_path / "run", timeout=120)
    assert_refused(result, where)
    assert tree_hashes(tmp_path) == before
