"""The review queue: which rows, in which order, and what the reviewer sees beside each sentence.

Silver rows come with up to two sentences of their note on each side (the neighbouring silver rows of the
same note), the evidence span, the verifier's verdict (`silver_check`) and the self-consistency vote
(`silver_consistency`) where those side tables exist. Bronze rows come with their intended category,
sampled attributes, the PHI scan (`bronze_phi`) and the verifier's verdict (`bronze_check`).

Every row carries a "why here" line (factory/review/signals.py): the gold classifier's probability against
the LLM's label (or why there is no classifier), the consistency votes and the LLM's logprob confidence
where they exist, the verifier's rejection, the PHI scan's finding.

Order "informative" (default) puts the contested rows first: the classifier disagrees with the LLM or is
near its threshold, the consistency majority differs or is not unanimous, the LLM's confidence is low, the
verifier rejected the row, the PHI scan found something. Within the contested rows, and then within the
rest, rows are bucketed by their rarest label (bronze: the intended category), each bucket sorted by
doubt, and the buckets are taken round-robin, so a minority category shows up early. Order "random" is a
seeded shuffle, an unbiased audit sample. Neither order depends on decisions already made, so a restarted
server shows the same queue.
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
from factory.review.signals import (LOW_CONFIDENCE, Classifier, ClassifierView, classifier_doubt, classifier_view,
                                    fit_gold_classifier, why_parts)

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
    reasons: list[str] = field(default_factory=list)  # the parts of the why-here line
    details: dict = field(default_factory=dict)  # dataset-specific: context, evidence, verdicts, PHI, ...
    contested: bool = False  # some signal doubts the row: it comes before the rest in informative order

    @property
    def why(self) -> str:
        return "; ".join(self.reasons)

    def payload(self) -> dict:
        return {"row_id": self.row_id, "text": self.text, "text_sha256": self.text_sha256, "labels": self.labels,
                "bucket": self.bucket, "doubt": round(self.doubt, 3), "reasons": self.reasons, "why": self.why,
                "contested": self.contested, **self.details}


@dataclass
class Signals:
    """What every row of one queue is judged by: the gold classifier (or why there is none), the taxonomy."""

    taxonomy: Taxonomy
    classifier: Classifier | None = None
    missing: str = ""  # why there is no classifier

    def name(self, category_id: str) -> str:
        try:
            return self.taxonomy.get(category_id).name
        except FactoryError:
            return category_id

    def views(self, rows: pl.DataFrame, labels_column: str = "labels") -> list[ClassifierView | None]:
        if self.classifier is None:
            return [None] * rows.height
        probabilities = self.classifier.score(rows["text"].to_list())
        return [classifier_view(p, list(labels or []), self.classifier)
                for p, labels in zip(probabilities, rows[labels_column].to_list())]


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


def _consistency_details(vote: dict | None, label_confidence: float | None = None) -> tuple[dict | None, float, bool]:
    """(what the page shows, doubt, contested) of one row's self-consistency vote; for a row consistency did not
    sample, the label stage's own confidence is the evidence where the engine gave one."""
    if vote is None:
        if label_confidence is not None:
            return None, 1.0 - float(label_confidence), float(label_confidence) < LOW_CONFIDENCE
        return None, 0.5, False  # never sampled, no logprobs: no evidence of confidence either way
    agreement = float(vote["agreement"]) if vote.get("agreement") is not None else 0.0
    confidence = vote.get("logprob_confidence")
    doubt = 1.0 - agreement + (0.0 if vote.get("silver_agrees") else 2.0)
    low = confidence is not None and float(confidence) < LOW_CONFIDENCE
    doubt += (1.0 - float(confidence)) if confidence is not None else 0.0
    try:
        vote_fractions = json.loads(vote.get("votes") or "{}")
    except json.JSONDecodeError:
        vote_fractions = {}
    details = {"agreement": agreement, "majority_labels": list(vote.get("majority_labels") or []),
               "silver_agrees": bool(vote.get("silver_agrees")), "votes": vote_fractions,
               "samples": vote.get("samples"), "valid_samples": vote.get("valid_samples"),
               "logprob_confidence": None if confidence is None else round(float(confidence), 3)}
    return details, doubt, (not vote.get("silver_agrees")) or agreement < 1.0 or low


def _note_context(rows: pl.DataFrame) -> dict[str, tuple[list[str], list[str]]]:
    """{row_id: (up to CONTEXT_SENTENCES sentences before it in its note, and after)}."""
    by_note: dict[str, list[dict]] = defaultdict(list)
    for row in rows.iter_rows(named=True):
        if row.get("note_id") is not None:
            by_note[row["note_id"]].append(row)
    context = {}
    for note_rows in by_note.values():
        note_rows.sort(key=lambda r: (r.get("sentence_index") is None, r.get("sentence_index") or 0))
        texts = [r["text"] for r in note_rows]
        for i, row in enumerate(note_rows):
            context[row["row_id"]] = (texts[max(0, i - CONTEXT_SENTENCES):i], texts[i + 1:i + 1 + CONTEXT_SENTENCES])
    return context


def _classifier_details(view: ClassifierView | None) -> tuple[dict | None, float, bool]:
    if view is None:
        return None, 0.0, False
    return view.as_json(), classifier_doubt(view), bool(view.disagreements) or view.near


def silver_items(run_dir: Path, rows: pl.DataFrame, signals: Signals) -> list[Item]:
    checks = _side(run_dir, "silver", "check", rows)
    votes = _side(run_dir, "silver", "consistency", rows)
    no_votes = "no votes (not sampled by consistency)" if votes else "no votes (consistency has not run)"
    context = _note_context(rows)
    items = []
    for row, view in zip(rows.iter_rows(named=True), signals.views(rows)):
        labels = list(row["labels"] or [])
        vote = votes.get(row["row_id"])
        label_confidence = row.get("logprob_confidence")
        reasons = why_parts(view, signals.missing, vote, labels, signals.name, no_votes, label_confidence)
        check, doubt = _check_details(checks.get(row["row_id"]), reasons)
        consistency, vote_doubt, vote_contested = _consistency_details(vote, label_confidence)
        classifier, classifier_doubt_, classifier_contested = _classifier_details(view)
        before, after = context.get(row["row_id"], ([], []))
        details = {"evidence": row.get("evidence") or "", "note_id": row.get("note_id"),
                   "sentence_index": row.get("sentence_index"), "context_before": before, "context_after": after,
                   "check": check, "consistency": consistency, "classifier": classifier,
                   "label_confidence": None if label_confidence is None else round(float(label_confidence), 3)}
        items.append(Item(row["row_id"], row["text"], text_sha256(row["text"]), labels, "",
                          doubt + vote_doubt + classifier_doubt_, reasons, details,
                          doubt > 0 or vote_contested or classifier_contested))
    return items


def _phi_details(scan: dict | None, reasons: list[str]) -> tuple[dict | None, float]:
    if scan is None:
        return None, 0.0
    details = {"status": scan["phi_status"], "reasons": list(scan.get("phi_reasons") or []),
               "types": list(scan.get("phi_types") or [])}
    if scan["phi_status"] == "pass":
        return details, 0.0
    reasons.append("PHI scan: " + (", ".join(details["types"]) or scan["phi_status"]))
    return details, 2.0


def bronze_items(run_dir: Path, rows: pl.DataFrame, signals: Signals) -> list[Item]:
    checks = _side(run_dir, "bronze", "check", rows)
    phi = _side(run_dir, "bronze", "phi", rows)
    items = []
    for row, view in zip(rows.iter_rows(named=True), signals.views(rows)):
        labels = list(row["labels"] or [])
        reasons = why_parts(view, signals.missing, None, labels, signals.name, None)
        check, doubt = _check_details(checks.get(row["row_id"]), reasons)
        phi_details, phi_doubt = _phi_details(phi.get(row["row_id"]), reasons)
        classifier, classifier_doubt_, classifier_contested = _classifier_details(view)
        try:
            attributes = json.loads(row.get("attributes") or "{}")
        except json.JSONDecodeError:
            attributes = {"attributes": row.get("attributes")}
        details = {"category": row.get("category"), "attributes": attributes, "phi": phi_details, "check": check,
                   "classifier": classifier}
        items.append(Item(row["row_id"], row["text"], text_sha256(row["text"]), labels, row.get("category") or "",
                          doubt + phi_doubt + classifier_doubt_, reasons, details,
                          doubt + phi_doubt > 0 or classifier_contested))
    return items


def _tiebreak(row_id: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{row_id}".encode()).hexdigest()


def _round_robin(items: list[Item], counts: Counter, rank: dict[str, int], seed: int) -> list[Item]:
    """Round-robin over label buckets (each sorted by doubt, highest first); within a round, most doubt first."""
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


def informative_order(items: list[Item], taxonomy: Taxonomy, seed: int = 0) -> list[Item]:
    """The contested rows first, then the rest; each part round-robin over label buckets."""
    rank = {cid: i for i, cid in enumerate(taxonomy.all_ids)}
    counts = Counter(label for item in items for label in item.labels)
    for item in items:
        if not item.bucket:  # the rarest of its labels, so a rare category is not hidden behind a common one
            item.bucket = min(item.labels, key=lambda l: (counts[l], rank.get(l, len(rank)), l)) if item.labels else ""
    contested = [item for item in items if item.contested]
    rest = [item for item in items if not item.contested]
    return _round_robin(contested, counts, rank, seed) + _round_robin(rest, counts, rank, seed)


def random_order(items: list[Item], seed: int = 0) -> list[Item]:
    ordered = sorted(items, key=lambda it: it.row_id)  # independent of shard order
    random.Random(seed).shuffle(ordered)
    return ordered


def build_queue(run_dir: Path, dataset: str, taxonomy: Taxonomy, order: str = "informative", seed: int = 0,
                signals: Signals | None = None) -> list[Item]:
    """The ordered queue; `signals` default: the classifier fitted on the gold train split of `<run>/gold`."""
    if order not in ORDERS:
        raise FactoryError(f"unknown order {order!r}; known: {', '.join(ORDERS)}")
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FactoryError(f"run folder not found: {run_dir}")
    rows = _load(run_dir, dataset)
    if signals is None:
        classifier, missing, _ = fit_gold_classifier(run_dir / "gold", taxonomy, seed)
        signals = Signals(taxonomy, classifier, missing)
    items = (silver_items if dataset == "silver" else bronze_items)(run_dir, rows, signals)
    return informative_order(items, taxonomy, seed) if order == "informative" else random_order(items, seed)
