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
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import polars as pl

from factory.data.rows import normalise_text
from factory.engines.base import Request, Result
from factory.stages.context import StageContext, StageStats, request_seed
from factory.stages.prompts import PromptPair
from factory.stages.call import LLMCall, answer
from factory.stages.runner import WAIT, LedgerTask, Lineage, Unit, Wait, run_stage
from factory.stages.sentence_check import sentence_problem
from factory.data.store import BRONZE_SCHEMA, content_key, read_dataset, shard_paths
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
        column: list[str] = []
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


class SynthesizeTask(LedgerTask):
    """Write `per_category` sentences for every category, and `per_category x none_weight` (a taxonomy
    setting, default 1) for 'none': real notes are mostly not about the condition, so a taxonomy may ask
    for more negatives than positives of any one category. Units are planned requests, taken
    in plan order while a category is still short counting the sentences its requests in flight may give,
    so the engine stays busy and no category is asked for more than it needs."""

    name = "synthesize"
    stage = "bronze"
    row_schema = BRONZE_SCHEMA
    key_column = "request_key"
    unit_name = "sentences"
    title = "synthesize (bronze)"

    def __init__(self, taxonomy: Taxonomy, per_category: int, per_request: int = SENTENCES_PER_REQUEST):
        self.taxonomy, self.per_category, self.per_request = taxonomy, per_category, per_request
        self.target = {c.id: per_category for c in taxonomy.categories}
        self.target[taxonomy.none.id] = max(1, round(per_category * taxonomy.none_weight))
        self.call = LLMCall(PromptPair("synthesize"), synthesis_schema(taxonomy, per_request), taxonomy)
        self.categories = [*taxonomy.categories, taxonomy.none]
        self.kept = {c.id: 0 for c in self.categories}
        self.seen: set[str] = set()
        self.asked = {c.id: 0 for c in self.categories}  # requests in flight per category
        # what a written sentence must not copy: every definition (the check also rejects lists, key: value
        # lines, number runs, prompt debris and other languages; factory/stages/sentence_check.py)
        self.definitions = [c.definition for c in self.categories]
        self.rejected: dict[str, Counter] = {c.id: Counter() for c in self.categories}

    def identity(self, ctx: StageContext) -> dict:
        return {**super().identity(ctx), "per_request": self.per_request}

    def plan(self, category: Category, per_category: int, ctx: StageContext) -> list[PlannedRequest]:
        """Every request this category may need, in order; deterministic in (seed, category)."""
        count = math.ceil(per_category / self.per_request) * PLAN_ROUNDS
        rng = random.Random(f"{ctx.seed}:{category.id}")
        attributes = balanced_attributes(self.taxonomy.attributes_for(category.id), count, rng)
        examples = category.examples or ("",)
        identity = self.call.identity(ctx)  # the call's: per_request is in every key as n
        planned = []
        for index, attrs in enumerate(attributes):
            example = examples[index % len(examples)]
            key = self.unit_key(identity, category=category.id, index=index, attributes=attrs, example=example,
                                n=self.per_request)
            planned.append(PlannedRequest(category, index, attrs, example, key, request_seed(ctx.seed, key)))
        return planned

    def chat(self, request: PlannedRequest) -> list[dict[str, str]]:
        context = {
            "category": request.category,
            "categories": self.taxonomy.categories,
            "none_category": self.taxonomy.none,
            "attributes": request.attributes,
            "example": request.example,
            "n": self.per_request,
        }
        return self.call.chat({}, context)

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

    def prepare(self, ctx: StageContext) -> None:
        """Sentences kept by earlier runs count towards each category, and are never kept twice."""
        bronze_dir = ctx.run.out / self.stage
        if shard_paths(bronze_dir):
            frame = read_dataset(bronze_dir).select("category", "text")
            for category, text in zip(frame["category"], frame["text"], strict=True):
                self.kept[category] = self.kept.get(category, 0) + 1
                self.seen.add(normalise_text(text))

    def total(self) -> int:
        return sum(self.target.values())

    def completed(self, done: set[str]) -> int:
        return sum(self.kept.values())

    def units(self, ctx: StageContext, done: set[str]) -> Iterator[Unit | Wait]:
        plans = {c.id: iter(self.plan(c, self.target[c.id], ctx)) for c in self.categories}
        while True:
            for cid, plan in plans.items():
                while self.kept[cid] + self.asked[cid] * self.per_request < self.target[cid]:
                    planned = next(plan, None)
                    if planned is None:
                        break
                    if planned.key in done:
                        continue
                    self.asked[cid] += 1
                    yield Unit(planned.key, planned, [Request(self.chat(planned), planned.seed)])
            if not any(self.asked.values()):
                return  # every category is full, or its plan is spent
            yield WAIT  # what to ask next depends on what the requests in flight give

    def rows(self, unit: Unit, results: list[Result], lineage: Lineage) -> tuple[list[dict], list[dict]]:
        planned: PlannedRequest = unit.item
        result = results[0]
        cid = planned.category.id
        self.asked[cid] -= 1
        record = lineage(unit.requests[0], result)
        if not result.ok:
            return [], [self.failure_row(self.name, planned.key, cid, result, record)]
        rows, rejected = [], []
        for item_index, text in enumerate(answer(result)["sentences"]):
            text = " ".join(text.split())
            norm = normalise_text(text)
            # whitespace padding can carry a string past the schema's minimum: measure what is kept
            if self.kept[cid] >= self.target[cid] or len(text) < MIN_SENTENCE_CHARS or norm in self.seen:
                continue
            if norm == normalise_text(planned.example):
                continue
            problem = sentence_problem(text, [*self.definitions, planned.example, *planned.attributes.values()])
            if problem is not None:  # not a clinical sentence: to failed/ with the reason; the plan asks for more
                self.rejected[cid][problem] += 1
                row_id = content_key(request_key=planned.key, item_index=item_index)
                failure = self.failure_row(self.name, row_id, text, result, record)
                rejected.append({**failure, "error": f"sentence check: {problem}"})
                continue
            self.seen.add(norm)
            self.kept[cid] += 1
            rows.append(self.row(planned, item_index, text, record))
        return rows, rejected

    # A request is spent once its sentences are committed, even when none was kept (all duplicates or not
    # sentences): its seed would give the same answer again. Failed requests are not, so a rerun asks again.
    ledger = (SPENT_REQUESTS, SPENT_SCHEMA)

    def ledger_rows(self, units: list[Unit], results: list[list[Result]], ok_rows: list[dict]) -> list[dict]:
        """Every answered request, with how many of its sentences were kept (failed ones are asked again)."""
        kept = Counter(row["request_key"] for row in ok_rows)
        return [{"request_key": u.key, "category": u.item.category.id, "kept": kept[u.key]}
                for u, r in zip(units, results, strict=True) if r[0].ok]

    def summary(self, stats: StageStats) -> dict:
        stats.short = {cid: kept for cid, kept in self.kept.items() if kept < self.target[cid]}
        rejected = {cid: dict(reasons) for cid, reasons in self.rejected.items() if reasons}
        return {**({"short_categories": stats.short} if stats.short else {}),
                "sentence_check_rejected": rejected}


def run_synthesize(taxonomy: Taxonomy, ctx: StageContext, per_category: int,
                   per_request: int = SENTENCES_PER_REQUEST) -> StageStats:
    return run_stage(SynthesizeTask(taxonomy, per_category, per_request), ctx)
