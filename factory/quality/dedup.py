"""Bronze dedup: exact and near-duplicate sentences, within bronze and against gold and silver.

Exact = same text after normalisation (case, punctuation, whitespace). Near = cosine similarity of the
bundled MiniLM embeddings (the trainer's cached Embedder) at or above a threshold. The first bronze row
of a group is kept; later ones point at it (`dup_of`). Results go to the side table
`<run>/bronze_dedup/` (docs/data-contract.md); bronze is never rewritten, `compare --drop-duplicates`
leaves flagged rows out of training.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from factory.data.side_tables import SideTable, side_table_dir
from factory.data.rows import Rows, normalise_text
from factory.core.errors import FactoryError
from factory.data.run_folder import Run
from factory.data.store import atomic_write_json, atomic_write_parquet, read_dataset, shard_paths, utc_now

DEFAULT_THRESHOLD = 0.92  # MiniLM cosine; measured on the demo: paraphrases with a changed word sit above 0.93
DEDUP_SHARD = "part-00000.parquet"

DEDUP_SCHEMA = {
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


def find_duplicates(ids: list[str], texts: list[str], reference: Reference, embed, threshold: float) -> list[dict]:
    """One verdict per bronze sentence, in order. `embed(texts) -> L2-normalised (n, d) array`."""
    ref_exact = {}
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


def run_dedup(run_dir: Path, reference: Reference, threshold: float = DEFAULT_THRESHOLD, embedder=None) -> dict:
    """Write `<run>/bronze_dedup/` for the run's current bronze and return the counts."""
    if not 0 < threshold <= 1:
        raise FactoryError("--threshold must be in (0, 1]")
    bronze_dir = Path(run_dir) / "bronze"
    if not shard_paths(bronze_dir):
        raise FactoryError(f"no bronze shards in {bronze_dir}; run `bin/generate synthesize` first")
    run = Run.open(run_dir)  # the run lock: no synthesize may append to bronze while it is compared
    if embedder is None:
        from factory.engines.embedder import shared_embedder

        embedder = shared_embedder(None)
    bronze = read_dataset(bronze_dir)
    verdicts = find_duplicates(bronze["row_id"].to_list(), bronze["text"].to_list(), reference, embedder.embed, threshold)
    now = utc_now()
    frame = pl.DataFrame(
        [{**v, "text": t, "category": c, "threshold": threshold, "encoder_hash": embedder.fingerprint, "created_at": now}
         for v, t, c in zip(verdicts, bronze["text"], bronze["category"])],
        schema=DEDUP_SCHEMA, strict=False,
    ).select(list(DEDUP_SCHEMA))
    out = side_table_dir(run_dir, "bronze", "dedup")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_parquet(frame, out / DEDUP_SHARD)
    summary = dedup_summary(frame)
    atomic_write_json(out / "summary.json", {**summary, "threshold": threshold, "encoder_hash": embedder.fingerprint,
                                             "reference_sentences": len(reference.texts)})
    run.record_stage("bronze_dedup", {**summary, "threshold": threshold})
    return summary


def dedup_summary(frame: pl.DataFrame) -> dict:
    flagged = frame.filter(pl.col("duplicate"))
    by_reason = {f"{r['reason']} vs {r['dup_source']}": r["len"] for r in
                 flagged.group_by("reason", "dup_source").len().sort("reason", "dup_source").to_dicts()}
    return {"rows": frame.height, "flagged": flagged.height,
            "rate": flagged.height / frame.height if frame.height else 0.0, "by_reason": by_reason}


def current_duplicates(run_dir: Path) -> pl.DataFrame | None:
    """The dedup table, restricted to bronze rows whose text is unchanged."""
    return SideTable(run_dir, "bronze", "dedup").current()
