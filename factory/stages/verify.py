"""Verify: a second, constrained LLM pass that judges each silver label set and each bronze sentence
against the category definitions.

Verdicts go to side tables `<run>/silver_check/` and `<run>/bronze_check/` keyed by the judged row's
`row_id` (docs/data-contract.md). Silver and bronze are never rewritten: a rejected row stays where it
is, and its verdict and reason sit beside it for filters (`compare --drop-rejected`) and the report.
"""

from __future__ import annotations

import time
from pathlib import Path

import polars as pl

from factory.engines.base import Request
from factory.core.errors import FactoryError
from factory.data.side_tables import SideTable, side_table_dir
from factory.core.progress import progress_bar
from factory.stages.prompts import PromptPair
from factory.stages.context import StageContext, StageStats, commit_shard, failure_row, pending_work, request_seed
from factory.data.store import LINEAGE_SCHEMA, ShardWriter, content_key, existing_values, read_dataset, schema_hash, shard_paths
from factory.data.taxonomy import Taxonomy

VERDICTS = ("accept", "reject")  # distinct first tokens: the constraint does not favour one
MAX_REASON_CHARS = 120
CHECKED_DATASETS = ("silver", "bronze")

CHECK_SCHEMA = {
    "row_id": pl.String,  # the judged silver/bronze row
    "check_key": pl.String,  # content key of this verdict (judged text + labels + verifier identity)
    "source": pl.String,
    "text": pl.String,
    "labels": pl.List(pl.String),
    "verdict": pl.String,
    "reason": pl.String,
    **LINEAGE_SCHEMA,
}


def check_schema() -> dict:
    """Verdict first (an enum), then a bounded reason; nothing else is allowed."""
    return {
        "title": "LabelCheck",
        "type": "object",
        "properties": {
            "verdict": {"type": "string", "enum": list(VERDICTS)},
            "reason": {"type": "string", "minLength": 1, "maxLength": MAX_REASON_CHARS},
        },
        "required": ["verdict", "reason"],
        "additionalProperties": False,
    }


class Checker:
    """Prompt, schema and row contract of the verifier task."""

    task = "check"

    def __init__(self, taxonomy: Taxonomy, prompts: PromptPair | None = None):
        self.taxonomy = taxonomy
        self.prompts = prompts or PromptPair("check")
        self.schema = check_schema()
        self.schema_hash = schema_hash(self.schema)
        self._system_context = {"categories": taxonomy.categories, "none_category": taxonomy.none}

    def chat(self, text: str, labels: list[str], purpose: str) -> list[dict[str, str]]:
        categories = [self.taxonomy.get(label) for label in labels]
        return self.prompts.render(self._system_context, {"sentence": text, "labels": categories, "purpose": purpose})

    def identity(self, ctx: StageContext) -> dict:
        return ctx.identity(self.prompts.hash, self.schema_hash, self.taxonomy.fingerprint)

    def key(self, row: dict, ctx: StageContext) -> str:
        return content_key(task=self.task, row_id=row["row_id"], text=row["text"], labels=list(row["labels"]),
                           **self.identity(ctx))

    def row(self, judged: dict, key: str, parsed: dict, lineage: dict) -> dict:
        return {"row_id": judged["row_id"], "check_key": key, "source": judged["source"], "text": judged["text"],
                "labels": list(judged["labels"]), "verdict": parsed["verdict"], "reason": parsed["reason"], **lineage}


def run_check(run_dir: Path, dataset: str, taxonomy: Taxonomy, ctx: StageContext, limit: int | None = None,
              shard_size: int = 256) -> StageStats:
    """Judge every row of `<run>/<dataset>` that has no verdict yet for its current text and labels."""
    if dataset not in CHECKED_DATASETS:
        raise FactoryError(f"check covers silver and bronze, not {dataset!r}")
    source_dir = Path(run_dir) / dataset
    if not shard_paths(source_dir):
        raise FactoryError(f"no {dataset} shards in {source_dir}; run `bin/generate "
                           f"{'label' if dataset == 'silver' else 'synthesize'}` first")
    checker = Checker(taxonomy)
    out_dir = side_table_dir(run_dir, dataset, "check")
    writer = ShardWriter(out_dir, CHECK_SCHEMA)
    failures = ctx.failure_writer()
    ctx.run.bind_identity(f"{dataset}_check", checker.identity(ctx))
    done = existing_values(out_dir, "check_key")
    rows = read_dataset(source_dir).select("row_id", "source", "text", "labels").to_dicts()[:limit]
    stats = StageStats(f"check ({dataset})")
    todo = pending_work(rows, lambda row: checker.key(row, ctx), done, stats)
    if todo:
        stats.engine_start_seconds = ctx.start_engine()
    started = time.perf_counter()
    with progress_bar("rows") as progress:
        task = progress.add_task(f"checking {dataset}", total=len(todo))
        for start in range(0, len(todo), shard_size):
            shard = todo[start:start + shard_size]
            requests = [Request(checker.chat(r["text"], list(r["labels"]), dataset), request_seed(ctx.seed, key))
                        for r, key in shard]
            results = ctx.engine.generate(requests, checker.schema, ctx.sampling)
            ok_rows, failed_rows = [], []
            for (judged, key), request, result in zip(shard, requests, results, strict=True):
                lineage = ctx.lineage(checker.prompts.hash, checker.schema_hash, taxonomy.fingerprint, request.seed, result)
                stats.completion_tokens += result.completion_tokens
                if result.ok:
                    ok_rows.append(checker.row(judged, key, result.parsed, lineage))
                else:
                    failed_rows.append(failure_row(checker.task, key, judged["text"], result, lineage))
                    stats.failures.append((judged["text"][:60], result.error or ""))
            commit_shard(writer, failures, ok_rows, failed_rows, stats, len(shard))
            progress.advance(task, len(shard))
    stats.seconds = time.perf_counter() - started
    return stats


def current_verdicts(run_dir: Path, dataset: str) -> pl.DataFrame | None:
    """One verdict per row whose text and labels are unchanged since it was judged (the latest wins)."""
    return SideTable(run_dir, dataset, "check").current()
