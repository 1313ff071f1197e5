"""compare and clinician review: the reviewed-silver training set, and rows reviewers rejected left out."""

import json

import polars as pl
from click.testing import CliRunner

from factory.cli.trainer import compare
from factory.data.gold import import_gold
from factory.trainer.compare import REVIEWED, CompareOptions, parse_sets, prepare_data, training_rows

from tests.conftest import toy_records, write_jsonl
from tests.data.review_runs import reviewed_run


def _project(tmp_path, taxonomy):
    import_gold(write_jsonl(tmp_path / "gold.jsonl", toy_records()), taxonomy, tmp_path / "gold")
    return reviewed_run(tmp_path / "run")


def test_parse_sets_knows_the_reviewed_set():
    assert parse_sets("reviewed+gold,gold+silver+reviewed") == ["gold+reviewed", "gold+silver+reviewed"]


def test_reviewed_set_and_rejected_rows(tmp_path, taxonomy):
    run = _project(tmp_path, taxonomy)
    opts = CompareOptions(gold_dir=tmp_path / "gold", out_dir=tmp_path / "exp", silver_dirs=[run / "silver"],
                          sets=parse_sets("gold,silver,gold+reviewed"), models=["tfidf"], seeds=[0],
                          cache_dir=tmp_path / "cache", test_fraction=0.25)
    data = prepare_data(opts, taxonomy)
    assert data.sets == ["gold", "silver", "gold+reviewed"]  # no -sel variant of a reviewed set
    # 12 silver rows, "He is agitated" rejected by dr_a: left out of every set
    assert len(data.synthetic["silver"]) == 11
    assert not any(t.startswith("He is agitated") for t in data.synthetic["silver"].texts)
    assert data.review["rejected"] == {"silver": 1}
    # accepted by both / corrected / accepted / accepted; the donepezil row (reviewers disagree) is left out
    reviewed = dict(zip(data.synthetic[REVIEWED].texts, data.synthetic[REVIEWED].labels))
    assert len(reviewed) == 4 and data.review["disagreed"] == 1
    assert reviewed["MoCA today was 19/30."] == ["cognitive_assessment", "diagnostic_tests"]
    assert reviewed["She keeps forgetting recent conversations."] == ["cognitive_impairment"]
    assert not any(t.startswith("He was started") for t in reviewed)
    rows, _ = training_rows(data, "gold+reviewed", None, 1.0, 0)
    assert rows.sources.count(REVIEWED) == 4 and rows.sources.count("silver") == 0
    assert any("reviewer rejected: 1" in n for n in data.notes)


def test_compare_cli_shows_reviewed_set_and_rejected_count(tmp_path, taxonomy):
    run = _project(tmp_path, taxonomy)
    out = tmp_path / "exp"
    result = CliRunner().invoke(compare, [str(a) for a in [
        "--gold", tmp_path / "gold", "--silver", run / "silver", "--sets", "gold,gold+silver,gold+reviewed",
        "--models", "tfidf", "--seeds", "0", "--test-fraction", "0.25", "--out", out, "--cache-dir", tmp_path / "cache"]])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "gold+reviewed" in result.output
    assert "rows reviewers rejected, left out of every set: silver 1" in (out / "report.md").read_text()
    metrics = pl.read_parquet(out / "metrics.parquet")
    assert {"gold", "gold+silver", "gold+silver-sel", "gold+reviewed"} == set(metrics["training_set"])
    row = metrics.filter((pl.col("training_set") == "gold+reviewed") & (pl.col("scope") == "micro")).row(0, named=True)
    assert row["n_reviewed"] == 4 and row["n_silver"] == 0
    silver = metrics.filter((pl.col("training_set") == "gold+silver") & (pl.col("scope") == "micro")).row(0, named=True)
    assert silver["n_silver"] == 11
    config = json.loads((out / "config.json").read_text())
    assert config["review"]["rejected"] == {"silver": 1} and config["review"]["reviewed_in_set"] == 4


def test_reviewed_set_without_reviews_is_skipped_with_a_note(tmp_path, taxonomy):
    import_gold(write_jsonl(tmp_path / "gold.jsonl", toy_records()), taxonomy, tmp_path / "gold")
    run = reviewed_run(tmp_path / "run", silver=False)
    opts = CompareOptions(gold_dir=tmp_path / "gold", out_dir=tmp_path / "exp", silver_dirs=[run / "silver"],
                          sets=parse_sets("gold,gold+reviewed"), models=["tfidf"], cache_dir=tmp_path / "cache",
                          test_fraction=0.25)
    data = prepare_data(opts, taxonomy)
    assert data.sets == ["gold"] and len(data.synthetic["silver"]) == 12
    assert any("skipped set gold+reviewed: no reviewed silver rows" in n for n in data.notes)


def test_reviewed_rows_already_promoted_to_gold_are_not_counted_twice():
    from factory.data.rows import Rows
    from factory.trainer.compare import _without_promoted

    gold_train = Rows(["g1", "g2"], ["gold", "gold"], ["She forgets names.", "MoCA 20/30."], [["cognitive_impairment"],
                                                                                               ["cognitive_assessment"]])
    reviewed = Rows(["r1", "r2"], ["reviewed"] * 2, ["she forgets  names.", "Lungs are clear."], [["cognitive_impairment"],
                                                                                                ["none"]])
    kept, promoted = _without_promoted(reviewed, gold_train)
    assert promoted == 1 and kept.texts == ["Lungs are clear."]
