"""Data-to-label: the LLM labels sentences of real notes following the guideline -> silver rows.

Input: corpus.Sentence rows. Output: silver shards (docs/data-contract.md), one row per sentence whose
output was complete and schema-valid; other outputs go to failed/ with the reason.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

from factory.data.corpus import Sentence
from factory.engines.base import Request, Result
from factory.core.progress import progress_bar
from factory.stages.prompts import PromptPair
from factory.stages.context import StageContext, StageStats, commit_shard, failure_row, request_seed
from factory.data.store import SILVER_SCHEMA, ShardWriter, content_key, existing_values, schema_hash
from factory.data.taxonomy import Taxonomy, label_schema

EXAMPLES_PER_CATEGORY = 1


class Labeler:
    """Prompt, schema and row contract of the data-to-label task."""

    task = "label"

    def __init__(self, taxonomy: Taxonomy, prompts: PromptPair | None = None):
        self.taxonomy = taxonomy
        self.prompts = prompts or PromptPair("label")
        self.schema = label_schema(taxonomy)
        self.schema_hash = schema_hash(self.schema)
        self._system_context = {
            "categories": taxonomy.categories,
            "none_category": taxonomy.none,
            "examples_per_category": EXAMPLES_PER_CATEGORY,
        }

    def chat(self, text: str) -> list[dict[str, str]]:
        return self.prompts.render(self._system_context, {"sentence": text})

    def key(self, text: str, ctx: StageContext) -> str:
        return content_key(task=self.task, text=text, **self.identity(ctx))

    def identity(self, ctx: StageContext) -> dict:
        return ctx.identity(self.prompts.hash, self.schema_hash, self.taxonomy.fingerprint)

    def row(self, sentence: Sentence, row_id: str, parsed: dict, lineage: dict) -> dict:
        return {
            "row_id": row_id,
            "source": "silver",
            "text": sentence.text,
            "labels": self.taxonomy.labels_from_choices(parsed["labels"]),
            "evidence": parsed["evidence"],
            "note_id": sentence.note_id,
            "sentence_index": sentence.sentence_index,
            "char_start": sentence.char_start,
            "char_end": sentence.char_end,
            **lineage,
        }


class SilverSink:
    """Commits labelled sentences: silver rows for valid outputs, failed/ rows for the rest, one atomic
    shard each per call. The single-process and the Ray paths both commit through it (same rows)."""

    def __init__(self, labeler: Labeler, ctx: StageContext, stats: StageStats):
        self.labeler, self.ctx, self.stats = labeler, ctx, stats
        self.writer = ShardWriter(ctx.run.out / "silver", SILVER_SCHEMA)
        self.failures = ctx.failure_writer()

    def commit(self, items: Iterable[tuple[Sentence, str, int, Result]]) -> None:
        labeler, ctx, stats = self.labeler, self.ctx, self.stats
        hashes = (labeler.prompts.hash, labeler.schema_hash, labeler.taxonomy.fingerprint)
        ok_rows, failed_rows = [], []
        for sentence, row_id, seed, result in items:
            lineage = ctx.lineage(*hashes, seed, result)
            stats.completion_tokens += result.completion_tokens
            if result.ok:
                ok_rows.append(labeler.row(sentence, row_id, result.parsed, lineage))
            else:
                failed_rows.append(failure_row(labeler.task, row_id, sentence.text, result, lineage))
                stats.failures.append((sentence.text[:60], result.error or ""))
        commit_shard(self.writer, self.failures, ok_rows, failed_rows, stats, len(ok_rows) + len(failed_rows))


def prepare_label(taxonomy: Taxonomy, ctx: StageContext) -> tuple[Labeler, set[str], StageStats]:
    """The labeller, the row ids already committed in this run folder, and fresh stats."""
    labeler = Labeler(taxonomy)
    ctx.run.bind_identity("silver", labeler.identity(ctx))
    return labeler, existing_values(ctx.run.out / "silver", "row_id"), StageStats("label (silver)")


def pending_shards(
    sentences: Iterable[Sentence], labeler: Labeler, ctx: StageContext, done: set[str], stats: StageStats, size: int
) -> Iterator[list[tuple[Sentence, str]]]:
    """Sentences whose row is not committed yet, `size` at a time. Streamed: memory stays flat however
    large the corpus (only the committed row ids are held, ~100 bytes each)."""
    shard: list[tuple[Sentence, str]] = []
    for sentence in sentences:
        row_id = labeler.key(sentence.text, ctx)
        if row_id in done:
            stats.skipped += 1
            continue
        shard.append((sentence, row_id))
        if len(shard) >= size:
            yield shard
            shard = []
    if shard:
        yield shard


def run_label(
    sentences: Iterable[Sentence], taxonomy: Taxonomy, ctx: StageContext, shard_size: int = 256
) -> StageStats:
    """Label `sentences` (any iterable, consumed once and lazily) into ctx.run's silver/ shards."""
    labeler, done, stats = prepare_label(taxonomy, ctx)
    sink = SilverSink(labeler, ctx, stats)
    started = None
    with progress_bar("sentences") as progress:
        task = progress.add_task("labelling sentences", total=None)
        for shard in pending_shards(sentences, labeler, ctx, done, stats, shard_size):
            if started is None:  # the engine starts only when there is work; its start is timed apart
                stats.engine_start_seconds = ctx.start_engine()
                started = time.perf_counter()
            requests = [Request(labeler.chat(s.text), request_seed(ctx.seed, row_id)) for s, row_id in shard]
            results = ctx.engine.generate(requests, labeler.schema, ctx.sampling)
            sink.commit(
                (sentence, row_id, request.seed, result)
                for (sentence, row_id), request, result in zip(shard, requests, results, strict=True)
            )
            progress.advance(task, len(shard))
    stats.seconds = time.perf_counter() - started if started is not None else 0.0
    return stats
