"""gold import --from-review: reviewed silver rows become gold train rows; the frozen test split stays."""

import json

from click.testing import CliRunner

from factory.cli.trainer import gold
from factory.data.gold import import_gold, load_gold
from factory.data.promote import PROMOTED_FILE, promote_reviewed
from factory.data.rows import text_row_id
from factory.data.split import SPLIT_FILE, load_or_create_split

from tests.conftest import toy_records, write_jsonl
from tests.data.review_runs import reviewed_run


def _test_ids(gold_dir):
    split = json.loads((gold_dir / SPLIT_FILE).read_text())
    return {rid for rid, side in split["assignments"].items() if side == "test"}, split


def test_promote_grows_gold_and_keeps_the_test_split(tmp_path, taxonomy):
    gold_dir = tmp_path / "gold"
    import_gold(write_jsonl(tmp_path / "gold.jsonl", toy_records()), taxonomy, gold_dir)
    load_or_create_split(load_gold(gold_dir, taxonomy), gold_dir, taxonomy, test_fraction=0.25)
    test_before, _ = _test_ids(gold_dir)
    run = reviewed_run(tmp_path / "run")

    summary = promote_reviewed(run, gold_dir, taxonomy)
    assert (summary.promoted, summary.rejected, summary.disagreed) == (4, 1, 1)
    assert summary.reviewers == {"dr_a": 3, "dr_b": 2}
    after = load_gold(gold_dir, taxonomy)
    assert len(after) == 90 + 4
    labels = dict(zip(after.texts, after.labels))
    assert labels["MoCA today was 19/30."] == ["cognitive_assessment", "diagnostic_tests"]  # the corrected labels
    assert "He is agitated in the evenings." not in labels and "He was started on donepezil 5 mg nightly." not in labels
    test_after, split = _test_ids(gold_dir)
    assert test_after == test_before  # frozen: the same test rows
    # compare accepts the extended split as is (its fingerprint matches the new gold)
    assert load_or_create_split(after, gold_dir, taxonomy).assignments == split["assignments"]
    promoted = [json.loads(line) for line in (gold_dir / PROMOTED_FILE).read_text().splitlines()]
    assert len(promoted) == 4 and {tuple(p["reviewers"]) for p in promoted} == {("dr_a", "dr_b"), ("dr_a",), ("dr_b",)}
    assert all(split["assignments"][p["row_id"]] == "train" for p in promoted)  # new rows go to train

    again = promote_reviewed(run, gold_dir, taxonomy)  # deduplicated against gold: nothing new
    assert again.promoted == 0 and again.already_gold == 4
    assert len(load_gold(gold_dir, taxonomy)) == 94 and _test_ids(gold_dir)[0] == test_before


def test_gold_import_from_review_cli(tmp_path, taxonomy):
    gold_dir = tmp_path / "gold"
    import_gold(write_jsonl(tmp_path / "gold.jsonl", toy_records()), taxonomy, gold_dir)
    run = reviewed_run(tmp_path / "run")
    result = CliRunner().invoke(gold, ["import", "--from-review", str(run), "--out", str(gold_dir)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "4 promoted to gold" in result.output and "1 not promoted because reviewers disagree" in result.output
    assert "froze a test split" in result.output  # none existed: frozen on the old gold before promoting
    test_ids, split = _test_ids(gold_dir)
    old_ids = {text_row_id(r["text"]) for r in toy_records()}
    assert test_ids <= old_ids and len(split["assignments"]) == 94
    bad = CliRunner().invoke(gold, ["import", "--out", str(gold_dir)])
    assert bad.exit_code != 0


def test_gold_import_from_review_defaults_to_the_runs_own_gold(tmp_path, taxonomy):
    run = reviewed_run(tmp_path / "run")
    import_gold(write_jsonl(tmp_path / "gold.jsonl", toy_records()), taxonomy, run / "gold")  # as `make demo` does
    result = CliRunner().invoke(gold, ["import", "--from-review", str(run)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "4 promoted to gold" in result.output
    assert len(load_gold(run / "gold", taxonomy)) == 94 and (run / "gold" / "promoted.jsonl").is_file()
