"""Review decisions as data: an append-only side table `<run>/<dataset>_review/`, one event per shard.

Every decision (accept, reject, correct, unsure), every skip (a row passed by undecided) and every undo (a `retract` event naming the decision it takes
back) is one small Parquet shard, written to a temporary file, fsynced and renamed into place before the
browser hears "saved": a killed server loses nothing and never leaves a half-written shard. Events are
never rewritten; `compact()` folds many shards into one (readers drop repeated `event_id`s, so a crash
between writing the folded shard and deleting the old ones is harmless). The writing itself (the append
lock, the atomic shard, the fsyncs, the fold) is the data layer's: `SideTable.append()` and `fold()`.

A reviewer's current decision on a row is their latest decision event on it that no retract event took
back, and only while the row's text is unchanged (`text_sha256`, through SideTable kind "review"). Undoing
the latest decision on a row therefore restores the one before it, if any.
"""

from __future__ import annotations

import fcntl
import re
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

from factory.core.errors import FactoryError
# The reading half lives in the data layer (compare, gold import, export and quality read decisions there).
from factory.data.reviews import DATASETS, DECISIONS, KIND, RETRACT, REVIEW_SCHEMA, SKIP, Event, resolve  # noqa: F401
from factory.data.reviews import current_decisions as read_current_decisions
from factory.data.side_tables import SideTable
from factory.data.store import ensure_writable_dir, read_shard, utc_now

MAX_NOTE_CHARS = 500
COMPACT_AT = 256  # shards; folded into one when a server starts on a folder with more
_REVIEWER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


def check_reviewer(name: str) -> str:
    if not _REVIEWER.match(name or ""):
        raise FactoryError(f"reviewer name {name!r}: use 1-64 letters, digits, '.', '_', '-', '@'")
    return name


class ReviewLog:
    """The review side table of one dataset in one run folder; appends are serialised across processes."""

    def __init__(self, run_dir: Path, dataset: str):
        if dataset not in DATASETS:
            raise FactoryError(f"unknown review dataset {dataset!r}; known: {', '.join(DATASETS)}")
        self.run_dir, self.dataset = Path(run_dir), dataset
        self.table = SideTable(run_dir, dataset, KIND)
        self.folder = self.table.folder
        self._last = datetime.min.replace(tzinfo=utc_now().tzinfo)

    def hold(self, reviewer: str):
        """An open file whose lock says "this reviewer is reviewing this dataset" until the process ends (a
        second server for the same reviewer would keep a stale view of their decisions)."""
        ensure_writable_dir(self.folder)
        handle = (self.folder / f".reviewer-{check_reviewer(reviewer)}.lock").open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise FactoryError(f"{reviewer} is already reviewing {self.dataset} of {self.run_dir} in another "
                               "review server; use that one or stop it first") from None
        return handle

    def _stamp(self) -> datetime:
        """Now, strictly after this log's previous event (the order of one reviewer's events is their order)."""
        now = utc_now()
        self._last = now if now > self._last else self._last + timedelta(microseconds=1)
        return self._last

    def append(self, *, row_id: str, text_sha256: str, reviewer: str, decision: str, shown_labels: Iterable[str] = (),
               corrected_labels: Iterable[str] = (), phi_flag: bool = False, note: str = "",
               retracts: str | None = None) -> Event:
        if decision not in (*DECISIONS, RETRACT, SKIP):
            raise FactoryError(f"unknown decision {decision!r}")
        if (decision == RETRACT) != (retracts is not None):
            raise FactoryError("a retract event, and only one, names the event it takes back")
        event = Event(uuid.uuid4().hex, row_id, text_sha256, self.dataset, check_reviewer(reviewer), decision,
                      tuple(shown_labels), tuple(corrected_labels) if decision == "correct" else (), bool(phi_flag),
                      (note or "")[:MAX_NOTE_CHARS], retracts, self._stamp())
        self.table.append(pl.DataFrame([event.as_row()], schema=REVIEW_SCHEMA))  # durable before "saved"
        return event

    def read(self) -> pl.DataFrame:
        with self.table.locked():
            return self._read_unlocked()

    def _read_unlocked(self) -> pl.DataFrame:
        paths = self.table.shards()
        if not paths:
            return pl.DataFrame(schema=REVIEW_SCHEMA)
        frame = pl.concat([read_shard(p).select(list(REVIEW_SCHEMA)).cast(REVIEW_SCHEMA) for p in paths])
        return frame.unique("event_id", keep="first", maintain_order=True).sort("created_at", maintain_order=True)

    def events(self, reviewer: str | None = None) -> list[Event]:
        frame = self.read()
        if reviewer is not None:
            frame = frame.filter(pl.col("reviewer") == reviewer)
        events = [Event.from_row(row) for row in frame.iter_rows(named=True)]
        if events:  # new events sort after these even if the clock went back
            self._last = max(self._last, max(e.created_at for e in events))
        return events

    def compact(self, at: int = COMPACT_AT) -> bool:
        """Fold the shards into one when there are more than `at`; True when it did."""
        with self.table.locked():
            paths = self.table.shards()
            if len(paths) <= at:
                return False
            self.table.fold(self._read_unlocked(), paths)  # every event, each once
            return True


def current_decisions(run_dir: Path, dataset: str, reviewer: str | None = None) -> pl.DataFrame:
    """One row per (row_id, reviewer): the current decision on every dataset row whose text is unchanged
    since it was reviewed (columns of REVIEW_SCHEMA plus `final_labels`); read in factory.data.reviews."""
    return read_current_decisions(run_dir, dataset, reviewer)
