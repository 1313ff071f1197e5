import json

import polars as pl
import pytest

from factory.data.rows import Rows
from factory.data.side_tables import duplicate_row_ids
from factory.quality.dedup import DEDUP_SCHEMA, Reference, find_duplicates, run_dedup
from factory.core.errors import FactoryError
from factory.data.run_folder import Run
from factory.data.store import atomic_write_parquet, read_dataset
from factory.trainer.classifiers import shared_embedder
from tests.quality_helpers import make_run

DISTINCT = [
    "She keeps forgetting where she parked the car.",
    "MoCA today was 19/30 with deficits in delayed recall.",
    "MRI of the brain shows bilateral hippocampal atrophy.",
    "Her son reports she has become suspicious of the neighbours.",
    "He needs reminders to take his evening medications.",
    "Lungs are clear to auscultation bilaterally.",
]
# near-duplicates of DISTINCT[0] and DISTINCT[2] (one word changed, punctuation), and an exact copy of DISTINCT[4]
PLANTED = [
    "She keeps forgetting where she parked her car.",
    "MRI of the brain showed bilateral hippocampal atrophy",
    "he needs reminders to take his evening medications!",
]
GOLD = ["Started donepezil 5 mg nightly for Alzheimer's dementia.", "Abdomen is soft and non-tender."]
COPIES_OF_GOLD = ["Started donepezil 5 mg nightly for Alzheimer dementia.", "abdomen is soft and non tender"]


@pytest.fixture(scope="module")
def embedder():
    return shared_embedder(None)


def _ids(texts, prefix):
    return [f"{prefix}{i}" for i in range(len(texts))]


def test_planted_near_duplicates_are_found_and_distinct_sentences_kept(embedder):
    texts = DISTINCT + PLANTED
    verdicts = find_duplicates(_ids(texts, "b"), texts, Reference([], [], []), embedder.embed, threshold=0.92)
    flagged = {v["row_id"]: v for v in verdicts if v["duplicate"]}
    assert set(flagged) == {"b6", "b7", "b8"}  # exactly the planted rows; every distinct sentence kept
    assert flagged["b6"]["dup_of"] == "b0" and flagged["b6"]["reason"] == "near" and flagged["b6"]["similarity"] >= 0.92
    assert flagged["b7"]["dup_of"] == "b2" and flagged["b7"]["reason"] == "near"
    assert flagged["b8"]["dup_of"] == "b4" and flagged["b8"]["reason"] == "exact" and flagged["b8"]["similarity"] == 1.0
    for v in verdicts[:len(DISTINCT)]:
        assert v["similarity"] is None or v["similarity"] < 0.92  # kept rows carry their nearest neighbour


def test_copies_of_gold_and_silver_are_flagged_against_the_reference(embedder):
    reference = Reference.from_rows(Rows(["g0", "g1"], ["gold", "gold"], GOLD, [["treatment_and_care"], ["none"]]))
    texts = COPIES_OF_GOLD + DISTINCT[:2]
    verdicts = find_duplicates(_ids(texts, "b"), texts, reference, embedder.embed, threshold=0.92)
    assert [(v["duplicate"], v["reason"], v["dup_of"], v["dup_source"]) for v in verdicts] == [
        (True, "near", "g0", "gold"), (True, "exact", "g1", "gold"), (False, None, None, None), (False, None, None, None)]


def test_a_stricter_threshold_flags_fewer(embedder):
    texts = DISTINCT + PLANTED
    strict = find_duplicates(_ids(texts, "b"), texts, Reference([], [], []), embedder.embed, threshold=0.999)
    assert [v["row_id"] for v in strict if v["duplicate"]] == ["b8"]  # only the exact copy


def test_side_table_written_and_bronze_untouched(notes_dir, taxonomy, make_context, tmp_path, embedder):
    run = make_run(notes_dir, taxonomy, make_context, tmp_path / "run")
    bronze = read_dataset(run / "bronze")
    # plant a copy of the first bronze sentence as an extra shard, as a later synthesize wave could
    planted = bronze.head(1).with_columns(pl.lit("planted-copy").alias("row_id"))
    atomic_write_parquet(planted, run / "bronze" / "part-00099.parquet")
    before = read_dataset(run / "bronze")
    summary = run_dedup(run, Reference([], [], []), threshold=0.999, embedder=embedder)

    table = read_dataset(run / "bronze_dedup")
    assert dict(table.schema) == DEDUP_SCHEMA and table.height == before.height
    assert read_dataset(run / "bronze").equals(before)  # nothing deleted
    assert duplicate_row_ids(run) == {"planted-copy"}
    assert summary["flagged"] == 1 and summary["by_reason"] == {"exact vs bronze": 1}
    assert json.loads((run / "bronze_dedup" / "summary.json").read_text())["flagged"] == 1


def test_filters_refuse_a_stale_dedup_table(notes_dir, taxonomy, make_context, tmp_path, embedder):
    run = make_run(notes_dir, taxonomy, make_context, tmp_path / "run")
    with pytest.raises(FactoryError, match="bin/generate dedup"):
        duplicate_row_ids(run)
    run_dedup(run, Reference([], [], []), embedder=embedder)
    extra = read_dataset(run / "bronze").head(1).with_columns(pl.lit("new-row").alias("row_id"),
                                                              pl.lit("A brand new sentence.").alias("text"))
    atomic_write_parquet(extra, run / "bronze" / "part-00099.parquet")
    with pytest.raises(FactoryError, match="newer than the dedup table"):
        duplicate_row_ids(run)


def test_dedup_is_refused_while_another_process_holds_the_run(notes_dir, taxonomy, make_context, tmp_path, embedder):
    run = make_run(notes_dir, taxonomy, make_context, tmp_path / "run")
    with Run.open(run):  # e.g. a synthesize still appending to bronze
        with pytest.raises(FactoryError, match="in use by another factory process"):
            run_dedup(run, Reference([], [], []), embedder=embedder)
    assert not (run / "bronze_dedup").exists()
    summary = run_dedup(run, Reference([], [], []), embedder=embedder)
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["stages"]["bronze_dedup"]["flagged"] == summary["flagged"]
