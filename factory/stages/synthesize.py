"""Label-to-data: the LLM writes new sentences for each category from its definition -> bronze rows.

Each request asks for a few sentences of one category (and of "none", so classifiers see negatives),
conditioned on attributes sampled from the taxonomy (note section, speaker, assertion, severity,
setting). Attribute values are balanced across a category's requests and recorded on every row. No
patient text enters these prompts, so bronze holds no patient data by construction.

Output: bronze shards (docs/data-contract.md); exact duplicates and copies of the prompt's example are
dropped; failed outputs go to failed/ with the reason.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections import Counter
from dataclasses import dataclass

import polars as pl

from factory.data.rows import normalise_text
from factory.engines.base import Request
from factory.core.progress import progress_bar
from factory.stages.prompts import PromptPair
from factory.stages.context import StageContext, StageStats, commit_shard, failure_row, request_seed
from factory.data.store import BRONZE_SCHEMA, ShardWriter, content_key, existing_values, read_dataset, schema_hash, shard_paths
from factory.data.taxonomy import MIN_SENTENCE_CHARS, Category, Taxonomy, synthesis_schema

SENTENCES_PER_REQUEST = 5
SPENT_REQUESTS = "bronze_requests"  # one row per answered request: its key and how many sentences it gave
SPENT_SCHEMA = {"request_key": pl.String, "category": pl.String, "kept": pl.Int32}
# Requests planned per category: 4 x what a model that never fails or repeats itself would need. Waves
# draw on the plan until every category is full or its plan is spent, so the plan bounds the cost.
PLAN_ROUNDS = 4
def balanced_attributes(attributes: dict[str, list[str]], count: int, rng: random.Random) -> list[dict[str, str]]:
    """`count` attribute dicts in which every value of every attribute appears equally often (±1)."""
    columns = {}
    for name, values in attributes.items():
        column = []
        while len(column) < count:
            block = list(values)
            rng.shuffle(block)
            column.extend(block)
        columns[name] = column[:count]
    return [{name: columns[name][i] for name in attributes} for i in range(count)]


@dataclass(frozen=True)
class PlannedRequest:
    category: Category
    index: int
    attributes: dict[str, str]
    example: str
    key: str
    seed: int


class Synthesizer:
    """Prompt, schema, request plan and row contract of the label-to-data task."""

    task = "synthesize"

    def __init__(self, taxonomy: Taxonomy, per_request: int = SENTENCES_PER_REQUEST, prompts: PromptPair | None = None):
        self.taxonomy = taxonomy
        self.per_request = per_request
        self.prompts = prompts or PromptPair("synthesize")
        self.schema = synthesis_schema(taxonomy, per_request)
        self.schema_hash = schema_hash(self.schema)

    def plan(self, category: Category, per_category: int, ctx: StageContext) -> list[PlannedRequest]:
        """Every request this category may need, in order; deterministic in (seed, category)."""
        count = math.ceil(per_category / self.per_request) * PLAN_ROUNDS
        rng = random.Random(f"{ctx.seed}:{category.id}")
        attributes = balanced_attributes(self.taxonomy.attributes_for(category.id), count, rng)
        examples = category.examples or ("",)
        identity = self.identity(ctx)
        planned = []
        for index, attrs in enumerate(attributes):
            example = examples[index % len(examples)]
            key = content_key(task=self.task, category=category.id, index=index, attributes=attrs,
                              example=example, n=self.per_request, **identity)
            planned.append(PlannedRequest(category, index, attrs, example, key, request_seed(ctx.seed, key)))
        return planned

    def identity(self, ctx: StageContext) -> dict:
        return ctx.identity(self.prompts.hash, self.schema_hash, self.taxonomy.fingerprint)

    def chat(self, request: PlannedRequest) -> list[dict[str, str]]:
        context = {
            "category": request.category,
            "categories": self.taxonomy.categories,
            "none_category": self.taxonomy.none,
            "attributes": request.attributes,
            "example": request.example,
            "n": self.per_request,
        }
        return self.prompts.render({}, context)

    def row(self, request: PlannedRequest, item_index: int, text: str, lineage: dict) -> dict:
        return {
            "row_id": content_key(request_key=request.key, item_index=item_index),
            "source": "bronze",
            "text": text,
            "labels": [request.category.id],
            "category": request.category.id,
            "attributes": json.dumps(request.attributes, sort_keys=True),
            "request_key": request.key,
            "request_index": request.index,
            "item_index": item_index,
            **lineage,
        }


class _Progress:
    """Per-category counts of kept rows, the normalised texts already taken and the requests they came from."""

    def __init__(self, bronze_dir, taxonomy: Taxonomy):
        self.kept = {cid: 0 for cid in taxonomy.all_ids}
        self.seen: set[str] = set()
        self.requests: set[str] = set()
        if shard_paths(bronze_dir):
            frame = read_dataset(bronze_dir)
            self.requests = set(frame["request_key"])
            for category, text in zip(frame["category"], frame["text"], strict=True):
                self.kept[category] = self.kept.get(category, 0) + 1
                self.seen.add(normalise_text(text))


def run_synthesize(taxonomy: Taxonomy, ctx: StageContext, per_category: int,
                   per_request: int = SENTENCES_PER_REQUEST) -> StageStats:
    synth = Synthesizer(taxonomy, per_request)
    bronze_dir = ctx.run.out / "bronze"
    writer = ShardWriter(bronze_dir, BRONZE_SCHEMA)
    failures = ctx.failure_writer()
    ctx.run.bind_identity("bronze", {**synth.identity(ctx), "per_request": per_request})
    # A request is spent once its sentences are committed, even when none was kept (all duplicates or too
    # short): its seed would give the same answer again. Failed requests are tried again on a rerun.
    spent = ShardWriter(ctx.run.out / SPENT_REQUESTS, SPENT_SCHEMA)
    state = _Progress(bronze_dir, taxonomy)
    done_requests = state.requests | existing_values(spent.folder, "request_key")
    categories = [*taxonomy.categories, taxonomy.none]
    plans = {c.id: iter(synth.plan(c, per_category, ctx)) for c in categories}
    stats = StageStats("synthesize (bronze)")
    stats.skipped = sum(state.kept.values())
    started = None
    with progress_bar("sentences") as progress:
        task = progress.add_task("writing sentences", total=per_category * len(categories),
                                 completed=min(stats.skipped, per_category * len(categories)))
        while wave := _next_wave(plans, state, done_requests, per_category, per_request):
            if started is None:  # the engine starts only when there is a request to make; timed apart
                stats.engine_start_seconds = ctx.start_engine()
                started = time.perf_counter()
            requests = [Request(synth.chat(p), p.seed) for p in wave]
            results = ctx.engine.generate(requests, synth.schema, ctx.sampling)
            ok_rows, failed_rows = [], []
            for planned, result in zip(wave, results, strict=True):
                lineage = ctx.lineage(synth.prompts.hash, synth.schema_hash, taxonomy.fingerprint, planned.seed, result)
                stats.completion_tokens += result.completion_tokens
                if not result.ok:
                    failed_rows.append(failure_row(synth.task, planned.key, planned.category.id, result, lineage))
                    stats.failures.append((planned.category.id, result.error or ""))
                    continue
                for item_index, text in enumerate(result.parsed["sentences"]):
                    text = " ".join(text.split())
                    norm = normalise_text(text)
                    cid = planned.category.id
                    # whitespace padding can carry a string past the schema's minimum: measure what is kept
                    if state.kept[cid] >= per_category or len(text) < MIN_SENTENCE_CHARS or norm in state.seen:
                        continue
                    if norm == normalise_text(planned.example):
                        continue
                    state.seen.add(norm)
                    state.kept[cid] += 1
                    ok_rows.append(synth.row(planned, item_index, text, lineage))
            commit_shard(writer, failures, ok_rows, failed_rows, stats, len(wave))
            # after the rows: a kill in between leaves requests to redo, never rows lost
            kept = Counter(row["request_key"] for row in ok_rows)
            spent.write([{"request_key": p.key, "category": p.category.id, "kept": kept[p.key]}
                         for p, result in zip(wave, results, strict=True) if result.ok])
            progress.advance(task, len(ok_rows))
    stats.seconds = time.perf_counter() - started if started is not None else 0.0
    stats.short = {cid: kept for cid, kept in state.kept.items() if kept < per_category}
    return stats


def _next_wave(plans, state: _Progress, done_requests: set[str], per_category: int, per_request: int):
    """Enough not-yet-done requests to fill every short category, taken in plan order."""
    wave = []
    for cid, plan in plans.items():
        missing = per_category - state.kept[cid]
        wanted = math.ceil(missing / per_request) if missing > 0 else 0
        while wanted > 0:
            planned = next(plan, None)
            if planned is None:
                break
            if planned.key in done_requests:
                continue
            wave.append(planned)
            wanted -= 1
    return wave
