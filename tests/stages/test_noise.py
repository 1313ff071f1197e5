"""The quality report's label-noise flags as a stage run by the runner."""

from __future__ import annotations

from datetime import datetime, timezone

import polars as pl
import pytest

from factory.data.side_tables import SideTable
from factory.data.store import read_dataset
from factory.stages.noise import NOISE_SCHEMA, NoiseFlagsTask, write_noise_flags
from factory.stages.runner import run_local
from tests.stages.local_runs import BRONZE_TEXTS, add_silver, manifest, stop_at


def _flags(silver: list[dict], flagged: set[int]) -> pl.DataFrame:
    return pl.DataFrame([{"row_id": r["row_id"], "text": r["text"], "labels": r["labels"], "classifier_labels": ["none"],
                          "flagged": i in flagged, "reason": "a reason" if i in flagged else None,
                          "confidence": 0.95 if i in flagged else None,
                          "created_at": datetime(2026, 1, 2, tzinfo=timezone.utc)} for i, r in enumerate(silver)],
                        schema=NOISE_SCHEMA, strict=False)


def test_stopped_noise_flags_are_marked_interrupted_and_a_rerun_writes_each_once(tmp_path):
    run = tmp_path / "run"
    silver = add_silver(run, BRONZE_TEXTS)
    flags = _flags(silver, {1, 4})
    with pytest.raises(KeyboardInterrupt):
        run_local(stop_at(NoiseFlagsTask(flags, 0.9, "gold-1"), 2), run)
    assert manifest(run)["stages"]["silver_noise"]["state"] == "interrupted"
    stats = write_noise_flags(run, flags, 0.9, "gold-1")
    assert stats.skipped == 1 and stats.rows == len(silver) - 1
    assert read_dataset(run / "silver_noise")["row_id"].n_unique() == read_dataset(run / "silver_noise").height == len(silver)
    stage = manifest(run)["stages"]["silver_noise"]
    assert stage["state"] == "complete" and stage["flagged"] == 2 and stage["threshold"] == 0.9
    assert SideTable(run, "silver", "noise").flagged() == {"s1", "s4"}

    write_noise_flags(run, _flags(silver, {0}), 0.8, "gold-1")  # another threshold: flagged again, latest wins
    assert SideTable(run, "silver", "noise").flagged() == {"s0"}
