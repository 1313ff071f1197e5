"""quality: the LLM's silver labels against clinician review and gold (precision, kappa with bootstrap
intervals), and the calibration of the confidence signals against acceptance."""

import json

import numpy as np
from click.testing import CliRunner

from factory.cli.main import main
from factory.data.gold import read_gold_any
from factory.quality.llm_vs_review import Pairs, build, collect, kappa_table, reliability

from tests.conftest import write_jsonl
from tests.data.review_runs import reviewed_run


def _gold(tmp_path, taxonomy):
    path = write_jsonl(tmp_path / "gold.jsonl", [
        {"text": "She keeps forgetting recent conversations.", "labels": ["cognitive_impairment"]},
        {"text": "MoCA today was 19/30.", "labels": ["cognitive_assessment"]},
        {"text": "Her son fills her pill box every week.", "labels": ["requiring_assistance"]}])
    return path, read_gold_any(path, taxonomy)


def test_collect_precision_kappa_and_calibration(tmp_path, taxonomy):
    run = reviewed_run(tmp_path / "run")
    _, gold = _gold(tmp_path, taxonomy)
    report = collect(run, taxonomy, gold, n_boot=200)
    assert report["reviews"] == 8 and report["rows"] == 6 and report["reviewers"] == ["dr_a", "dr_b"]
    precision = report["llm_vs_reviewer"]["precision"]
    assert precision["all"]["value"] == 0.75 and precision["all"]["n"] == 8
    assert precision["cognitive_assessment"]["value"] == 1.0  # kept in the correction
    assert precision["treatment_and_care"]["value"] == 0.5 and precision["neuropsychiatric_symptoms"]["value"] == 0.0
    kappa = report["llm_vs_reviewer"]["kappa"]["all"]
    lo, hi = kappa["ci95"]
    assert lo is not None and lo <= kappa["value"] <= hi <= 1
    assert report["between_reviewers"]["pairs"] == 2  # the two rows both reviewers decided on
    assert report["llm_vs_gold"]["rows"] == 2  # silver sentences that are gold sentences
    agreement = report["calibration"]["agreement"]
    assert agreement["n"] == 8 and 0 <= agreement["ece"] <= 1 and sum(b["n"] for b in agreement["curve"]) == 8
    assert report["calibration"]["logprob_confidence"]["n"] == 8
    assert collect(run, taxonomy, gold, n_boot=200) == report  # seeded: the same intervals every time


def test_kappa_and_reliability_basics():
    labels = [["a"], ["b"], ["a", "b"], ["none"]] * 10
    same = kappa_table(Pairs(labels, labels), ["a", "b", "none"], n_boot=50)
    assert same["all"]["value"] == 1.0 and same["all"]["ci95"] == [1.0, 1.0]
    rng = np.random.default_rng(0)
    confidence = rng.uniform(size=20000)
    calibrated = reliability(confidence, rng.uniform(size=20000) < confidence)
    assert calibrated["ece"] < 0.02
    assert reliability(np.full(100, 0.9), np.zeros(100))["ece"] == 0.9


def test_no_reviews_writes_nothing(tmp_path, taxonomy):
    run = reviewed_run(tmp_path / "run", silver=False)
    assert build(run, taxonomy, None, tmp_path / "out") == (None, [])


def test_quality_cli_shows_kappa_and_writes_a_reliability_curve(tmp_path, taxonomy):
    run = reviewed_run(tmp_path / "run")
    (run / "manifest.json").write_text(json.dumps({"run_id": "reviewed", "stages": {}}))  # quality writes its noise flags
    gold_path, _ = _gold(tmp_path, taxonomy)
    result = CliRunner().invoke(main, ["quality", "--run", str(run), "--gold", str(gold_path)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "LLM vs reviewer: Cohen's kappa" in result.output and "reviewer vs reviewer: kappa" in result.output
    assert "calibration of agreement against acceptance: ECE" in result.output
    png = run / "quality" / "reliability.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((run / "quality" / "llm_vs_review.json").read_text())
    assert summary["llm_vs_reviewer"]["kappa"]["all"]["ci95"][0] is not None
    assert "| **all categories** |" in (run / "quality" / "llm_vs_review.md").read_text()


def test_quality_cli_without_reviews_says_so_in_one_line(tmp_path):
    run = reviewed_run(tmp_path / "run", silver=False, bronze=False)
    (run / "manifest.json").write_text("{}")
    result = CliRunner().invoke(main, ["quality", "--run", str(run)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert sum("no clinician reviews of silver" in line for line in result.output.splitlines()) == 1
    assert not (run / "quality" / "reliability.png").exists()


def test_too_few_decisions_are_said_not_shown_as_a_degenerate_interval():
    from factory.quality.llm_vs_review import _fmt

    assert _fmt({"value": 0.0, "ci95": [0.0, 0.0], "n": 10}) == "0.00 (n=10: too few decisions for an interval)"
    assert _fmt({"value": 0.5, "ci95": [0.3, 0.7], "n": 12}).endswith("too few decisions for an interval)")
    assert _fmt({"value": 0.5, "ci95": [0.3, 0.7], "n": 40}) == "0.50 [0.30, 0.70]"
    assert _fmt({"value": None, "ci95": [None, None], "n": 0}) == "n/a"


def test_without_consistency_the_label_stages_own_confidence_is_calibrated(tmp_path, taxonomy):
    import shutil

    import polars as pl

    run = reviewed_run(tmp_path / "run")
    shutil.rmtree(run / "silver_consistency")  # consistency never ran
    for shard in (run / "silver").glob("part-*.parquet"):
        rows = pl.read_parquet(shard)
        rows.with_columns(logprob_confidence=pl.Series([0.95 - 0.1 * i for i in range(rows.height)])).write_parquet(shard)
    report, paths = build(run, taxonomy, None, tmp_path / "out", n_boot=50)
    label = report["calibration"]["label_logprob_confidence"]
    assert set(report["calibration"]) == {"label_logprob_confidence"}
    assert label["n"] == 8 and 0 <= label["ece"] <= 1 and sum(b["n"] for b in label["curve"]) == 8
    assert (tmp_path / "out" / "reliability.png") in paths
    assert "`label_logprob_confidence`: expected calibration error" in (tmp_path / "out" / "llm_vs_review.md").read_text()
