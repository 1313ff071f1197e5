"""Bad input that is not about a single module: full disks, read-only folders, huge notes."""

import os
import subprocess
import sys
from contextlib import contextmanager

import polars as pl
import pytest

from factory.data.corpus import Note, split_sentences
from factory.core.errors import FactoryError
from factory.data.run_folder import Run
from factory.data.store import SILVER_SCHEMA, ShardWriter
from tests.conftest import ROOT


@contextmanager
def small_filesystem(path, options):
    """A real tmpfs (full disk, read-only) where this user may mount one; skipped elsewhere."""
    path.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False)


def _rows(n, start=0):
    return [{"row_id": f"{i:032x}", "source": "silver", "text": f"sentence {i} " + "x" * 400, "labels": ["none"]}
            for i in range(start, start + n)]


def test_a_full_disk_fails_cleanly_and_keeps_committed_shards(tmp_path):
    with small_filesystem(tmp_path / "disk", "size=256k") as disk:
        writer = ShardWriter(disk / "silver", SILVER_SCHEMA)
        first = writer.write(_rows(5))
        with pytest.raises(FactoryError, match="No space left on device"):
            writer.write([{**row, "text": os.urandom(2000).hex()} for row in _rows(400, start=5)])
        assert sorted(p.name for p in (disk / "silver").iterdir()) == [first.name]  # no half-written shard
        assert pl.read_parquet(first).height == 5


def test_a_read_only_output_folder_is_refused(tmp_path):
    with small_filesystem(tmp_path / "ro", "ro,size=64k") as read_only:
        with pytest.raises(FactoryError, match="cannot create output folder|not writable"):
            Run.open(read_only / "run")
        result = subprocess.run([sys.executable, str(ROOT / "bin" / "generate"), "schemas", "--out", str(read_only)],
                                capture_output=True, text=True)
        assert result.returncode == 2 and result.stderr.startswith("error: ")
        assert "Traceback" not in result.stderr


def test_a_5_mb_single_note_is_split_with_valid_offsets():
    sentence = "Patient number {} reports forgetting appointments and needs reminders from her son. "
    text = "".join(sentence.format(i) + ("\n" if i % 7 == 0 else "") for i in range(60_000))
    assert len(text) > 5_000_000
    sentences = list(split_sentences(Note("huge", text)))
    assert len(sentences) == 60_000
    assert all(text[s.char_start : s.char_end] == s.text for s in sentences[::997])
