"""`gold import`, `compare`, `train`, `predict` on the command line (factory/cli/trainer.py): what they print,
and their mistakes as one `error:` line. The work itself: tests/trainer/ and tests/test_api.py."""

from __future__ import annotations

import pytest

from tests.cli.helpers import assert_refused, generate, generate_in_process, tree_hashes
from tests.conftest import toy_records, write_jsonl


def test_gold_import_needs_a_file_or_a_reviewed_run(tmp_path):
    assert_refused(generate_in_process("gold", "import", "--out", tmp_path / "g"), "a gold file PATH or --from-review")
    assert not (tmp_path / "g").exists()


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


def test_train_prints_its_scores_and_the_model_folder(tmp_path):
    gold = write_jsonl(tmp_path / "gold.jsonl", toy_records())
    assert generate_in_process("gold", "import", gold, "--out", tmp_path / "g").returncode == 0
    result = generate_in_process("train", "--gold", tmp_path / "g", "--out", tmp_path / "m")
    assert result.returncode == 0, result.stderr
    said = " ".join(result.stderr.split())  # the console wraps long lines
    assert "trained tfidf on gold" in said and f"saved to {tmp_path / 'm'}" in said
    assert (tmp_path / "m" / "meta.json").is_file()
    # --gold here is an imported folder: the file it came from is refused, in one line
    assert_refused(generate_in_process("train", "--gold", gold, "--out", tmp_path / "m2"), "is a file; give a folder")
