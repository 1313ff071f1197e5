import json

import polars as pl
import pytest

from factory.data.rows import text_row_id
from factory.core.errors import FactoryError
from factory.data.gold import import_gold, load_gold, parse_label_cell

from tests.conftest import toy_records, write_jsonl


@pytest.mark.parametrize("cell, expected", [
    ('["cognitive_impairment", "none"]', ["cognitive_impairment", "none"]),
    ("cognitive_impairment; notice_by_others", ["cognitive_impairment", "notice_by_others"]),
    ("cognitive_impairment|notice_by_others", ["cognitive_impairment", "notice_by_others"]),
    ("Cognitive_Impairment,notice_by_others", ["cognitive_impairment", "notice_by_others"]),
    (["none"], ["none"]),
    (None, []),
    ("", []),
])
def test_parse_label_cell_formats(cell, expected):
    assert parse_label_cell(cell, 1) == expected


def test_import_jsonl_writes_contract_parquet(tmp_path, taxonomy, toy_gold_file):
    summary = import_gold(toy_gold_file, taxonomy, tmp_path / "gold")
    frame = pl.read_parquet(tmp_path / "gold" / "part-00000.parquet")
    assert frame.columns == ["row_id", "source", "text", "labels"]
    assert frame.schema["labels"] == pl.List(pl.Utf8)
    assert set(frame["source"]) == {"gold"}
    assert summary.rows_written == frame.height == len(toy_records())
    first = frame.row(0, named=True)
    assert first["row_id"] == text_row_id(first["text"])
    # multi-label rows come back in taxonomy order
    multi = frame.filter(pl.col("text").str.starts_with("His daughter noticed"))
    assert multi["labels"].to_list() == [["cognitive_impairment", "notice_by_others"]]
    assert summary.label_counts["none"] == 16


def test_import_csv_with_separated_labels_drops_empty_and_duplicates(tmp_path, taxonomy):
    csv = tmp_path / "gold.csv"
    csv.write_text(
        "sentence,cats\n"
        '"Forgets names often.","cognitive_impairment;notice_by_others"\n'
        '"forgets names, often","notice_by_others|cognitive_impairment"\n'  # duplicate after normalisation, same labels
        '"   ",none\n'  # empty sentence
        '"Lungs clear.",none\n',
        encoding="utf-8",
    )
    summary = import_gold(csv, taxonomy, tmp_path / "g", text_column="sentence", labels_column="cats")
    assert (summary.rows_read, summary.rows_written) == (4, 2)
    assert summary.empty_dropped == 1
    assert summary.duplicates_dropped == 1
    rows = load_gold(tmp_path / "g", taxonomy)
    assert rows.labels == [["cognitive_impairment", "notice_by_others"], ["none"]]


def test_import_one_hot_parquet(tmp_path, taxonomy):
    src = tmp_path / "onehot.parquet"
    pl.DataFrame({
        "text": ["She forgets.", "MoCA 20/30 and forgets.", "Clear lungs."],
        "cognitive_impairment": [1, 1, 0],
        "cognitive_assessment": [0, 1, 0],
        "none": [0, 0, 1],
    }).write_parquet(src)
    summary = import_gold(src, taxonomy, tmp_path / "g")
    assert summary.label_format.startswith("0/1 columns")
    rows = load_gold(tmp_path / "g", taxonomy)
    assert rows.labels == [["cognitive_impairment"], ["cognitive_impairment", "cognitive_assessment"], ["none"]]


def test_unknown_labels_are_listed(tmp_path, taxonomy):
    records = toy_records()[:3] + [{"text": "a", "labels": ["memory_los"]}, {"text": "b", "labels": "dementia;foo"}]
    path = write_jsonl(tmp_path / "g.jsonl", records)
    with pytest.raises(FactoryError) as err:
        import_gold(path, taxonomy, tmp_path / "out")
    message = str(err.value)
    assert "labels not in the taxonomy" in message
    assert "'memory_los' (1 row, first row 4)" in message
    assert "'dementia'" in message and "'foo'" in message
    assert not (tmp_path / "out").exists()  # nothing written on error


def test_empty_gold_file_is_a_clear_error(tmp_path, taxonomy):
    for name in ("empty.jsonl", "empty.csv"):
        path = tmp_path / name
        path.write_text("", encoding="utf-8")
        with pytest.raises(FactoryError, match="empty|no rows"):
            import_gold(path, taxonomy, tmp_path / "out")


def test_all_sentences_empty_is_a_clear_error(tmp_path, taxonomy):
    path = write_jsonl(tmp_path / "g.jsonl", [{"text": " ", "labels": ["none"]}])
    with pytest.raises(FactoryError, match="empty sentence"):
        import_gold(path, taxonomy, tmp_path / "out")


def test_missing_columns_are_clear_errors(tmp_path, taxonomy):
    path = write_jsonl(tmp_path / "g.jsonl", [{"sentence": "x", "labels": ["none"]}])
    with pytest.raises(FactoryError, match="no text column 'text'.*sentence"):
        import_gold(path, taxonomy, tmp_path / "out")
    path = write_jsonl(tmp_path / "h.jsonl", [{"text": "x", "tags": ["none"]}])
    with pytest.raises(FactoryError, match="no labels column 'labels'"):
        import_gold(path, taxonomy, tmp_path / "out")


def test_bad_json_line_names_the_line(tmp_path, taxonomy):
    path = tmp_path / "g.jsonl"
    path.write_text(json.dumps({"text": "x", "labels": ["none"]}) + "\n{oops\n", encoding="utf-8")
    with pytest.raises(FactoryError, match="line 2"):
        import_gold(path, taxonomy, tmp_path / "out")


def test_reimport_never_deletes_a_shard_it_did_not_write(tmp_path, taxonomy, toy_gold_file):
    """A stray shard inside gold import's own folder is someone's file: the re-import refuses (naming it)
    instead of dropping it (issue: no command overwrites what it did not write)."""
    from tests.cli.helpers import tree_hashes

    out = tmp_path / "gold"
    import_gold(toy_gold_file, taxonomy, out)
    (out / "part-00001.parquet").write_bytes(b"stale")
    before = tree_hashes(tmp_path)
    with pytest.raises(FactoryError, match="holds part-00001.parquet, which `gold import` did not write"):
        import_gold(toy_gold_file, taxonomy, out)
    assert tree_hashes(tmp_path) == before


def test_reimport_of_changed_gold_flags_the_frozen_split(tmp_path, taxonomy):
    from factory.data.split import load_or_create_split

    records = toy_records()
    out = tmp_path / "gold"
    import_gold(write_jsonl(tmp_path / "a.jsonl", records), taxonomy, out)
    load_or_create_split(load_gold(out, taxonomy), out, taxonomy)
    assert import_gold(tmp_path / "a.jsonl", taxonomy, out).stale_split is None  # same data: split still valid
    records[0]["labels"] = ["none"]
    assert import_gold(write_jsonl(tmp_path / "b.jsonl", records), taxonomy, out).stale_split == out / "split.json"
