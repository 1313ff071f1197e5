"""`compare`, `train` and `predict` as functions of their specs: the options they hand on, the output folder
claimed (or refused) before any training, what `train` reports back, and `predict`'s count of AD-related
sentences. (`train --out` from the command line: tests/trainer/test_train_out.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from rich.console import Console

from factory.core.errors import FactoryError
from factory.core.specs import CompareSpec, PredictSpec, TrainSpec
from factory.data.gold import import_gold
from factory.data.output_folder import MARKER
from factory.trainer.train import Trained, compare, compare_options, predict, train

from tests.conftest import toy_records, write_jsonl, write_synthetic

QUIET = Console(file=open("/dev/null", "w"))  # noqa: SIM115 - the commands print tables; the tests read files


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from factory.data.taxonomy import load_taxonomy

    root = tmp_path_factory.mktemp("train")
    import_gold(write_jsonl(root / "gold.jsonl", toy_records()), load_taxonomy(), root / "gold")
    write_synthetic(root / "bronze", "bronze",
                    [dict(r, text=r["text"].replace("(visit", "(generated")) for r in toy_records(5, 5)])
    return root


def _spec(project: Path, out: Path, **more) -> TrainSpec:
    return TrainSpec(gold=project / "gold", out=out, cache_dir=project / "cache", classifier="tfidf", **more)


def test_spec_switches_become_the_comparisons_options(project):
    options = compare_options(_spec(project, project / "m", no_select=True, fixed_threshold=True, synthetic_weight=0.5),
                              out_dir=project / "m", sets=["gold"], models=["tfidf"], seeds=[0])
    assert not options.select and not options.tune_thresholds and options.synthetic_weight == 0.5
    assert options.gold_dir == project / "gold" and options.bronze_dirs == [] and options.models == ["tfidf"]
    defaults = compare_options(TrainSpec(out=project / "m"), out_dir=project / "m")
    assert defaults.select and defaults.tune_thresholds and defaults.gold_dir.name == "gold"


def test_train_saves_one_model_and_reports_what_it_did(project, tmp_path):
    trained = train(_spec(project, tmp_path / "model", set_name="gold"), QUIET)
    assert isinstance(trained, Trained) and (trained.model, trained.training_set) == ("tfidf", "gold")
    split = json.loads((project / "gold" / "split.json").read_text())
    assert trained.rows == sum(v == "train" for v in split["assignments"].values())
    assert trained.scores["micro"] > 0.9 and trained.kept == []  # separable toy gold; nothing to select from
    meta = json.loads((tmp_path / "model" / "meta.json").read_text())
    assert meta["training_data"]["gold_fingerprint"] == split["gold_fingerprint"]
    assert json.loads((tmp_path / "model" / MARKER).read_text())["written_by"] == "bin/generate train"


def test_a_gold_plus_synthetic_set_trains_on_its_selected_rows(project, tmp_path):
    trained = train(_spec(project, tmp_path / "model", set_name="gold+bronze", bronze=[project / "bronze"]), QUIET)
    assert trained.training_set == "gold+bronze-sel"
    assert len(trained.kept) == 1 and trained.kept[0].startswith("bronze: kept ")


def test_train_refuses_before_reading_any_data(project, tmp_path):
    with pytest.raises(FactoryError, match="train takes one training set"):
        train(_spec(project, tmp_path / "model", set_name="gold,gold+bronze"), QUIET)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    missing_gold = TrainSpec(gold=tmp_path, out=mine, cache_dir=project / "cache")  # would fail if it were read
    with pytest.raises(FactoryError, match="not empty and was not written by `train`"):
        train(missing_gold, QUIET)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"] and not (tmp_path / "model").exists()


def test_compare_writes_its_report_into_the_claimed_folder(project, tmp_path):
    spec = CompareSpec(gold=project / "gold", out=tmp_path / "exp", cache_dir=project / "cache", sets="gold",
                       classifiers="tfidf", seeds="0")
    compare(spec, QUIET)
    assert (tmp_path / "exp" / "report.md").is_file() and (tmp_path / "exp" / MARKER).is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # the build folder was swapped in
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "report.md").write_text("mine")
    with pytest.raises(FactoryError, match="was not written by `compare`"):
        compare(spec.model_copy(update={"out": tmp_path / "user"}), QUIET)
    assert (tmp_path / "user" / "report.md").read_text() == "mine"


def test_predict_counts_the_sentences_it_labels_ad_related(project, tmp_path):
    train(_spec(project, tmp_path / "model", set_name="gold"), QUIET)
    source = tmp_path / "in.txt"
    source.write_text("Mrs Jones keeps forgetting recent conversations and gets confused.\n"
                      "Her daughter noticed and is worried about the changes.\nKnee x-ray shows mild arthritis.\n")
    folder, sentences, positives = predict(PredictSpec(classifier_dir=tmp_path / "model", input=source,
                                                       out=tmp_path / "pred", cache_dir=project / "cache"))
    frame = pl.read_parquet(folder)
    assert sentences == 3 == frame.height
    assert positives == sum(labels[0] != "none" for labels in frame["labels"].to_list()) and 1 <= positives <= 3
