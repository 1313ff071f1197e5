"""Bronze dedup: exact and near-duplicate sentences, within bronze and against gold and silver.

Exact = same text after normalisation (case, punctuation, whitespace). Near = cosine similarity of the
bundled MiniLM embeddings (the cached sentence encoder) at or above a threshold. The first bronze row of a
group is kept; later ones point at it (`dup_of`). Verdicts go to the side table `<run>/bronze_dedup/`
(docs/data-contract.md), one keyed row per bronze row, through the runner (lock, manifest, exactly-once
resume, interrupted marking); bronze is never rewritten, `compare --drop-duplicates` leaves flagged rows
out of training.

A row's verdict depends only on the reference and the bronze rows before it, so rows appended later are
judged without changing earlier verdicts; a rerun with another threshold, encoder or reference judges
every row again (its key changes) and the latest verdict wins (`SideTable.current`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from factory.core.errors import FactoryError
from factory.data.rows import Rows, normalise_text
from factory.data.side_tables import SideTable, require_dataset
from factory.data.store import atomic_write_json, content_key, read_dataset, utc_now
from factory.stages.context import StageStats
from factory.stages.runner import SideTableTask, Unit, run_local

DEFAULT_THRESHOLD = 0.92  # MiniLM cosine; measured on the demo: paraphrases with a changed word sit above 0.93
STAGE = "bronze_dedup"

DEDUP_SCHEMA: dict[str, Any] = {
    "row_id": pl.String,
    "text": pl.String,
    "category": pl.String,
    "duplicate": pl.Boolean,
    "reason": pl.String,  # "exact" or "near"; null when kept
    "dup_of": pl.String,  # row_id of the earlier bronze row, or of the gold/silver row it copies
    "dup_source": pl.String,  # bronze / silver / gold
    "similarity": pl.Float64,  # cosine to dup_of, or to the nearest neighbour when kept
    "nearest_id": pl.String,
    "nearest_source": pl.String,
    "threshold": pl.Float64,
    "encoder_hash": pl.String,
    "created_at": pl.Datetime("us", "UTC"),
    "dedup_key": pl.String,  # the row, its text, the threshold, the encoder and the reference it was judged with
}


@dataclass
class Reference:
    """Sentences bronze must not copy: gold and silver."""

    row_ids: list[str]
    sources: list[str]
    texts: list[str]

    @classmethod
    def from_rows(cls, *parts: Rows) -> "Reference":
        ref = cls([], [], [])
        for rows in parts:
            ref.row_ids += rows.row_ids
            ref.sources += rows.sources
            ref.texts += rows.texts
        return ref

    def fingerprint(self) -> str:
        """What a verdict was judged against: changed gold or silver judges every bronze row again."""
        return content_key(reference=sorted(zip(self.row_ids, self.sources, map(normalise_text, self.texts))))


def find_duplicates(ids: list[str], texts: list[str], reference: Reference, embed, threshold: float) -> list[dict]:
    """One verdict per bronze sentence, in order. `embed(texts) -> L2-normalised (n, d) array`."""
    ref_exact: dict[str, tuple[str, str]] = {}
    for rid, source, text in zip(reference.row_ids, reference.sources, reference.texts):
        ref_exact.setdefault(normalise_text(text), (rid, source))
    vectors = embed(list(texts) + list(reference.texts)) if texts else np.zeros((0, 1))
    bronze_vecs, ref_vecs = vectors[:len(texts)], vectors[len(texts):]
    ref_sims = bronze_vecs @ ref_vecs.T if len(reference.texts) else np.zeros((len(texts), 0))
    bronze_sims = bronze_vecs @ bronze_vecs.T
    seen_exact: dict[str, str] = {}
    kept: list[int] = []
    verdicts = []
    for i, (rid, text) in enumerate(zip(ids, texts)):
        norm = normalise_text(text)
        candidates = [(float(ref_sims[i, j]), reference.row_ids[j], reference.sources[j]) for j in
                      ([int(np.argmax(ref_sims[i]))] if ref_sims.shape[1] else [])]
        candidates += [(float(bronze_sims[i, j]), ids[j], "bronze") for j in
                       ([max(kept, key=lambda j: bronze_sims[i, j])] if kept else [])]
        nearest = max(candidates, default=(None, None, None))
        verdict = {"row_id": rid, "duplicate": False, "reason": None, "dup_of": None, "dup_source": None,
                   "similarity": nearest[0], "nearest_id": nearest[1], "nearest_source": nearest[2]}
        if norm in ref_exact:
            verdict.update(duplicate=True, reason="exact", dup_of=ref_exact[norm][0], dup_source=ref_exact[norm][1],
                           similarity=1.0)
        elif norm in seen_exact:
            verdict.update(duplicate=True, reason="exact", dup_of=seen_exact[norm], dup_source="bronze", similarity=1.0)
        elif nearest[0] is not None and nearest[0] >= threshold:
            verdict.update(duplicate=True, reason="near", dup_of=nearest[1], dup_source=nearest[2])
        if not verdict["duplicate"]:
            kept.append(i)
            seen_exact[norm] = rid
        verdicts.append(verdict)
    return verdicts


def dedup_summary(frame: pl.DataFrame) -> dict:
    flagged = frame.filter(pl.col("duplicate"))
    by_reason = {f"{r['reason']} vs {r['dup_source']}": r["len"] for r in
                 flagged.group_by("reason", "dup_source").len().sort("reason", "dup_source").to_dicts()}
    return {"rows": frame.height, "flagged": flagged.height,
            "rate": flagged.height / frame.height if frame.height else 0.0, "by_reason": by_reason}


class DedupTask(SideTableTask):
    """Units are bronze rows, with no request: the verdicts of the rows still to judge are computed at once
    (one embedding pass over bronze and the reference), then each unit is one verdict row."""

    name = "dedup"
    stage = STAGE
    title = "dedup (bronze)"
    row_schema = DEDUP_SCHEMA
    key_column = "dedup_key"
    dataset, kind = "bronze", "dedup"

    def __init__(self, reference: Reference, threshold: float, embedder=None):
        self.reference, self.threshold, self.embedder = reference, threshold, embedder
        self.run_dir: Path | None = None
        self.bronze: pl.DataFrame | None = None
        self.keys: list[str] = []
        self.result: dict = {}

    def identity(self, ctx) -> dict:
        # Threshold, encoder and reference key each verdict instead (a rerun with others judges again).
        return {"judge": "exact and near duplicates (normalised text, sentence-encoder cosine)"}

    def prepare(self, ctx) -> None:
        """Bronze as it is under the run lock (no synthesize can append meanwhile), and each row's key."""
        if self.embedder is None:
            from factory.engines.embedder import shared_embedder

            self.embedder = shared_embedder(None)
        self.run_dir = ctx.run.out
        self.bronze = read_dataset(require_dataset(ctx.run.out, "bronze"))
        reference = self.reference.fingerprint()
        self.keys = [self.unit_key({"threshold": self.threshold, "encoder_hash": self.embedder.fingerprint,
                                    "reference": reference}, row_id=row_id, text=text)
                     for row_id, text in zip(self.bronze["row_id"], self.bronze["text"])]

    def unit_key(self, identity: dict, **inputs: object) -> str:
        return content_key(task=self.name, **inputs, **identity)

    def total(self) -> int | None:
        return self.bronze.height if self.bronze is not None else None

    def units(self, ctx, done: set[str]) -> Iterator[Unit]:
        if all(key in done for key in self.keys):
            return  # nothing to judge: the encoder is not even loaded
        bronze = self.bronze
        assert bronze is not None, "units() follows prepare()"
        verdicts = find_duplicates(bronze["row_id"].to_list(), bronze["text"].to_list(), self.reference,
                                   self.embedder.embed, self.threshold)
        now = utc_now()
        for key, verdict, text, category in zip(self.keys, verdicts, bronze["text"], bronze["category"]):
            yield Unit(key, {**verdict, "text": text, "category": category, "threshold": self.threshold,
                             "encoder_hash": self.embedder.fingerprint, "created_at": now, "dedup_key": key})

    def summary(self, stats: StageStats) -> dict:
        """The counts of the current table (every bronze row as it is now), also written to summary.json."""
        assert self.run_dir is not None and self.bronze is not None, "summary() follows prepare()"
        table = SideTable(self.run_dir, "bronze", "dedup")
        current = table.current(self.bronze)
        summary = dedup_summary(current if current is not None else pl.DataFrame(schema=DEDUP_SCHEMA))
        atomic_write_json(table.folder / "summary.json",
                          {**summary, "threshold": self.threshold, "encoder_hash": self.embedder.fingerprint,
                           "reference_sentences": len(self.reference.texts)})
        self.result = summary
        return {**summary, "threshold": self.threshold}


def run_dedup(run_dir: Path, reference: Reference, threshold: float = DEFAULT_THRESHOLD, embedder=None) -> dict:
    """Judge the run's current bronze into `<run>/bronze_dedup/` and return the counts."""
    if not 0 < threshold <= 1:
        raise FactoryError("--threshold must be in (0, 1]")
    require_dataset(run_dir, "bronze")  # before the run is opened: nothing is written for a run without bronze
    task = DedupTask(reference, threshold, embedder)
    run_local(task, run_dir)
    return task.result


def current_duplicates(run_dir: Path) -> pl.DataFrame | None:
    """The dedup table, restricted to bronze rows whose text is unchanged."""
    return SideTable(run_dir, "bronze", "dedup").current()
