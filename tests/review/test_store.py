"""Review decisions as an append-only side table: one durable shard per event, written through the data
layer (`SideTable.append`, `fold`) under the table's own lock, so appenders in several processes never
clash, a kill leaves no partial shard, and compaction keeps every event."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import polars as pl
import pytest

from factory.core.errors import FactoryError
from factory.data.side_tables import KINDS, SideTable, text_sha256
from factory.data.store import shard_paths
from factory.review.store import ReviewLog, current_decisions

ROOT = Path(__file__).resolve().parents[2]


def rows(run):
    return pl.read_parquet(shard_paths(run / "silver")).select("row_id", "text", "labels").rows(named=True)


def _python(script: str, *args: str, **popen) -> subprocess.Popen:
    """Another process of the factory (another review server, a command reading the run)."""
    return subprocess.Popen([sys.executable, "-c", script, *args], cwd=ROOT, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, **popen)


def _decide(log: ReviewLog, row_id: str, decision: str = "accept", reviewer: str = "alice"):
    return log.append(reviewer=reviewer, decision=decision, row_id=row_id, text_sha256="s", shown_labels=["none"])


def test_events_resolve_per_reviewer_with_undo(review_run):
    log = ReviewLog(review_run, "silver")
    first, second = rows(review_run)[:2]
    sha = SideTable(review_run, "silver", "review")  # the kind is registered
    assert sha.kind is KINDS["review"] and not sha.exists()

    a = dict(row_id=first["row_id"], text_sha256=text_sha256(first["text"]), shown_labels=first["labels"])
    accept = log.append(reviewer="alice", decision="accept", **a)
    correct = log.append(reviewer="alice", decision="correct", corrected_labels=["none"], **a)
    log.append(reviewer="bob", decision="reject", phi_flag=True, note="x" * 900, **a)
    log.append(reviewer="alice", decision="retract", retracts=correct.event_id, **a)  # undo: the accept stands again
    current = {(r["row_id"], r["reviewer"]): r for r in current_decisions(review_run, "silver").iter_rows(named=True)}
    assert current[(first["row_id"], "alice")]["event_id"] == accept.event_id
    assert current[(first["row_id"], "alice")]["final_labels"] == first["labels"]
    bob = current[(first["row_id"], "bob")]
    assert bob["decision"] == "reject" and bob["phi_flag"] and len(bob["note"]) == 500 and bob["final_labels"] == []
    assert len(shard_paths(log.folder)) == 4  # one shard per event

    # a decision applies only to the text it was made on
    log.append(reviewer="alice", decision="accept", row_id=second["row_id"], text_sha256="0" * 64,
               shown_labels=second["labels"])
    assert second["row_id"] not in current_decisions(review_run, "silver")["row_id"].to_list()

    with pytest.raises(FactoryError):
        log.append(reviewer="alice", decision="retract", **a)  # names no event
    with pytest.raises(FactoryError):
        log.append(reviewer="no spaces", decision="accept", **a)


def test_compaction_keeps_every_event(review_run):
    log = ReviewLog(review_run, "bronze")
    for i in range(5):
        log.append(reviewer="alice", decision="accept", row_id=f"r{i}", text_sha256="s", shown_labels=["none"])
    before = log.read()
    assert not log.compact(at=5) and log.compact(at=2)
    assert len(shard_paths(log.folder)) == 1
    assert log.read().equals(before)
    # a crash between writing the folded shard and deleting the old ones leaves duplicates: read once
    (log.folder / "part-00099.parquet").write_bytes(shard_paths(log.folder)[0].read_bytes())
    assert log.read().equals(before)
    log.append(reviewer="alice", decision="reject", row_id="r9", text_sha256="s")
    assert shard_paths(log.folder)[-1].name == "part-00100.parquet"


HOLD_LOCK = """
import sys
from factory.data.side_tables import SideTable
with SideTable(sys.argv[1], "silver", "review").locked():
    print("held", flush=True)
    sys.stdin.readline()
"""


def test_a_decision_waits_for_the_lock_another_process_holds_then_lands(tmp_path):
    log = ReviewLog(tmp_path / "run", "silver")
    _decide(log, "r0")  # no one holds the lock: written at once
    assert len(shard_paths(log.folder)) == 1
    holder = _python(HOLD_LOCK, str(tmp_path / "run"), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == "held"
        writer = threading.Thread(target=_decide, args=(log, "r1"))
        writer.start()
        writer.join(1.0)
        assert writer.is_alive() and len(shard_paths(log.folder)) == 1  # waiting, nothing written meanwhile
        holder.stdin.write("go\n")
        holder.stdin.flush()
        writer.join(60)
        assert not writer.is_alive()
    finally:
        holder.kill()
        holder.wait()
    assert [e.row_id for e in log.events()] == ["r0", "r1"] and len(shard_paths(log.folder)) == 2


APPEND_MANY = """
import sys
from factory.review.store import ReviewLog
log = ReviewLog(sys.argv[1], "silver")
for i in range(6):
    log.append(reviewer=sys.argv[2], decision="accept", row_id=f"{sys.argv[2]}-{i}", text_sha256="s")
"""


def test_appenders_in_several_processes_never_clash(tmp_path):
    run = tmp_path / "run"
    writers = [_python(APPEND_MANY, str(run), name) for name in ("alice", "bob", "carol")]
    assert [w.wait(120) for w in writers] == [0, 0, 0]
    log = ReviewLog(run, "silver")
    assert [p.name for p in shard_paths(log.folder)] == [f"part-{i:05d}.parquet" for i in range(18)]
    events = log.events()
    assert len({e.event_id for e in events}) == 18
    assert sorted(e.row_id for e in events) == sorted(f"{n}-{i}" for n in ("alice", "bob", "carol") for i in range(6))


KILLED_BEFORE_RENAME = """
import os, signal, sys
from factory.review.store import ReviewLog
os.replace = lambda src, dst: os.kill(os.getpid(), signal.SIGKILL)  # the temporary shard is written, not renamed
ReviewLog(sys.argv[1], "silver").append(reviewer="alice", decision="reject", row_id="lost", text_sha256="s")
"""


def test_a_kill_between_the_temporary_shard_and_its_rename_leaves_no_partial_shard(tmp_path):
    run = tmp_path / "run"
    log = ReviewLog(run, "silver")
    _decide(log, "r0")
    before = log.read()
    killed = _python(KILLED_BEFORE_RENAME, str(run))
    assert killed.wait(120) == -9
    assert [p.name for p in log.folder.glob(".part-*")] == [f".part-00001.parquet.tmp-{killed.pid}"]
    assert [p.name for p in shard_paths(log.folder)] == ["part-00000.parquet"] and log.read().equals(before)
    _decide(log, "r1")  # the next writer takes the lock, drops the dead temp and numbers on
    assert [p.name for p in shard_paths(log.folder)] == ["part-00000.parquet", "part-00001.parquet"]
    assert not list(log.folder.glob(".part-*")) and [e.row_id for e in log.events()] == ["r0", "r1"]


def test_a_failed_write_is_one_error_and_leaves_nothing(tmp_path, monkeypatch):
    from factory.data import store

    log = ReviewLog(tmp_path / "run", "silver")
    _decide(log, "r0")

    def full_disk(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store.os, "replace", full_disk)
    with pytest.raises(FactoryError, match="No space left on device"):
        _decide(log, "r1")
    monkeypatch.undo()
    assert sorted(p.name for p in log.folder.iterdir() if p.name != ".lock") == ["part-00000.parquet"]
    assert [e.row_id for e in log.events()] == ["r0"]


KILLED_WHILE_FOLDING = """
import os, pathlib, signal, sys
from factory.review.store import ReviewLog
pathlib.Path.unlink = lambda self, missing_ok=False: os.kill(os.getpid(), signal.SIGKILL)  # folded, nothing deleted
ReviewLog(sys.argv[1], "silver").compact(at=2)
"""


def test_a_kill_while_compacting_keeps_every_event_once(tmp_path):
    run = tmp_path / "run"
    log = ReviewLog(run, "silver")
    for i in range(4):
        _decide(log, f"r{i}")
    before = log.read()
    assert _python(KILLED_WHILE_FOLDING, str(run)).wait(120) == -9
    assert len(shard_paths(log.folder)) == 5  # the folded shard beside the four it holds
    assert log.read().equals(before)
    assert log.compact(at=2) and len(shard_paths(log.folder)) == 1 and log.read().equals(before)
