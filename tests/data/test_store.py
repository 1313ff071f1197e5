"""Parquet shards: the one atomic writer, the one shard lister, the readers and the errors they give."""

from __future__ import annotations

import os

import polars as pl
import pytest

from factory.core.errors import FactoryError
from factory.data import store
from factory.data.store import (ShardWriter, atomic_write_file, atomic_write_parquet, existing_values, next_shard_path,
                                read_dataset, read_json, read_key_values, shard_paths)

SCHEMA = {"row_id": pl.String, "text": pl.String}


def write_shards(folder, count=3):
    """`count` shards of two rows each, through the factory's shard writer."""
    writer = ShardWriter(folder, SCHEMA)
    for i in range(count):
        writer.write([{"row_id": f"r{i}a", "text": "a"}, {"row_id": f"r{i}b", "text": "b"}])
    return sorted(folder.glob("part-*.parquet"))


def damage(path, kind):
    data = path.read_bytes()
    path.write_bytes({"empty": b"", "truncated": data[: len(data) // 2], "garbage": b"not parquet at all " * 20}[kind])


@pytest.mark.parametrize("kind", ["empty", "truncated", "garbage"])
def test_reading_a_damaged_shard_names_it_and_points_at_runs_check(tmp_path, kind):
    run = tmp_path / "run"
    shards = write_shards(run / "silver")
    damage(shards[1], kind)
    for read in (lambda: read_dataset(run / "silver"), lambda: existing_values(run / "silver", "row_id")):
        with pytest.raises(FactoryError) as caught:
            read()
        message = str(caught.value)
        assert str(shards[1]) in message and f"bin/generate runs --check {run}" in message, message
        assert "\n" not in message


def test_a_shard_of_other_columns_is_named(tmp_path):
    run = tmp_path / "run"
    write_shards(run / "bronze", 2)
    pl.DataFrame({"something": [1, 2]}).write_parquet(run / "bronze" / "part-00002.parquet")
    with pytest.raises(FactoryError, match="part-00002.parquet"):
        read_dataset(run / "bronze")
    with pytest.raises(FactoryError, match="part-00002.parquet"):
        existing_values(run / "bronze", "row_id")


def test_one_lister_for_factory_shards_and_for_user_folders(tmp_path):
    folder = tmp_path / "gold"
    folder.mkdir()
    for name in ("part-00001.parquet", "part-00000.parquet", "mine.parquet", ".part-00002.parquet.tmp-7",
                 ".hidden.parquet", "notes.txt", "part-1.parquet"):
        (folder / name).write_bytes(b"")
    assert [p.name for p in shard_paths(folder)] == ["part-00000.parquet", "part-00001.parquet"]
    assert [p.name for p in shard_paths(folder, any_name=True)] == [
        "mine.parquet", "part-00000.parquet", "part-00001.parquet", "part-1.parquet"]
    assert shard_paths(tmp_path / "missing") == shard_paths(tmp_path / "missing", any_name=True) == []


def test_the_shard_writer_numbers_after_the_last_shard_and_drops_a_killed_writers_temp(tmp_path):
    folder = tmp_path / "silver"
    write_shards(folder, 2)
    (folder / ".part-00002.parquet.tmp-99999").write_bytes(b"half a shard")  # what a kill leaves
    writer = ShardWriter(folder, SCHEMA)
    assert not list(folder.glob(".part-*"))
    assert writer.write([]) is None
    assert writer.write([{"row_id": "x", "text": "y", "ignored": 1}]).name == "part-00002.parquet"
    assert writer.rows_written == 1 and read_dataset(folder).height == 5
    assert read_dataset(folder).columns == ["row_id", "text"]  # the schema's columns, in its order


def test_shard_numbers_stop_before_a_name_the_lister_would_not_see(tmp_path):
    (tmp_path / "part-99999.parquet").write_bytes(b"")
    with pytest.raises(FactoryError, match="100000 shards"):
        next_shard_path(tmp_path)


def test_a_failed_parquet_write_leaves_neither_a_file_nor_its_temp(tmp_path, monkeypatch):
    target = tmp_path / "new" / "deeper" / "t.parquet"
    atomic_write_parquet(pl.DataFrame({"a": [1]}), target)  # the folder is made
    assert pl.read_parquet(target)["a"].to_list() == [1]

    def fail(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store.os, "replace", fail)
    with pytest.raises(FactoryError, match=r"cannot write .*t.parquet: No space left on device"):
        atomic_write_parquet(pl.DataFrame({"a": [2]}), target)
    assert sorted(p.name for p in target.parent.iterdir()) == ["t.parquet"]
    assert pl.read_parquet(target)["a"].to_list() == [1]  # the old file, whole


def test_a_report_file_is_written_by_its_kind(tmp_path):
    atomic_write_file(tmp_path / "t.parquet", pl.DataFrame({"a": [1, 2]}))
    atomic_write_file(tmp_path / "s.json", {"k": [1]})
    atomic_write_file(tmp_path / "r.md", "# é\n")
    atomic_write_file(tmp_path / "b.png", b"\x89PNG")
    assert pl.read_parquet(tmp_path / "t.parquet")["a"].to_list() == [1, 2]
    assert read_json(tmp_path / "s.json") == {"k": [1]}
    assert (tmp_path / "r.md").read_text(encoding="utf-8") == "# é\n"
    assert (tmp_path / "b.png").read_bytes() == b"\x89PNG"
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]


def test_a_relaxed_read_stacks_shards_written_before_a_column_existed(tmp_path):
    folder = tmp_path / "silver_noise"
    atomic_write_parquet(pl.DataFrame({"row_id": ["a"], "flagged": [True]}), folder / "part-00000.parquet")
    atomic_write_parquet(pl.DataFrame({"row_id": ["b"], "flagged": [False], "noise_key": ["k"]}),
                         folder / "part-00001.parquet")
    with pytest.raises(FactoryError, match="part-00001.parquet.*columns differ"):
        read_dataset(folder)
    relaxed = read_dataset(folder, relaxed=True)
    assert relaxed["noise_key"].to_list() == [None, "k"]
    assert read_key_values(folder, "noise_key") == {"k"}  # the old shard keys nothing
    with pytest.raises(FactoryError, match="no Parquet shards"):
        read_dataset(tmp_path / "empty")
