"""Gold import against hostile input and hostile --out folders (issue 13)."""

from __future__ import annotations

import json

import polars as pl
import pytest

from factory.core.errors import FactoryError
from factory.data.gold import GOLD_MARKER, import_gold, load_gold, read_gold_any
from factory.data.rows import core_frame, text_row_id
from tests.cli.helpers import tree_hashes
from tests.conftest import toy_records, write_jsonl


def _gold(tmp_path, rows: list[dict], name: str = "g.jsonl"):
    return write_jsonl(tmp_path / name, toy_records()[:4] + rows)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"text": "She forgets.", "labels": ["none", "cognitive_impairment"]}],
         r"1 of 5 row\(s\) have 'none' together with a category \('none' is exclusive\) \(row 5\)"),
        ([{"text": "She forgets.", "labels": []}], r"empty labels cell .*\(row 5\)"),
        ([{"text": "She forgets.", "labels": "  "}], r"empty labels cell .*\(row 5\)"),
        ([{"text": "She forgets.", "labels": ["cognitive_impairment"]}, {"text": "she forgets", "labels": ["none"]}],
         r"rows 5 and 6 hold the same sentence with different labels \(cognitive_impairment vs none\)"),
        ([{"sentence": "She forgets.", "labels": ["none"]}], r"row 5: no 'text' field"),
        ([{"text": {"hpi": "She forgets."}, "labels": ["none"]}], r"row 5: 'text' is a dict, not a string"),
        ([{"text": "She forgets\u0000.", "labels": ["none"]}], r"row 5: the sentence contains a NUL character"),
    ],
)
def test_silent_gold_decisions_are_errors_with_row_numbers(tmp_path, taxonomy, rows, message):
    path = _gold(tmp_path, rows)
    with pytest.raises(FactoryError, match=message):
        import_gold(path, taxonomy, tmp_path / "out")
    with pytest.raises(FactoryError, match=message):  # label --gold and the quality commands read it the same way
        read_gold_any(path, taxonomy)
    assert not (tmp_path / "out").exists()


def test_one_hot_rows_of_zeros(tmp_path, taxonomy):
    with_none = tmp_path / "with_none.parquet"
    pl.DataFrame({"text": ["She forgets.", "Clear lungs."], "cognitive_impairment": [1, 0], "none": [0, 0]}
                 ).write_parquet(with_none)
    with pytest.raises(FactoryError, match=r"have 0 in every label column, 'none' included \(row 2\)"):
        import_gold(with_none, taxonomy, tmp_path / "a")
    without_none = tmp_path / "without_none.parquet"  # no 'none' column: a row of zeros means 'none' (counted)
    pl.DataFrame({"text": ["She forgets.", "Clear lungs."], "cognitive_impairment": [1, 0]}).write_parquet(without_none)
    assert import_gold(without_none, taxonomy, tmp_path / "b").unlabelled_as_none == 1
    assert load_gold(tmp_path / "b", taxonomy).labels == [["cognitive_impairment"], ["none"]]


def test_gold_jsonl_that_is_not_utf8_names_the_line(tmp_path, taxonomy):
    path = tmp_path / "g.jsonl"
    path.write_bytes(json.dumps({"text": "ok", "labels": ["none"]}).encode() + b'\n{"text": "caf\xe9", "labels": ["none"]}\n')
    with pytest.raises(FactoryError, match=r"line 2: not UTF-8 \(byte 0xe9"):
        import_gold(path, taxonomy, tmp_path / "out")
    with pytest.raises(FactoryError, match="line 2: not UTF-8"):
        read_gold_any(path, taxonomy)


def test_a_folder_gold_import_did_not_write_is_never_touched(tmp_path, taxonomy, toy_gold_file):
    user = tmp_path / "mine"
    user.mkdir()
    pl.DataFrame({"x": [1]}).write_parquet(user / "results.parquet")
    (user / "part-00000.parquet").write_bytes(b"my own data")
    before = tree_hashes(tmp_path)
    with pytest.raises(FactoryError, match="was not written by `gold import`.*nothing was changed"):
        import_gold(toy_gold_file, taxonomy, user)
    assert tree_hashes(tmp_path) == before
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(FactoryError, match="is a file"):
        import_gold(toy_gold_file, taxonomy, tmp_path / "a-file")


def test_a_reimport_replaces_the_whole_folder_and_keeps_the_frozen_split(tmp_path, taxonomy, toy_gold_file):
    from factory.data.split import load_or_create_split

    out = tmp_path / "gold"
    import_gold(toy_gold_file, taxonomy, out)
    assert json.loads((out / GOLD_MARKER).read_text())["written_by"] == "bin/generate gold import"
    load_or_create_split(load_gold(out, taxonomy), out, taxonomy)
    split = (out / "split.json").read_bytes()
    smaller = write_jsonl(tmp_path / "small.jsonl", toy_records()[:10])
    summary = import_gold(smaller, taxonomy, out)
    assert summary.rows_written == 10 and summary.stale_split == out / "split.json"
    assert (out / "split.json").read_bytes() == split
    assert sorted(p.name for p in out.iterdir()) == sorted([GOLD_MARKER, "part-00000.parquet", "split.json"])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".gold.")]  # no temporary sibling left
    assert len(load_gold(out, taxonomy)) == 10


def test_gold_imported_before_the_marker_existed_is_still_replaced(tmp_path, taxonomy, toy_gold_file):
    out = tmp_path / "gold"
    out.mkdir()
    texts = ["She forgets.", "Lungs clear."]
    core_frame([text_row_id(t) for t in texts], "gold", texts, [["cognitive_impairment"], ["none"]]
               ).write_parquet(out / "part-00000.parquet")
    import_gold(toy_gold_file, taxonomy, out)
    assert (out / GOLD_MARKER).is_file() and len(load_gold(out, taxonomy)) == len(toy_records())
