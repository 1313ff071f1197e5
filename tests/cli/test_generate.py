"""`label` and `synthesize` (factory/cli/generate.py): bad notes, taxonomy, model or output folder is one
`error:` line before an engine starts, and nothing that existed changes."""

from __future__ import annotations

import json

import polars as pl
import pytest

from tests.cli.helpers import assert_refused, generate, tree_hashes


def test_missing_notes(tmp_path):
    assert_refused(generate("label", "--notes", tmp_path / "nope", "--out", tmp_path / "run"), "notes not found")


def test_wrong_text_column(tmp_path):
    notes = tmp_path / "notes.csv"
    notes.write_text("body\nShe forgets names.\n", encoding="utf-8")
    result = generate("label", "--notes", notes, "--text-column", "note_text", "--out", tmp_path / "run")
    assert_refused(result, "no column 'note_text'")


def test_invalid_taxonomy(tmp_path, notes_dir):
    taxonomy = tmp_path / "taxonomy.json"
    taxonomy.write_text(json.dumps({"categories": [{"id": "x", "definition": ""}], "none": {"id": "none", "definition": "n"}}))
    result = generate("label", "--notes", notes_dir, "--taxonomy", taxonomy, "--out", tmp_path / "run")
    assert_refused(result, "definition must be a non-empty string")


def test_model_folder_that_is_not_a_model(tmp_path, notes_dir):
    fake = tmp_path / "model"
    fake.mkdir()
    (fake / "README.md").write_text("not a model")
    result = generate("synthesize", "--model", fake, "--out", tmp_path / "run")
    assert_refused(result, "is not a Hugging Face model folder")
    assert not (tmp_path / "run").exists()  # nothing half-made


def test_out_that_is_a_file(tmp_path, notes_dir):
    out = tmp_path / "file.txt"
    out.write_text("keep me")
    result = generate("label", "--notes", notes_dir, "--out", out)
    assert_refused(result, "--out must be a folder")
    assert out.read_text() == "keep me"


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
