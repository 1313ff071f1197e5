"""Clinician review decisions, read from the side table `<run>/<dataset>_review/` (kind "review").

The table is written by factory.review.store (the browser app); this module is the reading half, in the
data layer, so `compare`, `gold import --from-review`, `export` and `quality` use the decisions without
importing the review app. A reviewer's current decision on a row is their latest decision event on it that
no `retract` event took back, and only while the row's text is unchanged (`SideTable(..., "review")`).

Several reviewers may decide on one row. `consensus()` folds them into one verdict per row: `rejected`
(any reviewer rejected it), `agreed` (every reviewer accepted or corrected it to the same label set: the
reviewed labels), or `disagreed` (they stand behind different label sets). An `unsure` decision (the
reviewer deferred the row) counts for nothing: the row is as if that reviewer never decided on it. A `skip`
event only records that the reviewer passed a row by (the page does not return to it on a reload); it is
never a decision.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import polars as pl

from factory.data.side_tables import SideTable

KIND = "review"
DATASETS = ("silver", "bronze")
DECISIONS = ("accept", "reject", "correct", "unsure")
UNSURE = "unsure"  # deferred: no verdict on the row
RETRACT = "retract"
SKIP = "skip"  # passed by without a decision; not a decision

REVIEW_SCHEMA = {
    "event_id": pl.String,
    "row_id": pl.String,
    "text_sha256": pl.String,
    "dataset": pl.String,
    "reviewer": pl.String,
    "decision": pl.String,  # accept | reject | correct | unsure | retract | skip
    "shown_labels": pl.List(pl.String),  # the row's labels as the reviewer saw them
    "corrected_labels": pl.List(pl.String),  # the reviewer's label set for `correct`; empty otherwise
    "phi_flag": pl.Boolean,
    "note": pl.String,
    "retracts": pl.String,  # for `retract`: the event_id taken back
    "created_at": pl.Datetime("us", "UTC"),
}
DECISION_SCHEMA = {**REVIEW_SCHEMA, "final_labels": pl.List(pl.String)}


@dataclass(frozen=True)
class Event:
    event_id: str
    row_id: str
    text_sha256: str
    dataset: str
    reviewer: str
    decision: str
    shown_labels: tuple[str, ...]
    corrected_labels: tuple[str, ...]
    phi_flag: bool
    note: str
    retracts: str | None
    created_at: datetime

    def as_row(self) -> dict:
        row = dict(self.__dict__)
        row["shown_labels"], row["corrected_labels"] = list(self.shown_labels), list(self.corrected_labels)
        return row

    @classmethod
    def from_row(cls, row: dict) -> Event:
        return cls(**{**row, "shown_labels": tuple(row["shown_labels"] or ()),
                      "corrected_labels": tuple(row["corrected_labels"] or ()), "note": row["note"] or "",
                      "phi_flag": bool(row["phi_flag"])})

    @property
    def final_labels(self) -> tuple[str, ...]:
        """The labels the reviewer stands behind: shown ones when accepted, corrected ones, none when rejected."""
        return {"accept": self.shown_labels, "correct": self.corrected_labels}.get(self.decision, ())


def resolve(events: Iterable[Event]) -> dict[tuple[str, str], Event]:
    """{(row_id, reviewer): current decision}: the latest decision not taken back by a retract event (skip
    events are no decisions)."""
    events = sorted(events, key=lambda e: e.created_at)
    retracted = {e.retracts for e in events if e.decision == RETRACT}
    current: dict[tuple[str, str], Event] = {}
    for event in events:
        if event.decision in DECISIONS and event.event_id not in retracted:
            current[(event.row_id, event.reviewer)] = event
    return current


def current_decisions(run_dir: Path, dataset: str, reviewer: str | None = None,
                      rows: pl.DataFrame | None = None) -> pl.DataFrame:
    """One row per (row_id, reviewer): the current decision on every dataset row whose text is unchanged
    since it was reviewed (columns of REVIEW_SCHEMA plus `final_labels`); empty when nobody reviewed.
    `rows` (row_id, text) are the dataset rows when the caller has read them already."""
    table = SideTable(run_dir, dataset, KIND)
    if not table.exists():
        return pl.DataFrame(schema=DECISION_SCHEMA)
    events = table.current(rows)
    if reviewer is not None:
        events = events.filter(pl.col("reviewer") == reviewer)
    events = events.select(list(REVIEW_SCHEMA)).unique("event_id", keep="first", maintain_order=True)
    current = resolve(Event.from_row(row) for row in events.iter_rows(named=True))
    out = [{**e.as_row(), "final_labels": list(e.final_labels)} for e in current.values()]
    return pl.DataFrame(out, schema=DECISION_SCHEMA).sort("row_id", "reviewer")


def has_reviews(run_dir: Path, dataset: str) -> bool:
    return SideTable(run_dir, dataset, KIND).exists()


@dataclass
class Consensus:
    """Review verdicts of one dataset, one per reviewed row."""

    agreed: dict[str, tuple[str, ...]]  # row_id -> the label set every reviewer stands behind
    reviewers: dict[str, tuple[str, ...]]  # row_id -> reviewers who decided on it (every reviewed row)
    rejected: set[str]  # some reviewer rejected the row
    disagreed: set[str]  # reviewers accepted/corrected it to different label sets
    phi_flagged: set[str]  # some reviewer flagged the row for PHI

    @property
    def reviewed(self) -> int:
        return len(self.reviewers)


def consensus(decisions: pl.DataFrame) -> Consensus:
    """Fold `current_decisions()` into one verdict per row (labels compared as sets; `unsure` is no verdict)."""
    by_row: dict[str, list[dict]] = {}
    for row in decisions.filter(pl.col("decision") != UNSURE).iter_rows(named=True):
        by_row.setdefault(row["row_id"], []).append(row)
    agreed, reviewers, rejected, disagreed, phi = {}, {}, set(), set(), set()
    for row_id, rows in by_row.items():
        reviewers[row_id] = tuple(sorted(r["reviewer"] for r in rows))
        if any(r["phi_flag"] for r in rows):
            phi.add(row_id)
        if any(r["decision"] == "reject" for r in rows):
            rejected.add(row_id)
            if len({r["decision"] for r in rows}) > 1:
                disagreed.add(row_id)
            continue
        label_sets = {tuple(sorted(r["final_labels"] or ())) for r in rows}
        if len(label_sets) == 1:
            agreed[row_id] = next(iter(label_sets))
        else:
            disagreed.add(row_id)
    return Consensus(agreed, reviewers, rejected, disagreed, phi)


def reviewer_rejected_row_ids(run_dir: Path, dataset: str, rows: pl.DataFrame | None = None) -> set[str]:
    """Rows some reviewer rejected (for their current text)."""
    return consensus(current_decisions(run_dir, dataset, rows=rows)).rejected
