"""Confidence for silver by self-consistency: k sampled labelings per sentence (temperature > 0, a
distinct seed per sample), the majority label set, and how many samples agree with it.

Output: the side table `<run>/silver_consistency/` keyed by the silver `row_id` (docs/data-contract.md).
Silver itself is not rewritten; `compare --silver-min-agreement X` reads this table.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from factory.core.errors import FactoryError
from factory.data.side_tables import SideTable
from factory.data.taxonomy import Taxonomy
from factory.engines.base import Request, Result, logprob_confidence
from factory.stages.call import answer
from factory.stages.context import StageContext, StageStats, request_seed
from factory.stages.runner import LLMTask, Lineage, Unit, judged_rows, run_stage
from factory.stages.prompt_strategies import JsonStrategy

DEFAULT_SAMPLES = 5

CONSISTENCY_SCHEMA = {
    "row_id": pl.String,
    "consistency_key": pl.String,
    "text": pl.String,
    "labels": pl.List(pl.String),  # the silver labels judged
    "samples": pl.Int32,  # k requested
    "valid_samples": pl.Int32,  # samples that gave a complete, schema-valid output
    "sampled_labels": pl.String,  # JSON list of the k label sets (null for a failed sample)
    "majority_labels": pl.List(pl.String),
    "agreement": pl.Float64,  # samples whose label set equals the majority set / k
    "votes": pl.String,  # JSON {category id: fraction of the k samples that chose it}
    "silver_agrees": pl.Boolean,  # the silver label set equals the majority set
    "logprob_confidence": pl.Float64,  # mean per-token probability (geometric), null where the engine has none
    "model_hash": pl.String,
    "prompt_hash": pl.String,
    "schema_hash": pl.String,
    "taxonomy_hash": pl.String,
    "sampling": pl.String,
    "seed": pl.Int64,
    "created_at": pl.Datetime("us", "UTC"),
}


def sample_seeds(run_seed: int, key: str, k: int) -> list[int]:
    """Distinct, stable seeds: sample i of a row draws the same output in any batch or rerun."""
    seeds: list[int] = []
    i = 0
    while len(seeds) < k:
        seed = request_seed(run_seed, f"{key}:sample:{i}")
        if seed not in seeds:
            seeds.append(seed)
        i += 1
    return seeds


def vote_fractions(samples: list[tuple[str, ...] | None], category_ids: list[str]) -> dict[str, float]:
    """Fraction of all k samples (failed ones count as no vote) that chose each category."""
    k = len(samples)
    counts = Counter(label for s in samples if s is not None for label in s)
    return {cid: counts.get(cid, 0) / k for cid in category_ids if counts.get(cid)}


def majority_label_set(samples: list[tuple[str, ...] | None], category_ids: list[str]) -> tuple[str, ...] | None:
    """The most frequent label set; ties go to the set whose categories got the most votes overall,
    then to the first in taxonomy order, so the choice never depends on sample order."""
    valid = [s for s in samples if s is not None]
    if not valid:
        return None
    counts = Counter(valid)
    votes = vote_fractions(samples, category_ids)
    order = {cid: i for i, cid in enumerate(category_ids)}

    def rank(label_set):
        return (-counts[label_set], -sum(votes.get(c, 0.0) for c in label_set),
                [order.get(c, len(order)) for c in label_set])

    return min(counts, key=rank)


def agreement_score(samples: list[tuple[str, ...] | None], majority: tuple[str, ...] | None) -> float:
    """Fraction of the k samples whose label set equals the majority set (a failed sample disagrees)."""
    if majority is None or not samples:
        return 0.0
    return sum(s == majority for s in samples) / len(samples)


class ConsistencyTask(LLMTask):
    """Sample k labelings of every silver sentence; one side-table row per sentence with their agreement."""

    name = "consistency"
    stage = "silver_consistency"
    title = "consistency (silver)"
    key_column = "consistency_key"
    row_schema = CONSISTENCY_SCHEMA
    unit_name = "sentences"

    def __init__(self, run_dir: Path, taxonomy: Taxonomy, samples: int = DEFAULT_SAMPLES, limit: int | None = None):
        if samples < 2:
            raise FactoryError("self-consistency needs at least 2 samples (--samples)")
        self.taxonomy, self.samples = taxonomy, samples
        self.labeler = JsonStrategy(taxonomy)  # the label stage's json call, sampled k times
        self.call = self.labeler.call
        self.judged = judged_rows(run_dir, "silver", ("row_id", "text", "labels"), limit)

    def identity(self, ctx: StageContext) -> dict:
        # here, before the identity is bound: a greedy run must not record an identity it cannot use
        if ctx.sampling.temperature <= 0:
            raise FactoryError("self-consistency needs --temperature > 0 (greedy samples would all agree)")
        return {**super().identity(ctx), "samples": self.samples}

    def total(self) -> int:
        return len(self.judged)

    def units(self, ctx: StageContext, done: set[str]) -> Iterator[Unit]:
        identity = self.identity(ctx)
        for row in self.judged:
            key = self.unit_key(identity, text=row["text"], labels=list(row["labels"]))
            chat = self.labeler.chat(row["text"])
            yield Unit(key, row, [Request(chat, seed) for seed in sample_seeds(ctx.seed, key, self.samples)])

    def rows(self, unit: Unit, results: list[Result], lineage: Lineage) -> tuple[list[dict], list[dict]]:
        failed = [self.failure_row(self.name, unit.key, unit.item["text"], result, lineage(request, result))
                  for request, result in zip(unit.requests, results, strict=True) if not result.ok]
        # one row sums up the k answers: the unit's lineage (the run's seed), not one answer's
        return [{**consistency_row(unit.item, unit.key, results, self.taxonomy), **lineage(None, None)}], failed


def run_consistency(run_dir: Path, taxonomy: Taxonomy, ctx: StageContext, samples: int = DEFAULT_SAMPLES,
                    limit: int | None = None, shard_size: int | None = None) -> StageStats:
    if ctx.sampling.temperature <= 0:  # before anything is read or bound
        raise FactoryError("self-consistency needs --temperature > 0 (greedy samples would all agree)")
    return run_stage(ConsistencyTask(run_dir, taxonomy, samples, limit), ctx, commit_rows=shard_size)


def consistency_row(row: dict, key: str, results: list[Result], taxonomy: Taxonomy) -> dict:
    """The verdict on one silver row from its k samples; the runner's lineage completes it."""
    sampled = [tuple(taxonomy.labels_from_choices(answer(r)["labels"])) if r.ok else None for r in results]
    majority = majority_label_set(sampled, taxonomy.all_ids)
    return {
        "row_id": row["row_id"],
        "consistency_key": key,
        "text": row["text"],
        "labels": list(row["labels"]),
        "samples": len(results),
        "valid_samples": sum(s is not None for s in sampled),
        "sampled_labels": json.dumps([list(s) if s is not None else None for s in sampled]),
        "majority_labels": list(majority) if majority else [],
        "agreement": agreement_score(sampled, majority),
        "votes": json.dumps(vote_fractions(sampled, taxonomy.all_ids), sort_keys=True),
        "silver_agrees": majority is not None and tuple(row["labels"]) == majority,
        "logprob_confidence": logprob_confidence(results),
    }


def current_agreement(run_dir: Path) -> pl.DataFrame | None:
    """Agreement per silver row whose text and labels are unchanged since it was sampled."""
    return SideTable(run_dir, "silver", "consistency").current()
