import json

import numpy as np
import polars as pl
import pytest

from factory.stages.verify import run_check
from factory.trainer.compare import CompareOptions, prepare_data
from factory.stages.consistency import run_consistency
from factory.quality.dedup import Reference, run_dedup
from factory.engines.base import Sampling
from factory.core.errors import FactoryError
from factory.data.gold import import_gold
from factory.quality.report import build_report, distinct_n, embedding_spread, label_shares, noise_flags
from factory.data.store import read_dataset
from tests.conftest import FakeEngine, json_output, toy_records, write_jsonl
from tests.quality_helpers import keyword_labeller, make_run, release


def _judge(request, sampling, call):
    user = request.chat[-1]["content"]
    verdict = "reject" if "forgetting" in user or "Generated sentence number 1" in user else "accept"
    return json_output({"verdict": verdict, "reason": "judged by a rule"})


@pytest.fixture
def checked_run(notes_dir, taxonomy, make_context, tmp_path):
    """Silver + bronze, verified, sampled 3 times each, and deduplicated."""
    run = make_run(notes_dir, taxonomy, make_context, tmp_path / "run")
    ctx = make_context(FakeEngine(_judge), out=run)
    run_check(run, "silver", taxonomy, ctx)
    run_check(run, "bronze", taxonomy, ctx)
    release(ctx)
    ctx = make_context(FakeEngine(keyword_labeller), out=run, sampling=Sampling(temperature=0.7, max_tokens=64))
    run_consistency(run, taxonomy, ctx, samples=3)
    release(ctx)
    run_dedup(run, Reference([], [], []), threshold=0.97)
    return run


def test_measures_on_fixed_inputs(taxonomy):
    assert label_shares([["a"], ["a", "b"], ["none"], ["a"]], ["a", "b", "none"]) == {"a": 0.75, "b": 0.25, "none": 0.25}
    assert distinct_n(["the cat sat", "the cat ran"], 1) == pytest.approx(4 / 6)
    assert distinct_n(["the cat sat", "the cat sat"], 2) == pytest.approx(2 / 4)
    same = np.array([[1.0, 0.0], [1.0, 0.0]])
    orthogonal = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert embedding_spread(same) == pytest.approx(0.0) and embedding_spread(orthogonal) == pytest.approx(1.0)


def test_noise_flags_confident_disagreements_only(taxonomy):
    silver = pl.DataFrame({"row_id": ["a", "b", "c"], "text": ["x", "y", "z"],
                           "labels": [["cognitive_impairment"], ["none"], ["dementia_diagnosis"]]})
    k = len(taxonomy.category_ids)
    probs = np.full((3, k + 1), 0.2)
    probs[0, 0] = 0.03  # silver says cognitive_impairment, classifier is sure it is not
    probs[1, taxonomy.category_ids.index("treatment_and_care")] = 0.97  # silver says none, classifier sure of a category
    probs[2, taxonomy.category_ids.index("dementia_diagnosis")] = 0.6  # agrees (not confident enough to matter)
    flags = noise_flags(silver, probs, taxonomy, threshold=0.9)
    assert flags["flagged"].to_list() == [True, True, False]
    assert "cognitive_impairment given" in flags["reason"][0] and "treatment_and_care missing" in flags["reason"][1]
    assert flags["confidence"][0] == pytest.approx(0.97)


def test_report_from_side_tables(checked_run, taxonomy, tmp_path):
    gold = write_jsonl(tmp_path / "gold.jsonl", toy_records(per_category=4, n_none=8)
                       + [{"text": "She keeps forgetting her keys.", "labels": ["cognitive_impairment"]}])
    silver_before, bronze_before = read_dataset(checked_run / "silver"), read_dataset(checked_run / "bronze")
    paths = build_report(checked_run, taxonomy, gold, tmp_path / "quality", noise_threshold=0.6, review_limit=3)
    names = {p.name for p in paths}
    assert {"report.md", "quality.png", "summary.json", "review_sheet.csv", "review_sheet.html"} <= names
    assert (tmp_path / "quality" / "quality.png").read_bytes()[:4] == b"\x89PNG"
    summary = json.loads((tmp_path / "quality" / "summary.json").read_text())
    assert summary["datasets"] == {"gold": 47, "silver": silver_before.height, "bronze": 20}
    assert summary["verifier"]["silver"]["rejected"] == 1  # the one 'forgetting' sentence
    assert summary["verifier"]["silver"]["by_category"]["cognitive_impairment"] == {"judged": 1, "rejected": 1}
    assert summary["verifier"]["bronze"]["rejected"] == 10  # every "number 1" sentence
    assert summary["agreement"]["mean"] == pytest.approx(1.0)  # the keyword labeller always answers the same
    assert summary["silver_vs_gold"]["overlap"] == 1 and summary["silver_vs_gold"]["exact_match"] == 1.0
    assert set(summary["category_fidelity"]) == set(taxonomy.all_ids)
    assert summary["bronze_attributes"]  # the sampled generation attributes, counted
    report = (tmp_path / "quality" / "report.md").read_text()
    assert "Verifier (LLM judge) rejections" in report and "| cognitive_impairment |" in report
    sheet = pl.read_csv(tmp_path / "quality" / "review_sheet.csv")
    noise = read_dataset(checked_run / "silver_noise")
    assert noise.height == silver_before.height and sheet.height == min(3, int(noise["flagged"].sum()))
    assert read_dataset(checked_run / "silver").equals(silver_before)
    assert read_dataset(checked_run / "bronze").equals(bronze_before)


def test_compare_filters_use_side_tables_and_keep_rows_on_disk(checked_run, taxonomy, tmp_path):
    import_gold(write_jsonl(tmp_path / "gold.jsonl", toy_records()), taxonomy, tmp_path / "gold")
    silver_before = read_dataset(checked_run / "silver")

    def synthetic_sizes(**filters):
        opts = CompareOptions(gold_dir=tmp_path / "gold", out_dir=tmp_path / "exp", silver_dirs=[checked_run / "silver"],
                              bronze_dirs=[checked_run / "bronze"], models=["tfidf"], **filters)
        data = prepare_data(opts, taxonomy)
        return len(data.synthetic["silver"]), len(data.synthetic["bronze"]), data.notes

    silver_n, bronze_n, _ = synthetic_sizes()
    dropped_silver, dropped_bronze, notes = synthetic_sizes(drop_rejected=True)
    assert (silver_n - dropped_silver, bronze_n - dropped_bronze) == (1, 10)
    assert any("left out 1 of" in n and "verifier rejected: 1" in n for n in notes)
    assert synthetic_sizes(silver_min_agreement=1.0)[0] == silver_n  # all samples agree with silver
    assert read_dataset(checked_run / "silver").equals(silver_before)  # filtering never drops rows from disk
    (checked_run / "silver_consistency" / "part-00000.parquet").unlink()
    with pytest.raises(FactoryError, match="bin/generate consistency"):
        synthetic_sizes(silver_min_agreement=0.5)
