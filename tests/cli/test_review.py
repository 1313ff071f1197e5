"""`review` on the command line (factory/cli/review.py): its inputs are checked before the server starts.
The app itself: tests/review/."""

from __future__ import annotations

from tests.cli.helpers import assert_refused, generate_in_process, tree_hashes


def test_review_refuses_a_gold_file_where_it_needs_an_imported_gold_folder(tmp_path):
    (tmp_path / "run").mkdir()
    gold = tmp_path / "gold.jsonl"
    gold.write_text('{"text": "She forgets.", "labels": ["none"]}\n', encoding="utf-8")
    before = tree_hashes(tmp_path)
    assert_refused(generate_in_process("review", "--run", tmp_path / "run", "--gold", gold),
                   "--gold: gold folder", "is a file; give a folder")
    assert_refused(generate_in_process("review", "--run", tmp_path / "run", "--gold", tmp_path / "none"),
                   "no gold data in", "gold import PATH")
    assert tree_hashes(tmp_path) == before


def test_review_needs_a_run_folder(tmp_path):
    assert_refused(generate_in_process("review"), "Missing option '--run'")
    assert_refused(generate_in_process("review", "--run", tmp_path / "nope"), "run folder not found")
