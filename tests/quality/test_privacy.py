"""The PHI gate's functions: which bronze rows may leave (scanned as they are now, passed, not withheld by a
reviewer), the gold references of the overlap check, and what a bundle is. The commands end to end:
tests/quality/test_export.py."""

import json

import polars as pl
import pytest

from factory.core.errors import FactoryError
from factory.data.store import read_dataset
from factory.quality.privacy import _gold_texts, _is_bundle, _overlap_line, export_bundle, phi_status

from tests.data.review_runs import reviewed_run


def test_export_leaves_out_rows_reviewers_flagged_or_rejected(tmp_path):
    run = reviewed_run(tmp_path / "run", silver=False)
    rows, scanned = export_bundle(run, tmp_path / "share", "CC-BY-4.0")
    # 4 bronze rows: 1 quarantined by the scan, 1 flagged for PHI by dr_a, 1 rejected by dr_a, 1 accepted
    assert (rows, scanned) == (1, 4)
    texts = pl.read_parquet(tmp_path / "share" / "bronze" / "part-00000.parquet")["text"].to_list()
    assert texts == ["She repeats the same questions within minutes."]
    card = (tmp_path / "share" / "DATACARD.md").read_text()
    assert "3 rows reviewed; left out of the rows that passed the scan: 2 (1 flagged for PHI by a reviewer, " \
           "1 rejected by a reviewer" in card
    manifest = json.loads((tmp_path / "share" / "manifest.json").read_text())
    assert manifest["review"] == {"reviewed": 3, "withheld": 2, "phi_flagged": 1, "rejected": 1}
    assert manifest["phi_scan"]["passed"] == 3 and manifest["phi_scan"]["quarantined"] == 1


def test_export_without_reviews_is_unchanged(tmp_path):
    run = reviewed_run(tmp_path / "run", silver=False, bronze=False)
    rows, _ = export_bundle(run, tmp_path / "share", "CC-BY-4.0")
    assert rows == 3
    assert "Clinician review" not in (tmp_path / "share" / "DATACARD.md").read_text()


def test_the_licence_goes_into_the_card_and_the_bundle_is_recognised_as_one(tmp_path):
    run = reviewed_run(tmp_path / "run", silver=False, bronze=False)
    export_bundle(run, tmp_path / "share", "CC-BY-4.0")
    assert "- Licence: CC-BY-4.0." in (tmp_path / "share" / "DATACARD.md").read_text()
    assert _is_bundle(tmp_path / "share")
    (tmp_path / "share" / "extra.txt").write_text("not listed")  # anything the manifest does not list: not ours
    assert not _is_bundle(tmp_path / "share")
    assert not _is_bundle(tmp_path / "run")


def test_when_every_passing_row_is_withheld_nothing_is_written(tmp_path):
    from tests.data.review_runs import write_decisions

    run = reviewed_run(tmp_path / "run", silver=False, bronze=False)
    write_decisions(run, "bronze", [(start, "dr_a", "reject", (), False)
                                    for start in ("She repeats", "Her son fills", "Clock drawing")])
    with pytest.raises(FactoryError, match="flagged for PHI or rejected by a reviewer; nothing to export"):
        export_bundle(run, tmp_path / "share", "CC-BY-4.0")
    assert not (tmp_path / "share").exists()


def test_phi_status_refuses_unscanned_bronze_and_joins_the_scan(tmp_path):
    run = reviewed_run(tmp_path / "run", silver=False, bronze=False)
    bronze = read_dataset(run / "bronze")
    joined = phi_status(run, bronze)
    assert joined.height == bronze.height and sorted(set(joined["phi_status"])) == ["pass", "quarantined"]
    import shutil

    shutil.rmtree(run / "bronze_phi")
    with pytest.raises(FactoryError, match="bronze has not been scanned for PHI: run `bin/generate check-phi"):
        phi_status(run, bronze)


@pytest.mark.parametrize("name, content, message", [
    ("gold.csv", "text\nx\n", "unsupported gold file"),
    ("gold.jsonl", '{"sentence": "x"}\n', "has no 'text' column"),
    ("missing.jsonl", None, "gold not found"),
])
def test_gold_references_are_read_or_refused_in_one_line(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(FactoryError, match=message):
        list(_gold_texts(path))


def test_gold_texts_come_from_jsonl_parquet_or_an_imported_folder(tmp_path):
    (tmp_path / "gold.jsonl").write_text('{"text": "She forgets."}\n{"text": ""}\n{"text": "He wanders."}\n')
    assert list(_gold_texts(tmp_path / "gold.jsonl")) == ["She forgets.", "He wanders."]  # empty texts skipped
    pl.DataFrame({"text": ["A.", "B."]}).write_parquet(tmp_path / "gold.parquet")
    assert list(_gold_texts(tmp_path / "gold.parquet")) == ["A.", "B."]
    (tmp_path / "folder").mkdir()
    with pytest.raises(FactoryError, match="no Parquet shards"):
        _gold_texts(tmp_path / "folder")


def test_the_overlap_line_says_what_was_compared_or_that_nothing_was():
    assert _overlap_line({}) == "not run (check-phi was given no --notes or --gold)."
    assert _overlap_line({"ngram": 8, "references": {"notes_sentences": 5, "gold_sentences": 2}}) == \
        "no exported sentence shares a 8-word run with 5 notes sentences or 2 gold sentences."
