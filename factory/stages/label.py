"""Data-to-label: the LLM labels sentences of real notes following the guideline -> silver rows.

Input: corpus.Sentence rows, streamed. Output: silver shards (docs/data-contract.md), one row per sentence
whose output was complete and schema-valid; other outputs go to failed/ with the reason. Any labelling
strategy (factory/stages/strategies.py) runs as this one task through the stage runner.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import replace

from factory.core.errors import FactoryError
from factory.data.corpus import Sentence
from factory.data.store import SILVER_SCHEMA, shard_columns
from factory.data.taxonomy import Taxonomy
from factory.engines.base import Result, logprob_confidence
from factory.stages.context import StageContext, StageStats, request_seed, scratch_context
from factory.stages.runner import LLMTask, Lineage, Unit, run_stage
from factory.stages.strategies import JsonStrategy, Labeler, Labelled, Strategy

__all__ = ["LabelTask", "Labeler", "label_texts", "run_label"]  # Labeler: the json call (the benchmark uses it)

PRIOR_CHUNK = 256  # sentences whose strategy priors (embedding scores) are computed together
CONFIDENCE = "logprob_confidence"


class LabelTask(LLMTask):
    """Label every sentence with one strategy; a silver row's id is the key of (strategy, text, identity)."""

    name = "label"
    stage = "silver"
    row_schema = SILVER_SCHEMA
    key_column = "row_id"
    unit_name = "sentences"

    def __init__(self, taxonomy: Taxonomy, sentences: Iterable[Sentence], strategy: Strategy | None = None,
                 outcomes: dict[str, Labelled] | None = None):
        self.taxonomy = taxonomy
        self.sentences = sentences
        self.outcomes = outcomes  # where given, every sentence's outcome (scores too) by row id
        self.strategy = strategy or JsonStrategy(taxonomy)
        self.call = self.strategy.call
        self.title = "label (silver)" if self.strategy.name == "json" else f"label (silver, {self.strategy.name})"

    def identity(self, ctx: StageContext) -> dict:
        return self.strategy.stage_identity(ctx)

    def prepare(self, ctx: StageContext) -> None:
        """A silver folder begun before rows carried the LLM's confidence keeps its columns: every shard of
        a dataset has one schema, so readers never meet a column that only some shards have."""
        columns = shard_columns(ctx.run.out / self.stage)
        if columns is not None and CONFIDENCE not in columns:
            self.row_schema = {k: v for k, v in SILVER_SCHEMA.items() if k != CONFIDENCE}

    def sampling(self, ctx: StageContext):
        return self.strategy.sampling(ctx)

    @property
    def key_task(self) -> str:
        return self.strategy.key_task

    def key(self, text: str, identity: dict) -> str:
        """A sentence's row id (the benchmark decodes the label path's own requests with it)."""
        return self.unit_key(identity, text=text)

    def units(self, ctx: StageContext, done: set[str]) -> Iterator[Unit]:
        """Streamed: memory stays flat however large the corpus (only committed row ids are held)."""
        identity = self.identity(ctx)
        sentences = iter(self.sentences)
        while chunk := list(itertools.islice(sentences, PRIOR_CHUNK)):
            keyed = [(s, self.unit_key(identity, text=s.text)) for s in chunk]
            todo = [i for i, (_, key) in enumerate(keyed) if key not in done]
            priors = dict(zip(todo, self.strategy.priors([chunk[i].text for i in todo]), strict=True)) if todo else {}
            for index, (sentence, key) in enumerate(keyed):
                seed = request_seed(ctx.seed, key)
                requests = self.strategy.requests(sentence.text, seed) if index in priors else []
                yield Unit(key, (sentence, priors.get(index), seed), requests)

    def rows(self, unit: Unit, results: list[Result], lineage: Lineage) -> tuple[list[dict], list[dict]]:
        sentence, prior, seed = unit.item
        outcome: Labelled = self.strategy.outcome(sentence.text, results, prior, seed)
        outcome = replace(outcome, confidence=logprob_confidence(results))
        if self.outcomes is not None:
            self.outcomes[unit.key] = outcome
        result = outcome.result
        record = {**lineage(None, result, seed=seed), **self.strategy.row_lineage()}
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
            **({CONFIDENCE: outcome.confidence} if CONFIDENCE in self.row_schema else {}),
            **record,
        }], []


def run_label(sentences: Iterable[Sentence], taxonomy: Taxonomy, ctx: StageContext, shard_size: int | None = None,
              strategy: Strategy | None = None) -> StageStats:
    """Label `sentences` (any iterable, consumed once and lazily) into ctx.run's silver/ shards."""
    return run_stage(LabelTask(taxonomy, sentences, strategy), ctx, commit_rows=shard_size)


def label_texts(texts: list[str], strategy: Strategy, ctx: StageContext | None) -> list[Labelled]:
    """Label `texts` through this stage (strategy evaluation on gold): the units, requests, seeds and outcomes
    silver gets, with their per-category scores, in a scratch run folder (`scratch_context`) on ctx's engine.
    A strategy that asks no LLM needs no context."""
    if strategy.uses_llm and ctx is None:
        raise FactoryError(f"strategy {strategy.name} needs the LLM")
    outcomes: dict[str, Labelled] = {}
    task = LabelTask(strategy.taxonomy, [Sentence("gold", i, 0, len(t), t) for i, t in enumerate(texts)], strategy,
                     outcomes)
    with scratch_context(ctx) as scratch:
        run_stage(task, scratch, commit_rows=max(len(texts), 1))
        identity = task.identity(scratch)
    return [outcomes[task.key(text, identity)] for text in texts]
