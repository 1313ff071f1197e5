"""The PHI scan of bronze (`check-phi`) as a stage: units are bronze rows with no request, each judged by a
scanner the caller builds (factory/quality/phi.py: rules, NER, verbatim overlap with notes and gold), into the
side table `<run>/bronze_phi/`: one keyed row per bronze row with `phi_status` ("pass" / "quarantined") and
`phi_reasons`. The runner holds the run lock (no synthesize appends meanwhile), resumes exactly once and marks a
killed scan interrupted. Bronze itself is never modified.

A rerun with another scanner (rules only or NER), n-gram length or reference set scans every row again (its
key changes) and the latest status wins (`SideTable.current`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl

from factory.core.errors import FactoryError
from factory.data.side_tables import SideTable, text_sha256
from factory.data.store import atomic_write_json, content_key, read_dataset, shard_paths, utc_now
from factory.stages.context import StageStats
from factory.stages.runner import SideTableTask, Unit, run_local

PHI_DIR = "bronze_phi"
SCAN_INFO = "scan.json"
SCAN_BATCH = 256  # sentences the scanner takes at once
PHI_SCHEMA: dict[str, Any] = {
    "row_id": pl.String,
    "phi_status": pl.String,
    "phi_reasons": pl.List(pl.String),
    "phi_types": pl.List(pl.String),
    "text_sha256": pl.String,
    "scanned_at": pl.Datetime("us", "UTC"),
    "phi_key": pl.String,  # the row's text and the scan settings it was scanned with
}


def load_bronze(run: Path) -> pl.DataFrame:
    """The run's bronze, or one error naming what is missing."""
    if not Path(run).is_dir():
        raise FactoryError(f"run folder not found: {run}")
    bronze_dir = Path(run) / "bronze"
    if not shard_paths(bronze_dir):
        raise FactoryError(f"no bronze shards in {bronze_dir}; run `bin/generate synthesize --out {run}` first")
    frame = read_dataset(bronze_dir)
    missing = {"row_id", "text"} - set(frame.columns)
    if missing:
        raise FactoryError(f"{bronze_dir} is not bronze data: missing column(s) {', '.join(sorted(missing))}")
    return frame


class PhiScanTask(SideTableTask):
    """`scanner.scan(texts)` gives the findings of each text (objects with `.type` and `.reason()`);
    `settings` (method, n-gram length, references) are recorded in scan.json and the manifest, and with the
    reference fingerprint key every row."""

    name = "check-phi"
    stage = PHI_DIR
    title = "scanning bronze for PHI"
    unit_name = "sentences"
    row_schema = PHI_SCHEMA
    key_column = "phi_key"
    dataset, kind = "bronze", "phi"

    def __init__(self, scanner, settings: dict, reference_fingerprint: str | None):
        self.scanner, self.settings, self.reference = scanner, settings, reference_fingerprint
        self.run_dir: Path | None = None
        self.bronze: pl.DataFrame | None = None
        self.keys: list[str] = []
        self.info: dict = {}

    def identity(self, ctx) -> dict:
        # The scanner and its references key each row instead (a rerun with others scans again).
        return {"judge": "PHI scan (rules, NER, verbatim overlap)"}

    def prepare(self, ctx) -> None:
        self.run_dir = ctx.run.out
        self.bronze = load_bronze(ctx.run.out)  # as it is under the run lock
        scan = {"method": self.settings.get("method"), "ngram": self.settings.get("ngram"), "reference": self.reference}
        self.keys = [content_key(task=self.name, row_id=row_id, text_sha256=text_sha256(text), **scan)
                     for row_id, text in zip(self.bronze["row_id"], self.bronze["text"])]

    def total(self) -> int | None:
        return self.bronze.height if self.bronze is not None else None

    def units(self, ctx, done: set[str]) -> Iterator[Unit]:
        assert self.bronze is not None, "units() follows prepare()"
        todo = [(key, row_id, text) for key, row_id, text in zip(self.keys, self.bronze["row_id"], self.bronze["text"])
                if key not in done]
        now = utc_now()
        for start in range(0, len(todo), SCAN_BATCH):
            batch = todo[start:start + SCAN_BATCH]
            for (key, row_id, text), hits in zip(batch, self.scanner.scan([t for _, _, t in batch]), strict=True):
                yield Unit(key, {"row_id": row_id, "phi_status": "quarantined" if hits else "pass",
                                 "phi_reasons": [h.reason() for h in hits], "phi_types": sorted({h.type for h in hits}),
                                 "text_sha256": text_sha256(text), "scanned_at": now, "phi_key": key})

    def summary(self, stats: StageStats) -> dict:
        """The status of every bronze row as it is now, also written to scan.json (the data card reads it)."""
        assert self.run_dir is not None and self.bronze is not None, "summary() follows prepare()"
        table = SideTable(self.run_dir, "bronze", "phi")
        current = table.current(self.bronze)
        current = current if current is not None else pl.DataFrame(schema=PHI_SCHEMA)
        quarantined = current.filter(pl.col("phi_status") != "pass")
        by_type = Counter(t for types in quarantined["phi_types"].to_list() for t in types)
        self.info = {"rows": current.height, "passed": current.height - quarantined.height,
                     "quarantined": quarantined.height, "quarantined_by_type": dict(sorted(by_type.items())),
                     **self.settings, "scanned_at": utc_now().isoformat()}
        atomic_write_json(table.folder / SCAN_INFO, self.info)
        return {k: v for k, v in self.info.items() if k != "scanned_at"}


def run_phi_scan(run_dir: Path, scanner, settings: dict, reference_fingerprint: str | None) -> dict:
    """Scan the run's bronze into `<run>/bronze_phi/`; return the scan's summary (as in scan.json)."""
    load_bronze(run_dir)  # before the run is opened: nothing is written for a run without bronze
    task = PhiScanTask(scanner, settings, reference_fingerprint)
    run_local(task, run_dir)
    return task.info
