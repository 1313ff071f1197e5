import json

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from factory.trainer.compare import CompareOptions, parse_models, parse_seeds, parse_sets, prepare_data, training_rows
from factory.core.errors import FactoryError
from factory.data.gold import import_gold
from factory.cli.trainer import compare, gold

from tests.conftest import toy_records, write_jsonl, write_synthetic


@pytest.fixture
def project(tmp_path, taxonomy):
    """Gold (90 toy sentences), silver that copies some gold sentences, bronze written 'by a model'."""
    import_gold(write_jsonl(tmp_path / "gold.jsonl", toy_records()), taxonomy, tmp_path / "gold")
    silver = toy_records(6, 6)[::2]  # the same sentences as some gold ones: leakage candidates
    bronze = [dict(r, text=r["text"].replace("(visit", "(generated")) for r in toy_records(5, 5)]
    write_synthetic(tmp_path / "silver", "silver", silver)
    write_synthetic(tmp_path / "bronze", "bronze", bronze)
    return tmp_path


def invoke(command, args):
    result = CliRunner().invoke(command, [str(a) for a in args])
    return result


def test_compare_cli_writes_every_artefact(project):
    out = project / "exp"
    result = invoke(compare, [
        "--gold", project / "gold", "--silver", project / "silver", "--bronze", project / "bronze",
        "--sets", "gold,bronze,gold+silver,gold+silver+bronze", "--models", "tfidf,encoder", "--seeds", "0,1",
        "--test-fraction", "0.25", "--out", out, "--cache-dir", project / "cache", "--save-models",
    ])
    assert result.exit_code == 0, result.output + repr(result.exception)
    for name in ("report.md", "report.html", "metrics.csv", "metrics.parquet", "summary.csv", "summary.parquet", "leakage_removed.csv",
                 "f1_by_category.png", "config.json"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert (out / "f1_by_category.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    metrics = pl.read_parquet(out / "metrics.parquet")
    assert metrics.equals(pl.read_csv(out / "metrics.csv", schema=metrics.schema))
    # 4 sets + the selected variants of the 2 gold+synthetic sets (selection is on by default)
    # x 2 models x 2 seeds, each with 9 categories + micro + macro + binary
    assert set(metrics["training_set"]) == {"gold", "bronze", "gold+silver", "gold+silver-sel", "gold+silver+bronze",
                                            "gold+silver+bronze-sel"}
    assert metrics.height == 6 * 2 * 2 * 12
    assert set(metrics["model"]) == {"tfidf", "encoder"}
    # every model is scored on the same gold test split
    support = metrics.filter(pl.col("scope") == "binary")["support"]
    assert support.n_unique() == 1
    # synthetic rows never enter the test side, and gold sentences copied into silver were removed
    split = json.loads((project / "gold" / "split.json").read_text())
    n_test = sum(v == "test" for v in split["assignments"].values())
    config = json.loads((out / "config.json").read_text())
    assert config["leakage_removed"]["silver"] > 0
    gold_silver = metrics.filter((pl.col("training_set") == "gold+silver") & (pl.col("scope") == "micro")).row(0, named=True)
    assert gold_silver["n_gold"] == 90 - n_test
    assert gold_silver["n_silver"] == len(toy_records(6, 6)[::2]) - config["leakage_removed"]["silver"]
    # separable toy data: the gold-trained tfidf model is near perfect
    gold_micro = metrics.filter((pl.col("training_set") == "gold") & (pl.col("model") == "tfidf") & (pl.col("scope") == "micro"))
    assert gold_micro["f1"].min() > 0.9

    report = (out / "report.md").read_text()
    assert "★" in report and "gold+silver+bronze" in report and "Binary task" in report
    assert report.startswith("# Gold vs silver vs bronze") and "## Verdict" in report
    assert "the test split chose nothing" in report and "± 0.000" not in report
    html = (out / "report.html").read_text()
    assert "<h2>Verdict</h2>" in html and "data:image/png;base64," in html
    assert html.count("<table>") >= 3 + 2 * 2  # selection, 2 per model, categories, binary, selection grids
    saved = sorted(p.name for p in (out / "models").iterdir())
    assert len(saved) == 24 and "gold+silver__tfidf__seed1" in saved and "gold+silver-sel__encoder__seed0" in saved
    assert config["selection"]["chosen_on"].startswith("5-fold cross-validation over gold train")
    assert {(c["family"], c["source"]) for c in config["selection"]["sources"]} == {
        (f, r) for f in ("tfidf", "encoder") for r in ("silver", "bronze")}
    meta_sel = json.loads((out / "models" / "gold+silver-sel__tfidf__seed0" / "meta.json").read_text())
    assert meta_sel["selection"]["applied"] and set(meta_sel["thresholds"]) == set(meta_sel["outputs"])
    meta = json.loads((out / "models" / "gold__encoder__seed0" / "meta.json").read_text())
    assert meta["training_data"]["gold_fingerprint"] == split["gold_fingerprint"]
    assert {m["category"] for m in meta["metrics_on_gold_test"]} >= {"micro", "macro", "binary"}


def test_sets_without_data_are_skipped_with_a_note(project, taxonomy):
    opts = CompareOptions(gold_dir=project / "gold", out_dir=project / "exp", bronze_dirs=[project / "bronze"],
                          sets=parse_sets("gold,silver,gold+bronze"), cache_dir=project / "cache", test_fraction=0.25)
    data = prepare_data(opts, taxonomy)
    assert data.sets == ["gold", "gold+bronze", "gold+bronze-sel"]  # selection (on by default) adds -sel
    assert any("skipped set silver" in n for n in data.notes)


def test_synthetic_cap_and_weight(project, taxonomy):
    opts = CompareOptions(gold_dir=project / "gold", out_dir=project / "exp", silver_dirs=[project / "silver"],
                          bronze_dirs=[project / "bronze"], cache_dir=project / "cache", test_fraction=0.25)
    data = prepare_data(opts, taxonomy)
    n_gold = len(data.gold_train)
    rows, weights = training_rows(data, "gold+silver+bronze", cap_ratio=0.25, synthetic_weight=0.3, seed=0)
    n_synthetic = int(0.25 * n_gold)
    assert len(rows) == n_gold + n_synthetic
    assert rows.sources[:n_gold] == ["gold"] * n_gold
    assert np.all(weights[:n_gold] == 1.0) and np.all(weights[n_gold:] == 0.3)
    other, _ = training_rows(data, "gold+silver+bronze", cap_ratio=0.25, synthetic_weight=0.3, seed=1)
    assert other.texts != rows.texts  # the capped sample depends on the seed
    only_bronze, _ = training_rows(data, "bronze", None, 1.0, 0)
    assert set(only_bronze.sources) == {"bronze"}
    test_texts = set(data.gold_test.texts)
    full, _ = training_rows(data, "gold+silver+bronze", None, 1.0, 0)
    assert not test_texts & set(full.texts)


@pytest.mark.parametrize("text, parser, message", [
    ("gold,platinum", parse_sets, "unknown training set 'platinum'"),
    ("0,x", parse_seeds, "--seeds must be comma-separated integers"),
    ("tfidf,svm", parse_models, "unknown model"),
])
def test_bad_options_are_factory_errors(text, parser, message):
    with pytest.raises(FactoryError, match=message):
        parser(text)


def test_parse_sets_canonicalises_order():
    assert parse_sets("silver+gold, bronze") == ["gold+silver", "bronze"]


def test_compare_cli_bad_input_raises_factory_error(project, taxonomy):
    # no gold imported
    result = invoke(compare, ["--gold", project / "nothing", "--models", "tfidf", "--out", project / "x"])
    assert isinstance(result.exception, FactoryError) and "no gold data" in str(result.exception)
    # a test split with a category without examples names the category
    records = [r for r in toy_records() if r["labels"] != ["cognitive_assessment"]]
    records.append({"text": "MoCA 20/30.", "labels": ["cognitive_assessment"]})
    import_gold(write_jsonl(project / "thin.jsonl", records), taxonomy, project / "thin")
    result = invoke(compare, ["--gold", project / "thin", "--models", "tfidf", "--out", project / "x",
                              "--cache-dir", project / "cache"])
    assert isinstance(result.exception, FactoryError)
    assert "no examples of: cognitive_assessment" in str(result.exception)
    # a silver folder that holds bronze rows
    result = invoke(compare, ["--gold", project / "gold", "--silver", project / "bronze", "--models", "tfidf",
                              "--out", project / "x", "--cache-dir", project / "cache", "--test-fraction", "0.25"])
    assert isinstance(result.exception, FactoryError) and "given as silver" in str(result.exception)


def test_gold_import_cli(project):
    result = invoke(gold, ["import", project / "gold.jsonl", "--out", project / "g2"])
    assert result.exit_code == 0, repr(result.exception)
    assert (project / "g2" / "part-00000.parquet").is_file()
    bad = write_jsonl(project / "bad.jsonl", [{"text": "x", "labels": ["amnesia"]}])
    result = invoke(gold, ["import", bad, "--out", project / "g3"])
    assert isinstance(result.exception, FactoryError) and "'amnesia'" in str(result.exception)


def test_leaked_sentences_are_listed(project):
    out = project / "exp"
    result = invoke(compare, ["--gold", project / "gold", "--silver", project / "silver", "--sets", "gold+silver",
                              "--models", "tfidf", "--seeds", "0", "--test-fraction", "0.25", "--out", out,
                              "--cache-dir", project / "cache"])
    assert result.exit_code == 0, repr(result.exception)
    leaked = pl.read_csv(out / "leakage_removed.csv")
    split = json.loads((project / "gold" / "split.json").read_text())
    from factory.data.rows import text_row_id
    assert leaked.height > 0 and set(leaked["source"]) == {"silver"}
    assert all(split["assignments"][text_row_id(t)] == "test" for t in leaked["text"])
