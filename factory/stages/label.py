"""Data-to-label: the LLM labels sentences of real notes following the guideline -> silver rows.

Input: corpus.Sentence rows, streamed. Output: silver shards (docs/data-contract.md), one row per sentence
whose output was complete and schema-valid; other outputs go to failed/ with the reason. Any labelling
strategy (factory/stages/strategies.py) runs as this one task through the stage runner.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator

from factory.data.corpus import Sentence
from factory.data.store import SILVER_SCHEMA, content_key
from factory.data.taxonomy import Taxonomy
from factory.engines.base import Result
from factory.stages.context import StageContext, StageStats, request_seed
from factory.stages.runner import Lineage, TaskDefaults, Unit, run_stage
from factory.stages.strategies import JsonStrategy, Labeler, Labelled, Strategy

__all__ = ["LabelTask", "Labeler", "run_label"]  # Labeler: the json call's prompt, also used by consistency

PRIOR_CHUNK = 256  # sentences whose strategy priors (embedding scores) are computed together


class LabelTask(TaskDefaults):
    """Label every sentence with one strategy; a silver row's id is the key of (strategy, text, identity)."""

    name = "label"
    stage = "silver"
    row_schema = SILVER_SCHEMA
    key_column = "row_id"
    unit_name = "sentences"

    def __init__(self, taxonomy: Taxonomy, sentences: Iterable[Sentence], strategy: Strategy | None = None):
        self.taxonomy = taxonomy
        self.sentences = sentences
        self.strategy = strategy or JsonStrategy(taxonomy)
        self.schema = self.strategy.schema
        self.title = "label (silver)" if self.strategy.name == "json" else f"label (silver, {self.strategy.name})"
        prompt_hash = self.strategy.prompts.hash if self.strategy.prompts else ""
        self.hashes = (prompt_hash, self.strategy.schema_hash, taxonomy.fingerprint)

    def identity(self, ctx: StageContext) -> dict:
        return self.strategy.stage_identity(ctx)

    def sampling(self, ctx: StageContext):
        return self.strategy.sampling(ctx)

    def key(self, text: str, identity: dict) -> str:
        return content_key(task=self.strategy.key_task, text=text, **identity)

    def units(self, ctx: StageContext, done: set[str]) -> Iterator[Unit]:
        """Streamed: memory stays flat however large the corpus (only committed row ids are held)."""
        identity = self.identity(ctx)
        sentences = iter(self.sentences)
        while chunk := list(itertools.islice(sentences, PRIOR_CHUNK)):
            keyed = [(s, self.key(s.text, identity)) for s in chunk]
            todo = [i for i, (_, key) in enumerate(keyed) if key not in done]
            priors = dict(zip(todo, self.strategy.priors([chunk[i].text for i in todo]), strict=True)) if todo else {}
            for index, (sentence, key) in enumerate(keyed):
                seed = request_seed(ctx.seed, key)
                requests = self.strategy.requests(sentence.text, seed) if index in priors else []
                yield Unit(key, (sentence, priors.get(index), seed), requests)

    def rows(self, unit: Unit, results: list[Result], lineage: Lineage) -> tuple[list[dict], list[dict]]:
        sentence, prior, seed = unit.item
        outcome: Labelled = self.strategy.outcome(sentence.text, results, prior, seed)
        result = outcome.result
        record = lineage(unit.requests[0] if unit.requests else None, result)
        record["seed"] = seed
        if not self.strategy.uses_llm:
            embedder = self.strategy.embedder
            record.update(engine="embedding", model_path=str(embedder.path), model_hash=embedder.fingerprint)
        if not outcome.ok:
            return [], [self.failure_row(self.name, unit.key, sentence.text, result, record)]
        return [{
            "row_id": unit.key,
            "source": "silver",
            "text": sentence.text,
            "labels": outcome.labels,
            "evidence": outcome.evidence,
            "note_id": sentence.note_id,
            "sentence_index": sentence.sentence_index,
            "char_start": sentence.char_start,
            "char_end": sentence.char_end,
            **record,
        }], []


def run_label(sentences: Iterable[Sentence], taxonomy: Taxonomy, ctx: StageContext, shard_size: int | None = None,
              strategy: Strategy | None = None) -> StageStats:
    """Label `sentences` (any iterable, consumed once and lazily) into ctx.run's silver/ shards."""
    return run_stage(LabelTask(taxonomy, sentences, strategy), ctx, commit_rows=shard_size)
