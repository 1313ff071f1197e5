"""The review queue: which rows, in which order, and what the reviewer sees beside each sentence.

Silver rows come with up to two sentences of their note on each side (the neighbouring silver rows of the
same note), the evidence span, the verifier's verdict (`silver_check`) and the self-consistency vote
(`silver_consistency`) where those side tables exist. Bronze rows come with their intended category,
sampled attributes, the PHI scan (`bronze_phi`) and the verifier's verdict (`bronze_check`).

Order "informative" (default) puts the most uncertain or contested rows first, balanced across categories:
rows are bucketed by their rarest label (bronze: the intended category), each bucket sorted by doubt, and
the buckets are taken round-robin, so a minority category shows up in the first round. Order "random" is
a seeded shuffle, an unbiased audit sample. Neither order depends on decisions already made, so a
restarted server shows the same queue.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from factory.core.errors import FactoryError
from factory.data.side_tables import SideTable, text_sha256
from factory.data.store import read_dataset, shard_paths
from factory.data.taxonomy import Taxonomy

ORDERS = ("informative", "random")
CONTEXT_SENTENCES = 2


@dataclass
class Item:
    """One row to review, as the page shows it."""

    row_id: str
    text: str
    text_sha256: str
    labels: list[str]
    bucket: str
    doubt: float
    reasons: list[str] = field(default_factory=list)
    details: dict = field(default_factory=dict)  # dataset-specific: context, evidence, verdicts, PHI, ...

    def payload(self) -> dict:
        return {"row_id": self.row_id, "text": self.text, "text_sha256": self.text_sha256, "labels": self.labels,
                "bucket": self.bucket, "doubt": round(self.doubt, 3), "reasons": self.reasons, **self.details}


def _side(run_dir: Path, dataset: str, kind: str, rows: pl.DataFrame) -> dict[str, dict]:
    """{row_id: current judgement} of one side table; empty when it was never written."""
    current = SideTable(run_dir, dataset, kind).current(rows)
    if current is None:
        return {}
    return {row["row_id"]: row for row in current.iter_rows(named=True)}


def _load(run_dir: Path, dataset: str) -> pl.DataFrame:
    folder = run_dir / dataset
    if not shard_paths(folder):
        raise FactoryError(f"no {dataset} shards in {folder}; nothing to review")
    return read_dataset(folder).unique("row_id", keep="first", maintain_order=True)


def _check_details(check: dict | None, reasons: list[str]) -> tuple[dict | None, float]:
    if check is None:
        return None, 0.0
    if check["verdict"] == "reject":
        reasons.append(f"verifier rejected: {check.get('reason') or ''}".rstrip(": "))
    return {"verdict": check["verdict"], "reason": check.get("reason")}, 2.0 if check["verdict"] == "reject" else 0.0


def silver_items(run_dir: Path, rows: pl.DataFrame) -> list[Item]:
    checks = _side(run_dir, "silver", "check", rows)
    votes = _side(run_dir, "silver", "consistency", rows)
    by_note: dict[str, list[dict]] = defaultdict(list)
    for row in rows.iter_rows(named=True):
        if row.get("note_id") is not None:
            by_note[row["note_id"]].append(row)
    position: dict[str, tuple[str, int]] = {}
    for note_id, note_rows in by_note.items():
        note_rows.sort(key=lambda r: (r.get("sentence_index") is None, r.get("sentence_index") or 0))
        for i, row in enumerate(note_rows):
            position[row["row_id"]] = (note_id, i)

    items = []
    for row in rows.iter_rows(named=True):
        reasons: list[str] = []
        check, doubt = _check_details(checks.get(row["row_id"]), reasons)
        consistency = None
        vote = votes.get(row["row_id"])
        if vote is None:
            doubt += 0.5  # never sampled: no evidence of confidence either way
        else:
            agreement = float(vote["agreement"]) if vote.get("agreement") is not None else 0.0
            doubt += 1.0 - agreement
            if not vote.get("silver_agrees"):
                doubt += 2.0
                reasons.append("the consistency majority differs: " + ", ".join(vote.get("majority_labels") or []))
            if agreement < 1.0:
                reasons.append(f"agreement {agreement:.2f}")
            try:
                vote_fractions = json.loads(vote.get("votes") or "{}")
            except json.JSONDecodeError:
                vote_fractions = {}
            consistency = {"agreement": agreement, "majority_labels": list(vote.get("majority_labels") or []),
                           "silver_agrees": bool(vote.get("silver_agrees")), "votes": vote_fractions,
                           "samples": vote.get("samples"), "valid_samples": vote.get("valid_samples")}
        before, after = [], []
        if row["row_id"] in position:
            note_id, i = position[row["row_id"]]
            note_rows = by_note[note_id]
            before = [r["text"] for r in note_rows[max(0, i - CONTEXT_SENTENCES):i]]
            after = [r["text"] for r in note_rows[i + 1:i + 1 + CONTEXT_SENTENCES]]
        details = {"evidence": row.get("evidence") or "", "note_id": row.get("note_id"),
                   "sentence_index": row.get("sentence_index"), "context_before": before, "context_after": after,
                   "check": check, "consistency": consistency}
        items.append(Item(row["row_id"], row["text"], text_sha256(row["text"]), list(row["labels"] or []), "",
                          doubt, reasons, details))
    return items


def bronze_items(run_dir: Path, rows: pl.DataFrame) -> list[Item]:
    checks = _side(run_dir, "bronze", "check", rows)
    phi = _side(run_dir, "bronze", "phi", rows)
    items = []
    for row in rows.iter_rows(named=True):
        reasons: list[str] = []
        check, doubt = _check_details(checks.get(row["row_id"]), reasons)
        scan = phi.get(row["row_id"])
        phi_details = None
        if scan is not None:
            phi_details = {"status": scan["phi_status"], "reasons": list(scan.get("phi_reasons") or []),
                           "types": list(scan.get("phi_types") or [])}
            if scan["phi_status"] != "pass":
                doubt += 2.0
                reasons.append("PHI scan: " + (", ".join(phi_details["types"]) or scan["phi_status"]))
        try:
            attributes = json.loads(row.get("attributes") or "{}")
        except json.JSONDecodeError:
            attributes = {"attributes": row.get("attributes")}
        details = {"category": row.get("category"), "attributes": attributes, "phi": phi_details, "check": check}
        items.append(Item(row["row_id"], row["text"], text_sha256(row["text"]), list(row["labels"] or []),
                          row.get("category") or "", doubt, reasons, details))
    return items


def _tiebreak(row_id: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{row_id}".encode()).hexdigest()


def informative_order(items: list[Item], taxonomy: Taxonomy, seed: int = 0) -> list[Item]:
    """Round-robin over label buckets (each sorted by doubt, highest first); within a round, most doubt first."""
    rank = {cid: i for i, cid in enumerate(taxonomy.all_ids)}
    counts = Counter(label for item in items for label in item.labels)
    for item in items:
        if not item.bucket:  # the rarest of its labels, so a rare category is not hidden behind a common one
            item.bucket = min(item.labels, key=lambda l: (counts[l], rank.get(l, len(rank)), l)) if item.labels else ""
    buckets: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        buckets[item.bucket].append(item)
    for bucket in buckets.values():
        bucket.sort(key=lambda it: (-it.doubt, _tiebreak(it.row_id, seed)))
    ordered: list[Item] = []
    for depth in range(max((len(b) for b in buckets.values()), default=0)):
        layer = [b[depth] for b in buckets.values() if depth < len(b)]
        layer.sort(key=lambda it: (-it.doubt, counts[it.bucket], rank.get(it.bucket, len(rank)), it.bucket))
        ordered += layer
    return ordered


def random_order(items: list[Item], seed: int = 0) -> list[Item]:
    ordered = sorted(items, key=lambda it: it.row_id)  # independent of shard order
    random.Random(seed).shuffle(ordered)
    return ordered


def build_queue(run_dir: Path, dataset: str, taxonomy: Taxonomy, order: str = "informative", seed: int = 0) -> list[Item]:
    if order not in ORDERS:
        raise FactoryError(f"unknown order {order!r}; known: {', '.join(ORDERS)}")
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FactoryError(f"run folder not found: {run_dir}")
    rows = _load(run_dir, dataset)
    items = silver_items(run_dir, rows) if dataset == "silver" else bronze_items(run_dir, rows)
    return informative_order(items, taxonomy, seed) if order == "informative" else random_order(items, seed)
