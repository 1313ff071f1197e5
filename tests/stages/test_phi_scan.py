"""The PHI scan as a stage run by the runner: interrupted marking, exactly-once resume, rescans, and export
refusing a scan that did not finish."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from factory.core.errors import FactoryError
from factory.data.side_tables import SideTable, quarantined_row_ids
from factory.data.store import read_dataset
from factory.quality.privacy import phi_status
from factory.stages.phi_scan import PhiScanTask, run_phi_scan
from factory.stages.runner import run_local
from tests.stages.local_runs import BRONZE_TEXTS, add_bronze, manifest, stop_at


@dataclass
class Hit:
    type: str
    text: str

    def reason(self) -> str:
        return f"{self.type}: {self.text}"


class WordScanner:
    """A stand-in scanner: a sentence holding `word` is a finding."""

    def __init__(self, word: str):
        self.word, self.scanned = word, 0

    def scan(self, texts):
        self.scanned += len(texts)
        return [[Hit("name", self.word)] if self.word in t.lower() else [] for t in texts]


SETTINGS = {"method": "words", "ngram": 8, "references": {}}


def test_a_killed_scan_is_marked_interrupted_export_refuses_it_and_a_rerun_scans_each_row_once(tmp_path):
    run = tmp_path / "run"
    rows = add_bronze(run, BRONZE_TEXTS)
    with pytest.raises(KeyboardInterrupt):
        run_local(stop_at(PhiScanTask(WordScanner("son"), SETTINGS, None), 3), run)
    stage = manifest(run)["stages"]["bronze_phi"]
    assert stage["state"] == "interrupted" and stage["stopped_by"] == "KeyboardInterrupt"
    with pytest.raises(FactoryError, match="did not finish .*check-phi --run"):
        phi_status(run, read_dataset(run / "bronze"))

    scanner = WordScanner("son")
    info = run_phi_scan(run, scanner, SETTINGS, None)
    assert scanner.scanned == len(rows) - 2  # the two rows committed before the stop are not scanned again
    assert sorted(read_dataset(run / "bronze_phi")["row_id"]) == sorted(r["row_id"] for r in rows)
    assert info["rows"] == len(rows) and info["quarantined"] == 1 and info["quarantined_by_type"] == {"name": 1}
    assert quarantined_row_ids(run) == {rows[5]["row_id"]}
    stage = manifest(run)["stages"]["bronze_phi"]
    assert stage["state"] == "complete" and stage["quarantined"] == 1 and "scanned_at" not in stage
    assert json.loads((run / "bronze_phi" / "scan.json").read_text())["method"] == "words"
    assert phi_status(run, read_dataset(run / "bronze")).height == len(rows)


def test_a_rescan_with_other_references_scans_every_row_again_and_the_latest_status_wins(tmp_path):
    run = tmp_path / "run"
    rows = add_bronze(run, BRONZE_TEXTS)
    run_phi_scan(run, WordScanner("son"), SETTINGS, None)
    scanner = WordScanner("lungs")
    run_phi_scan(run, scanner, SETTINGS, "another reference set")
    assert scanner.scanned == len(rows)
    assert quarantined_row_ids(run) == {rows[3]["row_id"]}
    assert SideTable(run, "bronze", "phi").current().height == len(rows)
