"""The command line as a user meets it: help texts, and one-line errors for bad input."""

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

GENERATE = [sys.executable, str(ROOT / "bin" / "generate")]


def generate(*args, cwd=None):
    return subprocess.run([*GENERATE, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=120)


@pytest.mark.parametrize("command", [[], ["label"], ["synthesize"], ["schemas"], ["prepare-model"]])
def test_help_explains_every_command(command):
    result = generate(*command, "--help")
    assert result.returncode == 0
    assert "Usage:" in result.stdout
    if command == ["label"]:
        for flag in ("--notes", "--text-column", "--id-column", "--out", "--model", "--engine", "--taxonomy", "--seed", "--limit"):
            assert flag in result.stdout


def _assert_one_line_error(result, fragment):
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and fragment in lines[0]
    assert "Traceback" not in result.stderr


def test_missing_notes(tmp_path):
    _assert_one_line_error(generate("label", "--notes", tmp_path / "nope", "--out", tmp_path / "run"), "notes not found")


def test_wrong_text_column(tmp_path):
    notes = tmp_path / "notes.csv"
    notes.write_text("body\nShe forgets names.\n", encoding="utf-8")
    result = generate("label", "--notes", notes, "--text-column", "note_text", "--out", tmp_path / "run")
    _assert_one_line_error(result, "no column 'note_text'")


def test_invalid_taxonomy(tmp_path, notes_dir):
    taxonomy = tmp_path / "taxonomy.json"
    taxonomy.write_text(json.dumps({"categories": [{"id": "x", "definition": ""}], "none": {"id": "none", "definition": "n"}}))
    result = generate("label", "--notes", notes_dir, "--taxonomy", taxonomy, "--out", tmp_path / "run")
    _assert_one_line_error(result, "definition must be a non-empty string")


def test_model_folder_that_is_not_a_model(tmp_path, notes_dir):
    fake = tmp_path / "model"
    fake.mkdir()
    (fake / "README.md").write_text("not a model")
    result = generate("synthesize", "--model", fake, "--out", tmp_path / "run")
    _assert_one_line_error(result, "is not a Hugging Face model folder")
    assert not (tmp_path / "run").exists()  # nothing half-made


def test_out_that_is_a_file(tmp_path, notes_dir):
    out = tmp_path / "file.txt"
    out.write_text("keep me")
    result = generate("label", "--notes", notes_dir, "--out", out)
    _assert_one_line_error(result, "--out must be a folder")
    assert out.read_text() == "keep me"


def test_schemas_command_writes_the_derived_schemas(tmp_path):
    result = generate("schemas", "--out", tmp_path)
    assert result.returncode == 0
    label = json.loads((tmp_path / "label.schema.json").read_text())
    assert label["additionalProperties"] is False and set(label["required"]) == {"evidence", "labels"}
