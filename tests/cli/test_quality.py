"""`dedup` and `quality` on the command line (factory/cli/quality.py): what they print and where; their work:
tests/quality/ and tests/test_api.py."""

from __future__ import annotations

from tests.cli.helpers import assert_refused, generate_in_process
from tests.quality_helpers import make_run


def test_dedup_prints_its_summary_and_the_side_table(tmp_path, notes_dir, taxonomy, make_context):
    run = make_run(notes_dir, taxonomy, make_context, tmp_path / "run")
    result = generate_in_process("dedup", "--run", run)
    assert result.returncode == 0, result.stderr
    assert "flagged as duplicates" in result.stderr and "nothing deleted" in result.stderr  # the summary: the console
    assert result.stdout.splitlines()[-1] == str(run / "bronze_dedup")


def test_quality_without_a_run_or_a_subcommand_is_one_line():
    assert_refused(generate_in_process("quality"), "quality needs --run DIR (or the `strategies` subcommand)")


def test_quality_strategies_needs_no_run_but_its_gold(tmp_path):
    message = assert_refused(generate_in_process("quality", "strategies", "--gold", tmp_path / "nope"), "--gold")
    assert "gold not found" in message  # a file or folder here: not the imported-folder check of `compare`
