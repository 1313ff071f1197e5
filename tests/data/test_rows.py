"""Contract rows: text normalisation and ids, leakage removal, and loading a user's folder of contract Parquet."""

from __future__ import annotations

import polars as pl
import pytest

from factory.core.errors import FactoryError
from factory.data.rows import (Rows, core_frame, dataset_to_rows, load_contract_dataset, load_sources, normalise_text,
                               remove_test_leakage, text_row_id)
from factory.data.store import atomic_write_parquet


def test_normalise_text_lowercases_strips_punctuation_and_whitespace():
    assert normalise_text("  MoCA   18/30,  today!  ") == "moca 18 30 today"
    assert text_row_id("MoCA 18/30.") == text_row_id("moca  18 30")
    assert len(text_row_id("x")) == 32


def test_leakage_removes_exact_and_normalised_copies_of_test_sentences():
    rows = Rows(
        row_ids=["a", "b", "c", "d"],
        sources=["silver", "bronze", "bronze", "silver"],
        texts=["MoCA was 18/30.", "moca was 18 30", "MRI shows atrophy.", "Lungs clear"],
        labels=[["cognitive_assessment"]] * 2 + [["diagnostic_tests"], ["none"]],
    )
    kept, report = remove_test_leakage(rows, ["MoCA was 18/30.", "Lungs  clear!"])
    assert kept.texts == ["MRI shows atrophy."]
    assert report.removed == {"silver": 2, "bronze": 1}
    assert report.total == 3 and report.examples == ["MoCA was 18/30.", "moca was 18 30", "Lungs clear"]


def test_rows_subset_and_add_keep_the_columns_aligned():
    rows = Rows(["a", "b", "c"], ["gold"] * 3, ["x", "y", "z"], [["none"], ["p"], ["p", "q"]])
    both = rows.subset([2, 0]) + rows.subset([1])
    assert both.row_ids == ["c", "a", "b"] and both.texts == ["z", "x", "y"] and both.labels == [["p", "q"], ["none"], ["p"]]
    assert len(both) == 3 and both.label_counts() == {"p": 2, "q": 1, "none": 1}


def _user_folder(tmp_path, frames: dict[str, pl.DataFrame]):
    folder = tmp_path / "user_gold"
    for name, frame in frames.items():
        atomic_write_parquet(frame, folder / name)
    return folder


def test_a_users_folder_is_read_by_any_parquet_name_reduced_to_the_contract_columns(tmp_path, taxonomy):
    texts = ["She forgets names.", "  ", "Lungs clear."]
    first = core_frame([text_row_id(t) for t in texts], "gold", texts,
                       [["cognitive_impairment"], ["none"], ["none", "cognitive_impairment"]])
    second = core_frame([text_row_id("MoCA 18/30.")], "gold", ["MoCA 18/30."], [["cognitive_assessment"]])
    folder = _user_folder(tmp_path, {"a_batch.parquet": first.with_columns(pl.lit(1).alias("cohort")),
                                     "b_batch.parquet": second})
    (folder / ".b_batch.parquet.tmp-5").write_bytes(b"a killed writer's temp")  # hidden: never read
    ds = load_contract_dataset(folder, "gold", taxonomy)
    assert ds.column_names == ["row_id", "source", "text", "labels"] and len(ds) == 4
    rows = dataset_to_rows(ds, taxonomy)
    assert rows.texts == ["She forgets names.", "Lungs clear.", "MoCA 18/30."]  # the empty sentence is dropped
    assert rows.labels[1] == ["cognitive_impairment"]  # 'none' is exclusive
    assert load_sources([folder, folder], "gold", taxonomy).texts == rows.texts * 2


@pytest.mark.parametrize("frame, message", [
    (core_frame(["r"], "silver", ["x"], [["none"]]), "given as gold but holds rows with source 'silver'"),
    (core_frame(["r"], "gold", ["x"], [["made_up"]]), "labels not in the taxonomy: made_up"),
    (pl.DataFrame({"row_id": ["r"], "text": ["x"]}), r"b\.parquet: missing contract column\(s\) source, labels"),
])
def test_a_users_folder_that_breaks_the_contract_is_one_error_naming_it(tmp_path, taxonomy, frame, message):
    folder = _user_folder(tmp_path, {"b.parquet": frame})
    with pytest.raises(FactoryError, match=message):
        load_contract_dataset(folder, "gold", taxonomy)


def test_a_missing_or_empty_folder_is_one_clear_error(tmp_path, taxonomy):
    with pytest.raises(FactoryError, match="gold folder not found"):
        load_contract_dataset(tmp_path / "nowhere", "gold", taxonomy)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FactoryError, match="has no Parquet shards"):
        load_contract_dataset(tmp_path / "empty", "gold", taxonomy)
    (tmp_path / "empty" / "x.parquet").write_bytes(b"garbage")
    with pytest.raises(FactoryError, match=r"cannot read .*x\.parquet"):
        load_contract_dataset(tmp_path / "empty", "gold", taxonomy)
