"""Side tables: tables keyed by `row_id` that judge a dataset without ever rewriting it.

Each lives in `<run>/<dataset>_<kind>/` (silver_check, silver_consistency, silver_noise, bronze_check,
bronze_dedup, bronze_phi, and the clinician review). A judgement applies to a row only while the row is still
what was judged: the same text (and, where labels were judged, the same labels). `SideTable.current()` is
that rule, written once; every flag (`compare`, `export`, the quality report) is read through `flagged()`,
and every judgement is written here: by a stage through `writer()` (atomic keyed shards appended under the
run lock), or by the review app through `append()` (one durable shard per event under the table's own lock,
since the app writes while other commands run on the folder) and `fold()`.

`KINDS` is the one table of kinds: folder suffix, the command that writes it, the judged columns, the
column keying one judgement, and the predicate that makes a row "flagged".
"""

from __future__ import annotations

import fcntl
import hashlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from factory.core.errors import FactoryError
from factory.data.store import (ShardWriter, atomic_write_parquet, ensure_writable_dir, fsync_folder, next_shard_path,
                                 read_dataset, read_key_values, remove_stale_temps, shard_paths)

DEFAULT_MIN_AGREEMENT = 0.6  # self-consistency below this (or a majority unlike the silver label) flags a silver row


def side_table_dir(run_dir: Path, dataset: str, kind: str) -> Path:
    """`<run>/<dataset>_<kind>/`, e.g. silver_check, bronze_dedup."""
    return Path(run_dir) / f"{dataset}_{kind}"


def text_sha256(text: str | None) -> str:
    return hashlib.sha256((text or "").encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Kind:
    """How one kind of side table is written, matched to the rows it judged, and read as a flag."""

    name: str  # the folder suffix: <run>/<dataset>_<name>/
    judged: tuple[str, ...]  # columns that must still equal the dataset row: "text", "labels", "text_sha256"
    newest: str | None  # column ordering repeated judgements (latest wins); None: every judgement is kept
    produced_by: str  # the command that writes it (named in errors)
    flag: Callable[..., pl.Expr] | None = None  # which current judgements flag their row; None: read elsewhere
    key_column: str | None = None  # the column keying one judgement (what a resumed writer skips)


KINDS = {
    "check": Kind("check", ("text", "labels"), "created_at", "check",
                  lambda: pl.col("verdict") == "reject", "check_key"),
    "consistency": Kind("consistency", ("text", "labels"), "created_at", "consistency",
                        lambda min_agreement=DEFAULT_MIN_AGREEMENT:
                        ~(pl.col("silver_agrees") & (pl.col("agreement") >= min_agreement)), "consistency_key"),
    # Rerun with another threshold, encoder or reference set, a row is judged again and the latest judgement wins.
    "dedup": Kind("dedup", ("text",), "created_at", "dedup", lambda: pl.col("duplicate"), "dedup_key"),
    "phi": Kind("phi", ("text_sha256",), "scanned_at", "check-phi", lambda: pl.col("phi_status") != "pass", "phi_key"),
    # Label-noise flags of the quality report: a gold-trained classifier confidently disagrees with silver.
    "noise": Kind("noise", ("text", "labels"), "created_at", "quality", lambda: pl.col("flagged"), "noise_key"),
    # Clinician review: append-only decision events (several per row: reviewers, undo); `current()` gives every
    # event still about the row's text, and factory.data.reviews resolves them to one decision per reviewer.
    "review": Kind("review", ("text_sha256",), None, "review"),
}

# The folders of a run that are not side tables, and the command that writes each.
DATASETS = {"silver": "label", "bronze": "synthesize", "bronze_requests": "synthesize"}


def producer_of(folder_name: str) -> str | None:
    """The command that writes a run's folder (`silver`, `bronze_dedup`, ...), to say what to run or rerun."""
    if folder_name in DATASETS:
        return DATASETS[folder_name]
    dataset, _, kind = folder_name.partition("_")
    return KINDS[kind].produced_by if dataset in ("silver", "bronze") and kind in KINDS else None


def require_dataset(run_dir: Path, dataset: str) -> Path:
    """`<run>/<dataset>`, or one error naming the command that writes it."""
    folder = Path(run_dir) / dataset
    if not shard_paths(folder):
        raise FactoryError(f"no {dataset} shards in {folder}; run `bin/generate {producer_of(dataset)}` first")
    return folder


class SideTable:
    """One side table of one dataset in one run folder."""

    def __init__(self, run_dir: Path, dataset: str, kind: str):
        if kind not in KINDS:
            raise FactoryError(f"unknown side table kind {kind!r}; known: {', '.join(KINDS)}")
        self.run_dir, self.dataset, self.kind = Path(run_dir), dataset, KINDS[kind]
        self.folder = side_table_dir(run_dir, dataset, kind)
        self._held = 0  # depth of `locked()` in the thread holding it (the file lock is taken once)
        self._thread_lock = threading.RLock()  # threads of one process (the review app's) take turns too

    # ------------------------------------------------------------------------------------------ write

    def writer(self, schema: dict) -> ShardWriter:
        """Appends atomic shards of judgements; the caller holds the run lock (shard numbering relies on it)."""
        return ShardWriter(self.folder, schema)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """The table's own append lock (`<folder>/.lock`): appenders in any process take turns, and a reader
        holding it sees no shard half-folded. Re-entrant within one thread."""
        with self._thread_lock:
            if self._held:
                self._held += 1
                try:
                    yield
                finally:
                    self._held -= 1
                return
            ensure_writable_dir(self.folder)
            with (self.folder / ".lock").open("a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)  # released by the kernel too when a holder is killed
                self._held = 1
                try:
                    remove_stale_temps(self.folder)  # no write is in flight while the lock is held
                    yield
                finally:
                    self._held = 0
                    fcntl.flock(handle, fcntl.LOCK_UN)

    def append(self, frame: pl.DataFrame) -> Path:
        """One shard appended under the table's lock and durable on return (written to a temporary file,
        fsynced, renamed, the folder fsynced): a kill at any point leaves the shard whole or absent."""
        with self.locked():
            path = self._next_shard()
            atomic_write_parquet(frame, path)
            fsync_folder(self.folder)
            return path

    def fold(self, frame: pl.DataFrame, replaced: list[Path]) -> Path:
        """Replace the shards `replaced` by one shard holding `frame` (every row of them, as the caller read
        them under `locked()`): the new shard is durable before any old one goes, so a kill in between
        leaves rows twice (readers of such a table drop repeats), never zero times."""
        with self.locked():
            path = self.append(frame)
            for old in replaced:
                old.unlink()
            fsync_folder(self.folder)
            return path

    def _next_shard(self) -> Path:
        try:
            return next_shard_path(self.folder)
        except FactoryError:
            raise FactoryError(f"{self.folder} has 100000 shards; restart `bin/generate {self.kind.produced_by}` "
                               "to compact them") from None

    def shards(self) -> list[Path]:
        return shard_paths(self.folder)

    def keys(self) -> set[str]:
        """Keys of the committed judgements: a resumed writer skips them (exactly once)."""
        if self.kind.key_column is None:
            raise FactoryError(f"side table kind {self.kind.name!r} has no key column")
        return read_key_values(self.folder, self.kind.key_column)

    # ------------------------------------------------------------------------------------------- read

    def exists(self) -> bool:
        return bool(shard_paths(self.folder))

    def read(self) -> pl.DataFrame | None:
        # Shards written before a kind had its key column are read beside newer ones (the column is null there).
        return read_dataset(self.folder, relaxed=True) if self.exists() else None

    def dataset_rows(self) -> pl.DataFrame:
        return read_dataset(self.run_dir / self.dataset)

    def current(self, rows: pl.DataFrame | None = None) -> pl.DataFrame | None:
        """The judgement of every row whose judged fields are unchanged (the latest one where a row was
        judged more than once), joined to the dataset's row ids; None when the table was never written."""
        table = self.read()
        if table is None:
            return None
        if self.kind.newest:
            table = table.sort(self.kind.newest, maintain_order=True).unique("row_id", keep="last", maintain_order=True)
        rows = self.dataset_rows() if rows is None else rows
        wanted = [c for c in ("text", "labels") if c in rows.columns]
        rows = rows.select("row_id", *wanted)
        if "text_sha256" in self.kind.judged:
            rows = rows.with_columns(pl.col("text").map_elements(text_sha256, return_dtype=pl.String)
                                     .alias("_current_sha256"))
        judged_cols = [c for c in table.columns if c != "row_id" and c not in wanted]
        joined = rows.join(table.select("row_id", *judged_cols, *[c for c in wanted if c in table.columns]),
                           on="row_id", suffix="_judged")
        same = pl.lit(True)
        for column in self.kind.judged:
            if column == "text_sha256":
                same &= pl.col("text_sha256") == pl.col("_current_sha256")
            elif column == "labels":
                same &= pl.col("labels").list.join("|") == pl.col("labels_judged").list.join("|")
            else:
                same &= pl.col(column) == pl.col(f"{column}_judged")
        drop = [c for c in joined.columns if c.endswith("_judged") or c == "_current_sha256"]
        return joined.filter(same).drop(drop)

    def _run_hint(self, again: bool = False) -> str:
        return f"run `bin/generate {self.kind.produced_by} --run {self.run_dir}`{' again' if again else ' first'}"

    def require_current(self, complete: bool = False, rows: pl.DataFrame | None = None,
                        current: pl.DataFrame | None = None) -> pl.DataFrame:
        """`current()`, or one clear error naming the command to run; with `complete`, every dataset row
        must have a current judgement (a row added or changed since then is an error, never a pass).
        `rows` are the dataset rows as the caller read them; `current`, their current judgements if known."""
        current = self.current(rows) if current is None else current
        if current is None:
            raise FactoryError(f"no {self.kind.name} table for {self.dataset} in {self.run_dir}; {self._run_hint()}")
        if complete:
            all_ids = set((self.dataset_rows() if rows is None else rows)["row_id"].to_list())
            stale = all_ids - set(current["row_id"].to_list())
            if stale:
                raise FactoryError(f"{len(stale)} of {len(all_ids)} {self.dataset} rows in {self.run_dir} are newer than "
                                   f"the {self.kind.name} table; {self._run_hint(again=True)}")
        return current

    def flagged(self, complete: bool = False, rows: pl.DataFrame | None = None, current: pl.DataFrame | None = None,
                **params) -> set[str]:
        """Row ids the kind's predicate flags among the current judgements (refused as `require_current`)."""
        if self.kind.flag is None:
            raise FactoryError(f"side table kind {self.kind.name!r} has no flag; read it through its own module")
        table = self.require_current(complete, rows, current)
        return set(table.filter(self.kind.flag(**params))["row_id"].to_list())


# ----------------------------------------------------------------------------------- the flags in use


def rejected_row_ids(run_dir: Path, dataset: str, rows: pl.DataFrame | None = None) -> set[str]:
    """Rows the verifier rejected (for their current text and labels)."""
    return SideTable(run_dir, dataset, "check").flagged(rows=rows)


def low_agreement_row_ids(run_dir: Path, min_agreement: float, rows: pl.DataFrame | None = None) -> set[str]:
    """Silver rows to leave out: the majority of samples disagrees with the silver labels, agreement is below
    the threshold, or the row was never sampled (no evidence of confidence)."""
    table = SideTable(run_dir, "silver", "consistency")
    rows = table.dataset_rows() if rows is None else rows
    judged = table.require_current(rows=rows)
    confident = set(judged.filter(~table.kind.flag(min_agreement=min_agreement))["row_id"].to_list())
    return set(rows["row_id"].to_list()) - confident


def duplicate_row_ids(run_dir: Path, rows: pl.DataFrame | None = None) -> set[str]:
    """Bronze rows dedup flagged; every bronze row must have been compared as it is now."""
    return SideTable(run_dir, "bronze", "dedup").flagged(complete=True, rows=rows)


def quarantined_row_ids(run_dir: Path, rows: pl.DataFrame | None = None) -> set[str]:
    """Bronze rows the PHI scan quarantined; every bronze row must have been scanned as it is now."""
    return SideTable(run_dir, "bronze", "phi").flagged(complete=True, rows=rows)


def side_flags(run_dir: Path, role: str, rows: pl.DataFrame) -> set[str] | None:
    """Rows any written quality side table of `role` flags (check; consistency for silver, dedup for bronze),
    for selection's side-table settings; None when none of them was written."""
    flagged, found = set(), False
    for kind in ("check", "consistency" if role == "silver" else "dedup"):
        table = SideTable(run_dir, role, kind)
        current = table.current(rows)
        if current is not None:
            found = True
            flagged |= table.flagged(rows=rows, current=current)
    return flagged if found else None


def excluded_row_ids(role: str, run_dir: Path, rows: pl.DataFrame, min_agreement: float | None, drop_rejected: bool,
                     drop_duplicates: bool) -> dict[str, set[str]]:
    """{reason: row ids} the user's filters (--drop-rejected, --silver-min-agreement, --drop-duplicates) leave
    out of `rows`, one dataset of one run folder as read; empty when no filter applies to the role."""
    excluded: dict[str, set[str]] = {}
    if drop_rejected:
        excluded["verifier rejected"] = rejected_row_ids(run_dir, role, rows)
    if role == "silver" and min_agreement is not None:
        excluded[f"agreement < {min_agreement:g}"] = low_agreement_row_ids(run_dir, min_agreement, rows)
    if role == "bronze" and drop_duplicates:
        excluded["duplicate"] = duplicate_row_ids(run_dir, rows)
    return excluded
