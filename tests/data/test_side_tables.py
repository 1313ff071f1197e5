"""The one table of kinds: producers, flags, the write half, and side tables written before their key column."""

from __future__ import annotations

import polars as pl
import pytest

from factory.core.errors import FactoryError
from factory.data.run_folder import producer_of
from factory.data.side_tables import KINDS, SideTable, excluded_row_ids
from factory.data.store import atomic_write_parquet
from tests.stages.local_runs import BRONZE_TEXTS, add_silver


def test_every_run_folder_names_its_producer_from_the_kinds():
    assert producer_of("silver") == "label" and producer_of("bronze_requests") == "synthesize"
    for kind, spec in KINDS.items():
        assert producer_of(f"bronze_{kind}") == producer_of(f"silver_{kind}") == spec.produced_by
    assert producer_of("silver_noise") == "quality" and producer_of("bronze_phi") == "check-phi"
    assert producer_of("quality") is None and producer_of("gold_check") is None


def _check_rows(silver, verdicts):
    return [{"row_id": r["row_id"], "text": r["text"], "labels": r["labels"], "verdict": v, "check_key": f"k{i}",
             "created_at": r["created_at"]} for i, (r, v) in enumerate(zip(silver, verdicts))]


def test_the_write_half_appends_keyed_shards_and_flags_come_from_the_kind(tmp_path):
    run = tmp_path / "run"
    silver = add_silver(run, BRONZE_TEXTS[:3])
    table = SideTable(run, "silver", "check")
    with pytest.raises(FactoryError, match="no check table for silver .*bin/generate check --run"):
        table.flagged()
    schema = {"row_id": pl.String, "text": pl.String, "labels": pl.List(pl.String), "verdict": pl.String,
              "check_key": pl.String, "created_at": pl.Datetime("us", "UTC")}
    table.writer(schema).write(_check_rows(silver, ["accept", "reject", "accept"]))
    assert table.keys() == {"k0", "k1", "k2"} and table.flagged() == {"s1"}
    frame = pl.DataFrame({"row_id": ["s0", "s1", "s2"], "text": BRONZE_TEXTS[:3], "labels": [["none"]] * 3})
    assert excluded_row_ids("silver", run, frame, None, True, False) == {"verifier rejected": {"s1"}}
    assert excluded_row_ids("silver", run, frame, None, False, False) == {}


def test_a_table_written_before_its_key_column_is_read_beside_newer_shards(tmp_path):
    run = tmp_path / "run"
    add_silver(run, BRONZE_TEXTS[:2])
    folder = run / "silver_noise"
    folder.mkdir()
    old = pl.DataFrame({"row_id": ["s0"], "text": [BRONZE_TEXTS[0]], "labels": [["none"]], "flagged": [True],
                        "created_at": [pl.Series([0]).cast(pl.Datetime("us", "UTC"))[0]]})
    atomic_write_parquet(old, folder / "part-00000.parquet")
    table = SideTable(run, "silver", "noise")
    assert table.keys() == set()  # the old shard keys nothing: its rows are judged again
    new = old.with_columns(pl.lit("s1").alias("row_id"), pl.lit(BRONZE_TEXTS[1]).alias("text"),
                           pl.lit(False).alias("flagged"), pl.lit("k1").alias("noise_key"))
    atomic_write_parquet(new, folder / "part-00001.parquet")
    assert table.keys() == {"k1"} and table.flagged() == {"s0"} and table.current().height == 2
