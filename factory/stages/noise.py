"""The label-noise flags of the quality report as a stage: units are silver rows with no request, each
carrying the flag a gold-trained classifier gave it (factory/quality/report.py computes them, a layer above),
into the side table `<run>/silver_noise/`. The runner holds the run lock, resumes exactly once and marks a
stopped write interrupted. Silver itself is never modified.

A row is keyed by its text, labels, the threshold and the gold set the classifier learned from: a report
with another threshold or gold flags every row again and the latest flag wins (`SideTable.current`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl

from factory.data.store import content_key
from factory.stages.context import StageStats
from factory.stages.runner import SideTableTask, Unit, run_local

NOISE_DIR = "silver_noise"
NOISE_SCHEMA = {
    "row_id": pl.String,
    "text": pl.String,
    "labels": pl.List(pl.String),
    "classifier_labels": pl.List(pl.String),
    "flagged": pl.Boolean,
    "reason": pl.String,
    "confidence": pl.Float64,  # the classifier's probability behind the strongest disagreement
    "created_at": pl.Datetime("us", "UTC"),
    "noise_key": pl.String,  # the row's text and labels, the threshold and the gold the classifier learned from
}


class NoiseFlagsTask(SideTableTask):
    name = "noise"
    stage = NOISE_DIR
    title = "label-noise flags (silver)"
    row_schema = NOISE_SCHEMA
    key_column = "noise_key"
    dataset, kind = "silver", "noise"

    def __init__(self, flags: pl.DataFrame, threshold: float, gold_fingerprint: str):
        self.flags, self.threshold, self.gold = flags, threshold, gold_fingerprint

    def identity(self, ctx) -> dict:
        # Threshold and gold key each flag instead (a report with others flags again).
        return {"judge": "gold-trained classifier against silver labels"}

    def total(self) -> int | None:
        return self.flags.height

    def units(self, ctx, done: set[str]) -> Iterator[Unit]:
        for row in self.flags.iter_rows(named=True):
            key = content_key(task=self.name, row_id=row["row_id"], text=row["text"], labels=list(row["labels"]),
                              threshold=self.threshold, gold=self.gold)
            yield Unit(key, {**row, "noise_key": key})

    def summary(self, stats: StageStats) -> dict:
        return {"rows": self.flags.height, "flagged": int(self.flags["flagged"].sum()), "threshold": self.threshold}


def write_noise_flags(run_dir: Path, flags: pl.DataFrame, threshold: float, gold_fingerprint: str) -> StageStats:
    """Write the flags of the run's silver rows into `<run>/silver_noise/` (under the run lock)."""
    return run_local(NoiseFlagsTask(flags, threshold, gold_fingerprint), run_dir)
