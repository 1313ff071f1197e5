"""export and clinician review: a bronze row a reviewer flagged for PHI or rejected never leaves."""

import json

import polars as pl

from factory.quality.privacy import export_bundle

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
