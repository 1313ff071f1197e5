"""Data-to-label: the LLM labels sentences of real notes following the guideline -> silver rows.

Input: corpus.Sentence rows. Output: silver shards (docs/data-contract.md), one row per sentence whose
output was complete and schema-valid; other outputs go to failed/ with the reason.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from factory.corpus import Sentence
from factory.engines.base import Request
from factory.progress import progress_bar
from factory.prompts import PromptPair
from factory.stage import StageContext, StageStats, failure_row, request_seed
from factory.store import SILVER_SCHEMA, ShardWriter, content_key, existing_values, schema_hash
from factory.taxonomy import Taxonomy, label_schema

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
            "labels": self.taxonomy.normalise_labels(parsed["labels"]),
            "evidence": parsed["evidence"],
            "note_id": sentence.note_id,
            "sentence_index": sentence.sentence_index,
            "char_start": sentence.char_start,
            "char_end": sentence.char_end,
            **lineage,
        }


def run_label(
    sentences: Iterable[Sentence], taxonomy: Taxonomy, ctx: StageContext, shard_size: int = 256
) -> StageStats:
    labeler = Labeler(taxonomy)
    silver_dir = ctx.run.out / "silver"
    writer = ShardWriter(silver_dir, SILVER_SCHEMA)
    failures = ctx.failure_writer()
    ctx.run.bind_identity("silver", labeler.identity(ctx))
    done = existing_values(silver_dir, "row_id")
    stats = StageStats("label (silver)")
    todo = []
    for sentence in sentences:
        row_id = labeler.key(sentence.text, ctx)
        if row_id in done:
            stats.skipped += 1
        else:
            todo.append((sentence, row_id))
    if todo:
        stats.engine_start_seconds = ctx.start_engine()
    started = time.perf_counter()
    with progress_bar("sentences") as progress:
        task = progress.add_task("labelling sentences", total=len(todo))
        for start in range(0, len(todo), shard_size):
            shard = todo[start : start + shard_size]
            requests = [Request(labeler.chat(s.text), request_seed(ctx.seed, row_id)) for s, row_id in shard]
            results = ctx.engine.generate(requests, labeler.schema, ctx.sampling)
            ok_rows, failed_rows = [], []
            for (sentence, row_id), request, result in zip(shard, requests, results, strict=True):
                lineage = ctx.lineage(labeler.prompts.hash, labeler.schema_hash, taxonomy.fingerprint, request.seed, result)
                stats.completion_tokens += result.completion_tokens
                if result.ok:
                    ok_rows.append(labeler.row(sentence, row_id, result.parsed, lineage))
                else:
                    failed_rows.append(failure_row(labeler.task, row_id, sentence.text, result, lineage))
                    stats.failures.append((sentence.text[:60], result.error or ""))
            writer.write(ok_rows)
            failures.write(failed_rows)
            stats.rows += len(ok_rows)
            stats.failed += len(failed_rows)
            stats.requests += len(shard)
            progress.advance(task, len(shard))
    stats.seconds = time.perf_counter() - started
    return stats
