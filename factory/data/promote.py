"""`gold import --from-review RUN`: silver rows clinicians accepted or corrected become gold.

- Only rows every reviewer stands behind with the same label set are promoted (accepted: the LLM's labels;
  corrected: the corrected ones); a row two reviewers disagree on, or one a reviewer rejected, is not.
- Deduplicated against the gold already there (and among themselves) by normalised text, as `gold import`
  keys its rows.
- The frozen test split never grows: when gold has a split, the promoted rows are added to it as train
  (deterministically; every test row id stays as it was); gold without a split gets one frozen first, on
  the gold that was there, so promoted rows can never land in the test split.
- Who reviewed each promoted row is recorded in `<gold>/promoted.jsonl` (one line per row: gold row id,
  run, silver row id, labels, reviewers, decisions), kept across later imports into the same folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from factory.core.errors import FactoryError
from factory.data.gold import gold_fingerprint, load_gold, write_gold
from factory.data.reviews import consensus, current_decisions
from factory.data.rows import Rows, text_row_id
from factory.data.split import SPLIT_FILE, load_or_create_split, save_split
from factory.data.store import atomic_write_bytes, read_dataset, shard_paths, utc_now
from factory.data.taxonomy import Taxonomy

PROMOTED_FILE = "promoted.jsonl"


@dataclass
class PromoteSummary:
    run_dir: Path
    reviewed: int = 0  # silver rows with a current decision
    promoted: int = 0
    rejected: int = 0  # some reviewer rejected the row
    disagreed: int = 0  # reviewers stood behind different label sets (or one rejected, one did not)
    already_gold: int = 0  # the sentence is in gold already (or promoted twice from this run)
    gold_before: int = 0
    gold_after: int = 0
    test_rows: int = 0  # unchanged by the promotion
    split_created: bool = False
    reviewers: dict[str, int] = field(default_factory=dict)  # reviewer -> promoted rows they decided on


def promote_reviewed(run_dir: Path, gold_dir: Path, taxonomy: Taxonomy) -> PromoteSummary:
    run_dir, gold_dir = Path(run_dir), Path(gold_dir)
    if not shard_paths(run_dir / "silver"):
        raise FactoryError(f"no silver rows in {run_dir}; --from-review takes a run folder with reviewed silver")
    summary = PromoteSummary(run_dir)
    silver = read_dataset(run_dir / "silver")
    decisions = current_decisions(run_dir, "silver", rows=silver.select("row_id", "text"))
    if not decisions.height:
        raise FactoryError(f"nobody has reviewed the silver rows of {run_dir} (or their text changed since); review "
                           f"them first with `bin/generate review --run {run_dir}`")
    gold = load_gold(gold_dir, taxonomy)
    split = load_or_create_split(gold, gold_dir, taxonomy)  # the frozen split, or one frozen now on this gold
    summary.split_created, summary.gold_before = split.created, len(gold)
    test_before = {rid for rid, side in split.assignments.items() if side == "test"}

    verdicts = consensus(decisions)
    by_row = {}
    for row in decisions.iter_rows(named=True):
        by_row.setdefault(row["row_id"], []).append(row)
    summary.reviewed, summary.rejected = verdicts.reviewed, len(verdicts.rejected)
    summary.disagreed = len(verdicts.disagreed)
    known = set(gold.row_ids)
    new, records = Rows(), []
    stamp = utc_now().isoformat()
    for silver_row in silver.sort("row_id").iter_rows(named=True):
        labels = verdicts.agreed.get(silver_row["row_id"])
        if labels is None:
            continue
        text = " ".join(silver_row["text"].split())
        row_id = text_row_id(text)
        if row_id in known:
            summary.already_gold += 1
            continue
        known.add(row_id)
        labels = taxonomy.normalise_labels(list(labels))
        new.row_ids.append(row_id)
        new.sources.append("gold")
        new.texts.append(text)
        new.labels.append(labels)
        reviewers = verdicts.reviewers[silver_row["row_id"]]
        for name in reviewers:
            summary.reviewers[name] = summary.reviewers.get(name, 0) + 1
        records.append({"row_id": row_id, "run": str(run_dir.resolve()), "silver_row_id": silver_row["row_id"],
                        "labels": labels, "reviewers": list(reviewers),
                        "decisions": {r["reviewer"]: r["decision"] for r in by_row[silver_row["row_id"]]},
                        "promoted_at": stamp})
    summary.promoted = len(new)
    summary.test_rows = len(test_before)
    summary.gold_after = len(gold) + len(new)
    if not len(new):
        return summary

    merged = gold + new
    previous = (gold_dir / PROMOTED_FILE).read_bytes() if (gold_dir / PROMOTED_FILE).is_file() else b""
    # The split grows by the promoted rows, all of them train: the test rows stay exactly as they were.
    split.assignments.update({rid: "train" for rid in new.row_ids})
    split.fingerprint = gold_fingerprint(merged)
    test_after = {rid for rid, side in split.assignments.items() if side == "test"}
    if test_after != test_before:  # cannot happen; a promotion must never be able to move the test split
        raise FactoryError("internal error: promoting reviewed rows changed the frozen test split")

    def add_split_and_provenance(folder: Path) -> None:  # in the new gold folder, before it is swapped in
        save_split(split, merged, folder / SPLIT_FILE)
        atomic_write_bytes(folder / PROMOTED_FILE,
                           previous + "".join(json.dumps(r, sort_keys=True) + "\n" for r in records).encode("utf-8"))

    write_gold(merged, gold_dir, run_dir, before_swap=add_split_and_provenance)
    return summary
